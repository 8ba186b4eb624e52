#include "calibrate/calibrated_cost_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>

#include "calibrate/fit.h"
#include "sim/text.h"

namespace trainsim {

namespace {

double gemm_flops(const OpPoint& p) { return 2.0 * p.batch * static_cast<double>(p.m) * p.n * p.k; }
// The plan's FLOP convention for attention (models/ops.h): 4*b*s_q*s_kv*heads*head_dim forward,
// twice that backward.
double attn_flops(const OpPoint& p) {
  const double f = 4.0 * p.batch * static_cast<double>(p.seq_q) * p.seq_kv * p.heads * p.head_dim;
  return p.backward ? 2 * f : f;
}
bool same_dtype_class(DType a, DType b) {
  auto norm = [](DType d) { return d == DType::kFP16 ? DType::kBF16 : d; };  // same tensor-core rate
  return norm(a) == norm(b);
}
// What makes two measurements the same op: class, dtype and shape (memory-bound: name and bytes).
auto op_key(const OpPoint& a) {
  return std::make_tuple(static_cast<int>(a.cls), static_cast<int>(a.dtype), a.name, a.m, a.n, a.k, a.batch, a.heads,
                         a.kv_heads, a.seq_q, a.seq_kv, a.head_dim, a.causal, a.backward, a.bytes);
}
bool is_memory_bound(OpClass c) {
  return c == OpClass::kNorm || c == OpClass::kElementwise || c == OpClass::kEmbedding || c == OpClass::kLoss ||
         c == OpClass::kOptimizer;
}
// Ring algorithm steps and bytes each rank moves, per collective (sim/collectives.h).
void ring_terms(CollKind k, bool send_recv, double p, double bytes, double* steps, double* moved) {
  if (send_recv) {
    *steps = 1;
    *moved = bytes;
    return;
  }
  switch (k) {
    case CollKind::kAllReduce: *steps = 2 * (p - 1); *moved = 2 * (p - 1) / p * bytes; return;
    case CollKind::kBroadcast: *steps = p - 1; *moved = bytes; return;
    default: *steps = p - 1; *moved = (p - 1) / p * bytes; return;
  }
}
std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}
// log-log interpolation of y over sorted (x, y); REQUIRES x within [front, back].
double interp_loglog(const std::vector<std::pair<double, double>>& xy, double x) {
  for (size_t i = 1; i < xy.size(); ++i) {
    if (x <= xy[i].first) {
      const auto [x0, y0] = xy[i - 1];
      const auto [x1, y1] = xy[i];
      if (x1 == x0) return y0;
      const double f = (std::log(x) - std::log(x0)) / (std::log(x1) - std::log(x0));
      return std::exp(std::log(y0) + f * (std::log(y1) - std::log(y0)));
    }
  }
  return xy.back().second;
}

}  // namespace

std::vector<int> pick_devices(const std::vector<DeviceInfo>& devices, const std::string& gpu_name) {
  // "H100-SXM-80GB" -> family "h100", memory "80gb"
  const std::string g = to_lower(gpu_name);
  const std::string family = g.substr(0, g.find('-'));
  std::string memory;
  for (size_t pos = g.find('-'); pos != std::string::npos; pos = g.find('-', pos + 1)) {
    std::string tok = g.substr(pos + 1, g.find('-', pos + 1) - pos - 1);
    if (tok.size() > 2 && tok.compare(tok.size() - 2, 2, "gb") == 0) memory = tok;
  }
  std::vector<int> fam, mem;
  for (size_t i = 0; i < devices.size(); ++i) {
    const std::string n = to_lower(devices[i].name);
    if (n.find(family) == std::string::npos) continue;
    fam.push_back(static_cast<int>(i));
    if (!memory.empty() && n.find(memory) != std::string::npos) mem.push_back(static_cast<int>(i));
  }
  return mem.empty() ? fam : mem;
}

Result<std::unique_ptr<CalibratedCostModel>> CalibratedCostModel::make(const std::string& db_path,
                                                                       const ClusterSpec& cluster,
                                                                       const std::string& prefer_source,
                                                                       AttentionKernel attention) {
  return make_impl(db_path, cluster, nullptr, prefer_source, "", attention);
}

