#include "calibrate/import_nccl_tests.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace trainsim {
namespace {

using OJson = nlohmann::ordered_json;

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(text);
  while (std::getline(in, cur)) {
    if (!cur.empty() && cur.back() == '\r') cur.pop_back();
    out.push_back(cur);
  }
  return out;
}

std::vector<std::string> tokens(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string t;
  while (in >> t) out.push_back(t);
  return out;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<int64_t> parse_int(const std::string& s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> parse_double(const std::string& s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// nccl-tests binary stem -> FORMAT.md collective kind; "" for tests trainsim does not model.
std::optional<std::string> kind_of_test(const std::string& stem) {
  static const std::map<std::string, std::string> kKinds = {
      {"all_reduce", "all-reduce"},         {"all_gather", "all-gather"},
      {"reduce_scatter", "reduce-scatter"}, {"alltoall", "all-to-all"},
      {"sendrecv", "send-recv"},            {"broadcast", "broadcast"},
      {"reduce", ""},                       {"gather", ""},
      {"scatter", ""},                      {"hypercube", ""}};
  auto it = kKinds.find(stem);
  if (it == kKinds.end()) return std::nullopt;
  return it->second;
}

// nccl-tests type name -> FORMAT.md dtype; "" for types trainsim does not model.
std::string nccl_dtype(const std::string& t) {
  if (t == "float" || t == "float32") return "fp32";
  if (t == "half" || t == "float16") return "fp16";
  if (t == "bfloat16") return "bf16";
  if (t == "f8e4m3" || t == "f8e5m2" || t == "fp8_e4m3" || t == "fp8_e5m2") return "fp8";
  return "";
}

// 21805 -> "2.18.5"; old NCCL encodes 2708 -> "2.7.8".
std::string nccl_code_to_version(int64_t v) {
  if (v >= 10000) {
    return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
           std::to_string(v % 100);
  }
  return std::to_string(v / 1000) + "." + std::to_string(v / 100 % 10) + "." +
         std::to_string(v % 100);
}

struct Columns {
  int n = 0;  // tokens in a data row
  int size = -1, count = -1, type = -1;
  int time[2] = {-1, -1}, algbw[2] = {-1, -1}, busbw[2] = {-1, -1}, wrong[2] = {-1, -1};
  int header_line = 0;
};

// Header tokens, e.g. size count type redop root time algbw busbw #wrong time algbw busbw #wrong.
std::optional<Columns> parse_header(const std::vector<std::string>& t, int line_no) {
  Columns c;
  c.n = static_cast<int>(t.size());
  c.header_line = line_no;
  for (int i = 0; i < c.n; ++i) {
    const std::string& s = t[i];
    auto put = [&](int (&slot)[2]) {
      if (slot[0] < 0) slot[0] = i;
      else if (slot[1] < 0) slot[1] = i;
    };
    if (s == "size") c.size = i;
    else if (s == "count") c.count = i;
    else if (s == "type") c.type = i;
    else if (s == "time") put(c.time);
    else if (s == "algbw") put(c.algbw);
    else if (s == "busbw") put(c.busbw);
    else if (s == "#wrong" || s == "error" || s == "wrong") put(c.wrong);
  }
  if (c.size != 0 || c.count < 0 || c.type < 0 || c.time[0] < 0) return std::nullopt;
  // Each timing group reads "time algbw busbw" in that order.
  for (int g = 0; g < 2; ++g) {
    if (c.time[g] < 0) continue;
    if (c.algbw[g] != c.time[g] + 1 || c.busbw[g] != c.time[g] + 2) return std::nullopt;
  }
  return c;
}

}  // namespace

Result<std::vector<std::string>> import_nccl_tests_log(const std::string& text,
                                                       const std::string& label,
                                                       const ImportDeviceHint& hint,
                                                       const NcclImportOptions& opts,
                                                       NcclImportStats* stats_out) {
  auto err = [&](int line_no, std::string value, std::string message) {
    return Status::error(
        Error{label, line_no > 0 ? "line " + std::to_string(line_no) : "", std::move(value),
              std::move(message)});
  };

  static const std::regex kMpiPrefix(R"(^\[\d+,\d+\]<std(out|err)>:)");
  static const std::regex kRank(
      R"(Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?Pid\s+\d+\s+on\s+(\S+)\s+device\s+\d+\s+\[[^\]]*\]\s+(.*\S))");
  static const std::regex kTestName(R"((?:^|[\s/])([a-z_]+)_perf(?:_mpi)?(?=\s|$))");
  static const std::regex kStarting(R"(Collective test starting:\s*([a-z_]+)_perf)");
  static const std::regex kNcclVersion(R"(NCCL version (\d+\.\d+\.\d+)(?:\+cuda(\d+\.\d+))?)");
  static const std::regex kNcclLibrary(R"(nccl-library=(\d+))");
  static const std::regex kNThread(R"(nThread\s+(\d+)\s+nGpus\s+(\d+))");
  static const std::regex kIters(R"((?:^|\s)(warmup\s+|agg\s+)?iters:\s*(\d+))");

  std::string cmd_test, start_test, nccl_version, nccl_cuda, nccl_library;
  int cmd_test_line = 0, start_test_line = 0;
  int n_thread = 0, n_gpus = 0, iters = 0;
  std::map<int64_t, std::string> host_of_rank;   // ordered: rank 0 first
  std::string device_name;
  std::optional<Columns> cols;

  struct Row {
    int64_t bytes;
    std::string dtype;
    double time_us, algbw, busbw;
  };
  std::vector<Row> rows;
  NcclImportStats st;

  const auto lines = split_lines(text);
  const int pick = opts.in_place ? 1 : 0;
  for (size_t li = 0; li < lines.size(); ++li) {
    const int line_no = static_cast<int>(li) + 1;
    std::string line = std::regex_replace(lines[li], kMpiPrefix, "", std::regex_constants::format_first_only);
    std::smatch m;
    // A matched run of digits as a number no larger than `hi` (false: it is larger).
    auto num = [](const std::string& digits, int64_t hi, int64_t* out) {
      int64_t v = 0;
      const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
      if (r.ec != std::errc() || r.ptr != digits.data() + digits.size() || v > hi) return false;
      *out = v;
      return true;
    };
    int64_t a = 0, b = 0;
    constexpr int64_t kIntMax = 1 << 30;
    if (std::regex_search(line, m, kNcclVersion) && nccl_version.empty()) {
      nccl_version = m[1];
      nccl_cuda = m[2];
    }
    if (std::regex_search(line, m, kNcclLibrary) && nccl_library.empty()) {
      if (!num(m[1], kIntMax, &a)) return err(line_no, m[1], "nccl-library code out of range");
      nccl_library = nccl_code_to_version(a);
    }
    if (std::regex_search(line, m, kStarting)) {
      if (start_test.empty()) { start_test = m[1]; start_test_line = line_no; }
      continue;
    }
    if (std::regex_search(line, m, kNThread)) {
      if (n_thread == 0) {
        if (!num(m[1], kIntMax, &a) || !num(m[2], kIntMax, &b))
          return err(line_no, m[0], "nThread / nGpus out of range (at most " + std::to_string(kIntMax) + ")");
        n_thread = static_cast<int>(a);
        n_gpus = static_cast<int>(b);
        // "warmup iters: 5 iters: 20 agg iters: 1": the plain one counts the timed runs.
        for (std::sregex_iterator it(line.begin(), line.end(), kIters), end; it != end; ++it) {
          if ((*it)[1].length() == 0) {
            if (!num((*it)[2], kIntMax, &a)) return err(line_no, (*it)[2], "iters out of range");
            iters = static_cast<int>(a);
            break;
          }
        }
      }
      continue;
    }
    if (std::regex_search(line, m, kRank)) {
      if (!num(m[1], kIntMax, &a)) return err(line_no, m[1], "rank out of range");
      const int64_t rank = a;
      if (!host_of_rank.count(rank)) host_of_rank[rank] = m[2];
      if (device_name.empty()) device_name = m[3];
      continue;
    }
    auto t = tokens(line);
    if (t.empty()) continue;
    const std::string shown = line.substr(line.find_first_not_of(" \t"));   // for errors
    // Leading '#' is either its own token ("#  size") or glued to the first word ("#size").
    const bool hashed = t[0][0] == '#';
    if (hashed) {
      if (t[0] == "#") t.erase(t.begin());
      else t[0] = t[0].substr(1);
      if (t.empty()) continue;
    }
    if (t[0] == "size" && t.size() > 1 && t[1] == "count") {
      cols = parse_header(t, line_no);
      if (!cols) {
        return err(line_no, "", "table header lacks one of the columns size, count, type, time, "
                                "algbw, busbw; expected e.g. \"#  size  count  type  redop  root  "
                                "time  algbw  busbw #wrong  time  algbw  busbw #wrong\"");
      }
      if (opts.in_place && cols->time[1] < 0) {
        return err(line_no, "", "in-place requested but the table has only one time column");
      }
      continue;
    }
    if (hashed) continue;  // "(B) (elements) ...", "out-of-place in-place", summaries, comments
    if (cmd_test.empty() && std::regex_search(line, m, kTestName)) {
      cmd_test = m[1];
      cmd_test_line = line_no;
      continue;
    }
    if (!cols || !all_digits(t[0])) continue;  // NCCL INFO lines, launcher noise
    // A data row.
    ++st.rows;
    if (static_cast<int>(t.size()) != cols->n) {
      return err(line_no, shown,
                 "expected a data row of " + std::to_string(cols->n) +
                     " columns as in the header at line " + std::to_string(cols->header_line) +
                     ", found " + std::to_string(t.size()));
    }
    auto size = parse_int(t[cols->size]);
    auto count = parse_int(t[cols->count]);
    if (!size || !count || *size < 0) {
      return err(line_no, shown, "expected integer size (B) and count (elements)");
    }
    const std::string& ts = t[cols->time[pick]];
    const std::string& as = t[cols->algbw[pick]];
    const std::string& bs = t[cols->busbw[pick]];
    if (ts == "N/A") { ++st.skipped_na; continue; }
    auto time = parse_double(ts);
    auto algbw = parse_double(as);
    auto busbw = parse_double(bs);
    if (!time || !algbw || !busbw || *time < 0) {
      return err(line_no, shown,
                 "expected numbers in the time (us), algbw and busbw (GB/s) columns, found \"" +
                     ts + "\", \"" + as + "\", \"" + bs + "\"");
    }
    if (cols->wrong[pick] >= 0) {
      const std::string& ws = t[cols->wrong[pick]];
      if (ws != "N/A") {
        auto wrong = parse_double(ws);  // old logs print an error magnitude like 0e+00
        if (!wrong) return err(line_no, shown, "expected a number or N/A in the #wrong column, found \"" + ws + "\"");
        if (*wrong > 0) { ++st.skipped_wrong; continue; }
      }
    }
    const std::string dt = nccl_dtype(t[cols->type]);
    if (dt.empty()) { ++st.skipped_dtype; continue; }
    if (*size == 0) { ++st.skipped_na; continue; }   // 0-byte rows carry no bandwidth point
    rows.push_back({*size, dt, *time, *algbw, *busbw});
  }

  // Which collective: command echo, then the test banner, then the hint.
  std::string stem, kind;
  int stem_line = 0;
  if (!cmd_test.empty()) { stem = cmd_test; stem_line = cmd_test_line; }
  else if (!start_test.empty()) { stem = start_test; stem_line = start_test_line; }
  if (!stem.empty()) {
    auto k = kind_of_test(stem);
    if (!k) return err(stem_line, stem + "_perf", "unknown nccl-tests binary");
    if (k->empty()) {
      return err(stem_line, stem + "_perf",
                 "trainsim does not model this collective; import all_reduce_perf, "
                 "all_gather_perf, reduce_scatter_perf, alltoall_perf, sendrecv_perf or "
                 "broadcast_perf logs");
    }
    kind = *k;
  } else if (!hint.kind.empty()) {
    static const std::set<std::string> kNames = {"all-reduce", "all-gather", "reduce-scatter",
                                                 "all-to-all", "broadcast", "send-recv"};
    if (kNames.count(hint.kind)) {
      kind = hint.kind;
    } else {
      std::string h = hint.kind;
      for (const char* suf : {"_perf_mpi", "_perf"}) {
        const std::string s(suf);
        if (h.size() > s.size() && h.compare(h.size() - s.size(), s.size(), s) == 0) {
          h.resize(h.size() - s.size());
          break;
        }
      }
      auto k = kind_of_test(h);
      if (!k || k->empty()) {
        return err(0, hint.kind,
                   "unknown collective kind; use all-reduce, all-gather, reduce-scatter, "
                   "all-to-all, broadcast or send-recv");
      }
      kind = *k;
    }
  } else {
    return err(0, "",
               "the log names no nccl-tests binary (no command line echo, no \"# Collective test "
               "starting\" line); pass the collective kind (e.g. all-reduce)");
  }
  if (!cols) {
    return err(0, "",
               "no nccl-tests table found; expected a header line \"#  size  count  type ... "
               "time  algbw  busbw ...\" followed by data rows");
  }

  // Group shape.
  int group_size = static_cast<int>(host_of_rank.size());
  if (group_size == 0) group_size = std::max(1, n_thread) * std::max(1, n_gpus);
  std::map<std::string, int> per_host;
  std::vector<std::string> host_order;
  for (const auto& [rank, host] : host_of_rank) {
    if (per_host[host]++ == 0) host_order.push_back(host);
  }
  const int nodes = std::max<int>(1, static_cast<int>(per_host.size()));
  int per_node = group_size;
  if (!per_host.empty()) {
    per_node = 0;
    for (const auto& [h, n] : per_host) per_node = std::max(per_node, n);
  }

  std::string host = hint.host;
  if (host.empty()) {
    for (size_t i = 0; i < host_order.size(); ++i) host += (i ? "," : "") + host_order[i];
  }
  std::string cuda = hint.cuda.empty() ? nccl_cuda : hint.cuda;
  OJson device = {{"name", device_name.empty() ? hint.device_name : device_name},
                  {"driver", hint.driver},
                  {"cuda", cuda},
                  {"nccl", nccl_version.empty() ? nccl_library : nccl_version},
                  {"cudnn", ""},
                  {"host", host},
                  {"date", hint.date},
                  {"gpus", per_node}};
  const std::string source = "nccl-tests " + (stem.empty() ? kind : stem + "_perf") + " " + label +
                             (opts.in_place ? " in-place" : "");

  std::vector<std::string> out;
  out.reserve(rows.size());
  for (const auto& r : rows) {
    OJson j = {{"kind", "collective"},
               {"device", device},
               {"coll",
                {{"kind", kind},
                 {"dtype", r.dtype},
                 {"bytes", r.bytes},
                 {"group_size", group_size},
                 {"per_node", per_node},
                 {"nodes", nodes}}},
               {"time_us", r.time_us},
               {"algbw_GBps", r.algbw},
               {"busbw_GBps", r.busbw},
               {"runs", iters},
               {"source", source}};
    out.push_back(j.dump());
  }
  st.imported = static_cast<int>(out.size());
  if (stats_out) *stats_out = st;
  return out;
}

}  // namespace trainsim
