#include "scenarios/sweep.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <type_traits>
#include <set>
#include <thread>
#include <mutex>

#include <nlohmann/json.hpp>

#include "models/name_table.h"
#include "scenarios/loader.h"
#include "scenarios/verify.h"
#include "sim/text.h"

namespace trainsim {

namespace {

// split_values("1,2,[8,8],\"a,b\"", ',') -> {"1", "2", "[8,8]", "\"a,b\""}: `sep` splits only
// outside brackets, braces and quotes.
std::vector<std::string> split_values(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted) {
      if (c == '\\' && i + 1 < s.size()) {
        cur += c;
        cur += s[++i];
        continue;
      }
      if (c == '"') quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    } else if (c == sep && depth == 0) {
      out.push_back(cur);
      cur.clear();
      continue;
    }
    cur += c;
  }
  out.push_back(cur);
  return out;
}

// The key of an override "KEY=VALUE".
std::string override_key(const std::string& ov) {
  const size_t eq = ov.find('=');
  return trim(eq == std::string::npos ? ov : ov.substr(0, eq));
}

// The error text of a point: one line per error, without the trailing newline.
std::string message(const Status& st) {
  std::string m = st.to_string();
  while (!m.empty() && m.back() == '\n') m.pop_back();
  return m;
}

// The candidate values of `--vary KEY=auto`, from the base scenario; *rule says how they were
// chosen, and is left empty when the key has no auto rule.
std::vector<std::string> auto_values(const std::string& key, const Scenario& s, std::string* rule) {
  std::vector<std::string> out;
  auto add = [&](int64_t v) { out.push_back(std::to_string(v)); };
  const int64_t gpus = s.cluster.gpus;
  if (key == "parallel.tp") {
    *rule = "powers of two up to gpus_per_node that divide the GPUs, heads and kv_heads";
    for (int64_t p = 1; p <= s.cluster.gpus_per_node && p <= gpus; p *= 2)
      if (gpus % p == 0 && s.model.heads % p == 0 && s.model.kv_heads % p == 0) add(p);
  } else if (key == "parallel.pp") {
    *rule = "divisors of the GPUs up to the layers (and 128)";
    for (int64_t d = 1; d <= gpus && d <= s.model.layers && d <= 128; ++d)
      if (gpus % d == 0) add(d);
  } else if (key == "parallel.cp") {
    *rule = "powers of two that divide the GPUs and half the sequence";
    for (int64_t p = 1; p <= gpus; p *= 2)
      if (gpus % p == 0 && s.training.seq_len % (2 * p) == 0) add(p);
  } else if (key == "parallel.ep") {
    *rule = "divisors of the experts that divide the GPUs (1 for dense models)";
    for (int64_t d = 1; d <= std::max(1, s.model.experts) && d <= gpus; ++d)
      if (gpus % d == 0 && (s.model.experts == 0 ? d == 1 : s.model.experts % d == 0)) add(d);
  } else if (key == "training.micro_batch") {
    *rule = "divisors of the global batch up to 16";
    for (int64_t d = 1; d <= 16 && d <= s.training.global_batch; ++d)
      if (s.training.global_batch % d == 0) add(d);
  } else if (key == "parallel.zero") {
    *rule = "0 to 3";
    for (int z = 0; z <= 3; ++z) add(z);
  } else if (key == "parallel.recompute") {
    *rule = "every mode";
    out = {"none", "selective", "full"};
  } else if (key == "parallel.recompute_layers") {
    *rule = "0 (every layer) and 1 to one fewer than a chunk's layers (layers / (pp*vp), rounded up)";
    const int64_t chunks = static_cast<int64_t>(s.parallel.pp) * s.parallel.vp;
    const int64_t per_chunk = (s.model.layers + chunks - 1) / chunks;
    for (int64_t n = 0; n < per_chunk; ++n) add(n);
  } else if (key == "parallel.schedule") {
    *rule = "every schedule";
    for (Schedule k : {Schedule::kGpipe, Schedule::k1F1B, Schedule::kInterleaved, Schedule::kDualPipeV, Schedule::kZBV,
                       Schedule::kDualPipe})
      out.push_back(to_string(k));
  } else if (key == "training.attention_kernel") {
    *rule = "every kernel";
    out = {"flash", "cudnn", "unfused"};
  } else if (key == "training.framework") {
    *rule = "every framework";
    for (Framework f : {Framework::kFused, Framework::kTorchCompile, Framework::kTorchEager}) out.push_back(to_string(f));
  } else if (key == "training.fp8_recipe") {
    *rule = "every recipe (fp8 runs)";
    for (Fp8Recipe r : {Fp8Recipe::kCurrent, Fp8Recipe::kDelayed, Fp8Recipe::kBlockwise}) out.push_back(to_string(r));
  } else if (key == "parallel.sequence_parallel" || key == "parallel.dp_overlap" || key == "parallel.ep_overlap" ||
             key == "parallel.tp_overlap" || key == "parallel.zero3_reshard" || key == "training.fp8_cache_inputs") {
    *rule = "both";
    out = {"false", "true"};
  } else {
    rule->clear();
  }
  return out;
}

