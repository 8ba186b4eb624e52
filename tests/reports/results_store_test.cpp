// The verify results store (reports/results_store.h): records round-trip, the history table
// shows the error per version, and a writer killed mid-run (SIGKILL) leaves a store that opens
// with every record committed before the kill and nothing half-written; a schema-1 store is
// upgraded to schema 2 (record kinds) in place, and any store gets the sweep points' table.
#include "reports/results_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace trainsim {
namespace {

std::string temp_path(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("trainsim_results_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove(p);
  std::filesystem::remove(p.string() + "-journal");
  return p.string();
}

VerifyRecord record(const std::string& version, double err, int i = 0) {
  VerifyRecord r;
  r.scenario = "verify_small";
  r.scenario_hash = "d8704271940c2aed";
  r.plan_hash = "f16c5acfc64aaf8b";
  r.version = version;
  r.machine = "test";
  r.device = "host-cpu test";
  r.executor = "host";
  r.calibration = "measured on the fly";
  r.ranks = 2;
  r.measured_s = 0.3;
  r.predicted_s = 0.3 * (1 + err);
  r.step_error = err;
  r.tolerance = 0.25;
  r.passed = std::abs(err) <= 0.25;
  // A large per-class document, so that a kill lands inside a write often.
  nlohmann::json cls = nlohmann::json::array();
  for (int k = 0; k < 2000; ++k) cls.push_back({{"what", "gemm"}, {"i", i}, {"k", k}, {"error", err}});
  r.classes_json = cls.dump();
  return r;
}

TEST(ResultsStore, RoundTripAndHistoryPerVersion) {
  const std::string path = temp_path("roundtrip");
  auto s = ResultsStore::open(path, true);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_TRUE(s.value()->add(record("0.1.0+gaaaa", -0.10)).ok());
  ASSERT_TRUE(s.value()->add(record("0.1.0+gaaaa", -0.06)).ok());
  ASSERT_TRUE(s.value()->add(record("0.1.0+gbbbb", 0.02)).ok());
  auto recs = s.value()->records("");
  ASSERT_TRUE(recs.ok());
  ASSERT_EQ(recs->size(), 3u);
  EXPECT_EQ(recs->at(2).version, "0.1.0+gbbbb");
  EXPECT_DOUBLE_EQ(recs->at(0).step_error, -0.10);
  EXPECT_FALSE(recs->at(0).time_utc.empty());
  EXPECT_TRUE(s.value()->records("other")->empty());
  const std::string h = format_history(recs.value());
  // Version a: mean -8.0%; version b: +2.0%, a change of +10.0 points.
  EXPECT_NE(h.find("-8.0%"), std::string::npos) << h;
  EXPECT_NE(h.find("+10.0 pt"), std::string::npos) << h;
  std::filesystem::remove(path);
}

TEST(ResultsStore, MissingStoreIsAClearError) {
  auto s = ResultsStore::open(temp_path("missing"), false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().to_string().find("trainsim verify"), std::string::npos) << s.status().to_string();
}

TEST(ResultsStore, SurvivesAWriterKilledMidRun) {
  const std::string path = temp_path("killed");
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {   // writer: 5 records, tell the parent, then write until killed
    close(ready[0]);
    auto s = ResultsStore::open(path, true);
    if (!s.ok()) _exit(2);
    for (int i = 0; i < 5; ++i)
      if (!s.value()->add(record("v1", 0.01 * i, i)).ok()) _exit(3);
    if (write(ready[1], "x", 1) != 1) _exit(4);
    for (int i = 5;; ++i) s.value()->add(record("v2", 0.001 * i, i));
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  usleep(30000);   // let it be in the middle of later writes
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  auto s = ResultsStore::open(path, false);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  auto recs = s.value()->records("");
  ASSERT_TRUE(recs.ok()) << recs.status().to_string();
  ASSERT_GE(recs->size(), 5u);
  for (size_t i = 0; i < recs->size(); ++i) {   // every record whole
    EXPECT_EQ(recs->at(i).id, static_cast<int64_t>(i + 1));
    auto j = nlohmann::json::parse(recs->at(i).classes_json, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "record " << i;
    EXPECT_EQ(j.size(), 2000u);
  }
  // And it takes new records.
  EXPECT_TRUE(s.value()->add(record("v3", 0)).ok());
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-journal");
}

}  // namespace
}  // namespace trainsim

namespace trainsim {
namespace {

// A store written by schema 1 (before records had a kind) opens, is upgraded to schema 2 in
// place, keeps its records as kind "verify", and takes compare-trace records beside them; the
// history keeps the two kinds apart and marks them.
TEST(ResultsStore, UpgradesSchema1AndKeepsKindsApart) {
  const std::string path = temp_path("schema1");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* v1 =
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
        "INSERT INTO meta(key, value) VALUES('schema_version', '1');"
        "CREATE TABLE verifications(id INTEGER PRIMARY KEY, time_utc TEXT NOT NULL DEFAULT '',"
        " scenario TEXT NOT NULL DEFAULT '', scenario_hash TEXT NOT NULL DEFAULT '', plan_hash TEXT NOT NULL DEFAULT '',"
        " version TEXT NOT NULL DEFAULT '', machine TEXT NOT NULL DEFAULT '', device TEXT NOT NULL DEFAULT '',"
        " executor TEXT NOT NULL DEFAULT '', calibration TEXT NOT NULL DEFAULT '', ranks INTEGER NOT NULL,"
        " predicted_s REAL NOT NULL, measured_s REAL NOT NULL, step_error REAL NOT NULL, tolerance REAL NOT NULL,"
        " passed INTEGER NOT NULL, classes_json TEXT NOT NULL DEFAULT '[]');"
        "INSERT INTO verifications(time_utc, scenario, version, ranks, predicted_s, measured_s, step_error, tolerance,"
        " passed) VALUES('2026-01-01T00:00:00Z', 'verify_small', '0.0.9', 2, 0.31, 0.30, 0.0333, 0.25, 1);";
    ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto s = ResultsStore::open(path, false);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  VerifyRecord ct = record("0.1.0+gaaaa", 0.5);
  ct.kind = "compare-trace";
  ct.details_json = R"({"rank":0})";
  ASSERT_TRUE(s.value()->add(ct).ok());
  auto recs = s.value()->records("verify_small");
  ASSERT_TRUE(recs.ok());
  ASSERT_EQ(recs->size(), 2u);
  EXPECT_EQ(recs->at(0).kind, "verify");
  EXPECT_EQ(recs->at(0).details_json, "{}");
  EXPECT_EQ(recs->at(1).kind, "compare-trace");
  EXPECT_EQ(recs->at(1).details_json, R"({"rank":0})");
  const std::string h = format_history(recs.value());
  EXPECT_NE(h.find("scenario verify_small\n"), std::string::npos) << h;
  EXPECT_NE(h.find("scenario verify_small (compare-trace)\n"), std::string::npos) << h;
  EXPECT_NE(h.find("+50.0%"), std::string::npos) << h;   // the comparison's own group
  s.value().reset();
  // Opening again finds schema 2 and changes nothing.
  auto again = ResultsStore::open(path, false);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again.value()->records("")->size(), 2u);
  // The upgraded store (which had no sweep_points table) keeps sweep points too.
  SweepPointRecord sp;
  sp.sweep_key = "0123456789abcdef";
  sp.point = 3;
  sp.points = 8;
  sp.point_json = R"({"ok":true})";
  ASSERT_TRUE(again.value()->add_sweep_points({sp}).ok());
  auto pts = again.value()->sweep_points("0123456789abcdef");
  ASSERT_TRUE(pts.ok()) << pts.status().to_string();
  ASSERT_EQ(pts->size(), 1u);
  EXPECT_EQ(pts->at(0).point, 3);
  EXPECT_EQ(pts->at(0).point_json, R"({"ok":true})");
  EXPECT_FALSE(pts->at(0).time_utc.empty());
  sp.point_json = R"({"ok":false})";   // a shard run again replaces its points
  ASSERT_TRUE(again.value()->add_sweep_points({sp}).ok());
  EXPECT_EQ(again.value()->sweep_points("0123456789abcdef")->at(0).point_json, R"({"ok":false})");
  EXPECT_TRUE(again.value()->sweep_points("fedcba9876543210")->empty());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace trainsim
