#include "reports/compare_report.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "reports/json_report.h"
#include "reports/summary.h"
#include "reports/text_table.h"
#include "scenarios/loader.h"

namespace trainsim {
namespace {

using json = nlohmann::json;
using reports::Align;
using reports::gib2;
using reports::group_digits;
using reports::strf;
using reports::TextTable;
using reports::unsigned_pct;

constexpr size_t kBuckets = static_cast<size_t>(Bucket::kCount);
constexpr std::array<const char*, 6> kMemoryKeys = {"params", "grads", "optimizer", "activations", "workspace", "total"};
constexpr const char* kWrites = "as `trainsim run --json` writes it";

// Reads typed values at JSON pointers of a prediction document, collecting every error.
class DocReader {
 public:
  DocReader(const json& doc, const std::string& file) : doc_(doc), file_(file) {}
  Status& status() { return st_; }

  const json* at(const std::string& ptr, const char* want) {
    const json::json_pointer p(ptr);
    if (!doc_.contains(p)) {
      st_.add(Error{file_, ptr, "", strf("missing: expected %s, %s", want, kWrites)});
      return nullptr;
    }
    return &doc_.at(p);
  }
  int64_t integer(const std::string& ptr, const char* want = "an integer") {
    const json* v = at(ptr, want);
    if (v == nullptr) return 0;
    if (!v->is_number_integer()) return bad(ptr, *v, want), 0;
    return v->get<int64_t>();
  }
  Time time_ps(const std::string& ptr) {
    const int64_t ps = integer(ptr, "a whole number of picoseconds, 0 or more");
    if (ps < 0) return bad(ptr, doc_.at(json::json_pointer(ptr)), "a whole number of picoseconds, 0 or more"), Time{};
    return Time::ps(ps);
  }
  double number(const std::string& ptr) {
    const json* v = at(ptr, "a number");
    if (v == nullptr) return 0;
    if (!v->is_number()) return bad(ptr, *v, "a number"), 0;
    return v->get<double>();
  }
  std::string text(const std::string& ptr) {
    const json* v = at(ptr, "a string");
    if (v == nullptr) return "";
    if (!v->is_string()) return bad(ptr, *v, "a string"), "";
    return v->get<std::string>();
  }
  bool boolean(const std::string& ptr) {
    const json* v = at(ptr, "true or false");
    if (v == nullptr) return false;
    if (!v->is_boolean()) return bad(ptr, *v, "true or false"), false;
    return v->get<bool>();
  }
  void bad(const std::string& ptr, const json& v, const char* want) {
    std::string shown = v.dump();
    if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
    st_.add(Error{file_, ptr, shown, strf("expected %s, %s", want, kWrites)});
  }

 private:
  const json& doc_;
  const std::string& file_;
  Status st_;
};

// A setting's value as text: strings as they are, everything else as JSON.
std::string setting_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

void flatten(const json& v, const std::string& key, std::vector<std::pair<std::string, std::string>>* out) {
  if (v.is_object() && !v.empty()) {
    for (auto it = v.begin(); it != v.end(); ++it) flatten(it.value(), key + "." + it.key(), out);
    return;
  }
  out->emplace_back(key, setting_text(v));
}

std::string signed_time(Time d) {
  if (d.count_ps() == 0) return "0";
  return d.count_ps() < 0 ? "-" + format_time(Time::ps(-d.count_ps())) : "+" + format_time(d);
}
// B - A relative to A, as "+12.3%"; "" when A is zero (or both are).
std::string rel(double a, double b) {
  if (a == b) return "";
  if (a == 0 || !std::isfinite(a) || !std::isfinite(b)) return "";
  return reports::signed_pct((b - a) / a);
}
std::string signed_gib(int64_t d) {
  if (d == 0) return "0";
  return d < 0 ? "-" + gib2(-d) : "+" + gib2(d);
}
std::string points(double a, double b) {
  if (a == b) return "0";
  return strf("%+.1f pts", 100.0 * (b - a));
}
std::string rate_text(double v) { return std::fabs(v) >= 1000 ? group_digits(v) : strf("%.1f", v); }
std::string signed_rate(double a, double b) {
  if (a == b) return "0";
  return (b > a ? "+" : "") + rate_text(b - a);
}

std::string costs_text(const ComparedRun& r) {
  return r.calibration.empty() ? "embedded default" : "calibration database " + r.calibration;
}

std::string side_text(const ComparedRun& r) {
  return strf("%s  [%s, %s mode, %s GPUs]", r.label.c_str(), r.scenario.c_str(), r.mode.c_str(),
              group_digits(static_cast<double>(r.gpus)).c_str());
}

// The breakdown buckets whose time changed, largest change first (ties: bucket order).
std::vector<size_t> changed_buckets(const RunComparison& c) {
  std::vector<size_t> idx;
  for (size_t i = 0; i < kBuckets; ++i)
    if (c.a.breakdown[i] != c.b.breakdown[i]) idx.push_back(i);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t x, size_t y) {
    return std::llabs((c.b.breakdown[x] - c.a.breakdown[x]).count_ps()) >
           std::llabs((c.b.breakdown[y] - c.a.breakdown[y]).count_ps());
  });
  return idx;
}