// Loads point `p` (the base document with `overrides`) and predicts it: figures, or the
// loader's or simulator's error.
void predict_point(const nlohmann::json& base, const std::string& label, const std::vector<std::string>& overrides,
                   const SweepOptions& opts, SweepPoint* p) {
  auto sc = load_scenario_json(base, label, overrides);
  if (!sc.ok()) {
    p->error = message(sc.status());
    return;
  }
  if (!opts.calibration.empty()) sc.value().options.calibration = opts.calibration;
  p->dp = sc.value().parallel.dp;
  p->costs = sc.value().options.calibration.empty() ? "embedded default" : sc.value().options.calibration;
  PredictOptions po;
  po.fast = opts.fast;
  auto pr = predict(sc.value(), po);
  if (!pr.ok()) {
    p->error = message(pr.status());
    return;
  }
  const Prediction& q = pr.value();
  auto b = [&](Bucket k) { return q.breakdown[static_cast<size_t>(k)].seconds(); };
  p->ok = true;
  p->step_s = q.step_time.seconds();
  p->tokens_per_s = q.tokens_per_s;
  p->tokens_per_s_per_gpu = q.tokens_per_s_per_gpu;
  p->mfu = q.mfu;
  p->hfu = q.hfu;
  p->compute_s = b(Bucket::kCompute) + b(Bucket::kRecompute) + b(Bucket::kOptimizer);
  p->exposed_comm_s = b(Bucket::kTpExposed) + b(Bucket::kDpExposed) + b(Bucket::kPpExposed) +
                      b(Bucket::kCpExposed) + b(Bucket::kEpExposed) + b(Bucket::kOffloadExposed);
  p->bubble_s = b(Bucket::kBubble);
  p->peak_memory_gib = q.peak_memory.total().gib();
  p->capacity_gib = q.peak_memory.capacity.gib();
  p->peak_rank = q.peak_memory.rank;
  p->oom = q.peak_memory.oom();
  p->fingerprint = q.fingerprint;
  p->train_s = time_to_train(q).train_s();
  p->speed = q.gpu_speed.present;
  p->speed_cost_s = q.gpu_speed.cost.seconds();
}

// A scenario's value of an auto key, written as the candidates are ("8", "true", "interleaved");
// "" for a key without one.
std::string scenario_value(const Scenario& s, const std::string& key) {
  const ParallelSpec& p = s.parallel;
  if (key == "parallel.tp") return std::to_string(p.tp);
  if (key == "parallel.pp") return std::to_string(p.pp);
  if (key == "parallel.vp") return std::to_string(p.vp);
  if (key == "parallel.cp") return std::to_string(p.cp);
  if (key == "parallel.ep") return std::to_string(p.ep);
  if (key == "parallel.zero") return std::to_string(p.zero);
  if (key == "parallel.recompute_layers") return std::to_string(p.recompute_layers);
  if (key == "training.micro_batch") return std::to_string(s.training.micro_batch);
  if (key == "parallel.recompute") return to_string(p.recompute);
  if (key == "parallel.schedule") return to_string(p.schedule);
  if (key == "parallel.sequence_parallel") return p.sequence_parallel ? "true" : "false";
  if (key == "parallel.dp_overlap") return p.dp_overlap ? "true" : "false";
  if (key == "parallel.ep_overlap") return p.ep_overlap ? "true" : "false";
  if (key == "parallel.tp_overlap") return p.tp_overlap ? "true" : "false";
  if (key == "parallel.zero3_reshard") return p.zero3_reshard ? "true" : "false";
  if (key == "training.attention_kernel") return to_string(s.training.attention_kernel);
  if (key == "training.framework") return to_string(s.training.framework);
  return "";
}

// The keys a joint auto axis ("K1+K2+...=auto") may tie.
constexpr const char* kJointKeys[] = {"parallel.tp",          "parallel.pp",
                                      "parallel.vp",          "parallel.cp",
                                      "parallel.ep",          "training.micro_batch",
                                      "parallel.sequence_parallel", "parallel.zero",
                                      "parallel.recompute"};

