// The calibration database (calibrate/db.h) on the SQLite3 C API.
//
// Values only ever reach SQL through bound parameters; sqlite3_exec runs fixed text only
// (schema, BEGIN, COMMIT, ROLLBACK, PRAGMA). Enumerations are stored as the names the
// measurement lines use ("gemm", "bf16", "all-reduce", "send-recv"), so the file reads well in
// the sqlite3 shell. Text columns are NOT NULL DEFAULT '' because SQLite treats NULLs as
// distinct in UNIQUE constraints: a device with an unknown driver must still match itself.
//
// The default rollback journal (not WAL) is kept on purpose: a write killed mid-transaction
// leaves a hot journal next to the file, and the next connection that opens it rolls the file
// back, so there is never a partial import and never a -wal file to carry around.
#include "calibrate/db.h"

#include <sqlite3.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>
#include <tuple>
#include <filesystem>

#include "sim/text.h"

namespace trainsim {

namespace {

using nlohmann::json;

constexpr const char* kSchemaVersion = "1";
constexpr size_t kMaxErrors = 50;   // errors shown by one import; the rest are counted

constexpr const char* kSchema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE devices(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL, driver TEXT NOT NULL DEFAULT '', cuda TEXT NOT NULL DEFAULT '',
  nccl TEXT NOT NULL DEFAULT '', cudnn TEXT NOT NULL DEFAULT '', host TEXT NOT NULL DEFAULT '',
  date TEXT NOT NULL DEFAULT '', gpus INTEGER NOT NULL DEFAULT 0,
  UNIQUE(name, driver, cuda, nccl, cudnn, host));
CREATE TABLE op_measurements(
  id INTEGER PRIMARY KEY,
  device_id INTEGER NOT NULL REFERENCES devices(id),
  class TEXT NOT NULL, dtype TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
  m INTEGER NOT NULL DEFAULT 0, n INTEGER NOT NULL DEFAULT 0, k INTEGER NOT NULL DEFAULT 0,
  batch INTEGER NOT NULL DEFAULT 1,
  heads INTEGER NOT NULL DEFAULT 0, kv_heads INTEGER NOT NULL DEFAULT 0,
  seq_q INTEGER NOT NULL DEFAULT 0, seq_kv INTEGER NOT NULL DEFAULT 0,
  head_dim INTEGER NOT NULL DEFAULT 0,
  causal INTEGER NOT NULL DEFAULT 0, backward INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  time_us REAL NOT NULL, min_us REAL NOT NULL DEFAULT 0, runs INTEGER NOT NULL DEFAULT 0,
  source TEXT NOT NULL DEFAULT '');
CREATE INDEX op_measurements_device ON op_measurements(device_id, class);
CREATE TABLE coll_measurements(
  id INTEGER PRIMARY KEY,
  device_id INTEGER NOT NULL REFERENCES devices(id),
  kind TEXT NOT NULL, dtype TEXT NOT NULL, bytes INTEGER NOT NULL,
  group_size INTEGER NOT NULL, per_node INTEGER NOT NULL, nodes INTEGER NOT NULL,
  time_us REAL NOT NULL, algbw_GBps REAL NOT NULL DEFAULT 0, busbw_GBps REAL NOT NULL DEFAULT 0,
  runs INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL DEFAULT '');
CREATE INDEX coll_measurements_device ON coll_measurements(device_id, kind);
CREATE TABLE fits(
  id INTEGER PRIMARY KEY,
  device_id INTEGER NOT NULL REFERENCES devices(id),
  what TEXT NOT NULL, params TEXT NOT NULL, residual REAL NOT NULL DEFAULT 0,
  points INTEGER NOT NULL DEFAULT 0,
  UNIQUE(device_id, what));
)sql";

// ---- names -----------------------------------------------------------------------------

const std::vector<std::pair<const char*, OpClass>> kOpClasses = {
    {"gemm", OpClass::kGemm},       {"attention", OpClass::kAttention},
    {"norm", OpClass::kNorm},       {"elementwise", OpClass::kElementwise},
    {"embedding", OpClass::kEmbedding}, {"loss", OpClass::kLoss},
    {"optimizer", OpClass::kOptimizer}, {"offload", OpClass::kOffload}};
const std::vector<std::pair<const char*, DType>> kDTypes = {
    {"bf16", DType::kBF16}, {"fp16", DType::kFP16}, {"fp8", DType::kFP8}, {"fp32", DType::kFP32}};
const std::vector<std::pair<const char*, CollKind>> kCollKinds = {
    {"all-reduce", CollKind::kAllReduce}, {"all-gather", CollKind::kAllGather},
    {"reduce-scatter", CollKind::kReduceScatter}, {"all-to-all", CollKind::kAllToAll},
    {"broadcast", CollKind::kBroadcast}};
constexpr const char* kSendRecv = "send-recv";

template <typename E>
const char* name_of(const std::vector<std::pair<const char*, E>>& table, E e) {
  for (const auto& [n, v] : table)
    if (v == e) return n;
  SIM_CHECK(false, "enum value %d has no name in the calibration database", static_cast<int>(e));
  return "?";
}

template <typename E>
bool parse_name(const std::vector<std::pair<const char*, E>>& table, const std::string& s, E* out) {
  for (const auto& [n, v] : table)
    if (s == n) {
      *out = v;
      return true;
    }
  return false;
}

template <typename E>
std::vector<std::string> names(const std::vector<std::pair<const char*, E>>& table) {
  std::vector<std::string> out;
  for (const auto& [n, v] : table) out.emplace_back(n);
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

// ---- SQLite helpers ----------------------------------------------------------------------

// A prepared statement; finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool prepared() const { return rc_ == SQLITE_OK; }

  void bind(int i, const std::string& s) {
    sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, const char* s) { sqlite3_bind_text(st_, i, s, -1, SQLITE_STATIC); }
  void bind(int i, int64_t v) { sqlite3_bind_int64(st_, i, v); }
  void bind(int i, int v) { sqlite3_bind_int64(st_, i, v); }
  void bind(int i, bool v) { sqlite3_bind_int(st_, i, v ? 1 : 0); }
  void bind(int i, double v) { sqlite3_bind_double(st_, i, v); }

  int step() { return rc_ = sqlite3_step(st_); }   // SQLITE_ROW, SQLITE_DONE or an error
  void reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  int64_t i64(int c) const { return sqlite3_column_int64(st_, c); }
  double f64(int c) const { return sqlite3_column_double(st_, c); }
  std::string text(int c) const {
    const unsigned char* p = sqlite3_column_text(st_, c);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  }

 private:
  sqlite3_stmt* st_ = nullptr;
  int rc_ = SQLITE_OK;
};

Status sql_error(const std::string& path, sqlite3* db, const std::string& what) {
  return Status::error(Error{path, "", "", what + ": " + (db ? sqlite3_errmsg(db) : "out of memory")});
}

// ---- validation of measurement lines ----------------------------------------------------

struct DeviceKey {
  std::string name, driver, cuda, nccl, cudnn, host;
  auto tie() const { return std::tie(name, driver, cuda, nccl, cudnn, host); }
  bool operator<(const DeviceKey& o) const { return tie() < o.tie(); }
};

struct ParsedLine {
  DeviceInfo device;            // id unset
  bool is_op = true;
  OpPoint op;                   // device_id unset
  CollPoint coll;               // device_id unset
};

// Collects the errors of one line; every field check goes through here.
class LineChecker {
 public:
  explicit LineChecker(std::string where) : where_(std::move(where)) {}
  const std::vector<Error>& errors() const { return errors_; }

