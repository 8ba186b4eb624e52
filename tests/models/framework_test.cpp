// training.framework (models/spec.h Framework): the kernels a PyTorch loop adds to the fused plan
// (autocast weight casts, weight-gradient casts and accumulation, PyTorch's cross-entropy over
// fp32 logits) and the eager byte counts of the block's memory-bound ops, in closed form; the
// loss's memory transient; "fused" leaves the plan as it was.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "models/compiler.h"
#include "models/memory.h"
#include "calibrate/cost_model.h"
#include "scenarios/predict.h"
#include "sim/replay.h"
#include "tests/models/model_fixtures.h"
#include "tests/models/moe_fixtures.h"

namespace trainsim {
namespace {

using testing::small_gpt;

// A small Llama-style model: RMSNorm, SwiGLU, GQA (4 kv heads of 64).
ModelSpec small_llama(int layers) {
  ModelSpec m = small_gpt(layers);
  m.name = "llama-small-test";
  m.kv_heads = 4;
  m.ffn_hidden = 2816;
  m.activation = Activation::kSwiglu;
  m.norm = NormKind::kRMSNorm;
  return m;
}

Scenario fw_scenario(const ModelSpec& m, Framework fw, int micro_batches, int zero = 0, int dp = 1) {
  Scenario s = testing::moe_scenario(m, 1, 1, dp, 1, micro_batches);
  s.training.framework = fw;
  s.parallel.zero = zero;
  return s;
}

// Summed bytes of the compute tasks of op `name` in program 0, and their count; by micro-batch.
struct OpSum {
  int64_t bytes = 0;
  int tasks = 0;
  std::map<int, int64_t> by_micro;
};
OpSum sum_op(const Plan& p, const std::string& name) {
  OpSum s;
  for (const Task& t : p.programs[0].tasks) {
    if (t.kind != TaskKind::kCompute || p.ops[t.op].name != name) continue;
    s.bytes += p.ops[t.op].bytes.count();
    s.by_micro[t.micro] += p.ops[t.op].bytes.count();
    ++s.tasks;
  }
  return s;
}
int64_t op_bytes(const Plan& p, const std::string& name) {
  for (const OpDesc& o : p.ops)
    if (o.name == name) return o.bytes.count();
  return -1;
}

// torch_compile on one GPU (zero 0), L layers, m micro-batches of T tokens, P parameters a layer
// (bf16 bytes 2P), head weight h x V:
//  - the step's first forward casts every layer's weights (6P) and the head's (6hV); autocast's
//    cache serves the later micro-batches;
//  - each backward casts the weight gradients (6P, 6hV) and, from the second micro-batch on, adds
//    them to the fp32 .grad (12 B a parameter more);
//  - the loss casts the logits to fp32 (6 B a logit), fills nll_loss's dense gradient (4) and
//    casts the gradient back to bf16 (6).
TEST(Framework, TorchCompileAddsTheAutocastCastsAndTheTorchLoss) {
  const int L = 3, m = 2;
  const ModelSpec model = small_gpt(L);
  const int64_t P = layer_params_local(model, 0, 1), h = model.hidden, V = model.vocab, T = 1024;
  CompiledPlan c = testing::compile_checked(fw_scenario(model, Framework::kTorchCompile, m));
  const Plan& p = c.plan;
  const OpSum wc = sum_op(p, "layer.autocast.cast.fwd");
  EXPECT_EQ(wc.tasks, L);
  EXPECT_EQ(wc.bytes, int64_t{L} * 6 * P);
  EXPECT_EQ(wc.by_micro.count(1), 0u);
  const OpSum gc = sum_op(p, "layer.autocast.gradcast.bwd");
  EXPECT_EQ(gc.tasks, L * m);
  EXPECT_EQ(gc.by_micro.at(0), int64_t{L} * 6 * P);
  EXPECT_EQ(gc.by_micro.at(1), int64_t{L} * 18 * P);
  EXPECT_EQ(sum_op(p, "head.autocast.cast.fwd").bytes, 6 * h * V);
  EXPECT_EQ(sum_op(p, "head.autocast.gradcast.bwd").bytes, 6 * h * V + 18 * h * V);
  EXPECT_EQ(op_bytes(p, "loss.torch.cast.fwd"), 6 * T * V);
  EXPECT_EQ(op_bytes(p, "loss.torch.nllgrad.bwd"), 4 * T * V);
  EXPECT_EQ(op_bytes(p, "loss.torch.cast.bwd"), 6 * T * V);
  // Compiled blocks keep the fused byte counts.
  EXPECT_EQ(op_bytes(p, "attn.norm.fwd"), 4 * T * h);
  EXPECT_EQ(op_bytes(p, "attn.norm.bwd"), 6 * T * h);
  EXPECT_EQ(op_bytes(p, "attn.out.copy.fwd"), -1);

  // FSDP (zero 3) casts shards, not the whole weights; the gradients are still cast each time.
  CompiledPlan z = testing::compile_checked(fw_scenario(model, Framework::kTorchCompile, m, 3, 2));
  EXPECT_EQ(sum_op(z.plan, "layer.autocast.cast.fwd").tasks, 0);
  EXPECT_EQ(sum_op(z.plan, "head.autocast.cast.fwd").tasks, 0);
  EXPECT_EQ(sum_op(z.plan, "layer.autocast.gradcast.bwd").bytes, int64_t{L} * m * 6 * P);

  // The fused framework adds none of them.
  CompiledPlan f = testing::compile_checked(fw_scenario(model, Framework::kFused, m));
  for (const char* n : {"layer.autocast.cast.fwd", "layer.autocast.gradcast.bwd", "head.autocast.cast.fwd",
                        "loss.torch.cast.fwd", "loss.torch.nllgrad.bwd", "loss.torch.cast.bwd"})
    EXPECT_EQ(op_bytes(f.plan, n), -1) << n;
  // Casts: L layers' and the head's once, their gradients' every micro-batch; the loss's 3 a micro-batch.
  EXPECT_EQ(f.plan.programs[0].tasks.size() + static_cast<size_t>(L + L * m + 1 + m + 3 * m),
            p.programs[0].tasks.size());
  // A recomputed forward casts again (activation checkpointing re-enters autocast).
  Scenario sr = fw_scenario(model, Framework::kTorchCompile, m);
  sr.parallel.recompute = Recompute::kFull;
  CompiledPlan r = testing::compile_checked(sr);
  EXPECT_EQ(sum_op(r.plan, "layer.autocast.cast.fwd").tasks, L + L * m);
}

// PyTorch's cross-entropy holds two fp32 gradients of the logits beside the saved
// log-probabilities during its backward: 8 B a logit allocated by the nll gradient's fill and
// released by the cast back to bf16; the replayed peak grows by that much where the loss sets it.
TEST(Framework, TorchLossTransientIsEightBytesALogit) {
  const ModelSpec model = small_gpt(1);
  const int64_t T = 4096, V = model.vocab;
  Scenario s = fw_scenario(model, Framework::kTorchCompile, 1);
  s.training.seq_len = static_cast<int>(T);
  CompiledPlan c = testing::compile_checked(s);
  int64_t alloc = 0, freed = 0;
  for (const Task& t : c.plan.programs[0].tasks) {
    const std::string& n = c.plan.ops[t.op].name;
    if (n == "loss.torch.nllgrad.bwd") alloc += t.mem_alloc;
    if (n == "loss.torch.cast.bwd") freed += t.mem_free;
  }
  EXPECT_EQ(alloc, 8 * T * V);
  EXPECT_EQ(freed, 8 * T * V);
  // Replayed with and without the transient. With it the loss's backward sets the peak; without
  // it the peak comes a little later, when the head's fp32 gradient (4 B x h x V, the step's
  // first backward) is allocated while the logits are still held: the peaks differ by
  // 8 T V - 4 h V.
  const int64_t h = model.hidden;
  auto cm = make_default_cost_model(s.cluster);
  ASSERT_TRUE(cm.ok()) << cm.status().to_string();
  ASSERT_TRUE(bind_costs(c.plan, *cm.value(), s.cluster.gpus_per_node, nullptr).ok());
  auto peak = [&](const Plan& p) {
    auto r = replay(p, ReplayOptions{});
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r->ranks.at(0).peak_dynamic_mem : 0;
  };
  const int64_t with = peak(c.plan);
  for (Task& t : c.plan.programs[0].tasks) {
    const std::string& n = c.plan.ops[t.op].name;
    if (n == "loss.torch.nllgrad.bwd") t.mem_alloc -= 8 * T * V;
    if (n == "loss.torch.cast.bwd") t.mem_free -= 8 * T * V;
  }
  EXPECT_EQ(with - peak(c.plan), 8 * T * V - 4 * h * V);
}

// With whole fp32 parameters (zero 0) PyTorch allocates each gradient during the step's first
// backward (4 B a parameter: the layers', the head's and the untied embedding's), and autocast's
// cache keeps the step's bf16 weight copies (2 B a parameter) until the layer's last backward.
// With short sequences the peak is the end of the backward: every gradient allocated, every
// copy released, and the report's grads are exactly the parameters' fp32 bytes.
TEST(Framework, TorchWholeParametersAllocateGradientsInTheBackward) {
  const int L = 3;
  const ModelSpec model = small_gpt(L);
  const int64_t P = layer_params_local(model, 0, 1), h = model.hidden, V = model.vocab;
  Scenario s = fw_scenario(model, Framework::kTorchCompile, 2);
  s.training.seq_len = 128;
  CompiledPlan c = testing::compile_checked(s);
  int64_t grads = 0, head_copies = 0, released = 0;
  for (const Task& t : c.plan.programs[0].tasks) {
    const std::string& n = c.plan.ops[t.op].name;
    if (t.mem_grads) grads += t.mem_alloc;
    if (n == "head.autocast.cast.fwd") head_copies += t.mem_alloc;   // (a layer's cast also takes its activations)
    if (n == "layer.autocast.gradcast.bwd" || n == "head.autocast.gradcast.bwd") released += t.mem_free;
  }
  EXPECT_EQ(grads, 4 * (L * P + 2 * h * V));
  EXPECT_EQ(head_copies, 2 * h * V);                     // one copy for the step's two micro-batches
  EXPECT_EQ(released, 2 * (L * P + h * V));
  auto r = predict(s, PredictOptions{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const int64_t all = total_params(model);
  EXPECT_EQ(r->peak_memory.params.count(), 4 * all);
  EXPECT_EQ(r->peak_memory.optimizer.count(), 8 * all);
  EXPECT_EQ(r->peak_memory.grads.count(), 4 * (L * P + 2 * h * V));
  // The fused plan counts its gradients as static, in fp32, for every parameter.
  auto f = predict(fw_scenario(model, Framework::kFused, 2), PredictOptions{});
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->peak_memory.grads.count(), 4 * all);
}

// Schedules that defer the weight gradients (ZB-V's W steps) cast each layer's gradients when
// its W runs, after the weight-gradient GEMMs (they do not exist before), not at the end of its
// B: on every stage, each gradient cast follows a weight-gradient GEMM of the same layer and
// micro-batch, and there is one per (layer, micro-batch).
TEST(Framework, DeferredWeightGradientsAreCastAtTheirW) {
  Scenario s = testing::moe_scenario(small_gpt(8), 1, 2, 1, 1, 4, 1024);
  s.parallel.schedule = Schedule::kZBV;
  s.parallel.vp = 2;
  s.training.framework = Framework::kTorchCompile;
  CompiledPlan c = testing::compile_checked(s);
  for (const Program& prog : c.plan.programs) {
    int casts = 0;
    for (size_t i = 0; i < prog.tasks.size(); ++i) {
      const Task& t = prog.tasks[i];
      if (c.plan.ops[t.op].name != "layer.autocast.gradcast.bwd") continue;
      ++casts;
      ASSERT_GT(i, 0u);
      size_t j = i - 1;   // the compute task before it on its stream
      while (j > 0 && (prog.tasks[j].kind != TaskKind::kCompute || prog.tasks[j].stream != t.stream)) --j;
      const Task& p = prog.tasks[j];
      EXPECT_NE(c.plan.ops[p.op].name.find(".wgrad"), std::string::npos) << prog.name << " task " << i;
      EXPECT_EQ(p.layer, t.layer) << prog.name << " task " << i;
      EXPECT_EQ(p.micro, t.micro) << prog.name << " task " << i;
    }
    EXPECT_EQ(casts, 4 * 4) << prog.name;   // 4 layers a stage (2 chunks of 2), 4 micro-batches
  }
}

// torch_eager: per element of the tensor each op works on (T tokens, hidden h, ffn f, q and kv
// widths): RMSNorm 44 forward / 98 backward with fp32 parameters under autocast, 36 / 76 with
// FSDP's bf16 ones (LayerNorm 4 / 10), RoPE 20 / 30, SwiGLU 10 / 26 per
// ffn element (GELU 4 / 6), the residual's backward 6; the attention output's copy (4 B an
// element of T x q) both ways and the cat of dQ, dK, dV (4 B an element of T x (q + 2 kv)).
TEST(Framework, EagerPricesEachElementwiseOpAsAKernel) {
  const int64_t T = 1024;
  {
    const ModelSpec m = small_llama(2);
    const int64_t h = m.hidden, f = m.ffn_hidden, q = int64_t{m.heads} * m.head_dim, kv = int64_t{m.kv_heads} * m.head_dim;
    CompiledPlan e = testing::compile_checked(fw_scenario(m, Framework::kTorchEager, 1));
    CompiledPlan c = testing::compile_checked(fw_scenario(m, Framework::kTorchCompile, 1));
    const Plan& p = e.plan;
    EXPECT_EQ(op_bytes(p, "attn.norm.fwd"), 44 * T * h);
    EXPECT_EQ(op_bytes(p, "attn.norm.bwd"), 98 * T * h);
    EXPECT_EQ(op_bytes(p, "attn.rope.fwd"), 20 * T * (q + kv));
    EXPECT_EQ(op_bytes(p, "attn.rope.bwd"), 30 * T * (q + kv));
    EXPECT_EQ(op_bytes(p, "mlp.swiglu.fwd"), 10 * T * f);
    EXPECT_EQ(op_bytes(p, "mlp.swiglu.bwd"), 26 * T * f);
    EXPECT_EQ(op_bytes(p, "attn.residual.bwd"), 6 * T * h);
    EXPECT_EQ(op_bytes(p, "attn.out.copy.fwd"), 4 * T * q);
    EXPECT_EQ(op_bytes(p, "attn.out.copy.bwd"), 4 * T * q);
    EXPECT_EQ(op_bytes(p, "attn.qkv.cat.bwd"), 4 * T * (q + 2 * kv));
    // The same loop compiled: the fused counts.
    EXPECT_EQ(op_bytes(c.plan, "attn.norm.fwd"), 4 * T * h);
    EXPECT_EQ(op_bytes(c.plan, "attn.rope.bwd"), 4 * T * (q + kv));
    EXPECT_EQ(op_bytes(c.plan, "mlp.swiglu.bwd"), 10 * T * f);
    EXPECT_EQ(op_bytes(c.plan, "attn.residual.bwd"), 4 * T * h);
    // Both keep the casts and the loss; eager adds three kernels a layer.
    EXPECT_EQ(e.plan.programs[0].tasks.size(), c.plan.programs[0].tasks.size() + 3 * 2);
    // And keeps more for the backward: the norms' fp32 input and product (6 B an element, two
    // norms), RoPE's rotate_half (2 B an element of Q and K), the SiLU output (2 B an ffn element).
    auto allocated = [](const Plan& pl) {
      int64_t a = 0;
      for (const Task& k : pl.programs[0].tasks) a += k.mem_alloc;
      return a;
    };
    EXPECT_EQ(allocated(e.plan) - allocated(c.plan), 2 * (2 * 6 * T * h + 2 * T * (q + kv) + 2 * T * f));
    // Under FSDP the weights are bf16: the norm's product with them stays bf16 and the next
    // linear needs no cast (36 / 76).
    CompiledPlan z = testing::compile_checked(fw_scenario(m, Framework::kTorchEager, 1, 3, 2));
    EXPECT_EQ(op_bytes(z.plan, "attn.norm.fwd"), 36 * T * h);
    EXPECT_EQ(op_bytes(z.plan, "attn.norm.bwd"), 76 * T * h);
  }
  {
    const ModelSpec m = small_gpt(2);
    CompiledPlan e = testing::compile_checked(fw_scenario(m, Framework::kTorchEager, 1));
    EXPECT_EQ(op_bytes(e.plan, "attn.norm.fwd"), 4 * T * m.hidden);
    EXPECT_EQ(op_bytes(e.plan, "attn.norm.bwd"), 10 * T * m.hidden);
    EXPECT_EQ(op_bytes(e.plan, "mlp.gelu.fwd"), 4 * T * m.ffn_hidden);
    EXPECT_EQ(op_bytes(e.plan, "mlp.gelu.bwd"), 6 * T * m.ffn_hidden);
  }
}

// The step grows with the framework: fused < torch_compile < torch_eager on the same model.
TEST(Framework, StepGrowsFromFusedToCompiledToEager) {
  const ModelSpec m = small_llama(2);
  double prev = 0;
  for (Framework fw : {Framework::kFused, Framework::kTorchCompile, Framework::kTorchEager}) {
    auto r = predict(fw_scenario(m, fw, 2), PredictOptions{});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    const double step = r->step_time.seconds();
    EXPECT_GT(step, prev) << to_string(fw);
    prev = step;
  }
}

}  // namespace
}  // namespace trainsim
