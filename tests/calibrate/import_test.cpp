// Importers of nccl-tests logs and torch.profiler traces, on hand-written fixtures in the
// published formats (tests/calibrate/data/).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "calibrate/import_nccl_tests.h"
#include "calibrate/import_torch_trace.h"

namespace trainsim {
namespace {

using nlohmann::json;

std::string read_fixture(const std::string& name) {
  const std::string path = std::string(TRAINSIM_SOURCE_DIR) + "/tests/calibrate/data/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::set<std::string> keys_of(const json& j) {
  std::set<std::string> k;
  for (auto it = j.begin(); it != j.end(); ++it) k.insert(it.key());
  return k;
}

const std::set<std::string> kDeviceKeys = {"name", "driver", "cuda", "nccl", "cudnn", "host", "date", "gpus"};

// FORMAT.md section 2: every line a JSON object with exactly these keys.
void expect_format(const std::vector<std::string>& lines) {
  for (const auto& l : lines) {
    json j = json::parse(l, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << l;
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(keys_of(j["device"]), kDeviceKeys) << l;
    EXPECT_TRUE(j["device"]["gpus"].is_number_integer());
    EXPECT_TRUE(j["runs"].is_number_integer());
    EXPECT_TRUE(j["time_us"].is_number());
    EXPECT_GT(j["time_us"].get<double>(), 0.0);
    if (j["kind"] == "collective") {
      EXPECT_EQ(keys_of(j), (std::set<std::string>{"kind", "device", "coll", "time_us", "algbw_GBps",
                                                   "busbw_GBps", "runs", "source"}));
      EXPECT_EQ(keys_of(j["coll"]), (std::set<std::string>{"kind", "dtype", "bytes", "group_size",
                                                           "per_node", "nodes"}));
      EXPECT_TRUE(j["coll"]["bytes"].is_number_integer());
    } else {
      ASSERT_EQ(j["kind"], "op") << l;
      EXPECT_EQ(keys_of(j), (std::set<std::string>{"kind", "device", "op", "time_us", "min_us",
                                                   "runs", "source"}));
      const std::string cls = j["op"]["class"];
      std::set<std::string> want;
      if (cls == "gemm") want = {"class", "dtype", "m", "n", "k", "batch"};
      else if (cls == "attention")
        want = {"class", "dtype", "batch", "heads", "kv_heads", "seq_q", "seq_kv", "head_dim",
                "causal", "backward"};
      else want = {"class", "name", "bytes"};
      EXPECT_EQ(keys_of(j["op"]), want) << l;
    }
  }
}

std::vector<json> parse_all(const std::vector<std::string>& lines) {
  std::vector<json> out;
  for (const auto& l : lines) out.push_back(json::parse(l));
  return out;
}

// ---------------------------------------------------------------- nccl-tests

TEST(ImportNcclTests, AllReduce8GpusOneNode) {
  const std::string text = read_fixture("all_reduce_perf_8xh100.txt");
  NcclImportStats st;
  auto r = import_nccl_tests_log(text, "ar.txt", {}, {}, &st);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // 8 B .. 8 GiB doubling: 2^3 .. 2^33 = 31 rows.
  ASSERT_EQ(r->size(), 31u);
  EXPECT_EQ(st.rows, 31);
  EXPECT_EQ(st.imported, 31);
  expect_format(r.value());
  auto lines = parse_all(r.value());

  // Oracle: the log's own data rows, read column by column (out-of-place: time col 5, busbw col 7).
  std::vector<std::vector<std::string>> rows;
  for (const auto& l : split(text)) {
    auto w = words(l);
    if (!w.empty() && w[0][0] >= '0' && w[0][0] <= '9') rows.push_back(w);
  }
  ASSERT_EQ(rows.size(), 31u);
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& j = lines[i];
    EXPECT_EQ(j["coll"]["bytes"].get<int64_t>(), std::stoll(rows[i][0]));
    EXPECT_EQ(j["coll"]["bytes"].get<int64_t>(), int64_t{8} << i);   // doubling from 8 B
    EXPECT_EQ(j["time_us"].get<double>(), std::stod(rows[i][5]));
    EXPECT_EQ(j["algbw_GBps"].get<double>(), std::stod(rows[i][6]));
    EXPECT_EQ(j["busbw_GBps"].get<double>(), std::stod(rows[i][7]));
  }
  const json& big = lines[27];   // 1 GiB
  EXPECT_EQ(big["coll"]["bytes"], 1073741824);
  EXPECT_DOUBLE_EQ(big["time_us"].get<double>(), 3873.30);
  EXPECT_DOUBLE_EQ(big["busbw_GBps"].get<double>(), 485.13);
  // busbw = algbw * 2(p-1)/p for p = 8, to the log's 2 decimals.
  EXPECT_NEAR(big["busbw_GBps"].get<double>(), big["algbw_GBps"].get<double>() * 2 * 7 / 8, 0.01);
  EXPECT_EQ(lines[30]["time_us"].get<double>(), 31801.0);   // "%7.0f" above 10 ms

  for (const auto& j : lines) {
    EXPECT_EQ(j["coll"]["kind"], "all-reduce");
    EXPECT_EQ(j["coll"]["dtype"], "fp32");
    // mpirun -np 8 -g 1: nGpus is 1, the 8 rank lines give the group.
    EXPECT_EQ(j["coll"]["group_size"], 8);
    EXPECT_EQ(j["coll"]["per_node"], 8);
    EXPECT_EQ(j["coll"]["nodes"], 1);
    EXPECT_EQ(j["device"]["name"], "NVIDIA H100 80GB HBM3");
    EXPECT_EQ(j["device"]["nccl"], "2.18.5");
    EXPECT_EQ(j["device"]["cuda"], "12.2");
    EXPECT_EQ(j["device"]["host"], "node-017");
    EXPECT_EQ(j["device"]["gpus"], 8);
    EXPECT_EQ(j["runs"], 20);
    EXPECT_EQ(j["source"], "nccl-tests all_reduce_perf ar.txt");
  }
}

TEST(ImportNcclTests, InPlaceOnRequest) {
  auto r = import_nccl_tests_log(read_fixture("all_reduce_perf_8xh100.txt"), "ar.txt", {},
                                 NcclImportOptions{.in_place = true});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto j = json::parse(r->front());
  EXPECT_DOUBLE_EQ(j["time_us"].get<double>(), 11.64);   // in-place column of the 8 B row
  EXPECT_DOUBLE_EQ(json::parse((r.value())[27])["busbw_GBps"].get<double>(), 478.59);
}

TEST(ImportNcclTests, AllGather16GpusTwoNodesWithMpiPrefix) {
  ImportDeviceHint hint;
  hint.driver = "550.54.15";
  hint.date = "2025-01-07T10:00:00Z";
  hint.kind = "all-reduce";   // the log's command line wins over the hint
  auto r = import_nccl_tests_log(read_fixture("all_gather_perf_2x8xh100.txt"), "ag.txt", hint);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 11u);   // 1 MiB .. 1 GiB doubling
  expect_format(r.value());
  auto lines = parse_all(r.value());
  for (const auto& j : lines) {
    EXPECT_EQ(j["coll"]["kind"], "all-gather");
    EXPECT_EQ(j["coll"]["dtype"], "bf16");
    // 2 processes x nGpus 8: 16 rank lines on 2 hosts.
    EXPECT_EQ(j["coll"]["group_size"], 16);
    EXPECT_EQ(j["coll"]["per_node"], 8);
    EXPECT_EQ(j["coll"]["nodes"], 2);
    EXPECT_EQ(j["device"]["host"], "gpu-a07,gpu-a08");
    EXPECT_EQ(j["device"]["nccl"], "2.19.3");   // from the NCCL INFO line
    EXPECT_EQ(j["device"]["cuda"], "12.3");
    EXPECT_EQ(j["device"]["driver"], "550.54.15");
    EXPECT_EQ(j["device"]["date"], "2025-01-07T10:00:00Z");
  }
  // Bytes follow nccl-tests: all-gather size is the output buffer (count per rank x 16 x 2 B).
  EXPECT_EQ(lines[0]["coll"]["bytes"], 1048576);
  EXPECT_DOUBLE_EQ(lines[0]["time_us"].get<double>(), 49.56);
  EXPECT_DOUBLE_EQ(lines[0]["busbw_GBps"].get<double>(), 19.84);
  EXPECT_DOUBLE_EQ(lines[10]["time_us"].get<double>(), 11275.0);
  // busbw = algbw * (p-1)/p with p = 16.
  EXPECT_NEAR(lines[10]["busbw_GBps"].get<double>(), lines[10]["algbw_GBps"].get<double>() * 15 / 16,
              0.01);
}

TEST(ImportNcclTests, SendRecvOldFormatWithoutRedopRootNeedsKindFromHint) {
  const std::string text = read_fixture("sendrecv_perf_8xa100_old.txt");
  // The log names no binary: without a hint it is an error that says what to pass.
  auto bad = import_nccl_tests_log(text, "sr.txt", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().to_string().find("sr.txt"), std::string::npos);
  EXPECT_NE(bad.status().to_string().find("collective kind"), std::string::npos);

  ImportDeviceHint hint;
  hint.kind = "sendrecv_perf";
  hint.cuda = "12.1";
  auto r = import_nccl_tests_log(text, "sr.txt", hint);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 11u);   // 1 KiB .. 1 GiB, factor 4
  expect_format(r.value());
  auto lines = parse_all(r.value());
  EXPECT_EQ(lines[0]["coll"]["kind"], "send-recv");
  EXPECT_EQ(lines[0]["coll"]["group_size"], 8);
  EXPECT_EQ(lines[0]["coll"]["nodes"], 1);
  EXPECT_EQ(lines[0]["device"]["name"], "NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(lines[0]["device"]["nccl"], "");
  EXPECT_EQ(lines[0]["device"]["cuda"], "12.1");
  EXPECT_EQ(lines[0]["coll"]["bytes"], 1024);
  EXPECT_DOUBLE_EQ(lines[0]["time_us"].get<double>(), 7.10);
  EXPECT_DOUBLE_EQ(lines[10]["time_us"].get<double>(), 4592.63);
  EXPECT_DOUBLE_EQ(lines[10]["busbw_GBps"].get<double>(), 233.80);
  // send-recv: busbw = algbw.
  for (const auto& j : lines) EXPECT_EQ(j["busbw_GBps"], j["algbw_GBps"]);
}

// Replace the line of `text` that starts with `prefix` (after spaces) by `repl`; returns its
// 1-based number.
int replace_row(std::string& text, const std::string& prefix, const std::string& repl) {
  auto ls = split(text);
  int at = 0;
  for (size_t i = 0; i < ls.size(); ++i) {
    auto w = words(ls[i]);
    if (!w.empty() && w[0] == prefix) {
      ls[i] = repl;
      at = static_cast<int>(i) + 1;
      break;
    }
  }
  text.clear();
  for (const auto& l : ls) text += l + "\n";
  return at;
}

TEST(ImportNcclTests, MalformedRowsNameTheLine) {
  const std::string good = read_fixture("all_reduce_perf_8xh100.txt");
  {
    std::string t = good;
    const int at = replace_row(t, "4096", "        4096          1024     float     sum      -1    11.85    0.35");
    ASSERT_GT(at, 0);
    auto r = import_nccl_tests_log(t, "ar.txt", {});
    ASSERT_FALSE(r.ok());
    const std::string msg = r.status().to_string();
    EXPECT_NE(msg.find("ar.txt: line " + std::to_string(at)), std::string::npos) << msg;
    EXPECT_NE(msg.find("13 columns"), std::string::npos) << msg;
  }
  {
    std::string t = good;
    const int at = replace_row(t, "8192",
        "        8192          2048     float     sum      -1    12.x6    0.68    1.19      0    11.62    0.71    1.23      0");
    auto r = import_nccl_tests_log(t, "ar.txt", {});
    ASSERT_FALSE(r.ok());
    const std::string msg = r.status().to_string();
    EXPECT_NE(msg.find("line " + std::to_string(at)), std::string::npos) << msg;
    EXPECT_NE(msg.find("12.x6"), std::string::npos) << msg;
  }
  {   // No table at all.
    auto r = import_nccl_tests_log("# nThread 1 nGpus 8 minBytes 8\n# Collective test starting: all_reduce_perf\n",
                                   "empty.txt", {});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().to_string().find("no nccl-tests table"), std::string::npos);
  }
  {   // A collective trainsim does not model.
    std::string t = good;
    auto pos = t.find("Collective test starting: all_reduce_perf");
    t.replace(pos, std::string("Collective test starting: all_reduce_perf").size(),
              "Collective test starting: reduce_perf");
    pos = t.find("./build/all_reduce_perf");
    t.replace(pos, std::string("./build/all_reduce_perf").size(), "./build/reduce_perf");
    auto r = import_nccl_tests_log(t, "red.txt", {});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().to_string().find("red.txt: line 1 = reduce_perf"), std::string::npos)
        << r.status().to_string();
  }
  {   // Numbers too large for their field are errors naming the line, not a crash (std::stoi threw).
    std::string t = good;
    auto pos = t.find("nThread");
    ASSERT_NE(pos, std::string::npos);
    t.insert(pos, "nThread 1 nGpus 99999999999999999999 ");
    const int at = 1 + static_cast<int>(std::count(t.begin(), t.begin() + pos, '\n'));
    auto r = import_nccl_tests_log(t, "ar.txt", {});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().to_string().find("ar.txt: line " + std::to_string(at)), std::string::npos)
        << r.status().to_string();
    EXPECT_NE(r.status().to_string().find("out of range"), std::string::npos) << r.status().to_string();
  }
  {   // A header without busbw.
    std::string t = good;
    auto pos = t.find("busbw #wrong     time");
    t.replace(pos, 5, "bus_w");
    const int at = 1 + static_cast<int>(std::count(t.begin(), t.begin() + pos, '\n'));
    auto r = import_nccl_tests_log(t, "ar.txt", {});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().to_string().find("line " + std::to_string(at)), std::string::npos)
        << r.status().to_string();
  }
}

