#include "reports/compare_trace_report.h"

#include <cmath>

#include "reports/text_table.h"
#include "reports/verify_report.h"

namespace trainsim {

namespace {

using reports::strf;
using reports::ms;
using reports::signed_pct;

}  // namespace

std::string format_trace_comparison(const TraceComparison& c, double tolerance, const std::string& version) {
  const TraceTimeline& m = c.measured_side;
  std::string out;
  out += "trainsim compare-trace: " + c.scenario + " (" + c.scenario_file + ")\n";
  out += "version       " + version + "\n";
  out += "trace         " + c.trace_file + " (hash " + c.trace_hash + ")\n";
  out += strf("device        %lld", static_cast<long long>(m.device)) +
         (m.device_name.empty() ? "" : " (" + m.device_name + ")") +
         (c.trace_rank >= 0 ? strf(", recorded on rank %lld", static_cast<long long>(c.trace_rank)) : "") + "\n";
  out += "step window   " + m.window + "\n";
  out += strf("rank          %u of %d in the full plan (simulated)\n", c.rank, c.ranks);
  out += "hashes        scenario " + c.scenario_hash + ", plan " + c.plan_hash + "\n";
  out += "costs         predicted from " +
         (c.costs == "embedded default" ? std::string("the embedded default cost model (roofline with default efficiencies)")
                                        : "the calibration database " + c.costs) +
         "\n";
  for (const auto& n : c.calibration_notes) out += "  note: " + n + "\n";
  for (const auto& n : c.notes) out += "note          " + n + "\n";
  out += "\n";
  const bool passed = std::fabs(c.step_error) <= tolerance;
  out += "step time     predicted " + ms(c.predicted) + ", measured " + ms(m.step) + "\n";
  out += "step error    " + signed_pct(c.step_error) + strf(" (tolerance %.1f%%: ", 100 * tolerance) +
         (passed ? "within" : "EXCEEDED") + ")\n\n";

  out += "per class (kernel time in the step; simulated: task time of the rank)\n";
  reports::TextTable t({"class", "tasks", "kernels", "predicted", "measured", "error", "cost source"},
                       {reports::Align::kLeft, reports::Align::kRight, reports::Align::kRight, reports::Align::kRight,
                        reports::Align::kRight, reports::Align::kRight, reports::Align::kLeft});
  for (const auto& r : c.classes)
    t.add({r.what, r.predicted_present ? std::to_string(r.tasks) : "-",
           r.measured_present ? std::to_string(r.kernels) : "-", r.predicted_present ? ms(r.predicted) : "-",
           r.measured_present ? ms(r.measured) : "-",
           r.predicted_present && r.measured_present && r.measured > Time::zero() ? signed_pct(r.error()) : "-", r.source});
  out += t.render("  ");
  out += "\nshares of the step (exposed: NCCL kernels run, no compute kernel does; idle: no kernel runs)\n";
  out += format_shares_table(c.predicted_shares, c.measured_shares, "idle (bubble)");
  out += strf("  (predicted %s exposed, %s idle; measured %s exposed, %s idle)\n", ms(c.predicted_exposed).c_str(),
              ms(c.predicted_idle).c_str(), ms(m.exposed_comm).c_str(), ms(m.idle).c_str());
  const TraceKernelStats& s = m.stats;
  out += strf("\nkernels       %d in the trace, %d in the step, %d mapped to a class\n", s.kernels, s.in_step, s.mapped);
  out += strf("unmapped      %d of no known class (in the \"unclassified\" row), %d NCCL of unknown kind, "
              "%d outside the step, %d on other devices\n",
              s.unclassified, s.comm_unknown_kind, s.outside_step, s.other_device);
  return out;
}

nlohmann::ordered_json compare_trace_json(const TraceComparison& c, double tolerance, const std::string& version) {
  const TraceTimeline& m = c.measured_side;
  nlohmann::ordered_json j;
  j["kind"] = "compare-trace";
  j["scenario"] = c.scenario;
  j["scenario_file"] = c.scenario_file;
  j["scenario_hash"] = c.scenario_hash;
  j["plan_hash"] = c.plan_hash;
  j["version"] = version;
  j["trace"] = {{"file", c.trace_file},
                {"hash", c.trace_hash},
                {"device", m.device},
                {"device_name", m.device_name},
                {"rank", c.trace_rank >= 0 ? nlohmann::ordered_json(c.trace_rank) : nlohmann::ordered_json()},
                {"step", m.step_number >= 0 ? nlohmann::ordered_json(m.step_number) : nlohmann::ordered_json()},
                {"window", m.window}};
  j["rank"] = c.rank;
  j["ranks"] = c.ranks;
  j["costs"] = {{"source", c.costs}, {"notes", c.calibration_notes}};
  j["predicted_step_s"] = c.predicted.seconds();
  j["measured_step_s"] = m.step.seconds();
  j["step_error"] = c.step_error;
  j["tolerance"] = tolerance;
  j["passed"] = std::fabs(c.step_error) <= tolerance;
  nlohmann::ordered_json cls = nlohmann::ordered_json::array();
  const nlohmann::ordered_json null;
  for (const auto& r : c.classes)
    cls.push_back({{"what", r.what},
                   {"source", r.source},
                   {"tasks", r.tasks},
                   {"kernels", r.kernels},
                   {"predicted_s", r.predicted_present ? nlohmann::ordered_json(r.predicted.seconds()) : null},
                   {"measured_s", r.measured_present ? nlohmann::ordered_json(r.measured.seconds()) : null},
                   {"error", r.predicted_present && r.measured_present && r.measured > Time::zero()
                                 ? nlohmann::ordered_json(r.error())
                                 : null}});
  j["classes"] = cls;
  j["shares"] = shares_json(c.predicted_shares, c.measured_shares);
  j["timeline"] = {{"predicted", {{"exposed_comm_s", c.predicted_exposed.seconds()}, {"idle_s", c.predicted_idle.seconds()}}},
                   {"measured", {{"exposed_comm_s", m.exposed_comm.seconds()}, {"idle_s", m.idle.seconds()}}}};
  const TraceKernelStats& s = m.stats;
  j["kernels"] = {{"seen", s.kernels},
                  {"in_step", s.in_step},
                  {"mapped", s.mapped},
                  {"unmapped",
                   {{"unclassified", s.unclassified},
                    {"comm_unknown_kind", s.comm_unknown_kind},
                    {"outside_step", s.outside_step},
                    {"other_device", s.other_device}}}};
  j["notes"] = c.notes;
  return j;
}

}  // namespace trainsim
