#include "reports/verify_report.h"

#include <cmath>

#include "reports/text_table.h"

namespace trainsim {

namespace {

using reports::strf;
using reports::ms;
using reports::signed_pct;

double err(Time pred, Time meas) {
  return meas > Time::zero() ? (pred.seconds() - meas.seconds()) / meas.seconds() : 0.0;
}

}  // namespace

std::string format_verification(const Verification& v, double tolerance, const std::string& version) {
  std::string out;
  out += "trainsim verify: " + v.scenario + " (" + v.scenario_file + ")\n";
  out += "version       " + version + "\n";
  out += "machine       " + v.machine + "\n";
  out += "executor      " + v.executor + " (" + v.backend + "; " + v.device + ")\n";
  out += strf("ranks         %d local of %d in the full plan\n", v.ranks, v.full_ranks);
  out += "hashes        scenario " + v.scenario_hash + ", restricted plan " + v.plan_hash + "\n";
  out += "kept\n";
  for (const auto& k : v.kept) out += "  " + k + "\n";
  out += "dropped\n";
  if (v.dropped.empty()) out += "  nothing\n";
  for (const auto& d : v.dropped) out += "  " + d + "\n";
  out += "costs         predicted from " +
         (v.calibration_on_the_fly ? "host costs " + v.calibration + " by `trainsim calibrate --host`'s code"
                                   : "the calibration database " + v.calibration) +
         "\n";
  out += "  collectives: " + v.collectives + "\n";
  for (const auto& n : v.calibration_notes) out += "  note: " + n + "\n";
  out += "\n";
  const bool passed = std::fabs(v.step_error) <= tolerance;
  out += "step time     predicted " + ms(v.predicted) + ", measured " + ms(v.measured) + " (median of " +
         std::to_string(v.measured_steps.size()) + " steps:";
  for (Time t : v.measured_steps) out += " " + strf("%.3f", t.seconds() * 1e3);
  out += ")\n";
  out += "step error    " + signed_pct(v.step_error) + strf(" (tolerance %.1f%%: ", 100 * tolerance) +
         (passed ? "within" : "EXCEEDED") + ")\n\n";

  out += "per class (task time per rank)\n";
  reports::TextTable t({"class", "tasks", "predicted", "measured", "error", "cost source"},
                       {reports::Align::kLeft, reports::Align::kRight, reports::Align::kRight, reports::Align::kRight,
                        reports::Align::kRight, reports::Align::kLeft});
  for (const auto& c : v.classes)
    t.add({c.what, std::to_string(c.tasks), ms(c.predicted), ms(c.measured), signed_pct(c.error()), c.source});
  out += t.render("  ");
  out += "\nthe ten ops with the largest error (summed over their tasks on all local ranks)\n";
  reports::TextTable o({"op", "class", "tasks", "predicted", "measured", "error", "cost source"},
                       {reports::Align::kLeft, reports::Align::kLeft, reports::Align::kRight, reports::Align::kRight,
                        reports::Align::kRight, reports::Align::kRight, reports::Align::kLeft});
  for (const auto& r : v.top_ops)
    o.add({r.op, r.what, std::to_string(r.tasks), ms(r.predicted), ms(r.measured), signed_pct(err(r.predicted, r.measured)),
           r.source});
  out += o.render("  ");
  out += "\nshares of the step (mean over local ranks)\n";
  out += format_shares_table(v.predicted_shares, v.measured_shares, "bubble");
  return out;
}

std::string format_shares_table(const TimelineShares& predicted, const TimelineShares& measured,
                                const std::string& bubble_label) {
  reports::TextTable s({"", "predicted", "measured"},
                       {reports::Align::kLeft, reports::Align::kRight, reports::Align::kRight});
  s.add({"exposed communication", strf("%.1f%%", 100 * predicted.exposed_comm), strf("%.1f%%", 100 * measured.exposed_comm)});
  s.add({bubble_label, strf("%.1f%%", 100 * predicted.bubble), strf("%.1f%%", 100 * measured.bubble)});
  return s.render("  ");
}

nlohmann::ordered_json shares_json(const TimelineShares& predicted, const TimelineShares& measured) {
  return {{"predicted", {{"exposed_comm", predicted.exposed_comm}, {"bubble", predicted.bubble}}},
          {"measured", {{"exposed_comm", measured.exposed_comm}, {"bubble", measured.bubble}}}};
}

nlohmann::ordered_json verify_json(const Verification& v, double tolerance, const std::string& version) {
  nlohmann::ordered_json j;
  j["scenario"] = v.scenario;
  j["scenario_file"] = v.scenario_file;
  j["scenario_hash"] = v.scenario_hash;
  j["plan_hash"] = v.plan_hash;
  j["version"] = version;
  j["machine"] = v.machine;
  j["device"] = v.device;
  j["executor"] = v.executor;
  j["backend"] = v.backend;
  j["ranks"] = v.ranks;
  j["full_ranks"] = v.full_ranks;
  j["kept"] = v.kept;
  j["dropped"] = v.dropped;
  j["calibration"] = {{"source", v.calibration},
                      {"on_the_fly", v.calibration_on_the_fly},
                      {"points", v.calibration_points},
                      {"collectives", v.collectives},
                      {"notes", v.calibration_notes}};
  j["predicted_step_s"] = v.predicted.seconds();
  j["measured_step_s"] = v.measured.seconds();
  nlohmann::ordered_json steps = nlohmann::ordered_json::array();
  for (Time t : v.measured_steps) steps.push_back(t.seconds());
  j["measured_steps_s"] = steps;
  j["step_error"] = v.step_error;
  j["tolerance"] = tolerance;
  j["passed"] = std::fabs(v.step_error) <= tolerance;
  nlohmann::ordered_json cls = nlohmann::ordered_json::array();
  for (const auto& c : v.classes)
    cls.push_back({{"what", c.what},
                   {"source", c.source},
                   {"tasks", c.tasks},
                   {"predicted_s", c.predicted.seconds()},
                   {"measured_s", c.measured.seconds()},
                   {"error", c.error()}});
  j["classes"] = cls;
  nlohmann::ordered_json ops = nlohmann::ordered_json::array();
  for (const auto& r : v.top_ops)
    ops.push_back({{"op", r.op},
                   {"what", r.what},
                   {"source", r.source},
                   {"tasks", r.tasks},
                   {"predicted_s", r.predicted.seconds()},
                   {"measured_s", r.measured.seconds()},
                   {"error", err(r.predicted, r.measured)}});
  j["top_ops"] = ops;
  j["shares"] = shares_json(v.predicted_shares, v.measured_shares);
  return j;
}

}  // namespace trainsim