Time bucket_sum(const ComparedRun& r) {
  Time s;
  for (Time t : r.breakdown) s += t;
  return s;
}

// The cost-source rows of both sides, A's order first, then B's other kinds.
struct SourcePair {
  std::string what;
  const ComparedRun::Source* a = nullptr;
  const ComparedRun::Source* b = nullptr;
};
std::vector<SourcePair> source_pairs(const RunComparison& c) {
  std::vector<SourcePair> out;
  for (const auto& s : c.a.sources) out.push_back({s.what, &s, nullptr});
  for (const auto& s : c.b.sources) {
    auto it = std::find_if(out.begin(), out.end(), [&](const SourcePair& p) { return p.what == s.what && p.b == nullptr; });
    if (it != out.end())
      it->b = &s;
    else
      out.push_back({s.what, nullptr, &s});
  }
  return out;
}

nlohmann::ordered_json side_json(const ComparedRun& r) {
  nlohmann::ordered_json j;
  j["label"] = r.label;
  j["scenario"] = r.scenario;
  j["file"] = r.file;
  j["mode"] = r.mode;
  j["gpus"] = r.gpus;
  j["fingerprint"] = r.fingerprint;
  j["calibration"] = r.calibration;
  return j;
}

}  // namespace

bool is_prediction_document(const json& doc) {
  return doc.is_object() && doc.contains("step_time_ps") && doc.contains("fingerprint") && doc.contains("breakdown");
}

Result<ComparedRun> compared_run_from_json(const json& doc, const std::string& file, const std::string& label) {
  if (!doc.is_object())
    return Status::error(Error{file, "", "", strf("expected a prediction document (a JSON object), %s", kWrites)});
  DocReader rd(doc, file);
  ComparedRun r;
  r.label = label;
  r.scenario = rd.text("/scenario/name");
  r.file = rd.text("/scenario/file");
  r.mode = rd.text("/mode");
  r.gpus = rd.integer("/gpus");
  r.tokens_per_step = rd.integer("/tokens_per_step");
  r.step = rd.time_ps("/step_time_ps");
  r.tokens_per_s = rd.number("/tokens_per_s");
  r.tokens_per_s_per_gpu = rd.number("/tokens_per_s_per_gpu");
  r.model_tflops = rd.number("/model_tflops_per_gpu");
  r.hardware_tflops = rd.number("/hardware_tflops_per_gpu");
  r.mfu = rd.number("/mfu");
  r.hfu = rd.number("/hfu");
  for (size_t i = 0; i < kBuckets; ++i)
    r.breakdown[i] = rd.time_ps(strf("/breakdown/%s/ps", breakdown_key(static_cast<Bucket>(i))));
  r.comm_total = rd.time_ps("/comm/total_ps");
  r.comm_exposed = rd.time_ps("/comm/exposed_ps");
  r.comm_hidden = rd.number("/comm/hidden_fraction");
  for (size_t i = 0; i < kMemoryKeys.size(); ++i)
    r.memory[i] = rd.integer(strf("/memory/peak/%s_bytes", kMemoryKeys[i]));
  r.capacity = rd.integer("/memory/capacity_bytes");
  r.oom = rd.boolean("/memory/oom");
  r.verdict = rd.text("/memory/verdict");
  r.calibration = rd.text("/calibration");
  r.fingerprint = rd.text("/fingerprint");
  if (const json* src = rd.at("/sources", "an array of cost-source rows")) {
    if (!src->is_array()) {
      rd.bad("/sources", *src, "an array of cost-source rows");
    } else {
      for (size_t i = 0; i < src->size(); ++i) {
        const std::string at = strf("/sources/%zu", i);
        r.sources.push_back({rd.text(at + "/what"), rd.text(at + "/source"), rd.time_ps(at + "/time_on_critical_rank_ps")});
      }
    }
  }
  for (const char* section : {"model", "training", "cluster", "strategy"}) {
    const std::string ptr = std::string("/") + section;
    if (const json* v = rd.at(ptr, "an object of settings")) {
      if (!v->is_object())
        rd.bad(ptr, *v, "an object of settings");
      else
        flatten(*v, section, &r.settings);
    }
  }
  if (!rd.status().ok()) return rd.status();
  return r;
}