TEST(ImportNcclTests, SkipsRowsThatFailedValidation) {
  std::string t = read_fixture("all_reduce_perf_8xh100.txt");
  replace_row(t, "1024",
              "        1024           256     float     sum      -1    11.63    0.09    0.15      3    11.67    0.09    0.15      0");
  NcclImportStats st;
  auto r = import_nccl_tests_log(t, "ar.txt", {}, {}, &st);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->size(), 30u);
  EXPECT_EQ(st.rows, 31);
  EXPECT_EQ(st.skipped_wrong, 1);
}

// ---------------------------------------------------------------- torch.profiler

json find_op(const std::vector<json>& lines, const std::string& cls, bool backward = false) {
  for (const auto& j : lines) {
    if (j["kind"] == "op" && j["op"]["class"] == cls &&
        (cls != "attention" || j["op"]["backward"] == backward))
      return j;
  }
  return json();
}

TEST(ImportTorchTrace, LlamaBlockFixture) {
  ImportDeviceHint hint;
  hint.host = "node-017";
  hint.driver = "550.54.15";
  TraceImportStats st;
  auto r = import_torch_trace(read_fixture("torch_trace_llama_block.json"), "rank0.json", hint, &st);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // 14 kernels: 3 GEMM (2 instances of one shape), flash fwd, flash bwd (2 kernels), layer norm,
  // silu, mul, fused AdamW, all-reduce with record_param_comms; skipped: softmax (unknown
  // class), an all-gather without size and a graph-replayed GEMM without a launch (no shape).
  EXPECT_EQ(st.kernels, 14);
  EXPECT_EQ(st.mapped, 11);
  EXPECT_EQ(st.skipped_unknown, 1);
  EXPECT_EQ(st.skipped_no_shape, 2);
  EXPECT_EQ(st.comm_no_size, 1);
  ASSERT_EQ(r->size(), 9u);
  expect_format(r.value());
  auto lines = parse_all(r.value());

  for (const auto& j : lines) {
    EXPECT_EQ(j["source"], "torch.profiler rank0.json");
    EXPECT_EQ(j["device"]["name"], "NVIDIA H100 80GB HBM3");
    EXPECT_EQ(j["device"]["cuda"], "12.4");
    EXPECT_EQ(j["device"]["nccl"], "2.20.5");
    EXPECT_EQ(j["device"]["host"], "node-017");
    EXPECT_EQ(j["device"]["driver"], "550.54.15");
    EXPECT_EQ(j["device"]["date"], "2024-06-10T06:13:20Z");   // baseTimeNanoseconds
    EXPECT_EQ(j["device"]["gpus"], 8);
  }

  // QKV projection: linear([4, 2048, 4096], [6144, 4096]) -> m = 4*2048, n = 6144, k = 4096;
  // two layers merge into one line: median of two = their mean.
  const json& qkv = lines[1];
  ASSERT_EQ(qkv["op"]["class"], "gemm");
  EXPECT_EQ(qkv["op"], json::parse(R"({"class":"gemm","dtype":"bf16","m":8192,"n":6144,"k":4096,"batch":1})"));
  EXPECT_EQ(qkv["runs"], 2);
  EXPECT_DOUBLE_EQ(qkv["time_us"].get<double>(), (297.312 + 301.088) / 2);
  EXPECT_DOUBLE_EQ(qkv["min_us"].get<double>(), 297.312);

  // Backward aten::mm [8192, 4096] x [4096, 4096] (nvjet kernel).
  bool found_bwd_gemm = false;
  for (const auto& j : lines) {
    if (j["kind"] == "op" && j["op"]["class"] == "gemm" && j["op"]["n"] == 4096) {
      found_bwd_gemm = true;
      EXPECT_EQ(j["op"]["m"], 8192);
      EXPECT_EQ(j["op"]["k"], 4096);
      EXPECT_DOUBLE_EQ(j["time_us"].get<double>(), 203.232);
    }
  }
  EXPECT_TRUE(found_bwd_gemm);

  json fwd = find_op(lines, "attention", false);
  ASSERT_FALSE(fwd.is_null());
  EXPECT_EQ(fwd["op"], json::parse(R"({"class":"attention","dtype":"bf16","batch":4,"heads":32,
      "kv_heads":8,"seq_q":2048,"seq_kv":2048,"head_dim":128,"causal":true,"backward":false})"));
  EXPECT_DOUBLE_EQ(fwd["time_us"].get<double>(), 612.448);
  json bwd = find_op(lines, "attention", true);
  ASSERT_FALSE(bwd.is_null());
  EXPECT_EQ(bwd["op"]["causal"], true);
  EXPECT_EQ(bwd["op"]["kv_heads"], 8);
  EXPECT_EQ(bwd["runs"], 1);
  EXPECT_DOUBLE_EQ(bwd["time_us"].get<double>(), 38.112 + 1498.176);   // two kernels, one op

  // Memory-bound: bytes = 2 x sum of tensor inputs x element size.
  json norm = find_op(lines, "norm");
  // native_layer_norm(x [4,2048,4096] bf16, w [4096], b [4096]).
  EXPECT_EQ(norm["op"]["bytes"], 2 * (4 * 2048 * 4096 * 2 + 4096 * 2 + 4096 * 2));
  EXPECT_EQ(norm["op"]["name"], "aten::native_layer_norm");
  int64_t silu = 0, mul = 0;
  for (const auto& j : lines) {
    if (j["kind"] == "op" && j["op"]["class"] == "elementwise") {
      if (j["op"]["name"] == "aten::silu") silu = j["op"]["bytes"];
      if (j["op"]["name"] == "aten::mul") mul = j["op"]["bytes"];
    }
  }
  EXPECT_EQ(silu, int64_t{2} * 4 * 2048 * 14336 * 2);
  EXPECT_EQ(mul, int64_t{2} * 2 * 4 * 2048 * 14336 * 2);
  // Fused AdamW over two fp32 params ([4096,4096], [6144,4096]): params, grads, m, v lists,
  // an empty max_exp_avg_sqs and two 0-dim steps.
  json adam = find_op(lines, "optimizer");
  EXPECT_EQ(adam["op"]["bytes"], 2 * (4 * (int64_t{4096} * 4096 + 6144 * 4096) * 4 + 2 * 4));

  // All-reduce of 67108864 bf16 elements over 8 ranks: algbw = S/t, busbw = algbw * 2(p-1)/p.
  json ar;
  for (const auto& j : lines)
    if (j["kind"] == "collective") ar = j;
  ASSERT_FALSE(ar.is_null());
  EXPECT_EQ(ar["coll"], json::parse(R"({"kind":"all-reduce","dtype":"bf16","bytes":134217728,
      "group_size":8,"per_node":8,"nodes":1})"));
  EXPECT_DOUBLE_EQ(ar["time_us"].get<double>(), 412.384);
  const double algbw = 134217728.0 / 412.384e-6 / 1e9;
  EXPECT_NEAR(ar["algbw_GBps"].get<double>(), algbw, 1e-9);
  EXPECT_NEAR(ar["busbw_GBps"].get<double>(), algbw * 2 * 7 / 8, 1e-9);
}

