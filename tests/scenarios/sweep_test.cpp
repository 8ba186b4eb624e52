// trainsim sweep (scenarios/sweep.h, reports/sweep_report.h): every point is exactly the
// prediction `trainsim run --set ...` gives for its values (oracle), the product order, the
// derived dp, the ranking, and the errors; shards partition the points and the shards' stores
// give back the whole sweep's table and JSON byte for byte.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "reports/html_report.h"
#include "reports/results_store.h"
#include "reports/sweep_report.h"
#include "reports/text_table.h"
#include "scenarios/loader.h"
#include "scenarios/sweep.h"

namespace trainsim {
namespace {

std::vector<SweepAxis> axes(const std::vector<std::string>& t) {
  auto a = parse_sweep_axes(t);
  EXPECT_TRUE(a.ok()) << a.status().to_string();
  return a.ok() ? a.value() : std::vector<SweepAxis>{};
}

// What `trainsim run --fast --set ...` predicts for the quickstart (the oracle of a point).
Result<Prediction> run_quickstart(const std::vector<std::string>& overrides) {
  auto sc = load_embedded_quickstart(overrides);
  if (!sc.ok()) return sc.status();
  PredictOptions po;
  po.fast = true;
  return predict(sc.value(), po);
}

TEST(Sweep, EveryPointIsTheRunOfItsValuesWithDpDerived) {
  const auto ax = axes({"parallel.tp=1,2,4", "parallel.zero=1,3", "parallel.recompute=none,full"});
  ASSERT_EQ(ax.size(), 3u);
  auto res = run_sweep("", ax, {});
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  ASSERT_EQ(res->points.size(), 12u);
  ASSERT_EQ(res->notes.size(), 1u);   // the quickstart's dp = 8 gives way to gpus / tp
  size_t n = 0;
  for (const char* tp : {"1", "2", "4"})
    for (const char* zero : {"1", "3"})
      for (const char* rc : {"none", "full"}) {
        const SweepPoint& p = res->points[n++];
        ASSERT_EQ(p.values, (std::vector<std::string>{tp, zero, rc})) << "product order, last axis fastest";
        ASSERT_TRUE(p.ok) << p.error;
        const int dp = 8 / std::stoi(tp);
        EXPECT_EQ(p.dp, dp);
        auto pr = run_quickstart({std::string("parallel.tp=") + tp, std::string("parallel.zero=") + zero,
                                  std::string("parallel.recompute=") + rc, "parallel.dp=" + std::to_string(dp)});
        ASSERT_TRUE(pr.ok()) << pr.status().to_string();
        EXPECT_EQ(p.step_s, pr->step_time.seconds());
        EXPECT_EQ(p.fingerprint, pr->fingerprint);
        EXPECT_EQ(p.peak_memory_gib, pr->peak_memory.total().gib());
        EXPECT_EQ(p.oom, pr->peak_memory.oom());
        EXPECT_EQ(p.mfu, pr->mfu);
        EXPECT_NEAR(p.compute_s + p.exposed_comm_s + p.bubble_s, p.step_s, 1e-9 + 1e-6 * p.step_s)
            << "the three parts cover the critical rank's step";
        EXPECT_EQ(p.costs, "embedded default");
      }
  // The same sweep in full mode gives the same steps (the replicas are identical).
  SweepOptions full;
  full.fast = false;
  full.overrides = {"parallel.zero=3", "parallel.recompute=full"};
  auto res2 = run_sweep("", axes({"parallel.tp=2,4"}), full);
  ASSERT_TRUE(res2.ok());
  EXPECT_EQ(res2->points[0].step_s, res->points[7].step_s);
  EXPECT_EQ(res2->points[1].step_s, res->points[11].step_s);
}

// training.train_tokens (here per point, an axis): each point's time to train is its run's, the
// table gets a "train days" column and the JSON train_days; without it neither appears.
TEST(Sweep, TimeToTrainIsEachPointsRun) {
  auto res = run_sweep("", axes({"training.global_batch=32,64", "training.train_tokens=1T,2T"}), {});
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  ASSERT_EQ(res->points.size(), 4u);
  for (const SweepPoint& p : res->points) {
    ASSERT_TRUE(p.ok) << p.error;
    auto pr = run_quickstart({p.set[0], p.set[1]});
    ASSERT_TRUE(pr.ok()) << pr.status().to_string();
    const TimeToTrain t = time_to_train(pr.value());
    ASSERT_TRUE(t.present);
    EXPECT_EQ(p.train_s, t.seconds);
    const int64_t tokens = pr->tokens_per_step;
    const int64_t want = p.values[1] == "1T" ? 1'000'000'000'000 : 2'000'000'000'000;
    EXPECT_EQ(t.steps, (want + tokens - 1) / tokens);
  }
  const std::string table = format_sweep(res.value(), 0);
  EXPECT_NE(table.find("train days"), std::string::npos) << table;
  char days[32];
  std::snprintf(days, sizeof days, "%.1f", res->points[3].train_s / 86400);
  EXPECT_NE(table.find(days), std::string::npos) << days << "\n" << table;
  const auto j = sweep_json(res.value());
  EXPECT_DOUBLE_EQ(j["points"][3]["train_days"].get<double>(), res->points[3].train_s / 86400);

  // Ranked by the time to train with interruptions: more GPUs make shorter steps but more
  // interruptions; the ranking follows train_s, and says so.
  SweepOptions by_train;
  by_train.rank_by = SweepRank::kTrain;
  by_train.overrides = {"training.train_tokens=100B", "failures.checkpoint_write=30s", "failures.restart=10min",
                        "failures.per_gpu_hour=0.002"};
  auto tr = run_sweep("", axes({"training.global_batch=32,64,128"}), by_train);
  ASSERT_TRUE(tr.ok()) << tr.status().to_string();
  const std::vector<size_t> order = sweep_ranking(tr.value());
  ASSERT_EQ(order.size(), 3u);
  for (size_t k = 0; k + 1 < order.size(); ++k) {
    ASSERT_TRUE(tr->points[order[k]].ok) << tr->points[order[k]].error;
    EXPECT_LE(tr->points[order[k]].train_s, tr->points[order[k + 1]].train_s);
  }
  const std::string ranked = format_sweep(tr.value(), 0);
  EXPECT_NE(ranked.find("ranked by time to train"), std::string::npos) << ranked;
  EXPECT_NE(ranked.find("shortest time to train that fits"), std::string::npos) << ranked;
  EXPECT_NE(ranked.find("% time to train"), std::string::npos) << ranked;

  auto plain = run_sweep("", axes({"training.global_batch=32,64"}), {});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(format_sweep(plain.value(), 0).find("train days"), std::string::npos);
  EXPECT_FALSE(sweep_json(plain.value())["points"][0].contains("train_days"));
  SweepOptions no_tokens;
  no_tokens.rank_by = SweepRank::kTrain;
  auto untimed = run_sweep("", axes({"training.global_batch=32,64"}), no_tokens);
  ASSERT_TRUE(untimed.ok());
  const std::string said = format_sweep(untimed.value(), 0);
  EXPECT_NE(said.find("no point names training.train_tokens"), std::string::npos) << said;
  SweepRank back;
  ASSERT_TRUE(parse_sweep_rank("train", &back));
  EXPECT_EQ(back, SweepRank::kTrain);
}

// The gpu_speed section's cost is each point's own (its run's GpuSpeedReport::cost), in a
// "speed cost" column and the JSON only when a point has the section.
TEST(Sweep, SpeedCostIsEachPointsRun) {
  auto res = run_sweep("", axes({"gpu_speed.cv=0,0.05", "parallel.zero=1,3"}), {});
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  ASSERT_EQ(res->points.size(), 4u);
  for (const SweepPoint& p : res->points) {
    ASSERT_TRUE(p.ok) << p.error;
    auto pr = run_quickstart(p.set);
    ASSERT_TRUE(pr.ok()) << pr.status().to_string();
    EXPECT_TRUE(p.speed);
    EXPECT_EQ(p.speed_cost_s, pr->gpu_speed.cost.seconds());
    EXPECT_EQ(p.speed_cost_s > 0, p.values[0] == "0.05");
  }
  const std::string table = format_sweep(res.value(), 0);
  EXPECT_NE(table.find("speed cost"), std::string::npos) << table;
  EXPECT_DOUBLE_EQ(sweep_json(res.value())["points"][2]["speed_cost_s"].get<double>(), res->points[2].speed_cost_s);
  auto plain = run_sweep("", axes({"parallel.zero=1,3"}), {});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(format_sweep(plain.value(), 0).find("speed cost"), std::string::npos);
  EXPECT_FALSE(sweep_json(plain.value())["points"][0].contains("speed_cost_s"));
}

TEST(Sweep, RankingFitsThenOomThenRefusedAndTheReportSaysSo) {
  // tp 3 does not divide the heads (refused); zero 0 at tp 1 does not fit in 80 GiB.
  auto res = run_sweep("", axes({"parallel.tp=1,3,2", "parallel.zero=0,3"}), {});
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(res->points.size(), 6u);
  EXPECT_FALSE(res->points[2].ok);
  EXPECT_NE(res->points[2].error.find("/parallel/tp"), std::string::npos) << res->points[2].error;
  EXPECT_TRUE(res->points[0].ok && res->points[0].oom);
  const auto order = sweep_ranking(res.value());
  ASSERT_EQ(order.size(), 6u);
  int cls_prev = 0;
  double step_prev = 0;
  for (size_t i : order) {
    const SweepPoint& p = res->points[i];
    const int cls = !p.ok ? 2 : p.oom ? 1 : 0;
    ASSERT_GE(cls, cls_prev);
    if (cls == cls_prev && cls < 2) {
      EXPECT_GE(p.step_s, step_prev);
    }
    if (cls != cls_prev) step_prev = 0;
    if (cls < 2) step_prev = p.step_s;
    cls_prev = cls;
  }
  const std::string text = format_sweep(res.value());
  const SweepPoint& best = res->points[order[0]];
  ASSERT_TRUE(best.ok && !best.oom);
  EXPECT_NE(text.find("fastest that fits: parallel.tp=" + best.values[0] + " parallel.zero=" + best.values[1]),
            std::string::npos) << text;
  EXPECT_NE(text.find("refused: "), std::string::npos) << text;
  EXPECT_NE(text.find("OOM on rank"), std::string::npos) << text;
  EXPECT_NE(text.find("costs: embedded default"), std::string::npos) << text;
  EXPECT_EQ(text, format_sweep(run_sweep("", axes({"parallel.tp=1,3,2", "parallel.zero=0,3"}), {}).value()))
      << "deterministic";
  // --top 2: the two best rows, then what the others are.
  const std::string top = format_sweep(res.value(), 2);
  EXPECT_NE(top.find("\n1 "), std::string::npos) << top;
  EXPECT_NE(top.find("\n2 "), std::string::npos) << top;
  EXPECT_EQ(top.find("\n3 "), std::string::npos) << top;
  size_t fit = 0, oom = 0, refused = 0;
  for (size_t k = 2; k < order.size(); ++k) {
    const SweepPoint& p = res->points[order[k]];
    (!p.ok ? refused : p.oom ? oom : fit)++;
  }
  EXPECT_NE(top.find("... 4 more (" + std::to_string(fit) + " fit, " + std::to_string(oom) + " OOM, " +
                     std::to_string(refused) + " refused"),
            std::string::npos) << top;
  EXPECT_NE(top.find("fastest that fits"), std::string::npos);
  const auto j = sweep_json(res.value());
  EXPECT_EQ(j["best"], order[0]);
  ASSERT_EQ(j["points"].size(), 6u);
  EXPECT_EQ(j["points"][2]["status"], "invalid");
  EXPECT_TRUE(j["points"][2]["step_s"].is_null());
  EXPECT_EQ(j["points"][0]["status"], "oom");
  EXPECT_EQ(j["points"][order[0]]["rank"], 1);
  EXPECT_EQ(j["points"][1]["values"]["parallel.zero"], "3");
}

// RFC 4180 records: fields split at commas outside quotes, "" inside quotes a quote.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1, std::vector<std::string>(1));
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') rows.back().back() += '"', ++i;
      else if (c == '"') quoted = false;
      else rows.back().back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().emplace_back();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      ++i;
      rows.emplace_back(1);
    } else {
      rows.back().back() += c;
    }
  }
  if (rows.back().size() == 1 && rows.back()[0].empty()) rows.pop_back();   // after the last line end
  return rows;
}

