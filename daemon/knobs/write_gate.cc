#include "knobs/write_gate.h"

#include <fnmatch.h>

#include <algorithm>

#include "knobs/knob_manager.h"

namespace specact::knobs {
namespace {

bool matches_any(const std::vector<std::string>& patterns, const std::string& name) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
    return fnmatch(p.c_str(), name.c_str(), 0) == 0;
  });
}

}  // namespace

WriteGate::WriteGate(std::vector<std::string> allow, std::vector<std::string> deny,
                     int min_interval_ms)
    : allow_(std::move(allow)),
      deny_(std::move(deny)),
      min_interval_ns_(int64_t{std::max(min_interval_ms, 0)} * 1'000'000) {}

WriteGate WriteGate::from(const KnobsConfig& c) {
  return WriteGate(c.allow, c.deny, c.min_interval_ms);
}

bool WriteGate::allowed(const std::string& knob) const {
  return (allow_.empty() || matches_any(allow_, knob)) && !matches_any(deny_, knob);
}

std::string WriteGate::check_allowed(const std::string& knob) const {
  return allowed(knob) ? "" : knob + " is not in the allow-list (knobs.allow / knobs.deny)";
}

std::optional<int64_t> WriteGate::check_value(const KnobInfo& k, int64_t requested,
                                              std::string* why) const {
  const KnobDomain& dom = k.domain;
  if (dom.scale == KnobScale::Enum && !dom.contains(requested)) {
    std::string vals;
    for (size_t i = 0; i < dom.enum_values.size(); ++i)
      vals += (i ? ", " : "") + std::to_string(i) + "=" + dom.enum_values[i];
    *why = std::to_string(requested) + " is not a value of " + k.name + " (" + vals + ")";
    return std::nullopt;
  }
  return dom.clamp(requested);
}

std::string WriteGate::check_rate(const std::string& knob, int64_t now_ns) const {
  auto last = last_write_ns_.find(knob);
  if (min_interval_ns_ == 0 || last == last_write_ns_.end() ||
      now_ns - last->second >= min_interval_ns_)
    return "";
  return knob + " was written " + std::to_string((now_ns - last->second) / 1'000'000) +
         " ms ago (min_interval_ms " + std::to_string(min_interval_ns_ / 1'000'000) + ")";
}

void WriteGate::wrote(const std::string& knob, int64_t now_ns) { last_write_ns_[knob] = now_ns; }

void WriteGate::forget_writes() { last_write_ns_.clear(); }

}  // namespace specact::knobs
