// The journal of original values: format, checksum and durable storage.
#include "knobs/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "knobs/restore.h"

namespace specact::knobs {
namespace {

// A failed integrity check, told apart from other damage so that the report
// can say what was found.
class ChecksumMismatch : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Integers exactly as the file has them: no float truncated or cast (1e26
// is out of range, 2.5 is not an integer), no negative wrapped to unsigned.
int64_t journal_int(const nlohmann::json& v) {
  if (!v.is_number_integer())
    throw std::runtime_error("journal has " + v.dump() + " where an integer belongs");
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    throw std::runtime_error("journal integer " + v.dump() + " is out of range");
  return v.get<int64_t>();
}

uint64_t journal_uint(const nlohmann::json& v) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
    throw std::runtime_error("journal has " + v.dump() + " where a non-negative integer belongs");
  return v.get<uint64_t>();
}

std::vector<int64_t> journal_ints(const nlohmann::json& v) {
  if (!v.is_array()) throw std::runtime_error("journal has " + v.dump() + " where a list belongs");
  std::vector<int64_t> out;
  for (const auto& x : v) out.push_back(journal_int(x));
  return out;
}

// A pid/tid as journalled: a positive int, never narrowed (2^32+1 is not 1).
pid_t journal_pid(const nlohmann::json& v) {
  int64_t p = journal_int(v);
  if (p <= 0 || p > INT32_MAX)
    throw std::runtime_error("journal names pid " + std::to_string(p) + ", not a valid pid");
  return static_cast<pid_t>(p);
}

}  // namespace

// ---------------------------------------------------------------- format

FileEntry* JournalState::file(const std::string& knob, const std::string& path) {
  for (auto& f : files)
    if (f.knob == knob && f.path == path) return &f;
  return nullptr;
}

const FileEntry* JournalState::file(const std::string& knob, const std::string& path) const {
  return const_cast<JournalState*>(this)->file(knob, path);
}

TaskEntry* JournalState::task(const std::string& knob) {
  for (auto& t : tasks)
    if (t.knob == knob) return &t;
  return nullptr;
}

const TaskEntry* JournalState::task(const std::string& knob) const {
  return const_cast<JournalState*>(this)->task(knob);
}

std::string journal_checksum(const nlohmann::json& without_checksum) {
  // nlohmann::json keeps object keys sorted, so dump() is canonical: the same
  // content gives the same text whatever the file's layout.
  std::string text = without_checksum.dump();
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size()));
  char buf[16];
  std::snprintf(buf, sizeof buf, "crc32:%08lx", static_cast<unsigned long>(crc));
  return buf;
}

nlohmann::json journal_to_json(const JournalState& s) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : s.files)
    files.push_back({{"knob", f.knob},
                     {"path", f.path},
                     {"codec", to_string(f.codec)},
                     {"original", f.original},
                     {"ours", f.ours}});
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& t : s.tasks) {
    nlohmann::json procs = nlohmann::json::array(), threads = nlohmann::json::array();
    for (const auto& p : t.procs)
      procs.push_back({{"tgid", p.tgid}, {"start", p.start}, {"original", p.original}});
    for (const auto& th : t.threads)
      threads.push_back(
          {{"tid", th.tid}, {"tgid", th.tgid}, {"start", th.start}, {"original", th.original}});
    tasks.push_back({{"knob", t.knob},
                     {"field", to_string(t.field)},
                     {"default_slice_ns", t.default_slice_ns},
                     {"proc_root", t.proc_root},
                     {"ours", t.ours},
                     {"processes", procs},
                     {"threads", threads}});
  }
  nlohmann::json j = {{"format", kJournalFormat}, {"version", kJournalVersion},
                      {"boot_id", s.boot_id},     {"writer_pid", getpid()},
                      {"files", files},           {"tasks", tasks}};
  j["checksum"] = journal_checksum(j);
  return j;
}