ComparedRun compared_run_of(const Prediction& p, const std::string& label) {
  // Through the document's text, as a stored prediction is read: the same figures either way.
  const json doc = json::parse(prediction_json(p).dump());
  Result<ComparedRun> r = compared_run_from_json(doc, "<prediction>", label);
  SIM_CHECK(r.ok(), "a prediction's own document does not read back: %s", r.status().to_string().c_str());
  return std::move(r).value();
}

Result<ComparedRun> load_compared_run(const std::string& path, const std::vector<std::string>& overrides,
                                      const CompareSideOptions& opts) {
  Result<json> doc = read_scenario_document(path);
  if (!doc.ok()) return doc.status();
  std::string label = path.empty() ? "quickstart (embedded)" : path;
  // Another command's report is neither side: say which it is rather than list its keys as unknown.
  if (const json& d = doc.value(); d.is_object() && !is_prediction_document(d)) {
    const char* what = d.contains("axes") && d.contains("points")              ? "a sweep or search report (--json)"
                       : d.contains("rows") && d.contains("summary")           ? "a validate report (--json)"
                       : d.value("kind", json()) == json("compare")            ? "a compare report (--json)"
                       : d.contains("programs") && d.contains("groups")        ? "a plan report (--json)"
                       : d.contains("executor") && d.contains("measured_step_s") ? "a verify report (--json)"
                                                                                 : nullptr;
    if (what)
      return Status::error(Error{path, "", "",
                                 strf("is %s, not a scenario or a prediction that `trainsim run --json` stored; compare "
                                      "takes those",
                                      what)});
  }
  if (is_prediction_document(doc.value())) {
    Status st;
    for (const auto& o : overrides)
      st.add(Error{"--set", "", o,
                   strf("%s is a stored prediction (trainsim run --json), which cannot be predicted again with "
                        "other settings; give its scenario instead",
                        path.c_str())});
    if (!opts.calibration.empty())
      st.add(Error{"--calibration", "", opts.calibration,
                   strf("%s is a stored prediction, priced when it was made; give its scenario to price it with a "
                        "calibration database",
                        path.c_str())});
    if (!st.ok()) return st;
    Result<ComparedRun> r = compared_run_from_json(doc.value(), path, label + " (stored prediction)");
    if (r.ok()) r.value().stored = true;
    return r;
  }
  Result<Scenario> sc = load_scenario_json(doc.value(), path.empty() ? "<embedded>" : path, overrides);
  if (!sc.ok()) return sc.status();
  if (!opts.calibration.empty()) sc.value().options.calibration = opts.calibration;
  Result<Prediction> p = predict(sc.value(), opts.predict);
  if (!p.ok()) return p.status();
  for (const auto& o : overrides) label += " --set " + o;
  if (!opts.calibration.empty()) label += " --calibration " + opts.calibration;
  return compared_run_of(p.value(), label);
}

RunComparison compare_runs(ComparedRun a, ComparedRun b) {
  RunComparison c;
  auto find = [](const ComparedRun& r, const std::string& key) -> const std::string* {
    for (const auto& [k, v] : r.settings)
      if (k == key) return &v;
    return nullptr;
  };
  if (a.mode != b.mode) c.differs.push_back({"mode", a.mode, b.mode});
  for (const auto& [k, v] : a.settings) {
    const std::string* w = find(b, k);
    if (w == nullptr || *w != v) c.differs.push_back({k, v, w == nullptr ? "-" : *w});
  }
  for (const auto& [k, v] : b.settings)
    if (find(a, k) == nullptr) c.differs.push_back({k, "-", v});
  c.a = std::move(a);
  c.b = std::move(b);
  return c;
}

double step_change(const RunComparison& c) {
  const int64_t a = c.a.step.count_ps(), b = c.b.step.count_ps();
  if (a == b) return 0;
  if (a == 0) return std::numeric_limits<double>::infinity();
  return static_cast<double>(b - a) / static_cast<double>(a);
}

