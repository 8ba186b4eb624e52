// File: scenarios/published_run.h
// Replays rows of ../shared/validation/published_runs.jsonl (real training runs with their
// measured throughput) as scenarios. A row may leave any field null; scenario_from_row fills
// each null with the documented default of scenarios/README.md ("Defaults for published rows")
// and lists every default it applied, so a report can say what was assumed. Rows that need a
// feature trainsim does not have yet (MoE, context parallelism) are returned with `unsupported`
// set instead of an error, so a validation sweep can list them as skipped.
//
//   auto rows = read_jsonl(path);
//   for (const auto& row : rows.value()) {
//     if (row.contains("row_kind")) continue;           // calibration anchors
//     Result<RowScenario> rs = scenario_from_row(row);
//     if (!rs.ok() || !rs->unsupported.empty()) continue;
//     predict(rs->scenario, {});
//   }
//
// Thread-safety: reentrant.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scenarios/scenario.h"
#include "sim/status.h"

namespace trainsim {

struct RunRow {
  std::string id;
  nlohmann::json raw;
};

struct RowScenario {
  Scenario scenario;
  // One entry per default applied, e.g. "micro_batch=1 (null in row)".
  std::vector<std::string> defaults;
  // Non-empty when the row cannot be simulated; the scenario is then incomplete. Forms:
  // "unsupported: moe", "unsupported: context parallelism (cp=2)", "invalid: <loader errors>".
  std::string unsupported;
  // A published row: the scenario document it became (what load_scenario_json loaded, its
  // defaults applied), to write as a scenario file (`trainsim validate --scenarios DIR`); null
  // for a scenario row (that names its file) and where `unsupported` is set.
  nlohmann::json document;
};

// One JSON value per non-blank line; an error names the file and the line.
Result<std::vector<nlohmann::json>> read_jsonl(const std::string& path);
// read_jsonl, keeping the rows that have a string "id".
Result<std::vector<RunRow>> read_run_rows(const std::string& path);
// Error only when the row is not an object with an "id" string and object sections model,
// training, cluster and parallel; everything else is reported through `unsupported`.
// A "scenario row" (trainsim's extension of the schema, used by scenarios/crosschecks.jsonl)
// names a scenario file instead of those sections: {"id", "scenario": "quickstart.json",
// "set": ["parallel.tp=8", ...], "measured": {...}}; the file is read relative to `rows_dir`
// (the directory of the JSON-lines file; "" = the working directory) with the "set" values as
// `--set` overrides, and `defaults` lists the file and the overrides. Loader errors come back
// through `unsupported` ("invalid: ...") as for published rows.
Result<RowScenario> scenario_from_row(const nlohmann::json& row, const std::string& rows_dir = "");
// True when the row is a scenario row (has a "scenario" member).
bool is_scenario_row(const nlohmann::json& row);

}  // namespace trainsim
