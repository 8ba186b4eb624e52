// A small hand-built Prediction and Plan shared by the report tests: 2 ranks (pp = 2, one
// rank per stage), a few tasks on three streams, a trace of every task.
#pragma once
#include <memory>

#include "scenarios/predict.h"

namespace trainsim::testing {

inline Bytes gib_frac(double g) { return Bytes{static_cast<int64_t>(g * 1073741824.0)}; }

inline std::shared_ptr<Plan> two_rank_plan() {
  auto plan = std::make_shared<Plan>();
  plan->num_ranks = 2;
  OpDesc fc1;
  fc1.name = "mlp.fc1.fwd";
  fc1.cls = OpClass::kGemm;
  fc1.m = 4096;
  fc1.n = 16384;
  fc1.k = 4096;
  fc1.flops = Flops{2.0 * 4096 * 16384 * 4096};
  fc1.bytes = Bytes{2 * (4096LL * 4096 + 4096LL * 16384 + 4096LL * 16384)};
  OpDesc ar;
  ar.name = "grad.allreduce";
  ar.cls = OpClass::kCollective;
  ar.coll = CollKind::kAllReduce;
  ar.bytes = Bytes{40LL << 20};
  OpDesc send;
  send.name = "pp.send.fwd";
  send.cls = OpClass::kP2p;
  send.bytes = Bytes{16LL << 20};
  OpDesc opt;
  opt.name = "adam.step";
  opt.cls = OpClass::kOptimizer;
  opt.flops = Flops{1e9};
  opt.bytes = Bytes{1LL << 30};
  plan->ops = {fc1, ar, send, opt};

  for (int stage = 0; stage < 2; ++stage) {
    Program prog;
    prog.name = stage == 0 ? "stage 0" : "stage 1";
    Task t0;                       // fc1 of layer 3 (stage 0) / 5 (stage 1), micro-batch 1
    t0.op = 0;
    t0.dur = Time::us(100);
    t0.layer = static_cast<uint16_t>(stage == 0 ? 3 : 5);
    t0.micro = 1;
    t0.stream = kStreamCompute;
    t0.category = Category::kCompute;
    Task t1;                       // pipeline send (stage 0) / nothing special
    t1.op = 2;
    t1.kind = stage == 0 ? TaskKind::kSend : TaskKind::kRecv;
    t1.dur = Time::us(20);
    t1.stream = kStreamP2p;
    t1.category = Category::kPpComm;
    t1.layer = 0xffff;
    Task t2;                       // gradient all-reduce on the DP stream
    t2.op = 1;
    t2.kind = TaskKind::kCollective;
    t2.dur = Time::us(50);
    t2.stream = kStreamDp;
    t2.category = Category::kDpComm;
    t2.layer = 0xffff;
    Task t3;                       // optimizer
    t3.op = 3;
    t3.dur = Time::us(30);
    t3.stream = kStreamCompute;
    t3.category = Category::kOptimizer;
    t3.layer = 0xffff;
    prog.tasks = {t0, t1, t2, t3};
    plan->programs.push_back(std::move(prog));
  }
  plan->program_of_rank = {0, 1};
  plan->representatives = {0, 1};
  return plan;
}

inline Prediction two_rank_prediction() {
  Prediction p;
  Scenario& s = p.scenario;
  s.name = "unit-test-2rank";
  s.file = "<test>";
  s.model.name = "gpt-test";
  s.model.layers = 8;
  s.model.hidden = 4096;
  s.model.heads = 32;
  s.model.kv_heads = 32;
  s.model.head_dim = 128;
  s.model.ffn_hidden = 16384;
  s.model.vocab = 51200;
  s.training.seq_len = 2048;
  s.training.global_batch = 16;
  s.training.micro_batch = 1;
  s.cluster.gpu.name = "H100-SXM-80GB";
  s.cluster.gpu.hbm_capacity = Bytes::GiB(80);
  s.cluster.gpus = 2;
  s.cluster.gpus_per_node = 8;
  s.parallel.pp = 2;
  s.parallel.dp = 1;
  s.parallel.zero = 1;
  s.parallel.recompute = Recompute::kSelective;
  s.parallel.sequence_parallel = true;

  p.fast = false;
  p.gpus = 2;
  p.simulated_ranks = 2;
  p.step_time = Time::us(1000);
  p.tokens_per_step = 16 * 2048;
  p.tokens_per_s = 32768.0 / 1e-3;
  p.tokens_per_s_per_gpu = p.tokens_per_s / 2;
  p.model_tflops_per_gpu = 412.26;
  p.hardware_tflops_per_gpu = 450.5;
  p.peak_tflops = 989.0;
  p.mfu = 412.26 / 989.0;
  p.hfu = 450.5 / 989.0;
  p.critical_rank = 1;
  auto set = [&](Bucket b, int64_t us) { p.breakdown[static_cast<size_t>(b)] = Time::us(us); };
  set(Bucket::kCompute, 700);
  set(Bucket::kOptimizer, 30);
  set(Bucket::kDpExposed, 20);
  set(Bucket::kPpExposed, 50);
  set(Bucket::kBubble, 200);        // 700 + 30 + 20 + 50 + 200 = 1000 = step
  p.comm_total = Time::us(120);
  p.comm_exposed = Time::us(70);
  p.comm_hidden_share = 1.0 - 70.0 / 120.0;

  MemoryReport m0;
  m0.rank = 0;
  m0.stage = 0;
  m0.params = gib_frac(8.0);
  m0.grads = gib_frac(16.0);
  m0.optimizer = gib_frac(6.0);
  m0.activations = gib_frac(30.6);
  m0.workspace = Bytes{1536LL << 20};
  m0.capacity = Bytes::GiB(80);
  MemoryReport m1 = m0;
  m1.rank = 1;
  m1.stage = 1;
  m1.activations = gib_frac(20.0);
  p.memory_per_stage = {m0, m1};
  p.peak_memory = m0;   // 8 + 16 + 6 + 30.6 + 1.5 = 62.1 GiB

  SourceRow gemm;
  gemm.what = "gemm";
  gemm.source = CostSource::kInterpolated;
  gemm.distinct_ops = 1;
  gemm.time_on_critical_rank = Time::us(100);
  gemm.detail = "calibration table h100 (3 points)";
  SourceRow allreduce;
  allreduce.what = "all-reduce(dp)";
  allreduce.source = CostSource::kDefault;
  allreduce.distinct_ops = 1;
  allreduce.time_on_critical_rank = Time::us(50);
  allreduce.detail = "alpha-beta, default bus bandwidth";
  p.sources = {gemm, allreduce};
  p.events = 1234;
  p.fingerprint = 0x00c0ffee12345678ULL;

  p.plan = two_rank_plan();
  // One record per task of each rank: compute t0 [0,100), send [100,120), allreduce
  // [150,200), optimizer [900,930) on rank 0; shifted by 100 us on rank 1.
  for (uint32_t rank = 0; rank < 2; ++rank) {
    const int64_t off = rank * 100;
    p.trace.push_back({rank, 0, Time::us(off + 0), Time::us(off + 100)});
    p.trace.push_back({rank, 1, Time::us(off + 100), Time::us(off + 120)});
    p.trace.push_back({rank, 2, Time::us(off + 150), Time::us(off + 200)});
    p.trace.push_back({rank, 3, Time::ps(off * 1'000'000 + 900'000'123), Time::us(off + 930)});
  }
  return p;
}

// two_rank_prediction's run of 1,000,000 steps (1,000 s) with a failures section: one
// interruption per GPU-hour (the job's MTBF 1800 s on its 2 GPUs), 9 s checkpoint writes
// (Young's interval sqrt(2 x 9 x 1800) = 180 s) and 60 s restarts.
inline FailureSpec& with_failures(Prediction& p) {
  p.scenario.training.train_tokens = 32'768 * int64_t{1'000'000};
  FailureSpec& f = p.scenario.training.failures;
  f.present = true;
  f.per_gpu_hour = 1.0;
  f.rate_default = false;
  f.checkpoint_write_s = 9;
  f.restart_s = 60;
  return f;
}

}  // namespace trainsim::testing
