// File: reports/results_store.h
// The SQLite results store of verify mode: one row per verification (`trainsim verify`) or
// trace comparison (`trainsim compare-trace`), so that `trainsim verify --history` can show how
// the prediction error moved across versions; and the points of sharded sweeps. Schema version 2:
//   meta(key TEXT PRIMARY KEY, value TEXT)                 -- schema_version = 2
//   verifications(id INTEGER PRIMARY KEY, time_utc, scenario, scenario_hash, plan_hash, version,
//                 machine, device, executor, calibration, ranks, predicted_s, measured_s,
//                 step_error, tolerance, passed, classes_json,
//                 kind,           -- 2: "verify" | "compare-trace" (default 'verify')
//                 details_json)   -- 2: figures of that kind (compare-trace: trace, rank, step,
//                                 --    shares, kernel counts); '{}' when none
//   sweep_points(sweep_key, point, points, scenario, set_json, point_json, version, machine, time_utc,
//                PRIMARY KEY(sweep_key, point))
//                -- the points of sharded sweeps (`trainsim sweep --shard I/N --store FILE`): a
//                -- point's record (scenarios/sweep.h sweep_point_record) under its sweep's key;
//                -- created when missing, in a store of either schema (a table of its own, so
//                -- the version stays 2 and older readers still open the store)
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

// One point of a sweep (scenarios/sweep.h) as the store keeps it.
struct SweepPointRecord {
  std::string sweep_key;     // SweepResult::key
  int64_t point = 0;         // index in the sweep's product order
  int64_t points = 0;        // the sweep's point count
  std::string scenario;      // SweepResult::scenario
  std::string set_json;      // the point's KEY=VALUE overrides (a JSON array)
  std::string point_json;    // sweep_point_record()
  std::string version, machine, time_utc;   // who computed it, when (add fills an empty time)
};

class ResultsStore {
 public:
  // Error names the path (cannot open, not a results store, other schema version); when the
  // file is missing and create is false, `missing_hint` says what makes one.
  static Result<std::unique_ptr<ResultsStore>> open(const std::string& path, bool create,
                                                    const std::string& missing_hint = "run `trainsim verify` first");
  ~ResultsStore();
  ResultsStore(const ResultsStore&) = delete;
  ResultsStore& operator=(const ResultsStore&) = delete;

  // One transaction; returns the new id.
  Result<int64_t> add(const VerifyRecord& r);
  // In id order; scenario "" = all.
  Result<std::vector<VerifyRecord>> records(const std::string& scenario) const;
  // Sweep points: all in one transaction; a point already stored under the same key is
  // replaced (a shard run again). Errors name the store.
  Status add_sweep_points(const std::vector<SweepPointRecord>& recs);
  // The points stored under `sweep_key`, by point index.
  Result<std::vector<SweepPointRecord>> sweep_points(const std::string& sweep_key) const;
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