JournalState journal_from_json(const nlohmann::json& j) {
  if (!j.is_object() || j.value("format", "") != kJournalFormat)
    throw std::runtime_error("not a specactd knobs journal (missing \"format\")");
  if (!j.contains("version") || !j["version"].is_number_integer())
    throw std::runtime_error("journal has no integer \"version\"");
  int version = j["version"].get<int>();
  if (version > kJournalVersion)
    throw std::runtime_error("journal format version " + std::to_string(version) +
                             " is newer than this specactd understands (" +
                             std::to_string(kJournalVersion) + ")");
  if (version < 1) throw std::runtime_error("journal format version " + std::to_string(version));
  if (version >= 2) {
    // Checked before anything else is read: a damaged journal restores nothing.
    if (!j.contains("checksum") || !j["checksum"].is_string())
      throw ChecksumMismatch("journal version " + std::to_string(version) +
                             " has no \"checksum\" (damaged or edited by hand)");
    nlohmann::json rest = j;
    rest.erase("checksum");
    std::string want = j["checksum"].get<std::string>(), got = journal_checksum(rest);
    if (want != got)
      throw ChecksumMismatch("checksum mismatch: the file says " + want + ", its content is " +
                             got + " (damaged or edited by hand)");
  }
  JournalState s;
  s.format_version = version;
  s.boot_id = j.value("boot_id", "");
  // .at() throws on missing keys, get<>() on wrong types: both mean corrupt.
  for (const auto& f : j.at("files")) {
    FileEntry e;
    e.knob = f.at("knob").get<std::string>();
    e.path = f.at("path").get<std::string>();
    auto codec = codec_from_string(f.at("codec").get<std::string>());
    if (!codec) throw std::runtime_error("unknown codec in entry for " + e.knob);
    e.codec = *codec;
    e.original = f.at("original").get<std::string>();
    e.ours = f.at("ours").get<std::vector<std::string>>();
    if (e.path.empty() || e.path[0] != '/')
      throw std::runtime_error("entry for " + e.knob + " has no absolute path");
    s.files.push_back(std::move(e));
  }
  for (const auto& t : j.at("tasks")) {
    TaskEntry e;
    e.knob = t.at("knob").get<std::string>();
    auto field = task_field_from_string(t.at("field").get<std::string>());
    if (!field) throw std::runtime_error("unknown task field in entry for " + e.knob);
    e.field = *field;
    e.default_slice_ns = journal_int(t.at("default_slice_ns"));
    e.proc_root = t.at("proc_root").get<std::string>();
    e.ours = journal_ints(t.at("ours"));
    for (const auto& p : t.at("processes"))
      e.procs.push_back(
          {journal_pid(p.at("tgid")), journal_uint(p.at("start")), journal_int(p.at("original"))});
    for (const auto& th : t.at("threads"))
      e.threads.push_back({journal_pid(th.at("tid")), journal_pid(th.at("tgid")),
                           journal_uint(th.at("start")), journal_int(th.at("original")),
                           std::nullopt});
    s.tasks.push_back(std::move(e));
  }
  return s;
}

// ---------------------------------------------------------------- store