CompareJudgement judge(const RunComparison& c) {
  CompareJudgement j{"step_time", "step", c.a.step.seconds(), c.b.step.seconds()};
  const bool same_gpus = c.a.gpus == c.b.gpus, same_tokens = c.a.tokens_per_step == c.b.tokens_per_step;
  if (same_gpus && same_tokens) {
    j.change = step_change(c);   // from the integer ps
    j.better = c.b.step < c.a.step;
    return j;
  }
  std::string sides;
  if (!same_gpus) sides = strf("GPUs (%lld vs %lld)", static_cast<long long>(c.a.gpus), static_cast<long long>(c.b.gpus));
  if (!same_tokens)
    sides += strf("%stokens per step (%s vs %s)", sides.empty() ? "" : " and ",
                  group_digits(static_cast<double>(c.a.tokens_per_step)).c_str(),
                  group_digits(static_cast<double>(c.b.tokens_per_step)).c_str());
  if (same_gpus) j = {"tokens_per_s", "tokens/s", c.a.tokens_per_s, c.b.tokens_per_s};
  else j = {"tokens_per_s_per_gpu", "tokens/s per GPU", c.a.tokens_per_s_per_gpu, c.b.tokens_per_s_per_gpu};
  j.change = j.a == j.b ? 0.0 : j.a == 0 ? std::numeric_limits<double>::infinity() : (j.b - j.a) / j.a;
  j.better = j.b > j.a;
  j.why = "the sides differ in " + sides + ", so their step times do not compare; judged by " + j.label;
  return j;
}