  void fail(const std::string& path, const std::string& value, std::string msg) {
    errors_.push_back(Error{where_, path, value, std::move(msg)});
  }

  // Unknown keys are errors (STYLE.md 5), with a suggestion when one is close.
  void only_keys(const json& obj, const std::string& path, const std::vector<std::string>& allowed,
                 const std::string& what) {
    for (const auto& [key, v] : obj.items()) {
      bool ok = false;
      for (const auto& a : allowed) ok = ok || a == key;
      if (ok) continue;
      std::string msg = "unknown key for " + what;
      const std::string close = closest_match(key, allowed);
      if (!close.empty() && close != key) msg += "; did you mean \"" + close + "\"?";
      else msg += "; it takes " + join(allowed, ", ");
      fail(path + "/" + key, "", msg);
    }
  }

  // An integer in [lo, hi]; integral-valued floats (8192.0) are accepted. Missing: `*out` is
  // left as is, an error only when required.
  bool integer(const json& obj, const std::string& key, const std::string& path, bool required,
               int64_t lo, int64_t hi, int64_t* out, const char* need) {
    auto it = obj.find(key);
    const std::string p = path + "/" + key;
    if (it == obj.end()) {
      if (required) fail(p, "", std::string("missing; ") + need);
      return false;
    }
    int64_t v = 0;
    bool is_int = false;
    if (it->is_number_integer() && !it->is_number_unsigned()) {
      v = it->get<int64_t>();
      is_int = true;
    } else if (it->is_number_unsigned()) {
      const uint64_t u = it->get<uint64_t>();
      is_int = u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      v = static_cast<int64_t>(u);
    } else if (it->is_number_float()) {
      const double d = it->get<double>();
      is_int = std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18;
      v = is_int ? static_cast<int64_t>(d) : 0;
    }
    if (!is_int || v < lo || v > hi) {
      fail(p, it->dump(), std::string("must be ") + need);
      return false;
    }
    *out = v;
    return true;
  }

  bool integer(const json& obj, const std::string& key, const std::string& path, bool required,
               int64_t lo, int64_t hi, int* out, const char* need) {
    int64_t v = *out;
    const bool ok = integer(obj, key, path, required, lo, hi, &v, need);
    if (ok) *out = static_cast<int>(v);
    return ok;
  }

