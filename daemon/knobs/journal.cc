// The journal of original values, its durable storage in the state directory,
// and the restore path that `specactd restore` and the KnobManager share.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include "common/log.h"
#include "knobs/knob_defs.h"
#include "knobs/knobs_internal.h"
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

// ---------------------------------------------------------------- codecs

std::string to_string(Codec c) {
  switch (c) {
    case Codec::Int:
      return "int";
    case Codec::CpuMax:
      return "cpu.max";
    case Codec::BracketEnum:
      return "bracket-enum";
  }
  return "?";
}

std::optional<Codec> codec_from_string(const std::string& s) {
  if (s == "int") return Codec::Int;
  if (s == "cpu.max") return Codec::CpuMax;
  if (s == "bracket-enum") return Codec::BracketEnum;
  return std::nullopt;
}

std::string normalize(Codec c, const std::string& raw) {
  std::string t = trim(raw);
  switch (c) {
    case Codec::Int:
      return t;
    case Codec::CpuMax: {
      std::istringstream in(t);
      std::string quota, period;
      in >> quota >> period;
      return period.empty() ? quota : quota + " " + period;
    }
    case Codec::BracketEnum: {
      // "none voluntary (full) lazy" -> "full"; a plain word stays as it is.
      auto open = t.find('(');
      auto close = t.find(')', open == std::string::npos ? 0 : open);
      if (open != std::string::npos && close != std::string::npos)
        return t.substr(open + 1, close - open - 1);
      return t;
    }
  }
  return t;
}

// ---------------------------------------------------------------- format

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

// ---------------------------------------------------------------- restore

namespace {

std::string describe_task_value(TaskField f, int64_t v) {
  switch (f) {
    case TaskField::Slice:
      return std::to_string(v / 1000) + "us";
    case TaskField::Nice:
      return "nice " + std::to_string(v);
    case TaskField::Policy:
      return v == 0 ? "other" : v == 3 ? "batch" : v == 5 ? "idle" : "policy " + std::to_string(v);
  }
  return std::to_string(v);
}

// Restores one thread's field; returns the RestoreItem outcome.
RestoreItem restore_thread(const TaskEntry& e, pid_t tid, pid_t tgid, uint64_t start,
                           int64_t original, bool force, bool born_later) {
  RestoreItem item{e.knob, "tid " + std::to_string(tid) + (born_later ? " (born later)" : ""),
                   describe_task_value(e.field, original), "", ""};
  if (start == 0 || task_start_time(e.proc_root, tgid, tid) != start) {
    item.outcome = "gone";
    return item;
  }
  TaskAttr cur;
  if (int err = get_task_attr(tid, &cur)) {
    item.outcome = err == ESRCH ? "gone" : "failed";
    item.detail = "sched_getattr: " + errno_name(err);
    return item;
  }
  int64_t now = task_field_get(cur, e.field);
  if (now == original) {
    item.outcome = "already";
    return item;
  }
  bool ours = std::find(e.ours.begin(), e.ours.end(), now) != e.ours.end();
  if (!ours && !force) {
    item.outcome = "left-alone";
    item.detail = "now " + describe_task_value(e.field, now) +
                  ", which specact did not set: changed by someone else";
    return item;
  }
  TaskAttr want = cur;
  task_field_set(&want, e.field, original, e.default_slice_ns);
  if (int err = set_task_attr(tid, want, cur)) {
    item.outcome = err == ESRCH ? "gone" : "failed";
    item.detail = "sched_setattr: " + errno_name(err);
    return item;
  }
  TaskAttr after;
  if (get_task_attr(tid, &after) == 0 && task_field_get(after, e.field) != original) {
    item.outcome = "failed";
    item.detail = "wrote " + describe_task_value(e.field, original) + ", reads back " +
                  describe_task_value(e.field, task_field_get(after, e.field));
    return item;
  }
  item.outcome = "restored";
  return item;
}

}  // namespace

// ---------------------------------------------------------------- scope

