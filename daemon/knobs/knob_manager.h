// The knobs layer: probes the scheduler/sysctl/cgroup knobs of this machine,
// and is the one gate through which specact changes any of them:
//   write gate (allow-list, enum check, clamp, rate limit) -> plan (read what
//   is there) -> journal (durable) -> write -> read back,
// the same steps for every knob; a backend per kind of access (files, threads:
// knob_backend.h) supplies the reading and writing.
// Every original value is journalled under the state directory before the
// first write, so `specactd restore` (restore_from_journal) can undo
// everything even after kill -9. Not thread-safe: call from one thread (the
// runtime's event loop).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/knob_info.h"
#include "target/target.h"

namespace specact {

class KnobsConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A sysctl added by the config, with the range specact may use.
struct ExtraSysctl {
  std::string name;  // dotted, e.g. "kernel.sched_rt_runtime_us"
  int64_t min = 0;
  int64_t max = 0;
  KnobScale scale = KnobScale::Linear;
  std::string unit;
  std::string description;
};

struct KnobsConfig {
  std::string state_dir = "/var/lib/specactd";
  std::string proc_root = "/proc";
  std::string sys_root = "/proc/sys";
  std::string debugfs_root = "/sys/kernel/debug/sched";
  std::string cgroup_root = "";  // "" = the cgroup2 mount found in mountinfo
  // Allow-list: glob patterns (fnmatch) over knob names. Empty = every known
  // knob. A knob must match `allow` and not match `deny` to be written.
  std::vector<std::string> allow;
  std::vector<std::string> deny;
  // Narrowed ranges {min,max} per knob; must lie inside the knob's domain.
  std::map<std::string, std::pair<int64_t, int64_t>> ranges;
  std::vector<ExtraSysctl> extra_sysctls;
  int min_interval_ms = 200;  // per knob: writes closer together are refused
  std::optional<TargetSpec> background;
  bool restore_on_exit = true;  // false: leave settings (and the journal) in place on exit

  // --- testing hooks (not part of the JSON) ---
  std::string kernel_release;  // "" = uname(2)
  // Returns an errno to inject for an operation ("read", "write", "probe-write",
  // "journal") on a path, or 0.
  std::function<int(std::string_view op, const std::string& path)> fault;
  // Called at named steps ("journal-committed", "wrote:<knob>", "wrote-task:<knob>")
  // so the crash test can die exactly there.
  std::function<void(std::string_view step)> on_step;

  // Parses the "knobs" section of the daemon config. Throws KnobsConfigError
  // whose message starts with the key path ("knobs.ranges.task.slice_us.max: ...").
  static KnobsConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

struct KnobResult {
  enum class Status {
    Applied,      // written and read back
    NoChange,     // already at the value: nothing written
    RateLimited,  // written too recently (min_interval_ms): not written
    Rejected,     // unknown knob, not allowed, bad enum value: not written
    Unavailable,  // not usable on this machine (reason in error)
    Yielded,      // someone else changed it: no longer managed
    Failed,       // journal or kernel write failed (error says which)
  };
  std::string knob;
  Status status = Status::Failed;
  int64_t requested = 0;
  std::optional<int64_t> written;  // after clamping
  // What the kernel reports for the knob's first instance after this apply:
  // read back after the write, or (nothing written: no-change, rate-limited,
  // a failed write or journal) the value that stayed. Unset when nothing
  // could be read (unknown, unavailable, every thread gone).
  std::optional<int64_t> read_back;
  bool clamped = false;
  std::string error;         // one sentence; empty for Applied/NoChange
  size_t tasks_written = 0;  // per-task knobs: threads changed
  size_t tasks_gone = 0;     // threads that exited mid-apply (not errors)
  size_t tasks_skipped = 0;  // realtime/deadline threads: left alone
};
std::string to_string(KnobResult::Status s);

struct ApplyResult {
  std::vector<KnobResult> results;
  bool all_ok() const;  // every knob Applied or NoChange
  // knob -> what is in force after the apply, as read from the kernel
  // (read_back), for every requested knob whose value is known; a yielded
  // knob is not specact's any more and is left out. Equals what
  // KnobManager::read_current() would say for those knobs, without probing
  // again.
  Config in_force() const;
  nlohmann::json to_json() const;
};

struct YieldEvent {
  std::string knob;
  std::string instance;  // file path, or "tid N"
  std::string expected;  // what we last read back
  std::string found;     // what is there now
  std::string detail;    // what is known about who changed it
};

struct RestoreItem {
  std::string knob;
  std::string instance;  // path or "tid N"
  std::string original;
  // restored | already | gone | left-alone (changed by someone else) | failed
  std::string outcome;
  std::string detail;
};

struct RestoreReport {
  bool ok = true;  // everything restored, or nothing to do
  bool nothing_to_do = false;
  std::string journal_path;
  std::vector<RestoreItem> items;
  std::vector<std::string> problems;  // journal-level: corrupt and kept aside, lock held, ...
  std::vector<std::string> notes;     // e.g. earlier journals kept aside that need review
  size_t count(std::string_view outcome) const;
  nlohmann::json to_json() const;
  std::string to_text() const;  // for people: one line per knob instance + a summary
};

// Puts back every knob in the journal under cfg.state_dir and clears it (keeps
// the entries that failed). Works without a running daemon; refuses while a
// live specactd holds the state directory. A truncated, corrupt (checksum
// mismatch included) or newer-format journal is renamed aside under a unique
// name and reported (ok=false), never discarded, and nothing is restored from
// it. Writes go only to the knob files below cfg.sys_root, cfg.debugfs_root
// and the cgroup v2 root, whatever the journal says: a journal naming any
// other file is refused as a whole. `force` also restores values someone else
// changed after specact's last write (it never widens what may be written).
RestoreReport restore_from_journal(const KnobsConfig& cfg, bool force = false);
// The same with the default roots (/proc/sys, /sys/kernel/debug/sched, the
// cgroup2 mount) and no extra sysctls.
RestoreReport restore_from_journal(const std::string& state_dir, bool force = false);

class KnobManager {
 public:
  // target may be null (then task.* and cgroup.target.* have nothing to act
  // on); it must outlive the manager. clock null = steady clock.
  KnobManager(KnobsConfig config, const TargetResolver* target, const Clock* clock = nullptr);
  ~KnobManager();  // restore_all() when restore_on_exit and anything is managed
  KnobManager(const KnobManager&) = delete;
  KnobManager& operator=(const KnobManager&) = delete;

  // All knobs, probed now: availability + reason, domain, current value.
  std::vector<KnobInfo> catalogue();
  // The one write gate. Never throws for bad names/values: each knob gets a
  // KnobResult. Writes nothing a durable journal entry does not cover.
  ApplyResult apply(const Config& desired, const std::string& who_why);
  // Current values of the available, allowed knobs that can be read.
  Config read_current();
  // Knobs changed behind our back since our last write: from now on they are
  // not managed, and restore leaves the outside value alone.
  std::vector<YieldEvent> check_yielded();
  // Threads (and processes) of the target/background born since the last call
  // get the current per-task settings. Returns how many tasks were newly
  // brought under management. Call once per window.
  size_t reapply_to_new_threads();
  // Restore everything from the journal and clear it.
  RestoreReport restore_all();
  // At startup: restore a journal left by a crashed earlier run (apply()
  // refuses while one is present). Nothing to do -> ok + nothing_to_do.
  RestoreReport recover_leftover();

  const KnobsConfig& config() const { return cfg_; }
  std::set<std::string> yielded() const;
  bool has_managed() const;  // anything journalled right now

  struct Impl;

 private:
  KnobsConfig cfg_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specact