  // A finite number; `positive` requires > 0, else >= 0.
  bool number(const json& obj, const std::string& key, const std::string& path, bool required,
              bool positive, double* out) {
    auto it = obj.find(key);
    const std::string p = path + "/" + key;
    const char* need = positive ? "a finite number > 0" : "a finite number >= 0";
    if (it == obj.end()) {
      if (required) fail(p, "", std::string("missing; ") + need);
      return false;
    }
    if (!it->is_number() || !std::isfinite(it->get<double>()) ||
        (positive ? !(it->get<double>() > 0) : !(it->get<double>() >= 0))) {
      fail(p, it->dump(), std::string("must be ") + need);
      return false;
    }
    *out = it->get<double>();
    return true;
  }

  bool string(const json& obj, const std::string& key, const std::string& path, bool required,
              bool non_empty, std::string* out) {
    auto it = obj.find(key);
    const std::string p = path + "/" + key;
    if (it == obj.end()) {
      if (required) fail(p, "", non_empty ? "missing; a non-empty string" : "missing; a string");
      return false;
    }
    if (!it->is_string() || (non_empty && it->get_ref<const std::string&>().empty())) {
      fail(p, it->dump(), non_empty ? "must be a non-empty string" : "must be a string");
      return false;
    }
    *out = it->get<std::string>();
    return true;
  }

  bool boolean(const json& obj, const std::string& key, const std::string& path, bool* out) {
    auto it = obj.find(key);
    if (it == obj.end()) return false;
    if (!it->is_boolean()) {
      fail(path + "/" + key, it->dump(), "must be true or false");
      return false;
    }
    *out = it->get<bool>();
    return true;
  }

  template <typename E>
  bool name(const json& obj, const std::string& key, const std::string& path, bool required,
            const std::vector<std::pair<const char*, E>>& table, E* out,
            const std::vector<std::string>& extra = {}, std::string* matched_extra = nullptr) {
    auto it = obj.find(key);
    const std::string p = path + "/" + key;
    std::vector<std::string> all = names(table);
    all.insert(all.end(), extra.begin(), extra.end());
    if (it == obj.end()) {
      if (required) fail(p, "", "missing; one of " + join(all, " "));
      return false;
    }
    if (it->is_string()) {
      const auto& s = it->get_ref<const std::string&>();
      if (parse_name(table, s, out)) return true;
      for (const auto& x : extra)
        if (s == x) {
          if (matched_extra) *matched_extra = x;
          return true;
        }
      std::string msg = "must be one of " + join(all, " ");
      const std::string close = closest_match(s, all);
      if (!close.empty()) msg += "; did you mean \"" + close + "\"?";
      fail(p, it->dump(), msg);
      return false;
    }
    fail(p, it->dump(), "must be a string, one of " + join(all, " "));
    return false;
  }

