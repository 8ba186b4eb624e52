#include "reports/validate_report.h"

#include <algorithm>
#include <cmath>

#include "reports/json_report.h"
#include "reports/text_table.h"
#include "sim/check.h"

namespace trainsim {
namespace {

using nlohmann::ordered_json;
using reports::Align;
using reports::strf;
using reports::TextTable;

}  // namespace

std::string measure_text(double v) {
  if (!std::isfinite(v)) return "n/a";
  if (std::fabs(v) >= 1000) return reports::group_digits(v);
  return strf("%.4g", v);
}

double error_pct(double measured, double predicted) {
  SIM_CHECK(measured != 0, "error_pct: measured value is 0 (predicted %g)", predicted);
  return (predicted - measured) / measured * 100.0;
}

ValidateSummary summarize(const std::vector<ValidateRow>& rows) {
  std::vector<double> abs_err;
  for (const ValidateRow& r : rows) {
    if (r.ok && std::isfinite(r.error_pct)) abs_err.push_back(std::fabs(r.error_pct));
  }
  ValidateSummary s;
  s.compared = static_cast<int>(abs_err.size());
  if (abs_err.empty()) return s;
  std::sort(abs_err.begin(), abs_err.end());
  const size_t n = abs_err.size();
  s.median_abs_error_pct =
      n % 2 == 1 ? abs_err[n / 2] : (abs_err[n / 2 - 1] + abs_err[n / 2]) / 2.0;
  double sum = 0;
  for (double e : abs_err) sum += e;   // ascending order: a fixed summation order
  s.mean_abs_error_pct = sum / static_cast<double>(n);
  s.max_abs_error_pct = abs_err.back();
  return s;
}

std::vector<std::pair<std::string, ValidateSummary>> summarize_groups(const std::vector<ValidateRow>& rows) {
  std::vector<std::string> order;
  for (const ValidateRow& r : rows)
    if (std::find(order.begin(), order.end(), r.group) == order.end()) order.push_back(r.group);
  std::vector<std::pair<std::string, ValidateSummary>> out;
  for (const std::string& g : order) {
    std::vector<ValidateRow> mine;
    for (const ValidateRow& r : rows)
      if (r.group == g) mine.push_back(r);
    out.emplace_back(g, summarize(mine));
  }
  return out;
}

std::string format_validate(const std::vector<ValidateRow>& rows, const ValidateSummary& s,
                            const std::string& costs) {
  std::string out;
  TextTable t({"id", "metric", "measured", "predicted", "error"},
              {Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight});
  size_t skipped = 0;
  for (const ValidateRow& r : rows) {
    if (!r.ok) {
      ++skipped;
      continue;
    }
    t.add({r.id, r.metric, measure_text(r.measured), measure_text(r.predicted),
           std::isfinite(r.error_pct) ? strf("%+.1f%%", r.error_pct) : std::string("n/a")});
    if (!r.defaults.empty()) {
      std::string line = "    defaults: ";
      for (size_t i = 0; i < r.defaults.size(); ++i) {
        if (i > 0) line += "; ";
        line += r.defaults[i];
      }
      t.add_raw(std::move(line));
    }
    if (r.measured_memory_gib > 0)
      t.add_raw(strf("    memory: measured %.1f GiB, predicted peak %.2f GiB (%+.1f%%; the prediction counts allocated "
                     "bytes, while published figures are usually the allocator's peak reservation; not in the summary)",
                     r.measured_memory_gib, r.predicted_memory_gib,
                     error_pct(r.measured_memory_gib, r.predicted_memory_gib)));
  }
  if (t.rows() > 0) out += t.render("");
  else out += "no rows compared\n";

  if (skipped > 0) {
    out += strf("\nskipped (%zu):\n", skipped);
    for (const ValidateRow& r : rows) {
      if (r.ok) continue;
      out += "  " + r.id + " " + r.metric + ": " + (r.reason.empty() ? "no reason given" : r.reason) +
             "\n";
    }
  }
  const auto groups = summarize_groups(rows);
  if (groups.size() > 1) {
    TextTable g({"source group", "compared", "median |error|", "mean", "max"},
                {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight});
    for (const auto& [name, gs] : groups) {
      if (gs.compared == 0) {
        g.add({name.empty() ? "(no group)" : name, "0", "-", "-", "-"});
        continue;
      }
      g.add({name.empty() ? "(no group)" : name, strf("%d", gs.compared), strf("%.1f%%", gs.median_abs_error_pct),
             strf("%.1f%%", gs.mean_abs_error_pct), strf("%.1f%%", gs.max_abs_error_pct)});
    }
    out += "\nby source group:\n" + g.render("");
  }
  if (!costs.empty()) out += "\n" + costs + "\n";
  if (s.compared == 0)   // no error to summarize (not a median of 0%)
    out += strf("\ncompared 0 of %zu: no row could be compared (see the skipped rows above)\n", rows.size());
  else
    out += strf("\ncompared %d of %zu: median |error| %.1f%%, mean %.1f%%, max %.1f%%\n",
                s.compared, rows.size(), s.median_abs_error_pct, s.mean_abs_error_pct,
                s.max_abs_error_pct);
  return out;
}

ordered_json validate_json(const std::vector<ValidateRow>& rows, const ValidateSummary& s) {
  ordered_json jrows = ordered_json::array();
  for (const ValidateRow& r : rows) {
    ordered_json j;
    j["id"] = r.id;
    j["metric"] = r.metric;
    j["measured"] = json_number(r.measured);
    j["predicted"] = json_number(r.predicted);
    j["error_pct"] = json_number(r.error_pct);
    j["defaults"] = r.defaults;
    j["status"] = r.ok ? "ok" : "skipped";
    j["reason"] = r.reason;
    jrows.push_back(std::move(j));
  }
  ordered_json sum;
  sum["compared"] = s.compared;
  sum["median_abs_error_pct"] = json_number(s.median_abs_error_pct);
  sum["mean_abs_error_pct"] = json_number(s.mean_abs_error_pct);
  sum["max_abs_error_pct"] = json_number(s.max_abs_error_pct);
  ordered_json doc;
  doc["rows"] = std::move(jrows);
  doc["summary"] = std::move(sum);
  return doc;
}

std::string validate_csv(const std::vector<ValidateRow>& rows) {
  using reports::csv_field;
  using reports::csv_number;
  std::string out = "id,group,metric,status,measured,predicted,error_pct,reason,defaults\r\n";
  for (const ValidateRow& r : rows) {
    std::string defaults;
    for (const auto& d : r.defaults) defaults += (defaults.empty() ? "" : "; ") + d;
    const std::vector<std::string> f = {r.id,
                                        r.group,
                                        r.metric,
                                        r.ok ? "ok" : "skipped",
                                        r.measured != 0 ? csv_number(r.measured) : "",
                                        r.ok ? csv_number(r.predicted) : "",
                                        r.ok ? csv_number(r.error_pct) : "",
                                        r.reason,
                                        defaults};
    for (size_t i = 0; i < f.size(); ++i) out += (i ? "," : "") + csv_field(f[i]);
    out += "\r\n";
  }
  return out;
}

namespace validate_baseline {

// The rows that moved by at least min_move points, largest first (ties keep row order).
std::vector<const BaselineRow*> moved(const ValidateBaseline& b, double min_move) {
  std::vector<const BaselineRow*> out;
  for (const auto& r : b.rows)
    if (r.then && r.now && std::fabs(r.now_error - r.then_error) >= min_move) out.push_back(&r);
  std::stable_sort(out.begin(), out.end(), [](const BaselineRow* x, const BaselineRow* y) {
    return std::fabs(x->now_error - x->then_error) > std::fabs(y->now_error - y->then_error);
  });
  return out;
}

}  // namespace validate_baseline

Result<ValidateBaseline> validation_baseline(const nlohmann::json& doc, const std::string& file,
                                             const std::vector<ValidateRow>& rows) {
  Status st;
  const char* want = "a `trainsim validate --json` document: {\"rows\": [...], \"summary\": {...}}";
  if (!doc.is_object() || !doc.contains("rows") || !doc["rows"].is_array() || !doc.contains("summary") ||
      !doc["summary"].is_object())
    return Status::error(Error{file, "", "", std::string("expected ") + want});
  ValidateBaseline b;
  b.file = file;
  const nlohmann::json& sm = doc["summary"];
  auto num = [&](const nlohmann::json& o, const char* key, const std::string& at, double* out) {
    if (!o.contains(key) || !o[key].is_number()) {
      st.add(Error{file, at + "/" + key, o.contains(key) ? o[key].dump() : "", "expected a number, as validate --json writes it"});
      return;
    }
    *out = o[key].get<double>();
  };
  double compared = 0;
  num(sm, "compared", "/summary", &compared);
  b.then.compared = static_cast<int>(compared);
  num(sm, "median_abs_error_pct", "/summary", &b.then.median_abs_error_pct);
  num(sm, "mean_abs_error_pct", "/summary", &b.then.mean_abs_error_pct);
  num(sm, "max_abs_error_pct", "/summary", &b.then.max_abs_error_pct);
  struct Old {
    std::string id, metric;
    bool ok;
    double error;
  };
  std::vector<Old> old;
  const nlohmann::json& rs = doc["rows"];
  for (size_t i = 0; i < rs.size(); ++i) {
    const std::string at = "/rows/" + std::to_string(i);
    const nlohmann::json& r = rs[i];
    if (!r.is_object() || !r.contains("id") || !r["id"].is_string() || !r.contains("metric") || !r["metric"].is_string() ||
        !r.contains("status") || !r["status"].is_string()) {
      st.add(Error{file, at, r.dump().substr(0, 60), "expected a row with \"id\", \"metric\" and \"status\" strings"});
      continue;
    }
    Old o{r["id"].get<std::string>(), r["metric"].get<std::string>(), r["status"] == "ok", 0};
    if (o.ok) {
      if (r.contains("error_pct") && r["error_pct"].is_number())
        o.error = r["error_pct"].get<double>();
      else
        o.ok = false;   // a non-finite error is written as null: not compared
    }
    old.push_back(std::move(o));
  }
  if (!st.ok()) return st;
  std::vector<bool> used(old.size(), false);
  for (const ValidateRow& r : rows) {
    BaselineRow br;
    br.id = r.id;
    br.metric = r.metric;
    br.now = r.ok && std::isfinite(r.error_pct);
    br.now_error = r.error_pct;
    for (size_t i = 0; i < old.size(); ++i)
      if (!used[i] && old[i].id == r.id && old[i].metric == r.metric) {
        used[i] = true;
        br.then = old[i].ok;
        br.then_error = old[i].error;
        break;
      }
    b.rows.push_back(std::move(br));
  }
  for (size_t i = 0; i < old.size(); ++i)
    if (!used[i]) {
      BaselineRow br;
      br.id = old[i].id;
      br.metric = old[i].metric;
      br.then = old[i].ok;
      br.then_error = old[i].error;
      b.rows.push_back(std::move(br));
    }
  return b;
}

std::string format_baseline(const ValidateBaseline& b, const ValidateSummary& now, double min_move) {
  using reports::strf;
  std::string out = "\nagainst the baseline " + b.file + "\n";
  out += strf("  compared %d -> %d; median |error| %.1f%% -> %.1f%%, mean %.1f%% -> %.1f%%, max %.1f%% -> %.1f%%\n",
              b.then.compared, now.compared, b.then.median_abs_error_pct, now.median_abs_error_pct,
              b.then.mean_abs_error_pct, now.mean_abs_error_pct, b.then.max_abs_error_pct, now.max_abs_error_pct);
  const auto mv = validate_baseline::moved(b, min_move);
  if (mv.empty()) {
    out += strf("  no row's error moved by %.2g points or more\n", min_move);
  } else {
    out += strf("  %zu row(s) whose error moved by %.2g points or more, largest first:\n", mv.size(), min_move);
    reports::TextTable t({"id", "metric", "then", "now", "move", "|error|"},
                         {reports::Align::kLeft, reports::Align::kLeft, reports::Align::kRight, reports::Align::kRight,
                          reports::Align::kRight, reports::Align::kLeft});
    for (const BaselineRow* r : mv)
      t.add({r->id, r->metric, strf("%+.1f%%", r->then_error), strf("%+.1f%%", r->now_error),
             strf("%+.1f", r->now_error - r->then_error),
             std::fabs(r->now_error) < std::fabs(r->then_error) ? "smaller" : "larger"});
    out += t.render("    ");
  }
  std::string only_now, only_then;
  for (const auto& r : b.rows) {
    if (r.now && !r.then) only_now += (only_now.empty() ? "" : ", ") + r.id;
    if (r.then && !r.now) only_then += (only_then.empty() ? "" : ", ") + r.id;
  }
  if (!only_now.empty()) out += "  compared now, not in the baseline: " + only_now + "\n";
  if (!only_then.empty()) out += "  compared in the baseline, not now: " + only_then + "\n";
  return out;
}

}  // namespace trainsim