TEST(Sweep, CsvIsTheTableOrderWithEveryFigureExact) {
  // The same sweep as above: an OOM point, a refused one (tp 3), four that fit; a tied axis.
  auto res = run_sweep("", axes({"parallel.tp=1,3,2", "parallel.zero+parallel.zero3_prefetch=0+1,3+2"}), {});
  ASSERT_TRUE(res.ok());
  const std::string csv = sweep_csv(res.value());
  const auto rows = parse_csv(csv);
  ASSERT_EQ(rows.size(), 1 + res->points.size());
  const std::vector<std::string> head = rows[0];
  ASSERT_GE(head.size(), 7u);
  EXPECT_EQ(std::vector<std::string>(head.begin(), head.begin() + 6),
            (std::vector<std::string>{"rank", "index", "parallel.tp", "parallel.zero", "parallel.zero3_prefetch",
                                      "status"}));
  EXPECT_EQ(head.back(), "error");
  auto col = [&](const char* name) {
    return static_cast<size_t>(std::find(head.begin(), head.end(), name) - head.begin());
  };
  const auto order = sweep_ranking(res.value());
  for (size_t k = 0; k < order.size(); ++k) {
    const auto& row = rows[k + 1];
    ASSERT_EQ(row.size(), head.size()) << csv;
    const SweepPoint& p = res->points[order[k]];
    EXPECT_EQ(row[0], std::to_string(k + 1));
    EXPECT_EQ(row[1], std::to_string(order[k]));
    EXPECT_EQ(row[2] + "," + row[3] + "+" + row[4], p.values[0] + "," + p.values[1]);
    EXPECT_EQ(row[col("status")], !p.ok ? "invalid" : p.oom ? "oom" : "ok");
    if (!p.ok) {
      EXPECT_EQ(row[col("step_s")], "");
      EXPECT_NE(row[col("error")].find("/parallel/tp"), std::string::npos) << row[col("error")];
      continue;
    }
    // Shortest round-trip text: the very same doubles.
    EXPECT_EQ(std::strtod(row[col("step_s")].c_str(), nullptr), p.step_s);
    EXPECT_EQ(std::strtod(row[col("mfu")].c_str(), nullptr), p.mfu);
    EXPECT_EQ(std::strtod(row[col("bubble_s")].c_str(), nullptr), p.bubble_s);
    EXPECT_EQ(std::strtod(row[col("peak_memory_gib")].c_str(), nullptr), p.peak_memory_gib);
    EXPECT_EQ(row[col("fingerprint")].size(), 16u);
    EXPECT_EQ(row[col("costs")], "embedded default");
    EXPECT_EQ(row[col("error")], "");
  }
  EXPECT_EQ(csv.substr(csv.size() - 2), "\r\n");
  EXPECT_EQ(sweep_csv(res.value()), csv) << "deterministic";
}

