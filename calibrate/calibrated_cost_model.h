// File: calibrate/calibrated_cost_model.h
// A cost model that rests on a calibration database (calibrate/db.h), best source first
// (ARCHITECTURE.md "Costs"):
//   measured      an op / collective point with exactly this shape was measured;
//   interpolated  between measured sizes of the same kind (log-log: log rate against log work
//                 for compute ops, log time against log bytes for collectives of the same group
//                 shape);
//   fitted        beyond the measured range, or for a group size that was not measured: a
//                 least-squares fit (calibrate/fit.h) over the points of that kind: t = a + b*x
//                 for ops, t = steps*alpha + moved_bytes/B across group sizes for collectives;
//   default       nothing of that kind was measured: the embedded default (DefaultCostModel).
// Every extrapolation leaves a note ("all-reduce on 64 ranks: measured groups up to 8 (x8)")
// that the report prints.
// The database's devices are chosen by the cluster's GPU: those whose name contains the GPU
// family ("H100") and, when any does, its memory size ("80GB"); their points are pooled (one GPU
// type measured on several hosts, drivers or by several tools).
// Thread-safety: not thread-safe (notes are collected while pricing).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "calibrate/cost_model.h"
#include "calibrate/db.h"

namespace trainsim {

class CalibratedCostModel : public CostModel {
 public:
  // Error: the database cannot be opened, or has no device matching the cluster's GPU (the
  // message lists the devices it has). Of several measurements of one op (same class, dtype
  // and shape), the one whose source contains `prefer_source` counts (e.g. "flash" for a stack
  // that runs FlashAttention where the database also has cuDNN's kernel); among those, or
  // when none or all match, the fastest.
  // `attention`: the training's attention kernel, for the attention ops the database has not
  // measured (the embedded default's figure for it, use_attention_kernel in cost_model.h).
  static Result<std::unique_ptr<CalibratedCostModel>> make(const std::string& db_path, const ClusterSpec& cluster,
                                                           const std::string& prefer_source = "",
                                                           AttentionKernel attention = AttentionKernel::kFlash);
  // The same, with the devices named exactly `device_name` (verify mode's host device,
  // calibrate/host_calibrate.h); the cluster still gives the default model for what was not
  // measured. Of several measurements of one collective point (same kind, bytes and group
  // shape: a host timed with threads and with MPI processes), those whose source contains
  // `prefer_coll_source` count when any does (all of them otherwise, as without it).
  // Error: no such device (the message lists the devices the database has).
  static Result<std::unique_ptr<CalibratedCostModel>> make_for_device(const std::string& db_path,
                                                                      const ClusterSpec& cluster,
                                                                      const std::string& device_name,
                                                                      const std::string& prefer_coll_source = "");

  OpCost compute(const OpDesc& op) const override;
  OpCost collective(const OpDesc& op, const GroupShape& shape) const override;
  OpCost p2p(const OpDesc& op, bool same_node) const override;
  std::string describe(OpClass cls, CostSource source) const override;

  // Link figures for the flow-level network (scenarios/predict.cpp), from the database where it
  // has points: per span, the fit t = steps * alpha + moved_bytes / B over the points of this
  // collective kind in that span (any group size; as the fitted collective tier) gives
  // intra_alpha / intra_bw (in a node) and inter_alpha / inter_bw (across nodes); a span
  // without points, or whose points no such line explains, keeps the embedded default's
  // figures. p2p_links() does the same from the send-recv points (one step: t = alpha + S/B).
  // Each calibrated figure adds a note (notes()).
  LinkParams links(CollKind kind) const;
  LinkParams p2p_links() const;
  // The share of a NIC's bandwidth flows get across nodes: inter_bw of the all-reduce fit (or
  // of any kind with inter-node points) / the cluster's NIC bandwidth, at most 1; the
  // default's nic efficiency without such points.
  double flow_efficiency() const;

  // t = a*steps + b*moved over the points of one collective kind (or the send-recv points) in
  // one span (ring_terms); with the largest group and the byte range it saw. ok: fit_two
  // succeeded.
  struct SpanFit {
    bool ok = false;
    double a = 0, b = 0;   // s per step, s per byte moved
    int points = 0, max_p = 0;
    double min_bytes = 0, max_bytes = 0;
  };
  SpanFit fit_span(CollKind kind, bool send_recv, bool inter) const;

  const DeviceInfo& device() const { return device_; }
  std::vector<std::string> notes() const;   // extrapolation notes, one per kind, sorted
  // The source of every collective point the model prices from, in database order.
  std::vector<std::string> collective_sources() const;

 private:
  CalibratedCostModel() = default;
  static Result<std::unique_ptr<CalibratedCostModel>> make_impl(const std::string& db_path, const ClusterSpec& cluster,
                                                                const std::string* device_name,
                                                                const std::string& prefer_source,
                                                                const std::string& prefer_coll_source,
                                                                AttentionKernel attention = AttentionKernel::kFlash);
  OpCost price_work(const std::string& what, double x, double exact_t, const std::vector<std::pair<double, double>>& x_t,
                    const OpCost& fallback, const char* unit) const;

  std::unique_ptr<DefaultCostModel> fallback_;
  DeviceInfo device_;   // the first matching device record (its name labels reports)
  int devices_ = 0;     // matching device records pooled
  std::string db_path_;
  std::vector<OpPoint> ops_;
  std::vector<CollPoint> colls_;
  mutable std::map<std::string, std::string> notes_;
};

// Fits, for every device of the database, t = steps*alpha + moved_bytes/B per collective kind
// and span ("coll/all-reduce/intra", ".../inter") and t = a + b*work per op class and dtype
// ("op/gemm/bf16": a = overhead, 1/b = rate), and stores them with their residuals. Kinds with
// fewer than 2 points, or whose points no such line explains, are skipped. Returns the count.
Result<int> refit(CalibrationDb& db);

// Picks the devices of a database for a catalog GPU (see the header comment); indices in order,
// empty when none.
std::vector<int> pick_devices(const std::vector<DeviceInfo>& devices, const std::string& gpu_name);

}  // namespace trainsim
