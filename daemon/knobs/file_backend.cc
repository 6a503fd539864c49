#include "knobs/file_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <sstream>

#include "common/log.h"

namespace specact::knobs {
namespace {

std::string read_error(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
      return "not present on this kernel (no " + path + ")";
    case EPERM:
      return "kernel lockdown (EPERM on " + path + ")";
    case EACCES:
      return "permission denied (EACCES on " + path + "): run as root";
    case EROFS:
      return "read-only file system (" + path + " is mounted read-only)";
    default:
      return errno_name(err) + " on " + path;
  }
}

struct FileInstance {
  std::string path;
  std::string original;  // normalized, as read when planning
};

class FileWrite : public PlannedWrite {
 public:
  FileWrite(KnobEnv& env, const KnobDef& d, std::string encoded, std::vector<FileInstance> todo)
      : env_(env), d_(d), encoded_(std::move(encoded)), todo_(std::move(todo)) {}

  void journal(JournalState* next) const override {
    const std::string& name = d_.info.name;
    for (const auto& inst : todo_) {
      FileEntry* f = next->file(name, inst.path);
      if (!f) {
        next->files.push_back({name, inst.path, d_.codec, inst.original, {}, ""});
        f = &next->files.back();
      }
      remember_ours(f->ours, normalize(d_.codec, encoded_));
    }
  }

  std::string write(JournalState* journal, KnobResult* r, bool* recommit) override {
    const std::string& name = d_.info.name;
    std::string failure;
    for (const auto& inst : todo_) {
      if (int err = write_file(env_.roots, inst.path, encoded_, env_.cfg.fault)) {
        failure = "write '" + encoded_ + "' to " + inst.path + ": " + errno_name(err) +
                  (err == ENOENT ? " (cgroup disappeared?)" : "");
        continue;
      }
      env_.step("wrote:" + name);
      std::string raw;
      if (int err = read_file(env_.roots, inst.path, &raw, env_.cfg.fault)) {
        failure = "read back " + inst.path + ": " + errno_name(err);
        continue;
      }
      std::string back = normalize(d_.codec, raw);
      if (FileEntry* f = journal->file(name, inst.path)) {
        f->last = back;
        if (std::find(f->ours.begin(), f->ours.end(), back) == f->ours.end())
          remember_ours(f->ours, back), *recommit = true;
      }
      if (!r->read_back) r->read_back = decode(d_, back);
    }
    // Nothing read back after a write (it failed): what is there is what is
    // in force.
    if (!r->read_back)
      for (const auto& inst : todo_) {
        std::string raw;
        if (read_file(env_.roots, inst.path, &raw, env_.cfg.fault) == 0) {
          r->read_back = decode(d_, normalize(d_.codec, raw));
          break;
        }
      }
    return failure;
  }

 private:
  KnobEnv& env_;
  const KnobDef& d_;
  std::string encoded_;
  std::vector<FileInstance> todo_;  // instances not at the value yet
};

}  // namespace

std::vector<std::string> FileKnobBackend::paths(const KnobDef& d, std::string* reason) const {
  switch (d.where) {
    case Where::Sysctl:
      return {env_.roots.sys + "/" + d.file};
    case Where::Debugfs:
      return {env_.roots.debugfs + "/" + d.file};
    case Where::CgroupTarget:
    case Where::CgroupBackground:
      return cgroup_paths(d, reason);
    case Where::Task:
    case Where::Background:
      break;
  }
  return {};
}

std::vector<std::string> FileKnobBackend::cgroup_paths(const KnobDef& d,
                                                       std::string* reason) const {
  bool bg = d.background();
  const std::string& root = env_.roots.cgroup;
  if (root.empty()) {
    *reason = "no cgroup v2 hierarchy is mounted (cgroup v1-only host)";
    return {};
  }
  std::string controllers;
  read_file(env_.roots, root + "/cgroup.controllers", &controllers, env_.cfg.fault);
  std::istringstream words(controllers);
  std::string w;
  bool cpu = false;
  while (words >> w) cpu = cpu || w == "cpu";
  if (!cpu) {
    *reason = "cpu controller not enabled in cgroup v2 at " + root +
              " (hybrid/v1 host: cgroup.controllers has no 'cpu')";
    return {};
  }
  const TargetResolver* res = env_.sets.resolver(bg, reason);
  if (!res) return {};
  std::set<std::string> dirs;
  if (res->cgroup_dir()) {
    dirs.insert(strip_slashes(*res->cgroup_dir()));
  } else {
    for (pid_t p : env_.sets.processes(bg)) {
      std::string dir = cgroup2_dir_of(p, env_.cfg.proc_root, root);
      if (!dir.empty()) dirs.insert(strip_slashes(dir));
    }
  }
  std::string set = bg ? "background" : "target";
  if (dirs.empty()) {
    *reason = set + " has no live process with a cgroup";
    return {};
  }
  std::vector<std::string> out;
  for (const auto& dir : dirs) {
    if (dir == root) {
      *reason = set + " is in the root cgroup, which has no cpu.* files";
      return {};
    }
    std::string path = dir + "/" + d.file;
    if (access(path.c_str(), F_OK) != 0) {
      *reason = dir + " has no " + d.file +
                (d.file == "cpu.idle" ? " (cpu.idle needs Linux >= 5.15 and the cpu controller)"
                                      : " (the cpu controller is not enabled for it: parent's "
                                        "cgroup.subtree_control lacks +cpu)");
      return {};
    }
    out.push_back(path);
  }
  return out;
}