TEST(Sweep, HtmlPageChartsTheBestPointsAndKeepsTheTable) {
  auto res = run_sweep("", axes({"parallel.tp=1,3,2", "parallel.zero=0,3"}), {});
  ASSERT_TRUE(res.ok());
  const std::string html = sweep_html(res.value(), "v");
  const auto order = sweep_ranking(res.value());
  // One bar per predicted point in table order (four: both tp 3 points are refused), the OOM one pale.
  const size_t a = html.find("<svg id=\"sweep-step\""), b = html.find("</svg>", a);
  ASSERT_NE(a, std::string::npos);
  const std::string step = html.substr(a, b - a);
  const SweepPoint& best = res->points[order[0]];
  const std::string first = "1. tp=" + best.values[0] + " zero=" + best.values[1] +
                            (order[0] == res->given ? " (as given)" : "") + "</text>";
  // The scenario's own point (tp 1, zero 3) is marked.
  ASSERT_LT(res->given, res->points.size());
  EXPECT_NE(step.find("tp=1 zero=3" + std::string(res->points[res->given].oom ? " OOM" : "") + " (as given)</text>"),
            std::string::npos)
      << step.substr(0, 2000);
  EXPECT_NE(step.find(first), std::string::npos) << step.substr(0, 600);
  EXPECT_NE(step.find("data-v=\"" + reports::strf("%.17g", best.compute_s) + "\""), std::string::npos);
  size_t labels = 0, pale = 0;
  for (size_t at = step.find("<text x=\"0\""); at != std::string::npos; at = step.find("<text x=\"0\"", at + 1)) ++labels;
  for (size_t at = step.find("fill-opacity"); at != std::string::npos; at = step.find("fill-opacity", at + 1)) ++pale;
  EXPECT_EQ(labels, 4u);
  EXPECT_GE(pale, 1u);   // the OOM point's parts
  EXPECT_NE(step.find(" OOM</text>"), std::string::npos);
  EXPECT_NE(html.find("<pre>" + html_escape(format_sweep(res.value())) + "</pre>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(sweep_html(res.value(), "v"), html) << "deterministic";
}

TEST(Sweep, PipelineAxisDropsTheFilesLayerSplit) {
  // The 405B scenario sets dp and an uneven 16-stage layers_per_stage; varying pp derives dp and
  // splits the layers evenly, unless a --set gives a split.
  const std::string f = std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/llama3_405b_16k.json";
  auto res = run_sweep(f, axes({"parallel.pp=8,16"}), {});
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  ASSERT_EQ(res->notes.size(), 2u);
  for (const auto& p : res->points) EXPECT_TRUE(p.ok) << p.error;
  EXPECT_EQ(res->points[0].dp, 256);
  EXPECT_EQ(res->points[1].dp, 128);
  SweepOptions keep;
  keep.overrides = {"parallel.layers_per_stage=[7,8,8,8,8,8,8,8,8,8,8,8,8,8,8,7]"};
  res = run_sweep(f, axes({"parallel.pp=8,16"}), keep);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->notes.size(), 1u);
  EXPECT_FALSE(res->points[0].ok) << "16 entries for 8 stages";
  EXPECT_NE(res->points[0].error.find("layers_per_stage"), std::string::npos) << res->points[0].error;
  EXPECT_TRUE(res->points[1].ok) << res->points[1].error;
}

TEST(Sweep, AxisValuesSplitOutsideBracketsAndQuotes) {
  auto a = parse_sweep_axes({"parallel.layers_per_stage=[16,16],[15,17]", "name=\"a,b\",c"});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a.value()[0].values, (std::vector<std::string>{"[16,16]", "[15,17]"}));
  EXPECT_EQ(a.value()[1].values, (std::vector<std::string>{"\"a,b\"", "c"}));
}

TEST(Sweep, TiedKeysMoveTogether) {
  // Weak scaling: GPUs and global batch tied, times two schedules of a pipeline.
  auto a = parse_sweep_axes({"cluster.gpus + training.global_batch=8+64,16+128, 32+256", "parallel.zero=1,3"});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a.value()[0].keys, (std::vector<std::string>{"cluster.gpus", "training.global_batch"}));
  EXPECT_EQ(a.value()[0].values, (std::vector<std::string>{"8+64", "16+128", "32+256"}));
  EXPECT_EQ(a.value()[0].overrides(2), (std::vector<std::string>{"cluster.gpus=32", "training.global_batch=256"}));
  auto res = run_sweep("", a.value(), {});
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  ASSERT_EQ(res->points.size(), 6u);
  ASSERT_EQ(res->notes.size(), 1u) << "cluster.gpus varies: dp is derived";
  for (size_t i = 0; i < 6; ++i) {
    const SweepPoint& p = res->points[i];
    ASSERT_TRUE(p.ok) << p.error;
    const int gpus = 8 << (i / 2);
    EXPECT_EQ(p.dp, gpus);
    auto pr = run_quickstart({"cluster.gpus=" + std::to_string(gpus), "training.global_batch=" + std::to_string(8 * gpus),
                              "parallel.zero=" + std::string(i % 2 ? "3" : "1"), "parallel.dp=" + std::to_string(gpus)});
    ASSERT_TRUE(pr.ok()) << pr.status().to_string();
    EXPECT_EQ(p.fingerprint, pr->fingerprint) << i;
    EXPECT_EQ(p.step_s, pr->step_time.seconds()) << i;
  }
  const auto j = sweep_json(res.value());
  EXPECT_EQ(j["points"][5]["values"]["cluster.gpus"], "32");
  EXPECT_EQ(j["points"][5]["values"]["training.global_batch"], "256");
  {   // the table has a column per tied key
    const std::string text = format_sweep(res.value());
    const size_t h = text.find("\n#");
    ASSERT_NE(h, std::string::npos) << text;
    std::stringstream head(text.substr(h + 1, text.find('\n', h + 1) - h - 1));
    std::vector<std::string> cols;
    for (std::string w; head >> w;) cols.push_back(w);
    ASSERT_GE(cols.size(), 4u) << text;
    EXPECT_EQ(std::vector<std::string>(cols.begin(), cols.begin() + 4),
              (std::vector<std::string>{"#", "gpus", "global_batch", "zero"}));
  }
  // A value needs one part per tied key; a tied key may not be varied again.
  auto bad = parse_sweep_axes({"cluster.gpus+training.global_batch=8+64,16"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().to_string().find("has 1 parts for 2 tied keys"), std::string::npos) << bad.status().to_string();
  bad = parse_sweep_axes({"cluster.gpus+training.global_batch=8+"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().to_string().find("empty part"), std::string::npos) << bad.status().to_string();
  bad = parse_sweep_axes({"cluster.gpus+training.global_batch=8+64", "cluster.gpus=16"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().to_string().find("varied twice"), std::string::npos) << bad.status().to_string();
  // A single key keeps '+' in its values (1e+3 is a number).
  auto one = parse_sweep_axes({"training.global_batch=1e+3,64"});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one.value()[0].values.front(), "1e+3");
}

TEST(Sweep, AutoTakesTheCandidatesTheScenarioAllows) {
  // The quickstart: Llama 3 8B (32 heads, 8 kv heads, 32 layers, seq 8192), 8 GPUs of a node, batch 64.
  auto res = run_sweep("", axes({"parallel.tp=auto", "parallel.pp=auto", "training.micro_batch=auto",
                                 "parallel.cp=auto", "parallel.ep=auto"}), {});
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  ASSERT_EQ(res->axes.size(), 5u);
  EXPECT_EQ(res->axes[0].values, (std::vector<std::string>{"1", "2", "4", "8"}));
  EXPECT_EQ(res->axes[1].values, (std::vector<std::string>{"1", "2", "4", "8"}));
  EXPECT_EQ(res->axes[2].values, (std::vector<std::string>{"1", "2", "4", "8", "16"}));
  EXPECT_EQ(res->axes[3].values, (std::vector<std::string>{"1", "2", "4", "8"}));
  EXPECT_EQ(res->axes[4].values, (std::vector<std::string>{"1"})) << "a dense model has no experts to spread";
  EXPECT_EQ(res->points.size(), 4u * 4 * 5 * 4);
  size_t ok = 0;
  for (const auto& p : res->points) ok += p.ok;
  EXPECT_GT(ok, 0u);
  EXPECT_EQ(res->notes.size(), 6u) << "dp derived, and one line per expansion";
  // 2 kv heads (a --set): tp=auto stops at 2; nodes of 4 GPUs and 12 GPUs: tp 8 would not fit either.
  SweepOptions o;
  o.overrides = {"model.heads=16", "model.kv_heads=2", "cluster.gpus=16", "parallel.dp=16", "training.global_batch=48"};
  res = run_sweep("", axes({"parallel.tp=auto"}), o);
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(res->axes[0].values, (std::vector<std::string>{"1", "2"}));
  o.overrides = {"cluster.gpus=12", "cluster.gpus_per_node=4", "parallel.dp=12", "training.global_batch=48"};
  res = run_sweep("", axes({"parallel.tp=auto"}), o);
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(res->axes[0].values, (std::vector<std::string>{"1", "2", "4"}));
  res = run_sweep("", axes({"training.attention_kernel=auto", "parallel.recompute=auto"}), {});
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(res->axes[0].values, (std::vector<std::string>{"flash", "cudnn", "unfused"}));
  EXPECT_EQ(res->axes[1].values, (std::vector<std::string>{"none", "selective", "full"}));
  for (const auto& p : res->points) EXPECT_TRUE(p.ok) << p.error;
  // framework: every one; the step grows from fused to compiled to eager.
  res = run_sweep("", axes({"training.framework=auto"}), {});
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(res->axes[0].values, (std::vector<std::string>{"fused", "torch_compile", "torch_eager"}));
  ASSERT_EQ(res->points.size(), 3u);
  for (const auto& p : res->points) EXPECT_TRUE(p.ok) << p.error;
  EXPECT_LT(res->points[0].step_s, res->points[1].step_s);
  EXPECT_LT(res->points[1].step_s, res->points[2].step_s);
  // fp8_recipe: every recipe; the delayed and blockwise casts cost the same, current more.
  o.overrides = {"training.precision=fp8"};
  res = run_sweep("", axes({"training.fp8_recipe=auto"}), o);
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(res->axes[0].values, (std::vector<std::string>{"current", "delayed", "blockwise"}));
  for (const auto& p : res->points) EXPECT_TRUE(p.ok) << p.error;
  ASSERT_EQ(res->points.size(), 3u);
  EXPECT_GT(res->points[0].step_s, res->points[1].step_s);
  EXPECT_EQ(res->points[1].step_s, res->points[2].step_s);
  res = run_sweep("", axes({"training.fp8_cache_inputs=auto"}), o);
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(res->axes[0].values, (std::vector<std::string>{"false", "true"}));
  ASSERT_EQ(res->points.size(), 2u);
  EXPECT_TRUE(res->points[0].ok && res->points[1].ok);
  EXPECT_GT(res->points[0].peak_memory_gib, res->points[1].peak_memory_gib) << "fp8 copies take less";
  // tp_overlap: both values (tp 2 with SP).
  o.overrides = {"parallel.tp=2", "parallel.dp=4", "parallel.sequence_parallel=true"};
  res = run_sweep("", axes({"parallel.tp_overlap=auto"}), o);
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(res->axes[0].values, (std::vector<std::string>{"false", "true"}));
  ASSERT_EQ(res->points.size(), 2u);
  EXPECT_TRUE(res->points[0].ok && res->points[1].ok);
  EXPECT_NE(res->points[0].step_s, res->points[1].step_s);
  // zero3_reshard: both values (the quickstart is ZeRO-3); keeping the parameters costs memory.
  o.overrides = {};
  res = run_sweep("", axes({"parallel.zero3_reshard=auto"}), o);
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(res->axes[0].values, (std::vector<std::string>{"false", "true"}));
  ASSERT_EQ(res->points.size(), 2u);
  EXPECT_TRUE(res->points[0].ok && res->points[1].ok);
  EXPECT_GT(res->points[0].peak_memory_gib, res->points[1].peak_memory_gib);
  // recompute_layers: 0 and 1 to one fewer than a chunk's layers (32 layers over pp 4 x vp 2: 4 a chunk).
  o.overrides = {"parallel.recompute=full", "parallel.pp=4", "parallel.vp=2", "parallel.dp=2"};
  res = run_sweep("", axes({"parallel.recompute_layers=auto"}), o);
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(res->axes[0].values, (std::vector<std::string>{"0", "1", "2", "3"}));
  for (const auto& p : res->points) EXPECT_TRUE(p.ok) << p.error;
  // Keys without a rule, and a scenario that does not load, are errors that say so.
  res = run_sweep("", axes({"parallel.vp=auto"}), {});
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().to_string().find("auto works for parallel.tp"), std::string::npos) << res.status().to_string();
  SweepOptions bad;
  bad.overrides = {"cluster.gpus=7"};
  res = run_sweep("", axes({"parallel.tp=auto"}), bad);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().to_string().find("does not load"), std::string::npos) << res.status().to_string();
  EXPECT_NE(res.status().to_string().find("/training/global_batch"), std::string::npos) << res.status().to_string();
}

