// File: models/restrict.h
// Restricting a compiled plan to the devices at hand (verify mode, README "Verify"): the local
// ranks run exactly the programs their counterparts run in the full plan, so a difference
// between a local run and the simulation of the same restricted plan is a cost-model error.
//
// Rules (all in restrict_plan):
//   1. One model-parallel slice is kept whole: a TP group x CP group (tp*cp ranks). Groups whose
//      collectives set per-rank shapes (tp, tp-side, cp-ring, cp-ulysses, ep) never shrink; if
//      `devices` < tp*cp, or an EP group would be cut, the restriction is refused (error).
//   2. Pipeline: with pp >= 2 and devices >= 2*tp*cp, stages 0 and 1 (an adjacent pair; stage 0
//      has no predecessor, so only stage 1's links to stage 2 are cut); else stage 0 alone.
//   3. Data parallel: dp' = min(dp, devices / (tp*cp*kept_pp)) replicas (for MoE a multiple of
//      ep, or with folded EP of lcm(etp*ep, tp*cp)/(tp*cp), the replicas one EP block spans),
//      those with dp coordinate < dp'. DP-family collectives (dp, dp-gather, dp-replica,
//      expert-dp, ...) keep their per-rank buffer sizes and run over the dp' kept members: the
//      report lists each such group as "over dp' of dp ranks".
//   4. The same per-rank shapes: the programs are copied from the full plan (ops, shapes,
//      streams, micro-batch count, memory events unchanged).
//   5. Sends and receives whose peer was dropped (stage 1 -> 2 activations, stage 2 -> 1
//      gradients; the interleaved wrap-around stage pp-1 -> 0) are removed. A task that
//      depended on a removed task depends on what the removed task depended on (the latest
//      task per stream), so a receive from a dropped stage is a local stand-in that is ready
//      at once: the kept stage does not wait for the dropped stages' work (documented
//      difference: its bubble is smaller than in the full plan). A removed task's memory
//      events move to the next kept task of the program.
// Ranks of the restricted plan are numbered 0..n-1 in the order of their full-plan ranks.
// Thread-safety: pure function.
#pragma once
#include <string>
#include <vector>

#include "models/spec.h"
#include "sim/plan.h"
#include "sim/status.h"

namespace trainsim {

struct RestrictedPlan {
  Plan plan;                           // finalized; costs not bound
  std::vector<uint32_t> full_rank;     // restricted rank -> full-plan rank
  std::vector<uint32_t> full_program;  // restricted program -> full-plan program
  int devices = 0;                     // asked for
  int tp = 1, cp = 1, pp = 1, dp = 1;  // of the full plan
  std::vector<int> stages;             // kept pipeline stages
  int dp_kept = 1;
  int removed_sends = 0, removed_recvs = 0;   // summed over kept programs
  std::vector<std::string> kept;       // human-readable lines: what was kept
  std::vector<std::string> dropped;    // ...and what was dropped or shrunk
};

// REQUIRES: `full` finalized, compiled from `par` (program index = pipeline stage).
// Errors: devices < 1, devices < tp*cp, a shape-setting group would shrink, a removed task
// leaves a task with more than two dependencies.
Result<RestrictedPlan> restrict_plan(const Plan& full, const ParallelSpec& par, int gpus_per_node, int devices);

}  // namespace trainsim