// The tuples of a joint auto axis: every combination of the keys' candidates that the GPU count,
// the global batch and the loader accept together (the layouts a strategy search tries).
// `keys` may gain parallel.schedule (vp varies: "interleaved" where vp > 1). On return *rule
// says how the tuples were chosen; an error names what cannot be searched.
Result<std::vector<std::vector<std::string>>> joint_auto_values(std::vector<std::string>* keys, const Scenario& s,
                                                                const nlohmann::json& base, const std::string& label,
                                                                const std::vector<std::string>& overrides,
                                                                std::string* rule) {
  const std::string axis = [&] {
    std::string t;
    for (const auto& k : *keys) t += (t.empty() ? "" : "+") + k;
    return t + "=auto";
  }();
  auto has = [&](const char* k) { return std::find(keys->begin(), keys->end(), k) != keys->end(); };
  std::set<std::string> seen;
  for (const auto& k : *keys) {
    if (!seen.insert(k).second)
      return Status::error(Error{"--vary", "", axis, "\"" + k + "\" appears twice in the joint axis"});
    if (std::find(std::begin(kJointKeys), std::end(kJointKeys), k) == std::end(kJointKeys)) {
      std::string list;
      for (const char* j : kJointKeys) list += (list.empty() ? "" : ", ") + std::string(j);
      return Status::error(Error{"--vary", "", axis, "\"" + k + "\" cannot be searched jointly; a joint auto axis ties " + list});
    }
  }
  if (has("parallel.vp")) {
    if (two_chunk_schedule(s.parallel.schedule))
      return Status::error(Error{"--vary", "", axis,
                                 std::string("schedule \"") + to_string(s.parallel.schedule) +
                                     "\" runs two chunks per pipeline rank (vp is 2); leave parallel.vp out, or "
                                     "--set parallel.schedule=1f1b"});
    if (!has("parallel.schedule")) keys->push_back("parallel.schedule");
  }
  const int64_t gpus = s.cluster.gpus, layers = s.model.layers, global = s.training.global_batch;
  // Each key's candidates; those of vp and micro_batch are filtered per tuple below.
  std::vector<std::vector<std::string>> cand;
  std::string tmp;
  for (const auto& k : *keys) {
    std::vector<std::string> c;
    if (k == "parallel.vp") {
      for (int v = 1; v <= 16; ++v) c.push_back(std::to_string(v));
    } else if (k == "training.micro_batch") {
      for (int v = 1; v <= 16; ++v) c.push_back(std::to_string(v));
    } else if (k == "parallel.schedule") {
      const Schedule one = s.parallel.schedule == Schedule::kGpipe ? Schedule::kGpipe : Schedule::k1F1B;
      c = {to_string(one), to_string(Schedule::kInterleaved)};
    } else {
      c = auto_values(k, s, &tmp);
    }
    if (c.empty()) return Status::error(Error{"--vary", "", axis, "\"" + k + "\" has no candidate in this scenario"});
    cand.push_back(std::move(c));
  }
  auto at = [&](const std::vector<size_t>& idx, const char* k, int64_t dflt) -> int64_t {
    for (size_t i = 0; i < keys->size(); ++i)
      if ((*keys)[i] == k) return std::stoll(cand[i][idx[i]]);
    return dflt;
  };
  auto text = [&](const std::vector<size_t>& idx, const char* k, const std::string& dflt) -> std::string {
    for (size_t i = 0; i < keys->size(); ++i)
      if ((*keys)[i] == k) return cand[i][idx[i]];
    return dflt;
  };
  const bool dp_fixed = [&] {   // the document as the points load it names dp (an override may remove it)
    const Result<nlohmann::json> doc = apply_scenario_overrides(base, overrides);
    return doc.ok() && doc.value().is_object() && doc.value().contains("parallel") &&
           doc.value()["parallel"].is_object() && doc.value()["parallel"].contains("dp");
  }();
  std::vector<std::vector<std::string>> out;
  size_t tuples = 0, refused = 0;
  std::string first_refusal;
  std::vector<size_t> idx(keys->size(), 0);
  constexpr size_t kMaxTuples = 2000000;
  while (true) {
    if (++tuples > kMaxTuples)
      return Status::error(Error{"--vary", "", axis,
                                 "more than " + std::to_string(kMaxTuples) + " combinations to try; fix some of these "
                                 "keys with --set, or search fewer jointly"});
    const int64_t tp = at(idx, "parallel.tp", s.parallel.tp), pp = at(idx, "parallel.pp", s.parallel.pp),
                  cp = at(idx, "parallel.cp", s.parallel.cp), vp = at(idx, "parallel.vp", s.parallel.vp),
                  mb = at(idx, "training.micro_batch", s.training.micro_batch);
    // dp: the file's (or a --set's), else the GPUs over tp*pp*cp.
    bool ok = dp_fixed ? static_cast<int64_t>(s.parallel.dp) * tp * pp * cp == gpus : gpus % (tp * pp * cp) == 0;
    const int64_t dp = !ok ? 0 : dp_fixed ? s.parallel.dp : gpus / (tp * pp * cp);
    if (ok) ok = global % (dp * mb) == 0;
    if (ok && has("parallel.vp")) {
      const bool inter = text(idx, "parallel.schedule", "") == to_string(Schedule::kInterleaved);
      ok = inter == (vp > 1) && (vp == 1 || (pp >= 2 && layers % (pp * vp) == 0 && (global / (dp * mb)) % pp == 0));
    }
    if (ok && text(idx, "parallel.sequence_parallel", "false") == "true") ok = tp > 1;
    if (ok && has("parallel.zero") && at(idx, "parallel.zero", 0) > 0) ok = dp > 1;
    if (ok) {
      std::vector<std::string> tuple, ovs = overrides;
      for (size_t i = 0; i < keys->size(); ++i) {
        tuple.push_back(cand[i][idx[i]]);
        ovs.push_back((*keys)[i] + "=" + cand[i][idx[i]]);
      }
      auto sc = load_scenario_json(base, label, ovs);
      if (sc.ok()) {
        out.push_back(std::move(tuple));
      } else {
        if (refused++ == 0) first_refusal = message(sc.status());
      }
    }
    size_t a = keys->size();
    while (a-- > 0) {   // odometer, last key fastest
      if (++idx[a] < cand[a].size()) break;
      idx[a] = 0;
    }
    if (a == static_cast<size_t>(-1)) break;
  }
  {   // the rules of the keys searched
    std::vector<std::string> parts;
    if (has("parallel.tp") || has("parallel.pp") || has("parallel.cp")) parts.push_back("tp*pp*cp divides the GPUs");
    if (has("training.micro_batch") || has("parallel.tp") || has("parallel.pp") || has("parallel.cp"))
      parts.push_back(has("training.micro_batch") ? "dp*micro_batch divides the global batch (micro_batch up to 16)"
                                                  : "dp*micro_batch divides the global batch");
    if (has("parallel.vp"))
      parts.push_back("vp > 1 (up to 16) only interleaved, with pp >= 2, the layers divisible by pp*vp and the "
                      "micro-batches by pp");
    if (has("parallel.sequence_parallel")) parts.push_back("sequence_parallel only with tp > 1");
    if (has("parallel.zero")) parts.push_back("zero > 0 only with dp > 1");
    *rule = "the combinations that fit together";
    for (size_t i = 0; i < parts.size(); ++i) *rule += (i ? ", " : ": ") + parts[i];
  }
  if (refused) {
    std::string first = first_refusal.substr(0, first_refusal.find('\n'));
    if (first.rfind("error: ", 0) == 0) first = first.substr(7);
    *rule += "; " + std::to_string(refused) + " more the loader refused (the first: " + first + ")";
  }
  if (out.empty())
    return Status::error(Error{"--vary", "", axis, "no combination fits this scenario (" + *rule + ")"});
  return out;
}

