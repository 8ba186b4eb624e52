// File: sim/prefault.h
// Prefaulting memory that is about to be written. The first write to each fresh page of an
// allocation takes a page fault; under the paravirtualized kernel of our 2-core benchmark
// machine one costs ~11 us (4 MiB written page by page: 11 ms), and building a plan writes a
// few MiB of tasks and per-rank tables. Asking the kernel to map a range in one call
// (MADV_POPULATE_WRITE, Linux 5.14) costs ~0.5 ms for the same 4 MiB.
//
//   std::vector<Task> v;
//   reserve_prefaulted(v, n);        // capacity >= n, pages of [size, n) mapped
//
// Measured again later on the same VM (other builds sharing it): 16 MiB touched page by page
// 52-68 ms; populated in one call 2.4-4.9 ms, after which the first writes still took 13-17 ms
// (the hypervisor's own mapping, it seems): prefaulting saves about three quarters of it.
// Memory that malloc hands out again is usually mapped already; prefault() then leaves it
// alone (its last page is resident) rather than have the kernel walk its page tables.
//
// Purely a speed hint: contents and results never depend on it; where the kernel lacks the
// call (or the platform is not Linux) it does nothing. Thread-safety: none needed.
#pragma once
#include <cstddef>
#include <vector>

namespace trainsim {

// Maps the whole pages inside [p, p + bytes) writable now. REQUIRES: the range is memory this
// process may write (e.g. a vector's spare capacity). Ranges of a few pages are left alone
// (a system call would cost more than the faults it saves).
void prefault(void* p, size_t bytes);

// v.reserve(n), then prefaults the capacity between v.size() and n.
template <class T>
void reserve_prefaulted(std::vector<T>& v, size_t n) {
  v.reserve(n);
  if (n > v.size()) prefault(v.data() + v.size(), (n - v.size()) * sizeof(T));
}

}  // namespace trainsim