 private:
  std::string where_;
  std::vector<Error> errors_;
};

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kIntMax = std::numeric_limits<int>::max();

void check_device(LineChecker& c, const json& d, DeviceInfo* dev) {
  if (!d.is_object()) {
    c.fail("/device", d.dump(), "must be an object with name, driver, cuda, nccl, cudnn, host, date, gpus");
    return;
  }
  c.only_keys(d, "/device", {"name", "driver", "cuda", "nccl", "cudnn", "host", "date", "gpus"},
              "a device");
  c.string(d, "name", "/device", true, true, &dev->name);
  c.string(d, "driver", "/device", false, false, &dev->driver);
  c.string(d, "cuda", "/device", false, false, &dev->cuda);
  c.string(d, "nccl", "/device", false, false, &dev->nccl);
  c.string(d, "cudnn", "/device", false, false, &dev->cudnn);
  c.string(d, "host", "/device", false, false, &dev->host);
  c.string(d, "date", "/device", false, false, &dev->date);
  c.integer(d, "gpus", "/device", false, 0, kIntMax, &dev->gpus,
            "an integer >= 0 (GPUs in the node; 0 = unknown)");
}

void check_op(LineChecker& c, const json& o, OpPoint* op) {
  if (!o.is_object()) {
    c.fail("/op", o.dump(), "must be an object (calibrate/FORMAT.md section 1)");
    return;
  }
  if (!c.name(o, "class", "/op", true, kOpClasses, &op->cls)) return;  // the rest depends on it
  c.name(o, "dtype", "/op", false, kDTypes, &op->dtype);
  c.string(o, "name", "/op", false, false, &op->name);
  const char* pos = "a positive integer";
  switch (op->cls) {
    case OpClass::kGemm:
      c.only_keys(o, "/op", {"class", "dtype", "name", "m", "n", "k", "batch"}, "a gemm op");
      c.integer(o, "m", "/op", true, 1, kI64Max, &op->m, pos);
      c.integer(o, "n", "/op", true, 1, kI64Max, &op->n, pos);
      c.integer(o, "k", "/op", true, 1, kI64Max, &op->k, pos);
      c.integer(o, "batch", "/op", false, 1, kI64Max, &op->batch, pos);
      break;
    case OpClass::kAttention: {
      c.only_keys(o, "/op",
                  {"class", "dtype", "name", "batch", "heads", "kv_heads", "seq_q", "seq_kv",
                   "head_dim", "causal", "backward"},
                  "an attention op");
      c.integer(o, "batch", "/op", false, 1, kI64Max, &op->batch, pos);
      const bool heads_ok = c.integer(o, "heads", "/op", true, 1, kI64Max, &op->heads, pos);
      c.integer(o, "seq_q", "/op", true, 1, kI64Max, &op->seq_q, pos);
      c.integer(o, "seq_kv", "/op", true, 1, kI64Max, &op->seq_kv, pos);
      c.integer(o, "head_dim", "/op", true, 1, kI64Max, &op->head_dim, pos);
      // kv_heads defaults to heads (multi-head attention); grouped-query needs heads % kv == 0.
      if (heads_ok) op->kv_heads = op->heads;
      if (c.integer(o, "kv_heads", "/op", false, 1, kI64Max, &op->kv_heads, pos) && heads_ok &&
          op->heads % op->kv_heads != 0)
        c.fail("/op/kv_heads", std::to_string(op->kv_heads),
               "must divide heads = " + std::to_string(op->heads));
      c.boolean(o, "causal", "/op", &op->causal);
      c.boolean(o, "backward", "/op", &op->backward);
      break;
    }
    case OpClass::kOffload:  // a host copy: the bytes copied, the direction in the name
      c.only_keys(o, "/op", {"class", "dtype", "name", "bytes"}, "an offload (host copy) op");
      c.integer(o, "bytes", "/op", true, 1, kI64Max, &op->bytes, "a positive integer (bytes copied)");
      if (!op->name.ends_with(".d2h") && !op->name.ends_with(".h2d"))
        c.fail("/op/name", "\"" + op->name + "\"",
               "an offload op's name ending in \".d2h\" (device to host) or \".h2d\" (host to device)");
      break;
    default:  // memory-bound: the HBM bytes moved
      c.only_keys(o, "/op", {"class", "dtype", "name", "bytes"},
                  std::string("a memory-bound (") + name_of(kOpClasses, op->cls) + ") op");
      c.integer(o, "bytes", "/op", true, 1, kI64Max, &op->bytes,
                "a positive integer (HBM bytes read + written)");
      break;
  }
}

void check_coll(LineChecker& c, const json& o, int device_gpus, CollPoint* cp) {
  if (!o.is_object()) {
    c.fail("/coll", o.dump(), "must be an object (calibrate/FORMAT.md section 1)");
    return;
  }
  c.only_keys(o, "/coll", {"kind", "dtype", "bytes", "group_size", "per_node", "nodes"},
              "a collective");
  std::string extra;
  if (c.name(o, "kind", "/coll", true, kCollKinds, &cp->kind, {kSendRecv}, &extra))
    cp->send_recv = extra == kSendRecv;
  c.name(o, "dtype", "/coll", false, kDTypes, &cp->dtype);
  c.integer(o, "bytes", "/coll", true, 1, kI64Max, &cp->bytes,
            "a positive integer (nccl-tests size: all-gather output, reduce-scatter input)");
  if (!c.integer(o, "group_size", "/coll", true, 1, kIntMax, &cp->group_size,
                 "an integer >= 1 (ranks in the group)"))
    return;
  const int g = cp->group_size;
  int per_node = 0, nodes = 0;
  const bool has_per = c.integer(o, "per_node", "/coll", false, 1, g, &per_node,
                                 "an integer in [1, group_size] (ranks per node)");
  const bool has_nodes = c.integer(o, "nodes", "/coll", false, 1, g, &nodes,
                                   "an integer in [1, group_size] (nodes spanned)");
  if ((o.contains("per_node") && !has_per) || (o.contains("nodes") && !has_nodes)) return;
  if (!has_per && !has_nodes) {
    per_node = std::min(g, device_gpus > 0 ? device_gpus : g);
    nodes = (g + per_node - 1) / per_node;
  } else if (!has_nodes) {
    nodes = (g + per_node - 1) / per_node;
  } else if (!has_per) {
    per_node = (g + nodes - 1) / nodes;
  } else if (nodes != (g + per_node - 1) / per_node) {
    c.fail("/coll/nodes", std::to_string(nodes),
           "does not match group_size = " + std::to_string(g) + " at per_node = " +
               std::to_string(per_node) + "; expected " +
               std::to_string((g + per_node - 1) / per_node));
  }
  cp->per_node = per_node;
  cp->nodes = nodes;
}

// Validates one non-blank line; errors go to `c`.
ParsedLine check_line(LineChecker& c, const std::string& line) {
  ParsedLine pl;
  if (json_too_deep(line)) {
    c.fail("", "", json_too_deep_message("a measurement"));
    return pl;
  }
  const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    std::string head = line.substr(0, 60);
    if (line.size() > 60) head += "...";
    c.fail("", "", "not a JSON object: " + head);
    return pl;
  }
  if (!j.is_object()) {
    c.fail("", "", "must be a JSON object, not " + std::string(j.type_name()));
    return pl;
  }
  std::string kind;
  auto kit = j.find("kind");
  if (kit == j.end()) {
    c.fail("/kind", "", "missing; \"op\" or \"collective\"");
    return pl;
  }
  if (!kit->is_string() || (*kit != "op" && *kit != "collective")) {
    c.fail("/kind", kit->dump(), "must be \"op\" or \"collective\"");
    return pl;
  }
  pl.is_op = *kit == "op";
  if (pl.is_op)
    c.only_keys(j, "", {"kind", "device", "op", "time_us", "min_us", "kernel_us", "runs", "source"},
                "an op line");
  else
    c.only_keys(j, "",
                {"kind", "device", "coll", "time_us", "runs", "source", "algbw_GBps", "busbw_GBps"},
                "a collective line");