constexpr const char* kAutoKeys =
    "parallel.tp, parallel.pp, parallel.cp, parallel.ep, training.micro_batch, parallel.zero, parallel.recompute, "
    "parallel.recompute_layers, "
    "parallel.schedule, training.attention_kernel, training.framework, training.fp8_recipe, parallel.sequence_parallel, parallel.dp_overlap, "
    "parallel.ep_overlap, parallel.tp_overlap, parallel.zero3_reshard, training.fp8_cache_inputs";

}  // namespace

std::vector<std::string> SweepAxis::overrides(size_t v) const {
  std::vector<std::string> out;
  for (size_t k = 0; k < keys.size(); ++k) out.push_back(keys[k] + "=" + parts[v][k]);
  return out;
}

Result<std::vector<SweepAxis>> parse_sweep_axes(const std::vector<std::string>& texts) {
  Status st;
  std::vector<SweepAxis> axes;
  std::set<std::string> seen;
  for (const auto& t : texts) {
    const size_t eq = t.find('=');
    const std::string key = eq == std::string::npos ? "" : trim(t.substr(0, eq));
    if (eq == std::string::npos || key.empty()) {
      st.add(Error{"--vary", "", "\"" + t + "\"",
                   "expected KEY=V1,V2,... with KEY like \"parallel.tp\", e.g. parallel.tp=1,2,4,8"});
      continue;
    }
    SweepAxis a;
    a.key = key;
    for (auto k : split_values(key, '+')) a.keys.push_back(trim(k));
    const bool tied = a.keys.size() > 1;
    bool good = true;
    for (auto v : split_values(t.substr(eq + 1), ',')) {
      v = trim(v);
      std::vector<std::string> parts;
      if (tied && v == "auto") {   // a joint auto axis: run_sweep lays out its tuples
        parts.assign(a.keys.size(), v);
      } else if (tied) {
        for (auto part : split_values(v, '+')) parts.push_back(trim(part));
      } else {
        parts.push_back(v);
      }
      bool empty = false;
      for (const auto& part : parts) empty = empty || part.empty();
      if (v.empty() || (tied && !empty && parts.size() != a.keys.size())) {
        st.add(Error{"--vary", "", "\"" + t + "\"",
                     v.empty() ? "an empty value; write the values separated by commas, e.g. " + a.keys[0] + "=1,2,4"
                               : "\"" + v + "\" has " + std::to_string(parts.size()) + " parts for " +
                                     std::to_string(a.keys.size()) + " tied keys; write one per key joined by '+', "
                                     "e.g. cluster.gpus+training.global_batch=64+512,128+1024"});
        good = false;
        break;
      }
      if (empty) {
        st.add(Error{"--vary", "", "\"" + t + "\"", "\"" + v + "\" has an empty part; every tied key needs a value"});
        good = false;
        break;
      }
      a.values.push_back(v);
      a.parts.push_back(std::move(parts));
    }
    if (!good) continue;
    bool again = false;
    for (const auto& k : a.keys) {
      if (k.empty() || seen.insert(k).second) continue;
      st.add(Error{"--vary", "", "\"" + t + "\"", "\"" + k + "\" is varied twice; give all its values in one --vary"});
      again = true;
    }
    if (again) continue;
    // The keys must be ones a scenario has (the check --set gets).
    Status ks = check_overrides(a.overrides(0));
    if (!ks.ok()) {
      for (Error e : ks.errors()) {
        e.file = "--vary";
        st.add(std::move(e));
      }
      continue;
    }
    axes.push_back(std::move(a));
  }
  if (texts.empty()) st.add(Error{"--vary", "", "", "nothing to vary; give at least one --vary KEY=V1,V2,..."});
  if (!st.ok()) return st;
  return axes;
}