// A joint auto axis (`trainsim search`) takes exactly the layouts that fit together. The
// quickstart: Llama 3 8B (32 layers, 32 heads, 8 kv heads) on 8 GPUs of a node, global batch 64.
TEST(Sweep, JointAutoTakesExactlyTheLayoutsThatFitTogether) {
  auto res = run_sweep("", axes({"parallel.tp+parallel.pp+training.micro_batch=auto"}), {});
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  ASSERT_EQ(res->axes.size(), 1u);
  // By hand: (tp, pp) with tp*pp | 8 (tp 1,2,4,8; pp 1,2,4,8): 10 pairs; dp = 8/(tp*pp); the
  // micro-batch divides 64/dp, up to 16: 4 choices at dp 8 (1,2,4,8), 5 at dp 4, 2 and 1.
  std::set<std::vector<std::string>> want;
  for (int tp : {1, 2, 4, 8})
    for (int pp : {1, 2, 4, 8}) {
      if (8 % (tp * pp) != 0) continue;
      const int dp = 8 / (tp * pp);
      for (int mb = 1; mb <= 16; ++mb)
        if (64 % (dp * mb) == 0) want.insert({std::to_string(tp), std::to_string(pp), std::to_string(mb)});
    }
  EXPECT_EQ(want.size(), 49u);
  std::set<std::vector<std::string>> got(res->axes[0].parts.begin(), res->axes[0].parts.end());
  EXPECT_EQ(got.size(), res->axes[0].parts.size()) << "no layout twice";
  EXPECT_EQ(got, want);
  ASSERT_EQ(res->points.size(), 49u);
  for (const auto& p : res->points) {
    ASSERT_TRUE(p.ok) << p.error;
    const int tp = std::stoi(p.set[0].substr(12)), pp = std::stoi(p.set[1].substr(12));
    EXPECT_EQ(p.dp * tp * pp, 8) << p.values[0];
  }
  // vp ties the schedule: interleaved exactly where vp > 1, with pp >= 2, 32 layers divisible by
  // pp*vp (vp up to 16). By hand: pp 1: vp 1; pp 2: 1,2,4,8,16; pp 4: 1,2,4,8; pp 8: 1,2,4 over
  // the (tp, pp) pairs: 13 at tp 1, 10 at tp 2, 6 at tp 4, 1 at tp 8.
  res = run_sweep("", axes({"parallel.tp+parallel.pp+parallel.vp=auto"}), {});
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_EQ(res->axes[0].keys,
            (std::vector<std::string>{"parallel.tp", "parallel.pp", "parallel.vp", "parallel.schedule"}));
  ASSERT_EQ(res->points.size(), 30u);
  for (const auto& t : res->axes[0].parts) {
    const int pp = std::stoi(t[1]), vp = std::stoi(t[2]);
    EXPECT_EQ(t[3], vp > 1 ? "interleaved" : "1f1b") << t[0] << " " << t[1] << " " << t[2];
    if (vp > 1) {
      EXPECT_EQ(32 % (pp * vp), 0);
    }
  }
  for (const auto& p : res->points) EXPECT_TRUE(p.ok) << p.error;
  // sequence_parallel only with tp > 1; zero > 0 only with dp > 1 (tp 8: dp 1 keeps zero 0).
  res = run_sweep("", axes({"parallel.tp+parallel.sequence_parallel+parallel.zero=auto"}), {});
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  // tp 1: sp false x zero 0-3 (dp 8); tp 2, 4: sp both x zero 0-3; tp 8: sp both x zero 0.
  EXPECT_EQ(res->points.size(), 4u + 8 + 8 + 2);
  for (const auto& t : res->axes[0].parts) {
    if (t[1] == "true") {
      EXPECT_NE(t[0], "1");
    }
    if (t[0] == "8") {
      EXPECT_EQ(t[2], "0");
    }
  }
  // What cannot be searched jointly, and a schedule that fixes vp.
  res = run_sweep("", axes({"parallel.tp+parallel.dp=auto"}), {});
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().to_string().find("\"parallel.dp\" cannot be searched jointly"), std::string::npos)
      << res.status().to_string();
  SweepOptions o;
  o.overrides = {"parallel.pp=2", "parallel.dp=4", "parallel.schedule=dualpipev"};
  res = run_sweep("", axes({"parallel.pp+parallel.vp=auto"}), o);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().to_string().find("runs two chunks per pipeline rank"), std::string::npos)
      << res.status().to_string();
  // A layout nothing fits: 7 GPUs (the global batch 64 takes no dp of 7).
  o.overrides = {"cluster.gpus=7", "training.global_batch=49", "parallel.dp=7"};
  res = run_sweep("", axes({"parallel.tp+parallel.pp=auto"}), o);
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  for (const auto& t : res->axes[0].parts) EXPECT_EQ(7 % (std::stoi(t[0]) * std::stoi(t[1])), 0);
}