  auto dit = j.find("device");
  if (dit == j.end()) c.fail("/device", "", "missing; an object with at least a name");
  else check_device(c, *dit, &pl.device);

  const char* body = pl.is_op ? "op" : "coll";
  auto bit = j.find(body);
  if (bit == j.end()) {
    c.fail(std::string("/") + body, "",
           pl.is_op ? "missing; the op measured (calibrate/FORMAT.md section 2)"
                    : "missing; the collective measured (calibrate/FORMAT.md section 2)");
  } else if (pl.is_op) {
    check_op(c, *bit, &pl.op);
  } else {
    check_coll(c, *bit, pl.device.gpus, &pl.coll);
  }

  double time_us = 0, min_us = 0;
  int runs = 0;
  std::string source;
  if (c.number(j, "time_us", "", true, true, &time_us) && time_us < 1e-3)
    c.fail("/time_us", j["time_us"].dump(), "below 0.001 us (1 ns): no kernel or transfer is that fast; "
                                            "time_us is in microseconds");
  if (pl.is_op) {
    c.number(j, "min_us", "", false, false, &min_us);
    // trainsim_calibrator's CUPTI kernel-only median: checked, but schema v1 has no column.
    double kernel_us = 0;
    c.number(j, "kernel_us", "", false, false, &kernel_us);
  }
  c.integer(j, "runs", "", false, 1, kIntMax, &runs, "an integer >= 1 (timed repetitions)");
  c.string(j, "source", "", false, false, &source);
  if (pl.is_op) {
    pl.op.time_us = time_us;
    pl.op.min_us = min_us;
    pl.op.runs = runs;
    pl.op.source = std::move(source);
  } else {
    pl.coll.time_us = time_us;
    pl.coll.runs = runs;
    pl.coll.source = std::move(source);
    c.number(j, "algbw_GBps", "", false, false, &pl.coll.algbw_GBps);
    c.number(j, "busbw_GBps", "", false, false, &pl.coll.busbw_GBps);
  }
  return pl;
}

bool blank(const std::string& s) {
  for (char ch : s)
    if (ch != ' ' && ch != '\t' && ch != '\r') return false;
  return true;
}

}  // namespace

// ---- CalibrationDb ------------------------------------------------------------------------

struct CalibrationDb::Impl {
  sqlite3* db = nullptr;
  ~Impl() {
    if (db) sqlite3_close_v2(db);
  }
};

Result<std::unique_ptr<CalibrationDb>> CalibrationDb::open(const std::string& path, bool create) {
  auto fail = [&](const std::string& msg) -> Result<std::unique_ptr<CalibrationDb>> {
    return Status::error(Error{path, "", "", msg});
  };
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (!exists && !create)
    return fail("no such calibration database (create one with `trainsim calibrate import`)");
  if (exists && std::filesystem::is_directory(path, ec))
    return fail("is a directory, not a calibration database");

  std::unique_ptr<CalibrationDb> self(new CalibrationDb());
  self->path_ = path;
  self->impl_ = std::make_unique<Impl>();
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &self->impl_->db, flags, nullptr) != SQLITE_OK)
    return fail(std::string("cannot open: ") +
                (self->impl_->db ? sqlite3_errmsg(self->impl_->db) : "out of memory"));
  sqlite3* db = self->impl_->db;
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);   // another process importing: wait rather than fail

  // The first read of the header tells a non-SQLite file ("file is not a database"); it also
  // rolls back a hot journal left by an interrupted import.
  int tables = 0;
  {
    Stmt st(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'");
    if (!st.prepared() || st.step() != SQLITE_ROW)
      return fail(std::string("not an SQLite calibration database (") + sqlite3_errmsg(db) + ")");
    tables = static_cast<int>(st.i64(0));
  }
  if (sqlite3_exec(db, "PRAGMA foreign_keys = ON", nullptr, nullptr, nullptr) != SQLITE_OK)
    return fail(std::string("cannot enable foreign keys: ") + sqlite3_errmsg(db));

  if (tables == 0) {
    if (!create)
      return fail("an empty SQLite file, not a calibration database (found no tables)");
    char* err = nullptr;
    // One transaction, so a file is either empty or has the whole schema and its version.
    const std::string sql = std::string("BEGIN IMMEDIATE;") + kSchema +
                            "INSERT INTO meta(key, value) VALUES('schema_version', '" +
                            kSchemaVersion + "');COMMIT;";
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db);
      sqlite3_free(err);
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return fail("cannot create the schema: " + msg);
    }
    return self;
  }

  Stmt meta(db, "SELECT value FROM meta WHERE key = 'schema_version'");
  if (!meta.prepared())
    return fail("an SQLite database without a meta table, not a trainsim calibration database");
  if (meta.step() != SQLITE_ROW)
    return fail("a meta table without schema_version, not a trainsim calibration database");
  const std::string version = meta.text(0);
  if (version != kSchemaVersion)
    return fail("schema version \"" + version + "\"; this trainsim reads schema version " +
                kSchemaVersion + " (re-import the measurements into a new file)");
  return self;
}