Result<SweepResult> run_sweep(const std::string& path, const std::vector<SweepAxis>& axes,
                              const SweepOptions& opts) {
  Status ov = check_overrides(opts.overrides);
  if (!ov.ok()) return ov;
  if (opts.shards < 1 || opts.shard < 0 || opts.shard >= opts.shards)
    return Status::error(Error{"--shard", "", std::to_string(opts.shard) + "/" + std::to_string(opts.shards),
                               "expected I/N with 0 <= I < N, e.g. 0/4 for the first of four shards"});
  auto doc = read_scenario_document(path);
  if (!doc.ok()) return doc.status();

  SweepResult res;
  res.scenario = sweep_scenario_name(path);
  res.overrides = opts.overrides;
  res.fast = opts.fast;
  res.rank_by = opts.rank_by;
  res.memory_limit = opts.memory_limit;
  if (!(opts.memory_limit > 0 && opts.memory_limit <= 1))
    return Status::error(Error{"--memory-limit", "", std::to_string(opts.memory_limit),
                               "a share of each GPU's memory above 0 and at most 100%, e.g. 90%"});

  // What the axes and the overrides set.
  std::set<std::string> set_keys;
  for (const auto& a : axes) set_keys.insert(a.keys.begin(), a.keys.end());
  for (const auto& o : opts.overrides) set_keys.insert(override_key(o));
  auto varied = [&](std::initializer_list<const char*> keys) {
    for (const char* k : keys)
      for (const auto& a : axes)
        if (std::find(a.keys.begin(), a.keys.end(), k) != a.keys.end()) return true;
    return false;
  };
  nlohmann::json base = std::move(doc).value();
  if (base.is_object() && base.contains("parallel") && base["parallel"].is_object()) {
    auto& par = base["parallel"];
    if (varied({"parallel.tp", "parallel.pp", "parallel.cp", "cluster.gpus"}) && !set_keys.count("parallel.dp") &&
        par.contains("dp")) {
      par.erase("dp");
      res.notes.push_back("parallel.dp is derived in every point (gpus / (tp*pp*cp)) instead of the file's value");
    }
    if (varied({"parallel.pp", "parallel.vp", "parallel.schedule"}) && !set_keys.count("parallel.layers_per_stage") &&
        par.contains("layers_per_stage")) {
      par.erase("layers_per_stage");
      res.notes.push_back("the file's parallel.layers_per_stage is dropped: the layers are split evenly in every point");
    }
  }
  const std::string label = path.empty() ? "<embedded>" : path;

  // KEY=auto: the candidates the base scenario (with the --set overrides) allows.
  // The base scenario as the points start from it: auto's candidates and the given point's values.
  const Result<Scenario> sc = load_scenario_json(base, label, opts.overrides);
  std::vector<SweepAxis> ax = axes;
  for (auto& a : ax) {
    if (a.values.size() != 1 || a.values[0] != "auto") continue;
    if (!sc.ok()) {
      Status st = Status::error(Error{"--vary", "", a.key + "=auto",
                                      "auto takes its candidates from the scenario, which does not load as it is "
                                      "(with the --set overrides); give the values instead, or fix:"});
      st.merge(sc.status());
      return st;
    }
    std::string rule;
    if (a.keys.size() > 1 || a.joint) {   // a joint axis: the tuples the scenario accepts
      auto tuples = joint_auto_values(&a.keys, sc.value(), base, label, opts.overrides, &rule);
      if (!tuples.ok()) return tuples.status();
      a.key.clear();
      for (const auto& k : a.keys) a.key += (a.key.empty() ? "" : "+") + k;
      a.values.clear();
      a.parts = std::move(tuples).value();
      for (const auto& t : a.parts) {
        std::string v;
        for (const auto& x : t) v += (v.empty() ? "" : "+") + x;
        a.values.push_back(v);
      }
      res.notes.push_back(a.key + "=auto: " + std::to_string(a.values.size()) + " combinations (" + rule + ")");
      continue;
    }
    auto vals = auto_values(a.key, sc.value(), &rule);
    if (rule.empty())
      return Status::error(Error{"--vary", "", a.key + "=auto", std::string("auto works for ") + kAutoKeys +
                                                                  "; give the values of this key"});
    if (vals.empty())
      return Status::error(Error{"--vary", "", a.key + "=auto", "no candidate (" + rule + ") fits this scenario"});
    a.values = vals;
    a.parts.clear();
    for (const auto& v : vals) a.parts.push_back({v});
    std::string list;
    for (const auto& v : vals) list += (list.empty() ? "" : ",") + v;
    res.notes.push_back(a.key + "=auto: " + list + " (" + rule + ")");
  }
  res.axes = ax;
  res.shard = opts.shard;
  res.shards = opts.shards;
  {
    // The key: what decides the figures, each part length-prefixed so no two layouts collide.
    std::string k;
    auto part = [&](const std::string& t) { k += std::to_string(t.size()) + ":" + t + ";"; };
    part("trainsim-sweep-1");
    part(base.dump());
    for (const auto& a : ax) {
      for (const auto& key : a.keys) part(key);
      for (const auto& ps : a.parts)
        for (const auto& v : ps) part(v);
      part("/axis");
    }
    for (const auto& o : opts.overrides) part(o);
    part(opts.fast ? "fast" : "full");
    part(opts.calibration);
    res.key = hash_hex(k);
  }

  size_t count = 1;
  for (const auto& a : ax) {
    if (a.values.empty() || a.parts.size() != a.values.size())
      return Status::error(Error{"--vary", "", a.key, "has no values (axes come from parse_sweep_axes)"});
    count *= a.values.size();
    if (count > kMaxSweepPoints) {
      std::string sizes;
      for (const auto& b : ax) sizes += (sizes.empty() ? "" : " x ") + std::to_string(b.values.size());
      return Status::error(Error{"--vary", "", sizes + " points",
                                 "a sweep has at most " + std::to_string(kMaxSweepPoints) +
                                     " points; give fewer values"});
    }
  }

  // The points laid out in product order; the base scenario's own values of the keys (given).
  std::vector<std::string> given_set;
  if (sc.ok())
    for (const auto& a : ax)
      for (const auto& k : a.keys) given_set.push_back(k + "=" + scenario_value(sc.value(), k));
  const std::vector<int> shard_of = sweep_shard_of(count, opts.shards);
  std::vector<size_t> idx(ax.size(), 0);
  std::vector<size_t> to_predict;   // the points this run predicts, in product order
  res.points.reserve(count);
  for (size_t n = 0; n < count; ++n) {
    SweepPoint p;
    for (size_t a = 0; a < ax.size(); ++a) {
      p.values.push_back(ax[a].values[idx[a]]);
      for (auto& o : ax[a].overrides(idx[a])) p.set.push_back(std::move(o));
    }
    if (p.set == given_set) res.given = n;
    p.computed = opts.compute && shard_of[n] == opts.shard;
    if (p.computed && !(opts.reuse && opts.reuse(res.key, n, &p))) to_predict.push_back(n);   // else another shard's
    res.points.push_back(std::move(p));
    for (size_t a = ax.size(); a-- > 0;) {   // odometer, last axis fastest
      if (++idx[a] < ax[a].values.size()) break;
      idx[a] = 0;
    }
  }
  auto predict_one = [&](size_t n) {
    SweepPoint& p = res.points[n];
    std::vector<std::string> overrides = opts.overrides;
    overrides.insert(overrides.end(), p.set.begin(), p.set.end());
    predict_point(base, label, overrides, opts, &p);
  };
  const size_t jobs = std::min<size_t>(std::max(1, opts.jobs), to_predict.size());
  if (jobs <= 1) {
    for (size_t n : to_predict) {
      predict_one(n);
      if (opts.on_point) {
        Status st = opts.on_point(res.key, n, count, res.points[n]);
        if (!st.ok()) return st;
      }
    }
    return res;
  }
  // Worker threads take the points in product order; this thread hands each finished point to
  // on_point in that order. Every point is predicted on its own, so the figures are those of one
  // thread, byte for byte.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<char> done(to_predict.size(), 0);
  size_t next = 0;
  bool stop = false;
  auto work = [&] {
    while (true) {
      size_t k;
      {
        std::lock_guard<std::mutex> lk(mu);
        if (stop || next == to_predict.size()) return;
        k = next++;
      }
      predict_one(to_predict[k]);
      {
        std::lock_guard<std::mutex> lk(mu);
        done[k] = 1;
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 0; t < jobs; ++t) pool.emplace_back(work);
  Status failed;
  for (size_t k = 0; k < to_predict.size() && failed.ok(); ++k) {
    {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return done[k] != 0; });
    }
    if (opts.on_point) failed = opts.on_point(res.key, to_predict[k], count, res.points[to_predict[k]]);
  }
  {
    std::lock_guard<std::mutex> lk(mu);
    stop = true;
  }
  for (auto& t : pool) t.join();
  if (!failed.ok()) return failed;
  return res;
}

