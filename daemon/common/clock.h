// Time as an injected dependency: the engine only ever sees a Clock, so tests
// drive it in virtual time.
#pragma once

#include <cstdint>
#include <ctime>

namespace specact {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ns() const = 0;  // monotonic
};

class SteadyClock final : public Clock {
 public:
  int64_t now_ns() const override {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ns = 0) : now_(start_ns) {}
  int64_t now_ns() const override { return now_; }
  void advance_ns(int64_t d) { now_ += d; }
  void set_ns(int64_t t) { now_ = t; }

 private:
  int64_t now_;
};

}  // namespace specact