// Threads change nothing: the same points, figures and bytes, and on_point sees the points in
// product order.
TEST(Sweep, JobsGiveTheSameBytesAndOnPointInOrder) {
  const auto ax = axes({"parallel.tp+parallel.pp+training.micro_batch=auto"});
  std::vector<size_t> seen1, seen3;
  SweepOptions o1, o3;
  o1.on_point = [&](const std::string&, size_t i, size_t, const SweepPoint&) {
    seen1.push_back(i);
    return Status();
  };
  o3.jobs = 3;
  o3.on_point = [&](const std::string&, size_t i, size_t n, const SweepPoint& p) {
    EXPECT_TRUE(p.computed);
    EXPECT_EQ(n, 49u);
    seen3.push_back(i);
    return Status();
  };
  auto r1 = run_sweep("", ax, o1);
  auto r3 = run_sweep("", ax, o3);
  ASSERT_TRUE(r1.ok() && r3.ok());
  EXPECT_EQ(sweep_json(r1.value()).dump(), sweep_json(r3.value()).dump());
  EXPECT_EQ(format_sweep(r1.value()), format_sweep(r3.value()));
  ASSERT_EQ(seen1.size(), 49u);
  EXPECT_EQ(seen1, seen3);
  EXPECT_TRUE(std::is_sorted(seen3.begin(), seen3.end()));
  // An on_point error stops the sweep with it, threads or not.
  o3.on_point = [&](const std::string&, size_t i, size_t, const SweepPoint&) {
    return i >= 5 ? Status::error("disk full") : Status();
  };
  auto bad = run_sweep("", ax, o3);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().to_string().find("disk full"), std::string::npos);
}

// The point with the scenario's own values is the strategy as given: the report says where it
// ranks and how far the best point is.
TEST(Sweep, GivenIsTheScenariosOwnStrategy) {
  auto res = run_sweep("", axes({"parallel.tp+parallel.pp+training.micro_batch=auto"}), {});
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  ASSERT_LT(res->given, res->points.size());
  const SweepPoint& g = res->points[res->given];
  EXPECT_EQ(g.set, (std::vector<std::string>{"parallel.tp=1", "parallel.pp=1", "training.micro_batch=1"}));
  const auto order = sweep_ranking(res.value());
  const size_t place = std::find(order.begin(), order.end(), res->given) - order.begin();
  const std::string text = format_sweep(res.value());
  EXPECT_NE(text.find("as given (parallel.tp=1 parallel.pp=1 training.micro_batch=1): #" + std::to_string(place + 1) +
                      " of 49, step "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("(as given)\n"), std::string::npos) << text;
  EXPECT_EQ(sweep_json(res.value())["given"], res->given);
  // The best point that fits is no slower than the given one.
  size_t best = res->points.size();
  for (size_t i : order)
    if (res->points[i].ok && !res->points[i].oom) {
      best = i;
      break;
    }
  ASSERT_LT(best, res->points.size());
  EXPECT_LE(res->points[best].step_s, g.step_s);
  EXPECT_EQ(best, res->given) << "the quickstart's own layout is the best of tp x pp x micro-batch";
  EXPECT_NE(text.find(": the best point\n"), std::string::npos) << text;
  // With recompute searched too, the best drops the quickstart's selective recomputation: the
  // line after says where the difference is, as given -> best.
  auto rec = run_sweep("", axes({"parallel.tp+parallel.recompute=auto"}), {});
  ASSERT_TRUE(rec.ok());
  ASSERT_LT(rec->given, rec->points.size());
  const auto rorder = sweep_ranking(rec.value());
  best = rorder[0];
  ASSERT_TRUE(sweep_fits(rec->points[best], 1.0));
  if (best != rec->given) {
    const std::string rtext = format_sweep(rec.value());
    const SweepPoint& rg = rec->points[rec->given];
    const SweepPoint& b = rec->points[best];
    auto t = [](double x) { return format_time(Time::from_seconds(x)); };
    EXPECT_NE(rtext.find("  as given -> best: compute " + t(rg.compute_s) + " -> " + t(b.compute_s) + ", exposed comm " +
                        t(rg.exposed_comm_s) + " -> " + t(b.exposed_comm_s) + ", bubble " + t(rg.bubble_s) + " -> " +
                        t(b.bubble_s) + ", peak memory " + reports::strf("%.2f -> %.2f GiB\n", rg.peak_memory_gib,
                                                                          b.peak_memory_gib)),
              std::string::npos)
        << rtext;
  } else {
    ADD_FAILURE() << "selective recomputation came out best (the test expects a difference)";
  }
  // The scenario's values are not among the points: no given point, no line.
  res = run_sweep("", axes({"parallel.tp=2,4"}), {});
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->given, static_cast<size_t>(-1));
  EXPECT_EQ(format_sweep(res.value()).find("as given"), std::string::npos);
  EXPECT_TRUE(sweep_json(res.value())["given"].is_null());
}

// --memory-limit: a point over the share of its GPU's memory ranks with the OOM points, says
// so, and is "over_limit" in the JSON and CSV; the figures are the same.
TEST(Sweep, MemoryLimitRanksBigPointsWithTheOomOnes) {
  const auto ax = axes({"parallel.tp+parallel.pp+training.micro_batch=auto"});
  auto all = run_sweep("", ax, {});
  ASSERT_TRUE(all.ok());
  // A limit between the smallest and the largest peak that fits.
  double lo = 1e9, hi = 0;
  for (const auto& p : all->points)
    if (p.ok && !p.oom) lo = std::min(lo, p.peak_memory_gib), hi = std::max(hi, p.peak_memory_gib);
  ASSERT_LT(lo, hi);
  SweepOptions o;
  o.memory_limit = (lo + hi) / 2 / all->points[0].capacity_gib;
  auto lim = run_sweep("", ax, o);
  ASSERT_TRUE(lim.ok());
  EXPECT_EQ(lim->memory_limit, o.memory_limit);
  const auto order = sweep_ranking(lim.value());
  const auto j = sweep_json(lim.value());
  bool behind = false;   // once a point does not fit, none after it does
  size_t over = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const SweepPoint& p = lim->points[order[k]];
    EXPECT_EQ(p.fingerprint, all->points[order[k]].fingerprint) << "the figures do not change";
    const bool fits = p.ok && !p.oom && p.peak_memory_gib <= (lo + hi) / 2 + 1e-9;
    EXPECT_EQ(sweep_fits(p, o.memory_limit), fits);
    if (!fits) {
      behind = true;
    } else {
      EXPECT_FALSE(behind) << k;
    }
    if (p.ok && !p.oom && !fits) {
      ++over;
      EXPECT_EQ(j["points"][order[k]]["status"], "over_limit");
    }
  }
  EXPECT_GT(over, 0u);
  const std::string text = format_sweep(lim.value());
  EXPECT_NE(text.find("note: a point fits when its peak memory is at most "), std::string::npos) << text;
  EXPECT_NE(text.find("memory limit on rank "), std::string::npos) << text;
  EXPECT_NE(sweep_csv(lim.value()).find(",over_limit,"), std::string::npos);
  o.memory_limit = 0;
  EXPECT_FALSE(run_sweep("", ax, o).ok());
  o.memory_limit = 1.5;
  EXPECT_FALSE(run_sweep("", ax, o).ok());
}

