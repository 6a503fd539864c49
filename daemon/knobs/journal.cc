// The journal of original values, its durable storage, and the restore path
// that `specactd restore` and KnobManager::restore_all share.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/log.h"
#include "knobs/knobs_internal.h"

namespace specact::knobs {
namespace {

std::string utc_stamp() {
  time_t t = time(nullptr);
  tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

int fsync_dir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = fsync(fd) == 0 ? 0 : errno;
  close(fd);
  return err;
}

int mkdir_p(const std::string& dir) {
  if (dir.empty()) return ENOENT;
  struct stat st {};
  if (stat(dir.c_str(), &st) == 0) return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  auto slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0)
    if (int err = mkdir_p(dir.substr(0, slash))) return err;
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return errno;
  return 0;
}

}  // namespace

// ---------------------------------------------------------------- files

std::string errno_name(int err) {
  switch (err) {
    case EPERM:
      return "EPERM";
    case EACCES:
      return "EACCES";
    case ENOENT:
      return "ENOENT";
    case EROFS:
      return "EROFS";
    case ENOSPC:
      return "ENOSPC";
    case EINVAL:
      return "EINVAL";
    case ESRCH:
      return "ESRCH";
    case EIO:
      return "EIO";
    case EBUSY:
      return "EBUSY";
    case ENODEV:
      return "ENODEV";
    case EDQUOT:
      return "EDQUOT";
    case ENOTDIR:
      return "ENOTDIR";
    default:
      return "errno " + std::to_string(err) + " (" + std::strerror(err) + ")";
  }
}

