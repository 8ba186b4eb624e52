// File: sim/replay.h
// The replay executor: runs a finalized, cost-bound Plan on the event engine and measures the
// step. Full mode simulates every rank; fast mode simulates Plan::representatives only, and a
// collective then waits for the simulated members of its group (the others are identical).
//
// Time accounting (per simulated rank, on its compute stream):
//   compute / recompute / optimizer  task durations by category;
//   exposed comm (tp, dp, pp, cp, ep) a comm task on the compute stream, or the wait for a comm
//                                    task it depends on, or the part of a receive wait that
//                                    overlaps the message's transfer;
//   bubble                           every other wait (pipeline fill/drain, idle at the end).
// The buckets of a rank add up to the step time exactly (a test checks it).
// Thread-safety: replay() is reentrant; it only reads the plan.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "sim/flow.h"
#include "sim/plan.h"

namespace trainsim {

enum class Bucket : uint8_t { kCompute, kRecompute, kOptimizer, kTpExposed, kDpExposed,
                              kPpExposed, kCpExposed, kEpExposed, kOffloadExposed, kBubble, kCount };
const char* to_string(Bucket);

struct RankStats {
  uint32_t rank = 0;
  Time finish;                                           // when its last stream went idle
  std::array<Time, static_cast<size_t>(Bucket::kCount)> bucket{};
  std::array<Time, static_cast<size_t>(Category::kCount)> comm_total{};  // all comm, any stream
  int64_t peak_dynamic_mem = 0;                          // bytes above the program's static memory
  int64_t peak_grad_mem = 0;   // of peak_dynamic_mem: gradients allocated by then (Task::mem_grads)
  Time contention;   // compute time added by collectives sharing the GPU (comm_sm_share > 0),
                     // beyond the rank's own speed (ReplayOptions::rank_speed)
};

struct TraceRecord {
  uint32_t rank;
  uint32_t task;     // index into the rank's program
  Time start, end;
};

class NetworkModel;   // sim/network_model.h

struct ReplayOptions {
  bool fast = false;
  std::vector<uint32_t> trace_ranks;   // record a TraceRecord per task of these ranks
  // Flow mode (sim/network_model.h): collectives and sends that cross nodes become flows on a
  // max-min FlowNetwork built from network->link_capacities(); nullptr = analytic (Task::dur).
  // Not owned; REQUIRES: !fast when set (fast mode leaves out the traffic of other replicas).
  NetworkModel* network = nullptr;
  size_t hottest_links = 10;           // flow mode: how many links ReplayResult::hottest keeps
  // Compute kernels sharing the GPU with collectives: while c collectives of a rank run (from
  // the rank's arrival to their end: an NCCL kernel holds its SMs while it waits for peers),
  // that rank's compute tasks (not host copies) progress at max(kMinComputeRate,
  // 1 - comm_sm_share * c) of their rate, re-timed whenever c changes. comm_sm_share = the
  // share of the GPU's SMs one collective holds (NCCL CTAs / SMs); 0 = no slowdown. Collectives
  // of a copy-engine group (GroupTable::copy_engine) hold none.
  double comm_sm_share = 0;
  // Host copies sharing the PCIe link: while a rank copies to and from host at once (its two
  // offload streams both busy), each copy moves at this fraction of its one-direction rate,
  // re-timed when the other starts or ends. 1 = the directions are independent.
  double pcie_duplex = 1;
  // Back-to-back compute tasks of the compute stream that nothing else waits on run as one
  // chain, with one completion event (Replayer::chain in replay.cpp says when): the same step,
  // in fewer events. false = an event per task (the oracle the chained replay is tested against).
  bool chain_compute = true;
  // Per-GPU compute speed (what-if: GPUs of one SKU do not run at one rate): rank r's compute
  // tasks (compute, recompute, optimizer; not host copies, not comm) run at rank_speed[r] times
  // their rate, each rounded to the ps as a slowed task is, and with the collectives' slowdown
  // the rate is max(kMinComputeRate, 1 - comm_sm_share * c) * rank_speed[r]. Empty: 1 for every
  // rank; else num_ranks values in (0, 1e3] (an error otherwise). Fast mode reads the simulated
  // ranks' entries.
  std::vector<double> rank_speed;
};
constexpr double kMinComputeRate = 0.1;

// Flow mode: one link's load over the step.
struct LinkUse {
  uint32_t link = 0;
  double bytes = 0;     // carried over [0, step]
  Time busy;            // time with a positive load
  double utilisation = 0;   // bytes / (flow-network capacity * step time)
};

struct FlowReport {
  FlowNetworkStats stats;          // flows started, rate recomputations (solves), ...
  uint64_t collectives_as_flows = 0;   // collective instances and sends that became flows
  std::vector<LinkUse> hottest;    // by utilisation, highest first (ties: lower link id)
};

struct ReplayResult {
  Time step_time;
  uint32_t critical_rank = 0;          // the rank that finished last (lowest id on ties)
  std::vector<RankStats> ranks;        // one per simulated rank, ascending rank id
  std::vector<TraceRecord> trace;
  uint64_t events = 0;                 // events processed
  uint64_t fingerprint = 0;            // order-sensitive hash of the processed event sequence
  int simulated_ranks = 0;
  bool flow = false;                   // ran in flow mode; `flows` is then filled
  FlowReport flows;
};

// REQUIRES: plan.finalize() returned ok and every Task::dur is set.
// Error (not a crash) if the plan deadlocks: names the first stuck rank and task, or in flow mode
// if a flow cannot start (failed link on its path) or never finishes.
Result<ReplayResult> replay(const Plan& plan, const ReplayOptions& opts);

}  // namespace trainsim
