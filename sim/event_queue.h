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
// against a sorted-vector oracle). A heap entry carries the event at the head of its batch, so
// an event alone in its batch (every event of a fast-mode replay, nearly) is written once and
// read once; the rest of a batch waits in a side buffer. Batches and their buffers are
// recycled: no allocation per event once the working set has been reached.
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
        lb.more.push_back(Ev{a, b, type, order});
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
    bt.more.clear();
    last_ = id;
    heap_.emplace_back();
    sift_up(heap_.size() - 1, Key{when, order, a, b, id, type});
  }

  // REQUIRES: !empty().
  Event pop() {
    Key& top = heap_.front();
    const Event out{top.when, top.order, top.a, top.b, top.type};
    Batch& bt = batches_[top.id];
    if (bt.head < bt.more.size()) {
      // The batch's next event takes the top in place: it has the same (time, phase) and was
      // pushed before any other entry of that (time, phase) still queued (those belong to
      // batches opened later), so the top stays the least key.
      const Ev& e = bt.more[bt.head++];
      top.order = e.order;
      top.a = e.a;
      top.b = e.b;
      top.type = e.type;
      return out;
    }
    free_.push_back(top.id);
    if (last_ == top.id) last_ = kNone;
    const Key tail = heap_.back();
    heap_.pop_back();
    if (!heap_.empty()) sift_down(0, tail);
    return out;
  }

 private:
  static constexpr uint32_t kNone = 0xffffffffu;
  struct Ev {
    uint32_t a, b;
    uint8_t type;
    uint64_t order;
  };
  // A batch: the events of one (time, phase) pushed back to back. Its first event lives in the
  // heap entry; the others wait in `more`.
  struct Batch {
    Time when;
    uint8_t phase = 0;
    uint32_t head = 0;           // next of `more` to pop
    std::vector<Ev> more;
  };
  struct Key {
    Time when;
    uint64_t order;   // of the event in the entry (the batch's first until it drains)
    uint32_t a, b;
    uint32_t id;      // its batch
    uint8_t type;
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
