// The checks a requested value passes before the knobs layer reads or writes
// anything for it: the allow/deny lists, the knob's domain (an enum index
// must be one of its values, a number is clamped into the range) and the
// per-knob rate limit. Pure: no kernel, no files, time is passed in.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/knob_info.h"

namespace specact {
struct KnobsConfig;
}

namespace specact::knobs {

class WriteGate {
 public:
  // allow: fnmatch patterns, empty = every knob; deny wins over allow.
  // min_interval_ms: a knob written less than this ago is not written again
  // (0 = no limit).
  WriteGate(std::vector<std::string> allow, std::vector<std::string> deny, int min_interval_ms);
  static WriteGate from(const KnobsConfig& c);

  bool allowed(const std::string& knob) const;
  // "" when `knob` may be written at all, else why not (one sentence).
  std::string check_allowed(const std::string& knob) const;
  // The value to write: `requested` clamped into k.domain; nullopt (and *why)
  // when an enum knob is given an index that is not one of its values.
  std::optional<int64_t> check_value(const KnobInfo& k, int64_t requested, std::string* why) const;
  // "" when `knob` may be written at now_ns, else why not.
  std::string check_rate(const std::string& knob, int64_t now_ns) const;
  // A write of `knob` was attempted at now_ns (written or failed: either way
  // the kernel was asked).
  void wrote(const std::string& knob, int64_t now_ns);
  void forget_writes();  // after a restore: the next write is not rate-limited

 private:
  std::vector<std::string> allow_, deny_;
  int64_t min_interval_ns_;
  std::map<std::string, int64_t> last_write_ns_;
};

}  // namespace specact::knobs
