// File: calibrate/cuda/job_file.h
// The calibrator's job list (calibrate/FORMAT.md section 1), read with json_lite.h and checked
// field by field: every error names the file, the JSON path and what to write instead, and all
// errors are reported at once. Unknown keys are rejected. Header-only (no CUDA) so the
// self-test and unit tests can use it without a GPU.
// Thread-safety: pure functions.
#pragma once
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "json_lite.h"

namespace tscal {

// One op of the job list. Shape fields not used by the op's class stay 0.
struct OpJob {
  std::string cls;          // gemm attention norm elementwise embedding loss optimizer offload
  std::string dtype;        // gemm/attention: bf16 fp16 fp8 (gemm also fp32)
  std::string name;         // memory-bound ops; offload: the direction is its suffix ".d2h" or ".h2d"
  int64_t m = 0, n = 0, k = 0, batch = 0;
  int64_t heads = 0, kv_heads = 0, seq_q = 0, seq_kv = 0, head_dim = 0;
  bool causal = false, backward = false;
  int64_t bytes = 0;        // memory-bound ops: HBM bytes moved (reads + writes); offload: bytes copied
  std::string path;         // "/ops/3", for messages
};

struct CollJob {
  std::string kind;         // all-reduce all-gather reduce-scatter all-to-all broadcast send-recv
  std::string dtype;        // bf16 fp16 fp32
  int64_t bytes = 0;        // nccl-tests convention (all-gather: output; reduce-scatter: input)
  int64_t group_size = 0;
  std::string path;
};

struct JobFile {
  int64_t warmup = 10;      // default per FORMAT.md
  int64_t runs = 50;
  std::vector<OpJob> ops;
  std::vector<CollJob> colls;
};

inline bool is_memory_bound_class(const std::string& c) {
  return c == "norm" || c == "elementwise" || c == "embedding" || c == "loss" || c == "optimizer";
}

// An offload (host copy) job's direction: true = device to host (".d2h"), false = host to device.
inline bool offload_to_host(const OpJob& j) { return j.name.ends_with(".d2h"); }

namespace detail {

struct Ctx {
  std::string file;
  std::vector<std::string>* errors;
  void err(const std::string& path, const std::string& what) {
    errors->push_back("error: " + file + ": " + path + ": " + what);
  }
};

inline void check_keys(Ctx& c, const JsonValue& o, const std::string& path,
                       const std::vector<std::string>& allowed) {
  for (const auto& kv : o.obj) {
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == kv.first;
    if (!ok) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      c.err(path + "/" + kv.first, "unknown key; allowed here: " + list);
    }
  }
}

inline bool get_int(Ctx& c, const JsonValue& o, const std::string& path, const char* key,
                    int64_t* out, int64_t min_value, bool required = true) {
  const JsonValue* v = o.find(key);
  if (!v) {
    if (required) c.err(path + "/" + key, "missing; write an integer >= " + std::to_string(min_value));
    return false;
  }
  if (v->type != JsonValue::Type::kNumber || !v->is_integer) {
    c.err(path + "/" + key, std::string("is ") + v->type_name() + " (line " + std::to_string(v->line) +
                                "); write an integer >= " + std::to_string(min_value));
    return false;
  }
  if (v->integer < min_value) {
    c.err(path + "/" + key, "= " + std::to_string(v->integer) + "; must be >= " + std::to_string(min_value));
    return false;
  }
  *out = v->integer;
  return true;
}

inline bool get_bool(Ctx& c, const JsonValue& o, const std::string& path, const char* key, bool* out) {
  const JsonValue* v = o.find(key);
  if (!v) { c.err(path + "/" + key, "missing; write true or false"); return false; }
  if (v->type != JsonValue::Type::kBool) {
    c.err(path + "/" + key, std::string("is ") + v->type_name() + "; write true or false");
    return false;
  }
  *out = v->b;
  return true;
}

inline bool get_enum(Ctx& c, const JsonValue& o, const std::string& path, const char* key,
                     const std::vector<std::string>& allowed, std::string* out) {
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "\"" : ", \"") + a + "\"";
  const JsonValue* v = o.find(key);
  if (!v) { c.err(path + "/" + key, "missing; one of " + list); return false; }
  if (v->type != JsonValue::Type::kString) {
    c.err(path + "/" + key, std::string("is ") + v->type_name() + "; one of " + list);
    return false;
  }
  for (const auto& a : allowed)
    if (a == v->str) { *out = v->str; return true; }
  c.err(path + "/" + key, "= \"" + v->str + "\"; one of " + list);
  return false;
}

}  // namespace detail