// The landscape of a search: per (tp, pp), the best point that fits, against a brute-force
// pass over every point; pairs whose points all fail to fit, and pairs without points.
TEST(Sweep, LayoutGridIsTheBestFittingPointOfEachPair) {
  for (double limit : {1.0, 0.5}) {   // at half the memory, some pairs fit with no micro-batch
    SCOPED_TRACE(limit);
    SweepOptions o;
    o.memory_limit = limit;
    auto res = run_sweep("", axes({"parallel.tp+parallel.pp+training.micro_batch=auto"}), o);
    ASSERT_TRUE(res.ok());
    const LayoutGrid g = layout_grid(res.value());
    size_t several = 0;   // pairs with more than one point that fits (the choice matters)
    EXPECT_EQ(g.tp, (std::vector<int>{1, 2, 4, 8}));
    EXPECT_EQ(g.pp, (std::vector<int>{1, 2, 4, 8}));
    size_t fit = 0, none = 0, empty = 0;
    for (size_t a = 0; a < 4; ++a)
      for (size_t b = 0; b < 4; ++b) {
        // Brute force: the point of this pair that fits with the least step (ties: product order).
        size_t want = LayoutGrid::kNoPoint, fits = 0;
        bool any = false;
        for (size_t i = 0; i < res->points.size(); ++i) {
          const SweepPoint& p = res->points[i];
          if (p.set[0] != "parallel.tp=" + std::to_string(g.tp[a]) || p.set[1] != "parallel.pp=" + std::to_string(g.pp[b]))
            continue;
          any = true;
          fits += sweep_fits(p, o.memory_limit);
          if (sweep_fits(p, o.memory_limit) && (want == LayoutGrid::kNoPoint || p.step_s < res->points[want].step_s))
            want = i;
        }
        several += fits > 1;
        EXPECT_EQ(g.best[a][b], want) << g.tp[a] << " " << g.pp[b];
        EXPECT_EQ(g.tried[a][b], any) << g.tp[a] << " " << g.pp[b];
        fit += want != LayoutGrid::kNoPoint;
        none += any && want == LayoutGrid::kNoPoint;
        empty += !any;
      }
    EXPECT_EQ(fit + none + empty, 16u);
    EXPECT_EQ(empty, 6u) << "tp*pp over 8 GPUs";
    EXPECT_GT(fit, 0u);
    if (limit == 1.0) {
      EXPECT_GT(several, 3u);
      continue;
    }
    EXPECT_GT(none, 0u) << "the half-memory limit leaves some pairs without a point that fits";
    const std::string text = format_sweep(res.value());
    EXPECT_NE(text.find("best per tp x pp"), std::string::npos) << text;
    EXPECT_NE(text.find("too big"), std::string::npos) << text;
    const std::string html = sweep_html(res.value(), "v");
    EXPECT_NE(html.find("<table id=\"sweep-grid\">"), std::string::npos);
    EXPECT_NE(html.find("does not fit</td>"), std::string::npos);
  }
  // No tp or no pp among the keys: no grid.
  auto res = run_sweep("", axes({"parallel.tp=1,2"}), {});
  ASSERT_TRUE(res.ok());
  EXPECT_TRUE(layout_grid(res.value()).tp.empty());
  EXPECT_EQ(format_sweep(res.value()).find("best per tp x pp"), std::string::npos);
}

TEST(Sweep, RankByThroughputOrdersByTheChosenFigure) {
  // Weak scaling x tp: the step barely moves with the GPU count, the job's tokens/s does.
  const auto ax = axes({"cluster.gpus+training.global_batch=8+64,16+128,32+256", "parallel.tp=1,2"});
  std::vector<SweepRank> ranks = {SweepRank::kStep, SweepRank::kTokensPerGpu, SweepRank::kTokens};
  for (SweepRank rk : ranks) {
    SweepOptions o;
    o.rank_by = rk;
    auto res = run_sweep("", ax, o);
    ASSERT_TRUE(res.ok()) << res.status().to_string();
    const auto order = sweep_ranking(res.value());
    for (size_t k = 1; k < order.size(); ++k) {
      const SweepPoint &a = res->points[order[k - 1]], &b = res->points[order[k]];
      if (!a.ok || !b.ok || a.oom != b.oom) continue;
      // The chosen figure, signed so that the earlier row's is the larger or equal one.
      const double fa = rk == SweepRank::kStep ? -a.step_s
                        : rk == SweepRank::kTokens ? a.tokens_per_s : a.tokens_per_s_per_gpu;
      const double fb = rk == SweepRank::kStep ? -b.step_s
                        : rk == SweepRank::kTokens ? b.tokens_per_s : b.tokens_per_s_per_gpu;
      EXPECT_GE(fa, fb) << to_string(rk) << " rows " << k - 1 << ", " << k;
    }
    for (const auto& p : res->points) {
      const int gpus = std::stoi(p.values[0].substr(0, p.values[0].find('+')));
      ASSERT_TRUE(p.ok) << p.error;
      EXPECT_NEAR(p.tokens_per_s, p.tokens_per_s_per_gpu * gpus, 1e-9 * p.tokens_per_s) << "per GPU x GPUs";
    }
    const std::string text = format_sweep(res.value());
    const auto j = sweep_json(res.value());
    EXPECT_EQ(j["rank_by"], to_string(rk));
    if (rk == SweepRank::kTokens) {
      EXPECT_EQ(res->points[order[0]].values[0], "32+256") << "the most GPUs give the most tokens/s";
      EXPECT_NE(text.find("most tokens/s that fits: cluster.gpus=32"), std::string::npos) << text;
      EXPECT_NE(text.find(" tokens/s  tokens/s/GPU"), std::string::npos) << "the job's tokens/s column: " << text;
    }
    if (rk == SweepRank::kTokensPerGpu) {
      EXPECT_NE(text.find("most tokens/s per GPU that fits"), std::string::npos) << text;
    }
  }
  SweepRank r;
  EXPECT_TRUE(parse_sweep_rank("tokens-per-gpu", &r) && r == SweepRank::kTokensPerGpu);
  EXPECT_FALSE(parse_sweep_rank("speed", &r));
  for (SweepRank k : {SweepRank::kStep, SweepRank::kTokensPerGpu, SweepRank::kTokens}) {
    SweepRank back = k == SweepRank::kStep ? SweepRank::kTokens : SweepRank::kStep;
    EXPECT_TRUE(parse_sweep_rank(to_string(k), &back) && back == k) << to_string(k) << " reads back";
  }
  EXPECT_TRUE(parse_sweep_rank("Tokens", &r) && r == SweepRank::kTokens) << "names read in any case, as the spec's";
}

TEST(Sweep, BadAxesAndTooManyPointsAreErrors) {
  struct Case {
    std::vector<std::string> in;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{}, "nothing to vary"},
      {{"parallel.tp"}, "expected KEY=V1,V2"},
      {{"=1,2"}, "expected KEY=V1,V2"},
      {{"parallel.tp=1,,2"}, "an empty value"},
      {{"parallel.tp=1,2", "parallel.tp=4"}, "varied twice"},
      {{"parallel.tpp=1,2"}, "did you mean \"tp\""},
      {{"bogus.tp=1"}, "unknown key"},
  };
  for (const auto& c : cases) {
    auto a = parse_sweep_axes(c.in);
    ASSERT_FALSE(a.ok()) << c.want;
    EXPECT_NE(a.status().to_string().find(c.want), std::string::npos) << a.status().to_string();
    EXPECT_NE(a.status().to_string().find("--vary"), std::string::npos) << a.status().to_string();
  }
  std::string many = "training.global_batch=";
  for (int i = 0; i < 129; ++i) many += (i ? "," : "") + std::to_string(64 * (i + 1));
  std::string many2 = "training.seq_len=";
  for (int i = 0; i < 128; ++i) many2 += (i ? "," : "") + std::to_string(1024 * (i + 1));
  auto res = run_sweep("", axes({many, many2}), {});
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().to_string().find("at most 16384 points"), std::string::npos) << res.status().to_string();
  SweepOptions bad;
  bad.overrides = {"parallel.tq=2"};
  res = run_sweep("", axes({"parallel.tp=1,2"}), bad);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().to_string().find("--set"), std::string::npos);
  res = run_sweep("/nonexistent/x.json", axes({"parallel.tp=1,2"}), {});
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().to_string().find("/nonexistent/x.json"), std::string::npos);
}

