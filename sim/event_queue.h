// File: sim/event_queue.h
// The event engine's future-event set (STYLE.md 3-4). Order is total and chosen:
// (time, phase, insertion sequence), so equal times pop FIFO within a phase and a run never
// depends on pointer values.
//
// Implementation: while at most kSortedMax entries are queued (a fast-mode replay has a dozen
// or two) a sorted array, popped at its front and entered by insertion from its nearer end (from
// the back, or from the front into the slot a pop freed when the new key sorts before the
// middle entry: half the moves of always inserting from the back); beyond
// that a binary heap over the same std::vector of small plain keys (an ascending array is a
// heap already), until it shrinks below kHeapMin. Any correct priority queue pops the same
// sequence, the order being total. Events with the same (time, phase) pushed back to back
// share one entry (a batch) drained in FIFO order
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
#include <algorithm>
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
  void reserve(size_t n) {
    if (n > heap_.size()) heap_.resize(n);
  }
  bool empty() const { return lo_ == n_; }
  uint64_t pushed() const { return seq_; }

  // REQUIRES: phase < 256; at most 2^56 pushes per queue.
  void push(Time when, uint8_t phase, uint8_t type, uint32_t a, uint32_t b) {
    const uint64_t order = (static_cast<uint64_t>(phase) << 56) | seq_++;
    if (last_ != kNone && last_when_ == when && last_phase_ == phase) {
      append(Ev{a, b, type, order});
      return;
    }
    last_when_ = when;
    last_phase_ = phase;
    const Key e{when, order, a, b, kNone, type};
    // The new entry becomes the last one: where others move meanwhile does not matter.
    if (sorted_) {
      if (n_ - lo_ < kSortedMax) {
        // Insertion from the nearer end: from the front, into the slot the last pop freed,
        // when the new event sorts before the middle entry; from the back otherwise.
        if (lo_ > 0 && n_ > lo_ && before(e, heap_[lo_ + (n_ - lo_) / 2])) {
          size_t i = --lo_;
          while (i + 1 < n_ && before(heap_[i + 1], e)) {
            heap_[i] = heap_[i + 1];
            ++i;
          }
          heap_[i] = e;
          last_ = static_cast<uint32_t>(i);
          return;
        }
        if (n_ == heap_.size()) make_room();
        size_t i = n_++;
        while (i > lo_ && before(e, heap_[i - 1])) {
          heap_[i] = heap_[i - 1];
          --i;
        }
        heap_[i] = e;
        last_ = static_cast<uint32_t>(i);
        return;
      }
      to_heap();
    }
    if (n_ == heap_.size()) grow();
    size_t i = n_++;
    while (i > 0) {
      const size_t parent = (i - 1) >> 1;
      if (!before(e, heap_[parent])) break;
      heap_[i] = heap_[parent];
      i = parent;
    }
    heap_[i] = e;
    last_ = static_cast<uint32_t>(i);
  }

  // REQUIRES: !empty().
  Event pop() {
    Key& top = heap_[lo_];
    const Event out{top.when, top.order, top.a, top.b, top.type};
    if (top.batch != kNone) {
      Batch& bt = batches_[top.batch];
      if (bt.head < bt.more.size()) {
        // The batch's next event takes the top in place: it has the same (time, phase) and was
        // pushed before any other entry of that (time, phase) still queued (those were
        // created later), so the top stays the least key.
        const Ev& e = bt.more[bt.head++];
        top.order = e.order;
        top.a = e.a;
        top.b = e.b;
        top.type = e.type;
        return out;
      }
      free_.push_back(top.batch);
    }
    if (last_ == lo_) last_ = kNone;
    if (sorted_) {
      if (++lo_ == n_) lo_ = n_ = 0;
      return out;
    }
    const size_t n = --n_;
    if (n > 0) {   // the tail entry fills the hole at the root and sinks
      const Key e = heap_[n];
      const bool e_is_last = last_ == n;
      size_t i = 0;
      for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(heap_[c + 1], heap_[c])) ++c;
        if (!before(heap_[c], e)) break;
        heap_[i] = heap_[c];
        if (c == last_) last_ = static_cast<uint32_t>(i);
        i = c;
      }
      heap_[i] = e;
      if (e_is_last) last_ = static_cast<uint32_t>(i);
    }
    if (n < kHeapMin) to_sorted();
    return out;
  }

 private:
  static constexpr uint32_t kNone = 0xffffffffu;
  // Up to kSortedMax entries the queue is a sorted array [lo_, n_) (popped at lo_, entered by
  // insertion from the nearer end): cheaper than a heap for the few events pending in a fast-mode
  // replay. Beyond that it is a binary heap in [0, n_) (an ascending array is one already),
  // until it shrinks below kHeapMin again.
  static constexpr size_t kSortedMax = 32, kHeapMin = 8;
  struct Ev {
    uint32_t a, b;
    uint8_t type;
    uint64_t order;
  };
  // The events after the first of one (time, phase) pushed back to back; the first lives in the
  // entry, which names its batch once a second event joins it.
  struct Batch {
    uint32_t head = 0;           // next of `more` to pop
    std::vector<Ev> more;
  };
  struct Key {
    Time when;
    uint64_t order;   // of the event in the entry (the batch's first until it drains)
    uint32_t a, b;
    uint32_t batch;   // kNone while the entry holds a single event
    uint8_t type;
  };
  static bool before(const Key& x, const Key& y) {
    return x.when < y.when || (x.when == y.when && x.order < y.order);
  }
  // A second (or later) event for the entry created last, heap_[last_].
  __attribute__((noinline)) void append(const Ev& ev) {
    Key& k = heap_[last_];
    if (k.batch == kNone) {
      if (!free_.empty()) {
        k.batch = free_.back();
        free_.pop_back();
      } else {
        k.batch = static_cast<uint32_t>(batches_.size());
        batches_.emplace_back();
      }
      batches_[k.batch].head = 0;
      batches_[k.batch].more.clear();
    }
    batches_[k.batch].more.push_back(ev);
  }
  __attribute__((noinline)) void grow() { heap_.resize(std::max<size_t>(64, 2 * heap_.size())); }
  // Moves the sorted entries down to index 0.
  void compact() {
    if (lo_ == 0) return;
    std::copy(heap_.begin() + static_cast<std::ptrdiff_t>(lo_), heap_.begin() + static_cast<std::ptrdiff_t>(n_),
              heap_.begin());
    if (last_ != kNone) last_ -= static_cast<uint32_t>(lo_);
    n_ -= lo_;
    lo_ = 0;
  }
  __attribute__((noinline)) void make_room() {
    if (lo_ > 0) compact();
    else grow();
  }
  __attribute__((noinline)) void to_heap() {
    compact();
    sorted_ = false;
  }
  __attribute__((noinline)) void to_sorted() {
    const uint64_t last_order = last_ != kNone ? heap_[last_].order : 0;
    std::sort(heap_.begin(), heap_.begin() + static_cast<std::ptrdiff_t>(n_), before);
    if (last_ != kNone)
      for (size_t i = 0; i < n_; ++i)
        if (heap_[i].order == last_order) last_ = static_cast<uint32_t>(i);
    sorted_ = true;
  }

  std::vector<Key> heap_;        // entries [lo_, n_); the rest is spare room
  size_t lo_ = 0, n_ = 0;
  bool sorted_ = true;
  std::vector<Batch> batches_;
  std::vector<uint32_t> free_;
  uint32_t last_ = kNone;        // index of the entry created last, while it is queued
  Time last_when_ = Time::zero();
  uint8_t last_phase_ = 0;
  uint64_t seq_ = 0;
};

}  // namespace trainsim