std::string trim(std::string s) {
  auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  while (!s.empty() && ws(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && ws(s[i])) ++i;
  return s.substr(i);
}

int read_file(const std::string& path, std::string* out, const FaultHook& fault) {
  if (fault)
    if (int err = fault("read", path)) return err;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return err;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return 0;
}

namespace {
// Kernel files (proc, sysfs, cgroupfs, debugfs) take a value in one atomic
// write(2); a plain file (a fake root in tests, a bind-mounted copy) gets the
// same all-or-nothing behaviour from temp + rename.
bool kernel_fs(int fd) {
  struct statfs sfs {};
  if (fstatfs(fd, &sfs) != 0) return true;
  switch (static_cast<unsigned long>(sfs.f_type)) {
    case 0x9fa0:      // PROC_SUPER_MAGIC
    case 0x62656572:  // SYSFS_MAGIC
    case 0x27e0eb:    // CGROUP_SUPER_MAGIC
    case 0x63677270:  // CGROUP2_SUPER_MAGIC
    case 0x64626720:  // DEBUGFS_MAGIC
    case 0x74726163:  // TRACEFS_MAGIC
      return true;
    default:
      return false;
  }
}

int replace_plain_file(const std::string& path, const std::string& data) {
  std::string tmp = path + ".specact-tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  ssize_t n = write(fd, data.data(), data.size());
  int err = n < 0 ? errno : (static_cast<size_t>(n) != data.size() ? EIO : 0);
  if (close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err) unlink(tmp.c_str());
  return err;
}
}  // namespace

int write_file(const std::string& path, const std::string& data, const FaultHook& fault) {
  if (fault)
    if (int err = fault("write", path)) return err;
  {
    int probe = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (probe >= 0) {
      struct stat st {};
      bool plain = fstat(probe, &st) == 0 && S_ISREG(st.st_mode) && !kernel_fs(probe);
      close(probe);
      if (plain) return replace_plain_file(path, data);
    }
  }
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  // One write(2): sysctl and cgroup files take the value in a single call.
  ssize_t n = write(fd, data.data(), data.size());
  int err = n < 0 ? errno : (static_cast<size_t>(n) != data.size() ? EIO : 0);
  if (close(fd) != 0 && err == 0) err = errno;
  return err;
}

int probe_writable(const std::string& path, const FaultHook& fault) {
  if (fault)
    if (int err = fault("probe-write", path)) return err;
  // Opening for write checks mode bits, lockdown and read-only mounts without
  // changing anything.
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

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

std::string read_boot_id() {
  std::string s;
  if (read_file("/proc/sys/kernel/random/boot_id", &s, nullptr) != 0) return "";
  return trim(s);
}

// ---------------------------------------------------------------- format

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
  return {{"format", kJournalFormat}, {"version", kJournalVersion},
          {"boot_id", s.boot_id},     {"writer_pid", getpid()},
          {"files", files},           {"tasks", tasks}};
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
  JournalState s;
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
    e.default_slice_ns = t.at("default_slice_ns").get<int64_t>();
    e.proc_root = t.at("proc_root").get<std::string>();
    e.ours = t.at("ours").get<std::vector<int64_t>>();
    for (const auto& p : t.at("processes"))
      e.procs.push_back({p.at("tgid").get<pid_t>(), p.at("start").get<uint64_t>(),
                         p.at("original").get<int64_t>()});
    for (const auto& th : t.at("threads"))
      e.threads.push_back({th.at("tid").get<pid_t>(), th.at("tgid").get<pid_t>(),
                           th.at("start").get<uint64_t>(), th.at("original").get<int64_t>(),
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

std::string JournalStore::lock() {
  if (lock_fd_ >= 0) return "";
  if (int err = mkdir_p(dir_))
    return "cannot create state directory " + dir_ + ": " + std::strerror(err);
  std::string path = dir_ + "/knobs.lock";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return "cannot open " + path + ": " + std::strerror(errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    std::string holder;
    char buf[32] = {};
    if (pread(fd, buf, sizeof(buf) - 1, 0) > 0) holder = trim(buf);
    close(fd);
    if (err == EWOULDBLOCK)
      return "state directory " + dir_ + " is in use by a running specactd" +
             (holder.empty() ? "" : " (pid " + holder + ")") + "; stop it first";
    return "cannot lock " + path + ": " + std::strerror(err);
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) == 0) (void)!pwrite(fd, pid.data(), pid.size(), 0);
  lock_fd_ = fd;
  return "";
}

JournalStore::Load JournalStore::load(JournalState* out, std::string* message,
                                      std::string* aside_path) {
  std::string text;
  int err = read_file(path(), &text, nullptr);
  if (err == ENOENT) return Load::Missing;
  std::string why;
  std::string kind = "corrupt";
  if (err) {
    why = std::string("cannot read it: ") + std::strerror(err);
    *message = "journal " + path() + ": " + why;
    return Load::KeptAside;  // unreadable: leave it where it is, nothing renamed
  }
  try {
    auto j = nlohmann::json::parse(text);
    if (j.is_object() && j.contains("version") && j["version"].is_number_integer() &&
        j["version"].get<int>() > kJournalVersion)
      kind = "newer-v" + std::to_string(j["version"].get<int>());
    *out = journal_from_json(j);
    return Load::Ok;
  } catch (const std::exception& e) {
    why = text.empty() ? "empty file (truncated)" : e.what();
  }
  std::string aside = path() + "." + kind + "-" + utc_stamp();
  if (rename(path().c_str(), aside.c_str()) != 0) {
    *message = "journal " + path() + " is unusable (" + why +
               ") and could not be moved aside: " + std::strerror(errno);
    return Load::KeptAside;
  }
  fsync_dir(dir_);
  *aside_path = aside;
  *message = "journal " + path() + " is unusable (" + why + "); kept aside as " + aside +
             " — nothing was restored from it; inspect it and restore those knobs by hand";
  return Load::KeptAside;
}

std::string JournalStore::commit(const JournalState& s) {
  if (int err = mkdir_p(dir_))
    return "cannot create state directory " + dir_ + ": " + std::strerror(err);
  if (fault_)
    if (int err = fault_("journal", path())) return path() + ": " + std::strerror(err);
  if (s.empty()) {
    if (unlink(path().c_str()) != 0 && errno != ENOENT)
      return "cannot remove " + path() + ": " + std::strerror(errno);
    fsync_dir(dir_);
    return "";
  }
  std::string tmp = path() + ".tmp";
  std::string data = journal_to_json(s).dump(1) + "\n";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return "cannot create " + tmp + ": " + std::strerror(errno);
  size_t off = 0;
  int err = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    off += static_cast<size_t>(n);
  }
  if (!err && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && !err) err = errno;
  if (!err && rename(tmp.c_str(), path().c_str()) != 0) err = errno;
  if (err) {
    unlink(tmp.c_str());
    return "cannot write " + path() + ": " + std::strerror(err);
  }
  if (int derr = fsync_dir(dir_)) return "cannot fsync " + dir_ + ": " + std::strerror(derr);
  return "";
}

std::vector<std::string> JournalStore::kept_aside() const {
  std::vector<std::string> out;
  DIR* d = opendir(dir_.c_str());
  if (!d) return out;
  std::string prefix = std::string(kJournalName) + ".";
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind(prefix, 0) == 0 && n != prefix + "tmp") out.push_back(dir_ + "/" + n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
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

void restore_state(JournalState* st, bool force, const FaultHook& fault, RestoreReport* report) {
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
    std::string raw;
    int err = read_file(f.path, &raw, fault);
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
      } else if (int werr = write_file(f.path, f.original, fault)) {
        item.outcome = werr == ENOENT ? "gone" : "failed";
        item.detail = "write: " + errno_name(werr);
      } else {
        std::string back;
        read_file(f.path, &back, fault);
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
  for (const char* o : {"restored", "already", "gone", "left-alone", "failed"})
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
    out << i.outcome << ": " << i.knob << " (" << i.instance << ") -> " << i.original;
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
        << " failed\n";
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

RestoreReport restore_from_journal(const std::string& state_dir, bool force) {
  RestoreReport report;
  JournalStore store(state_dir, nullptr);
  report.journal_path = store.path();
  struct stat st {};
  if (stat(store.path().c_str(), &st) != 0 && errno == ENOENT) {
    // Nothing journalled: do not create the state directory just to look.
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
  JournalState state;
  std::string message, aside;
  switch (store.load(&state, &message, &aside)) {
    case JournalStore::Load::Missing:
      report.nothing_to_do = true;
      break;
    case JournalStore::Load::KeptAside:
      report.ok = false;
      report.problems.push_back(message);
      break;
    case JournalStore::Load::Ok:
      restore_state(&state, force, nullptr, &report);
      if (std::string err = store.commit(state); !err.empty()) {
        report.ok = false;
        report.problems.push_back("restored, but could not update the journal: " + err);
      }
      if (report.count("failed") > 0) {
        report.ok = false;
        report.problems.push_back(std::to_string(report.count("failed")) +
                                  " knob instance(s) could not be restored; they stay in the "
                                  "journal for the next `specactd restore`");
      }
      if (state.empty() && report.items.empty()) report.nothing_to_do = true;
      break;
  }
  for (const auto& a : store.kept_aside())
    if (a != aside) report.notes.push_back("earlier journal kept aside, needs review: " + a);
  for (const auto& i : report.items)
    if (i.outcome == "restored")
      log::info("restore: " + i.knob + " (" + i.instance + ") -> " + i.original);
  return report;
}

}  // namespace specact