// Parses the job list in `text` (read from `file`, used in messages). Returns true when the
// list is valid; otherwise appends one message per problem to *errors.
inline bool parse_jobs(const std::string& text, const std::string& file, JobFile* out,
                       std::vector<std::string>* errors) {
  detail::Ctx c{file, errors};
  const size_t before = errors->size();
  JsonValue root;
  std::string perr;
  JsonParser p(text);
  if (!p.parse(&root, &perr)) {
    errors->push_back("error: " + file + ": " + perr);
    return false;
  }
  if (root.type != JsonValue::Type::kObject) {
    c.err("/", std::string("top level is ") + root.type_name() + "; write an object {\"version\": 1, ...}");
    return false;
  }
  detail::check_keys(c, root, "", {"version", "warmup", "runs", "ops", "collectives"});
  int64_t version = 0;
  if (detail::get_int(c, root, "", "version", &version, 1) && version != 1)
    c.err("/version", "= " + std::to_string(version) + "; this calibrator reads version 1");
  detail::get_int(c, root, "", "warmup", &out->warmup, 0, false);
  detail::get_int(c, root, "", "runs", &out->runs, 1, false);

  const JsonValue* ops = root.find("ops");
  if (ops && ops->type != JsonValue::Type::kArray) c.err("/ops", "must be an array of op objects");
  if (ops && ops->type == JsonValue::Type::kArray) {
    for (size_t i = 0; i < ops->arr.size(); ++i) {
      const JsonValue& o = ops->arr[i];
      const std::string path = "/ops/" + std::to_string(i);
      if (o.type != JsonValue::Type::kObject) { c.err(path, "must be an object"); continue; }
      OpJob j;
      j.path = path;
      if (!detail::get_enum(c, o, path, "class",
                            {"gemm", "attention", "norm", "elementwise", "embedding", "loss", "optimizer", "offload"},
                            &j.cls))
        continue;
      if (j.cls == "gemm") {
        detail::check_keys(c, o, path, {"class", "dtype", "m", "n", "k", "batch"});
        detail::get_enum(c, o, path, "dtype", {"bf16", "fp16", "fp8", "fp32"}, &j.dtype);
        detail::get_int(c, o, path, "m", &j.m, 1);
        detail::get_int(c, o, path, "n", &j.n, 1);
        detail::get_int(c, o, path, "k", &j.k, 1);
        detail::get_int(c, o, path, "batch", &j.batch, 1);
      } else if (j.cls == "attention") {
        detail::check_keys(c, o, path, {"class", "dtype", "batch", "heads", "kv_heads", "seq_q", "seq_kv",
                                        "head_dim", "causal", "backward"});
        detail::get_enum(c, o, path, "dtype", {"bf16", "fp16", "fp8"}, &j.dtype);
        detail::get_int(c, o, path, "batch", &j.batch, 1);
        bool hk = detail::get_int(c, o, path, "heads", &j.heads, 1);
        bool kk = detail::get_int(c, o, path, "kv_heads", &j.kv_heads, 1);
        detail::get_int(c, o, path, "seq_q", &j.seq_q, 1);
        detail::get_int(c, o, path, "seq_kv", &j.seq_kv, 1);
        detail::get_int(c, o, path, "head_dim", &j.head_dim, 1);
        detail::get_bool(c, o, path, "causal", &j.causal);
        detail::get_bool(c, o, path, "backward", &j.backward);
        if (hk && kk && j.heads % j.kv_heads != 0)
          c.err(path + "/kv_heads", "= " + std::to_string(j.kv_heads) + " does not divide heads = " +
                                        std::to_string(j.heads));
      } else {
        detail::check_keys(c, o, path, {"class", "name", "bytes"});
        const JsonValue* nm = o.find("name");
        if (nm && nm->type != JsonValue::Type::kString) c.err(path + "/name", "must be a string");
        if (nm && nm->type == JsonValue::Type::kString) j.name = nm->str;
        detail::get_int(c, o, path, "bytes", &j.bytes, 1);
        if (j.cls == "offload" && !j.name.ends_with(".d2h") && !j.name.ends_with(".h2d"))
          c.err(path + "/name", "= \"" + j.name + "\": an offload (host copy) job's name must end in \".d2h\" " +
                                    "(device to host) or \".h2d\" (host to device)");
      }
      out->ops.push_back(j);
    }
  }
  const JsonValue* colls = root.find("collectives");
  if (colls && colls->type != JsonValue::Type::kArray) c.err("/collectives", "must be an array of objects");
  if (colls && colls->type == JsonValue::Type::kArray) {
    for (size_t i = 0; i < colls->arr.size(); ++i) {
      const JsonValue& o = colls->arr[i];
      const std::string path = "/collectives/" + std::to_string(i);
      if (o.type != JsonValue::Type::kObject) { c.err(path, "must be an object"); continue; }
      CollJob j;
      j.path = path;
      detail::check_keys(c, o, path, {"kind", "dtype", "bytes", "group_size"});
      detail::get_enum(c, o, path, "kind",
                       {"all-reduce", "all-gather", "reduce-scatter", "all-to-all", "broadcast", "send-recv"},
                       &j.kind);
      detail::get_enum(c, o, path, "dtype", {"bf16", "fp16", "fp32"}, &j.dtype);
      detail::get_int(c, o, path, "bytes", &j.bytes, 1);
      if (detail::get_int(c, o, path, "group_size", &j.group_size, 2) && j.kind == "send-recv" &&
          j.group_size != 2)
        c.err(path + "/group_size", "= " + std::to_string(j.group_size) + "; send-recv is measured between 2 GPUs");
      out->colls.push_back(j);
    }
  }
  return errors->size() == before;
}