Result<std::unique_ptr<CalibratedCostModel>> CalibratedCostModel::make_for_device(const std::string& db_path,
                                                                                  const ClusterSpec& cluster,
                                                                                  const std::string& device_name,
                                                                                  const std::string& prefer_coll_source) {
  return make_impl(db_path, cluster, &device_name, "", prefer_coll_source);
}

Result<std::unique_ptr<CalibratedCostModel>> CalibratedCostModel::make_impl(const std::string& db_path,
                                                                            const ClusterSpec& cluster,
                                                                            const std::string* device_name,
                                                                            const std::string& prefer_source,
                                                                            const std::string& prefer_coll_source,
                                                                            AttentionKernel attention) {
  auto db = CalibrationDb::open(db_path, /*create=*/false);
  if (!db.ok()) return db.status();
  auto devs = db.value()->devices();
  if (!devs.ok()) return devs.status();
  std::vector<int> picked;
  if (device_name) {
    for (size_t i = 0; i < devs.value().size(); ++i)
      if (devs.value()[i].name == *device_name) picked.push_back(static_cast<int>(i));
  } else {
    picked = pick_devices(devs.value(), cluster.gpu.name);
  }
  if (picked.empty()) {
    std::string have;
    for (const auto& d : devs.value()) have += (have.empty() ? "\"" : ", \"") + d.name + "\"";
    return Status::error(Error{db_path, "", device_name ? *device_name : cluster.gpu.name,
                               std::string("the calibration database has no measurements of this ") + (device_name ? "device (measure it with `trainsim calibrate --host SCENARIO --out FILE` and import FILE)" : "GPU") + "; it has " +
                                   (have.empty() ? std::string("no devices") : have)});
  }
  auto eff = default_efficiencies(gpu_family(cluster.gpu));
  if (!eff.ok()) return eff.status();
  Status ak = use_attention_kernel(attention, &eff.value());
  if (!ak.ok()) return ak;
  std::unique_ptr<CalibratedCostModel> m(new CalibratedCostModel());
  m->fallback_ = std::make_unique<DefaultCostModel>(cluster, std::move(eff).value());
  m->device_ = devs.value()[picked.front()];
  m->devices_ = static_cast<int>(picked.size());
  m->db_path_ = db_path;
  std::map<decltype(op_key(OpPoint{})), size_t> index;   // op -> its entry in ops_
  for (int i : picked) {
    auto ops = db.value()->op_points(devs.value()[i].id);
    if (!ops.ok()) return ops.status();
    auto colls = db.value()->coll_points(devs.value()[i].id);
    if (!colls.ok()) return colls.status();
    for (const auto& p : ops.value()) {
      // Several measurements of one op (other implementations, or a file imported twice): the
      // fastest counts, as a training stack runs its fastest kernel for a shape (an own scalar
      // attention kernel beside cuDNN's fused SDPA, say), unless prefer_source picks one.
      const auto [it, added] = index.emplace(op_key(p), m->ops_.size());
      if (added) {
        m->ops_.push_back(p);
        continue;
      }
      OpPoint& same = m->ops_[it->second];
      const bool p_pref = !prefer_source.empty() && p.source.find(prefer_source) != std::string::npos;
      const bool s_pref = !prefer_source.empty() && same.source.find(prefer_source) != std::string::npos;
      if (p_pref != s_pref ? p_pref : p.time_us < same.time_us) same = p;
    }
    m->colls_.insert(m->colls_.end(), colls.value().begin(), colls.value().end());
  }
  if (!prefer_coll_source.empty()) {
    // Points measured by the preferred mechanism displace the others of the same point.
    auto key = [](const CollPoint& p) {
      return std::make_tuple(p.send_recv, p.send_recv ? 0 : static_cast<int>(p.kind), p.bytes, p.group_size,
                             p.per_node, p.nodes);
    };
    auto preferred = [&](const CollPoint& p) { return p.source.find(prefer_coll_source) != std::string::npos; };
    std::set<decltype(key(CollPoint{}))> has_preferred;
    for (const auto& p : m->colls_)
      if (preferred(p)) has_preferred.insert(key(p));
    std::erase_if(m->colls_, [&](const CollPoint& p) { return !preferred(p) && has_preferred.count(key(p)); });
  }
  return m;
}

std::vector<std::string> CalibratedCostModel::collective_sources() const {
  std::vector<std::string> out;
  for (const auto& p : colls_) out.push_back(p.source);
  return out;
}

