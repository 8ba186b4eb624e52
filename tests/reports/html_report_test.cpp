#include "reports/html_report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <random>
#include <regex>
#include <set>

#include "reports/summary.h"
#include "reports/verify_report.h"
#include "scenarios/loader.h"
#include "tests/reports/fixture.h"

namespace trainsim {
namespace {

using testing::two_rank_prediction;

// Column by column, span by span: the definition of timeline_columns.
std::vector<uint8_t> columns_oracle(const std::vector<TimelineSpan>& spans, int64_t horizon, int width) {
  std::vector<uint8_t> out(static_cast<size_t>(width), kIdleColumn);
  for (int c = 0; c < width; ++c) {
    const int64_t lo = static_cast<int64_t>(static_cast<__int128>(horizon) * c / width);
    const int64_t hi = static_cast<int64_t>(static_cast<__int128>(horizon) * (c + 1) / width);
    std::map<uint8_t, int64_t> busy;
    for (const TimelineSpan& s : spans) {
      const int64_t a = std::max({s.start_ps, lo, int64_t{0}}), b = std::min({s.end_ps, hi, horizon});
      if (b > a) busy[s.category] += b - a;
    }
    int64_t best = -1;
    for (const auto& [cat, t] : busy)   // ascending category: a tie keeps the lower one
      if (t > best) {
        best = t;
        out[c] = cat;
      }
  }
  return out;
}

TEST(HtmlReport, TimelineColumnsClosedForm) {
  // 1,000 ps in 10 columns of 100: compute [0, 250), dp-comm [250, 700), nothing after.
  const std::vector<TimelineSpan> spans = {{0, 250, static_cast<uint8_t>(Category::kCompute)},
                                           {250, 700, static_cast<uint8_t>(Category::kDpComm)}};
  const auto c = timeline_columns(spans, 1000, 10);
  const uint8_t comp = static_cast<uint8_t>(Category::kCompute), dp = static_cast<uint8_t>(Category::kDpComm);
  const std::vector<uint8_t> want = {comp, comp, comp, dp, dp, dp, dp, kIdleColumn, kIdleColumn, kIdleColumn};
  EXPECT_EQ(c, want);   // column 2: 50 ps of each, the tie goes to compute
  // A span entirely past the horizon, or empty, draws nothing; one running over it is cut.
  EXPECT_EQ(timeline_columns({{1000, 2000, comp}, {5, 5, dp}}, 1000, 10), std::vector<uint8_t>(10, kIdleColumn));
  EXPECT_EQ(timeline_columns({{950, 5000, dp}}, 1000, 10).back(), dp);
  // A 1 ps span marks its column even beside an idle rest.
  EXPECT_EQ(timeline_columns({{123, 124, dp}}, 1000, 10)[1], dp);
}

TEST(HtmlReport, TimelineColumnsMatchTheColumnByColumnOracle) {
  std::mt19937_64 rng(20261124);
  for (int trial = 0; trial < 400; ++trial) {
    const int width = 1 + static_cast<int>(rng() % 40);
    const int64_t horizon = width + static_cast<int64_t>(rng() % 100000);
    std::vector<TimelineSpan> spans(rng() % 30);
    for (TimelineSpan& s : spans) {
      s.start_ps = static_cast<int64_t>(rng() % static_cast<uint64_t>(horizon + 200)) - 100;
      s.end_ps = s.start_ps + static_cast<int64_t>(rng() % static_cast<uint64_t>(horizon / 2 + 2));
      s.category = static_cast<uint8_t>(rng() % static_cast<uint64_t>(Category::kCount));
    }
    ASSERT_EQ(timeline_columns(spans, horizon, width), columns_oracle(spans, horizon, width))
        << "trial " << trial << " width " << width << " horizon " << horizon;
  }
}

// Every element opened is closed in order (void elements and comments aside): a page the
// browser does not have to repair.
void expect_balanced(const std::string& html) {
  static const std::set<std::string> kVoid = {"meta", "br", "hr", "img", "input", "link"};
  std::vector<std::string> open;
  const std::regex tag(R"(<(/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>)");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), tag); it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[2], attrs = (*it)[3];
    if ((*it)[1] == "/") {
      ASSERT_FALSE(open.empty()) << "</" << name << "> closes nothing";
      ASSERT_EQ(open.back(), name) << "</" << name << "> closes <" << open.back() << ">";
      open.pop_back();
    } else if (!kVoid.count(name) && (attrs.empty() || attrs.back() != '/')) {
      open.push_back(name);
    }
  }
  EXPECT_TRUE(open.empty()) << "unclosed <" << (open.empty() ? "" : open.back()) << ">";
}

