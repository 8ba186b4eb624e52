// File: reports/results_store.h
// The SQLite results store of verify mode: one row per verification (`trainsim verify`) or
// trace comparison (`trainsim compare-trace`), so that `trainsim verify --history` can show how
// the prediction error moved across versions. Schema version 2:
//   meta(key TEXT PRIMARY KEY, value TEXT)                 -- schema_version = 2
//   verifications(id INTEGER PRIMARY KEY, time_utc, scenario, scenario_hash, plan_hash, version,
//                 machine, device, executor, calibration, ranks, predicted_s, measured_s,
//                 step_error, tolerance, passed, classes_json,
//                 kind,           -- 2: "verify" | "compare-trace" (default 'verify')
//                 details_json)   -- 2: figures of that kind (compare-trace: trace, rank, step,
//                                 --    shares, kernel counts); '{}' when none
// A store of schema 1 (no kind, details_json) is upgraded in place when opened (one
// transaction; its records become kind "verify"); another schema version is refused.
// Each add() is one transaction (BEGIN IMMEDIATE ... COMMIT) in the default rollback-journal
// mode: a process killed mid-write leaves a hot journal that the next open rolls back, so the
// store always opens with every record committed before the kill (a test kills a writer).
// Values reach SQL only through bound parameters. A busy database is waited for up to 5 s.
// Thread-safety: one ResultsStore per thread (an SQLite connection).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "sim/status.h"

namespace trainsim {

struct VerifyRecord {
  int64_t id = 0;                  // assigned by the store
  std::string time_utc;            // "2026-11-22T06:00:00Z"; add() fills it when empty
  std::string scenario, scenario_hash, plan_hash, version, machine, device, executor, calibration;
  int ranks = 0;
  double predicted_s = 0, measured_s = 0, step_error = 0, tolerance = 0;
  bool passed = false;
  std::string classes_json;        // the report's "classes" array
  std::string kind = "verify";     // "verify" | "compare-trace"
  std::string details_json = "{}"; // compare-trace: trace, rank, step, shares, kernel counts
};

class ResultsStore {
 public:
  // Error names the path (cannot open, not a results store, other schema version).
  static Result<std::unique_ptr<ResultsStore>> open(const std::string& path, bool create);
  ~ResultsStore();
  ResultsStore(const ResultsStore&) = delete;
  ResultsStore& operator=(const ResultsStore&) = delete;

  // One transaction; returns the new id.
  Result<int64_t> add(const VerifyRecord& r);
  // In id order; scenario "" = all.
  Result<std::vector<VerifyRecord>> records(const std::string& scenario) const;
  const std::string& path() const { return path_; }

 private:
  ResultsStore() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

// The history table: per scenario and kind (verify and compare-trace records are kept apart:
// "scenario quickstart (compare-trace)"), per version (in order of first appearance), the
// number of records, the last and mean signed step error, and the change of the mean from the
// previous version; then the last 10 records with their kind. "no verifications recorded" when
// empty.
std::string format_history(const std::vector<VerifyRecord>& records);

}  // namespace trainsim
