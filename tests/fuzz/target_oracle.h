// What every path that accepts a target must guarantee: the TargetSpec says
// what the JSON said (no narrowed pid, nothing invented) and survives its own
// round trip. Used by the config and D-Bus harnesses.
#pragma once

#include <climits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "target/target.h"

namespace specact::fuzz {

// What the daemon keeps (status, history, D-Bus) must read back as itself.
inline void check_round_trip(const TargetSpec& s) {
  const nlohmann::json back = s.to_json();
  TargetSpec again = TargetSpec::from_json(back);  // must not throw: it came from us
  FUZZ_CHECK(again.to_json() == back, "target round trip changed " + back.dump());
  FUZZ_CHECK(valid_utf8(s.describe()), "describe() is not UTF-8");
}

inline void check_target(const TargetSpec& s, const nlohmann::json& j) {
  if (s.kind != TargetSpec::Kind::Pid) {
    FUZZ_CHECK(s.pids.empty(), "non-pid target carries pids");
    check_round_trip(s);
    return;
  }
  FUZZ_CHECK(!s.pids.empty(), "pid target without pids");
  std::vector<nlohmann::json> given;
  if (j.contains("pid"))
    given.push_back(j.at("pid"));
  else
    for (const auto& v : j.at("pids")) given.push_back(v);
  // Accepted pids may be de-duplicated or reordered, never changed or invented.
  std::set<int64_t> wanted;
  bool out_of_range = false;
  for (const auto& v : given) {
    FUZZ_CHECK(v.is_number_integer(), "accepted a non-integer pid " + v.dump());
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT32_MAX))
      out_of_range = true;
    else if (v.get<int64_t>() <= 0 || v.get<int64_t>() > INT32_MAX)
      out_of_range = true;
    else
      wanted.insert(v.get<int64_t>());
  }
  std::set<int64_t> got(s.pids.begin(), s.pids.end());
  if (out_of_range) {
    FUZZ_CHECK(false, "accepted out-of-range pid in " + nlohmann::json(given).dump());
  }
  FUZZ_CHECK(got == wanted, "pids changed: given " + nlohmann::json(given).dump() + ", got " +
                                nlohmann::json(s.pids).dump());
  check_round_trip(s);
}

}  // namespace specact::fuzz
