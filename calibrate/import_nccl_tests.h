// File: calibrate/import_nccl_tests.h
// Imports the text output of NVIDIA nccl-tests (all_reduce_perf, all_gather_perf,
// reduce_scatter_perf, alltoall_perf, sendrecv_perf, broadcast_perf) into measurement lines
// (calibrate/FORMAT.md section 2, kind "collective"), one per data row.
//
//   auto lines = import_nccl_tests_log(text, "logs/ar_8gpu.txt", ImportDeviceHint{});
//   if (!lines.ok()) return lines.status();        // names the label, line and what was expected
//   db->import_lines(*lines, "logs/ar_8gpu.txt");
//
// What is read from the log:
//   - the collective: the binary name where the log echoes the command line
//     ("mpirun ... ./build/all_reduce_perf -b 8 ..."), else "# Collective test starting: X",
//     else ImportDeviceHint::kind ("all-reduce" or "all_reduce_perf");
//   - group_size: the number of distinct "#  Rank N" lines (nccl-tests prints one per GPU,
//     i.e. processes x nThread x nGpus lines); without rank lines, nThread x nGpus;
//   - nodes: distinct hostnames of the rank lines; per_node: the most ranks on one host;
//   - device name: the rank lines ("... [0x1b] NVIDIA H100 80GB HBM3"); NCCL version from
//     "NCCL version 2.18.5+cuda12.2" (its "+cudaX.Y" gives the CUDA version when the hint has
//     none) or from "nccl-library=21805"; runs from "iters: 20" of the first header line;
//   - the table: columns found from the "size count type ..." header line, so logs of old
//     nccl-tests (no "root" column, "error" instead of "#wrong") and of tests without redop/root
//     columns read alike. Out-of-place time, algbw and busbw by default; in-place on request.
// Lines that are not part of the format (NCCL INFO lines, mpirun noise) are ignored; the
// "[1,0]<stdout>:" prefix of Open MPI's --tag-output is stripped.
// Rows that are skipped (counted in NcclImportStats): rows with #wrong > 0 (results failed
// validation), rows of a data type trainsim does not model (int8, double, ...; bf16, fp16,
// fp8 and fp32 are kept), and rows whose chosen time is "N/A" (in-place of some tests).
// Errors: a malformed data row or header, no table, an unknown collective; each names the
// label, the 1-based line number and what was expected.
// Thread-safety: pure functions.
#pragma once
#include <string>
#include <vector>

#include "sim/status.h"

namespace trainsim {

// Device fields the user knows better than the log or trace; "" means "take it from the input,
// else leave it ''". Precedence: device_name: the input wins (rank lines, deviceProperties);
// cuda, host: the hint wins (nccl-tests' "+cuda12.2" is NCCL's build, not the runtime; a
// multi-node log gives its hosts joined by ","); driver: logs and traces never say which;
// date: the hint wins, a trace's baseTimeNanoseconds otherwise.
struct ImportDeviceHint {
  std::string device_name, driver, cuda, host, date;
  std::string kind;   // collective when the log does not say: "all-reduce" or "all_reduce_perf"
};

struct NcclImportOptions {
  bool in_place = false;   // take the in-place time/algbw/busbw columns instead of out-of-place
};

struct NcclImportStats {
  int rows = 0;               // data rows seen
  int imported = 0;           // lines produced
  int skipped_wrong = 0;      // #wrong > 0
  int skipped_dtype = 0;      // type not bf16/fp16/fp8/fp32
  int skipped_na = 0;         // chosen time reported as N/A
};

Result<std::vector<std::string>> import_nccl_tests_log(const std::string& text,
                                                       const std::string& label,
                                                       const ImportDeviceHint& hint,
                                                       const NcclImportOptions& opts = {},
                                                       NcclImportStats* stats = nullptr);

}  // namespace trainsim
