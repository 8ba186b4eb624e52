#include "reports/html_report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>

#include "reports/compare_trace_report.h"
#include "reports/summary.h"
#include "reports/sweep_report.h"
#include "reports/text_table.h"
#include "reports/trace.h"
#include "reports/verify_report.h"
#include "sim/check.h"

namespace trainsim {
// Named, not anonymous: the unity build puts this file beside the other reports in one unit.
namespace html_page {

using reports::gib2;
using reports::group_digits;
using reports::strf;
using reports::unsigned_pct;

constexpr size_t kNumBuckets = static_cast<size_t>(Bucket::kCount);
constexpr size_t kNumCategories = static_cast<size_t>(Category::kCount);
constexpr int kChartWidth = 800;      // px of a bar at 100%
constexpr int kLabelWidth = 190;      // px left of the bars and lanes
constexpr size_t kMaxStageBars = 64;  // as the summary's stage table

// Column c's first picosecond (timeline_columns).
int64_t column_start(int64_t horizon, int width, int64_t c) {
  return static_cast<int64_t>(static_cast<__int128>(horizon) * c / width);
}

// Colours: one per Category (timeline) and one per Bucket (breakdown bar), in enum order; a
// comm category and the bucket of its exposed time share a colour.
constexpr std::array<const char*, kNumCategories> kCategoryColour = {
    "#4e79a7",   // compute
    "#a0cbe8",   // recompute
    "#59a14f",   // optimizer
    "#f28e2b",   // tp-comm
    "#e15759",   // dp-comm
    "#b07aa1",   // pp-comm
    "#edc948",   // cp-comm
    "#ff9da7",   // ep-comm
    "#9c755f",   // offload
};
constexpr std::array<const char*, kNumBuckets> kBucketColour = {
    kCategoryColour[0], kCategoryColour[1], kCategoryColour[2], kCategoryColour[3], kCategoryColour[4],
    kCategoryColour[5], kCategoryColour[6], kCategoryColour[7], kCategoryColour[8],
    "#bab0ac",   // pipeline bubble
};
static_assert(static_cast<size_t>(Bucket::kTpExposed) == 3 && static_cast<size_t>(Category::kTpComm) == 3 &&
                  static_cast<size_t>(Bucket::kOffloadExposed) == 8 && static_cast<size_t>(Category::kOffload) == 8 &&
                  static_cast<size_t>(Bucket::kBubble) == 9,
              "kBucketColour pairs each exposed-comm bucket with its category's colour by position");
// One per compare-trace row (trace_class_rows()), in its order.
constexpr std::array<const char*, 14> kRowColour = {
    "#4e79a7", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",   // op classes
    "#e15759", "#f28e2b", "#d37295", "#fabfd2", "#8cd17d", "#b6992d",              // collectives, send/recv
    "#bab0ac",                                                                     // unclassified
};
// The colour of a class row, by its name in trace_class_rows(); verify's rows name their group
// after the kind ("all-reduce(tp)"), which is left out.
const char* class_colour(const std::string& what) {
  const std::string kind = what.substr(0, what.find('('));
  const auto& rows = trace_class_rows();
  const size_t k = static_cast<size_t>(std::find(rows.begin(), rows.end(), kind) - rows.begin());
  return k < kRowColour.size() ? kRowColour[k] : "#000000";
}
const char* category_colour(uint8_t c) { return c < kNumCategories ? kCategoryColour[c] : "#000000"; }
const char* bucket_colour(Bucket b) { return kBucketColour[static_cast<size_t>(b)]; }

// Memory parts: colour and label, in the summary's order.
struct MemoryPart {
  const char* label;
  const char* colour;
  Bytes MemoryReport::*field;
};
constexpr std::array<MemoryPart, 5> kMemoryParts{{
    {"params", "#4e79a7", &MemoryReport::params},
    {"grads", "#f28e2b", &MemoryReport::grads},
    {"optimizer", "#59a14f", &MemoryReport::optimizer},
    {"activations", "#e15759", &MemoryReport::activations},
    {"workspace", "#bab0ac", &MemoryReport::workspace},
}};

// A headline figure: the value large, what it is below.
void card(std::string& out, const std::string& value, const std::string& what) {
  out += "<div class=\"card\"><b>" + html_escape(value) + "</b><span>" + html_escape(what) + "</span></div>\n";
}

// A pixel coordinate with two decimals (fixed format: stable bytes).
std::string px(double v) { return strf("%.2f", v); }

std::string legend_item(const char* colour, const std::string& label) {
  return strf("<span class=\"key\"><span class=\"sw\" style=\"background:%s\"></span>", colour) +
         html_escape(label) + "</span>\n";
}

void head(std::string& out, const std::string& title) {
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<title>" + html_escape(title) + "</title>\n";
  out += "<style>\n"
         "body{font-family:sans-serif;margin:24px;color:#222;max-width:1240px}\n"
         "h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}\n"
         "table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;text-align:left;vertical-align:top}\n"
         "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even){background:#f4f4f4}\n"
         ".cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ccc;border-radius:6px;padding:8px 14px}\n"
         ".card b{display:block;font-size:20px}.card span{font-size:12px;color:#555}\n"
         ".oom{color:#b00020;font-weight:bold}.ok{color:#1b7a1b;font-weight:bold}\n"
         ".key{display:inline-block;margin-right:14px;font-size:12px}"
         ".sw{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:middle}\n"
         "p.note{font-size:12px;color:#555}pre{font-size:12px;background:#f7f7f7;padding:10px;overflow-x:auto}\n"
         "svg text{font-family:sans-serif;font-size:11px}\n"
         "</style>\n</head>\n<body>\n";
}

void headline(std::string& out, const Prediction& p) {
  out += "<h1>trainsim prediction: " + html_escape(p.scenario.name) + "</h1>\n";
  const ParallelSpec& par = p.scenario.parallel;
  out += "<p>" +
         html_escape(strf("%d x %s%s (%d per node); tp=%d pp=%d vp=%d dp=%d cp=%d ep=%d, zero %d; %s mode, %d of %d "
                          "ranks simulated",
                          p.gpus, p.scenario.cluster.gpu.name.c_str(),
                          p.scenario.cluster.gpu.base.empty() ? "" : (" (based on " + p.scenario.cluster.gpu.base + ")").c_str(),
                          p.scenario.cluster.gpus_per_node, par.tp, par.pp,
                          par.vp, par.dp, par.cp, par.ep, par.zero, p.fast ? "fast" : "full", p.simulated_ranks,
                          p.gpus)) +
         "</p>\n<div class=\"cards\">\n";
  card(out, format_time(p.step_time), "step time");
  card(out, group_digits(p.tokens_per_s_per_gpu), strf("tokens/s per GPU (%s in all)", group_digits(p.tokens_per_s).c_str()));
  card(out, unsigned_pct(p.mfu) + " / " + unsigned_pct(p.hfu), strf("MFU / HFU (peak %.1f TFLOP/s)", p.peak_tflops));
  card(out, strf("%.1f", p.model_tflops_per_gpu), strf("model TFLOP/s per GPU (%.1f hardware)", p.hardware_tflops_per_gpu));
  card(out, gib2(p.peak_memory.total().count()) + " GiB",
       strf("peak memory, rank %u (capacity %s GiB)", p.peak_memory.rank, gib2(p.peak_memory.capacity.count()).c_str()));
  out += "</div>\n<p class=\"" + std::string(p.peak_memory.oom() ? "oom" : "ok") + "\">" +
         html_escape(memory_verdict(p.peak_memory)) + "</p>\n";
}

// A horizontal bar of `parts` (value, colour, tooltip) scaled so that `full` spans kChartWidth
// px, at height y, with a label on its left. Each part is a <rect> with data-v (its value).
struct BarPart {
  double value;
  const char* colour;
  std::string tip;
};
void bar(std::string& out, const std::string& label, const std::vector<BarPart>& parts, double full, double y,
         double h, bool pale = false, int label_w = kLabelWidth) {
  out += "<text x=\"0\" y=\"" + px(y + h * 0.5 + 4) + "\">" + html_escape(label) + "</text>\n";
  double x = label_w;
  for (const BarPart& b : parts) {
    if (b.value <= 0) continue;
    const double w = full > 0 ? b.value / full * kChartWidth : 0;
    out += "<rect class=\"part\" x=\"" + px(x) + "\" y=\"" + px(y) + "\" width=\"" + px(w) + "\" height=\"" + px(h) +
           "\" fill=\"" + b.colour + (pale ? "\" fill-opacity=\"0.35" : "") + "\" data-v=\"" + strf("%.17g", b.value) + "\"><title>" + html_escape(b.tip) +
           "</title></rect>\n";
    x += w;
  }
}

void breakdown(std::string& out, const Prediction& p) {
  out += strf("<h2>Where the step goes (critical rank %u)</h2>\n", p.critical_rank);
  const double step = static_cast<double>(p.step_time.count_ps());
  std::vector<BarPart> parts;
  std::string legend;
  for (size_t i = 0; i < kNumBuckets; ++i) {
    const Bucket b = static_cast<Bucket>(i);
    const Time v = p.breakdown[i];
    if (v.count_ps() == 0) continue;
    const std::string what =
        strf("%s: %s (%s)", breakdown_label(b), format_time(v).c_str(), reports::share(v, p.step_time).c_str());
    parts.push_back({static_cast<double>(v.count_ps()), bucket_colour(b), what});
    legend += legend_item(bucket_colour(b), what);
  }
  out += strf("<svg id=\"breakdown\" width=\"%d\" height=\"34\" role=\"img\">\n", kLabelWidth + kChartWidth + 10);
  bar(out, "step " + format_time(p.step_time), parts, step, 4, 24);
  out += "</svg>\n<div>\n" + legend + "</div>\n";
  if (p.comm_total.count_ps() > 0)
    out += "<p class=\"note\">" +
           html_escape(strf("Communication on the critical rank: %s, of which %s exposed (%s hidden under compute).",
                            format_time(p.comm_total).c_str(), format_time(p.comm_exposed).c_str(),
                            unsigned_pct(p.comm_hidden_share).c_str())) +
           "</p>\n";
}

void memory(std::string& out, const Prediction& p) {
  out += "<h2>Memory per GPU</h2>\n";
  std::vector<const MemoryReport*> rows;
  if (!p.memory_per_stage.empty()) {
    for (size_t i = 0; i < p.memory_per_stage.size() && i < kMaxStageBars; ++i) rows.push_back(&p.memory_per_stage[i]);
  } else {
    rows.push_back(&p.peak_memory);
  }
  double full = static_cast<double>(p.peak_memory.capacity.count());
  for (const MemoryReport* r : rows) full = std::max(full, static_cast<double>(r->total().count()));
  const double h = 18, gap = 6;
  const double height = 8 + static_cast<double>(rows.size()) * (h + gap) + 14;
  out += strf("<svg id=\"memory\" width=\"%d\" height=\"%s\" role=\"img\">\n", kLabelWidth + kChartWidth + 60,
              px(height).c_str());
  double y = 8;
  for (const MemoryReport* r : rows) {
    std::vector<BarPart> parts;
    for (const MemoryPart& m : kMemoryParts) {
      const Bytes b = r->*m.field;
      parts.push_back({static_cast<double>(b.count()), m.colour,
                       strf("stage %d, rank %u: %s %s GiB", r->stage, r->rank, m.label, gib2(b.count()).c_str())});
    }
    bar(out, strf("stage %d (rank %u)%s", r->stage, r->rank, r->oom() ? " OOM" : ""), parts, full, y, h);
    y += h + gap;
  }
  const double cap = static_cast<double>(p.peak_memory.capacity.count());
  if (full > 0 && cap > 0) {
    const double x = kLabelWidth + cap / full * kChartWidth;
    out += "<line id=\"capacity\" x1=\"" + px(x) + "\" y1=\"2\" x2=\"" + px(x) + "\" y2=\"" + px(y) +
           "\" stroke=\"#b00020\" stroke-width=\"2\"><title>" +
           html_escape("capacity " + gib2(p.peak_memory.capacity.count()) + " GiB") + "</title></line>\n";
    out += "<text x=\"" + px(x - 4) + "\" y=\"" + px(y + 10) + "\" text-anchor=\"end\">capacity " +
           gib2(p.peak_memory.capacity.count()) + " GiB</text>\n";
  }
  out += "</svg>\n<div>\n";
  for (const MemoryPart& m : kMemoryParts) out += legend_item(m.colour, m.label);
  out += "</div>\n";
  if (p.memory_per_stage.size() > kMaxStageBars)
    out += strf("<p class=\"note\">The first %zu of %zu stages.</p>\n", kMaxStageBars, p.memory_per_stage.size());
  out += "<table>\n<tr><th>stage</th><th class=\"n\">rank</th>";
  for (const MemoryPart& m : kMemoryParts) out += std::string("<th class=\"n\">") + m.label + " GiB</th>";
  out += "<th class=\"n\">total GiB</th><th></th></tr>\n";
  for (const MemoryReport* r : rows) {
    out += strf("<tr><td>%d</td><td class=\"n\">%u</td>", r->stage, r->rank);
    for (const MemoryPart& m : kMemoryParts) out += "<td class=\"n\">" + gib2((r->*m.field).count()) + "</td>";
    out += "<td class=\"n\">" + gib2(r->total().count()) + "</td><td>" +
           (r->oom() ? "<span class=\"oom\">OOM</span>" : "") + "</td></tr>\n";
  }
  out += "</table>\n";
}

// Lanes of spans over [0, horizon) as one SVG (`id`): a time axis, then per lane its label and
// a rectangle per run of equal timeline_columns; `kind_name` and `kind_colour` name and colour a
// category (a value below `kinds`). Returns which categories were drawn.
struct Lane {
  std::string label;   // left of the lane
  std::string tip;     // tooltip prefix
  std::vector<TimelineSpan> spans;
};
template <class Name, class Colour>
std::vector<bool> lanes_svg(std::string& out, const char* id, const std::vector<Lane>& lanes, int64_t horizon,
                            int kinds, Name&& kind_name, Colour&& kind_colour) {
  const double lane_h = 12, lane_gap = 3, top = 18;
  const double height = top + static_cast<double>(lanes.size()) * (lane_h + lane_gap) + 4;
  const double col_w = static_cast<double>(kChartWidth) / kTimelineColumns;
  out += strf("<svg id=\"%s\" width=\"%d\" height=\"%s\" role=\"img\">\n", id, kLabelWidth + kChartWidth + 10,
              px(height).c_str());
  for (int k = 0; k <= 4; ++k) {   // time axis: 0, 1/4, ..., the horizon
    const double x = kLabelWidth + kChartWidth * k / 4.0;
    out += "<line x1=\"" + px(x) + "\" y1=\"12\" x2=\"" + px(x) + "\" y2=\"" + px(height) +
           "\" stroke=\"#ddd\"/>\n<text x=\"" + px(k == 4 ? x - 2 : x + 2) + "\" y=\"10\"" +
           (k == 4 ? " text-anchor=\"end\"" : "") + ">" +
           (k == 0 ? std::string("0") : format_time(Time::ps(column_start(horizon, 4, k)))) + "</text>\n";
  }
  std::vector<bool> seen(static_cast<size_t>(kinds), false);
  double y = top;
  for (const Lane& lane : lanes) {
    out += "<text x=\"0\" y=\"" + px(y + lane_h - 2) + "\">" + html_escape(lane.label) + "</text>\n";
    const std::vector<uint8_t> cols = timeline_columns(lane.spans, horizon, kTimelineColumns, kinds);
    for (int c = 0; c < kTimelineColumns;) {
      int e = c + 1;
      while (e < kTimelineColumns && cols[e] == cols[c]) ++e;
      if (cols[c] != kIdleColumn) {
        seen[cols[c]] = true;
        const std::string tip = strf("%s: mostly %s from %s to %s", lane.tip.c_str(), kind_name(cols[c]),
                                     format_time(Time::ps(column_start(horizon, kTimelineColumns, c))).c_str(),
                                     format_time(Time::ps(column_start(horizon, kTimelineColumns, e))).c_str());
        out += "<rect x=\"" + px(kLabelWidth + c * col_w) + "\" y=\"" + px(y) + "\" width=\"" + px((e - c) * col_w) +
               "\" height=\"" + px(lane_h) + "\" fill=\"" + kind_colour(cols[c]) + "\"><title>" + html_escape(tip) +
               "</title></rect>\n";
      }
      c = e;
    }
    y += lane_h + lane_gap;
  }
  out += "</svg>\n<div>\n";
  for (int c = 0; c < kinds; ++c)
    if (seen[c]) out += legend_item(kind_colour(static_cast<uint8_t>(c)), kind_name(static_cast<uint8_t>(c)));
  out += "</div>\n";
  return seen;
}

void timeline(std::string& out, const Prediction& p) {
  out += "<h2>Timeline</h2>\n";
  const Plan* plan = p.plan.get();
  if (p.trace.empty() || plan == nullptr || p.step_time.count_ps() < kTimelineColumns) {
    out += "<p class=\"note\">No rank was traced.</p>\n";
    return;
  }
  // Lanes: (rank, stream), ascending; their spans.
  std::map<std::pair<uint32_t, uint8_t>, std::vector<TimelineSpan>> by_lane;
  for (const TraceRecord& r : p.trace) {
    SIM_CHECK(r.rank < plan->program_of_rank.size(), "prediction_html: rank %u of %zu", r.rank,
              plan->program_of_rank.size());
    const Program& prog = plan->programs[plan->program_of_rank[r.rank]];
    SIM_CHECK(r.task < prog.tasks.size(), "prediction_html: rank %u task %u of %zu", r.rank, r.task, prog.tasks.size());
    const Task& t = prog.tasks[r.task];
    by_lane[{r.rank, t.stream}].push_back(
        TimelineSpan{r.start.count_ps(), r.end.count_ps(), static_cast<uint8_t>(t.category)});
  }
  std::vector<Lane> lanes;
  for (auto& [key, spans] : by_lane) {
    const Program& prog = plan->programs[plan->program_of_rank[key.first]];
    const std::string label = strf("rank %u %s", key.first, stream_name(key.second));
    lanes.push_back(Lane{label, label + " (" + prog.name + ")", std::move(spans)});
  }
  const int64_t horizon = p.step_time.count_ps();
  lanes_svg(
      out, "timeline", lanes, horizon, static_cast<int>(kNumCategories),
      [](uint8_t c) { return to_string(static_cast<Category>(c)); }, category_colour);
  out += "<p class=\"note\">" +
         html_escape(strf("Each lane is one stream of one traced rank over the step, in %d columns of %s; a column "
                          "takes the colour of what ran longest in it, blank where nothing ran. The trace file "
                          "(--trace) has every task.",
                          kTimelineColumns, format_time(Time::ps(horizon / kTimelineColumns)).c_str())) +
         "</p>\n";
}

void sources(std::string& out, const Prediction& p) {
  out += strf("<h2>Where the costs come from (time on critical rank %u)</h2>\n", p.critical_rank);
  if (p.sources.empty()) {
    out += "<p class=\"note\">(none)</p>\n";
  } else {
    out += "<table>\n<tr><th>what</th><th>source</th><th class=\"n\">ops</th><th class=\"n\">time</th>"
           "<th class=\"n\">share</th><th>detail</th></tr>\n";
    for (const SourceRow& r : p.sources)
      out += "<tr><td>" + html_escape(r.what) + "</td><td>" + to_string(r.source) + "</td><td class=\"n\">" +
             strf("%d", r.distinct_ops) + "</td><td class=\"n\">" + format_time(r.time_on_critical_rank) +
             "</td><td class=\"n\">" + reports::share(r.time_on_critical_rank, p.step_time) + "</td><td>" +
             html_escape(r.detail) + "</td></tr>\n";
    out += "</table>\n";
  }
  out += "<p class=\"note\">" +
         html_escape(p.calibration.empty() ? std::string("Costs: the embedded default (no calibration database).")
                                           : "Costs: calibration database " + p.calibration + ".") +
         "</p>\n";
}

// Signed errors of validated rows as bars from a zero line (kValidateChartPct to each side,
// clipped beyond with the value printed), guides at +-5, 15, 25%; `grouped`: under a title per
// source group in order of first appearance, else in the given order.
void error_bars(std::string& out, const char* id, const std::vector<const ValidateRow*>& rows, bool grouped) {
  std::vector<std::string> order;   // groups in order of first appearance ({""}: one untitled group)
  for (const ValidateRow* r : rows) {
    const std::string g = grouped ? r->group : "";
    if (std::find(order.begin(), order.end(), g) == order.end()) order.push_back(g);
  }
  size_t longest = 0;
  for (const ValidateRow* r : rows) longest = std::max(longest, r->id.size());
  const int lw = static_cast<int>(std::clamp<size_t>(7 * longest, kLabelWidth, 360));
  const double h = 12, gap = 4, top = 22;
  const double height = top + static_cast<double>(rows.size() + (grouped ? order.size() : 0)) * (h + gap) + 6;
  const double zero = lw + kChartWidth / 2.0, half = kChartWidth / 2.0;
  out += strf("<svg id=\"%s\" width=\"%d\" height=\"%s\" role=\"img\">\n", id, lw + kChartWidth + 60,
              px(height).c_str());
  for (double g : {-25.0, -15.0, -5.0, 0.0, 5.0, 15.0, 25.0}) {
    const double x = zero + g / kValidateChartPct * half;
    out += "<line x1=\"" + px(x) + "\" y1=\"14\" x2=\"" + px(x) + "\" y2=\"" + px(height) + "\" stroke=\"" +
           (g == 0 ? "#444" : "#ccc") + "\"" + (g == 0 ? "" : " stroke-dasharray=\"3,3\"") + "/>\n";
    out += "<text x=\"" + px(x) + "\" y=\"10\" text-anchor=\"middle\">" +
           (g == 0 ? std::string("0") : strf("%+.0f%%", g)) + "</text>\n";
  }
  double y = top;
  for (const std::string& g : order) {
    if (grouped) {
      out += "<text x=\"0\" y=\"" + px(y + h - 2) + "\" font-weight=\"bold\">" +
             html_escape(g.empty() ? std::string("(no group)") : g) + "</text>\n";
      y += h + gap;
    }
    for (const ValidateRow* r : rows) {
      if (grouped && r->group != g) continue;
      const double e = std::isfinite(r->error_pct) ? r->error_pct : 0;
      const double x1 = zero + std::clamp(e, -kValidateChartPct, kValidateChartPct) / kValidateChartPct * half;
      // A time metric's error has the other sign: a shorter predicted step is a faster run.
      const bool faster = r->metric.rfind("iteration_time", 0) == 0 ? e < 0 : e > 0;
      out += "<text x=\"" + std::string(grouped ? "12" : "0") + "\" y=\"" + px(y + h - 2) + "\">" +
             html_escape(r->id) + "</text>\n";
      out += "<rect class=\"err\" x=\"" + px(std::min(zero, x1)) + "\" y=\"" + px(y) + "\" width=\"" +
             px(std::fabs(x1 - zero)) + "\" height=\"" + px(h) + "\" fill=\"" + (faster ? "#f28e2b" : "#4e79a7") +
             "\" data-v=\"" + strf("%.17g", r->error_pct) + "\"><title>" +
             html_escape(strf("%s: %s measured %s, predicted %s, %+.1f%%", r->id.c_str(), r->metric.c_str(),
                              measure_text(r->measured).c_str(), measure_text(r->predicted).c_str(), r->error_pct)) +
             "</title></rect>\n";
      out += "<text x=\"" + px(e >= 0 ? x1 + 3 : x1 - 3) + "\" y=\"" + px(y + h - 2) + "\"" +
             (e >= 0 ? "" : " text-anchor=\"end\"") + ">" + strf("%+.1f%%", r->error_pct) + "</text>\n";
      y += h + gap;
    }
  }
  out += "</svg>\n<div>\n" + legend_item("#f28e2b", "trainsim predicts a faster run than was measured") +
         legend_item("#4e79a7", "a slower one") +
         strf("<span class=\"key\">error = predicted / measured - 1 of the row's metric (for an iteration time, "
              "negative is faster); dashed: +-5%%, +-15%%, +-25%%; bars stop at +-%.0f%%</span>\n",
              kValidateChartPct) +
         "</div>\n";
}

// The predicted and measured time of each class as two bars (predicted in full colour, measured
// pale), on one scale, under "Time per class" (`id`: the SVG's).
struct ClassPair {
  std::string what;
  Time predicted, measured;
  bool predicted_present = true, measured_present = true;
  std::string source;   // of the predicted cost
  const char* colour;
};
void class_pairs(std::string& out, const char* id, const std::vector<ClassPair>& pairs) {
  out += "<h2>Time per class</h2>\n";
  double full = 0;
  for (const ClassPair& r : pairs) full = std::max({full, r.predicted.seconds(), r.measured.seconds()});
  const double h = 10, gap = 8;
  const double height = 6 + static_cast<double>(pairs.size()) * (2 * h + gap) + 4;
  out += strf("<svg id=\"%s\" width=\"%d\" height=\"%s\" role=\"img\">\n", id, kLabelWidth + kChartWidth + 170,
              px(height).c_str());
  double y = 6;
  for (const ClassPair& r : pairs) {
    for (int side = 0; side < 2; ++side) {
      const bool pred = side == 0;
      const Time t = pred ? r.predicted : r.measured;
      const bool present = pred ? r.predicted_present : r.measured_present;
      bar(out, pred ? r.what : "",
          {{t.seconds(), r.colour,
            strf("%s %s: %s%s", r.what.c_str(), pred ? "predicted" : "measured", format_time(t).c_str(),
                 pred ? (" (" + r.source + ")").c_str() : "")}},
          full, y, h, !pred);
      const double x = kLabelWidth + (full > 0 ? t.seconds() / full * kChartWidth : 0);
      out += "<text x=\"" + px(x + 4) + "\" y=\"" + px(y + h - 1) + "\">" +
             html_escape((pred ? "predicted " : "measured ") + (present ? format_time(t) : std::string("-"))) +
             "</text>\n";
      y += h;
    }
    y += gap;
  }
  out += "</svg>\n<p class=\"note\">Each class: the predicted time (full colour), then the measured (pale); the "
         "report below gives each prediction's cost source.</p>\n";
}

// The headline cards of a predicted-vs-measured step, and the verdict against `tolerance`.
void step_cards(std::string& out, Time predicted, Time measured, double error, double tolerance) {
  out += "<div class=\"cards\">\n";
  const bool passed = std::fabs(error) <= tolerance;
  card(out, format_time(predicted), "predicted step");
  card(out, format_time(measured), "measured step");
  card(out, strf("%+.1f%%", error * 100), strf("step error (tolerance %.1f%%)", tolerance * 100));
  out += "</div>\n<p class=\"" + std::string(passed ? "ok" : "oom") + "\">" +
         (passed ? "within the tolerance" : "over the tolerance") + "</p>\n";
}

// A sweep point's name: its axis values ("tp=8 pp=2"), keys without their section.
std::string point_label(const SweepPoint& p) {
  std::string s;
  for (const auto& o : p.set) {
    const size_t dot = o.find('.'), eq = o.find('=');
    s += (s.empty() ? "" : " ") + (dot != std::string::npos && dot < eq ? o.substr(dot + 1) : o);
  }
  return s;
}

}  // namespace html_page

std::vector<uint8_t> timeline_columns(const std::vector<TimelineSpan>& spans, int64_t horizon_ps, int width,
                                      int kinds) {
  SIM_CHECK(width >= 1 && horizon_ps >= width, "timeline_columns: width %d over %lld ps", width,
            (long long)horizon_ps);
  SIM_CHECK(kinds >= 1 && kinds <= kIdleColumn, "timeline_columns: %d kinds", kinds);
  const size_t nk = static_cast<size_t>(kinds);
  std::vector<int64_t> busy(static_cast<size_t>(width) * nk, 0);   // [column][kind]
  std::vector<uint8_t> any(static_cast<size_t>(width), 0);
  for (const TimelineSpan& s : spans) {
    SIM_CHECK(s.category < kinds, "timeline_columns: category %u of %d", (unsigned)s.category, kinds);
    const int64_t a = std::max<int64_t>(s.start_ps, 0), b = std::min(s.end_ps, horizon_ps);
    if (b <= a) continue;
    // The column holding a: the largest c with column_start(c) <= a.
    int64_t c = static_cast<int64_t>(static_cast<__int128>(a) * width / horizon_ps);
    while (c + 1 < width && html_page::column_start(horizon_ps, width, c + 1) <= a) ++c;
    while (c > 0 && html_page::column_start(horizon_ps, width, c) > a) --c;
    for (; c < width; ++c) {
      const int64_t lo = html_page::column_start(horizon_ps, width, c), hi = html_page::column_start(horizon_ps, width, c + 1);
      if (lo >= b) break;
      busy[static_cast<size_t>(c) * nk + s.category] += std::min(b, hi) - std::max(a, lo);
      any[c] = 1;
    }
  }
  std::vector<uint8_t> out(static_cast<size_t>(width), kIdleColumn);
  for (int c = 0; c < width; ++c) {
    if (!any[c]) continue;
    const int64_t* col = busy.data() + static_cast<size_t>(c) * nk;
    size_t best = 0;
    for (size_t k = 1; k < nk; ++k)
      if (col[k] > col[best]) best = k;
    out[c] = static_cast<uint8_t>(best);
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string sweep_html(const SweepResult& r, const std::string& version) {
  using namespace html_page;
  std::string out;
  head(out, "trainsim " + r.command + ": " + r.scenario);
  out += "<h1>trainsim " + html_escape(r.command) + ": " + html_escape(r.scenario) + "</h1>\n";
  const std::vector<size_t> order = sweep_ranking(r);
  std::vector<size_t> charted;   // predicted points, best first
  size_t refused = 0;
  for (size_t i : order) {
    if (!r.points[i].ok) {
      ++refused;
      continue;
    }
    if (charted.size() < kSweepChartPoints) charted.push_back(i);
  }
  const size_t ok = order.size() - refused;
  out += "<p>" +
         html_escape(reports::strf("%zu points in this file (%zu predicted, %zu refused); %s mode. ", order.size(), ok,
                                   refused, r.fast ? "fast" : "full")) +
         (ok > charted.size() ? html_escape(reports::strf("The charts show the best %zu; the table has every point.",
                                                          charted.size()))
                              : std::string()) +
         "</p>\n";
  const double h = 14, gap = 4, top = 6;
  const double height = top + static_cast<double>(charted.size()) * (h + gap) + 4;
  // Labels are "N. tp=8 pp=2 ...": the bars start past the longest (about 7 px a character).
  size_t longest = 0;
  for (size_t k = 0; k < charted.size(); ++k)
    longest = std::max(longest, point_label(r.points[charted[k]]).size() + 9);
  const int lw = static_cast<int>(std::clamp<size_t>(7 * longest, kLabelWidth, 480));
  // Step time: compute / exposed comm / bubble on each point's critical rank.
  out += "<h2>Step time, best first</h2>\n";
  double full = 0;
  for (size_t i : charted) full = std::max(full, r.points[i].step_s);
  out += reports::strf("<svg id=\"sweep-step\" width=\"%d\" height=\"%s\" role=\"img\">\n",
                       lw + kChartWidth + 90, px(height).c_str());
  double y = top;
  const char* comp = bucket_colour(Bucket::kCompute);
  const char* comm = bucket_colour(Bucket::kDpExposed);
  const char* bub = bucket_colour(Bucket::kBubble);
  for (size_t k = 0; k < charted.size(); ++k) {
    const SweepPoint& p = r.points[charted[k]];
    const std::string name = point_label(p);
    const auto t = [&](const char* what, double s) {
      return reports::strf("%s: %s %s", name.c_str(), what, format_time(Time::from_seconds(s)).c_str());
    };
    bar(out,
        reports::strf("%zu. %s%s%s", k + 1, name.c_str(),
                      p.oom ? " OOM" : !sweep_fits(p, r.memory_limit) ? " over limit" : "",
                      charted[k] == r.given ? " (as given)" : ""),
        {{p.compute_s, comp, t("compute", p.compute_s)},
         {p.exposed_comm_s, comm, t("exposed comm", p.exposed_comm_s)},
         {p.bubble_s, bub, t("bubble", p.bubble_s)}},
        full, y, h, !sweep_fits(p, r.memory_limit), lw);
    const double x = lw + (full > 0 ? p.step_s / full * kChartWidth : 0);
    out += "<text x=\"" + px(x + 4) + "\" y=\"" + px(y + h - 3) + "\">" + format_time(Time::from_seconds(p.step_s)) +
           "</text>\n";
    y += h + gap;
  }
  out += "</svg>\n<div>\n" + legend_item(comp, "compute (with recompute and optimizer)") +
         legend_item(comm, "exposed communication") + legend_item(bub, "pipeline bubble") +
         "<span class=\"key\">pale: does not fit in memory</span>\n</div>\n";
  // Peak memory against each point's capacity.
  out += "<h2>Peak memory per GPU, in the same order</h2>\n";
  double mfull = 0;
  for (size_t i : charted) mfull = std::max({mfull, r.points[i].peak_memory_gib, r.points[i].capacity_gib});
  out += reports::strf("<svg id=\"sweep-memory\" width=\"%d\" height=\"%s\" role=\"img\">\n",
                       lw + kChartWidth + 90, px(height).c_str());
  y = top;
  for (size_t k = 0; k < charted.size(); ++k) {
    const SweepPoint& p = r.points[charted[k]];
    const std::string name = point_label(p);
    bar(out, reports::strf("%zu. %s", k + 1, name.c_str()),
        {{p.peak_memory_gib, !sweep_fits(p, r.memory_limit) ? "#b00020" : "#59a14f",
          reports::strf("%s: peak %.2f GiB on rank %u, capacity %.2f GiB", name.c_str(), p.peak_memory_gib, p.peak_rank,
                        p.capacity_gib)}},
        mfull, y, h, false, lw);
    const double cx = lw + (mfull > 0 ? p.capacity_gib / mfull * kChartWidth : 0);
    out += "<line x1=\"" + px(cx) + "\" y1=\"" + px(y - 1) + "\" x2=\"" + px(cx) + "\" y2=\"" + px(y + h + 1) +
           "\" stroke=\"#222\" stroke-width=\"2\"/>\n";
    out += "<text x=\"" + px(std::max(cx, lw + (mfull > 0 ? p.peak_memory_gib / mfull * kChartWidth : 0)) + 4) +
           "\" y=\"" + px(y + h - 3) + "\">" + reports::strf("%.1f GiB", p.peak_memory_gib) + "</text>\n";
    y += h + gap;
  }
  out += "</svg>\n<div>\n" + legend_item("#59a14f", "fits") +
         legend_item("#b00020", r.memory_limit < 1 ? "OOM or over the memory limit" : "OOM") +
         "<span class=\"key\">black tick: the GPU's capacity</span>\n</div>\n";
  // The landscape: the best point per (tp, pp), shaded by its step against the best one's.
  const LayoutGrid grid = layout_grid(r);
  if ((grid.tp.size() > 1 || grid.pp.size() > 1) && !charted.empty()) {
    std::vector<size_t> place(r.points.size(), 0);
    for (size_t k = 0; k < order.size(); ++k) place[order[k]] = k + 1;
    const double best_step = r.points[order[0]].step_s;
    out += "<h2>Best per tp x pp</h2>\n<table id=\"sweep-grid\">\n<tr><th></th>";
    for (int pp : grid.pp) out += "<th class=\"n\">pp " + std::to_string(pp) + "</th>";
    out += "</tr>\n";
    for (size_t a = 0; a < grid.tp.size(); ++a) {
      out += "<tr><th>tp " + std::to_string(grid.tp[a]) + "</th>";
      for (size_t b = 0; b < grid.pp.size(); ++b) {
        const size_t i = grid.best[a][b];
        if (i == LayoutGrid::kNoPoint) {
          out += grid.tried[a][b] ? "<td class=\"n\" style=\"background:#dddddd\">does not fit</td>" : "<td></td>";
          continue;
        }
        const SweepPoint& p = r.points[i];
        // Green at the best step, red from 1.5 times it.
        const double f = std::clamp(best_step > 0 ? (p.step_s / best_step - 1) / 0.5 : 0.0, 0.0, 1.0);
        const int red = static_cast<int>(std::lround(0x9b + f * (0xe1 - 0x9b)));
        const int green = static_cast<int>(std::lround(0xd8 - f * (0xd8 - 0x8c)));
        const int blue = static_cast<int>(std::lround(0x9b - f * (0x9b - 0x8c)));
        out += reports::strf("<td class=\"n\" style=\"background:#%02x%02x%02x\" title=\"%s\">#%zu %s</td>", red, green,
                             blue, html_escape(point_label(p)).c_str(), place[i],
                             html_escape(format_time(Time::from_seconds(p.step_s))).c_str());
      }
      out += "</tr>\n";
    }
    out += "</table>\n<p class=\"note\">Each cell: the best point of that tp and pp whatever the other keys (its place "
           "in the table and its step), green at the best step, red from 1.5 times it.</p>\n";
  }
  out += "<h2>Every point</h2>\n<pre>" + html_escape(format_sweep(r)) + "</pre>\n";
  out += "<p class=\"note\">" + html_escape("trainsim " + version + "; sweep key " + r.key + ".") +
         "</p>\n</body>\n</html>\n";
  return out;
}

std::string validate_html(const std::vector<ValidateRow>& rows, const ValidateSummary& s, const std::string& runs,
                          const std::string& costs, const std::string& version) {
  using namespace html_page;
  std::string out;
  head(out, "trainsim validate: " + runs);
  out += "<h1>trainsim validate: " + html_escape(runs) + "</h1>\n<div class=\"cards\">\n";
  card(out, reports::strf("%d of %zu", s.compared, rows.size()), "rows compared");
  card(out, reports::strf("%.1f%%", s.median_abs_error_pct), "median |error|");
  card(out, reports::strf("%.1f%%", s.mean_abs_error_pct), "mean |error|");
  card(out, reports::strf("%.1f%%", s.max_abs_error_pct), "max |error|");
  out += "</div>\n<p class=\"note\">" +
         html_escape("Error = predicted / measured - 1 of each row's metric: for throughput (tokens/s, TFLOP/s, MFU) "
                     "positive means trainsim predicts a faster run than was measured, for an iteration time a slower "
                     "one; the bars' colour says which. " + costs + ".") +
         "</p>\n";
  const auto groups = summarize_groups(rows);
  if (groups.size() > 1) {
    out += "<table>\n<tr><th>source group</th><th class=\"n\">compared</th><th class=\"n\">median |error|</th>"
           "<th class=\"n\">mean</th><th class=\"n\">max</th></tr>\n";
    for (const auto& [g, gs] : groups)
      out += "<tr><td>" + html_escape(g.empty() ? std::string("(no group)") : g) + "</td><td class=\"n\">" +
             reports::strf("%d</td><td class=\"n\">%.1f%%</td><td class=\"n\">%.1f%%</td><td class=\"n\">%.1f%%",
                           gs.compared, gs.median_abs_error_pct, gs.mean_abs_error_pct, gs.max_abs_error_pct) +
             "</td></tr>\n";
    out += "</table>\n";
  }
  out += "<h2>Signed error of every compared row</h2>\n";
  std::vector<const ValidateRow*> ok;
  for (const ValidateRow& r : rows)
    if (r.ok) ok.push_back(&r);
  error_bars(out, "validate-errors", ok, true);
  std::string skipped;
  for (const ValidateRow& r : rows)
    if (!r.ok)
      skipped += "<tr><td>" + html_escape(r.id) + "</td><td>" + html_escape(r.reason) + "</td></tr>\n";
  if (!skipped.empty())
    out += "<h2>Not compared</h2>\n<table>\n<tr><th>row</th><th>why</th></tr>\n" + skipped + "</table>\n";
  out += "<h2>Every row, with the defaults it assumed</h2>\n<pre>" + html_escape(format_validate(rows, s, costs)) +
         "</pre>\n";
  out += "<p class=\"note\">" + html_escape("trainsim " + version + ".") + "</p>\n</body>\n</html>\n";
  return out;
}

std::string compare_trace_html(const TraceComparison& c, double tolerance, const std::string& version) {
  using namespace html_page;
  const std::vector<std::string>& rows = trace_class_rows();
  SIM_CHECK(rows.size() == kRowColour.size(), "compare_trace_html: %zu rows, %zu colours", rows.size(),
            kRowColour.size());
  std::string out;
  head(out, "trainsim compare-trace: " + c.scenario);
  out += "<h1>trainsim compare-trace: " + html_escape(c.scenario) + "</h1>\n<p>" +
         html_escape(reports::strf("simulated rank %u of %d against %s (%s)", c.rank, c.ranks, c.trace_file.c_str(),
                                   c.measured_side.window.c_str())) +
         "</p>\n";
  step_cards(out, c.predicted, c.measured, c.step_error, tolerance);
  // Both sides on one axis.
  auto to_lane = [](const std::vector<ClassSpan>& v, bool comm, const std::string& label) {
    Lane l{label, label, {}};
    for (const ClassSpan& x : v)
      if (x.comm == comm) l.spans.push_back(TimelineSpan{x.start.count_ps(), x.end.count_ps(), x.row});
    return l;
  };
  const std::vector<Lane> lanes = {to_lane(c.predicted_spans, false, "simulated compute"),
                                   to_lane(c.predicted_spans, true, "simulated comm"),
                                   to_lane(c.measured_side.spans, false, "measured compute"),
                                   to_lane(c.measured_side.spans, true, "measured comm")};
  const int64_t horizon = std::max(c.predicted, c.measured).count_ps();
  out += "<h2>Timelines</h2>\n";
  if (horizon >= kTimelineColumns) {
    lanes_svg(
        out, "compare-timeline", lanes, horizon, static_cast<int>(rows.size()),
        [&](uint8_t k) { return rows[k].c_str(); }, [](uint8_t k) { return kRowColour[k]; });
    out += "<p class=\"note\">" +
           html_escape(reports::strf("Both sides from their step's start, on one axis of %s; each column takes the "
                                     "colour of the class that ran longest in it. Measured: the trace's kernels on "
                                     "device %lld, every stream.",
                                     format_time(Time::ps(horizon)).c_str(), (long long)c.measured_side.device)) +
           "</p>\n";
  }
  std::vector<ClassPair> pairs;
  for (const TraceClassRow& r : c.classes) {
    pairs.push_back({r.what, r.predicted, r.measured, r.predicted_present, r.measured_present, r.source,
                     class_colour(r.what)});
  }
  class_pairs(out, "compare-classes", pairs);
  out += "<h2>The report</h2>\n<pre>" + html_escape(format_trace_comparison(c, tolerance, version)) + "</pre>\n";
  out += "<p class=\"note\">" + html_escape("trainsim " + version + ".") + "</p>\n</body>\n</html>\n";
  return out;
}

std::string verify_html(const Verification& v, double tolerance, const std::string& version) {
  using namespace html_page;
  std::string out;
  head(out, "trainsim verify: " + v.scenario);
  out += "<h1>trainsim verify: " + html_escape(v.scenario) + "</h1>\n<p>" +
         html_escape(reports::strf("%d of %d ranks run for real by the %s executor (%s) on %s; costs: %s", v.ranks,
                                   v.full_ranks, v.executor.c_str(), v.backend.c_str(), v.device.c_str(),
                                   v.calibration.c_str())) +
         "</p>\n";
  step_cards(out, v.predicted, v.measured, v.step_error, tolerance);
  std::vector<ClassPair> pairs;
  for (const VerifyClassRow& r : v.classes)
    pairs.push_back({r.what, r.predicted, r.measured, true, true, r.source, class_colour(r.what)});
  class_pairs(out, "verify-classes", pairs);
  out += "<h2>The report</h2>\n<pre>" + html_escape(format_verification(v, tolerance, version)) + "</pre>\n";
  out += "<p class=\"note\">" + html_escape("trainsim " + version + ".") + "</p>\n</body>\n</html>\n";
  return out;
}

std::string compare_html(const RunComparison& c, const std::string& version) {
  using namespace html_page;
  const ComparedRun& a = c.a;
  const ComparedRun& b = c.b;
  std::string out;
  head(out, "trainsim compare: " + a.scenario + " / " + b.scenario);
  out += "<h1>trainsim compare</h1>\n<p>A: " + html_escape(a.label) + "<br>B: " + html_escape(b.label) + "</p>\n";
  out += "<div class=\"cards\">\n";
  card(out, format_time(a.step), "step time, A");
  card(out, format_time(b.step), "step time, B");
  const double change = step_change(c);
  card(out, std::isfinite(change) ? reports::signed_pct(change) : "-", "B's step against A's");
  card(out, group_digits(a.tokens_per_s_per_gpu) + " / " + group_digits(b.tokens_per_s_per_gpu), "tokens/s per GPU, A / B");
  card(out, gib2(a.memory[ComparedRun::kMemoryTotal]) + " / " + gib2(b.memory[ComparedRun::kMemoryTotal]) + " GiB", "peak memory per GPU, A / B");
  out += "</div>\n";

  out += "<h2>Where the step goes (each side's critical rank)</h2>\n";
  const double full = static_cast<double>(std::max(a.step, b.step).count_ps());
  std::string legend;
  std::vector<bool> shown(kNumBuckets, false);
  out += strf("<svg id=\"compare-breakdown\" width=\"%d\" height=\"62\" role=\"img\">\n", kLabelWidth + kChartWidth + 10);
  double y = 4;
  for (const ComparedRun* r : {&a, &b}) {
    std::vector<BarPart> parts;
    for (size_t i = 0; i < kNumBuckets; ++i) {
      const Time v = r->breakdown[i];
      if (v.count_ps() == 0) continue;
      shown[i] = true;
      parts.push_back({static_cast<double>(v.count_ps()), bucket_colour(static_cast<Bucket>(i)),
                       strf("%s %s: %s", r == &a ? "A" : "B", breakdown_label(static_cast<Bucket>(i)), format_time(v).c_str())});
    }
    bar(out, strf("%s step %s", r == &a ? "A" : "B", format_time(r->step).c_str()), parts, full, y, 24);
    y += 30;
  }
  out += "</svg>\n<div>\n";
  for (size_t i = 0; i < kNumBuckets; ++i)
    if (shown[i]) legend += legend_item(bucket_colour(static_cast<Bucket>(i)), breakdown_label(static_cast<Bucket>(i)));
  out += legend + "</div>\n";

  out += "<h2>Peak memory per GPU</h2>\n";
  double mfull = 0;
  for (const ComparedRun* r : {&a, &b}) mfull = std::max({mfull, static_cast<double>(r->memory[ComparedRun::kMemoryTotal]), static_cast<double>(r->capacity)});
  out += strf("<svg id=\"compare-memory\" width=\"%d\" height=\"62\" role=\"img\">\n", kLabelWidth + kChartWidth + 60);
  y = 4;
  for (const ComparedRun* r : {&a, &b}) {
    std::vector<BarPart> parts;
    for (size_t i = 0; i < kMemoryParts.size(); ++i)
      parts.push_back({static_cast<double>(r->memory[i]), kMemoryParts[i].colour,
                       strf("%s %s: %s GiB", r == &a ? "A" : "B", kMemoryParts[i].label, gib2(r->memory[i]).c_str())});
    bar(out, strf("%s %s GiB%s", r == &a ? "A" : "B", gib2(r->memory[ComparedRun::kMemoryTotal]).c_str(), r->oom ? " OOM" : ""), parts, mfull, y, 24);
    if (mfull > 0 && r->capacity > 0) {
      const double x = kLabelWidth + static_cast<double>(r->capacity) / mfull * kChartWidth;
      out += "<line class=\"capacity\" x1=\"" + px(x) + "\" y1=\"" + px(y - 2) + "\" x2=\"" + px(x) + "\" y2=\"" +
             px(y + 26) + "\" stroke=\"#b00020\" stroke-width=\"2\"><title>" +
             html_escape(strf("%s capacity %s GiB", r == &a ? "A" : "B", gib2(r->capacity).c_str())) + "</title></line>\n";
    }
    y += 30;
  }
  out += "</svg>\n<div>\n";
  for (const MemoryPart& m : kMemoryParts) out += legend_item(m.colour, m.label);
  out += legend_item("#b00020", "each side's GPU capacity") + "</div>\n";
  out += "<p class=\"" + std::string(a.oom ? "oom" : "ok") + "\">A " + html_escape(a.verdict) + "</p>\n";
  out += "<p class=\"" + std::string(b.oom ? "oom" : "ok") + "\">B " + html_escape(b.verdict) + "</p>\n";
  out += "<h2>The report</h2>\n<pre>" + html_escape(format_comparison(c)) + "</pre>\n";
  out += "<p class=\"note\">" + html_escape("trainsim " + version + ".") + "</p>\n</body>\n</html>\n";
  return out;
}

std::string prediction_html(const Prediction& p, const std::string& version, const AccuracyContext* accuracy) {
  std::string out;
  html_page::head(out, "trainsim prediction: " + p.scenario.name);
  html_page::headline(out, p);
  if (accuracy != nullptr && !accuracy->nearest.empty())
    out += "<p>" +
           html_escape(reports::strf("On the %zu published runs most like this scenario (%s), trainsim's error ranged "
                                     "from %+.1f%% to %+.1f%% (median |error| %.1f%%): see \"How sure\" below.",
                                     accuracy->nearest.size(), accuracy->runs.c_str(), accuracy->min_error_pct,
                                     accuracy->max_error_pct, accuracy->median_abs_error_pct)) +
           "</p>\n";
  html_page::breakdown(out, p);
  html_page::memory(out, p);
  html_page::timeline(out, p);
  html_page::sources(out, p);
  if (accuracy != nullptr) {
    out += "<h2>How sure: the published runs most like this scenario</h2>\n";
    std::vector<const ValidateRow*> near;
    for (const NearRun& n : accuracy->nearest) near.push_back(&n.row);
    if (!near.empty()) html_page::error_bars(out, "accuracy", near, false);
    out += "<pre>" + html_escape(format_accuracy_context(*accuracy)) + "</pre>\n";
  }
  out += "<h2>Terminal summary</h2>\n<pre>" + html_escape(format_summary(p)) + "</pre>\n";
  out += "<p class=\"note\">" +
         html_escape(reports::strf("trainsim %s; replay fingerprint %016llx (%s events).", version.c_str(),
                          (unsigned long long)p.fingerprint, reports::group_digits(static_cast<double>(p.events)).c_str())) +
         "</p>\n</body>\n</html>\n";
  return out;
}

}  // namespace trainsim
