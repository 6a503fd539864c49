// Internals of the knobs layer shared by the manager, the journal and the
// restore path. Not part of the public API.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/state_dir.h"
#include "knobs/knob_manager.h"

namespace specact::knobs {

using FaultHook = std::function<int(std::string_view op, const std::string& path)>;

// ---- per-task scheduler attributes (sched_getattr / sched_setattr) ----

struct TaskAttr {
  int policy = 0;  // SCHED_OTHER / SCHED_BATCH / SCHED_IDLE / realtime ...
  int nice = 0;
  uint64_t runtime_ns = 0;  // EEVDF slice as the kernel reports it
  bool reset_on_fork = false;
  bool runtime_default = false;  // write sched_runtime=0 (back to the default slice)
};

// 0 or errno (ESRCH when the thread is gone).
int get_task_attr(pid_t tid, TaskAttr* out);
// Writes `want` given the thread's current attributes `cur`; 0 or errno.
// SCHED_IDLE ignores nice/slice in sched_setattr, so those are set first under
// a fair policy.
int set_task_attr(pid_t tid, const TaskAttr& want, const TaskAttr& cur);
bool tunable_policy(int policy);  // OTHER, BATCH, IDLE (not realtime/deadline)
// Start time (clock ticks since boot, /proc stat field 22) of a thread; 0 if gone.
// Guards against restoring a recycled tid.
uint64_t task_start_time(const std::string& proc_root, pid_t tgid, pid_t tid);

struct SliceProbe {
  bool supported = false;
  int64_t default_slice_ns = 0;  // what a task without a custom slice reports
  std::string reason;
};
// Tries sched_runtime on a short-lived thread of this process.
SliceProbe probe_slice_support();

enum class TaskField { Slice, Nice, Policy };
std::string to_string(TaskField f);
std::optional<TaskField> task_field_from_string(const std::string& s);
// Kernel units: slice in ns, nice, policy number.
int64_t task_field_get(const TaskAttr& a, TaskField f);
void task_field_set(TaskAttr* a, TaskField f, int64_t v, int64_t default_slice_ns);

// ---- files (/proc/sys, debugfs, cgroup) ----

// The directories whose files the knobs layer reads and writes: the configured
// sys_root, debugfs_root and cgroup v2 root. Nothing outside them is touched,
// whatever a journal says.
struct KernelRoots {
  std::string sys, debugfs, cgroup;               // cgroup "" = no cgroup v2 hierarchy
  static KernelRoots from(const KnobsConfig& c);  // cgroup: configured, or the cgroup2 mount
  // The root `path` lies below (lexically: plain names only, no "", "." or
  // ".."), and the rest of it. False when it is below none of them.
  bool locate(const std::string& path, std::string* root, std::string* rel) const;
  static bool contains(const std::string& root, const std::string& path);
};

// 0 or errno. The path must be below one of `roots` (else EXDEV); it is opened
// relative to that root with no symlinks (ELOOP) and no "..", and must be a
// regular file (EINVAL).
int read_file(const KernelRoots& roots, const std::string& path, std::string* out,
              const FaultHook& fault);
int write_file(const KernelRoots& roots, const std::string& path, const std::string& data,
               const FaultHook& fault);
int probe_writable(const KernelRoots& roots, const std::string& path, const FaultHook& fault);
std::string errno_name(int err);  // "EPERM"
std::string trim(std::string s);

// How a file knob's text maps to an integer. Journals store the normalized
// form, which is also what restore writes back.
enum class Codec { Int, CpuMax, BracketEnum };
std::string to_string(Codec c);
std::optional<Codec> codec_from_string(const std::string& s);
std::string normalize(Codec c, const std::string& raw);

// ---- journal ----

struct FileEntry {
  std::string knob, path;
  Codec codec = Codec::Int;
  std::string original;           // normalized, writable
  std::vector<std::string> ours;  // normalized values we may have left there
  std::string last;               // in memory only: our last read-back
};

struct ThreadRec {
  pid_t tid = 0, tgid = 0;
  uint64_t start = 0;
  int64_t original = 0;
  std::optional<int64_t> last;  // in memory only
};

struct ProcRec {
  pid_t tgid = 0;
  uint64_t start = 0;
  int64_t original = 0;  // for threads born later that inherited our value
};

struct TaskEntry {
  std::string knob;
  TaskField field = TaskField::Slice;
  int64_t default_slice_ns = 0;
  std::vector<int64_t> ours;
  std::vector<ProcRec> procs;
  std::vector<ThreadRec> threads;
  std::string proc_root = "/proc";
};

// Version 2 added the checksum. Version 1 journals (no checksum) are still
// restored: after a crash of an older specactd they hold the only record of
// the original values, and refusing them would leave the machine tuned.
constexpr int kJournalVersion = 2;
constexpr const char* kJournalFormat = "specactd-knobs-journal";
constexpr const char* kJournalName = "knobs-journal.json";
constexpr const char* kLockName = "knobs.lock";

struct JournalState {
  std::string boot_id;
  std::vector<FileEntry> files;
  std::vector<TaskEntry> tasks;
  int format_version = kJournalVersion;  // in memory only: the version it was read as
  bool empty() const { return files.empty() && tasks.empty(); }
};

// The checksum of a journal: CRC-32 (zlib) of its canonical text — the JSON
// without the "checksum" member, dumped compactly with sorted keys — as
// "crc32:%08x". The checksum catches damage (a flipped bit, a torn or
// hand-edited file), which is what it is for: whoever can write the journal
// (root, in a state directory StateDir accepts) could recompute any unkeyed
// hash, SHA-256 included, so a cryptographic one would add a dependency and
// no protection.
std::string journal_checksum(const nlohmann::json& without_checksum);
nlohmann::json journal_to_json(const JournalState& s);
// Throws std::runtime_error describing what is wrong (a checksum mismatch too).
JournalState journal_from_json(const nlohmann::json& j);

struct RestoreScope;  // knobs/restore.h

class JournalStore {
 public:
  JournalStore(std::string state_dir, FaultHook fault);
  ~JournalStore();
  const std::string& dir() const { return dir_; }
  std::string path() const { return dir_ + "/" + kJournalName; }
  // Opens and checks the state directory (StateDir), creating it when
  // `create`. "" on success, else why not (naming the path). Without create,
  // a missing directory sets *missing and returns "".
  std::string open_dir(bool create, bool* missing = nullptr);
  // True when the directory is open and holds a journal (of any kind).
  bool journal_present() const;
  // Takes the state directory's lock (flock on knobs.lock; released by the
  // kernel if we die). "" on success, else why not.
  std::string lock();
  bool locked() const { return lock_fd_ >= 0; }
  // KeptAside: the journal was unusable (corrupt, checksum mismatch, newer
  // format, a link, or with `scope` an entry naming a file that is not its
  // knob's), renamed to *aside_path (a unique name, never overwriting an
  // earlier one). Refused: unusable but left in place (unreadable, the
  // directory refused, or a knob `scope` does not define). Both: nothing may
  // be restored from it, and message says why.
  enum class Load { Missing, Ok, KeptAside, Refused };
  Load load(JournalState* out, std::string* message, std::string* aside_path,
            const RestoreScope* scope = nullptr);
  // Durably replaces the journal (temp, fsync, rename, fsync dir); an empty
  // state removes it. "" on success, else the error (the old journal is intact).
  std::string commit(const JournalState& s);
  // Paths of earlier journals kept aside in the directory.
  std::vector<std::string> kept_aside();

 private:
  std::string dir_;
  FaultHook fault_;
  std::optional<StateDir> sd_;
  int lock_fd_ = -1;
};

std::string read_boot_id();

}  // namespace specact::knobs