JournalStore::JournalStore(std::string state_dir, FaultHook fault)
    : dir_(std::move(state_dir)), fault_(std::move(fault)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

JournalStore::~JournalStore() {
  if (lock_fd_ >= 0) close(lock_fd_);
}

std::string JournalStore::open_dir(bool create, bool* missing) {
  if (missing) *missing = false;
  if (sd_) return "";
  try {
    sd_.emplace(StateDir::open(dir_, create));
  } catch (const StateDirError& e) {
    if (!create && e.error_code() == ENOENT && missing) {
      *missing = true;
      return "";
    }
    return e.what();
  }
  return "";
}

bool JournalStore::journal_present() const {
  struct stat st {};
  return sd_ && fstatat(sd_->fd(), kJournalName, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

std::string JournalStore::lock() {
  if (lock_fd_ >= 0) return "";
  if (std::string err = open_dir(true); !err.empty()) return err;
  int fd = sd_->open_file(kLockName, O_RDWR | O_CREAT, 0600);
  if (fd < 0) return "cannot open " + sd_->error(kLockName, -fd);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    std::string holder;
    char buf[32] = {};
    if (pread(fd, buf, sizeof(buf) - 1, 0) > 0) holder = trim(buf);
    close(fd);
    if (err == EWOULDBLOCK)
      return "state directory " + dir_ + " is in use by a running specactd" +
             (holder.empty() ? "" : " (pid " + holder + ")") + "; stop it first";
    return "cannot lock " + sd_->path_of(kLockName) + ": " + std::strerror(err);
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) == 0) (void)!pwrite(fd, pid.data(), pid.size(), 0);
  lock_fd_ = fd;
  return "";
}

JournalStore::Load JournalStore::load(JournalState* out, std::string* message,
                                      std::string* aside_path, const RestoreScope* scope) {
  if (std::string err = open_dir(true); !err.empty()) {
    *message = err;
    return Load::Refused;
  }
  std::string text;
  int err = sd_->read(kJournalName, &text);
  if (err == ENOENT) return Load::Missing;
  std::string why, kind = "corrupt";
  if (err == ELOOP || err == EINVAL || err == EMLINK) {
    // A link or a special file where the journal should be: never read
    // through it; moving the entry itself aside is safe (rename never follows).
    why = "the journal " + StateDir::describe(err);
    kind = "refused";
  } else if (err == EFBIG) {
    why = "the journal " + StateDir::describe(err);
  } else if (err) {
    *message = "journal " + path() + ": cannot read it: " + std::strerror(err);
    return Load::Refused;  // unreadable: leave it where it is, nothing renamed
  } else {
    try {
      auto j = nlohmann::json::parse(text);
      if (j.is_object() && j.contains("version") && j["version"].is_number_integer() &&
          j["version"].get<int>() > kJournalVersion)
        kind = "newer-v" + std::to_string(j["version"].get<int>());
      JournalState st = journal_from_json(j);
      if (scope) {
        // Every entry must name a knob of this configuration and exactly that
        // knob's file, checked before anything is restored.
        std::vector<std::string> unknown, refused;
        for (const auto& f : st.files) {
          if (!scope->find(f.knob))
            unknown.push_back(f.knob);
          else if (std::string w = scope->check(f); !w.empty())
            refused.push_back(w);
        }
        for (const auto& t : st.tasks) {
          if (!scope->find(t.knob))
            unknown.push_back(t.knob);
          else if (std::string w = scope->check(t); !w.empty())
            refused.push_back(w);
        }
        if (!refused.empty()) {
          kind = "refused";
          why = refused.front() +
                (refused.size() > 1
                     ? " (and " + std::to_string(refused.size() - 1) + " more refused entries)"
                     : "");
        } else if (!unknown.empty()) {
          // Most likely an extra sysctl of a config this restore was not
          // given: leave the journal in place for a restore that knows it.
          *message = "journal " + path() + " names knob '" + unknown.front() +
                     "', which this configuration does not define (an extra sysctl? run "
                     "`specactd restore --config <the daemon's config>`); nothing was restored";
          return Load::Refused;
        }
      }
      if (why.empty()) {
        *out = std::move(st);
        return Load::Ok;
      }
    } catch (const ChecksumMismatch& e) {
      why = e.what();
    } catch (const std::exception& e) {
      why = text.empty() ? "empty file (truncated)" : e.what();
    }
  }
  std::string aside;
  if (int aerr = sd_->set_aside(kJournalName, kind, &aside)) {
    *message = "journal " + path() + " is unusable (" + why +
               ") and could not be moved aside: " + std::strerror(aerr);
    return Load::Refused;
  }
  *aside_path = sd_->path_of(aside);
  *message = "journal " + path() + " is unusable (" + why + "); kept aside as " + *aside_path +
             " — nothing was restored from it; inspect it and restore those knobs by hand";
  return Load::KeptAside;
}

std::string JournalStore::commit(const JournalState& s) {
  if (std::string err = open_dir(true); !err.empty()) return err;
  if (fault_)
    if (int err = fault_("journal", path())) return path() + ": " + std::strerror(err);
  if (s.empty()) {
    int err = sd_->remove(kJournalName);
    if (err && err != ENOENT) return "cannot remove " + sd_->error(kJournalName, err);
    return "";
  }
  std::string data = journal_to_json(s).dump(1) + "\n";
  if (int err = sd_->replace(kJournalName, data))
    return "cannot write " + sd_->error(kJournalName, err);
  return "";
}

std::vector<std::string> JournalStore::kept_aside() {
  std::vector<std::string> out;
  bool missing = false;
  if (!open_dir(false, &missing).empty() || missing) return out;
  std::string prefix = std::string(kJournalName) + ".";
  for (const auto& n : sd_->list())
    if (n.rfind(prefix, 0) == 0 && n != prefix + "tmp") out.push_back(sd_->path_of(n));
  return out;
}

}  // namespace specact::knobs
