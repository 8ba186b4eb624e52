// File: calibrate/cuda/main.cpp
// trainsim_calibrator: reads a job list (calibrate/FORMAT.md section 1), measures each op and
// collective on this machine's GPUs, and writes one measurement JSON line per point (section 2).
//
//   trainsim_calibrator --jobs JOBS.json [--out FILE.jsonl] [--device N] [--gpus N] [--no-cupti]
//   trainsim_calibrator --self-test --jobs JOBS.json     # parse only; needs no GPU
//   mpirun -np N trainsim_calibrator --mpi --jobs JOBS.json [--out FILE.jsonl] [--no-cupti]
//   mpirun -np N trainsim_calibrator --mpi --self-test --jobs JOBS.json   # MPI layout; no GPU
//   trainsim_calibrator --check-attention [--device N]   # cuDNN SDPA vs own kernels
//   trainsim_calibrator --version
//
// Exit codes: 0 done (skipped jobs are reported on stderr as "skip: PATH: why"); 1 a CUDA or
// library call failed (--check-attention: a case over tolerance); 2 bad arguments or job list;
// 3 no CUDA device.
//
// --mpi (built with TRAINSIM_HAVE_MPI): one process per GPU under mpirun; each takes GPU
// (node-local rank mod visible GPUs). World rank 0 reads the job list (it is broadcast, so it
// need not exist on the other nodes), measures the ops while the others wait, and writes every
// line; collectives run across world ranks 0..group_size-1 (collectives.cpp, mpi_world.h).
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <cuda_runtime.h>

#include "calibrator.h"
#include "check.h"
#include "device_info.h"
#include "job_file.h"

#ifdef TRAINSIM_HAVE_CUDNN
#include <cudnn.h>
#endif
#ifdef TRAINSIM_HAVE_NCCL
#include <nccl.h>
#endif
#ifdef TRAINSIM_HAVE_MPI
#include <mpi.h>

#include "mpi_world.h"
#endif

namespace {

constexpr const char* kVersion = "0.1.0";

// The libraries built in (device_info.cpp), and whether this program has the --mpi path.
std::string built_with() {
#ifdef TRAINSIM_HAVE_MPI
  return tscal::built_with() + ", mpi (--mpi: collectives across nodes)";
#else
  return tscal::built_with() + ", no mpi (no --mpi)";
#endif
}

int usage(const char* msg) {
  if (msg) std::fprintf(stderr, "error: %s\n", msg);
  std::fprintf(stderr,
               "usage: trainsim_calibrator --jobs JOBS.json [--out FILE.jsonl] [--device N] [--gpus N] [--no-cupti]\n"
               "       trainsim_calibrator --self-test --jobs JOBS.json\n"
               "       mpirun -np N trainsim_calibrator --mpi --jobs JOBS.json [--out FILE.jsonl] [--no-cupti]\n"
               "       mpirun -np N trainsim_calibrator --mpi --self-test --jobs JOBS.json\n"
               "       trainsim_calibrator --check-attention [--device N]\n"
               "       trainsim_calibrator --version\n");
  return 2;
}

tscal::Options options_for(const tscal::JobFile& jobs, bool cupti) {
  tscal::Options opt;
  opt.warmup = static_cast<int>(jobs.warmup);
  opt.runs = static_cast<int>(jobs.runs);
  opt.cupti = cupti;
  opt.kernel_runs = std::min(opt.runs, 20);
  return opt;
}

// Measures every op of the job list on `device` and writes its line to `out`.
void measure_ops(const tscal::JobFile& jobs, const tscal::Options& opt, int device, const std::string& dev_json,
                 FILE* out, int* measured, int* skipped) {
  for (const auto& j : jobs.ops) {
    TS_CUDA(cudaSetDevice(device));
    tscal::Timing t;
    std::string source;
    bool ok;
    if (j.cls == "gemm") ok = tscal::measure_gemm(j, opt, device, &t, &source);
    else if (j.cls == "attention") ok = tscal::measure_attention(j, opt, device, &t, &source);
    else if (j.cls == "offload") ok = tscal::measure_offload(j, opt, device, &t, &source);
    else ok = tscal::measure_memory_bound(j, opt, device, &t, &source);
    if (!ok) { ++*skipped; continue; }
    std::string kernel;
    if (t.kernel_us >= 0) {
      char b[64];
      std::snprintf(b, sizeof b, ", \"kernel_us\": %.3f", t.kernel_us);
      kernel = b;
    }
    std::fprintf(out, "{\"kind\": \"op\", \"device\": %s, \"op\": %s, \"time_us\": %.3f, \"min_us\": %.3f, \"runs\": %d%s, \"source\": \"%s\"}\n",
                 dev_json.c_str(), tscal::op_json(j).c_str(), t.median_us, t.min_us, t.runs, kernel.c_str(),
                 tscal::json_escape(source).c_str());
    std::fflush(out);
    ++*measured;
  }
}

void write_coll_line(FILE* out, const std::string& dev_json, const tscal::CollJob& j, int per_node, int nodes,
                     const tscal::CollResult& r, const std::string& source) {
  std::fprintf(out, "{\"kind\": \"collective\", \"device\": %s, \"coll\": %s, \"time_us\": %.3f, \"algbw_GBps\": %.3f, "
                    "\"busbw_GBps\": %.3f, \"runs\": %d, \"source\": \"%s\"}\n",
               dev_json.c_str(), tscal::coll_json(j, per_node, nodes).c_str(), r.time_us, r.algbw_GBps, r.busbw_GBps,
               r.runs, tscal::json_escape(source).c_str());
  std::fflush(out);
}

// --self-test: what the job list holds (the line "built with" follows).
void print_job_summary(const std::string& jobs_path, const tscal::JobFile& jobs) {
  std::map<std::string, int> ops, colls;
  for (const auto& o : jobs.ops) ++ops[o.cls];
  for (const auto& c : jobs.colls) ++colls[c.kind];
  std::printf("self-test: %s: version 1, warmup %lld, runs %lld\n", jobs_path.c_str(), (long long)jobs.warmup,
              (long long)jobs.runs);
  std::printf("ops: %zu\n", jobs.ops.size());
  for (const auto& [k, n] : ops) std::printf("  %-14s %d\n", k.c_str(), n);
  std::printf("collectives: %zu\n", jobs.colls.size());
  for (const auto& [k, n] : colls) std::printf("  %-14s %d\n", k.c_str(), n);
}

bool parse_int(const char* s, int* out) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (!s[0] || *end || v < 0 || v > 1 << 20) return false;
  *out = static_cast<int>(v);
  return true;
}