// The numbers the first group of `pattern` captures in `svg`, in order.
std::vector<double> captured(const std::string& svg, const char* pattern) {
  std::vector<double> v;
  const std::regex re(pattern);
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
    v.push_back(std::strtod((*it)[1].str().c_str(), nullptr));
  return v;
}
std::vector<double> data_values(const std::string& svg) { return captured(svg, "data-v=\"([^\"]+)\""); }
std::vector<double> widths(const std::string& svg) {
  return captured(svg, "class=\"part\" x=\"[^\"]+\" y=\"[^\"]+\" width=\"([^\"]+)\"");
}
std::string svg_of(const std::string& html, const std::string& id) {
  const size_t a = html.find("<svg id=\"" + id + "\"");
  if (a == std::string::npos) return "";
  return html.substr(a, html.find("</svg>", a) - a);
}

TEST(HtmlReport, ChartsDrawThePredictionsFigures) {
  const Prediction p = two_rank_prediction();
  const std::string html = prediction_html(p, "test-version");
  expect_balanced(html);
  // The breakdown bar: a part per non-zero bucket, its value in ps, widths in proportion that
  // fill the 800 px bar (the buckets sum to the step).
  const std::string bd = svg_of(html, "breakdown");
  ASSERT_FALSE(bd.empty());
  EXPECT_EQ(data_values(bd), (std::vector<double>{700e6, 30e6, 20e6, 50e6, 200e6}));
  const auto w = widths(bd);
  ASSERT_EQ(w.size(), 5u);
  EXPECT_NEAR(w[0], 560.0, 0.005);   // 70% of 800 px
  EXPECT_NEAR(w[4], 160.0, 0.005);   // the bubble, 20%
  double sum = 0;
  for (double x : w) sum += x;
  EXPECT_NEAR(sum, 800.0, 0.03);
  // The memory chart: five parts per stage, in bytes; the scale is the capacity (80 GiB > 62.1).
  const std::string mem = svg_of(html, "memory");
  const auto mv = data_values(mem);
  ASSERT_EQ(mv.size(), 10u);
  EXPECT_EQ(mv[0], static_cast<double>(p.memory_per_stage[0].params.count()));
  EXPECT_EQ(mv[8], static_cast<double>(p.memory_per_stage[1].activations.count()));
  EXPECT_NEAR(widths(mem)[3], 800.0 * 30.6 / 80.0, 0.01);
  EXPECT_NE(mem.find("id=\"capacity\" x1=\"990.00\""), std::string::npos);   // 190 + 800 px: the full scale
  // The headline and the tables say what the terminal summary says.
  EXPECT_NE(html.find("<b>1.000 ms</b><span>step time</span>"), std::string::npos);
  EXPECT_NE(html.find("<b>41.7% / 45.6%</b>"), std::string::npos);
  EXPECT_NE(html.find(html_escape(memory_verdict(p.peak_memory))), std::string::npos);
  EXPECT_NE(html.find("<td>gemm</td><td>interpolated</td>"), std::string::npos);
  EXPECT_NE(html.find("<pre>" + html_escape(format_summary(p)) + "</pre>"), std::string::npos);
  EXPECT_NE(html.find("trainsim test-version; replay fingerprint 00c0ffee12345678"), std::string::npos);
  // Self-contained: no script, nothing fetched.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  // The same prediction, the same bytes.
  EXPECT_EQ(prediction_html(p, "test-version"), html);
}

TEST(HtmlReport, TimelineHasALanePerTracedRankAndStream) {
  Prediction p = two_rank_prediction();
  const std::string html = prediction_html(p, "v");
  const std::string tl = svg_of(html, "timeline");
  ASSERT_FALSE(tl.empty());
  // Each rank ran tasks on compute, pp-send and dp-comm: 6 lanes, ascending.
  for (const char* lane : {"rank 0 compute", "rank 0 dp-comm", "rank 0 pp-send", "rank 1 compute", "rank 1 dp-comm",
                           "rank 1 pp-send"})
    EXPECT_NE(tl.find(std::string(">") + lane + "</text>"), std::string::npos) << lane;
  EXPECT_LT(tl.find(">rank 0 pp-send<"), tl.find(">rank 1 compute<"));
  // Rank 0's compute lane: fc1 over [0, 100) us = columns 0-99 (1 us each) in one rectangle.
  EXPECT_NE(tl.find("<rect x=\"190.00\" y=\"18.00\" width=\"80.00\" height=\"12.00\" fill=\"#4e79a7\">"
                    "<title>rank 0 compute (stage 0): mostly compute from 0.000 us to 100.000 us</title></rect>"),
            std::string::npos)
      << tl.substr(0, 1500);
  // No trace: the section says so and draws nothing.
  p.trace.clear();
  const std::string none = prediction_html(p, "v");
  EXPECT_EQ(svg_of(none, "timeline"), "");
  EXPECT_NE(none.find("No rank was traced."), std::string::npos);
}