namespace {
constexpr NameTable<SweepRank, 4> kSweepRanks{{{SweepRank::kStep, "step"},
                                               {SweepRank::kTokensPerGpu, "tokens-per-gpu"},
                                               {SweepRank::kTokens, "tokens"},
                                               {SweepRank::kTrain, "train"}}};
}  // namespace

bool parse_sweep_rank(const std::string& s, SweepRank* out) { return parse_in(kSweepRanks, s, out); }

const char* to_string(SweepRank r) { return name_of(kSweepRanks, r); }

std::string sweep_scenario_name(const std::string& path) { return path.empty() ? "quickstart (embedded)" : path; }

std::vector<int> sweep_shard_of(size_t points, int shards) {
  auto mix = [](uint64_t z) {   // splitmix64's finalizer
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  std::vector<size_t> order(points);
  for (size_t i = 0; i < points; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const uint64_t ha = mix(a), hb = mix(b);
    return ha != hb ? ha < hb : a < b;
  });
  std::vector<int> out(points, 0);
  for (size_t k = 0; k < points; ++k) out[order[k]] = static_cast<int>(k % static_cast<size_t>(std::max(1, shards)));
  return out;
}

bool sweep_better(SweepRank by, const SweepPoint& x, const SweepPoint& y) {
  switch (by) {
    case SweepRank::kTokensPerGpu: return x.tokens_per_s_per_gpu > y.tokens_per_s_per_gpu;
    case SweepRank::kTokens: return x.tokens_per_s > y.tokens_per_s;
    case SweepRank::kTrain: {   // finite times, then stalled runs (inf), then points not asked (0)
      auto group = [](double t) { return t <= 0 ? 2 : std::isinf(t) ? 1 : 0; };
      if (group(x.train_s) != group(y.train_s)) return group(x.train_s) < group(y.train_s);
      if (group(x.train_s) == 0 && x.train_s != y.train_s) return x.train_s < y.train_s;
      break;
    }
    case SweepRank::kStep: break;
  }
  return x.step_s < y.step_s;
}

