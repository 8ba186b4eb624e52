#include "reports/accuracy_context.h"

#include <algorithm>
#include <cmath>

#include "reports/json_report.h"
#include "reports/text_table.h"
#include "sim/check.h"

namespace trainsim {

AccuracyContext accuracy_context(const RunFeatures& scenario, const std::vector<ValidateRow>& rows,
                                 int k, const std::string& runs) {
  SIM_CHECK(k >= 1, "accuracy_context: k = %d, needs at least 1", k);
  AccuracyContext ac;
  ac.runs = runs;
  ac.scenario = scenario;
  ac.rows = static_cast<int>(rows.size());
  struct Cand {
    NearRun near;
    size_t order;
  };
  std::vector<Cand> cands;
  for (size_t i = 0; i < rows.size(); ++i) {
    const ValidateRow& r = rows[i];
    if (!r.ok || !r.has_features || !std::isfinite(r.error_pct)) continue;
    ++ac.compared;
    cands.push_back({NearRun{r, compare_features(scenario, r.features)}, i});
  }
  std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
    if (a.near.resemblance.distance != b.near.resemblance.distance)
      return a.near.resemblance.distance < b.near.resemblance.distance;
    if (a.near.row.id != b.near.row.id) return a.near.row.id < b.near.row.id;
    return a.order < b.order;
  });
  if (cands.size() > static_cast<size_t>(k)) cands.resize(static_cast<size_t>(k));
  std::vector<ValidateRow> near_rows;
  for (Cand& c : cands) {
    const double e = c.near.row.error_pct;
    ac.min_error_pct = ac.nearest.empty() ? e : std::min(ac.min_error_pct, e);
    ac.max_error_pct = ac.nearest.empty() ? e : std::max(ac.max_error_pct, e);
    near_rows.push_back(c.near.row);
    ac.nearest.push_back(std::move(c.near));
  }
  ac.median_abs_error_pct = summarize(near_rows).median_abs_error_pct;   // validate's own median
  return ac;
}

std::string format_accuracy_context(const AccuracyContext& ac) {
  using reports::Align;
  using reports::strf;
  std::string out = strf("\naccuracy: the %zu published run%s of %s most like this scenario (%s), as "
                         "trainsim predicts them now (%d of %d runs compared)\n",
                         ac.nearest.size(), ac.nearest.size() == 1 ? "" : "s", ac.runs.c_str(),
                         describe_run(ac.scenario).c_str(), ac.compared, ac.rows);
  if (ac.nearest.empty()) return out + "  no run of the file was compared: nothing to say how sure this prediction is\n";
  reports::TextTable t({"id", "run", "metric", "measured", "predicted", "error", "differs"},
                       {Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight,
                        Align::kLeft});
  for (const NearRun& n : ac.nearest) {
    std::string differs;
    for (const std::string& d : n.resemblance.differs) differs += (differs.empty() ? "" : ", ") + d;
    t.add({n.row.id, describe_run(n.row.features), n.row.metric, measure_text(n.row.measured),
           measure_text(n.row.predicted), strf("%+.1f%%", n.row.error_pct), differs.empty() ? "-" : differs});
  }
  out += t.render("  ");
  out += strf("  their errors span %+.1f%% to %+.1f%% (median |error| %.1f%%); the prediction above is not "
              "corrected by them\n",
              ac.min_error_pct, ac.max_error_pct, ac.median_abs_error_pct);
  return out;
}

nlohmann::ordered_json accuracy_context_json(const AccuracyContext& ac) {
  nlohmann::ordered_json j;
  j["runs"] = ac.runs;
  j["scenario"] = describe_run(ac.scenario);
  j["rows"] = ac.rows;
  j["compared"] = ac.compared;
  nlohmann::ordered_json near = nlohmann::ordered_json::array();
  for (const NearRun& n : ac.nearest) {
    nlohmann::ordered_json r;
    r["id"] = n.row.id;
    r["group"] = n.row.group;
    r["run"] = describe_run(n.row.features);
    r["differs"] = n.resemblance.differs;
    r["distance"] = json_number(n.resemblance.distance);
    r["metric"] = n.row.metric;
    r["measured"] = json_number(n.row.measured);
    r["predicted"] = json_number(n.row.predicted);
    r["error_pct"] = json_number(n.row.error_pct);
    near.push_back(std::move(r));
  }
  j["nearest"] = std::move(near);
  const bool any = !ac.nearest.empty();
  j["min_error_pct"] = any ? json_number(ac.min_error_pct) : nlohmann::ordered_json(nullptr);
  j["max_error_pct"] = any ? json_number(ac.max_error_pct) : nlohmann::ordered_json(nullptr);
  j["median_abs_error_pct"] = any ? json_number(ac.median_abs_error_pct) : nlohmann::ordered_json(nullptr);
  return j;
}

}  // namespace trainsim