OpCost CalibratedCostModel::price_work(const std::string& what, double x, double exact_t,
                                       const std::vector<std::pair<double, double>>& x_t_in,
                                       const OpCost& fallback, const char* unit) const {
  OpCost c;
  if (exact_t > 0) {
    c.time = Time::from_seconds(exact_t);
    c.source = CostSource::kMeasured;
    return c;
  }
  // Points whose rate is not a finite positive number (a zero, denormal or non-finite time or
  // size in the database) price nothing: they are left out, and a result that still comes out
  // non-finite or negative falls back to the default.
  std::vector<std::pair<double, double>> x_t;
  for (const auto& [xi, ti] : x_t_in)
    if (std::isfinite(xi) && std::isfinite(ti) && xi > 0 && ti > 0 && std::isfinite(xi / ti) && xi / ti > 0)
      x_t.emplace_back(xi, ti);
  if (x_t.empty()) return fallback;
  std::sort(x_t.begin(), x_t.end());
  auto checked = [&](double seconds, CostSource src) {
    if (!std::isfinite(seconds) || seconds < 0) {
      notes_.emplace(what + " unusable", what + ": the measurements give no finite time here; embedded default used");
      return fallback;
    }
    OpCost r;
    r.time = Time::from_seconds(seconds);
    r.source = src;
    return r;
  };
  if (x_t.size() >= 2 && x >= x_t.front().first && x <= x_t.back().first) {
    // Interpolate the rate (x per second) log-log in x.
    std::vector<std::pair<double, double>> rate;
    for (const auto& [xi, ti] : x_t) rate.emplace_back(xi, xi / ti);
    return checked(x / interp_loglog(rate, x), CostSource::kInterpolated);
  }
  // Beyond the measured range: t = a + b*x fitted over the points (one point: its rate).
  double t = 0;
  auto fit = fit_affine(x_t);
  if (fit.ok()) t = fit->a + fit->b * x;
  else t = x * x_t.back().second / x_t.back().first;
  const double edge = x < x_t.front().first ? x_t.front().first : x_t.back().first;
  if (x < x_t.front().first || x > x_t.back().first)
    notes_.emplace(what, what + ": " + fmt(x) + " " + unit + " is beyond the measured " + fmt(x_t.front().first) + ".." +
                           fmt(x_t.back().first) + " (x" + fmt(std::max(x / edge, edge / x)) + "); fitted");
  return checked(t, CostSource::kFitted);
}

OpCost CalibratedCostModel::compute(const OpDesc& op) const {
  const OpCost fallback = fallback_->compute(op);
  std::vector<std::pair<double, double>> pts;
  double exact = 0;
  if (op.cls == OpClass::kGemm) {
    for (const auto& p : ops_) {
      if (p.cls != OpClass::kGemm || !same_dtype_class(p.dtype, op.dtype)) continue;
      pts.emplace_back(gemm_flops(p), p.time_us * 1e-6);
      if (p.m == op.m && p.n == op.n && p.k == op.k && p.batch == op.batch) exact = p.time_us * 1e-6;
    }
    return price_work(std::string("gemm ") + (op.dtype == DType::kFP8 ? "fp8" : "bf16"), op.flops.v, exact, pts,
                      fallback, "FLOP");
  }
  if (op.cls == OpClass::kAttention) {
    for (const auto& p : ops_) {
      if (p.cls != OpClass::kAttention || p.backward != op.backward || p.causal != op.causal) continue;
      pts.emplace_back(attn_flops(p), p.time_us * 1e-6);
      if (p.batch == op.attn_batch && p.heads == op.heads && p.kv_heads == op.kv_heads && p.seq_q == op.seq_q &&
          p.seq_kv == op.seq_kv && p.head_dim == op.head_dim && attn_flops(p) == op.flops.v)   // not a masked variant
        exact = p.time_us * 1e-6;
    }
    return price_work(op.backward ? "attention backward" : "attention forward", op.flops.v, exact, pts, fallback,
                      "FLOP");
  }
  if (is_memory_bound(op.cls)) {
    // Same class first; else any memory-bound op (they all run at the HBM rate).
    for (int pass = 0; pass < 2 && pts.empty(); ++pass)
      for (const auto& p : ops_) {
        if (!is_memory_bound(p.cls) || (pass == 0 && p.cls != op.cls) || p.bytes <= 0) continue;
        pts.emplace_back(static_cast<double>(p.bytes), p.time_us * 1e-6);
        if (p.cls == op.cls && p.bytes == op.bytes.count() && p.name == op.name) exact = p.time_us * 1e-6;
      }
    return price_work(std::string(to_string(op.cls)), static_cast<double>(op.bytes.count()), exact, pts, fallback,
                      "bytes");
  }
  if (op.cls == OpClass::kOffload) {
    // Host copies of the same direction (the name's suffix: ".d2h" or ".h2d"), over bytes.
    const bool to_host = op.name.ends_with(".d2h");
    for (const auto& p : ops_) {
      if (p.cls != OpClass::kOffload || p.name.ends_with(".d2h") != to_host || p.bytes <= 0) continue;
      pts.emplace_back(static_cast<double>(p.bytes), p.time_us * 1e-6);
      if (p.bytes == op.bytes.count()) exact = p.time_us * 1e-6;
    }
    return price_work(to_host ? "offload d2h" : "offload h2d", static_cast<double>(op.bytes.count()), exact, pts,
                      fallback, "bytes");
  }
  return fallback;
}