#ifdef TRAINSIM_HAVE_MPI
// Starts MPI and learns the world: rank, size, node-local rank (MPI_COMM_TYPE_SHARED split) and,
// for every rank, its host name, local rank and node leader. MPI_Init's own failure is fatal
// under MPI's default handler; from then on MPI_COMM_WORLD returns errors to TS_MPI.
tscal::MpiWorld mpi_start(int* argc, char*** argv) {
  TS_MPI(MPI_Init(argc, argv));
  TS_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  tscal::MpiWorld w;
  TS_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &w.rank));
  TS_MPI(MPI_Comm_size(MPI_COMM_WORLD, &w.size));
  MPI_Comm local = MPI_COMM_NULL;
  TS_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.rank, MPI_INFO_NULL, &local));
  TS_MPI(MPI_Comm_rank(local, &w.local_rank));
  TS_MPI(MPI_Comm_size(local, &w.local_size));
  int leader = w.rank;
  TS_MPI(MPI_Bcast(&leader, 1, MPI_INT, 0, local));
  TS_MPI(MPI_Comm_free(&local));

  char name[MPI_MAX_PROCESSOR_NAME] = {0};
  int len = 0;
  TS_MPI(MPI_Get_processor_name(name, &len));
  const size_t usize = static_cast<size_t>(w.size);
  std::vector<char> names(usize * MPI_MAX_PROCESSOR_NAME);
  TS_MPI(MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
                       MPI_COMM_WORLD));
  w.hosts.resize(usize);
  for (size_t i = 0; i < usize; ++i) {
    const char* p = names.data() + i * MPI_MAX_PROCESSOR_NAME;
    w.hosts[i] = std::string(p, strnlen(p, MPI_MAX_PROCESSOR_NAME));
  }
  w.local_ranks.resize(usize);
  w.node_leader.resize(usize);
  TS_MPI(MPI_Allgather(&w.local_rank, 1, MPI_INT, w.local_ranks.data(), 1, MPI_INT, MPI_COMM_WORLD));
  TS_MPI(MPI_Allgather(&leader, 1, MPI_INT, w.node_leader.data(), 1, MPI_INT, MPI_COMM_WORLD));
  return w;
}

