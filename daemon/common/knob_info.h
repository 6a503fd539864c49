// What the engine and the agents know about a knob: its name, domain and
// meaning. The knob layer (daemon/knobs) produces these; nothing here touches
// the kernel.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace specact {

// A configuration: knob name -> value. Enum knobs use the index into
// KnobDomain::enum_values.
using Config = std::map<std::string, int64_t>;

enum class KnobScale { Linear, Log, Enum };

// How a knob can move the target's latency (a scheduler fact recorded in the
// knob's descriptor; the builtin search orders its screening by it).
enum class KnobEffect {
  // Changes how the target's own requests are scheduled (slice, policy,
  // preemption and balancing behaviour).
  Direct,
  // Changes only the target's share against other tasks (weights, priority,
  // group fairness, and every knob of the background set). When the target
  // alone keeps every CPU busy it mostly competes with itself, and a relative
  // knob cannot shorten those waits.
  Relative,
  // Changes anything only under a condition most machines do not meet
  // (SCHED_RR tasks, a CPU quota, several NUMA nodes).
  Conditional,
};
std::string to_string(KnobEffect e);
std::optional<KnobEffect> knob_effect_from_string(const std::string& s);

struct KnobDomain {
  int64_t min = 0;
  int64_t max = 0;
  KnobScale scale = KnobScale::Linear;
  std::vector<std::string> enum_values;  // for KnobScale::Enum, min=0, max=size-1

  bool contains(int64_t v) const { return v >= min && v <= max; }
  int64_t clamp(int64_t v) const { return v < min ? min : (v > max ? max : v); }
};

struct KnobInfo {
  std::string name;         // stable: task.slice_us, sysctl.kernel.timer_migration, ...
  std::string family;       // task, background, sysctl, sched, cgroup
  std::string unit;         // us, ns, bool, enum, weight, ...
  std::string description;  // what it does and which way it moves latency (goes into prompts)
  KnobDomain domain;
  bool available = false;
  std::string unavailable_reason;        // empty when available
  std::optional<int64_t> current;        // value read now, if readable
  std::optional<int64_t> default_value;  // the kernel's default, when known
  // Two values within this distance count as "the same" (engine confirm tolerance).
  double tolerance_fraction = 0.10;
  KnobEffect effect = KnobEffect::Direct;
  // The value is the target's EEVDF request size in microseconds (the CPU
  // time it may run before a competing task with an earlier deadline takes
  // over): what a request needs is its burst.
  bool request_size = false;
};

std::string to_string(KnobScale s);
std::optional<KnobScale> knob_scale_from_string(std::string_view s);
nlohmann::json knob_info_to_json(const KnobInfo& k);
// The inverse of knob_info_to_json, for a client reading a catalogue back
// (specactctl, from ListKnobs). Lenient: a missing or mistyped field keeps its
// default, nothing throws.
KnobInfo knob_info_from_json(const nlohmann::json& j);
nlohmann::json config_to_json(const Config& c);
// Renders a value for people and prompts: enum names, plain integers otherwise.
std::string format_knob_value(const KnobInfo& k, int64_t v);
// The value an enum name stands for (its index in enum_values), or nullopt
// when the domain has no value of that name.
std::optional<int64_t> enum_value_index(const KnobDomain& d, std::string_view name);
// "name=value name=value" over the listed knobs present in c ("{}" when none).
std::string describe_config(const std::vector<KnobInfo>& knobs, const Config& c);
// "name a->b, name a->b" for the listed knobs whose value differs ("no
// change" when none); a knob missing from `from` shows as "?".
std::string describe_change(const std::vector<KnobInfo>& knobs, const Config& from,
                            const Config& to);

}  // namespace specact