// A minimal trace: one kernel whose launching op is aten::linear itself.
TEST(ImportTorchTrace, LinearDimsGiveMnk) {
  const std::string trace = R"({
  "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}],
  "traceEvents": [
  {"ph": "X", "cat": "cpu_op", "name": "aten::linear", "pid": 1, "tid": 1, "ts": 100.0, "dur": 20.0,
   "args": {"External id": 7, "Input Dims": [[2, 3, 5, 64], [128, 64], [128]], "Input type": ["c10::Half", "c10::Half", "c10::Half"]}},
  {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 105.0, "dur": 3.0,
   "args": {"External id": 7, "correlation": 55}},
  {"ph": "X", "cat": "kernel", "name": "ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_stages_32x5_tn", "pid": 0, "tid": 7, "ts": 130.0, "dur": 9.5,
   "args": {"device": 0, "stream": 7, "correlation": 55, "External id": 7, "grid": [1, 1, 1], "block": [128, 1, 1]}}
  ]})";
  TraceImportStats st;
  auto r = import_torch_trace(trace, "mini.json", {}, &st);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 1u);
  expect_format(r.value());
  auto j = json::parse(r->front());
  // input [2, 3, 5, 64], weight [128, 64]: m = 2*3*5 = 30, n = 128, k = 64.
  EXPECT_EQ(j["op"], json::parse(R"({"class":"gemm","dtype":"fp16","m":30,"n":128,"k":64,"batch":1})"));
  EXPECT_EQ(j["device"]["gpus"], 1);
  EXPECT_EQ(st.mapped, 1);
}

// Events whose ts or dur is not a number (no profiler writes that) are left out instead of
// aborting the import (nlohmann's value() threw a type_error); the other events still import.
TEST(ImportTorchTrace, EventsWithNonNumericTimesAreLeftOut) {
  json doc = json::parse(read_fixture("torch_trace_llama_block.json"));
  int spoiled = 0;
  for (auto& e : doc["traceEvents"])
    if (e.value("cat", "") == "kernel" && spoiled < 2) {
      if (spoiled == 0) e["dur"] = json::object();
      else e["ts"] = "x";
      ++spoiled;
    }
  ASSERT_EQ(spoiled, 2);
  TraceImportStats st;
  auto r = import_torch_trace(doc.dump(), "spoiled.json", {}, &st);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(r.value().empty());
}

TEST(ImportTorchTrace, BadInputNamesTheLabel) {
  auto r = import_torch_trace("{\"traceEvents\": [", "broken.json", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().to_string().find("broken.json"), std::string::npos);
  auto r2 = import_torch_trace(R"({"schemaVersion": 1})", "nokey.json", {});
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().to_string().find("nokey.json: /traceEvents"), std::string::npos)
      << r2.status().to_string();
}

}  // namespace
}  // namespace trainsim