// Problems with the world's layout, one line each (empty when none): the host names and the
// shared-memory nodes must group the ranks the same way (per_node/nodes come from the names),
// and on every host the node-local ranks must be 0..k-1, each once.
std::vector<std::string> mpi_layout_problems(const tscal::MpiWorld& w) {
  std::vector<std::string> p;
  std::map<std::string, std::set<int>> leaders_of_host, locals_of_host;
  std::map<std::string, int> ranks_of_host;
  std::map<int, std::set<std::string>> hosts_of_leader;
  for (int r = 0; r < w.size; ++r) {
    const std::string& h = w.hosts[static_cast<size_t>(r)];
    leaders_of_host[h].insert(w.node_leader[static_cast<size_t>(r)]);
    hosts_of_leader[w.node_leader[static_cast<size_t>(r)]].insert(h);
    locals_of_host[h].insert(w.local_ranks[static_cast<size_t>(r)]);
    ++ranks_of_host[h];
  }
  for (const auto& [h, l] : leaders_of_host)
    if (l.size() != 1)
      p.push_back("host \"" + h + "\" spans " + std::to_string(l.size()) +
                  " shared-memory nodes (the same host name on different machines?); per_node/nodes would be wrong");
  for (const auto& [l, hs] : hosts_of_leader)
    if (hs.size() != 1)
      p.push_back("the shared-memory node of rank " + std::to_string(l) + " has " + std::to_string(hs.size()) +
                  " host names");
  for (const auto& [h, locals] : locals_of_host) {
    const int k = ranks_of_host[h];
    if (static_cast<int>(locals.size()) != k || *locals.begin() != 0 || *locals.rbegin() != k - 1)
      p.push_back("host \"" + h + "\": node-local ranks are not 0.." + std::to_string(k - 1));
  }
  return p;
}

// --mpi --self-test on rank 0: the world (rank -> host, node-local rank, GPU it would take) and
// the group each collective job would use. Touches no CUDA, so the GPU is shown as the local
// rank, which it is wherever a node has a GPU per process (the measuring run checks that).
void print_mpi_layout(const tscal::MpiWorld& w, const tscal::JobFile& jobs) {
  std::set<std::string> distinct(w.hosts.begin(), w.hosts.end());
  std::printf("mpi: %d process(es) on %zu host(s); GPU = node-local rank mod visible GPUs\n", w.size, distinct.size());
  for (int r = 0; r < w.size; ++r)
    std::printf("  rank %d: host %s, local rank %d, GPU %d\n", r, w.hosts[static_cast<size_t>(r)].c_str(),
                w.local_ranks[static_cast<size_t>(r)], w.local_ranks[static_cast<size_t>(r)]);
  std::printf("collective groups (world ranks 0..group_size-1):\n");
  for (const auto& j : jobs.colls) {
    const int n = static_cast<int>(j.group_size);
    std::printf("  %s %s %s %lld B, group_size %d: ", j.path.c_str(), j.kind.c_str(), j.dtype.c_str(),
                (long long)j.bytes, n);
    if (n > w.size) {
      std::printf("skip (%d > %d processes)\n", n, w.size);
      continue;
    }
    const tscal::GroupLayout g = tscal::group_layout(w.hosts, n);
    std::map<std::string, int> per_host;
    for (int r = 0; r < n; ++r) ++per_host[w.hosts[static_cast<size_t>(r)]];
    std::string hosts;
    for (const auto& [h, c] : per_host) hosts += (hosts.empty() ? "" : ", ") + h + " x" + std::to_string(c);
    std::printf("ranks 0..%d, per_node %d, nodes %d (%s)\n", n - 1, g.per_node, g.nodes, hosts.c_str());
  }
}