TEST(HtmlReport, NamesAreEscaped) {
  Prediction p = two_rank_prediction();
  p.scenario.name = "<script>alert('x')</script> & \"co\"";
  p.sources[0].detail = "a<b>c";
  const std::string html = prediction_html(p, "v");
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;"), std::string::npos);
  EXPECT_NE(html.find("<td>a&lt;b&gt;c</td>"), std::string::npos);
  expect_balanced(html);
  EXPECT_EQ(html_escape("&<>\"'plain"), "&amp;&lt;&gt;&quot;&#39;plain");
}

TEST(HtmlReport, ARealPredictionWithItsTrace) {
  auto sc = load_embedded_quickstart({"parallel.pp=2", "parallel.dp=4"});
  ASSERT_TRUE(sc.ok()) << sc.status().to_string();
  PredictOptions po;
  po.fast = true;
  po.trace_representatives = true;
  auto pr = predict(sc.value(), po);
  ASSERT_TRUE(pr.ok()) << pr.status().to_string();
  const std::string html = prediction_html(pr.value(), "v");
  expect_balanced(html);
  // A memory bar per stage, a lane per (rank, stream) of the trace.
  EXPECT_EQ(data_values(svg_of(html, "memory")).size(), 5u * 2);
  std::set<std::pair<uint32_t, uint8_t>> lanes;
  for (const TraceRecord& r : pr.value().trace)
    lanes.insert({r.rank, pr.value().plan->programs[pr.value().plan->program_of_rank[r.rank]].tasks[r.task].stream});
  const std::string tl = svg_of(html, "timeline");
  size_t texts = 0;
  for (size_t at = tl.find("<text x=\"0\""); at != std::string::npos; at = tl.find("<text x=\"0\"", at + 1)) ++texts;
  EXPECT_EQ(texts, lanes.size());
  EXPECT_GE(lanes.size(), 4u);   // two stages, each with compute and at least one comm stream
  EXPECT_EQ(prediction_html(pr.value(), "v"), html);
}

}  // namespace
}  // namespace trainsim

namespace trainsim {
namespace {

TEST(HtmlReport, ValidatePageDrawsEveryComparedRowsSignedError) {
  std::vector<ValidateRow> rows(4);
  rows[0] = {"a-1", "tflops_per_gpu", 100, 112, 12, {}, true, "", "group A", "", 0, 0, {}, false};
  rows[1] = {"b-1", "mfu", 0.5, 0.4, -20, {}, true, "", "group <B>", "", 0, 0, {}, false};
  rows[2] = {"a-2", "iteration_time_s", 2, 3.8, 90, {}, true, "", "group A", "", 0, 0, {}, false};
  rows[3] = {"c-1", "mfu", 0, 0, 0, {}, false, "unsupported: something", "group C", "", 0, 0, {}, false};
  const ValidateSummary s = summarize(rows);
  const std::string html = validate_html(rows, s, "runs.jsonl", "costs: test", "v");
  expect_balanced(html);
  const std::string svg = svg_of(html, "validate-errors");
  ASSERT_FALSE(svg.empty());
  // A bar per compared row, grouped in order of first appearance (A: a-1, a-2; then <B>: b-1),
  // 400 px for 60%, the 90% error stopped at the edge with its value printed.
  const std::regex bar_re("class=\"err\" x=\"([^\"]+)\" y=\"[^\"]+\" width=\"([^\"]+)\"[^>]*data-v=\"([^\"]+)\"");
  std::vector<std::array<double, 3>> bars;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), bar_re); it != std::sregex_iterator(); ++it)
    bars.push_back({std::strtod((*it)[1].str().c_str(), nullptr), std::strtod((*it)[2].str().c_str(), nullptr),
                    std::strtod((*it)[3].str().c_str(), nullptr)});
  ASSERT_EQ(bars.size(), 3u);
  EXPECT_EQ(bars[0][2], 12);
  EXPECT_EQ(bars[1][2], 90);
  EXPECT_EQ(bars[2][2], -20);
  const double zero = 190 + 400;   // short ids: the labels take the 190 px minimum
  EXPECT_NEAR(bars[0][0], zero, 0.005);
  EXPECT_NEAR(bars[0][1], 12.0 / 60 * 400, 0.005);
  EXPECT_NEAR(bars[1][1], 400, 0.005);
  EXPECT_NEAR(bars[2][0], zero - 20.0 / 60 * 400, 0.005);   // a negative bar ends at the zero line
  EXPECT_NE(svg.find(">+90.0%</text>"), std::string::npos);
  // Colour = direction of the run: more TFLOP/s is faster (a-1, orange); a longer iteration (a-2)
  // and a lower MFU (b-1) are slower (blue); a shorter iteration is faster.
  const std::regex fill_re("class=\"err\"[^>]*fill=\"(#[0-9a-f]+)\"");
  std::vector<std::string> fills;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), fill_re); it != std::sregex_iterator(); ++it)
    fills.push_back((*it)[1]);
  EXPECT_EQ(fills, (std::vector<std::string>{"#f28e2b", "#4e79a7", "#4e79a7"}));
  std::vector<ValidateRow> shorter = {rows[2]};
  shorter[0].predicted = 1.5;
  shorter[0].error_pct = -25;
  EXPECT_NE(svg_of(validate_html(shorter, summarize(shorter), "r", "c", "v"), "validate-errors").find("fill=\"#f28e2b\""),
            std::string::npos);
  EXPECT_LT(svg.find(">a-2</text>"), svg.find(">group &lt;B&gt;</text>"));
  // The summary, the skipped row's reason, the text report.
  EXPECT_NE(html.find("<b>3 of 4</b><span>rows compared</span>"), std::string::npos);
  EXPECT_NE(html.find("<td>c-1</td><td>unsupported: something</td>"), std::string::npos);
  EXPECT_NE(html.find("<pre>" + html_escape(format_validate(rows, s, "costs: test")) + "</pre>"), std::string::npos);
  EXPECT_EQ(validate_html(rows, s, "runs.jsonl", "costs: test", "v"), html);
}

}  // namespace
}  // namespace trainsim

