#include "calibrate/import_torch_trace.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "calibrate/fit.h"
#include "calibrate/torch_trace.h"
#include "sim/text.h"

namespace trainsim {
namespace {

using Json = nlohmann::json;
using OJson = nlohmann::ordered_json;

// Profiler "Input type" -> FORMAT.md dtype ("" if not a float type trainsim models).
std::string torch_dtype(const std::string& t) {
  if (t == "c10::BFloat16" || t == "BFloat16") return "bf16";
  if (t == "c10::Half" || t == "Half") return "fp16";
  if (t == "float" || t == "Float") return "fp32";
  if (t.find("Float8") != std::string::npos) return "fp8";
  return "";
}

// Element size of a profiler "Input type"; 0 for non-tensors (Scalar, "", lists of ints).
int elem_size(const std::string& t) {
  if (t == "c10::BFloat16" || t == "c10::Half" || t == "short int" || t == "BFloat16" ||
      t == "Half")
    return 2;
  if (t == "float" || t == "int" || t == "unsigned int" || t == "Float" || t == "Int") return 4;
  if (t == "double" || t == "long int" || t == "long long int" || t == "Long" || t == "Double")
    return 8;
  if (t == "bool" || t == "unsigned char" || t == "signed char" || t == "Byte" ||
      t.find("Float8") != std::string::npos)
    return 1;
  if (t == "TensorList") return 4;   // FIXME: element type of a list not recorded; optimizer states are fp32
  return 0;
}

// Dims of input i as a flat vector; nullopt if absent or not a flat integer list.
std::optional<std::vector<int64_t>> dims_at(const Json& args, size_t i) {
  auto it = args.find("Input Dims");
  if (it == args.end() || !it->is_array() || i >= it->size()) return std::nullopt;
  const Json& d = (*it)[i];
  if (!d.is_array()) return std::nullopt;
  std::vector<int64_t> out;
  for (const auto& x : d) {
    if (!x.is_number_integer()) return std::nullopt;
    out.push_back(x.get<int64_t>());
  }
  return out;
}

std::string type_at(const Json& args, size_t i) {
  auto it = args.find("Input type");
  if (it == args.end() || !it->is_array() || i >= it->size() || !(*it)[i].is_string()) return "";
  return (*it)[i].get<std::string>();
}

std::string concrete_at(const Json& args, size_t i) {
  auto it = args.find("Concrete Inputs");
  if (it == args.end() || !it->is_array() || i >= it->size() || !(*it)[i].is_string()) return "";
  return (*it)[i].get<std::string>();
}

int64_t product(const std::vector<int64_t>& v, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= v[i];
  return p;
}

struct Gemm {
  std::string dtype;
  int64_t m, n, k, batch;
};

std::optional<Gemm> gemm_shape(const TraceCpuOp& op) {
  if (!op.args) return std::nullopt;
  const Json& a = *op.args;
  const std::string& nm = op.name;
  auto two = [&](size_t ia, size_t ib) -> std::optional<std::pair<std::vector<int64_t>, std::vector<int64_t>>> {
    auto x = dims_at(a, ia), y = dims_at(a, ib);
    if (!x || !y) return std::nullopt;
    return std::make_pair(*x, *y);
  };
  auto finish = [&](size_t ia, int64_t m, int64_t n, int64_t k, int64_t b) -> std::optional<Gemm> {
    const std::string dt = torch_dtype(type_at(a, ia));
    if (dt.empty() || m <= 0 || n <= 0 || k <= 0 || b <= 0) return std::nullopt;
    return Gemm{dt, m, n, k, b};
  };
  if (nm == "aten::mm" || nm == "aten::addmm" || nm == "aten::_scaled_mm") {
    const size_t ia = nm == "aten::addmm" ? 1 : 0;
    auto p = two(ia, ia + 1);
    if (!p || p->first.size() != 2 || p->second.size() != 2 || p->first[1] != p->second[0])
      return std::nullopt;
    return finish(ia, p->first[0], p->second[1], p->first[1], 1);
  }
  if (nm == "aten::bmm" || nm == "aten::baddbmm") {
    const size_t ia = nm == "aten::baddbmm" ? 1 : 0;
    auto p = two(ia, ia + 1);
    if (!p || p->first.size() != 3 || p->second.size() != 3 || p->first[2] != p->second[1])
      return std::nullopt;
    return finish(ia, p->first[1], p->second[2], p->first[2], p->first[0]);
  }
  if (nm == "aten::linear") {   // input [.., k], weight [n, k]
    auto p = two(0, 1);
    if (!p || p->first.empty() || p->second.size() != 2 || p->first.back() != p->second[1])
      return std::nullopt;
    const auto& x = p->first;
    return finish(0, product(x, 0, x.size() - 1), p->second[0], x.back(), 1);
  }
  if (nm == "aten::matmul") {
    auto p = two(0, 1);
    if (!p || p->first.size() < 2 || p->second.empty()) return std::nullopt;
    const auto& x = p->first;
    const auto& w = p->second;
    if (w.size() == 2) {   // [.., m, k] x [k, n]: leading dims fold into m
      if (x.back() != w[0]) return std::nullopt;
      return finish(0, product(x, 0, x.size() - 1), w[1], x.back(), 1);
    }
    if (w.size() >= 3 && x.size() == w.size() && x.back() == w[w.size() - 2]) {
      return finish(0, x[x.size() - 2], w.back(), x.back(), product(x, 0, x.size() - 2));
    }
  }
  return std::nullopt;
}

struct AttnOpInfo {
  const char* name;
  size_t q;          // index of the query input
  bool bshd;         // layout [batch, seq, heads, dim] (else [batch, heads, seq, dim])
  int causal;        // index of is_causal in Concrete Inputs (-1: none)
};

const AttnOpInfo* attn_info(const std::string& name) {
  static const AttnOpInfo kOps[] = {
      {"aten::scaled_dot_product_attention", 0, false, 5},
      {"aten::_scaled_dot_product_flash_attention", 0, false, 4},
      {"aten::_scaled_dot_product_flash_attention_backward", 1, false, 11},
      {"aten::_scaled_dot_product_efficient_attention", 0, false, 6},
      {"aten::_scaled_dot_product_efficient_attention_backward", 1, false, 11},
      {"aten::_scaled_dot_product_cudnn_attention", 0, false, 6},
      {"aten::_scaled_dot_product_cudnn_attention_backward", 1, false, 14},
      {"aten::_flash_attention_forward", 0, true, 8},
      {"aten::_flash_attention_backward", 1, true, 11},
      {"aten::_efficient_attention_forward", 0, true, -1},
      {"flash_attn::_flash_attn_forward", 0, true, 5},
      {"flash_attn::_flash_attn_backward", 1, true, 11},
  };
  for (const auto& o : kOps)
    if (name == o.name) return &o;
  return nullptr;
}

struct Attn {
  std::string dtype;
  int64_t batch, heads, kv_heads, seq_q, seq_kv, head_dim;
  bool backward;
};

std::optional<Attn> attn_shape(const TraceCpuOp& op) {
  const AttnOpInfo* info = attn_info(op.name);
  if (!info || !op.args) return std::nullopt;
  auto q = dims_at(*op.args, info->q), k = dims_at(*op.args, info->q + 1);
  if (!q || !k || q->size() != 4 || k->size() != 4) return std::nullopt;
  const std::string dt = torch_dtype(type_at(*op.args, info->q));
  if (dt.empty()) return std::nullopt;
  Attn a;
  a.dtype = dt;
  a.batch = (*q)[0];
  a.heads = info->bshd ? (*q)[2] : (*q)[1];
  a.seq_q = info->bshd ? (*q)[1] : (*q)[2];
  a.kv_heads = info->bshd ? (*k)[2] : (*k)[1];
  a.seq_kv = info->bshd ? (*k)[1] : (*k)[2];
  a.head_dim = (*q)[3];
  a.backward = op.name.find("backward") != std::string::npos;
  return a;
}

// is_causal as recorded in Concrete Inputs of an attention op, if any.
std::optional<bool> attn_causal(const TraceCpuOp& op) {
  const AttnOpInfo* info = attn_info(op.name);
  if (!info || !op.args || info->causal < 0) return std::nullopt;
  const std::string v = concrete_at(*op.args, static_cast<size_t>(info->causal));
  if (v == "True" || v == "true" || v == "1") return true;
  if (v == "False" || v == "false" || v == "0") return false;
  return std::nullopt;
}

// Read + write estimate of a memory-bound op: 2 x sum of its tensor inputs.
int64_t mem_bytes(const TraceCpuOp& op) {
  if (!op.args) return 0;
  auto it = op.args->find("Input Dims");
  if (it == op.args->end() || !it->is_array()) return 0;
  int64_t total = 0;
  for (size_t i = 0; i < it->size(); ++i) {
    const int es = elem_size(type_at(*op.args, i));
    if (es == 0) continue;
    const Json& d = (*it)[i];
    if (!d.is_array()) continue;
    auto numel = [](const Json& dims) -> int64_t {
      int64_t p = 1;
      for (const auto& x : dims) {
        if (!x.is_number_integer() || __builtin_mul_overflow(p, x.get<int64_t>(), &p)) return 0;
      }
      return p;
    };
    if (type_at(*op.args, i) == "TensorList" || (!d.empty() && d[0].is_array())) {
      for (const auto& e : d)
        if (e.is_array()) total += numel(e) * es;
    } else {
      total += numel(d) * es;
    }
  }
  return 2 * total;
}

double busbw_factor(const std::string& kind, int p) {
  if (kind == "all-reduce") return 2.0 * (p - 1) / p;
  if (kind == "all-gather" || kind == "reduce-scatter" || kind == "all-to-all")
    return static_cast<double>(p - 1) / p;
  return 1.0;   // broadcast, send-recv (nccl-tests)
}

}  // namespace

Result<std::vector<std::string>> import_torch_trace(const std::string& json_text,
                                                    const std::string& label,
                                                    const ImportDeviceHint& hint,
                                                    TraceImportStats* stats_out) {
  auto parsed = parse_torch_trace(json_text, label);
  if (!parsed.ok()) return parsed.status();
  const TorchTrace& trace = *parsed.value();
  const Json& root = trace.root;
  const std::map<int64_t, std::string>& device_names = trace.device_names;
  const int gpus = trace.gpus;
  std::string cuda = hint.cuda;
  if (auto cv = root.find("cuda_runtime_version"); cuda.empty() && cv != root.end() && cv->is_number_integer()) {
    const int64_t v = cv->get<int64_t>();   // 12010 -> "12.1"
    cuda = std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
  }
  const std::string& nccl = trace.nccl_version;
  const int64_t world_size = trace.world_size;
  std::string date = hint.date;
  if (date.empty() && root.contains("baseTimeNanoseconds") && root["baseTimeNanoseconds"].is_number() &&
      root["baseTimeNanoseconds"].get<double>() >= 0 && root["baseTimeNanoseconds"].get<double>() < 4e18) {
    const std::time_t secs = static_cast<std::time_t>(root["baseTimeNanoseconds"].get<double>() / 1e9);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    date = buf;
  }
  auto device_json = [&](int64_t dev) {
    auto it = device_names.find(dev);
    std::string name = it != device_names.end() ? it->second : "";
    if (name.empty()) name = hint.device_name;
    return OJson{{"name", name}, {"driver", hint.driver}, {"cuda", cuda}, {"nccl", nccl},
                 {"cudnn", ""},  {"host", hint.host},     {"date", date}, {"gpus", gpus}};
  };

  const std::vector<TraceCpuOp>& ops = trace.ops;
  auto chain = [&](int op) { return trace.chain(op); };

  // One sample per (shape op instance, class): summed kernel time.
  struct Sample {
    std::string key;    // dump of the op/coll object: identical ops merge
    OJson line_head;    // kind, device, op|coll
    std::string coll_kind;
    int64_t bytes = 0;
    int group = 0;
    double dur = 0;
    int kernels = 0;
  };
  std::vector<Sample> samples;
  std::map<std::pair<int, int>, size_t> sample_of;   // (shape op, class) -> samples index
  TraceImportStats st;
  st.kernels = static_cast<int>(trace.kernels.size());

  for (const TraceKernel& k : trace.kernels) {
    const KernelClass cls = classify_kernel_name(k.name);
    if (cls == KernelClass::kUnknown) { ++st.skipped_unknown; continue; }
    const int64_t dev = k.args ? trace_json_int(*k.args, "device") : 0;
    const std::vector<int> ch = k.op >= 0 ? chain(k.op) : std::vector<int>{};

    int shape_op = -1;
    OJson obj;
    std::string ckind;
    int64_t cbytes = 0;
    int cgroup = 0;
    if (cls == KernelClass::kGemm) {
      for (int i : ch) {
        if (auto g = gemm_shape(ops[i])) {
          shape_op = i;
          obj = {{"class", "gemm"}, {"dtype", g->dtype}, {"m", g->m}, {"n", g->n}, {"k", g->k},
                 {"batch", g->batch}};
          break;
        }
      }
    } else if (cls == KernelClass::kAttention) {
      for (int i : ch) {
        if (auto a = attn_shape(ops[i])) {
          shape_op = i;
          bool causal = false;
          for (int j : chain(i)) {
            if (auto c = attn_causal(ops[j])) { causal = *c; break; }
          }
          const bool bwd = a->backward || contains(to_lower(k.name), "bwd");
          obj = {{"class", "attention"}, {"dtype", a->dtype},     {"batch", a->batch},
                 {"heads", a->heads},    {"kv_heads", a->kv_heads}, {"seq_q", a->seq_q},
                 {"seq_kv", a->seq_kv},  {"head_dim", a->head_dim}, {"causal", causal},
                 {"backward", bwd}};
          break;
        }
      }
    } else if (cls == KernelClass::kComm) {
      // The message size: on the kernel (recent Kineto) or an enclosing record_param_comms.
      const Json* cargs = nullptr;
      if (k.args && k.args->contains("In msg nelems")) cargs = k.args;
      for (int i : ch) {
        if (cargs) break;
        if (ops[i].args && ops[i].args->contains("In msg nelems")) { cargs = ops[i].args; shape_op = i; }
      }
      if (cargs) {
        ckind = nccl_kind(trace_json_str(*cargs, "Collective name"), k.name);
        const std::string dts = trace_json_str(*cargs, "dtype");
        const std::string dt = torch_dtype(dts);
        const int es = elem_size(dts);
        int64_t group = trace_json_int(*cargs, "Group size");
        if (group <= 0) group = world_size;
        if (ckind == "send-recv") group = 2;
        const int64_t nel = ckind == "all-gather" ? trace_json_int(*cargs, "Out msg nelems")
                                                  : trace_json_int(*cargs, "In msg nelems");
        if (!ckind.empty() && !dt.empty() && es > 0 && nel > 0 && group > 0) {
          cbytes = nel * es;
          cgroup = static_cast<int>(group);
          const int per_node = gpus > 0 ? std::min(cgroup, gpus) : cgroup;
          const int nodes = (cgroup + per_node - 1) / per_node;
          obj = {{"kind", ckind}, {"dtype", dt},         {"bytes", cbytes},
                 {"group_size", cgroup}, {"per_node", per_node}, {"nodes", nodes}};
          if (shape_op < 0) shape_op = k.op;
        }
      }
      if (obj.is_null()) {
        ++st.skipped_no_shape;
        ++st.comm_no_size;
        continue;
      }
    } else {   // memory-bound: the innermost op with tensor inputs
      for (int i : ch) {
        const int64_t b = mem_bytes(ops[i]);
        if (b > 0) {
          shape_op = i;
          obj = {{"class", to_string(cls)}, {"name", ops[i].name}, {"bytes", b}};
          break;
        }
      }
    }
    if (obj.is_null() || shape_op < 0) { ++st.skipped_no_shape; continue; }

    ++st.mapped;
    auto [it, fresh] = sample_of.try_emplace({shape_op, static_cast<int>(cls)}, samples.size());
    if (fresh) {
      Sample s;
      const bool comm = cls == KernelClass::kComm;
      s.line_head = {{"kind", comm ? "collective" : "op"}, {"device", device_json(dev)},
                     {comm ? "coll" : "op", obj}};
      s.key = s.line_head.dump();
      s.coll_kind = ckind;
      s.bytes = cbytes;
      s.group = cgroup;
      samples.push_back(std::move(s));
    }
    samples[it->second].dur += k.dur;
    samples[it->second].kernels += 1;
  }

  // Merge identical ops: median, min, count.
  std::vector<std::string> order;
  std::map<std::string, std::vector<size_t>> groups;
  for (size_t i = 0; i < samples.size(); ++i) {
    auto& g = groups[samples[i].key];
    if (g.empty()) order.push_back(samples[i].key);
    g.push_back(i);
  }
  const std::string source = "torch.profiler " + label;
  std::vector<std::string> out;
  for (const std::string& key : order) {
    const auto& idx = groups[key];
    std::vector<double> t;
    for (size_t i : idx) t.push_back(samples[i].dur);
    const Sample& s0 = samples[idx[0]];
    OJson line = s0.line_head;
    const double med = median(t);
    if (s0.line_head["kind"] == "collective") {
      const double algbw = med > 0 ? static_cast<double>(s0.bytes) / med / 1e3 : 0.0;   // GB/s
      line["time_us"] = med;
      line["algbw_GBps"] = algbw;
      line["busbw_GBps"] = algbw * busbw_factor(s0.coll_kind, s0.group);
      line["runs"] = static_cast<int>(t.size());
    } else {
      line["time_us"] = med;
      line["min_us"] = *std::min_element(t.begin(), t.end());
      line["runs"] = static_cast<int>(t.size());
    }
    line["source"] = source;
    out.push_back(line.dump());
  }
  if (stats_out) *stats_out = st;
  return out;
}

}  // namespace trainsim
