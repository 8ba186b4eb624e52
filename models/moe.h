// File: models/moe.h
// Token routing of mixture-of-experts layers: how many tokens each expert, and each expert-
// parallel (EP) rank, receives in one MoE layer for one micro-batch. The compiler sizes the
// dispatch/combine all-to-alls and the grouped expert GEMMs of a stage's (shared) program with
// the busiest EP rank of each draw, so the slowest rank sets the pace.
//
// Model of one draw (layer l, micro-batch m):
//   N = ep * tokens_per_rank * top_k token copies are routed by one EP group to E experts.
//   balanced   every expert gets N/E (the remainder one each to the first experts);
//   uniform    a multinomial draw of N over E equal probabilities;
//   zipf       a multinomial draw with p_i ~ 1/(i+1)^s, the i-th hottest expert being a
//              seeded random expert of the layer (so hot experts land on random EP ranks);
//   histogram  a multinomial draw with the file's per-expert weights (normalised), expert ids
//              permuted per layer as for zipf.
//   Experts sit on EP ranks contiguously (expert e on rank e / (E/ep), Megatron's layout).
//   Capacity factor cf > 0: an expert keeps at most ceil(cf * N / E) copies; the rest are
//   dropped (counted). cf = 0: dropless.
// How the multinomial is drawn (exact, by the aggregation property of the multinomial: a
// rank's copies are multinomial with the summed probability of its experts, and given a
// rank's copies its experts' are multinomial over their own probabilities):
//   1. the EP ranks' copies: a chain of conditional binomials over the ranks in order of
//      decreasing probability (ties: lower rank), on the draw's stream (below);
//   2. only when per-expert counts are wanted (capacity, dynamic placement, expert_rows): each
//      rank's copies split over its experts (heaviest first, ties: lower id) by the same chain,
//      rank by rank, on the stream "<name>/experts" (so step 1 is the same with or without it).
//   Each binomial is exact: BTRD (Hormann 1993, transformed rejection, as in Boost.Random) when
//   the mode (n+1)min(p,1-p) is 11 or more, inversion below; on our own uniforms, never with
//   std:: distributions (their output differs between standard libraries); libm's log, log1p,
//   pow and sqrt are the only library arithmetic.
//   Busiest rank only (MoeDetail::kBusiestRank, what the compiler needs without capacity or
//   dynamic placement): the chain stops once the ranks not yet drawn cannot hold more than the
//   busiest so far: for certain when fewer copies are left than the busiest holds, else when
//   a Chernoff bound puts the chance that any of them does below 2^-64 (union bound over them,
//   each at most the likeliest's tail P(Bin(L, q) > M) <= exp(-L KL((M+1)/L || q))). Its
//   busiest rank differs from the full chain's (same stream) only in such an event.
// Randomness: a splitmix64 stream per (seed, "moe/layer<l>/micro<m>"). Each pod (the dp/ep
// groups of ep pipelines that share EP groups at every stage, `pod` below) draws its own
// stream; the compiler lays the shared stage program out with the straggling pod (the most
// busiest-rank rows over the step), since pods meet only at the step's gradient reduction.
// Slices: with etp = 1 < tp each TP rank routes its own sequence shard, and each CP rank its own
// chunk, into its own EP group (the EP groups are keyed by tp and cp coordinate): a pod draws
// one stream per slice (tp x cp slices; cp when experts are TP-split: the TP group is then the
// expert-TP group, which gathers the rows its ranks routed, so one draw covers its tokens), and since a layer's TP collectives and CP ring exchanges make a pod's
// slices wait for each other, the busiest rank over all its slices sets each layer's pace.
// Folded EP (models/spec.h EpLayout): a slice is an EP block (the etp*ep consecutive positions
// of one edp index among a stage's ranks; its EP groups carry the tokens of the same ETP
// groups), and a pod is a connected set of EP blocks and TP x CP groups; pods and slices are
// numbered in rank order. EP along DP keeps the numbering above (and so its streams).
// Thread-safety: pure functions.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "models/spec.h"