OpCost CalibratedCostModel::collective(const OpDesc& op, const GroupShape& shape) const {
  if (op.coll == CollKind::kSendRecv && shape.size > 1) return p2p(op, shape.nodes == 1);   // a ring shift
  const OpCost fallback = fallback_->collective(op, shape);
  // A deduplicated all-to-all (MoE dispatch "dedup") moves other bytes than the direct ones the
  // database measures: priced by the default model's formula (sim/collectives.h), never by them.
  if (shape.size <= 1 || op.dedup.fanout > 0) return fallback;
  const bool multi_node = shape.nodes > 1;
  const std::string what = std::string(to_string(op.coll)) + (multi_node ? " across nodes" : " in a node");
  // Same group shape: interpolate over bytes.
  std::vector<std::pair<double, double>> same;
  double exact = 0;
  for (const auto& p : colls_) {
    if (p.send_recv || p.kind != op.coll || p.group_size != shape.size || p.per_node != shape.per_node) continue;
    same.emplace_back(static_cast<double>(p.bytes), p.time_us * 1e-6);
    if (p.bytes == op.bytes.count()) exact = p.time_us * 1e-6;
  }
  OpCost c;
  if (exact > 0) {
    c.time = Time::from_seconds(exact);
    c.source = CostSource::kMeasured;
    return c;
  }
  std::sort(same.begin(), same.end());
  const double s = static_cast<double>(op.bytes.count());
  if (same.size() >= 2 && s >= same.front().first && s <= same.back().first) {
    c.time = Time::from_seconds(interp_loglog(same, s));
    c.source = CostSource::kInterpolated;
    return c;
  }
  // Fit t = steps*alpha + moved/B over every point of this kind and span (any group size).
  const SpanFit fit = fit_span(op.coll, false, multi_node);
  if (!fit.ok) return fallback;
  const int max_p = fit.max_p;
  const double min_b = fit.min_bytes, max_b = fit.max_bytes;
  double steps, moved;
  ring_terms(op.coll, false, shape.size, s, &steps, &moved);
  c.time = Time::from_seconds(fit.a * steps + fit.b * moved);
  c.source = CostSource::kFitted;
  std::string note = what + ": fitted alpha " + fmt(fit.a * 1e6) + " us/step, " + fmt(1e-9 / fit.b) + " GB/s";
  if (shape.size > max_p) note += "; group of " + std::to_string(shape.size) + " ranks, measured up to " +
                                  std::to_string(max_p) + " (x" + fmt(double(shape.size) / max_p) + ")";
  if (s > max_b || s < min_b) note += "; " + fmt(s) + " bytes, measured " + fmt(min_b) + ".." + fmt(max_b);
  notes_[what] = note;
  return c;
}