FileKnobBackend::Located FileKnobBackend::locate(const KnobDef& d) const {
  Located p;
  if (!d.static_reason.empty()) {
    p.reason = d.static_reason;
    return p;
  }
  if (d.where == Where::Debugfs && access(env_.cfg.debugfs_root.c_str(), F_OK) != 0) {
    p.reason =
        "scheduler debugfs not present at " + env_.cfg.debugfs_root + " (debugfs not mounted?)";
    return p;
  }
  std::string why;
  p.paths = paths(d, &why);
  if (p.paths.empty()) {
    p.reason = why.empty() ? "nothing to act on" : why;
    return p;
  }
  const std::string& path = p.paths.front();
  std::string raw;
  if (int err = read_file(env_.roots, path, &raw, env_.cfg.fault)) {
    p.reason = read_error(path, err);
    return p;
  }
  p.current = decode(d, normalize(d.codec, raw));
  if (!p.current) {
    p.reason = "cannot parse " + path + " ('" + trim(raw) + "')";
    return p;
  }
  for (const auto& wpath : p.paths)
    if (int err = probe_writable(env_.roots, wpath, env_.cfg.fault)) {
      p.reason = err == EROFS ? "read-only: " + wpath + " is on a read-only mount"
                              : "not writable: " + read_error(wpath, err);
      return p;
    }
  return p;
}

KnobProbe FileKnobBackend::probe(const KnobDef& d) {
  Located l = locate(d);
  return {l.reason, l.current};
}

KnobPlan FileKnobBackend::plan(const KnobDef& d, int64_t value, const JournalState& journal,
                               KnobResult* r) {
  const std::string& name = d.info.name;
  Located loc = locate(d);
  if (!loc.reason.empty()) return KnobPlan::nothing(KnobResult::Status::Unavailable, loc.reason);
  std::string encoded = encode(d, value);
  std::string want = normalize(d.codec, encoded);
  std::vector<FileInstance> todo;
  bool yielded = false;
  for (const auto& path : loc.paths) {
    std::string raw;
    if (int err = read_file(env_.roots, path, &raw, env_.cfg.fault))
      return KnobPlan::nothing(KnobResult::Status::Failed, "read " + path + ": " + errno_name(err));
    std::string cur = normalize(d.codec, raw);
    if (const FileEntry* f = journal.file(name, path); f && !f->last.empty() && f->last != cur)
      yielded = true;
    if (!r->read_back) r->read_back = decode(d, cur);
    if (cur != want) todo.push_back({path, cur});
  }
  if (yielded) {
    env_.yield(name, "changed by someone else since specact's last write");
    return KnobPlan::nothing(KnobResult::Status::Yielded);
  }
  if (todo.empty()) return KnobPlan::nothing(KnobResult::Status::NoChange);
  return KnobPlan::to_write(
      std::make_unique<FileWrite>(env_, d, std::move(encoded), std::move(todo)));
}

bool FileKnobBackend::check_yielded(JournalState* journal, std::vector<YieldEvent>* events) {
  bool changed = false;
  std::vector<FileEntry> keep;
  for (auto& f : journal->files) {
    std::string raw;
    int err = read_file(env_.roots, f.path, &raw, env_.cfg.fault);
    if (err == ENOENT || err == ENODEV) {
      log::info("knobs: " + f.path + " disappeared; no longer managed");
      changed = true;
      continue;
    }
    std::string now = err ? f.last : normalize(f.codec, raw);
    if (!f.last.empty() && now != f.last) {
      events->push_back({f.knob, f.path, f.last, now,
                         "the kernel does not record who writes " + f.path +
                             "; not specactd (every specactd write is journalled)"});
      env_.yield(f.knob, "changed from '" + f.last + "' to '" + now + "' by someone else");
      changed = true;
      continue;  // dropped from the journal: restore must not undo the admin's value
    }
    keep.push_back(f);
  }
  journal->files = std::move(keep);
  return changed;
}

}  // namespace specact::knobs
