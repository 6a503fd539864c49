// A warning for a failure that repeats every window (a full disk, a journal
// that is gone): logged once a minute, like history.jsonl's, not once per
// window.
#pragma once

#include <string>

namespace specact::observe {

class RateLimitedWarning {
 public:
  static constexpr long kIntervalS = 60;
  // Logs `message` at warning level unless one was logged less than
  // kIntervalS seconds ago (CLOCK_MONOTONIC). True when it was logged.
  bool warn(const std::string& message);

 private:
  long last_s_ = -1;
};

}  // namespace specact::observe
