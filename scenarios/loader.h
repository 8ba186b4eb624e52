// File: scenarios/loader.h
// Reads a scenario (JSON, format in scenarios/README.md) into a validated Scenario.
//
//   Result<Scenario> s = load_scenario_file("scenarios/llama3_405b_16k.json", {"parallel.tp=4"});
//   if (!s.ok()) { std::cerr << s.status().to_string(); return 2; }
//
// Errors (STYLE.md 5): every error names the file (or "--set" for a bad override), the JSON
// pointer, the offending value and what would be accepted. All problems of a document are
// collected and returned together; unknown keys get a did-you-mean suggestion. No input, however
// malformed (wrong types, nulls, huge numbers, invalid JSON), crashes the loader.
//
// Overrides are "SECTION.KEY=VALUE" strings (or "KEY=VALUE" for top-level keys: name, seed,
// description). VALUE is parsed as JSON when it parses ("4", "true", "[7,8]", "\"x\""), else
// taken as a string ("400Gbps", "1f1b"). They are applied to the document before validation.
//
// Invariants of a returned Scenario: every field filled (no zeros meaning "unset", except
// ParallelSpec::fsdp_shard_group = 0 meaning all of DP); gpus == tp*pp*dp*cp; head_dim > 0;
// layers_per_stage is empty only when layers divide evenly into the virtual stages, else it holds
// one entry per virtual stage in model order (num_virtual_stages in models/compiler.h: pp*vp, pp
// with dualpipe; virtual_stage there maps them to ranks);
// cluster.gpus_per_node <= cluster.gpus (a job smaller than a node gets a node of its size).
// Thread-safety: reentrant (the catalogs are immutable after first use).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "scenarios/scenario.h"
#include "sim/status.h"
#include "sim/units.h"

namespace trainsim {

Result<Scenario> load_scenario_file(const std::string& path,
                                    const std::vector<std::string>& overrides = {});
// file_label names the source in errors and becomes Scenario::file.
Result<Scenario> load_scenario_text(std::string_view json, const std::string& file_label,
                                    const std::vector<std::string>& overrides = {});
// The quickstart scenario compiled into the binary (scenarios/quickstart.json).
Result<Scenario> load_embedded_quickstart(const std::vector<std::string>& overrides = {});
// An already-parsed document (used by scenarios/published_run.h).
Result<Scenario> load_scenario_json(const nlohmann::json& doc, const std::string& file_label,
                                    const std::vector<std::string>& overrides = {});

// A JSON file parsed as the loader parses scenarios (duplicate keys and too deep nesting are
// errors naming `path`); `what` names the file in the errors ("validate report").
Result<nlohmann::json> read_json_document(const std::string& path, const std::string& what);
// The scenario document of a file, parsed but not validated ("" = the embedded quickstart, with
// the file label "<embedded>"); errors as load_scenario_file's for unreadable or malformed JSON.
// For callers that edit the document before loading it (trainsim sweep).
Result<nlohmann::json> read_scenario_document(const std::string& path);
// The document as load_scenario_json sees it once `overrides` are applied (in order: the last
// one of a key wins; KEY=null removes the key). Errors as load_scenario_*'s for the overrides.
Result<nlohmann::json> apply_scenario_overrides(nlohmann::json doc, const std::vector<std::string>& overrides);
// Checks only the form and keys of overrides ("SECTION.KEY=VALUE" with a known section and key),
// the errors load_scenario_* would give for them, without a document.
Status check_overrides(const std::vector<std::string>& overrides);

// The unit parsers (parse_bandwidth, parse_size) live in sim/units.h.

}  // namespace trainsim