CalibrationDb::~CalibrationDb() = default;

Result<ImportStats> CalibrationDb::import_jsonl(const std::string& path) {
  auto lines = read_lines(path);
  if (!lines.ok()) return lines.status();
  return import_lines(lines.value(), path);
}

Result<ImportStats> CalibrationDb::import_lines(const std::vector<std::string>& lines,
                                                const std::string& label) {
  // Validate everything before touching the database: a bad file writes nothing, and the
  // write transaction stays as short as the inserts themselves.
  struct Row {                      // a valid line, its device as an index into `devs`
    size_t dev = 0;
    bool is_op = true;
    OpPoint op;
    CollPoint coll;
  };
  std::vector<Row> rows;
  rows.reserve(lines.size());
  // Devices of this file in first-seen order, each with its newest date (ISO 8601 sorts as
  // text) and largest GPU count.
  std::vector<DeviceInfo> devs;
  std::map<DeviceKey, size_t> dev_index;
  Status st;
  size_t bad_lines = 0, hidden = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (blank(lines[i])) continue;
    LineChecker c(label + ": line " + std::to_string(i + 1));
    ParsedLine pl = check_line(c, lines[i]);
    if (c.errors().empty()) {
      DeviceInfo& d = pl.device;
      auto [it, fresh] =
          dev_index.emplace(DeviceKey{d.name, d.driver, d.cuda, d.nccl, d.cudnn, d.host}, devs.size());
      if (fresh) {
        devs.push_back(std::move(d));
      } else {
        devs[it->second].date = std::max(devs[it->second].date, d.date);
        devs[it->second].gpus = std::max(devs[it->second].gpus, d.gpus);
      }
      rows.push_back(Row{it->second, pl.is_op, std::move(pl.op), std::move(pl.coll)});
      continue;
    }
    ++bad_lines;
    for (const auto& e : c.errors()) {
      if (st.errors().size() < kMaxErrors) st.add(e);
      else ++hidden;
    }
  }
  if (hidden > 0)
    st.add(Error{label, "", "",
                 std::to_string(hidden) + " more errors not shown (" +
                     std::to_string(bad_lines) + " bad lines in all); nothing was imported"});
  if (!st.ok()) return st;

  sqlite3* db = impl_->db;
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
    return sql_error(path_, db, "cannot start the import of " + label);
  auto rollback = [&](const std::string& what) -> Result<ImportStats> {
    Status s = sql_error(path_, db, "importing " + label + ": " + what + "; nothing was imported");
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return s;
  };

  Stmt find_dev(db,
                "SELECT id FROM devices WHERE name = ?1 AND driver = ?2 AND cuda = ?3 "
                "AND nccl = ?4 AND cudnn = ?5 AND host = ?6");
  Stmt add_dev(db,
               "INSERT INTO devices(name, driver, cuda, nccl, cudnn, host, date, gpus) "
               "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  // A device already there keeps its newest date and largest GPU count.
  Stmt upd_dev(db,
               "UPDATE devices SET date = max(date, ?2), gpus = max(gpus, ?3) WHERE id = ?1");
  Stmt add_op(db,
              "INSERT INTO op_measurements(device_id, class, dtype, name, m, n, k, batch, heads, "
              "kv_heads, seq_q, seq_kv, head_dim, causal, backward, bytes, time_us, min_us, runs, "
              "source) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
              "?16, ?17, ?18, ?19, ?20)");
  Stmt add_coll(db,
                "INSERT INTO coll_measurements(device_id, kind, dtype, bytes, group_size, "
                "per_node, nodes, time_us, algbw_GBps, busbw_GBps, runs, source) "
                "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
  if (!find_dev.prepared() || !add_dev.prepared() || !upd_dev.prepared() || !add_op.prepared() ||
      !add_coll.prepared())
    return rollback("cannot prepare statements");

  ImportStats stats;
  for (DeviceInfo& d : devs) {
    find_dev.reset();
    find_dev.bind(1, d.name), find_dev.bind(2, d.driver), find_dev.bind(3, d.cuda);
    find_dev.bind(4, d.nccl), find_dev.bind(5, d.cudnn), find_dev.bind(6, d.host);
    const int rc = find_dev.step();
    if (rc == SQLITE_ROW) {
      d.id = find_dev.i64(0);
      upd_dev.reset();
      upd_dev.bind(1, d.id), upd_dev.bind(2, d.date), upd_dev.bind(3, d.gpus);
      if (upd_dev.step() != SQLITE_DONE) return rollback("cannot update device " + d.name);
    } else if (rc == SQLITE_DONE) {
      add_dev.reset();
      add_dev.bind(1, d.name), add_dev.bind(2, d.driver), add_dev.bind(3, d.cuda);
      add_dev.bind(4, d.nccl), add_dev.bind(5, d.cudnn), add_dev.bind(6, d.host);
      add_dev.bind(7, d.date), add_dev.bind(8, d.gpus);
      if (add_dev.step() != SQLITE_DONE) return rollback("cannot add device " + d.name);
      d.id = sqlite3_last_insert_rowid(db);
      ++stats.devices_added;
    } else {
      return rollback("cannot look up device " + d.name);
    }
  }
  for (const Row& row : rows) {
    const int64_t device_id = devs[row.dev].id;
    if (row.is_op) {
      const OpPoint& o = row.op;
      add_op.reset();
      add_op.bind(1, device_id);
      add_op.bind(2, name_of(kOpClasses, o.cls));
      add_op.bind(3, name_of(kDTypes, o.dtype));
      add_op.bind(4, o.name);
      add_op.bind(5, o.m), add_op.bind(6, o.n), add_op.bind(7, o.k), add_op.bind(8, o.batch);
      add_op.bind(9, o.heads), add_op.bind(10, o.kv_heads), add_op.bind(11, o.seq_q);
      add_op.bind(12, o.seq_kv), add_op.bind(13, o.head_dim);
      add_op.bind(14, o.causal), add_op.bind(15, o.backward), add_op.bind(16, o.bytes);
      add_op.bind(17, o.time_us), add_op.bind(18, o.min_us), add_op.bind(19, o.runs);
      add_op.bind(20, o.source);
      if (add_op.step() != SQLITE_DONE) return rollback("cannot add an op measurement");
      ++stats.ops;
    } else {
      const CollPoint& c = row.coll;
      add_coll.reset();
      add_coll.bind(1, device_id);
      add_coll.bind(2, c.send_recv ? kSendRecv : name_of(kCollKinds, c.kind));
      add_coll.bind(3, name_of(kDTypes, c.dtype));
      add_coll.bind(4, c.bytes), add_coll.bind(5, c.group_size), add_coll.bind(6, c.per_node);
      add_coll.bind(7, c.nodes), add_coll.bind(8, c.time_us), add_coll.bind(9, c.algbw_GBps);
      add_coll.bind(10, c.busbw_GBps), add_coll.bind(11, c.runs), add_coll.bind(12, c.source);
      if (add_coll.step() != SQLITE_DONE) return rollback("cannot add a collective measurement");
      ++stats.collectives;
    }
    ++stats.lines;
  }
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
    return rollback("cannot commit");
  return stats;
}

Result<std::vector<DeviceInfo>> CalibrationDb::devices() const {
  sqlite3* db = impl_->db;
  Stmt st(db, "SELECT id, name, driver, cuda, nccl, cudnn, host, date, gpus FROM devices ORDER BY id");
  if (!st.prepared()) return sql_error(path_, db, "cannot read devices");
  std::vector<DeviceInfo> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    DeviceInfo d;
    d.id = st.i64(0);
    d.name = st.text(1), d.driver = st.text(2), d.cuda = st.text(3), d.nccl = st.text(4);
    d.cudnn = st.text(5), d.host = st.text(6), d.date = st.text(7);
    d.gpus = static_cast<int>(st.i64(8));
    out.push_back(std::move(d));
  }
  if (rc != SQLITE_DONE) return sql_error(path_, db, "cannot read devices");
  return out;
}