std::string format_comparison(const RunComparison& c) {
  const ComparedRun& a = c.a;
  const ComparedRun& b = c.b;
  std::string out = "trainsim compare\n";
  out += "A  " + side_text(a) + "\n";
  out += "B  " + side_text(b) + "\n";
  if (c.differs.empty()) {
    out += "settings: the same model, training, cluster and strategy\n";
  } else {
    out += strf("settings that differ (%zu):\n", c.differs.size());
    for (const auto& d : c.differs) out += "  " + d.key + "  " + d.a + " -> " + d.b + "\n";
  }
  out += "costs: A " + costs_text(a) + "; B " + costs_text(b) + "\n";

  out += "\n";
  TextTable t({"", "A", "B", "B - A", ""}, {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight});
  t.add({"step time", format_time(a.step), format_time(b.step), signed_time(b.step - a.step),
         rel(static_cast<double>(a.step.count_ps()), static_cast<double>(b.step.count_ps()))});
  t.add({"tokens/s", rate_text(a.tokens_per_s), rate_text(b.tokens_per_s), signed_rate(a.tokens_per_s, b.tokens_per_s),
         rel(a.tokens_per_s, b.tokens_per_s)});
  t.add({"tokens/s per GPU", rate_text(a.tokens_per_s_per_gpu), rate_text(b.tokens_per_s_per_gpu),
         signed_rate(a.tokens_per_s_per_gpu, b.tokens_per_s_per_gpu), rel(a.tokens_per_s_per_gpu, b.tokens_per_s_per_gpu)});
  t.add({"TFLOP/s/GPU model", strf("%.1f", a.model_tflops), strf("%.1f", b.model_tflops),
         signed_rate(a.model_tflops, b.model_tflops), rel(a.model_tflops, b.model_tflops)});
  t.add({"TFLOP/s/GPU hardware", strf("%.1f", a.hardware_tflops), strf("%.1f", b.hardware_tflops),
         signed_rate(a.hardware_tflops, b.hardware_tflops), rel(a.hardware_tflops, b.hardware_tflops)});
  t.add({"MFU", unsigned_pct(a.mfu), unsigned_pct(b.mfu), points(a.mfu, b.mfu), ""});
  t.add({"HFU", unsigned_pct(a.hfu), unsigned_pct(b.hfu), points(a.hfu, b.hfu), ""});
  t.add({"comm (critical rank)", format_time(a.comm_total), format_time(b.comm_total),
         signed_time(b.comm_total - a.comm_total), ""});
  t.add({"  exposed", format_time(a.comm_exposed), format_time(b.comm_exposed),
         signed_time(b.comm_exposed - a.comm_exposed), ""});
  t.add({"  hidden", unsigned_pct(a.comm_hidden), unsigned_pct(b.comm_hidden), points(a.comm_hidden, b.comm_hidden), ""});
  out += t.render("");

  out += "\nwhere the step changed (each critical rank's breakdown; the changes sum to the step's)\n";
  const std::vector<size_t> changed = changed_buckets(c);
  const Time step_delta = b.step - a.step;
  if (changed.empty()) {
    out += "  nowhere: every bucket is the same\n";
  } else {
    TextTable bt({"", "A", "B", "B - A", "of the change"},
                 {Align::kLeft, Align::kRight, Align::kRight, Align::kRight, Align::kRight});
    for (size_t i : changed) {
      const Time d = b.breakdown[i] - a.breakdown[i];
      bt.add({breakdown_label(static_cast<Bucket>(i)), format_time(a.breakdown[i]), format_time(b.breakdown[i]),
              signed_time(d),
              step_delta.count_ps() == 0
                  ? std::string("-")
                  : reports::signed_pct(static_cast<double>(d.count_ps()) / static_cast<double>(step_delta.count_ps()))});
    }
    const Time sa = bucket_sum(a), sb = bucket_sum(b);
    bt.add({"total", format_time(sa), format_time(sb), signed_time(sb - sa), ""});
    out += bt.render("  ");
    bool against = false;   // a bucket that moved the other way from the step
    for (size_t i : changed)
      against |= step_delta.count_ps() != 0 && ((b.breakdown[i] - a.breakdown[i]).count_ps() < 0) != (step_delta.count_ps() < 0);
    if (against)
      out += strf("  (a negative share moved against the step's change: it %s while the step %s)\n",
                  step_delta.count_ps() < 0 ? "grew" : "shrank", step_delta.count_ps() < 0 ? "shrank" : "grew");
    if (sa != a.step || sb != b.step)   // never expected: each report's buckets sum to its step
      out += strf("  note: the buckets sum to %lld / %lld ps, the steps are %lld / %lld ps\n",
                  (long long)sa.count_ps(), (long long)sb.count_ps(), (long long)a.step.count_ps(),
                  (long long)b.step.count_ps());
  }

  out += "\npeak memory per GPU (GiB)\n";
  TextTable mt({"", "A", "B", "B - A"}, {Align::kLeft, Align::kRight, Align::kRight, Align::kRight});
  for (size_t i = 0; i < kMemoryKeys.size(); ++i)
    mt.add({kMemoryKeys[i], gib2(a.memory[i]), gib2(b.memory[i]), signed_gib(b.memory[i] - a.memory[i])});
  mt.add({"capacity", gib2(a.capacity), gib2(b.capacity), signed_gib(b.capacity - a.capacity)});
  out += mt.render("  ");
  out += "  A " + a.verdict + "\n  B " + b.verdict + "\n";

  out += "\ncost sources (time on each side's critical rank)\n";
  const std::vector<SourcePair> pairs = source_pairs(c);
  if (pairs.empty()) {
    out += "  (none)\n";
  } else {
    TextTable st({"what", "A source", "A", "B source", "B", "B - A"},
                 {Align::kLeft, Align::kLeft, Align::kRight, Align::kLeft, Align::kRight, Align::kRight});
    for (const SourcePair& p : pairs) {
      const Time ta = p.a ? p.a->time : Time{}, tb = p.b ? p.b->time : Time{};
      st.add({p.what, p.a ? p.a->source : "-", p.a ? format_time(ta) : "-", p.b ? p.b->source : "-",
              p.b ? format_time(tb) : "-", signed_time(tb - ta)});
    }
    out += st.render("  ");
  }

  out += "\nverdict: ";
  const CompareJudgement jd = judge(c);
  if (!jd.why.empty()) {   // throughput, not the step
    if (jd.a == jd.b) out += strf("the same %s (%s)", jd.label, rate_text(jd.a).c_str());
    else
      out += strf("B trains %s than A: %s %s -> %s (%s)", jd.better ? "faster" : "slower", jd.label,
                  rate_text(jd.a).c_str(), rate_text(jd.b).c_str(), rel(jd.a, jd.b).c_str());
    out += strf(" (%s); step %s -> %s", jd.why.c_str(), format_time(a.step).c_str(), format_time(b.step).c_str());
  } else if (step_delta.count_ps() == 0) {
    out += "the same step time (" + format_time(a.step) + ")";
  } else {
    out += strf("B is %s than A: step %s -> %s (%s", step_delta.count_ps() < 0 ? "faster" : "slower",
                format_time(a.step).c_str(), format_time(b.step).c_str(), signed_time(step_delta).c_str());
    const std::string r = rel(static_cast<double>(a.step.count_ps()), static_cast<double>(b.step.count_ps()));
    out += r.empty() ? ")" : ", " + r + ")";
    // The two largest changes of the breakdown name where it comes from.
    for (size_t k = 0; k < changed.size() && k < 2; ++k) {
      const size_t i = changed[k];
      out += strf("%s %s %s", k == 0 ? "; mostly" : ",", breakdown_label(static_cast<Bucket>(i)),
                  signed_time(b.breakdown[i] - a.breakdown[i]).c_str());
    }
  }
  out += strf("; peak memory %s -> %s GiB", gib2(a.memory[ComparedRun::kMemoryTotal]).c_str(), gib2(b.memory[ComparedRun::kMemoryTotal]).c_str());
  if (a.oom != b.oom) out += b.oom ? ", and B does not fit (OOM)" : ", and B fits where A did not";
  else if (a.oom) out += ", neither fits (OOM)";
  out += a.fingerprint == b.fingerprint ? "; the same replay (fingerprint " + a.fingerprint + ")\n"
                                        : "; fingerprints differ\n";
  return out;
}

