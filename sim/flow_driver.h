// File: sim/flow_driver.h
// How the replay drives a FlowNetwork from the EventQueue (STYLE.md 4: one pending event per
// resource, cancel with a tombstone). The network has at most one live "next completion"
// event in the queue. Whenever the network changes (flows started or cancelled, a capacity
// changed, completions handled), sync() asks for next_completion(); if it moved, it bumps a
// version and pushes a new event carrying that version in Event::a. The old event stays in
// the queue as a tombstone: when it pops, its version is not the current one and on_event()
// ignores it. Pushing is O(log events); nothing is ever searched for or removed.
//
//   EventQueue q;  FlowNetwork net;  FlowEventDriver drv(net, q, kPhaseNet, kEvFlow);
//   // a handler that starts a collective at `now`:
//   for (const FlowSpec& s : flows) net.start(now, s.path, s.size);   // one batch
//   drv.sync();
//   // the main loop:
//   while (!q.empty()) {
//     Event e = q.pop();
//     if (e.type == kEvFlow) {
//       done.clear();
//       if (drv.on_event(e, &done)) for (auto& c : done) wake_waiters_of(c.id, e.when);
//     } else { ... other handlers; they call drv.sync() after touching net ... }
//   }
//
// Same-instant order: handlers that start flows at t may run before or after the completion
// event at t; FlowNetwork accepts both (see FlowNetwork::start), and all changes at t are
// solved in one pass. `tag` (Event::b) tells several networks apart, if a replay has several.
// Thread-safety: none.
#pragma once
#include <cstdint>
#include <vector>

#include "sim/event_queue.h"
#include "sim/flow.h"

namespace trainsim {

class FlowEventDriver {
 public:
  FlowEventDriver(FlowNetwork& net, EventQueue& q, uint8_t phase, uint8_t type, uint32_t tag = 0)
      : net_(net), q_(q), phase_(phase), type_(type), tag_(tag) {}

  // Call after any change to the network; schedules its next completion if it moved.
  void sync() {
    const Time t = net_.next_completion();
    if (t == scheduled_) return;
    ++version_;  // whatever was scheduled is now a tombstone
    scheduled_ = t;
    if (t != Time::max()) {
      q_.push(t, phase_, type_, version_, tag_);
      ++pushed_;
    }
  }

  // Handles a popped event of this driver (e.type == type, e.b == tag). Returns false and does
  // nothing for a stale event. Otherwise advances the network to e.when, appends the flows
  // that finished to `done` (ordered by id) and reschedules.
  bool on_event(const Event& e, std::vector<FlowCompletion>* done) {
    if (e.a != version_) {
      ++stale_;
      return false;
    }
    scheduled_ = Time::max();
    net_.advance_to(e.when, done);
    sync();
    return true;
  }

  uint64_t events_pushed() const { return pushed_; }
  uint64_t stale_events() const { return stale_; }

 private:
  FlowNetwork& net_;
  EventQueue& q_;
  uint8_t phase_;
  uint8_t type_;
  uint32_t tag_;
  uint32_t version_ = 0;   // wraps after 2^32 reschedules; only equality matters
  Time scheduled_ = Time::max();
  uint64_t pushed_ = 0;
  uint64_t stale_ = 0;
};

}  // namespace trainsim