RestoreScope RestoreScope::from(const KnobsConfig& c) {
  RestoreScope s;
  s.roots = KernelRoots::from(c);
  s.proc_root = c.proc_root;
  KernelVersion kv =
      parse_kernel_release(c.kernel_release.empty() ? running_kernel_release() : c.kernel_release);
  s.defs = builtin_defs(kv, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  for (const auto& x : c.extra_sysctls) s.defs.push_back(extra_sysctl_def(x));
  s.fault = c.fault;
  return s;
}

const KnobDef* RestoreScope::find(const std::string& knob) const {
  for (const auto& d : defs)
    if (d.info.name == knob) return &d;
  return nullptr;
}

namespace {

// A value restore may write for `d`: what the knob's codec can produce, so
// that no journal can smuggle other text into a kernel file.
bool plausible_value(const KnobDef& d, const std::string& v) {
  auto is_int = [](const std::string& s) {
    size_t i = s.size() > 1 && s[0] == '-' ? 1 : 0;
    return i < s.size() && s.size() <= 20 &&
           std::all_of(s.begin() + static_cast<long>(i), s.end(),
                       [](char c) { return c >= '0' && c <= '9'; });
  };
  switch (d.codec) {
    case Codec::Int:
      return is_int(v);
    case Codec::CpuMax: {
      auto sp = v.find(' ');
      std::string quota = v.substr(0, sp);
      return (quota == "max" || is_int(quota)) &&
             (sp == std::string::npos || is_int(v.substr(sp + 1)));
    }
    case Codec::BracketEnum: {
      const auto& vals = d.info.domain.enum_values;
      return std::find(vals.begin(), vals.end(), v) != vals.end();
    }
  }
  return false;
}

}  // namespace

std::string RestoreScope::check(const FileEntry& f) const {
  const KnobDef* d = find(f.knob);
  if (!d) return "refused: '" + f.knob + "' is not a knob this configuration knows";
  std::string where;
  bool ok = false;
  switch (d->where) {
    case Where::Sysctl:
      where = roots.sys + "/" + d->file;
      ok = f.path == where;
      break;
    case Where::Debugfs:
      where = roots.debugfs + "/" + d->file;
      ok = f.path == where;
      break;
    case Where::CgroupTarget:
    case Where::CgroupBackground: {
      where = (roots.cgroup.empty() ? std::string("<no cgroup v2 mount>") : roots.cgroup) +
              "/<cgroup>/" + d->file;
      auto slash = f.path.find_last_of('/');
      ok = !roots.cgroup.empty() && KernelRoots::contains(roots.cgroup, f.path) &&
           f.path.substr(slash + 1) == d->file && slash > roots.cgroup.size();
      break;
    }
    default:
      return "refused: journal entry for " + f.knob + " names the file " + f.path + ", but " +
             f.knob + " is a per-task knob";
  }
  if (!ok)
    return "refused: journal entry for " + f.knob + " names " + f.path + ", not " + where +
           " (restore writes only the knob files below sys_root " + roots.sys + ", debugfs_root " +
           roots.debugfs + " and the cgroup v2 root " +
           (roots.cgroup.empty() ? std::string("(none)") : roots.cgroup) + ")";
  if (f.codec != d->codec)
    return "refused: journal entry for " + f.knob + " has codec " + to_string(f.codec) + ", not " +
           to_string(d->codec);
  if (!plausible_value(*d, f.original))
    return "refused: journal entry for " + f.knob + " has original '" + f.original +
           "', which is not a value of " + f.knob;
  return "";
}

std::string RestoreScope::check(const TaskEntry& t) const {
  const KnobDef* d = find(t.knob);
  if (!d) return "refused: '" + t.knob + "' is not a knob this configuration knows";
  if (d->where != Where::Task && d->where != Where::Background)
    return "refused: journal entry for " + t.knob + " lists tasks, but " + t.knob +
           " is a file knob";
  if (t.field != d->field)
    return "refused: journal entry for " + t.knob + " has field " + to_string(t.field) + ", not " +
           to_string(d->field);
  return "";
}

// ---------------------------------------------------------------- restore state

void restore_state(JournalState* st, bool force, const RestoreScope& scope, RestoreReport* report) {
  const FaultHook& fault = scope.fault;
  // /proc comes from the configuration, never from the journal.
  for (auto& t : st->tasks) t.proc_root = scope.proc_root;
  std::string boot = read_boot_id();
  if (!st->boot_id.empty() && !boot.empty() && st->boot_id != boot) {
    // Every knob specact touches lives in kernel memory: a reboot already put
    // them back to their boot-time values, which may not be the journalled ones.
    for (const auto& f : st->files)
      report->items.push_back({f.knob, f.path, f.original, "gone",
                               "journal is from an earlier boot; the reboot reset it"});
    for (const auto& t : st->tasks)
      report->items.push_back({t.knob, std::to_string(t.threads.size()) + " threads", "", "gone",
                               "journal is from an earlier boot; those tasks no longer exist"});
    st->files.clear();
    st->tasks.clear();
    return;
  }

  std::vector<FileEntry> keep_files;
  for (auto& f : st->files) {
    RestoreItem item{f.knob, f.path, f.original, "", ""};
    if (std::string why = scope.check(f); !why.empty()) {
      // JournalStore::load refuses such a journal as a whole; this is the
      // second line for journals that did not come through it.
      item.outcome = "refused";
      item.detail = why;
      keep_files.push_back(f);
      report->items.push_back(std::move(item));
      continue;
    }
    std::string raw;
    int err = read_file(scope.roots, f.path, &raw, fault);
    if (err == ENOENT || err == ENODEV) {
      item.outcome = "gone";
      item.detail = "no longer exists (cgroup removed?)";
    } else if (err) {
      item.outcome = "failed";
      item.detail = "read: " + errno_name(err);
    } else {
      std::string now = normalize(f.codec, raw);
      bool ours = std::find(f.ours.begin(), f.ours.end(), now) != f.ours.end();
      if (now == f.original) {
        item.outcome = "already";
      } else if (!ours && !force) {
        item.outcome = "left-alone";
        item.detail = "now '" + now + "', which specact did not set: changed by someone else";
      } else if (int werr = write_file(scope.roots, f.path, f.original, fault)) {
        item.outcome = werr == ENOENT ? "gone" : "failed";
        item.detail = "write: " + errno_name(werr);
      } else {
        std::string back;
        read_file(scope.roots, f.path, &back, fault);
        if (normalize(f.codec, back) != f.original) {
          item.outcome = "failed";
          item.detail = "wrote '" + f.original + "', reads back '" + normalize(f.codec, back) + "'";
        } else {
          item.outcome = "restored";
        }
      }
    }
    if (item.outcome == "failed") keep_files.push_back(f);
    report->items.push_back(std::move(item));
  }
  st->files = std::move(keep_files);

  std::vector<TaskEntry> keep_tasks;
  for (auto& e : st->tasks) {
    if (std::string why = scope.check(e); !why.empty()) {
      report->items.push_back(
          {e.knob, std::to_string(e.threads.size()) + " threads", "", "refused", why});
      keep_tasks.push_back(e);
      continue;
    }
    size_t items_before = report->items.size();
    TaskEntry failed = e;
    failed.threads.clear();
    std::set<pid_t> known;
    for (const auto& th : e.threads) {
      known.insert(th.tid);
      auto item = restore_thread(e, th.tid, th.tgid, th.start, th.original, force, false);
      if (item.outcome == "failed") failed.threads.push_back(th);
      report->items.push_back(std::move(item));
    }
    // Threads born after our last journal update inherited our value from
    // their creator: put them back to their process's original too.
    for (const auto& p : e.procs) {
      if (task_start_time(e.proc_root, p.tgid, p.tgid) != p.start) continue;
      for (pid_t tid : threads_of(p.tgid, e.proc_root)) {
        if (known.count(tid)) continue;
        TaskAttr cur;
        if (get_task_attr(tid, &cur) != 0) continue;
        int64_t now = task_field_get(cur, e.field);
        if (std::find(e.ours.begin(), e.ours.end(), now) == e.ours.end()) continue;
        uint64_t start = task_start_time(e.proc_root, p.tgid, tid);
        auto item = restore_thread(e, tid, p.tgid, start, p.original, false, true);
        if (item.outcome == "failed")
          failed.threads.push_back({tid, p.tgid, start, p.original, {}});
        report->items.push_back(std::move(item));
      }
    }
    if (report->items.size() == items_before) {
      // Nothing of it is alive any more: say so rather than nothing at all.
      std::string what =
          std::to_string(e.procs.size()) + " recorded process" + (e.procs.size() == 1 ? "" : "es");
      report->items.push_back({e.knob, what, "", "gone",
                               "no recorded thread is alive and no live thread has a value "
                               "specact set: nothing to put back"});
    }
    if (!failed.threads.empty()) keep_tasks.push_back(std::move(failed));
  }
  st->tasks = std::move(keep_tasks);
}

}  // namespace specact::knobs