nlohmann::ordered_json comparison_json(const RunComparison& c) {
  using oj = nlohmann::ordered_json;
  oj j;
  j["kind"] = "compare";
  j["a"] = side_json(c.a);
  j["b"] = side_json(c.b);
  oj differs = oj::array();
  for (const auto& d : c.differs) differs.push_back({{"key", d.key}, {"a", d.a}, {"b", d.b}});
  j["differs"] = std::move(differs);
  j["step_change_ps"] = (c.b.step - c.a.step).count_ps();
  j["step_change"] = c.a.step.count_ps() == 0 ? oj(nullptr) : json_number(step_change(c));
  const CompareJudgement jd = judge(c);
  j["judged_by"] = jd.key;
  j["judged_change"] = json_number(jd.change);
  oj figs = oj::array();
  auto fig = [&](const char* key, double a, double b) {
    figs.push_back({{"key", key}, {"a", json_number(a)}, {"b", json_number(b)}, {"change", json_number(b - a)}});
  };
  fig("step_time_s", c.a.step.seconds(), c.b.step.seconds());
  fig("tokens_per_s", c.a.tokens_per_s, c.b.tokens_per_s);
  fig("tokens_per_s_per_gpu", c.a.tokens_per_s_per_gpu, c.b.tokens_per_s_per_gpu);
  fig("model_tflops_per_gpu", c.a.model_tflops, c.b.model_tflops);
  fig("hardware_tflops_per_gpu", c.a.hardware_tflops, c.b.hardware_tflops);
  fig("mfu", c.a.mfu, c.b.mfu);
  fig("hfu", c.a.hfu, c.b.hfu);
  fig("comm_total_s", c.a.comm_total.seconds(), c.b.comm_total.seconds());
  fig("comm_exposed_s", c.a.comm_exposed.seconds(), c.b.comm_exposed.seconds());
  fig("comm_hidden_fraction", c.a.comm_hidden, c.b.comm_hidden);
  j["figures"] = std::move(figs);
  oj bd = oj::array();
  for (size_t i = 0; i < kBuckets; ++i)
    bd.push_back({{"key", breakdown_key(static_cast<Bucket>(i))},
                  {"a_ps", c.a.breakdown[i].count_ps()},
                  {"b_ps", c.b.breakdown[i].count_ps()},
                  {"change_ps", (c.b.breakdown[i] - c.a.breakdown[i]).count_ps()}});
  j["breakdown"] = std::move(bd);
  oj mem = oj::array();
  for (size_t i = 0; i < kMemoryKeys.size(); ++i)
    mem.push_back({{"key", kMemoryKeys[i]},
                   {"a_bytes", c.a.memory[i]},
                   {"b_bytes", c.b.memory[i]},
                   {"change_bytes", c.b.memory[i] - c.a.memory[i]}});
  j["memory"] = std::move(mem);
  j["oom"] = {{"a", c.a.oom}, {"b", c.b.oom}};
  oj src = oj::array();
  for (const SourcePair& p : source_pairs(c)) {
    oj row;
    row["what"] = p.what;
    row["a_source"] = p.a ? oj(p.a->source) : oj(nullptr);
    row["a_ps"] = p.a ? oj(p.a->time.count_ps()) : oj(nullptr);
    row["b_source"] = p.b ? oj(p.b->source) : oj(nullptr);
    row["b_ps"] = p.b ? oj(p.b->time.count_ps()) : oj(nullptr);
    src.push_back(std::move(row));
  }
  j["sources"] = std::move(src);
  j["same_fingerprint"] = c.a.fingerprint == c.b.fingerprint;
  return j;
}

}  // namespace trainsim