// Reads and parses `path`; a missing or unreadable file is one error naming the path.
inline bool load_jobs(const std::string& path, JobFile* out, std::vector<std::string>* errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors->push_back("error: " + path + ": cannot open the job list (write it with `trainsim calibrate ... --jobs FILE`)");
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_jobs(ss.str(), path, out, errors);
}

// JSON string escaping for output lines.
inline std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    unsigned char u = static_cast<unsigned char>(ch);
    if (ch == '"') o += "\\\"";
    else if (ch == '\\') o += "\\\\";
    else if (ch == '\n') o += "\\n";
    else if (ch == '\t') o += "\\t";
    else if (u < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", u); o += b; }
    else o += ch;
  }
  return o;
}

// The "op" object of a measurement line: exactly the keys of the op's class (FORMAT.md).
inline std::string op_json(const OpJob& j) {
  char b[512];
  if (j.cls == "gemm") {
    std::snprintf(b, sizeof b, "{\"class\": \"gemm\", \"dtype\": \"%s\", \"m\": %lld, \"n\": %lld, \"k\": %lld, \"batch\": %lld}",
                  j.dtype.c_str(), (long long)j.m, (long long)j.n, (long long)j.k, (long long)j.batch);
  } else if (j.cls == "attention") {
    std::snprintf(b, sizeof b,
                  "{\"class\": \"attention\", \"dtype\": \"%s\", \"batch\": %lld, \"heads\": %lld, \"kv_heads\": %lld, "
                  "\"seq_q\": %lld, \"seq_kv\": %lld, \"head_dim\": %lld, \"causal\": %s, \"backward\": %s}",
                  j.dtype.c_str(), (long long)j.batch, (long long)j.heads, (long long)j.kv_heads, (long long)j.seq_q,
                  (long long)j.seq_kv, (long long)j.head_dim, j.causal ? "true" : "false", j.backward ? "true" : "false");
  } else {
    return "{\"class\": \"" + j.cls + "\", \"name\": \"" + json_escape(j.name) + "\", \"bytes\": " +
           std::to_string(j.bytes) + "}";
  }
  return b;
}

inline std::string coll_json(const CollJob& j, int per_node, int nodes) {
  char b[384];
  std::snprintf(b, sizeof b,
                "{\"kind\": \"%s\", \"dtype\": \"%s\", \"bytes\": %lld, \"group_size\": %lld, \"per_node\": %d, \"nodes\": %d}",
                j.kind.c_str(), j.dtype.c_str(), (long long)j.bytes, (long long)j.group_size, per_node, nodes);
  return b;
}

}  // namespace tscal
