#include "reports/results_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>

#include "reports/text_table.h"

namespace trainsim {

struct ResultsStore::Impl {
  sqlite3* db = nullptr;
  ~Impl() {
    if (db) sqlite3_close(db);
  }
};

namespace {

// Schema 1 as it was created; an empty file gets it, then the migration to 2 below.
const char* kSchemaV1 =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');"
    "CREATE TABLE IF NOT EXISTS verifications(id INTEGER PRIMARY KEY, time_utc TEXT NOT NULL DEFAULT '',"
    " scenario TEXT NOT NULL DEFAULT '', scenario_hash TEXT NOT NULL DEFAULT '', plan_hash TEXT NOT NULL DEFAULT '',"
    " version TEXT NOT NULL DEFAULT '', machine TEXT NOT NULL DEFAULT '', device TEXT NOT NULL DEFAULT '',"
    " executor TEXT NOT NULL DEFAULT '', calibration TEXT NOT NULL DEFAULT '', ranks INTEGER NOT NULL,"
    " predicted_s REAL NOT NULL, measured_s REAL NOT NULL, step_error REAL NOT NULL, tolerance REAL NOT NULL,"
    " passed INTEGER NOT NULL, classes_json TEXT NOT NULL DEFAULT '[]');";

// The sweep points' table, in a store of any schema version (created when missing).
const char* kSweepTable =
    "CREATE TABLE IF NOT EXISTS sweep_points(sweep_key TEXT NOT NULL, point INTEGER NOT NULL,"
    " points INTEGER NOT NULL, scenario TEXT NOT NULL DEFAULT '', set_json TEXT NOT NULL DEFAULT '[]',"
    " point_json TEXT NOT NULL, version TEXT NOT NULL DEFAULT '', machine TEXT NOT NULL DEFAULT '',"
    " time_utc TEXT NOT NULL DEFAULT '', PRIMARY KEY(sweep_key, point));";

// 1 -> 2: the kind of a record and its other figures. Records of schema 1 were all verify's.
const char* kMigrateV1ToV2 =
    "BEGIN IMMEDIATE;"
    "ALTER TABLE verifications ADD COLUMN kind TEXT NOT NULL DEFAULT 'verify';"
    "ALTER TABLE verifications ADD COLUMN details_json TEXT NOT NULL DEFAULT '{}';"
    "UPDATE meta SET value = '2' WHERE key = 'schema_version';"
    "COMMIT;";

Status sql_error(const std::string& path, sqlite3* db, const std::string& what) {
  return Status::error(Error{path, "", "", what + ": " + (db ? sqlite3_errmsg(db) : "out of memory")});
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return b;
}

// Runs `body` (returning a Status) inside BEGIN IMMEDIATE ... COMMIT; rolls back when it or
// the commit fails.
template <typename Body>
Status in_transaction(sqlite3* db, const std::string& path, Body body) {
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
    return sql_error(path, db, "cannot start a transaction");
  Status st = body();
  if (st.ok() && sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
    st = sql_error(path, db, "cannot commit");
  if (!st.ok()) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  return st;
}

std::string col_text(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? reinterpret_cast<const char*>(t) : "";
}

}  // namespace

ResultsStore::~ResultsStore() = default;

Result<std::unique_ptr<ResultsStore>> ResultsStore::open(const std::string& path, bool create,
                                                         const std::string& missing_hint) {
  std::unique_ptr<ResultsStore> s(new ResultsStore());
  s->impl_ = std::make_unique<Impl>();
  s->path_ = path;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &s->impl_->db, flags, nullptr) != SQLITE_OK)
    return sql_error(path, s->impl_->db, create ? "cannot open or create the results store"
                                                : "cannot open the results store (" + missing_hint + ")");
  sqlite3_busy_timeout(s->impl_->db, 5000);
  char* err = nullptr;
  if (sqlite3_exec(s->impl_->db, kSchemaV1, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown";
    sqlite3_free(err);
    return Status::error(Error{path, "", "", "not a trainsim results store: " + m});
  }
  auto version = [&]() {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(s->impl_->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st, nullptr);
    std::string ver;
    if (st && sqlite3_step(st) == SQLITE_ROW) ver = col_text(st, 0);
    sqlite3_finalize(st);
    return ver;
  };
  std::string ver = version();
  if (ver == "1") {
    // Two openers may race to migrate: the loser's BEGIN IMMEDIATE waits, then finds version 2.
    if (sqlite3_exec(s->impl_->db, kMigrateV1ToV2, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "unknown";
      sqlite3_free(err);
      sqlite3_exec(s->impl_->db, "ROLLBACK", nullptr, nullptr, nullptr);
      if (version() != "2")
        return Status::error(Error{path, "/meta/schema_version", "1", "cannot upgrade the results store to schema 2: " + m});
    }
    ver = version();
  }
  if (ver != "2")
    return Status::error(Error{path, "/meta/schema_version", ver, "this trainsim reads results-store schemas 1 and 2"});
  if (sqlite3_exec(s->impl_->db, kSweepTable, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown";
    sqlite3_free(err);
    return Status::error(Error{path, "", "", "cannot create the sweep_points table: " + m});
  }
  return s;
}

Result<int64_t> ResultsStore::add(const VerifyRecord& r) {
  sqlite3* db = impl_->db;
  int64_t id = 0;
  Status st = in_transaction(db, path_, [&]() -> Status {
    sqlite3_stmt* ins = nullptr;
    const char* sql =
        "INSERT INTO verifications(time_utc, scenario, scenario_hash, plan_hash, version, machine, device, executor,"
        " calibration, ranks, predicted_s, measured_s, step_error, tolerance, passed, classes_json, kind, details_json)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    if (sqlite3_prepare_v2(db, sql, -1, &ins, nullptr) != SQLITE_OK) return sql_error(path_, db, "cannot prepare the insert");
    const std::string when = r.time_utc.empty() ? utc_now() : r.time_utc;
    int i = 1;
    for (const std::string* t : {&when, &r.scenario, &r.scenario_hash, &r.plan_hash, &r.version, &r.machine, &r.device,
                                 &r.executor, &r.calibration})
      sqlite3_bind_text(ins, i++, t->c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(ins, i++, r.ranks);
    for (double d : {r.predicted_s, r.measured_s, r.step_error, r.tolerance}) sqlite3_bind_double(ins, i++, d);
    sqlite3_bind_int(ins, i++, r.passed ? 1 : 0);
    sqlite3_bind_text(ins, i++, r.classes_json.c_str(), -1, SQLITE_TRANSIENT);
    const std::string kind = r.kind.empty() ? "verify" : r.kind;
    sqlite3_bind_text(ins, i++, kind.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, i++, r.details_json.empty() ? "{}" : r.details_json.c_str(), -1, SQLITE_TRANSIENT);
    const int rc = sqlite3_step(ins);
    sqlite3_finalize(ins);
    if (rc != SQLITE_DONE) return sql_error(path_, db, "cannot insert the verification");
    id = sqlite3_last_insert_rowid(db);
    return Status();
  });
  if (!st.ok()) return st;
  return id;
}

Result<std::vector<VerifyRecord>> ResultsStore::records(const std::string& scenario) const {
  sqlite3_stmt* st = nullptr;
  const char* sql =
      "SELECT id, time_utc, scenario, scenario_hash, plan_hash, version, machine, device, executor, calibration,"
      " ranks, predicted_s, measured_s, step_error, tolerance, passed, classes_json, kind, details_json FROM verifications"
      " WHERE ?1 = '' OR scenario = ?1 ORDER BY id";
  if (sqlite3_prepare_v2(impl_->db, sql, -1, &st, nullptr) != SQLITE_OK)
    return sql_error(path_, impl_->db, "cannot read the verifications");
  sqlite3_bind_text(st, 1, scenario.c_str(), -1, SQLITE_TRANSIENT);
  std::vector<VerifyRecord> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    VerifyRecord r;
    r.id = sqlite3_column_int64(st, 0);
    std::string* t[] = {&r.time_utc, &r.scenario, &r.scenario_hash, &r.plan_hash, &r.version,
                        &r.machine,  &r.device,   &r.executor,      &r.calibration};
    for (int i = 0; i < 9; ++i) *t[i] = col_text(st, 1 + i);
    r.ranks = sqlite3_column_int(st, 10);
    r.predicted_s = sqlite3_column_double(st, 11);
    r.measured_s = sqlite3_column_double(st, 12);
    r.step_error = sqlite3_column_double(st, 13);
    r.tolerance = sqlite3_column_double(st, 14);
    r.passed = sqlite3_column_int(st, 15) != 0;
    r.classes_json = col_text(st, 16);
    r.kind = col_text(st, 17);
    r.details_json = col_text(st, 18);
    out.push_back(std::move(r));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return sql_error(path_, impl_->db, "cannot read the verifications");
  return out;
}

Status ResultsStore::add_sweep_points(const std::vector<SweepPointRecord>& recs) {
  sqlite3* db = impl_->db;
  return in_transaction(db, path_, [&]() -> Status {
    sqlite3_stmt* ins = nullptr;
    const char* sql =
        "INSERT OR REPLACE INTO sweep_points(sweep_key, point, points, scenario, set_json, point_json, version,"
        " machine, time_utc) VALUES(?,?,?,?,?,?,?,?,?)";
    if (sqlite3_prepare_v2(db, sql, -1, &ins, nullptr) != SQLITE_OK) return sql_error(path_, db, "cannot prepare the insert");
    const std::string now = utc_now();
    for (const auto& r : recs) {
      sqlite3_reset(ins);
      sqlite3_bind_text(ins, 1, r.sweep_key.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(ins, 2, r.point);
      sqlite3_bind_int64(ins, 3, r.points);
      const std::string when = r.time_utc.empty() ? now : r.time_utc;
      int i = 4;
      for (const std::string* t : {&r.scenario, &r.set_json, &r.point_json, &r.version, &r.machine, &when})
        sqlite3_bind_text(ins, i++, t->c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(ins) != SQLITE_DONE) {
        Status e = sql_error(path_, db, "cannot insert sweep point " + std::to_string(r.point));
        sqlite3_finalize(ins);
        return e;
      }
    }
    sqlite3_finalize(ins);
    return Status();
  });
}

Result<std::vector<SweepPointRecord>> ResultsStore::sweep_points(const std::string& sweep_key) const {
  sqlite3_stmt* st = nullptr;
  const char* sql =
      "SELECT sweep_key, point, points, scenario, set_json, point_json, version, machine, time_utc FROM sweep_points"
      " WHERE sweep_key = ?1 ORDER BY point";
  if (sqlite3_prepare_v2(impl_->db, sql, -1, &st, nullptr) != SQLITE_OK)
    return sql_error(path_, impl_->db, "cannot read the sweep points");
  sqlite3_bind_text(st, 1, sweep_key.c_str(), -1, SQLITE_TRANSIENT);
  std::vector<SweepPointRecord> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    SweepPointRecord r;
    r.sweep_key = col_text(st, 0);
    r.point = sqlite3_column_int64(st, 1);
    r.points = sqlite3_column_int64(st, 2);
    std::string* t[] = {&r.scenario, &r.set_json, &r.point_json, &r.version, &r.machine, &r.time_utc};
    for (int i = 0; i < 6; ++i) *t[i] = col_text(st, 3 + i);
    out.push_back(std::move(r));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return sql_error(path_, impl_->db, "cannot read the sweep points");
  return out;
}

std::string format_history(const std::vector<VerifyRecord>& records) {
  using reports::strf;
  if (records.empty()) return "no verifications recorded\n";
  // (scenario, kind) -> versions in order of first appearance.
  using Key = std::pair<std::string, std::string>;
  std::map<Key, std::vector<std::string>> order;
  std::map<std::pair<Key, std::string>, std::vector<const VerifyRecord*>> by;
  auto kind_of = [](const VerifyRecord& r) { return r.kind.empty() ? std::string("verify") : r.kind; };
  for (const auto& r : records) {
    const Key k{r.scenario, kind_of(r)};
    auto& v = order[k];
    if (std::find(v.begin(), v.end(), r.version) == v.end()) v.push_back(r.version);
    by[{k, r.version}].push_back(&r);
  }
  std::string out;
  for (const auto& [key, versions] : order) {
    const auto& [sc, kind] = key;
    out += "scenario " + sc + (kind == "verify" ? "" : " (" + kind + ")") + "\n";
    reports::TextTable t({"version", "runs", "last error", "mean error", "mean |error|", "change", "passed"},
                         {reports::Align::kLeft, reports::Align::kRight, reports::Align::kRight, reports::Align::kRight,
                          reports::Align::kRight, reports::Align::kRight, reports::Align::kRight});
    double prev = NAN;
    for (const auto& ver : versions) {
      const auto& rs = by[{key, ver}];
      double sum = 0, abs_sum = 0;
      int passed = 0;
      for (const auto* r : rs) {
        sum += r->step_error;
        abs_sum += std::fabs(r->step_error);
        passed += r->passed;
      }
      const double mean = sum / rs.size();
      t.add({ver, std::to_string(rs.size()), strf("%+.1f%%", 100 * rs.back()->step_error), strf("%+.1f%%", 100 * mean),
             strf("%.1f%%", 100 * abs_sum / rs.size()),
             std::isnan(prev) ? std::string("-") : strf("%+.1f pt", 100 * (mean - prev)),
             strf("%d of %zu", passed, rs.size())});
      prev = mean;
    }
    out += t.render("  ");
  }
  out += "last verifications\n";
  reports::TextTable l({"id", "when", "kind", "scenario", "version", "predicted", "measured", "error", "calibration"},
                       {reports::Align::kRight, reports::Align::kLeft, reports::Align::kLeft, reports::Align::kLeft,
                        reports::Align::kLeft, reports::Align::kRight, reports::Align::kRight, reports::Align::kRight,
                        reports::Align::kLeft});
  const size_t from = records.size() > 10 ? records.size() - 10 : 0;
  for (size_t i = from; i < records.size(); ++i) {
    const auto& r = records[i];
    l.add({std::to_string(r.id), r.time_utc, kind_of(r), r.scenario, r.version, strf("%.3f ms", r.predicted_s * 1e3),
           strf("%.3f ms", r.measured_s * 1e3), strf("%+.1f%%", 100 * r.step_error), r.calibration});
  }
  out += l.render("  ");
  return out;
}

}  // namespace trainsim