namespace trainsim {

struct MoeDraw {
  int64_t routed = 0;           // N: token copies routed by the EP group
  int64_t dropped = 0;          // copies over capacity
  int64_t max_rank_rows = 0;    // copies the busiest EP rank processes (after drops)
  double imbalance = 1;         // max_rank_rows / (N / ep): 1 = perfectly balanced
  std::vector<int64_t> rank_rows;    // per EP rank, after drops (empty: MoeDetail::kBusiestRank)
  std::vector<int64_t> expert_rows;  // per expert, after drops (empty unless MoeDetail::kExperts)
};

// What a MoeRouter draw fills in (each level includes the ones before it).
enum class MoeDetail {
  kBusiestRank,   // routed, dropped, max_rank_rows, imbalance (the chain may stop early, above)
  kRanks,         // + rank_rows (the whole rank chain)
  kExperts,       // + expert_rows (each rank's copies split over its experts)
};

// 64-bit stream keyed by a seed and a stable name (STYLE.md 3).
class SplitMix64 {
 public:
  SplitMix64(uint64_t seed, std::string_view name);
  uint64_t next();
  double uniform();             // [0, 1), 53 bits
  double normal();              // standard normal, Box-Muller
 private:
  uint64_t s_;
  bool have_spare_ = false;
  double spare_ = 0;
};

// Binomial(n, p), exact (BTRD or inversion, above); 0 for n <= 0 or p <= 0, n for p >= 1.
int64_t draw_binomial(SplitMix64& g, int64_t n, double p);

// Per-expert counts summing to n, drawn as described above (no capacity applied), the experts
// on `ep` EP ranks (ep = 1: one rank holds them all, step 1 is trivial).
// `pod`: which group of ep pipelines (the DP replicas of one EP group) draws; pod 0 keeps the
// stream names it always had, pod g > 0 appends "/pod<g>". `slice`: which of the pod's token
// slices routes (the TP ranks' sequence shards when experts are not TP-split, etp = 1 < tp,
// and the CP ranks' chunks: each routes its own tokens into its own EP group); slice 0 keeps
// the names, slice s > 0 appends "/slice<s>".
// REQUIRES: experts % ep == 0.
std::vector<int64_t> draw_expert_loads(const MoeRoutingSpec& r, int experts, int64_t n, int layer, int micro,
                                       int pod = 0, int slice = 0, int ep = 1);
// The stream name of one draw (above).
std::string moe_stream_name(int layer, int micro, int pod, int slice);

// The plain implementation: every rank and expert drawn (MoeDetail::kExperts), tables built per call.
// REQUIRES: experts % ep == 0, top_k <= experts, tokens_per_rank >= 1.
MoeDraw draw_moe_layer(const MoeRoutingSpec& r, int experts, int top_k, int ep, int64_t tokens_per_rank,
                       double capacity_factor, int layer, int micro, int pod = 0, int slice = 0);

// Many draws of one routing spec and layer shape (the compiler draws every MoE layer x
// micro-batch x pod: 13,920 draws of 64 EP ranks for DeepSeek-V3 on 10,240 GPUs). Does what
// draw_moe_layer() does, with the same streams and the same arithmetic in the same order, so
// at kRanks and kExperts its results are identical, and at kBusiestRank its figures are
// (but for the 2^-64 event above); tests/models/moe_test.cpp checks it against draw_moe_layer
// on random inputs. What it saves: the per-layer tables (weights, rank and expert orders,
// chain probabilities) built once, no allocation per draw, and at kBusiestRank the ranks that
// cannot be the busiest.
// Thread-safety: none (caches); one per thread.
class MoeRouter {
 public:
  // REQUIRES: as draw_moe_layer's; `r` outlives the router. With capacity_factor > 0 every
  // draw is made at kExperts (drops are per expert).
  MoeRouter(const MoeRoutingSpec& r, int experts, int top_k, int ep, int64_t tokens_per_rank,
            double capacity_factor, MoeDetail detail = MoeDetail::kExperts);
  // draw_moe_layer(r, experts, top_k, ep, tokens_per_rank, capacity_factor, layer, micro, pod,
  // slice) into *out, to the router's detail (its vectors keep their capacity: no allocation
  // once sized).
  void draw(int layer, int micro, int pod, MoeDraw* out, int slice = 0);
  // draw(layer, micro0 + j, pod, &outs[j], slice) for j < count.
  void draw_micros(int layer, int micro0, int count, int pod, MoeDraw* outs, int slice = 0);

