#include "sim/prefault.h"

#include <atomic>
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#include <cerrno>
#include <unistd.h>
#endif

namespace trainsim {

void prefault(void* p, size_t bytes) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(page - 1);
  static std::atomic<bool> unsupported{false};
  if (hi <= lo || hi - lo < 4 * page || unsupported.load(std::memory_order_relaxed)) return;
  // Memory that malloc hands out again is usually mapped already, and asking the kernel to
  // populate it anyway walks its page tables for nothing (~5 us per 256 KiB): if the range's
  // last page is resident, leave the range alone.
  unsigned char resident = 0;
  if (mincore(reinterpret_cast<void*>(hi - page), page, &resident) == 0 && (resident & 1)) return;
  // Failure only means the pages fault one by one; EINVAL (a kernel before 5.14) will not
  // change, so stop asking.
  if (madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
    unsupported.store(true, std::memory_order_relaxed);
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace trainsim
