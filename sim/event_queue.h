// File: sim/event_queue.h
// The event engine's future-event set: a binary heap over a std::vector of small plain events
// (STYLE.md 3-4). Order is total and chosen: (time, phase, insertion sequence), so equal times
// pop in FIFO order within a phase and a run never depends on pointer values.
// No allocation per event once the vector has grown to the working-set size (reserve()).
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
  size_t size() const { return heap_.size(); }
  uint64_t pushed() const { return seq_; }

  // REQUIRES: phase < 256; at most 2^56 pushes per queue.
  void push(Time when, uint8_t phase, uint8_t type, uint32_t a, uint32_t b) {
    Event e{when, (static_cast<uint64_t>(phase) << 56) | seq_++, a, b, type};
    heap_.push_back(e);
    sift_up(heap_.size() - 1);
  }
  const Event& top() const { return heap_.front(); }
  Event pop() {
    Event out = heap_.front();
    Event last = heap_.back();
    heap_.pop_back();
    if (!heap_.empty()) {
      heap_[0] = last;
      sift_down(0);
    }
    return out;
  }

 private:
  static bool before(const Event& x, const Event& y) {
    return x.when < y.when || (x.when == y.when && x.order < y.order);
  }
  void sift_up(size_t i) {
    Event e = heap_[i];
    while (i > 0) {
      size_t parent = (i - 1) >> 1;
      if (!before(e, heap_[parent])) break;
      heap_[i] = heap_[parent];
      i = parent;
    }
    heap_[i] = e;
  }
  void sift_down(size_t i) {
    const size_t n = heap_.size();
    Event e = heap_[i];
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

  std::vector<Event> heap_;
  uint64_t seq_ = 0;
};

}  // namespace trainsim
