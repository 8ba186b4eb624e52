// File: sim/event_queue.h
// The event engine's future-event set (STYLE.md 3-4). Order is total and chosen:
// (time, phase, insertion sequence), so equal times pop FIFO within a phase and a run never
// depends on pointer values.
//
// Implementation: a binary heap over a std::vector of small plain keys, where events with the
// same (time, phase) pushed back to back share one heap entry (a batch) drained in FIFO order
// (OMNeT++/SST's same-time batching). Replicas of a training job run in lockstep, so most
// events arrive in such runs and skip the heap. New events are only ever appended to the most
// recently created batch, which sorts last among batches of its (time, phase), so the pop order
// is exactly that of a plain heap ordered by (time, phase, sequence) (tests/sim checks it
// against a sorted-vector oracle). Batches and their buffers are recycled: no allocation per
// event once the working set has been reached.
//
//   EventQueue q;
//   q.push(Time::us(5), /*phase=*/0, /*type=*/1, /*a=*/rank, /*b=*/stream);
//   while (!q.empty()) { Event e = q.pop(); ... }
//
// Thread-safety: none; one queue per replay.
#pragma once
#include <cstdint>
#include <vector>

#include "sim/units.h"

namespace trainsim {

struct Event {
  Time when;
  uint64_t order;   // (phase << 56) | insertion sequence
  uint32_t a;
  uint32_t b;
  uint8_t type;
  uint8_t phase() const { return static_cast<uint8_t>(order >> 56); }
};

class EventQueue {
 public:
  void reserve(size_t n) { heap_.reserve(n); }
  bool empty() const { return heap_.empty(); }
  uint64_t pushed() const { return seq_; }

  // REQUIRES: phase < 256; at most 2^56 pushes per queue.
  void push(Time when, uint8_t phase, uint8_t type, uint32_t a, uint32_t b) {
    const uint64_t order = (static_cast<uint64_t>(phase) << 56) | seq_++;
    if (last_ != kNone) {
      Batch& lb = batches_[last_];
      if (lb.when == when && lb.phase == phase) {
        lb.ev.push_back(Ev{a, b, type, order});
        return;
      }
    }
    uint32_t id;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
    } else {
      id = static_cast<uint32_t>(batches_.size());
      batches_.emplace_back();
    }
    Batch& bt = batches_[id];
    bt.when = when;
    bt.phase = phase;
    bt.head = 0;
    bt.ev.clear();
    bt.ev.push_back(Ev{a, b, type, order});
    last_ = id;
    heap_.emplace_back();
    sift_up(heap_.size() - 1, Key{when, order, id});
  }

  // REQUIRES: !empty().
  Event pop() {
    const Key k = heap_.front();
    Batch& bt = batches_[k.id];
    const Ev e = bt.ev[bt.head++];
    const Event out{k.when, e.order, e.a, e.b, e.type};
    if (bt.head == bt.ev.size()) {
      free_.push_back(k.id);
      if (last_ == k.id) last_ = kNone;
      const Key tail = heap_.back();
      heap_.pop_back();
      if (!heap_.empty()) sift_down(0, tail);
    }
    return out;
  }

 private:
  static constexpr uint32_t kNone = 0xffffffffu;
  struct Ev {
    uint32_t a, b;
    uint8_t type;
    uint64_t order;
  };
  struct Batch {
    Time when;
    uint8_t phase = 0;
    uint32_t head = 0;
    std::vector<Ev> ev;
  };
  struct Key {
    Time when;
    uint64_t order;   // of the batch's first event
    uint32_t id;
  };
  static bool before(const Key& x, const Key& y) {
    return x.when < y.when || (x.when == y.when && x.order < y.order);
  }
  // Both sifts move a hole at i and write `e` once where it belongs (the key is passed in a
  // register rather than stored and read back: a store-forwarding stall on every event).
  void sift_up(size_t i, const Key e) {
    while (i > 0) {
      size_t parent = (i - 1) >> 1;
      if (!before(e, heap_[parent])) break;
      heap_[i] = heap_[parent];
      i = parent;
    }
    heap_[i] = e;
  }
  void sift_down(size_t i, const Key e) {
    const size_t n = heap_.size();
    for (;;) {
      size_t c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && before(heap_[c + 1], heap_[c])) ++c;
      if (!before(heap_[c], e)) break;
      heap_[i] = heap_[c];
      i = c;
    }
    heap_[i] = e;
  }

  std::vector<Key> heap_;
  std::vector<Batch> batches_;
  std::vector<uint32_t> free_;
  uint32_t last_ = kNone;
  uint64_t seq_ = 0;
};

}  // namespace trainsim