namespace specact {
using namespace knobs;

// ---------------------------------------------------------------- report

size_t RestoreReport::count(std::string_view outcome) const {
  return static_cast<size_t>(std::count_if(
      items.begin(), items.end(), [&](const RestoreItem& i) { return i.outcome == outcome; }));
}

nlohmann::json RestoreReport::to_json() const {
  nlohmann::json items_j = nlohmann::json::array();
  for (const auto& i : items)
    items_j.push_back({{"knob", i.knob},
                       {"instance", i.instance},
                       {"original", i.original},
                       {"outcome", i.outcome},
                       {"detail", i.detail}});
  nlohmann::json counts = nlohmann::json::object();
  for (const char* o : {"restored", "already", "gone", "left-alone", "failed", "refused"})
    counts[o] = count(o);
  return {{"ok", ok},
          {"nothing_to_do", nothing_to_do},
          {"journal", journal_path},
          {"counts", counts},
          {"items", items_j},
          {"problems", problems},
          {"notes", notes}};
}

std::string RestoreReport::to_text() const {
  std::ostringstream out;
  for (const auto& p : problems) out << "error: " << p << "\n";
  // Per-task knobs can cover thousands of threads: summarise them per knob.
  std::map<std::string, std::map<std::string, size_t>> per_task;
  std::map<std::string, std::string> task_details;
  for (const auto& i : items) {
    if (i.instance.rfind("tid ", 0) == 0 || i.instance.find(" threads") != std::string::npos) {
      per_task[i.knob][i.outcome]++;
      if (!i.detail.empty() && (i.outcome == "failed" || i.outcome == "left-alone"))
        task_details[i.knob] = i.instance + ": " + i.detail;
      continue;
    }
    out << i.outcome << ": " << i.knob << " (" << i.instance << ")";
    if (!i.original.empty()) out << " -> " << i.original;
    if (!i.detail.empty()) out << " — " << i.detail;
    out << "\n";
  }
  for (const auto& [knob, counts] : per_task) {
    out << knob << ": ";
    bool first = true;
    for (const auto& [o, n] : counts) {
      out << (first ? "" : ", ") << n << " thread" << (n == 1 ? "" : "s") << " " << o;
      first = false;
    }
    if (task_details.count(knob)) out << " (e.g. " << task_details[knob] << ")";
    out << "\n";
  }
  for (const auto& n : notes) out << "note: " << n << "\n";
  if (nothing_to_do && problems.empty())
    out << "nothing to restore (no journal in " << journal_path << ")\n";
  else
    out << (ok ? "restore complete: " : "restore INCOMPLETE: ") << count("restored")
        << " restored, " << count("already") << " already original, " << count("gone") << " gone, "
        << count("left-alone") << " left alone (changed by someone else), " << count("failed")
        << " failed"
        << (count("refused") ? ", " + std::to_string(count("refused")) + " refused" : "") << "\n";
  return out.str();
}

std::string to_string(KnobResult::Status s) {
  switch (s) {
    case KnobResult::Status::Applied:
      return "applied";
    case KnobResult::Status::NoChange:
      return "no-change";
    case KnobResult::Status::RateLimited:
      return "rate-limited";
    case KnobResult::Status::Rejected:
      return "rejected";
    case KnobResult::Status::Unavailable:
      return "unavailable";
    case KnobResult::Status::Yielded:
      return "yielded";
    case KnobResult::Status::Failed:
      return "failed";
  }
  return "?";
}

// ---------------------------------------------------------------- entry point

RestoreReport restore_from_journal(const KnobsConfig& cfg, bool force) {
  RestoreReport report;
  JournalStore store(cfg.state_dir, nullptr);
  report.journal_path = store.path();
  bool missing = false;
  // Nothing journalled: do not create the state directory just to look.
  if (std::string err = store.open_dir(false, &missing); !err.empty()) {
    report.ok = false;
    report.problems.push_back(err);
    return report;
  }
  if (missing || !store.journal_present()) {
    report.nothing_to_do = true;
    for (const auto& a : store.kept_aside())
      report.notes.push_back("earlier journal kept aside, needs review: " + a);
    return report;
  }
  if (std::string err = store.lock(); !err.empty()) {
    report.ok = false;
    report.problems.push_back(err);
    return report;
  }
  RestoreScope scope = RestoreScope::from(cfg);
  JournalState state;
  std::string message, aside;
  switch (store.load(&state, &message, &aside, &scope)) {
    case JournalStore::Load::Missing:
      report.nothing_to_do = true;
      break;
    case JournalStore::Load::KeptAside:
    case JournalStore::Load::Refused:
      report.ok = false;
      report.problems.push_back(message);
      break;
    case JournalStore::Load::Ok:
      if (state.empty())
        report.notes.push_back("the journal listed no knob (an empty record); removed it");
      if (state.format_version < kJournalVersion)
        report.notes.push_back("journal format version " + std::to_string(state.format_version) +
                               " (no checksum) from an older specactd: restored as it is");
      restore_state(&state, force, scope, &report);
      if (std::string err = store.commit(state); !err.empty()) {
        report.ok = false;
        report.problems.push_back("restored, but could not update the journal: " + err);
      }
      for (const char* bad : {"failed", "refused"})
        if (size_t n = report.count(bad)) {
          report.ok = false;
          report.problems.push_back(std::to_string(n) + " knob instance(s) " + bad +
                                    "; they stay in the journal for the next `specactd restore`");
        }
      break;
  }
  for (const auto& a : store.kept_aside())
    if (a != aside) report.notes.push_back("earlier journal kept aside, needs review: " + a);
  for (const auto& i : report.items)
    if (i.outcome == "restored")
      log::info("restore: " + i.knob + " (" + i.instance + ") -> " + i.original);
  return report;
}

RestoreReport restore_from_journal(const std::string& state_dir, bool force) {
  KnobsConfig cfg;
  cfg.state_dir = state_dir;
  return restore_from_journal(cfg, force);
}

}  // namespace specact
