// File: calibrate/cuda/mpi_world.h
// The MPI path of trainsim_calibrator (--mpi; built only with TRAINSIM_HAVE_MPI): one process
// per GPU, started by mpirun. This header holds what main.cpp and collectives.cpp share: the
// world as this process sees it (world rank and size, node-local rank from
// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), every rank's host name), the layout of a
// collective group (ranks 0..n-1 of the world), and the collective measurement across
// processes.
//
// Invariants: hosts, local_ranks and node_leader have `size` entries; a group of n ranks is always world ranks 0..n-1, so its
// rank 0 is world rank 0, the only rank that writes measurement lines.
// Thread-safety: single-threaded (MPI is initialised with MPI_THREAD_SINGLE semantics).
#pragma once
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <mpi.h>
#include <unistd.h>

#include "calibrator.h"
#include "job_file.h"

namespace tscal {

struct MpiWorld {
  int rank = 0, size = 1;
  int local_rank = 0, local_size = 1;   // within this host's shared-memory communicator
  // Per world rank (MPI_Allgather): host name (MPI_Get_processor_name), node-local rank, and the
  // world rank of local rank 0 of its shared-memory node (a node id that needs no host names).
  std::vector<std::string> hosts;
  std::vector<int> local_ranks, node_leader;
};

// Where a group of ranks 0..n-1 lies: per_node = the largest number of its ranks on one host,
// nodes = the number of distinct hosts (the per_node/nodes of a collective line, FORMAT.md 2).
// REQUIRES: 1 <= n <= hosts.size().
struct GroupLayout {
  int per_node = 0, nodes = 0;
};
inline GroupLayout group_layout(const std::vector<std::string>& hosts, int n) {
  std::map<std::string, int> count;
  for (int i = 0; i < n; ++i) ++count[hosts[static_cast<size_t>(i)]];
  GroupLayout g;
  g.nodes = static_cast<int>(count.size());
  for (const auto& [h, c] : count) g.per_node = std::max(g.per_node, c);
  return g;
}

// A barrier of MPI_COMM_WORLD that sleeps while it waits (MPI_Ibarrier, tested every 1 ms):
// the ranks waiting for others to measure do not busy-poll a core each beside the timed process.
inline void quiet_barrier() {
  MPI_Request req = MPI_REQUEST_NULL;
  TS_MPI(MPI_Ibarrier(MPI_COMM_WORLD, &req));
  for (int done = 0;;) {
    TS_MPI(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
    if (done) break;
    usleep(1000);
  }
}

// Measures collective job j across world ranks 0..group_size-1, one GPU (`gpu`, already
// selected) per process. Every rank calls it for every collective job, in the same order
// (it uses world-collective MPI calls). REQUIRES: j.group_size <= w.size.
// Returns true on world rank 0 when *r holds a measurement; false on the other ranks and when
// the job is skipped (the rank that found the reason says why on stderr).
bool measure_collective_mpi(const CollJob& j, const Options& opt, const MpiWorld& w, int gpu, CollResult* r,
                            std::string* source);
// Destroys the cached NCCL communicators, streams and MPI group communicators (before MPI_Finalize).
void collectives_mpi_shutdown();

}  // namespace tscal