namespace trainsim {
namespace {

TEST(HtmlReport, RunPageShowsTheNearestPublishedRunsWhenAsked) {
  const Prediction p = two_rank_prediction();
  AccuracyContext ac;
  ac.runs = "runs.jsonl";
  ac.rows = 3;
  ac.compared = 3;
  NearRun a, b;
  a.row = {"near-1", "tflops_per_gpu (model)", 100, 110, 10, {}, true, "", "g", "", 0, 0, {}, true};
  b.row = {"near-2", "iteration_time_s", 2, 2.5, 25, {}, true, "", "g", "", 0, 0, {}, true};
  ac.nearest = {a, b};
  ac.min_error_pct = 10;
  ac.max_error_pct = 25;
  ac.median_abs_error_pct = 17.5;
  const std::string html = prediction_html(p, "v", &ac);
  expect_balanced(html);
  EXPECT_NE(html.find("On the 2 published runs most like this scenario (runs.jsonl), trainsim&#39;s error ranged from "
                      "+10.0% to +25.0% (median |error| 17.5%)"),
            std::string::npos);
  const std::string bars = svg_of(html, "accuracy");
  EXPECT_EQ(data_values(bars), (std::vector<double>{10, 25}));   // nearest first
  EXPECT_NE(html.find("<pre>" + html_escape(format_accuracy_context(ac)) + "</pre>"), std::string::npos);
  // Without --accuracy the page has no such section.
  EXPECT_EQ(prediction_html(p, "v").find("How sure"), std::string::npos);
}

}  // namespace
}  // namespace trainsim

namespace trainsim {
namespace {

TEST(HtmlReport, VerifyPagePairsEachClassesPredictedAndMeasuredTime) {
  Verification v;
  v.scenario = "tiny";
  v.ranks = 2;
  v.full_ranks = 2;
  v.executor = "host";
  v.backend = "threads";
  v.device = "cpu";
  v.calibration = "measured on the fly";
  v.predicted = Time::ms(10);
  v.measured = Time::ms(8);
  v.step_error = 0.25;
  VerifyClassRow g{"gemm", Time::ms(6), Time::ms(5), 4, "measured"};
  VerifyClassRow ar{"all-reduce(tp)", Time::ms(1), Time::ms(2), 2, "measured"};
  v.classes = {g, ar};
  const std::string html = verify_html(v, 0.05, "x");
  expect_balanced(html);
  const std::string svg = svg_of(html, "verify-classes");
  EXPECT_EQ(data_values(svg), (std::vector<double>{0.006, 0.005, 0.001, 0.002}));   // seconds, predicted first
  EXPECT_NEAR(widths(svg)[0], 800, 0.005);   // the longest bar spans the chart
  EXPECT_NEAR(widths(svg)[3], 800.0 / 3, 0.005);
  EXPECT_NE(html.find("<b>+25.0%</b><span>step error (tolerance 5.0%)</span>"), std::string::npos);
  EXPECT_NE(html.find(">over the tolerance</p>"), std::string::npos);
  EXPECT_NE(html.find("<pre>" + html_escape(format_verification(v, 0.05, "x")) + "</pre>"), std::string::npos);
  EXPECT_NE(verify_html(v, 0.3, "x").find(">within the tolerance</p>"), std::string::npos);
}

}  // namespace
}  // namespace trainsim