// Shards split the points: each point is computed by exactly one of N shards, with the very
// figures of the unsharded run, each shard gets points/N of them (give or take one), and no
// shard holds one value of an axis only; every shard has the unsharded run's key, and another
// --set, mode or axis value gives another key.
TEST(Sweep, ShardsPartitionThePointsAndShareTheKey) {
  const auto ax = axes({"parallel.tp=1,2,4,8", "parallel.zero=1,3", "parallel.recompute=none,full"});
  auto all = run_sweep("", ax, {});
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  ASSERT_EQ(all->points.size(), 16u);
  EXPECT_EQ(all->key.size(), 16u);
  std::vector<int> seen(16, 0);
  for (int shards : {2, 3, 5}) {
    std::fill(seen.begin(), seen.end(), 0);
    const std::vector<int> of = sweep_shard_of(16, shards);
    ASSERT_EQ(of.size(), 16u);
    for (int i = 0; i < shards; ++i) {
      SweepOptions so;
      so.shard = i;
      so.shards = shards;
      auto part = run_sweep("", ax, so);
      ASSERT_TRUE(part.ok()) << part.status().to_string();
      EXPECT_EQ(part->key, all->key) << "every shard of one sweep has its key";
      ASSERT_EQ(part->points.size(), 16u);
      for (size_t n = 0; n < 16; ++n) {
        const SweepPoint& p = part->points[n];
        EXPECT_EQ(p.values, all->points[n].values);
        EXPECT_EQ(p.computed, of[n] == i) << n;
        if (!p.computed) continue;
        ++seen[n];
        EXPECT_EQ(p.step_s, all->points[n].step_s);
        EXPECT_EQ(p.fingerprint, all->points[n].fingerprint);
        EXPECT_EQ(p.peak_memory_gib, all->points[n].peak_memory_gib);
      }
      // The ranking holds this shard's points only.
      for (size_t k : sweep_ranking(part.value())) EXPECT_TRUE(part->points[k].computed);
      size_t mine = 0;
      std::set<std::string> recompute;   // the last axis's values among this shard's points
      for (const auto& p : part->points)
        if (p.computed) {
          ++mine;
          recompute.insert(p.values[2]);
        }
      EXPECT_GE(mine, 16u / shards);
      EXPECT_LE(mine, (16u + shards - 1) / shards);
      if (shards == 2) {
        EXPECT_EQ(recompute.size(), 2u) << "a shard is not one value of the last axis (dealt in product order, "
                                           "it would be)";
      }
      EXPECT_NE(format_sweep(part.value()).find("shard " + std::to_string(i) + "/" + std::to_string(shards)),
                std::string::npos);
    }
    for (size_t n = 0; n < 16; ++n) EXPECT_EQ(seen[n], 1) << "point " << n << " of " << shards << " shards";
  }
  SweepOptions other;
  other.overrides = {"training.micro_batch=2"};
  EXPECT_NE(run_sweep("", ax, other)->key, all->key);
  SweepOptions full;
  full.fast = false;
  full.compute = false;
  EXPECT_NE(run_sweep("", ax, full)->key, all->key);
  EXPECT_NE(run_sweep("", axes({"parallel.tp=1,2,4", "parallel.zero=1,3", "parallel.recompute=none,full"}), {})->key,
            all->key);
  SweepOptions ranked;   // ranking is presentation: the same points, the same key
  ranked.rank_by = SweepRank::kTokens;
  ranked.compute = false;
  EXPECT_EQ(run_sweep("", ax, ranked)->key, all->key);
  for (auto [i, n] : {std::pair{2, 2}, {-1, 2}, {0, 0}}) {
    SweepOptions bad;
    bad.shard = i;
    bad.shards = n;
    auto r = run_sweep("", ax, bad);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().to_string().find("--shard"), std::string::npos) << r.status().to_string();
  }
}

// A point's record reads back to the same point, bit for bit (non-finite figures included); a
// record of another point or with a field of the wrong type is refused, naming the field.
TEST(Sweep, PointRecordsRoundTripExactly) {
  auto res = run_sweep("", axes({"parallel.tp=1,3"}), {});
  ASSERT_TRUE(res.ok());
  ASSERT_TRUE(res->points[0].ok);
  ASSERT_FALSE(res->points[1].ok) << "tp 3 does not divide the heads";
  for (SweepPoint p : res->points) {
    SweepPoint q;
    q.values = p.values;
    q.set = p.set;
    ASSERT_TRUE(fill_sweep_point(nlohmann::json::parse(sweep_point_record(p).dump()), "test", &q).ok());
    EXPECT_TRUE(q.computed);
    EXPECT_EQ(sweep_point_record(q).dump(), sweep_point_record(p).dump());
    EXPECT_EQ(q.step_s, p.step_s);
    EXPECT_EQ(q.mfu, p.mfu);
    EXPECT_EQ(q.error, p.error);
    EXPECT_EQ(q.fingerprint, p.fingerprint);
  }
  // A point with a time to train (training.train_tokens) keeps it; one without has no such field.
  EXPECT_FALSE(sweep_point_record(res->points[0]).contains("train_s"));
  SweepPoint trained = res->points[0];
  trained.train_s = 12345.678;
  SweepPoint tback;
  tback.set = trained.set;
  ASSERT_TRUE(fill_sweep_point(nlohmann::json::parse(sweep_point_record(trained).dump()), "test", &tback).ok());
  EXPECT_EQ(tback.train_s, 12345.678);
  // The same for the gpu_speed section's cost, 0 included (a section with cv 0 costs nothing).
  EXPECT_FALSE(sweep_point_record(res->points[0]).contains("speed_cost_s"));
  for (double cost : {0.0, 0.25}) {
    SweepPoint sped = res->points[0];
    sped.speed = true;
    sped.speed_cost_s = cost;
    SweepPoint sback;
    sback.set = sped.set;
    ASSERT_TRUE(fill_sweep_point(nlohmann::json::parse(sweep_point_record(sped).dump()), "test", &sback).ok());
    EXPECT_TRUE(sback.speed);
    EXPECT_EQ(sback.speed_cost_s, cost);
  }
  SweepPoint odd = res->points[0];
  odd.mfu = std::nan("");
  odd.hfu = HUGE_VAL;
  odd.bubble_s = -HUGE_VAL;
  odd.step_s = 0.1 + 0.2;   // not a short decimal: still the same bits
  SweepPoint back;
  back.set = odd.set;
  ASSERT_TRUE(fill_sweep_point(nlohmann::json::parse(sweep_point_record(odd).dump()), "test", &back).ok());
  EXPECT_TRUE(std::isnan(back.mfu));
  EXPECT_EQ(back.hfu, HUGE_VAL);
  EXPECT_EQ(back.bubble_s, -HUGE_VAL);
  EXPECT_EQ(back.step_s, 0.1 + 0.2);

  SweepPoint other;
  other.set = res->points[1].set;
  Status st = fill_sweep_point(sweep_point_record(res->points[0]), "store.db", &other);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.to_string().find("store.db"), std::string::npos) << st.to_string();
  EXPECT_NE(st.to_string().find("a record of another point"), std::string::npos) << st.to_string();
  EXPECT_FALSE(other.computed);
  nlohmann::json broken = sweep_point_record(res->points[0]);
  broken["step_s"] = "fast";
  broken.erase("oom");
  broken["dp"] = -1;
  SweepPoint target;
  target.set = res->points[0].set;
  st = fill_sweep_point(broken, "store.db", &target);
  ASSERT_FALSE(st.ok());
  for (const char* want : {"/step_s", "/oom", "/dp", "\"fast\""})
    EXPECT_NE(st.to_string().find(want), std::string::npos) << want << ": " << st.to_string();
  EXPECT_FALSE(target.computed) << "a refused record leaves the point as it was";
}