std::vector<size_t> sweep_ranking(const SweepResult& r) {
  std::vector<size_t> order;
  for (size_t i = 0; i < r.points.size(); ++i)
    if (r.points[i].computed) order.push_back(i);
  auto cls = [&](const SweepPoint& p) { return !p.ok ? 2 : !sweep_fits(p, r.memory_limit) ? 1 : 0; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const SweepPoint &x = r.points[a], &y = r.points[b];
    if (cls(x) != cls(y)) return cls(x) < cls(y);
    if (cls(x) == 2) return false;
    return sweep_better(r.rank_by, x, y);
  });
  return order;
}

namespace {

nlohmann::json num_record(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

}  // namespace

nlohmann::json sweep_point_record(const SweepPoint& p) {
  nlohmann::json j;
  j["set"] = p.set;
  j["ok"] = p.ok;
  j["error"] = p.error;
  j["dp"] = p.dp;
  j["step_s"] = num_record(p.step_s);
  j["tokens_per_s"] = num_record(p.tokens_per_s);
  j["tokens_per_s_per_gpu"] = num_record(p.tokens_per_s_per_gpu);
  j["mfu"] = num_record(p.mfu);
  j["hfu"] = num_record(p.hfu);
  j["compute_s"] = num_record(p.compute_s);
  j["exposed_comm_s"] = num_record(p.exposed_comm_s);
  j["bubble_s"] = num_record(p.bubble_s);
  j["peak_memory_gib"] = num_record(p.peak_memory_gib);
  j["capacity_gib"] = num_record(p.capacity_gib);
  j["peak_rank"] = p.peak_rank;
  j["oom"] = p.oom;
  j["costs"] = p.costs;
  j["fingerprint"] = p.fingerprint;
  if (p.train_s > 0) j["train_s"] = num_record(p.train_s);   // only when asked: other records keep their bytes
  if (p.speed) j["speed_cost_s"] = num_record(p.speed_cost_s);   // the same
  return j;
}

Status fill_sweep_point(const nlohmann::json& rec, const std::string& source, SweepPoint* p) {
  Status st;
  auto bad = [&](const std::string& key, const std::string& want) {
    st.add(Error{source, "/" + key, rec.is_object() && rec.contains(key) ? rec[key].dump() : "missing", want});
  };
  if (!rec.is_object()) return Status::error(Error{source, "", rec.dump(), "a sweep point record (a JSON object)"});
  SweepPoint q = *p;
  if (!rec.contains("set") || !rec["set"].is_array()) {
    bad("set", "the point's KEY=VALUE overrides (an array of strings)");
  } else if (rec["set"] != nlohmann::json(p->set)) {
    bad("set", "this point's " + nlohmann::json(p->set).dump() + " (a record of another point)");
  }
  auto flag = [&](const char* key, bool* out) {
    if (rec.contains(key) && rec[key].is_boolean()) *out = rec[key].get<bool>();
    else bad(key, "true or false");
  };
  auto text = [&](const char* key, std::string* out) {
    if (rec.contains(key) && rec[key].is_string()) *out = rec[key].get<std::string>();
    else bad(key, "a string");
  };
  auto real = [&](const char* key, double* out) {
    const nlohmann::json* v = rec.contains(key) ? &rec[key] : nullptr;
    if (v && v->is_number()) {
      *out = v->get<double>();
    } else if (v && v->is_string() && (*v == "nan" || *v == "inf" || *v == "-inf")) {
      *out = *v == "nan" ? std::nan("") : *v == "inf" ? HUGE_VAL : -HUGE_VAL;
    } else {
      bad(key, "a number (or \"nan\", \"inf\", \"-inf\")");
    }
  };
  auto whole = [&](const char* key, auto* out, uint64_t most) {
    if (rec.contains(key) && rec[key].is_number_unsigned() && rec[key].get<uint64_t>() <= most)
      *out = static_cast<std::remove_pointer_t<decltype(out)>>(rec[key].get<uint64_t>());
    else bad(key, "a whole number from 0 to " + std::to_string(most));
  };
  flag("ok", &q.ok);
  text("error", &q.error);
  whole("dp", &q.dp, static_cast<uint64_t>(INT32_MAX));
  real("step_s", &q.step_s);
  real("tokens_per_s", &q.tokens_per_s);
  real("tokens_per_s_per_gpu", &q.tokens_per_s_per_gpu);
  real("mfu", &q.mfu);
  real("hfu", &q.hfu);
  real("compute_s", &q.compute_s);
  real("exposed_comm_s", &q.exposed_comm_s);
  real("bubble_s", &q.bubble_s);
  real("peak_memory_gib", &q.peak_memory_gib);
  real("capacity_gib", &q.capacity_gib);
  whole("peak_rank", &q.peak_rank, UINT32_MAX);
  flag("oom", &q.oom);
  text("costs", &q.costs);
  whole("fingerprint", &q.fingerprint, UINT64_MAX);
  q.train_s = 0;
  if (rec.contains("train_s")) real("train_s", &q.train_s);
  q.speed = rec.contains("speed_cost_s");
  q.speed_cost_s = 0;
  if (q.speed) real("speed_cost_s", &q.speed_cost_s);
  if (!st.ok()) return st;
  q.computed = true;
  *p = std::move(q);
  return Status();
}

Result<AcrossSearch> run_search_across(const std::string& path, const std::vector<SweepAxis>& search,
                                       const std::vector<SweepAxis>& across, const SweepOptions& opts) {
  Status st;
  std::set<std::string> searched;
  for (const auto& a : search) searched.insert(a.keys.begin(), a.keys.end());
  size_t rows = 1;
  bool gpus = false;
  for (const auto& a : across) {
    for (const auto& k : a.keys) {
      if (searched.count(k))
        st.add(Error{"--across", "", a.key, "the search already varies " + k + "; take it out of --keys or of --across"});
      gpus |= k == "cluster.gpus";
    }
    if (a.values.size() == 1 && a.values[0] == "auto")
      st.add(Error{"--across", "", a.key + "=auto", "give the values to plan for, e.g. cluster.gpus=512,1024,2048"});
    rows *= a.values.size();
    if (rows > kMaxAcrossRows) {
      st.add(Error{"--across", "", a.key,
                   "more than " + std::to_string(kMaxAcrossRows) + " combinations of the across values; give fewer"});
      break;
    }
  }
  if (!st.ok()) return st;
  AcrossSearch out;
  out.across = across;
  bool dp_set = false;
  for (const auto& o : opts.overrides) dp_set |= override_key(o) == "parallel.dp";
  const bool derive_dp = gpus && !dp_set;
  if (derive_dp)
    out.notes.push_back("cluster.gpus varies across rows and nothing sets parallel.dp: each row derives dp "
                        "(parallel.dp=null) rather than keeping the file's");
  for (size_t r = 0; r < rows; ++r) {
    AcrossSearch::Row row;
    size_t rest = r;
    std::vector<size_t> pick(across.size());
    for (size_t a = across.size(); a-- > 0;) {
      pick[a] = rest % across[a].values.size();
      rest /= across[a].values.size();
    }
    SweepOptions o = opts;
    if (derive_dp) o.overrides.push_back("parallel.dp=null");
    for (size_t a = 0; a < across.size(); ++a) {
      row.values.push_back(across[a].values[pick[a]]);
      for (const auto& kv : across[a].overrides(pick[a])) {
        row.set.push_back(kv);
        o.overrides.push_back(kv);
      }
    }
    Result<SweepResult> res = run_sweep(path, search, o);
    if (res.ok()) {
      row.ok = true;
      row.result = std::move(res).value();
    } else {
      row.error = res.status().to_string();
    }
    out.rows.push_back(std::move(row));
  }
  return out;
}

}  // namespace trainsim
