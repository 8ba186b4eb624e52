// The executor-ordering check shared by the host executor's tests (tests/calibrate, and the
// MPI back end's end-to-end test in tests/cli): the recorded event order honours every
// dependency and stream order of the plan.
#pragma once
#include <gtest/gtest.h>

#include "calibrate/host_executor.h"
#include "sim/plan.h"

namespace trainsim {

// Checks the recorded order against the plan: each task starts after its dependencies and its
// predecessor on the stream ended; start <= end in time and in sequence.
// Returns the number of cross-task dependencies checked.
inline int expect_order_honoured(const Plan& plan, const HostRun& run) {
  EXPECT_EQ(run.tasks.size(), static_cast<size_t>(plan.num_ranks));
  if (run.tasks.size() != static_cast<size_t>(plan.num_ranks)) return 0;
  int checked_deps = 0;
  for (int r = 0; r < plan.num_ranks; ++r) {
    const Program& prog = plan.programs[plan.program_of_rank[r]];
    EXPECT_EQ(run.tasks[r].size(), prog.tasks.size());
    if (run.tasks[r].size() != prog.tasks.size()) return 0;
    for (uint32_t i = 0; i < prog.tasks.size(); ++i) {
      const HostTaskRecord& t = run.tasks[r][i];
      EXPECT_LT(t.start_seq, t.end_seq) << "rank " << r << " task " << i;
      EXPECT_LE(t.start, t.end);
      EXPECT_LE(t.end, run.step_time);
      for (uint32_t d : prog.tasks[i].dep) {
        if (d == kNoDep) continue;
        EXPECT_LT(run.tasks[r][d].end_seq, t.start_seq) << "rank " << r << " task " << i << " dep " << d;
        EXPECT_LE(run.tasks[r][d].end, t.start);
        ++checked_deps;
      }
      const uint32_t pos = prog.pos_in_stream[i];
      if (pos > 0) {
        const uint32_t prev = prog.stream_tasks[prog.tasks[i].stream][pos - 1];
        EXPECT_LT(run.tasks[r][prev].end_seq, t.start_seq) << "rank " << r << " stream order at task " << i;
      }
    }
  }
  return checked_deps;
}

}  // namespace trainsim
