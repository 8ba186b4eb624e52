#include "models/restrict.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "models/compiler.h"
#include "topologies/placement.h"

namespace trainsim {

namespace {

// Groups whose collectives set per-rank shapes: cutting them would change what a rank computes.
bool must_stay_whole(const std::string& name) {
  return name == "tp" || name == "tp-side" || name == "tp-ring" || name == "cp-ring" || name == "cp-ulysses" ||
         name == "ep" || name == "expert-tp";
}

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s;
}

}  // namespace

Result<RestrictedPlan> restrict_plan(const Plan& full, const ParallelSpec& par, int gpus_per_node, int devices) {
  if (devices < 1)
    return Status::error(Error{"", "--ranks", std::to_string(devices), "the number of local devices must be >= 1"});
  const int unit = par.tp * par.cp;
  if (devices < unit)
    return Status::error(Error{"", "--ranks", std::to_string(devices),
                               "one TP x CP group needs tp*cp = " + std::to_string(par.tp) + "*" +
                                   std::to_string(par.cp) + " = " + std::to_string(unit) +
                                   " ranks (the restriction keeps per-rank shapes); give --ranks >= " +
                                   std::to_string(unit) + " or a scenario with a smaller tp*cp"});
  auto placement = Placement::make(par, gpus_per_node);
  if (!placement.ok()) return placement.status();
  const Placement& pl = placement.value();
  if (pl.num_ranks() != full.num_ranks)
    return Status::error("restrict: the plan has " + std::to_string(full.num_ranks) +
                         " ranks but the parallel spec places " + std::to_string(pl.num_ranks()));

  RestrictedPlan out;
  out.devices = devices;
  out.tp = par.tp;
  out.cp = par.cp;
  out.pp = par.pp;
  out.dp = par.dp;
  const int kept_pp = (par.pp >= 2 && devices >= 2 * unit) ? 2 : 1;
  for (int s = 0; s < kept_pp; ++s) out.stages.push_back(s);
  int dpk = std::min(par.dp, devices / (unit * kept_pp));
  if ((par.ep > 1 || par.etp > 1) && ep_folded(par)) {
    // Folded EP: whole EP blocks (etp*ep consecutive positions of a stage), i.e. multiples of
    // the replicas lcm(etp*ep, tp*cp) spans; the group check below refuses any EP group still cut.
    const int block = std::max(1, par.etp) * par.ep;
    const int need = std::lcm(block, unit) / unit;
    dpk -= dpk % need;
    if (dpk < need)
      return Status::error(Error{"", "--ranks", std::to_string(devices),
                                 "a folded EP block of ep*etp = " + std::to_string(block) + " ranks needs " +
                                     std::to_string(need) + " whole TP x CP groups = " + std::to_string(need * unit) +
                                     " ranks (per stage) to stay whole"});
  } else if (par.ep > 1) {
    dpk -= dpk % par.ep;
    if (dpk < par.ep)
      return Status::error(Error{"", "--ranks", std::to_string(devices),
                                 "an EP group of ep = " + std::to_string(par.ep) + " DP ranks needs tp*cp*ep = " +
                                     std::to_string(unit * par.ep) + " ranks (per stage) to stay whole"});
  }
  out.dp_kept = dpk;

  // Kept ranks, ascending full rank.
  std::vector<int32_t> new_of(full.num_ranks, -1);
  for (int r = 0; r < full.num_ranks; ++r) {
    auto c = pl.coords(static_cast<uint32_t>(r));
    if (c[static_cast<int>(Axis::kPp)] < kept_pp && c[static_cast<int>(Axis::kDp)] < dpk) {
      new_of[r] = static_cast<int32_t>(out.full_rank.size());
      out.full_rank.push_back(static_cast<uint32_t>(r));
    }
  }
  Plan& p = out.plan;
  p.num_ranks = static_cast<int>(out.full_rank.size());
  p.ops = full.ops;   // same indices; not interned again (the restricted plan adds no ops)

  // Programs of the kept ranks, in order of first use.
  std::map<uint32_t, uint32_t> prog_new;
  for (uint32_t fr : out.full_rank) {
    const uint32_t fp = full.program_of_rank[fr];
    if (!prog_new.count(fp)) {
      prog_new[fp] = static_cast<uint32_t>(out.full_program.size());
      out.full_program.push_back(fp);
    }
    p.program_of_rank.push_back(prog_new[fp]);
  }

  for (uint32_t fp : out.full_program) {
    const Program& src = full.programs[fp];
    // A send/recv is kept when every kept rank running this program has a kept peer.
    std::vector<uint8_t> removed(src.tasks.size(), 0);
    int sends = 0, recvs = 0;
    for (uint32_t i = 0; i < src.tasks.size(); ++i) {
      const Task& t = src.tasks[i];
      if (t.kind != TaskKind::kSend && t.kind != TaskKind::kRecv) continue;
      int kept_peer = 0, dropped_peer = 0;
      for (uint32_t fr : out.full_rank) {
        if (full.program_of_rank[fr] != fp) continue;
        const int32_t peer = full.peers[t.group].peer_of_rank[fr];
        (peer >= 0 && new_of[peer] >= 0 ? kept_peer : dropped_peer)++;
      }
      if (kept_peer && dropped_peer)
        return Status::error("restrict: program '" + src.name + "' task " + std::to_string(i) +
                             " has kept and dropped peers on different ranks; the restriction needs the same "
                             "peer stage for every rank of a stage");
      if (dropped_peer) {
        removed[i] = 1;
        (t.kind == TaskKind::kSend ? sends : recvs)++;
      }
    }
    // Resolve dependencies through removed tasks.
    std::vector<std::vector<uint32_t>> resolved(src.tasks.size());   // for removed tasks: their live deps
    std::vector<uint32_t> new_index(src.tasks.size(), kNoDep);
    Program dst;
    dst.name = src.name;
    dst.mem = src.mem;
    dst.model_flops = src.model_flops;
    dst.hardware_flops = src.hardware_flops;
    int64_t carry_alloc = 0, carry_free = 0;
    for (uint32_t i = 0; i < src.tasks.size(); ++i) {
      const Task& t = src.tasks[i];
      std::vector<uint32_t> deps;   // full-program indices of live tasks
      for (uint32_t d : t.dep) {
        if (d == kNoDep) continue;
        if (removed[d]) deps.insert(deps.end(), resolved[d].begin(), resolved[d].end());
        else deps.push_back(d);
      }
      // Keep the latest task per stream (a later task on a stream implies the earlier ones).
      std::map<uint8_t, uint32_t> latest;
      for (uint32_t d : deps) {
        auto it = latest.find(src.tasks[d].stream);
        if (it == latest.end() || it->second < d) latest[src.tasks[d].stream] = d;
      }
      deps.clear();
      for (auto& [s, d] : latest) deps.push_back(d);
      std::sort(deps.begin(), deps.end());
      if (removed[i]) {
        resolved[i] = deps;
        carry_alloc += t.mem_alloc;
        carry_free += t.mem_free;
        continue;
      }
      if (deps.size() > 2)
        return Status::error("restrict: program '" + src.name + "' task " + std::to_string(i) +
                             " would wait for " + std::to_string(deps.size()) +
                             " tasks after removing sends/receives to dropped stages (a task waits for at most 2)");
      // The removed tasks are sends/receives, whose memory is activations; the task that takes
      // it over keeps its own mem_grads flag, which the compiler sets only on gradient casts and
      // the embedding backward, never the first task after a stage boundary's receive.
      Task nt = t;
      nt.dep[0] = nt.dep[1] = kNoDep;
      for (size_t k = 0; k < deps.size(); ++k) nt.dep[k] = new_index[deps[k]];
      nt.mem_alloc += carry_alloc;
      nt.mem_free += carry_free;
      carry_alloc = carry_free = 0;
      new_index[i] = static_cast<uint32_t>(dst.tasks.size());
      dst.tasks.push_back(nt);
    }
    if (!dst.tasks.empty()) {   // removed tasks at the end: their memory events on the last task
      dst.tasks.back().mem_alloc += carry_alloc;
      dst.tasks.back().mem_free += carry_free;
    }
    out.removed_sends += sends;
    out.removed_recvs += recvs;
    if (sends + recvs > 0)
      out.dropped.push_back(src.name + ": " + std::to_string(sends) + " sends and " + std::to_string(recvs) +
                            " receives to/from dropped stages removed (receives become local stand-ins, "
                            "ready at once)");
    p.programs.push_back(std::move(dst));
  }

  // Group tables restricted to the kept ranks.
  for (size_t gi = 0; gi < full.groups.size(); ++gi) {
    const GroupTable& g = full.groups[gi];
    GroupTable ng;
    ng.name = g.name;
    ng.copy_engine = g.copy_engine;
    ng.instance_of_rank.assign(p.num_ranks, kNoDep);
    std::map<uint32_t, std::vector<uint32_t>> by_inst;   // full instance -> new members (ascending)
    std::vector<uint32_t> inst_order;
    for (int nr = 0; nr < p.num_ranks; ++nr) {
      const uint32_t fi = g.instance_of_rank[out.full_rank[nr]];
      if (fi == kNoDep) continue;
      if (!by_inst.count(fi)) inst_order.push_back(fi);
      by_inst[fi].push_back(static_cast<uint32_t>(nr));
    }
    ng.member_offsets.push_back(0);
    int shrunk_from = 0, shrunk_to = 0;
    for (uint32_t fi : inst_order) {
      const auto& mem = by_inst[fi];
      const uint32_t ni = ng.instances();
      for (uint32_t m : mem) {
        ng.instance_of_rank[m] = ni;
        ng.members.push_back(m);
      }
      ng.member_offsets.push_back(static_cast<uint32_t>(ng.members.size()));
      if (mem.size() < g.size_of(fi)) {
        shrunk_from = static_cast<int>(g.size_of(fi));
        shrunk_to = static_cast<int>(mem.size());
      }
    }
    // Is the group used by a kept program?
    bool used = false;
    for (const Program& prog : p.programs)
      for (const Task& t : prog.tasks)
        if (t.kind == TaskKind::kCollective && t.group == gi) used = true;
    if (shrunk_from > 0 && used) {
      if (must_stay_whole(g.name))
        return Status::error(Error{"", "--ranks", std::to_string(devices),
                                   "group '" + g.name + "' would shrink from " + std::to_string(shrunk_from) + " to " +
                                       std::to_string(shrunk_to) + " ranks, which changes per-rank shapes"});
      out.dropped.push_back("group '" + g.name + "': collectives run over " + std::to_string(shrunk_to) + " of " +
                            std::to_string(shrunk_from) + " ranks (same per-rank buffer sizes)");
    }
    p.groups.push_back(std::move(ng));
  }
  for (const PeerTable& pt : full.peers) {
    PeerTable np;
    np.name = pt.name;
    for (uint32_t fr : out.full_rank) {
      const int32_t peer = pt.peer_of_rank[fr];
      np.peer_of_rank.push_back(peer >= 0 ? new_of[peer] : -1);
    }
    p.peers.push_back(std::move(np));
  }
  for (uint32_t rep : full.representatives)
    if (new_of[rep] >= 0) p.representatives.push_back(static_cast<uint32_t>(new_of[rep]));

  Status st = p.finalize();
  if (!st.ok()) return st;

  out.kept.push_back("ranks: " + std::to_string(p.num_ranks) + " of " + std::to_string(full.num_ranks) + " (" +
                     std::to_string(devices) + " devices asked for" +
                     (p.num_ranks < devices ? ", " + std::to_string(devices - p.num_ranks) + " left idle" : "") + ")");
  out.kept.push_back("one TP x CP group: tp=" + std::to_string(par.tp) + ", cp=" + std::to_string(par.cp) +
                     " (whole; same per-rank shapes)");
  out.kept.push_back("pipeline stages: " + join_ints(out.stages) + " of " + std::to_string(par.pp));
  out.kept.push_back("data-parallel replicas: " + std::to_string(dpk) + " of " + std::to_string(par.dp));
  std::string map;
  for (int nr = 0; nr < p.num_ranks; ++nr)
    map += (nr ? ", " : "") + std::to_string(nr) + "<-" + std::to_string(out.full_rank[nr]);
  out.kept.push_back("local rank <- full-plan rank: " + map);
  if (kept_pp < par.pp)
    out.dropped.push_back("pipeline stages " + std::to_string(kept_pp) + ".." + std::to_string(par.pp - 1) +
                          " (their programs are not run)");
  if (dpk < par.dp)
    out.dropped.push_back("data-parallel replicas " + std::to_string(dpk) + ".." + std::to_string(par.dp - 1));
  return out;
}

}  // namespace trainsim
