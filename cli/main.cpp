// trainsim: the command-line front end. Only this file turns a Status into an exit code:
//   0 success, 1 the run failed (I/O, simulation), 2 bad input (scenario, flags).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "reports/io.h"
#include "reports/json_report.h"
#include "reports/summary.h"
#include "reports/trace.h"
#include "reports/validate_report.h"
#include "reports/validate_run.h"
#include "scenarios/loader.h"
#include "scenarios/predict.h"

namespace {

using trainsim::Status;

int fail(const Status& st, int code) {
  std::fputs(st.to_string().c_str(), stderr);
  return code;
}

// "0,8,16-19" -> ranks
bool parse_ranks(const std::string& s, std::vector<uint32_t>* out, std::string* err) {
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    auto dash = item.find('-');
    try {
      if (dash == std::string::npos) {
        out->push_back(static_cast<uint32_t>(std::stoul(item)));
      } else {
        uint32_t a = static_cast<uint32_t>(std::stoul(item.substr(0, dash)));
        uint32_t b = static_cast<uint32_t>(std::stoul(item.substr(dash + 1)));
        if (b < a || b - a > 100000) throw std::out_of_range("range");
        for (uint32_t r = a; r <= b; ++r) out->push_back(r);
      }
    } catch (const std::exception&) {
      *err = "--trace-ranks = \"" + s + "\": '" + item + "' is not a rank or a range; write e.g. 0,8,16-23";
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"trainsim: predict the step time, throughput, MFU, time breakdown and memory of LLM training jobs"};
  app.require_subcommand(1);

  // run
  std::string scenario_path, json_out, trace_out, trace_ranks;
  std::vector<std::string> overrides;
  bool fast = false;
  auto* run = app.add_subcommand("run", "predict one training step of a scenario (default: the embedded quickstart)");
  run->add_option("scenario", scenario_path, "scenario JSON file (omit for the embedded scenarios/quickstart.json)");
  run->add_option("--json", json_out, "write every figure as JSON to FILE");
  run->add_option("--trace", trace_out, "write a Chrome/Perfetto trace of the timeline to FILE");
  run->add_option("--trace-ranks", trace_ranks, "ranks to trace, e.g. 0,8,16-23 (default: the critical rank's stage representatives, up to 64 ranks)");
  run->add_option("--set", overrides, "override a scenario field, e.g. --set parallel.tp=4 (repeatable)");
  run->add_flag("--fast", fast, "collapse identical data-parallel and tensor-parallel replicas");

  // validate
  std::string runs_path, vjson_out;
  bool full = false;
  auto* val = app.add_subcommand("validate", "replay published training runs and compare with what they measured");
  val->add_option("runs", runs_path, "JSON-lines file in the schema of shared/validation/README.md")->required();
  val->add_option("--json", vjson_out, "write rows and summary as JSON to FILE");
  val->add_flag("--full", full, "simulate every rank (default: fast mode, identical replicas collapsed)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (*run) {
    auto sc = scenario_path.empty() ? trainsim::load_embedded_quickstart(overrides)
                                    : trainsim::load_scenario_file(scenario_path, overrides);
    if (!sc.ok()) return fail(sc.status(), 2);
    trainsim::PredictOptions po;
    po.fast = fast;
    if (!trace_out.empty()) {
      std::string err;
      if (trace_ranks.empty()) {
        po.trace_representatives = true;
      } else if (!parse_ranks(trace_ranks, &po.trace_ranks, &err)) {
        return fail(Status::error(err), 2);
      }
    } else if (!trace_ranks.empty()) {
      return fail(Status::error("--trace-ranks needs --trace FILE"), 2);
    }
    auto pr = trainsim::predict(sc.value(), po);
    if (!pr.ok()) return fail(pr.status(), 2);
    std::fputs(trainsim::format_summary(pr.value()).c_str(), stdout);
    if (!json_out.empty()) {
      Status st = trainsim::write_text_file(json_out, trainsim::prediction_json(pr.value()).dump(2) + "\n");
      if (!st.ok()) return fail(st, 1);
      std::printf("wrote %s\n", json_out.c_str());
    }
    if (!trace_out.empty()) {
      Status st = trainsim::write_text_file(trace_out, trainsim::chrome_trace(pr.value()).dump() + "\n");
      if (!st.ok()) return fail(st, 1);
      std::printf("wrote %s (%zu events)\n", trace_out.c_str(), pr.value().trace.size());
    }
    return 0;
  }

  if (*val) {
    trainsim::ValidateOptions vo;
    vo.fast = !full;
    auto rows = trainsim::run_validation(runs_path, vo);
    if (!rows.ok()) return fail(rows.status(), 2);
    auto summary = trainsim::summarize(rows.value());
    std::fputs(trainsim::format_validate(rows.value(), summary).c_str(), stdout);
    if (!vjson_out.empty()) {
      Status st = trainsim::write_text_file(vjson_out, trainsim::validate_json(rows.value(), summary).dump(2) + "\n");
      if (!st.ok()) return fail(st, 1);
      std::printf("wrote %s\n", vjson_out.c_str());
    }
    return 0;
  }
  return 0;
}