  // Per layer: the chain orders and probabilities of models/moe.h's steps 1 and 2.
  struct Tables {
    std::vector<int> rank_order;      // EP ranks, decreasing probability (ties: lower rank)
    std::vector<double> rank_cond;    // P_r / (sum of P over it and the ranks after it); last 1
    std::vector<int> expert_order;    // per rank r, its experts at [r*local, (r+1)*local), heaviest first
    std::vector<double> expert_cond;  // likewise, within the rank
  };

 private:
  const Tables& tables_of(int layer);

  const MoeRoutingSpec& r_;
  int experts_, ep_;
  int64_t routed_;
  double capacity_factor_;
  MoeDetail detail_;
  std::vector<Tables> tables_;        // by layer; empty until drawn
};

// ---- Dynamic expert placement (FlexMoE-style what-if) -------------------------------------
// Every EP rank has E/ep home slots (static layout: expert e on rank e/(E/ep)) plus `replicas`
// extra slots. From observed per-expert loads L_e a placement is chosen by a deterministic
// greedy:
//   1. copies: every expert has one; the ep*replicas extra copies go one at a time to the
//      expert with the largest L_e/c_e (ties: lower id) that has fewer than ep copies;
//   2. LPT: the copies, in order of decreasing share L_e/c_e (ties: lower expert id), each go to
//      the least-loaded rank (ties: lower rank) that has a free slot and no copy of e yet;
//   3. if the result's busiest rank is not lighter than the static layout's on the observed
//      loads, the static layout is kept (no replicas, nothing moves);
//   4. the LPT bins go to the ranks by a maximum-weight assignment (Hungarian algorithm) that
//      keeps the most experts with a copy on their home rank: the fewest moves for the same
//      loads (which rank holds a bin changes no rank's load).
// It does not look for other placements of equal balance with fewer moves than the LPT bins'.
// A replicated expert's tokens are split evenly over its copies (the remainder one each to the
// copies in placement order). Of an expert's copies, one on its home rank keeps its state; if
// none is on the home rank, the first copy is a move (parameters and optimizer states travel),
// and the others are replicas (parameters only).
struct ExpertPlacement {
  bool is_static = true;                 // kept the contiguous layout
  std::vector<std::vector<int>> ranks;   // per expert: the ranks holding its copies, placement order
  int moved = 0;                         // experts whose state left their home rank
  int replicated = 0;                    // extra copies (replicas)
  std::vector<int> incoming_moves;       // per rank: moved experts it receives
  std::vector<int> incoming_replicas;    // per rank: replicas it receives
};
ExpertPlacement place_experts(const std::vector<int64_t>& observed, int ep, int replicas);
// Step 4 above on a placement whose ranks are LPT bin numbers 0..ep-1 (exposed for its test).
void relabel_bins_for_fewest_moves(ExpertPlacement* p, int experts, int ep, int local);
// Per-rank token copies of `loads` under placement `p` (static: contiguous blocks).
std::vector<int64_t> rank_rows(const ExpertPlacement& p, const std::vector<int64_t>& loads, int ep);
int64_t max_rank_rows(const ExpertPlacement& p, const std::vector<int64_t>& loads, int ep);

}  // namespace trainsim
