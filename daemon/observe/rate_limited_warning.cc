#include "observe/rate_limited_warning.h"

#include <ctime>

#include "common/log.h"

namespace specact::observe {

bool RateLimitedWarning::warn(const std::string& message) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (last_s_ >= 0 && now.tv_sec - last_s_ < kIntervalS) return false;
  last_s_ = now.tv_sec;
  log::warn(message);
  return true;
}

}  // namespace specact::observe
