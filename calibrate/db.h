// File: calibrate/db.h
// The calibration database (SQLite): devices with their provenance, op measurements,
// collective measurements, and fitted models. Schema version 1 (calibrate/FORMAT.md):
//   meta(key TEXT PRIMARY KEY, value TEXT)                  -- schema_version = 1
//   devices(id INTEGER PRIMARY KEY, name, driver, cuda, nccl, cudnn, host, date, gpus,
//           UNIQUE(name, driver, cuda, nccl, cudnn, host))
//   op_measurements(id INTEGER PRIMARY KEY, device_id, class, dtype, name, m, n, k, batch,
//           heads, kv_heads, seq_q, seq_kv, head_dim, causal, backward, bytes,
//           time_us, min_us, runs, source)
//   coll_measurements(id INTEGER PRIMARY KEY, device_id, kind, dtype, bytes, group_size,
//           per_node, nodes, time_us, algbw_GBps, busbw_GBps, runs, source)
//   fits(id INTEGER PRIMARY KEY, device_id, what TEXT, params TEXT (JSON), residual REAL,
//           points INTEGER, UNIQUE(device_id, what))
// Imports are transactional: one BEGIN ... COMMIT per file; any error rolls back and the
// database is as it was. Opening a database of another schema version is an error.
// Storage: enumerations as the names of the measurement lines ("gemm", "bf16", "all-reduce",
// "send-recv"); text columns NOT NULL DEFAULT '' (an unknown driver is "", so a device still
// matches itself in the UNIQUE key); the default rollback journal, not WAL: a writer killed
// mid-import leaves a hot journal that the next open rolls back.
// Validation of a line (all errors of all lines at once, at most 50 shown, then nothing is
// written): unknown keys are errors (with "did you mean"); device.name non-empty, other device
// fields strings, gpus >= 0 (0 = unknown); op.class gemm|attention|norm|elementwise|embedding|
// loss|optimizer, dtype bf16|fp16|fp8|fp32 (default bf16), name optional; gemm m n k > 0,
// batch >= 1 (default 1); attention heads seq_q seq_kv head_dim > 0, kv_heads divides heads
// (default heads), causal/backward booleans; memory-bound bytes > 0; time_us > 0; min_us >= 0
// and kernel_us >= 0 on op lines only (kernel_us, trainsim_calibrator's CUPTI kernel time, is
// checked but not stored: schema v1 has no column); runs >= 1; source a string; coll.kind
// (the CollKind names or send-recv), bytes > 0, group_size >= 1, per_node/nodes default to
// per_node = min(group_size, device.gpus or group_size), nodes = ceil(group_size/per_node),
// and must agree when both given; algbw_GBps/busbw_GBps >= 0 (collective lines only).
// Importing the same file twice stores its points twice (measurements are a log).
// Thread-safety: one CalibrationDb per thread (SQLite connection).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "sim/plan.h"
#include "sim/status.h"

namespace trainsim {

struct DeviceInfo {
  int64_t id = 0;
  std::string name, driver, cuda, nccl, cudnn, host, date;
  int gpus = 0;
};

struct OpPoint {                 // one op measurement (shape fields 0 when not applicable)
  int64_t device_id = 0;
  OpClass cls = OpClass::kGemm;
  DType dtype = DType::kBF16;
  std::string name;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  int64_t heads = 0, kv_heads = 0, seq_q = 0, seq_kv = 0, head_dim = 0;
  bool causal = false, backward = false;
  int64_t bytes = 0;
  double time_us = 0, min_us = 0;
  int runs = 0;
  std::string source;
};

struct CollPoint {               // one collective measurement
  int64_t device_id = 0;
  CollKind kind = CollKind::kAllReduce;
  bool send_recv = false;        // point-to-point (kind ignored)
  DType dtype = DType::kBF16;
  int64_t bytes = 0;
  int group_size = 0, per_node = 0, nodes = 0;
  double time_us = 0, algbw_GBps = 0, busbw_GBps = 0;
  int runs = 0;
  std::string source;
};

struct FitRecord {
  int64_t device_id = 0;
  std::string what;              // e.g. "coll/all-reduce/intra", "op/gemm/bf16"
  std::string params_json;       // e.g. {"alpha_us": 4.6, "busbw_GBps": 466}
  double residual = 0;
  int points = 0;
};

struct ImportStats {
  int ops = 0, collectives = 0, devices_added = 0, lines = 0;
};

class CalibrationDb {
 public:
  // Opens (create=true: creates if missing, with the schema). Error names the path.
  static Result<std::unique_ptr<CalibrationDb>> open(const std::string& path, bool create);
  ~CalibrationDb();
  CalibrationDb(const CalibrationDb&) = delete;
  CalibrationDb& operator=(const CalibrationDb&) = delete;

  // Loads measurement lines (calibrate/FORMAT.md section 2) in one transaction. A bad line
  // is an error naming the file, the line number and the field; nothing is written then.
  // Blank lines are skipped; ImportStats::lines counts the lines imported.
  //   error: runs.jsonl: line 17: /op/m = -4: must be a positive integer
  Result<ImportStats> import_jsonl(const std::string& path);
  // Same, from lines already in memory (label used in errors).
  Result<ImportStats> import_lines(const std::vector<std::string>& lines, const std::string& label);

  // Devices and points in id order (import order); an unknown device_id gives no points.
  Result<std::vector<DeviceInfo>> devices() const;
  Result<std::vector<OpPoint>> op_points(int64_t device_id) const;
  Result<std::vector<CollPoint>> coll_points(int64_t device_id) const;
  // Insert or replace (device_id, what). Error: unknown device (foreign key), empty `what`,
  // params_json not a JSON object, residual negative or not finite, points < 0.
  Status store_fit(const FitRecord& f);
  Result<std::vector<FitRecord>> fits(int64_t device_id) const;   // ordered by `what`

  const std::string& path() const { return path_; }

 private:
  CalibrationDb() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

// The lines of a text file, without their '\n' (and a trailing '\r', for files written on
// Windows). Error: the file cannot be read (names the path). Independent of the database; the
// CLI and the importers use it to read measurement files.
Result<std::vector<std::string>> read_lines(const std::string& path);

}  // namespace trainsim
