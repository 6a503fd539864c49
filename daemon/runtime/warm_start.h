// Warm start: what tuning a target settled on is remembered (learned.json in
// the state directory) and, after a restart, offered to the engine as the
// first provisional config (Engine::warm_start) once the workload looks the
// same as when it was learned. The engine then judges it like any
// speculation, against the baseline measured just before: the safety
// envelope reverts it if it hurts, the actor confirms or overrides it. A
// workload that looks different gets a normal search.
//
// "Looks the same" is a workload signature taken under the baseline from the
// session's first measured windows: how many CPUs the target keeps busy
// (on-CPU time / wall time) and how often it sleeps voluntarily (requests
// waited for, per second). Two signatures match when both figures are within
// `match_decades` orders of magnitude of each other (warm_start.match_decades,
// default 0.5: a factor of ~3): what tunes a periodic task that sleeps 500
// times a second does not tune a CPU-bound batch job, while the same service
// under a somewhat different load keeps its shape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/knob_info.h"
#include "common/window.h"
#include "runtime/state_file.h"
#include "target/target.h"

namespace specact {

struct WorkloadSignature {
  // Below these the figures are counted at them: an idle target's exact
  // idleness says nothing about its shape (0.1 % of a CPU, one sleep in 10 s).
  static constexpr double kMinOncpuShare = 1e-3;
  static constexpr double kMinSleepsPerS = 0.1;

  double oncpu_share = 0;   // CPUs kept busy by the target: on-CPU time / wall time
  double sleeps_per_s = 0;  // voluntary context switches per second

  // The larger of the two log10 differences (floors applied).
  double distance(const WorkloadSignature& o) const;
  bool matches(const WorkloadSignature& o, double decades) const { return distance(o) <= decades; }
  nlohmann::json to_json() const;
  // Throws std::runtime_error for anything but two finite non-negative numbers.
  static WorkloadSignature from_json(const nlohmann::json& j);
  std::string describe() const;  // "0.3 CPU, 1e+03 sleeps/s"
};

// Sums the measured windows of a session until its signature is taken.
class SignatureProbe {
 public:
  void add(const Window& w);
  // The signature of the windows added so far; nullopt before any.
  std::optional<WorkloadSignature> signature() const;

 private:
  double oncpu_ms_ = 0, duration_ms_ = 0;
  uint64_t nvcsw_ = 0;
};

// What a target's config is remembered under: its JSON for a unit, cgroup or
// comm target, which name the same workload after a restart; nullopt for a
// pid target, whose pids do not.
std::optional<nlohmann::json> learned_key(const TargetSpec& t);

// The file of remembered configs.
class LearnedConfigs {
 public:
  static constexpr const char* kFileName = "learned.json";
  static constexpr const char* kKind = "specactd-learned";
  static constexpr int kFormat = 1;
  // Per entry: a key (a cgroup path of at most 4096 bytes), a config of a
  // catalogue's knobs, a few numbers. 64 KiB each at most.
  static constexpr size_t kMaxEntryBytes = 64u << 10;
  static constexpr size_t kMaxKnobs = 256;

  struct Entry {
    nlohmann::json key;  // learned_key()
    Metric metric = Metric::ServiceP95;
    WorkloadSignature signature;   // taken under the baseline
    Config config;                 // the knobs tuning moved away from the baseline (pins excluded)
    std::optional<double> p95_us;  // the confirmed config's pooled p95 when learned
    std::string learned_at;        // UTC, ISO 8601
    std::string reason;            // "confirmed" or "converged"
    nlohmann::json to_json() const;
    // Throws std::runtime_error naming the field.
    static Entry from_json(const nlohmann::json& j);
  };

  explicit LearnedConfigs(size_t max_entries)
      : max_entries_(max_entries < 1 ? 1 : max_entries),
        file_(kFileName, kKind, kFormat, max_entries_ * kMaxEntryBytes) {}
  void open(const std::string& state_dir) { file_.open(state_dir); }
  const std::string& path() const { return file_.path(); }
  // Reads the file (one that cannot be trusted is set aside; then nothing is
  // remembered). Entries beyond max_entries are dropped, oldest first.
  StateFile::Loaded load();

  // The entry for (key, metric) whose signature is within `decades` of
  // `sig`, the closest one; nullptr when none.
  const Entry* match(const nlohmann::json& key, Metric metric, const WorkloadSignature& sig,
                     double decades) const;
  // The closest entry for (key, metric) whatever its signature; nullptr when none.
  const Entry* closest(const nlohmann::json& key, Metric metric,
                       const WorkloadSignature& sig) const;
  // Remembers `e` in place of every entry of its key and metric whose
  // signature matches (a workload keeps one config per shape), drops the
  // least recently learned beyond max_entries, and writes the file. "" or the
  // error.
  std::string remember(Entry e, double decades);
  // Forgets the entries of (key, metric) that match `sig` and writes the
  // file if any was. "" or the error.
  std::string forget(const nlohmann::json& key, Metric metric, const WorkloadSignature& sig,
                     double decades);
  size_t size() const { return entries_.size(); }

 private:
  std::string save() const;
  size_t max_entries_;
  StateFile file_;
  std::vector<Entry> entries_;  // least recently learned first
};

// The knobs in which `confirmed` differs from `baseline`, without `pinned`
// ones: what tuning learned (a pin is the user's, and is restored as a pin).
Config learned_config(const Config& confirmed, const Config& baseline,
                      const std::vector<std::string>& pinned);

// "2026-12-07T01:02:03Z"
std::string utc_now_iso8601();

// Where warm start stands in one session (Session::warm).
struct WarmStartProgress {
  SignatureProbe probe;
  // Taken once the baseline is measured well enough to judge against.
  std::optional<WorkloadSignature> signature;
  bool offered = false;               // the remembered config was offered or ruled out
  std::optional<Config> warm_config;  // what the warm start put in force, until judged
  // A decision the engine made since the last look ("confirmed" or
  // "converged"); what was last remembered for this session.
  std::string decided;
  std::optional<nlohmann::json> remembered;
};

}  // namespace specact