int run_mpi(int* argc, char*** argv, const std::string& jobs_path, const std::string& out_path, bool self_test,
            bool cupti) {
  const tscal::MpiWorld w = mpi_start(argc, argv);
  auto finish = [](int code) {
    TS_MPI(MPI_Finalize());
    return code;
  };

  // The job list is read on rank 0 only and broadcast: the other nodes need not see the file.
  std::string text;
  long long len = -1;
  if (w.rank == 0) {
    std::ifstream in(jobs_path, std::ios::binary);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      text = ss.str();
      len = static_cast<long long>(text.size());
      if (len > INT_MAX) {
        std::fprintf(stderr, "error: %s: %lld bytes; a job list over 2 GiB is not broadcast\n", jobs_path.c_str(), len);
        len = -1;
      }
    } else {
      std::fprintf(stderr, "error: %s: cannot open the job list (write it with `trainsim calibrate ... --jobs FILE`)\n",
                   jobs_path.c_str());
    }
  }
  TS_MPI(MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD));
  if (len < 0) return finish(2);
  text.resize(static_cast<size_t>(len));
  TS_MPI(MPI_Bcast(text.data(), static_cast<int>(len), MPI_CHAR, 0, MPI_COMM_WORLD));
  tscal::JobFile jobs;
  std::vector<std::string> errors;
  if (!tscal::parse_jobs(text, jobs_path, &jobs, &errors)) {  // the same result on every rank
    if (w.rank == 0)
      for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
    return finish(2);
  }

  const std::vector<std::string> problems = mpi_layout_problems(w);
  if (self_test) {
    if (w.rank == 0) {
      print_job_summary(jobs_path, jobs);
      print_mpi_layout(w, jobs);
      for (const auto& p : problems) std::printf("error: mpi layout: %s\n", p.c_str());
      std::printf("built with: %s\n", built_with().c_str());
    }
    return finish(problems.empty() ? 0 : 1);
  }
  if (w.rank == 0)
    for (const auto& p : problems) std::fprintf(stderr, "warning: mpi layout: %s\n", p.c_str());

  // Every rank needs a GPU of its own on its node; all agree before anyone goes on.
  int count = 0;
  const cudaError_t ce = cudaGetDeviceCount(&count);
  int bad = 0;
  if (ce != cudaSuccess || count == 0) {
    std::fprintf(stderr, "error: rank %d (%s): no CUDA device (cudaGetDeviceCount: %s)\n", w.rank,
                 w.hosts[static_cast<size_t>(w.rank)].c_str(), ce != cudaSuccess ? cudaGetErrorString(ce) : "0 devices");
    bad = 3;
  } else if (w.local_size > count) {
    if (w.local_rank == 0)
      std::fprintf(stderr, "error: host %s: %d processes but %d visible GPU(s); start one process per GPU "
                           "(mpirun --map-by ppr:G:node with G <= GPUs per node)\n",
                   w.hosts[static_cast<size_t>(w.rank)].c_str(), w.local_size, count);
    bad = 2;
  }
  int worst = 0;
  TS_MPI(MPI_Allreduce(&bad, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  if (worst) return finish(worst);
  const int gpu = w.local_rank % count;
  TS_CUDA(cudaSetDevice(gpu));

  // Rank 0 writes every line; the others only take part in the collectives.
  FILE* out = stdout;
  int out_ok = 1;
  std::string dev_json;
  const tscal::Options opt = options_for(jobs, cupti);
  int measured = 0, skipped = 0;
  if (w.rank == 0) {
    dev_json = tscal::device_json(gpu, w.size);
    if (!out_path.empty()) {
      out = std::fopen(out_path.c_str(), "w");
      if (!out) {
        std::fprintf(stderr, "error: %s: cannot open for writing: %s\n", out_path.c_str(), std::strerror(errno));
        out_ok = 0;
      }
    }
  }
  TS_MPI(MPI_Bcast(&out_ok, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (!out_ok) return finish(2);
  if (w.rank == 0) {
    cudaDeviceProp prop{};
    TS_CUDA(cudaGetDeviceProperties(&prop, gpu));
    const tscal::GroupLayout all = tscal::group_layout(w.hosts, w.size);
    std::fprintf(stderr, "trainsim_calibrator: %s (cc %d.%d), mpi: %d process(es) on %d host(s); %zu ops (rank 0), %zu collectives\n",
                 prop.name, prop.major, prop.minor, w.size, all.nodes, jobs.ops.size(), jobs.colls.size());
    measure_ops(jobs, opt, gpu, dev_json, out, &measured, &skipped);
  }
  tscal::quiet_barrier();  // the other ranks wait here while rank 0 measures the ops

  for (const auto& j : jobs.colls) {
    const int n = static_cast<int>(j.group_size);
    if (n > w.size) {  // the same decision on every rank
      if (w.rank == 0) {
        tscal::skip(j.path, "group_size " + std::to_string(n) + " > " + std::to_string(w.size) +
                                " MPI processes (start at least " + std::to_string(n) + ", one per GPU)");
        ++skipped;
      }
      continue;
    }
    TS_CUDA(cudaSetDevice(gpu));
    tscal::CollResult r;
    std::string source;
    const bool ok = tscal::measure_collective_mpi(j, opt, w, gpu, &r, &source);
    if (w.rank != 0) continue;
    if (!ok) { ++skipped; continue; }
    const tscal::GroupLayout g = tscal::group_layout(w.hosts, n);
    write_coll_line(out, dev_json, j, g.per_node, g.nodes, r, source);
    ++measured;
  }
  tscal::collectives_mpi_shutdown();
  if (w.rank == 0) {
    if (out != stdout) std::fclose(out);
    std::fprintf(stderr, "trainsim_calibrator: %d measured, %d skipped\n", measured, skipped);
  }
  return finish(0);
}
#endif  // TRAINSIM_HAVE_MPI

}  // namespace

int main(int argc, char** argv) {
  std::string jobs_path, out_path;
  int device = 0, gpus = -1;
  bool self_test = false, cupti = true, check_attention = false, mpi = false;
  [[maybe_unused]] bool device_given = false;  // only --mpi looks at it
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&](const char* what) -> const char* {
      if (i + 1 >= argc) { usage((a + " needs " + what).c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--jobs") jobs_path = next("a file");
    else if (a == "--out") out_path = next("a file");
    else if (a == "--device") {
      if (!parse_int(next("a number"), &device)) return usage("--device: not a number");
      device_given = true;
    }
    else if (a == "--gpus") { if (!parse_int(next("a number"), &gpus) || gpus < 1) return usage("--gpus: a number >= 1"); }
    else if (a == "--self-test") self_test = true;
    else if (a == "--check-attention") check_attention = true;
    else if (a == "--no-cupti") cupti = false;
    else if (a == "--mpi") mpi = true;
    else if (a == "--version") {
      std::printf("trainsim_calibrator %s (built with CUDA %d.%d; %s)\n", kVersion, CUDART_VERSION / 1000,
                  (CUDART_VERSION % 1000) / 10, built_with().c_str());
      return 0;
    } else if (a == "--help" || a == "-h") { usage(nullptr); return 0; }
    else return usage(("unknown argument " + a).c_str());
  }
  if (mpi) {
#ifdef TRAINSIM_HAVE_MPI
    if (check_attention) return usage("--mpi: --check-attention runs in one process; leave out --mpi");
    if (device_given || gpus >= 0)
      return usage("--mpi: --device and --gpus are not used; each process takes GPU (node-local rank mod visible GPUs)");
    if (jobs_path.empty()) return usage("--jobs is required");
    return run_mpi(&argc, &argv, jobs_path, out_path, self_test, cupti);
#else
    return usage("--mpi: built without MPI (TRAINSIM_HAVE_MPI off: no MPI found at configure time, or "
                 "-DTRAINSIM_CALIBRATOR_MPI=OFF; install MPI, e.g. libopenmpi-dev, and reconfigure)");
#endif
  }
  if (check_attention) {
    if (const int rc = tscal::check_device(device); rc != 0) return rc;
    return tscal::check_attention(device);
  }
  if (jobs_path.empty()) return usage("--jobs is required");

  tscal::JobFile jobs;
  std::vector<std::string> errors;
  if (!tscal::load_jobs(jobs_path, &jobs, &errors)) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 2;
  }
  if (self_test) {
    print_job_summary(jobs_path, jobs);
    std::printf("built with: %s\n", built_with().c_str());
    return 0;
  }

  int count = 0;
  if (const int rc = tscal::check_device(device, &count); rc != 0) return rc;
  if (gpus < 0) gpus = count;
  if (gpus > count) {
    std::fprintf(stderr, "error: --gpus %d: only %d CUDA device(s) visible\n", gpus, count);
    return 2;
  }

  cudaDeviceProp prop{};
  TS_CUDA(cudaGetDeviceProperties(&prop, device));
  const std::string dev_json = tscal::device_json(device, gpus);

  FILE* out = stdout;
  if (!out_path.empty()) {
    out = std::fopen(out_path.c_str(), "w");
    if (!out) {
      std::fprintf(stderr, "error: %s: cannot open for writing: %s\n", out_path.c_str(), std::strerror(errno));
      return 2;
    }
  }
  std::fprintf(stderr, "trainsim_calibrator: %s (cc %d.%d), %d GPU(s); %zu ops, %zu collectives\n", prop.name, prop.major,
               prop.minor, gpus, jobs.ops.size(), jobs.colls.size());

  const tscal::Options opt = options_for(jobs, cupti);
  int measured = 0, skipped = 0;
  measure_ops(jobs, opt, device, dev_json, out, &measured, &skipped);
  for (const auto& j : jobs.colls) {
    TS_CUDA(cudaSetDevice(0));
    tscal::CollResult r;
    std::string source;
    if (!tscal::measure_collective(j, opt, gpus, &r, &source)) { ++skipped; continue; }
    write_coll_line(out, dev_json, j, static_cast<int>(j.group_size), 1, r, source);
    ++measured;
  }
  tscal::collectives_shutdown();
  if (out != stdout) std::fclose(out);
  std::fprintf(stderr, "trainsim_calibrator: %d measured, %d skipped\n", measured, skipped);
  return 0;
}
