// File: reports/html_report.h
// Reports as self-contained HTML pages: a prediction (`run --html`), a sweep, a validation, a
// verification and a trace comparison (each command's `--html FILE`). The pages share one style
// and their charts' drawing (bars, timelines, error bars); each ends with its command's text
// report word for word, so a page holds everything the terminal showed.
//
// One prediction as a self-contained HTML page (`trainsim run --html FILE`): the headline
// figures, the critical rank's step breakdown and the memory of every pipeline stage as bar
// charts, a timeline of the traced ranks, the table of cost sources, and the terminal summary
// word for word. Charts are inline SVG; the page has no script and loads nothing (no font,
// stylesheet or image from anywhere), so it opens offline, prints as it looks and can be
// mailed as one file.
//
// Every figure comes from the Prediction that format_summary() and prediction_json() read,
// formatted with fixed snprintf formats, and every cost figure says its source (the cost
// sources table, and each chart's caption): the page is a pure function of the Prediction
// and `version`, byte for byte (no date, no host name).
//
// Timeline: one lane per (traced rank, stream it used), ascending; the step [0, step time)
// split into kTimelineColumns pixel columns, each drawn in the colour of the category that
// was busy longest in it on that lane (timeline_columns), runs of equal columns merged into one
// rectangle with a tooltip (<title>). So a lane costs at most kTimelineColumns rectangles
// whatever the number of tasks, and a 16,384-GPU step's page stays small. Without trace
// records (no ranks traced) the section says so.
//
// Thread-safety: reentrant; reads the Prediction only.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "scenarios/predict.h"
#include "reports/accuracy_context.h"
#include "reports/compare_report.h"
#include "reports/validate_report.h"
#include "scenarios/compare_trace.h"
#include "scenarios/verify.h"
#include "scenarios/sweep.h"

namespace trainsim {

inline constexpr int kTimelineColumns = 1000;
// timeline_columns' value for a column in which nothing ran.
inline constexpr uint8_t kIdleColumn = 0xff;

// A task's run on one lane: [start_ps, end_ps), category a Category value.
struct TimelineSpan {
  int64_t start_ps = 0, end_ps = 0;
  uint8_t category = 0;
};

// Column c of `width` covers [floor(horizon * c / width), floor(horizon * (c + 1) / width)) ps.
// Returns per column the category with the most busy time in it (the lower category value on
// a tie), or kIdleColumn where no span overlaps it. Spans may overlap and come in any order;
// a span's part outside [0, horizon) is ignored. Categories are Category values, or any
// values below `kinds` (compare-trace's rows).
// REQUIRES: width >= 1, horizon_ps >= width (each column at least 1 ps), category < kinds <= kIdleColumn.
// Cost: O(width x kinds + spans + the columns each span covers).
std::vector<uint8_t> timeline_columns(const std::vector<TimelineSpan>& spans, int64_t horizon_ps, int width,
                                      int kinds = static_cast<int>(Category::kCount));

// "&", "<", ">", '"' and "'" as character references.
std::string html_escape(const std::string& s);

// The page. `version`: the trainsim version printed in its footer. `accuracy` (`run --accuracy`):
// also how far trainsim was on the published runs most like the scenario: their error range as a
// headline card, their signed errors as bars (nearest first), and the terminal's lines.
std::string prediction_html(const Prediction& p, const std::string& version,
                            const AccuracyContext* accuracy = nullptr);

// A sweep as one page (`trainsim sweep --html FILE`): for the best kSweepChartPoints points of
// the table (sweep_ranking), the critical rank's step split into compute, exposed communication
// and bubble, and the peak memory against the GPU's capacity, as bars; then the text table
// (format_sweep) word for word, with every point and the costs' source. OOM points are drawn
// pale and marked; refused points are in the table only. The same result gives the same bytes.
inline constexpr size_t kSweepChartPoints = 64;
std::string sweep_html(const SweepResult& r, const std::string& version);

// A validation as one page (`trainsim validate --html FILE`): the summary (rows compared, median /
// mean / max |error|, per source group), then every compared row's signed error as a bar from a
// zero line, grouped by source in the caller's order, with guides at +-5%, +-15% and +-25% (the
// issues' bars); an error beyond +-kValidateChartPct is drawn to the edge with its value printed.
// Then the skipped rows with their reasons, and the text report (format_validate) word for word
// with every row's defaults. `runs`: the file the rows came from; `costs`: where the costs came
// from (as format_validate prints it). The same rows give the same bytes.
inline constexpr double kValidateChartPct = 60;
std::string validate_html(const std::vector<ValidateRow>& rows, const ValidateSummary& s, const std::string& runs,
                          const std::string& costs, const std::string& version);

// A trace comparison as one page (`trainsim compare-trace --html FILE`): predicted and measured
// step with the error and the verdict against `tolerance`; the simulated rank and the real
// trace as timelines on one time axis (a lane for compute kernels and one for communication
// on each side, each column in the colour of the class that ran longest in it, as the
// prediction page's timeline); a pair of bars per class row (predicted, measured) with the
// predicted cost's source; then the text report word for word. The same comparison gives the
// same bytes.
std::string compare_trace_html(const TraceComparison& c, double tolerance, const std::string& version);

// A verification as one page (`trainsim verify --html FILE`): predicted and measured step, the
// error and the verdict against `tolerance`, the predicted and measured time of each class as a
// pair of bars, then the text report (format_verification) word for word.
std::string verify_html(const Verification& v, double tolerance, const std::string& version);

// Two predictions as one page (`trainsim compare --html FILE`): cards with each side's step and
// the change, the critical rank's breakdown of each side as a stacked bar on one time scale,
// the peak memory of each side by part on one scale with each side's capacity marked, then the
// text report (format_comparison) word for word, with every setting that differs and each
// side's cost sources. The same comparison gives the same bytes.
std::string compare_html(const RunComparison& c, const std::string& version);

}  // namespace trainsim