Result<std::vector<OpPoint>> CalibrationDb::op_points(int64_t device_id) const {
  sqlite3* db = impl_->db;
  Stmt st(db,
          "SELECT id, class, dtype, name, m, n, k, batch, heads, kv_heads, seq_q, seq_kv, "
          "head_dim, causal, backward, bytes, time_us, min_us, runs, source "
          "FROM op_measurements WHERE device_id = ?1 ORDER BY id");
  if (!st.prepared()) return sql_error(path_, db, "cannot read op measurements");
  st.bind(1, device_id);
  std::vector<OpPoint> out;
  Status bad;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    OpPoint o;
    o.device_id = device_id;
    const std::string cls = st.text(1), dt = st.text(2);
    if (!parse_name(kOpClasses, cls, &o.cls) || !parse_name(kDTypes, dt, &o.dtype)) {
      bad.add(Error{path_, "op_measurements/" + std::to_string(st.i64(0)), cls + "/" + dt,
                    "unknown op class or dtype in the database"});
      continue;
    }
    o.name = st.text(3);
    o.m = st.i64(4), o.n = st.i64(5), o.k = st.i64(6), o.batch = st.i64(7);
    o.heads = st.i64(8), o.kv_heads = st.i64(9), o.seq_q = st.i64(10), o.seq_kv = st.i64(11);
    o.head_dim = st.i64(12);
    o.causal = st.i64(13) != 0, o.backward = st.i64(14) != 0;
    o.bytes = st.i64(15);
    o.time_us = st.f64(16), o.min_us = st.f64(17);
    o.runs = static_cast<int>(st.i64(18));
    o.source = st.text(19);
    out.push_back(std::move(o));
  }
  if (rc != SQLITE_DONE) return sql_error(path_, db, "cannot read op measurements");
  if (!bad.ok()) return bad;
  return out;
}

