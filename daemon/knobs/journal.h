// The journal of original values: what it records, its format (version 2,
// CRC-32 checksum) and its durable storage in the state directory (lock,
// atomic replace, set-asides). What restore does with it is restore.h.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/state_dir.h"
#include "knobs/file_codec.h"
#include "knobs/kernel_files.h"
#include "knobs/task_sched.h"

namespace specact::knobs {

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
  // The entry of a file knob instance / of a per-task knob, or null.
  FileEntry* file(const std::string& knob, const std::string& path);
  const FileEntry* file(const std::string& knob, const std::string& path) const;
  TaskEntry* task(const std::string& knob);
  const TaskEntry* task(const std::string& knob) const;
};

// How many of the values specact wrote an entry keeps in "ours": enough to
// recognise a value specact left behind after a crash (restore puts back
// only values specact set, unless forced), small enough to stay readable.
constexpr size_t kOursKept = 8;
// Makes `v` the most recent of `ours`, dropping the oldest beyond kOursKept.
template <typename T>
void remember_ours(std::vector<T>& ours, const T& v) {
  std::erase(ours, v);
  ours.push_back(v);
  if (ours.size() > kOursKept) ours.erase(ours.begin());
}

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

}  // namespace specact::knobs