CalibratedCostModel::SpanFit CalibratedCostModel::fit_span(CollKind kind, bool send_recv, bool inter) const {
  SpanFit f;
  std::vector<std::array<double, 3>> rows;
  for (const auto& p : colls_) {
    if (p.send_recv != send_recv || (!send_recv && p.kind != kind) || (p.nodes > 1) != inter || p.group_size < 2)
      continue;
    double steps, moved;
    ring_terms(p.kind, send_recv, p.group_size, static_cast<double>(p.bytes), &steps, &moved);
    rows.push_back({steps, moved, p.time_us * 1e-6});
    f.max_p = std::max(f.max_p, p.group_size);
    f.min_bytes = f.min_bytes == 0 ? p.bytes : std::min<double>(f.min_bytes, p.bytes);
    f.max_bytes = std::max<double>(f.max_bytes, p.bytes);
  }
  f.points = static_cast<int>(rows.size());
  auto r = fit_two(rows);
  if (!r.ok()) return f;
  f.ok = true;
  f.a = r->a;
  f.b = r->b;
  return f;
}

namespace {
// A span's fit as link figures: false unless it has a positive rate.
bool link_figures(const CalibratedCostModel::SpanFit& f, double* alpha_s, double* bw_Bps) {
  if (!f.ok || f.b <= 0) return false;
  *alpha_s = std::max(f.a, 0.0);
  *bw_Bps = 1.0 / f.b;
  return true;
}
}  // namespace

LinkParams CalibratedCostModel::links(CollKind kind) const {
  LinkParams l = fallback_->links(kind);
  double a, b;
  int n;
  const std::string name = to_string(kind);
  SpanFit f = fit_span(kind, false, false);
  n = f.points;
  if (link_figures(f, &a, &b)) {
    l.intra_alpha = Time::from_seconds(a);
    l.intra_bw = Bandwidth::bytes_per_s(b);
    notes_["flow links: " + name + " in a node"] = "flow links: " + name + " in a node: fitted alpha " + fmt(a * 1e6) +
                                                   " us/step, " + fmt(b * 1e-9) + " GB/s (" + std::to_string(n) + " points)";
  }
  f = fit_span(kind, false, true);
  n = f.points;
  if (link_figures(f, &a, &b)) {
    l.inter_alpha = Time::from_seconds(a);
    l.inter_bw = Bandwidth::bytes_per_s(b);
    notes_["flow links: " + name + " across nodes"] = "flow links: " + name + " across nodes: fitted alpha " +
                                                      fmt(a * 1e6) + " us/step, " + fmt(b * 1e-9) + " GB/s (" +
                                                      std::to_string(n) + " points)";
  }
  return l;
}

LinkParams CalibratedCostModel::p2p_links() const {
  LinkParams l = fallback_->p2p_links();
  double a, b;
  int n;
  SpanFit f = fit_span(CollKind::kSendRecv, true, false);
  n = f.points;
  if (link_figures(f, &a, &b)) {
    l.intra_alpha = Time::from_seconds(a);
    l.intra_bw = Bandwidth::bytes_per_s(b);
    notes_["flow links: send-recv in a node"] = "flow links: send-recv in a node: fitted " + fmt(a * 1e6) + " us, " +
                                                fmt(b * 1e-9) + " GB/s (" + std::to_string(n) + " points)";
  }
  f = fit_span(CollKind::kSendRecv, true, true);
  n = f.points;
  if (link_figures(f, &a, &b)) {
    l.inter_alpha = Time::from_seconds(a);
    l.inter_bw = Bandwidth::bytes_per_s(b);
    notes_["flow links: send-recv across nodes"] = "flow links: send-recv across nodes: fitted " + fmt(a * 1e6) +
                                                   " us, " + fmt(b * 1e-9) + " GB/s (" + std::to_string(n) + " points)";
  }
  return l;
}

double CalibratedCostModel::flow_efficiency() const {
  const double nic = fallback_->cluster().nic_bandwidth.Bps();
  double a, b;
  for (CollKind k : {CollKind::kAllReduce, CollKind::kAllGather, CollKind::kReduceScatter, CollKind::kAllToAll,
                     CollKind::kBroadcast}) {
    if (nic <= 0 || !link_figures(fit_span(k, false, true), &a, &b)) continue;
    const double e = std::min(1.0, b / nic);
    notes_["flow links: NIC efficiency"] = "flow links: NIC efficiency " + fmt(e) + " (" + to_string(k) +
                                           " across nodes, fitted " + fmt(b * 1e-9) + " GB/s of " + fmt(nic * 1e-9) +
                                           " GB/s per GPU)";
    return e;
  }
  return fallback_->efficiencies().nic;
}