Result<std::vector<CollPoint>> CalibrationDb::coll_points(int64_t device_id) const {
  sqlite3* db = impl_->db;
  Stmt st(db,
          "SELECT id, kind, dtype, bytes, group_size, per_node, nodes, time_us, algbw_GBps, "
          "busbw_GBps, runs, source FROM coll_measurements WHERE device_id = ?1 ORDER BY id");
  if (!st.prepared()) return sql_error(path_, db, "cannot read collective measurements");
  st.bind(1, device_id);
  std::vector<CollPoint> out;
  Status bad;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    CollPoint c;
    c.device_id = device_id;
    const std::string kind = st.text(1), dt = st.text(2);
    c.send_recv = kind == kSendRecv;
    if ((!c.send_recv && !parse_name(kCollKinds, kind, &c.kind)) ||
        !parse_name(kDTypes, dt, &c.dtype)) {
      bad.add(Error{path_, "coll_measurements/" + std::to_string(st.i64(0)), kind + "/" + dt,
                    "unknown collective kind or dtype in the database"});
      continue;
    }
    c.bytes = st.i64(3);
    c.group_size = static_cast<int>(st.i64(4));
    c.per_node = static_cast<int>(st.i64(5));
    c.nodes = static_cast<int>(st.i64(6));
    c.time_us = st.f64(7), c.algbw_GBps = st.f64(8), c.busbw_GBps = st.f64(9);
    c.runs = static_cast<int>(st.i64(10));
    c.source = st.text(11);
    out.push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) return sql_error(path_, db, "cannot read collective measurements");
  if (!bad.ok()) return bad;
  return out;
}

Status CalibrationDb::store_fit(const FitRecord& f) {
  Status bad;
  if (f.what.empty()) bad.add(Error{path_, "fits/what", "", "must be a non-empty name"});
  const json params = json::parse(f.params_json, nullptr, false);
  if (params.is_discarded() || !params.is_object())
    bad.add(Error{path_, "fits/" + f.what + "/params", f.params_json, "must be a JSON object"});
  if (!std::isfinite(f.residual) || f.residual < 0)
    bad.add(Error{path_, "fits/" + f.what + "/residual", std::to_string(f.residual),
                  "must be a finite number >= 0"});
  if (f.points < 0)
    bad.add(Error{path_, "fits/" + f.what + "/points", std::to_string(f.points), "must be >= 0"});
  if (!bad.ok()) return bad;
  sqlite3* db = impl_->db;
  Stmt st(db,
          "INSERT OR REPLACE INTO fits(device_id, what, params, residual, points) "
          "VALUES(?1, ?2, ?3, ?4, ?5)");
  if (!st.prepared()) return sql_error(path_, db, "cannot store fit " + f.what);
  st.bind(1, f.device_id), st.bind(2, f.what), st.bind(3, f.params_json);
  st.bind(4, f.residual), st.bind(5, f.points);
  if (st.step() != SQLITE_DONE)
    return sql_error(path_, db,
                     "cannot store fit " + f.what + " for device " + std::to_string(f.device_id));
  return Status();
}

Result<std::vector<FitRecord>> CalibrationDb::fits(int64_t device_id) const {
  sqlite3* db = impl_->db;
  Stmt st(db,
          "SELECT what, params, residual, points FROM fits WHERE device_id = ?1 ORDER BY what");
  if (!st.prepared()) return sql_error(path_, db, "cannot read fits");
  st.bind(1, device_id);
  std::vector<FitRecord> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    FitRecord f;
    f.device_id = device_id;
    f.what = st.text(0), f.params_json = st.text(1);
    f.residual = st.f64(2);
    f.points = static_cast<int>(st.i64(3));
    out.push_back(std::move(f));
  }
  if (rc != SQLITE_DONE) return sql_error(path_, db, "cannot read fits");
  return out;
}

Result<std::vector<std::string>> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(Error{path, "", "", "cannot open for reading"});
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  if (in.bad()) return Status::error(Error{path, "", "", "read error"});
  return lines;
}

}  // namespace trainsim