// Three shards, each recording into a store of its own (or all into one), give back the whole
// sweep: the table and the JSON of the points filled from the stores are byte for byte those
// of the unsharded run. A missing shard is an error that lists the missing points.
TEST(Sweep, ShardsStoresGiveBackTheWholeSweepByteForByte) {
  const auto ax = axes({"parallel.tp=1,2,4,3", "parallel.zero=1,3"});   // tp 3: refused points too
  auto all = run_sweep("", ax, {});
  ASSERT_TRUE(all.ok());
  const std::string want_text = format_sweep(all.value()), want_json = sweep_json(all.value()).dump(2);
  const auto dir = std::filesystem::temp_directory_path() / ("trainsim_sweep_store_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::vector<std::unique_ptr<ResultsStore>> stores;
  auto shared = ResultsStore::open((dir / "all.db").string(), true);
  ASSERT_TRUE(shared.ok()) << shared.status().to_string();
  for (int i = 0; i < 3; ++i) {
    SweepOptions so;
    so.shard = i;
    so.shards = 3;
    auto part = run_sweep("", ax, so);
    ASSERT_TRUE(part.ok());
    auto st = ResultsStore::open((dir / ("shard" + std::to_string(i) + ".db")).string(), true);
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    ASSERT_TRUE(store_sweep(part.value(), *st.value(), "v1", "host").ok());
    ASSERT_TRUE(store_sweep(part.value(), *shared.value(), "v1", "host").ok());
    stores.push_back(std::move(st).value());
  }
  SweepOptions lay;
  lay.compute = false;
  auto merged = run_sweep("", ax, lay);
  ASSERT_TRUE(merged.ok());
  for (const auto& p : merged->points) EXPECT_FALSE(p.computed);
  ASSERT_TRUE(fill_sweep_from_stores(&merged.value(), {stores[0].get(), stores[1].get(), stores[2].get()}, "v1").ok());
  EXPECT_EQ(format_sweep(merged.value()), want_text);
  EXPECT_EQ(sweep_json(merged.value()).dump(2), want_json);
  auto one = run_sweep("", ax, lay);
  ASSERT_TRUE(fill_sweep_from_stores(&one.value(), {shared.value().get()}, "v1").ok());
  EXPECT_EQ(format_sweep(one.value()), want_text) << "one store that every shard wrote";

  // Points computed by another version are said so.
  auto later = run_sweep("", ax, lay);
  ASSERT_TRUE(fill_sweep_from_stores(&later.value(), {shared.value().get()}, "v2").ok());
  EXPECT_NE(format_sweep(later.value()).find("note: points computed by trainsim v1 (this binary: v2)"), std::string::npos);

  // Shard 1 missing: its points are listed.
  auto partial = run_sweep("", ax, lay);
  Status st = fill_sweep_from_stores(&partial.value(), {stores[0].get(), stores[2].get()}, "v1");
  ASSERT_FALSE(st.ok());
  std::string missing;
  const std::vector<int> of = sweep_shard_of(8, 3);
  for (size_t n = 0; n < 8; ++n)
    if (of[n] == 1) missing += (missing.empty() ? "" : ", ") + std::to_string(n);
  EXPECT_NE(st.to_string().find("5 of 8 points"), std::string::npos) << st.to_string();
  EXPECT_NE(st.to_string().find("missing: " + missing + "."), std::string::npos) << st.to_string();
  // Another sweep (a --set the shards did not have) finds none of its points.
  SweepOptions other = lay;
  other.overrides = {"training.micro_batch=2"};
  auto elsewhere = run_sweep("", ax, other);
  st = fill_sweep_from_stores(&elsewhere.value(), {shared.value().get()}, "v1");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.to_string().find("No store holds a point of it"), std::string::npos) << st.to_string();
  stores.clear();
  shared = Status::error("closed");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace trainsim

namespace trainsim {
namespace {

// Capacity planning: each row is exactly the search of the scenario with the row's values set
// (and dp derived when the GPU count changes), rows in product order.
TEST(Sweep, SearchAcrossIsOneSearchPerRow) {
  SweepOptions so;
  const std::vector<SweepAxis> search = axes({"parallel.tp+parallel.pp+training.micro_batch=auto"});
  const std::vector<SweepAxis> across = axes({"cluster.gpus=8,16", "training.global_batch=64,128"});
  auto a = run_search_across("", search, across, so);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_EQ(a->rows.size(), 4u);
  const std::vector<std::vector<std::string>> order = {{"8", "64"}, {"8", "128"}, {"16", "64"}, {"16", "128"}};
  ASSERT_EQ(a->notes.size(), 1u);
  EXPECT_NE(a->notes[0].find("each row derives dp"), std::string::npos);
  for (size_t r = 0; r < 4; ++r) {
    const auto& row = a->rows[r];
    ASSERT_TRUE(row.ok) << row.error;
    EXPECT_EQ(row.values, order[r]);
    SweepOptions o = so;
    o.overrides = {"parallel.dp=null", "cluster.gpus=" + order[r][0], "training.global_batch=" + order[r][1]};
    auto alone = run_sweep("", search, o);
    ASSERT_TRUE(alone.ok()) << alone.status().to_string();
    EXPECT_EQ(sweep_json(row.result).dump(), sweep_json(alone.value()).dump()) << r;
  }
  // The first row is the quickstart's own search: its 49 layouts (JointAutoTakesExactly...).
  EXPECT_EQ(a->rows[0].result.points.size(), 49u);
  // With 16 GPUs, tp*pp may be 16 as well: more layouts.
  EXPECT_GT(a->rows[2].result.points.size(), 49u);

  // The report: the best row is the one whose best layout has the shortest step, found by hand.
  size_t want = SIZE_MAX;
  double best_step = 0;
  for (size_t r = 0; r < 4; ++r) {
    const SweepResult& res = a->rows[r].result;
    for (size_t i : sweep_ranking(res))
      if (sweep_fits(res.points[i], res.memory_limit)) {
        if (want == SIZE_MAX || res.points[i].step_s < best_step) want = r, best_step = res.points[i].step_s;
        break;
      }
  }
  const nlohmann::ordered_json j = search_across_json(a.value());
  ASSERT_FALSE(j["best_row"].is_null());
  EXPECT_EQ(j["best_row"].get<size_t>(), want);
  EXPECT_EQ(j["rows"][want]["best"]["step_s"].get<double>(), best_step);
  EXPECT_EQ(j["rows"][0]["layouts"], 49);
  EXPECT_EQ(j["rows"][2]["values"]["cluster.gpus"], "16");
  EXPECT_EQ(j["rows"][0]["best"]["gpus"], 8);
  const std::string text = format_search_across(a.value());
  EXPECT_NE(text.find("trainsim search across cluster.gpus (2) x training.global_batch (2)"), std::string::npos) << text;
  EXPECT_NE(text.find("* best row by step: cluster.gpus=" + order[want][0] + " training.global_batch=" + order[want][1]),
            std::string::npos)
      << text;

  // A row whose search cannot run keeps its error; the others go on.
  auto bad = run_search_across("", search, axes({"cluster.gpu=H100-SXM-80GB,NOPE"}), so);
  ASSERT_TRUE(bad.ok()) << bad.status().to_string();
  ASSERT_EQ(bad->rows.size(), 2u);
  EXPECT_TRUE(bad->rows[0].ok);
  EXPECT_FALSE(bad->rows[1].ok);
  EXPECT_NE(format_search_across(bad.value()).find("cluster.gpu=NOPE: search refused:"), std::string::npos);
  // Errors of the whole: a key the search varies, auto, too many rows.
  EXPECT_FALSE(run_search_across("", search, axes({"parallel.tp=1,2"}), so).ok());
  EXPECT_FALSE(run_search_across("", search, axes({"cluster.gpus=auto"}), so).ok());
  auto many = run_search_across("", search, axes({"cluster.gpus=8,16,24,32,40,48,56,64,72", "training.global_batch=64,128,192,256,320,384,448,512"}), so);
  ASSERT_FALSE(many.ok());
  EXPECT_NE(many.status().to_string().find("more than 64 combinations"), std::string::npos) << many.status().to_string();
}

}  // namespace
}  // namespace trainsim