OpCost CalibratedCostModel::p2p(const OpDesc& op, bool same_node) const {
  const OpCost fallback = fallback_->p2p(op, same_node);
  std::vector<std::pair<double, double>> pts;
  double exact = 0;
  for (const auto& p : colls_) {
    if (!p.send_recv || (p.nodes <= 1) != same_node) continue;
    pts.emplace_back(static_cast<double>(p.bytes), p.time_us * 1e-6);
    if (p.bytes == op.bytes.count()) exact = p.time_us * 1e-6;
  }
  return price_work(same_node ? "send-recv in a node" : "send-recv across nodes", static_cast<double>(op.bytes.count()),
                    exact, pts, fallback, "bytes");
}

std::string CalibratedCostModel::describe(OpClass cls, CostSource source) const {
  if (source == CostSource::kDefault) return fallback_->describe(cls, source);
  const char* how = source == CostSource::kMeasured       ? "measured points"
                    : source == CostSource::kInterpolated ? "log-log interpolation between measured points"
                                                          : "least-squares fit to measured points";
  return std::string(how) + " of " + device_.name + " (" + db_path_ +
         (devices_ > 1 ? ", " + std::to_string(devices_) + " device records" : std::string()) + ")";
}

Result<int> refit(CalibrationDb& db) {
  auto devs = db.devices();
  if (!devs.ok()) return devs.status();
  int stored = 0;
  for (const DeviceInfo& d : devs.value()) {
    auto colls = db.coll_points(d.id);
    if (!colls.ok()) return colls.status();
    std::map<std::string, std::vector<std::array<double, 3>>> by_kind;
    for (const auto& p : colls.value()) {
      if (p.group_size < 2) continue;
      double steps, moved;
      ring_terms(p.kind, p.send_recv, p.group_size, static_cast<double>(p.bytes), &steps, &moved);
      const std::string kind = p.send_recv ? "send-recv" : to_string(p.kind);
      by_kind["coll/" + kind + (p.nodes > 1 ? "/inter" : "/intra")].push_back({steps, moved, p.time_us * 1e-6});
    }
    for (const auto& [what, rows] : by_kind) {
      auto f = fit_two(rows);
      if (!f.ok()) continue;
      FitRecord r;
      r.device_id = d.id;
      r.what = what;
      r.params_json = "{\"alpha_us\": " + fmt(f->a * 1e6) + ", \"busbw_GBps\": " + fmt(1e-9 / f->b) + "}";
      r.residual = f->rms_rel_residual;
      r.points = static_cast<int>(rows.size());
      Status st = db.store_fit(r);
      if (!st.ok()) return st;
      ++stored;
    }
    auto ops = db.op_points(d.id);
    if (!ops.ok()) return ops.status();
    std::map<std::string, std::vector<std::pair<double, double>>> by_class;
    for (const auto& p : ops.value()) {
      double x = 0;
      if (p.cls == OpClass::kGemm) x = gemm_flops(p);
      else if (p.cls == OpClass::kAttention) x = attn_flops(p);
      else x = static_cast<double>(p.bytes);
      if (x <= 0) continue;
      std::string what = std::string("op/") + to_string(p.cls);
      if (p.cls == OpClass::kGemm) what += p.dtype == DType::kFP8 ? "/fp8" : "/bf16";
      if (p.cls == OpClass::kAttention) what += p.backward ? "/backward" : "/forward";
      if (p.cls == OpClass::kOffload) what += p.name.ends_with(".d2h") ? "/d2h" : "/h2d";
      by_class[what].emplace_back(x, p.time_us * 1e-6);
    }
    for (const auto& [what, pts] : by_class) {
      auto f = fit_affine(pts);
      if (!f.ok()) continue;
      const bool work = what.rfind("op/gemm", 0) == 0 || what.rfind("op/attention", 0) == 0;
      FitRecord r;
      r.device_id = d.id;
      r.what = what;
      r.params_json = "{\"overhead_us\": " + fmt(f->a * 1e6) + ", " +
                      (work ? "\"tflops\": " + fmt(1e-12 / f->b) : "\"GBps\": " + fmt(1e-9 / f->b)) + "}";
      r.residual = f->rms_rel_residual;
      r.points = static_cast<int>(pts.size());
      Status st = db.store_fit(r);
      if (!st.ok()) return st;
      ++stored;
    }
  }
  return stored;
}

std::vector<std::string> CalibratedCostModel::notes() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : notes_) out.push_back(v);
  return out;
}

}  // namespace trainsim
