#include "agents/policy/rules.h"

#include <cmath>

namespace specact::policy {

int64_t knob_value(const PolicyInput& in, const KnobInfo& k, const Config& c) {
  if (auto it = c.find(k.name); it != c.end()) return it->second;
  if (auto it = in.current.find(k.name); it != in.current.end()) return it->second;
  if (k.current) return *k.current;
  if (k.default_value) return *k.default_value;
  return k.domain.min;
}

Config full_config(const PolicyInput& in, const Config& c) {
  Config out;
  for (const auto& k : in.knobs) out[k.name] = k.domain.clamp(knob_value(in, k, c));
  return out;
}

bool same_config(const PolicyInput& in, const Config& a, const Config& b) {
  for (const auto& k : in.knobs)
    if (!evidence::same_value(k, knob_value(in, k, a), knob_value(in, k, b))) return false;
  return true;
}

const ConfigEvidence* find_evidence(const PolicyInput& in,
                                    const std::vector<ConfigEvidence>& evidence, const Config& c) {
  // An exact match first: neighbours within a knob's tolerance are distinct
  // measurements, and the exact one is what was asked for.
  const Config full = full_config(in, c);
  for (const auto& e : evidence)
    if (full_config(in, e.config) == full) return &e;
  for (const auto& e : evidence)
    if (same_config(in, e.config, c)) return &e;
  return nullptr;
}

std::optional<double> burst_us(const PolicyInput& in) {
  if (!in.oncpu_ms_per_s || !in.sleeps_per_s || *in.sleeps_per_s <= 0) return std::nullopt;
  return *in.oncpu_ms_per_s * 1e3 / *in.sleeps_per_s;
}

std::optional<double> cpu_share(const PolicyInput& in) {
  if (!in.oncpu_ms_per_s || in.online_cpus <= 0) return std::nullopt;
  return *in.oncpu_ms_per_s / (1e3 * in.online_cpus);
}

bool saturating(const PolicyInput& in) {
  auto s = cpu_share(in);
  return s && *s >= in.search.saturated_share;
}

bool cpu_bound(const PolicyInput& in, const KnobInfo& slice) {
  if (!in.oncpu_ms_per_s || *in.oncpu_ms_per_s <= 0) return false;
  auto b = burst_us(in);
  return !b || *b > static_cast<double>(slice.domain.max);
}

std::optional<int64_t> slice_for_burst(const PolicyInput& in, const KnobInfo& slice) {
  if (!slice.request_size || cpu_bound(in, slice)) return std::nullopt;
  auto b = burst_us(in);
  if (!b || *b <= 0) return std::nullopt;
  const double raw = *b * (1 + in.search.slice_burst_margin);
  const double unit = std::pow(10.0, std::floor(std::log10(raw)) - 1);
  return slice.domain.clamp(std::llround(std::round(raw / unit) * unit));
}

bool searched(const KnobInfo& k) { return k.effect != KnobEffect::Conditional; }

int screen_rank(const PolicyInput& in, const KnobInfo& k) {
  const bool own = k.family == "task" || k.name.rfind("cgroup.target.", 0) == 0;
  const bool relative = k.effect == KnobEffect::Relative;
  int rank = k.request_size ? 0 : (own ? 1 : 3) + (relative ? 1 : 0);
  if (relative && saturating(in)) rank += 10;
  return rank;
}

int first_direction(const PolicyInput& in, const KnobInfo& k, size_t order) {
  if (k.request_size) {
    if (cpu_bound(in, k)) return +1;
    if (auto s = slice_for_burst(in, k)) return *s < knob_value(in, k, in.current) ? -1 : +1;
  }
  // No rule says which way: alternate between knobs, varied by the seed.
  return ((in.seed >> 8) + order) % 2 ? +1 : -1;
}

}  // namespace specact::policy
