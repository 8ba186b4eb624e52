#include "reports/validate_run.h"

#include "calibrate/calibrated_cost_model.h"
#include "calibrate/db.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "reports/summary.h"
#include "scenarios/predict.h"
#include "scenarios/published_run.h"

namespace trainsim {

namespace {

bool number_at(const nlohmann::json& m, const char* key, double* out) {
  if (!m.contains(key) || !m[key].is_number()) return false;
  *out = m[key].get<double>();
  return true;
}

}  // namespace

Result<std::vector<ValidateRow>> run_validation(const std::string& path, const ValidateOptions& opts) {
  auto rows = read_jsonl(path);
  if (!rows.ok()) return rows.status();
  std::vector<DeviceInfo> cal_devices;
  if (!opts.calibration.empty()) {
    auto db = CalibrationDb::open(opts.calibration, /*create=*/false);
    if (!db.ok()) return db.status();
    auto devs = db.value()->devices();
    if (!devs.ok()) return devs.status();
    cal_devices = std::move(devs).value();
  }
  const std::string rows_dir = std::filesystem::path(path).parent_path().string();
  std::vector<ValidateRow> out;
  std::vector<std::string> ids;
  for (const auto& j : rows.value()) {
    if (!j.is_object() || (!j.contains("model") && !is_scenario_row(j))) continue;  // calibration anchors, blank objects
    ValidateRow row;
    row.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : "(no id)";
    row.group = j.contains("group") && j["group"].is_string() ? j["group"].get<std::string>() : "";
    ids.push_back(row.id);
    auto rs = scenario_from_row(j, rows_dir);
    if (!rs.ok()) {
      row.reason = "invalid: " + rs.status().to_string();
      while (!row.reason.empty() && row.reason.back() == '\n') row.reason.pop_back();
      out.push_back(row);
      continue;
    }
    row.defaults = rs.value().defaults;
    if (!rs.value().unsupported.empty()) {
      row.reason = rs.value().unsupported;
      out.push_back(row);
      continue;
    }
    row.features = features_of(rs.value().scenario);
    row.has_features = true;
    const nlohmann::json m = j.contains("measured") && j["measured"].is_object() ? j["measured"] : nlohmann::json::object();
    PredictOptions po;
    po.fast = opts.fast;
    if (!cal_devices.empty() && !pick_devices(cal_devices, rs.value().scenario.cluster.gpu.name).empty()) {
      rs.value().scenario.options.calibration = opts.calibration;
      rs.value().scenario.options.prefer_source = opts.prefer_source;
      row.defaults.push_back("costs: calibration " + opts.calibration +
                             (opts.prefer_source.empty() ? "" : ", preferring \"" + opts.prefer_source + "\""));
    }
    auto pr = predict(rs.value().scenario, po);
    if (!pr.ok()) {
      row.reason = "invalid: " + pr.status().to_string();
      while (!row.reason.empty() && row.reason.back() == '\n') row.reason.pop_back();
      out.push_back(row);
      continue;
    }
    const Prediction& p = pr.value();
    if (std::find(opts.explain.begin(), opts.explain.end(), row.id) != opts.explain.end())
      row.explain = format_summary(p);
    const bool hardware = m.contains("tflops_definition") && m["tflops_definition"].is_string() &&
                          m["tflops_definition"].get<std::string>() == "hardware";
    double v = 0;
    if (number_at(m, "iteration_time_s", &v)) {
      row.metric = "iteration_time_s";
      row.predicted = p.step_time.seconds();
    } else if (number_at(m, "tokens_per_s_per_gpu", &v)) {
      row.metric = "tokens_per_s_per_gpu";
      row.predicted = p.tokens_per_s_per_gpu;
    } else if (number_at(m, "tflops_per_gpu", &v)) {
      row.metric = hardware ? "tflops_per_gpu (hardware)" : "tflops_per_gpu (model)";
      row.predicted = hardware ? p.hardware_tflops_per_gpu : p.model_tflops_per_gpu;
    } else if (number_at(m, "mfu_pct", &v)) {
      row.metric = "mfu_pct";
      row.predicted = p.mfu * 100;
    } else if (number_at(m, "hfu_pct", &v)) {
      row.metric = "hfu_pct";
      row.predicted = p.hfu * 100;
    } else {
      row.reason = "no measured figure to compare";
      out.push_back(row);
      continue;
    }
    if (!(std::isfinite(v) && v > 0)) {   // error_pct divides by it
      const std::string key = row.metric.substr(0, row.metric.find(' '));
      row.reason = "invalid: measured." + key + " = " + nlohmann::json(v).dump() +
                   ": a measured figure must be a number > 0";
      out.push_back(row);
      continue;
    }
    row.measured = v;
    row.error_pct = error_pct(row.measured, row.predicted);
    row.ok = true;
    double mem = 0;
    if (number_at(m, "memory_gib", &mem) && mem > 0) {
      row.measured_memory_gib = mem;
      row.predicted_memory_gib = p.peak_memory.total().gib();
    }
    out.push_back(row);
  }
  for (const auto& id : opts.explain) {
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) continue;
    std::string known;
    for (size_t i = 0; i < ids.size() && i < 8; ++i) known += (i ? ", " : "") + ids[i];
    if (ids.size() > 8) known += ", ... (" + std::to_string(ids.size()) + " rows)";
    return Status::error(Error{path, "/id", "\"" + id + "\"",
                               "no row of this file has this id; --explain takes one of: " +
                                   (known.empty() ? "(none: the file has no rows)" : known)});
  }
  return out;
}

}  // namespace trainsim
