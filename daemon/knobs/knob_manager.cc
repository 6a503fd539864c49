#include "knobs/knob_manager.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>

#include "common/log.h"
#include "knobs/journal.h"
#include "knobs/knob_defs.h"
#include "knobs/restore.h"
#include "knobs/write_gate.h"

namespace specact {
using namespace knobs;

namespace {

constexpr size_t kOursKept = 8;  // recent values we wrote, to recognise them after a crash

template <typename T>
void remember(std::vector<T>& ours, const T& v) {
  ours.erase(std::remove(ours.begin(), ours.end(), v), ours.end());
  ours.push_back(v);
  if (ours.size() > kOursKept) ours.erase(ours.begin());
}

template <typename T>
bool contains(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

struct KnobManager::Impl {
  KnobsConfig& cfg;
  const TargetResolver* target;
  SteadyClock steady;
  const Clock* clock;
  std::vector<KnobDef> defs;
  WriteGate gate;
  std::optional<TargetResolver> background;
  std::string background_error;
  std::optional<SliceProbe> slice;
  KernelRoots roots;   // the only places file knobs are read and written
  RestoreScope scope;  // what restore may touch (the same roots, these defs)
  JournalStore store;
  JournalState journal;
  bool journal_ready = false;
  std::map<std::string, std::string> yielded;   // knob -> why
  std::map<std::string, int64_t> task_applied;  // per-task knob -> kernel value in force

  Impl(KnobsConfig& c, const TargetResolver* t, const Clock* clk)
      : cfg(c),
        target(t),
        clock(clk ? clk : &steady),
        defs(configured_defs(c)),
        gate(WriteGate::from(c)),
        roots(KernelRoots::from(c)),
        scope(RestoreScope::from(c)),
        store(c.state_dir, c.fault) {
    if (cfg.background) {
      try {
        background.emplace(*cfg.background, cfg.proc_root, cfg.cgroup_root);
        background->validate();
      } catch (const TargetError& e) {
        background.reset();
        background_error = std::string("background set unusable: ") + e.what();
      }
    }
  }

  const KnobDef* find(const std::string& name) const {
    for (const auto& d : defs)
      if (d.info.name == name) return &d;
    return nullptr;
  }

  const SliceProbe& slice_probe() {
    if (!slice) slice = probe_slice_support();
    return *slice;
  }

  void step(std::string_view s) {
    if (cfg.on_step) cfg.on_step(s);
  }

  // ---- which tasks / files a knob acts on

  std::vector<pid_t> set_processes(bool bg) const {
    std::vector<pid_t> out;
    pid_t self = getpid();
    if (!bg) {
      if (target)
        for (pid_t p : target->processes())
          if (p != self) out.push_back(p);
      return out;
    }
    if (!background) return out;
    std::set<pid_t> tgt;
    if (target)
      for (pid_t p : target->processes()) tgt.insert(p);
    for (pid_t p : background->processes())
      if (p != self && !tgt.count(p)) out.push_back(p);  // the target always wins
    return out;
  }

  const std::string& cgroup_root() const { return roots.cgroup; }

  // Files a file knob writes; "" reason when usable.
  std::vector<std::string> file_paths(const KnobDef& d, std::string* reason) const {
    switch (d.where) {
      case Where::Sysctl:
        return {roots.sys + "/" + d.file};
      case Where::Debugfs:
        return {roots.debugfs + "/" + d.file};
      case Where::CgroupTarget:
      case Where::CgroupBackground:
        break;
      default:
        return {};
    }
    bool bg = d.where == Where::CgroupBackground;
    std::string root = cgroup_root();
    if (root.empty()) {
      *reason = "no cgroup v2 hierarchy is mounted (cgroup v1-only host)";
      return {};
    }
    std::string controllers;
    read_file(roots, root + "/cgroup.controllers", &controllers, cfg.fault);
    std::istringstream words(controllers);
    std::string w;
    bool cpu = false;
    while (words >> w) cpu = cpu || w == "cpu";
    if (!cpu) {
      *reason = "cpu controller not enabled in cgroup v2 at " + root +
                " (hybrid/v1 host: cgroup.controllers has no 'cpu')";
      return {};
    }
    const TargetResolver* res = bg ? (background ? &*background : nullptr) : target;
    if (!res) {
      *reason = bg ? (background_error.empty() ? "no background set configured (knobs.background)"
                                               : background_error)
                   : "no target given";
      return {};
    }
    std::set<std::string> dirs;
    if (res->cgroup_dir()) {
      dirs.insert(strip_slashes(*res->cgroup_dir()));
    } else {
      for (pid_t p : set_processes(bg)) {
        std::string dir = cgroup2_dir_of(p, cfg.proc_root, root);
        if (!dir.empty()) dirs.insert(strip_slashes(dir));
      }
    }
    if (dirs.empty()) {
      *reason = std::string(bg ? "background" : "target") + " has no live process with a cgroup";
      return {};
    }
    std::vector<std::string> out;
    for (const auto& dir : dirs) {
      if (dir == root) {
        *reason = std::string(bg ? "background" : "target") +
                  " is in the root cgroup, which has no cpu.* files";
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

  // ---- probing

  struct Probe {
    std::string reason;  // "" = available
    std::optional<int64_t> current;
    std::vector<std::string> paths;
  };

  std::string read_error(const std::string& path, int err) const {
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

  Probe probe(const KnobDef& d) {
    Probe p;
    if (!d.static_reason.empty()) {
      p.reason = d.static_reason;
      return p;
    }
    if (d.where == Where::Task || d.where == Where::Background) {
      bool bg = d.where == Where::Background;
      if (bg && !background) {
        p.reason = background_error.empty() ? "no background set configured (knobs.background)"
                                            : background_error;
        return p;
      }
      if (d.field == TaskField::Slice && !slice_probe().supported) {
        p.reason = slice_probe().reason;
        return p;
      }
      for (pid_t proc : set_processes(bg)) {
        TaskAttr a;
        if (get_task_attr(proc, &a) == 0 && tunable_policy(a.policy)) {
          p.current = from_kernel_units(d.field, task_field_get(a, d.field));
          break;
        }
      }
      return p;
    }
    if (d.where == Where::Debugfs) {
      if (access(cfg.debugfs_root.c_str(), F_OK) != 0) {
        p.reason =
            "scheduler debugfs not present at " + cfg.debugfs_root + " (debugfs not mounted?)";
        return p;
      }
    }
    std::string why;
    p.paths = file_paths(d, &why);
    if (p.paths.empty()) {
      p.reason = why.empty() ? "nothing to act on" : why;
      return p;
    }
    const std::string& path = p.paths.front();
    std::string raw;
    if (int err = read_file(roots, path, &raw, cfg.fault)) {
      p.reason = read_error(path, err);
      return p;
    }
    p.current = decode(d, normalize(d.codec, raw));
    if (!p.current) {
      p.reason = "cannot parse " + path + " ('" + trim(raw) + "')";
      return p;
    }
    for (const auto& wpath : p.paths)
      if (int err = probe_writable(roots, wpath, cfg.fault)) {
        p.reason = err == EROFS ? "read-only: " + wpath + " is on a read-only mount"
                                : "not writable: " + read_error(wpath, err);
        return p;
      }
    return p;
  }

  // ---- journal

  std::string ensure_journal() {
    if (journal_ready) return "";
    if (std::string err = store.lock(); !err.empty()) return err;
    JournalState left;
    std::string message, aside;
    switch (store.load(&left, &message, &aside, &scope)) {
      case JournalStore::Load::Missing:
        break;
      case JournalStore::Load::KeptAside:
        // Unusable journal from an earlier run: it is kept aside for the admin.
        log::error("knobs: " + message);
        break;
      case JournalStore::Load::Refused:
        log::error("knobs: " + message);
        return message;  // left in place: refuse to overwrite it
      case JournalStore::Load::Ok:
        if (!left.empty()) {
          log::warn("knobs: journal left by an earlier run found in " + store.dir() +
                    "; restoring it before changing anything");
          RestoreReport r;
          restore_state(&left, false, scope, &r);
          for (const auto& i : r.items)
            log::info("knobs: recovered " + i.knob + " (" + i.instance + "): " + i.outcome +
                      (i.detail.empty() ? "" : " — " + i.detail));
          // Entries that failed stay journalled (their originals are the true ones).
          journal = left;
        }
        break;
    }
    journal.boot_id = read_boot_id();
    if (std::string err = commit(journal); !err.empty()) return err;
    journal_ready = true;
    return "";
  }

  // Drops what no restore could use: threads and processes that have exited
  // (a recycled id has another start time), and task entries left with
  // neither, unless the knob is still applied and `keep_applied` (its entry
  // keeps the values we wrote, to recognise them in threads born later). The
  // journal stays as large as the live target, not its history. True when
  // anything went.
  bool prune_exited(JournalState* st, bool keep_applied = true) const {
    bool changed = false;
    for (auto& e : st->tasks) {
      size_t threads = e.threads.size(), procs = e.procs.size();
      std::erase_if(e.threads, [&](const ThreadRec& t) {
        return task_start_time(e.proc_root, t.tgid, t.tid) != t.start;
      });
      std::erase_if(e.procs, [&](const ProcRec& p) {
        return task_start_time(e.proc_root, p.tgid, p.tgid) != p.start;
      });
      changed = changed || threads != e.threads.size() || procs != e.procs.size();
    }
    changed = std::erase_if(st->tasks,
                            [&](const TaskEntry& e) {
                              return e.threads.empty() && e.procs.empty() &&
                                     !(keep_applied && task_applied.count(e.knob));
                            }) > 0 ||
              changed;
    return changed;
  }

  // Every commit prunes first.
  std::string commit(JournalState& st) {
    prune_exited(&st);
    return store.commit(st);
  }

  FileEntry* file_entry(const std::string& knob, const std::string& path) {
    for (auto& f : journal.files)
      if (f.knob == knob && f.path == path) return &f;
    return nullptr;
  }

  TaskEntry* task_entry(JournalState& st, const std::string& knob) {
    for (auto& t : st.tasks)
      if (t.knob == knob) return &t;
    return nullptr;
  }

  void yield(const std::string& knob, const std::string& why) {
    if (!yielded.count(knob)) log::warn("knobs: yielding " + knob + ": " + why);
    yielded[knob] = why;
    task_applied.erase(knob);
  }

  // Derived original of a thread first seen now: a value equal to one we
  // wrote was inherited from a thread we changed.
  int64_t original_for(const TaskEntry& e, pid_t tgid, int64_t cur) const {
    if (!contains(e.ours, cur)) return cur;
    for (const auto& p : e.procs)
      if (p.tgid == tgid) return p.original;
    if (!e.procs.empty()) return e.procs.front().original;
    if (!e.threads.empty()) return e.threads.front().original;
    return cur;
  }
};

// ------------------------------------------------------------------ public

KnobManager::KnobManager(KnobsConfig config, const TargetResolver* target, const Clock* clock)
    : cfg_(std::move(config)), impl_(std::make_unique<Impl>(cfg_, target, clock)) {}

KnobManager::~KnobManager() {
  if (!impl_->journal_ready || impl_->journal.empty()) return;
  if (cfg_.restore_on_exit) {
    auto r = restore_all();
    log::info("knobs: restored on exit: " + std::to_string(r.count("restored")) + " restored, " +
              std::to_string(r.count("failed")) + " failed");
  } else {
    // What stays behind must be what a later restore can act on: no entry
    // for tasks that are all gone (no new thread is tuned after this).
    if (impl_->prune_exited(&impl_->journal, /*keep_applied=*/false))
      if (std::string err = impl_->store.commit(impl_->journal); !err.empty())
        log::warn("knobs: journal update on exit failed: " + err);
    if (impl_->journal.empty()) {
      log::info("knobs: every tuned task has exited; nothing left to restore, journal removed");
      return;
    }
    log::info(
        "knobs: keeping the current settings on exit (restore_on_exit=false); "
        "`specactd restore` undoes them from " +
        impl_->store.path());
  }
}

std::vector<KnobInfo> KnobManager::catalogue() {
  std::vector<KnobInfo> out;
  for (const auto& d : impl_->defs) {
    KnobInfo k = d.info;
    auto p = impl_->probe(d);
    k.current = p.current;
    if (d.default_slice_divisor > 0 && impl_->slice_probe().default_slice_ns > 0)
      k.default_value = impl_->slice_probe().default_slice_ns / d.default_slice_divisor;
    if (!impl_->gate.allowed(d.info.name)) {
      k.available = false;
      k.unavailable_reason = "not in the allow-list (knobs.allow / knobs.deny)";
    } else if (impl_->yielded.count(d.info.name)) {
      k.available = false;
      k.unavailable_reason = "yielded: " + impl_->yielded[d.info.name];
    } else {
      k.available = p.reason.empty();
      k.unavailable_reason = p.reason;
    }
    out.push_back(std::move(k));
  }
  return out;
}

Config KnobManager::read_current() {
  Config c;
  for (const auto& d : impl_->defs) {
    if (!impl_->gate.allowed(d.info.name) || impl_->yielded.count(d.info.name)) continue;
    auto p = impl_->probe(d);
    if (p.reason.empty() && p.current) c[d.info.name] = *p.current;
  }
  return c;
}

std::set<std::string> KnobManager::yielded() const {
  std::set<std::string> out;
  for (const auto& [k, v] : impl_->yielded) out.insert(k);
  return out;
}

bool KnobManager::has_managed() const { return impl_->journal_ready && !impl_->journal.empty(); }

ApplyResult KnobManager::apply(const Config& desired, const std::string& who_why) {
  Impl& m = *impl_;
  ApplyResult out;

  struct ThreadWork {
    pid_t tid, tgid;
    uint64_t start;
    TaskAttr cur;
    bool write;  // false: already at the value, journalled so restore knows its original
  };
  struct Plan {
    size_t idx;
    const KnobDef* def;
    int64_t value;
    std::vector<std::string> paths;  // file knobs: instances to write
    std::string encoded;
    std::vector<ThreadWork> threads;  // task knobs: every tunable thread of the set
    int64_t kvalue = 0;
    bool any_write = false;
  };
  std::vector<Plan> plans;
  int64_t now = m.clock->now_ns();

  for (const auto& [name, requested] : desired) {
    out.results.push_back({});
    KnobResult& r = out.results.back();
    r.knob = name;
    r.requested = requested;
    const KnobDef* d = m.find(name);
    if (!d) {
      r.status = KnobResult::Status::Rejected;
      r.error = "unknown knob '" + name + "' (see `specactd knobs`)";
      continue;
    }
    if (std::string why = m.gate.check_allowed(name); !why.empty()) {
      r.status = KnobResult::Status::Rejected;
      r.error = why;
      continue;
    }
    if (m.yielded.count(name)) {
      r.status = KnobResult::Status::Yielded;
      r.error = "yielded: " + m.yielded[name] + "; no longer managed";
      continue;
    }
    std::string why;
    std::optional<int64_t> admitted = m.gate.check_value(d->info, requested, &why);
    if (!admitted) {
      r.status = KnobResult::Status::Rejected;
      r.error = why;
      continue;
    }
    int64_t v = *admitted;
    r.clamped = v != requested;
    r.written = v;
    auto p = m.probe(*d);
    if (!p.reason.empty()) {
      r.status = KnobResult::Status::Unavailable;
      r.error = name + " unavailable: " + p.reason;
      continue;
    }
    Plan plan{out.results.size() - 1, d, v, {}, {}, {}, 0};
    bool yielded_now = false;
    if (d->where == Where::Task || d->where == Where::Background) {
      plan.kvalue = to_kernel_units(d->field, v);
      TaskEntry* e = m.task_entry(m.journal, name);
      std::vector<pid_t> procs = m.set_processes(d->where == Where::Background);
      for (pid_t tgid : procs)
        for (pid_t tid : threads_of(tgid, m.cfg.proc_root)) {
          TaskAttr a;
          if (int err = get_task_attr(tid, &a)) {
            if (err == ESRCH) r.tasks_gone++;
            continue;
          }
          if (!tunable_policy(a.policy)) {
            r.tasks_skipped++;
            continue;
          }
          int64_t cur = task_field_get(a, d->field);
          uint64_t start = task_start_time(m.cfg.proc_root, tgid, tid);
          if (e)
            for (auto& th : e->threads)
              if (th.tid == tid && th.start == start && th.last && *th.last != cur)
                yielded_now = true;
          if (!r.read_back) r.read_back = from_kernel_units(d->field, cur);
          bool write = cur != plan.kvalue;
          plan.any_write = plan.any_write || write;
          plan.threads.push_back({tid, tgid, start, a, write});
        }
      if (yielded_now) {
        m.yield(name, "a managed thread's value was changed by someone else");
      } else if (procs.empty() || plan.threads.empty()) {
        r.status = KnobResult::Status::Failed;
        r.error = std::string(d->where == Where::Background ? "background" : "target") +
                  " has no live tasks with a normal/batch/idle policy";
        continue;
      }
    } else {
      plan.encoded = encode(*d, v);
      std::string want = normalize(d->codec, plan.encoded);
      for (const auto& path : p.paths) {
        std::string raw;
        if (int err = read_file(m.roots, path, &raw, m.cfg.fault)) {
          r.status = KnobResult::Status::Failed;
          r.error = "read " + path + ": " + errno_name(err);
          break;
        }
        std::string cur = normalize(d->codec, raw);
        if (const FileEntry* f = m.file_entry(name, path); f && !f->last.empty() && f->last != cur)
          yielded_now = true;
        if (!r.read_back) r.read_back = decode(*d, cur);
        if (cur != want) plan.paths.push_back(path);
      }
      if (!r.error.empty()) continue;
      if (yielded_now) m.yield(name, "changed by someone else since specact's last write");
    }
    if (yielded_now) {
      r.status = KnobResult::Status::Yielded;
      r.error = "yielded: " + m.yielded[name] + "; no longer managed";
      continue;
    }
    if (plan.paths.empty() && !plan.any_write) {
      r.status = KnobResult::Status::NoChange;
      continue;
    }
    if (std::string why = m.gate.check_rate(name, now); !why.empty()) {
      r.status = KnobResult::Status::RateLimited;
      r.error = why;
      continue;
    }
    r.read_back.reset();
    plans.push_back(std::move(plan));
  }
  if (plans.empty()) return out;

  // Journal first: originals of everything about to change + the values we
  // are about to write, durably, before any write.
  if (std::string err = m.ensure_journal(); !err.empty()) {
    for (auto& p : plans) {
      out.results[p.idx].status = KnobResult::Status::Failed;
      out.results[p.idx].error = "journal unavailable (" + err + "); nothing was changed";
    }
    return out;
  }
  JournalState next = m.journal;
  for (const auto& p : plans) {
    const std::string& name = p.def->info.name;
    if (!p.paths.empty()) {
      for (const auto& path : p.paths) {
        FileEntry* f = nullptr;
        for (auto& e : next.files)
          if (e.knob == name && e.path == path) f = &e;
        if (!f) {
          std::string raw;
          read_file(m.roots, path, &raw, m.cfg.fault);
          next.files.push_back({name, path, p.def->codec, normalize(p.def->codec, raw), {}, ""});
          f = &next.files.back();
        }
        remember(f->ours, normalize(p.def->codec, p.encoded));
      }
    } else {
      TaskEntry* e = m.task_entry(next, name);
      if (!e) {
        next.tasks.push_back({});
        e = &next.tasks.back();
        e->knob = name;
        e->field = p.def->field;
        e->default_slice_ns = m.slice_probe().default_slice_ns;
        e->proc_root = m.cfg.proc_root;
      }
      for (const auto& w : p.threads) {
        bool known = std::any_of(e->threads.begin(), e->threads.end(), [&](const ThreadRec& t) {
          return t.tid == w.tid && t.start == w.start;
        });
        int64_t cur = task_field_get(w.cur, p.def->field);
        if (!std::any_of(e->procs.begin(), e->procs.end(),
                         [&](const ProcRec& pr) { return pr.tgid == w.tgid; })) {
          TaskAttr main;
          int64_t orig = cur;
          if (get_task_attr(w.tgid, &main) == 0)
            orig = e->procs.empty() && e->threads.empty()
                       ? task_field_get(main, p.def->field)
                       : m.original_for(*e, w.tgid, task_field_get(main, p.def->field));
          e->procs.push_back({w.tgid, task_start_time(m.cfg.proc_root, w.tgid, w.tgid), orig});
        }
        if (!known)
          e->threads.push_back({w.tid, w.tgid, w.start, m.original_for(*e, w.tgid, cur), {}});
      }
      remember(e->ours, p.kvalue);
    }
  }
  if (std::string err = m.commit(next); !err.empty()) {
    for (auto& p : plans) {
      out.results[p.idx].status = KnobResult::Status::Failed;
      out.results[p.idx].error = "journal not written (" + err + "); nothing was changed";
    }
    log::error("knobs: journal write failed, no knob changed: " + err);
    return out;
  }
  m.journal = std::move(next);
  m.step("journal-committed");

  bool need_recommit = false;
  for (auto& p : plans) {
    KnobResult& r = out.results[p.idx];
    const std::string& name = p.def->info.name;
    std::string failure;
    if (!p.paths.empty()) {
      for (const auto& path : p.paths) {
        FileEntry* f = m.file_entry(name, path);
        if (int err = write_file(m.roots, path, p.encoded, m.cfg.fault)) {
          failure = "write '" + p.encoded + "' to " + path + ": " + errno_name(err) +
                    (err == ENOENT ? " (cgroup disappeared?)" : "");
          continue;
        }
        m.step("wrote:" + name);
        std::string raw;
        if (int err = read_file(m.roots, path, &raw, m.cfg.fault)) {
          failure = "read back " + path + ": " + errno_name(err);
          continue;
        }
        std::string back = normalize(p.def->codec, raw);
        if (f) {
          f->last = back;
          if (!contains(f->ours, back)) remember(f->ours, back), need_recommit = true;
        }
        if (!r.read_back) r.read_back = decode(*p.def, back);
      }
    } else {
      TaskEntry* e = m.task_entry(m.journal, name);
      for (const auto& w : p.threads) {
        if (!w.write) {
          if (e)
            for (auto& th : e->threads)
              if (th.tid == w.tid && th.start == w.start) th.last = p.kvalue;
          continue;
        }
        // Re-read: another knob of this batch may have just changed this thread.
        TaskAttr cur;
        if (get_task_attr(w.tid, &cur) != 0) {
          r.tasks_gone++;
          continue;
        }
        TaskAttr want = cur;
        task_field_set(&want, p.def->field, p.kvalue, e ? e->default_slice_ns : 0);
        if (int err = set_task_attr(w.tid, want, cur)) {
          if (err == ESRCH) {
            r.tasks_gone++;
          } else {
            failure = "sched_setattr tid " + std::to_string(w.tid) + ": " + errno_name(err);
          }
          continue;
        }
        r.tasks_written++;
        m.step("wrote-task:" + name);
        TaskAttr after;
        if (get_task_attr(w.tid, &after) != 0) continue;  // exited right after the write
        int64_t back = task_field_get(after, p.def->field);
        if (e) {
          for (auto& th : e->threads)
            if (th.tid == w.tid && th.start == w.start) th.last = back;
          if (!contains(e->ours, back)) remember(e->ours, back), need_recommit = true;
        }
        if (!r.read_back) r.read_back = from_kernel_units(p.def->field, back);
      }
      if (r.tasks_written > 0 || failure.empty()) m.task_applied[name] = p.kvalue;
      bool some_at_value = std::any_of(p.threads.begin(), p.threads.end(),
                                       [](const ThreadWork& w) { return !w.write; });
      if (r.tasks_written == 0 && failure.empty() && !some_at_value)
        failure = "every target thread exited during the write";
    }
    m.gate.wrote(name, now);
    if (failure.empty()) {
      r.status = KnobResult::Status::Applied;
      // The runtime logs each decision once at info; this per-write line is detail.
      log::debug("knobs: " + name + " = " + format_knob_value(p.def->info, p.value) +
                 (r.clamped ? " (clamped from " + std::to_string(r.requested) + ")" : "") +
                 (r.read_back && *r.read_back != p.value
                      ? " (kernel reads back " + std::to_string(*r.read_back) + ")"
                      : "") +
                 " by " + who_why);
    } else {
      r.status = KnobResult::Status::Failed;
      r.error = failure;
      log::warn("knobs: " + name + ": " + failure);
    }
  }
  if (need_recommit)
    if (std::string err = m.commit(m.journal); !err.empty())
      log::warn("knobs: journal update after write failed: " + err);
  return out;
}

std::vector<YieldEvent> KnobManager::check_yielded() {
  Impl& m = *impl_;
  std::vector<YieldEvent> events;
  if (!m.journal_ready) return events;
  bool changed = false;
  std::vector<FileEntry> keep;
  for (auto& f : m.journal.files) {
    std::string raw;
    int err = read_file(m.roots, f.path, &raw, m.cfg.fault);
    if (err == ENOENT || err == ENODEV) {
      log::info("knobs: " + f.path + " disappeared; no longer managed");
      changed = true;
      continue;
    }
    std::string now = err ? f.last : normalize(f.codec, raw);
    if (!f.last.empty() && now != f.last) {
      events.push_back({f.knob, f.path, f.last, now,
                        "the kernel does not record who writes " + f.path +
                            "; not specactd (every specactd write is journalled)"});
      m.yield(f.knob, "changed from '" + f.last + "' to '" + now + "' by someone else");
      changed = true;
      continue;  // dropped from the journal: restore must not undo the admin's value
    }
    keep.push_back(f);
  }
  m.journal.files = std::move(keep);
  for (auto& e : m.journal.tasks) {
    std::vector<ThreadRec> keep_threads;
    size_t changed_threads = 0;
    std::string first_expected, first_found, first_tid;
    for (auto& th : e.threads) {
      TaskAttr a;
      if (task_start_time(e.proc_root, th.tgid, th.tid) != th.start ||
          get_task_attr(th.tid, &a) != 0) {
        changed = true;  // thread exited: nothing to restore
        continue;
      }
      int64_t now = task_field_get(a, e.field);
      if (th.last && *th.last != now) {
        if (changed_threads++ == 0) {
          first_expected = std::to_string(*th.last);
          first_found = std::to_string(now);
          first_tid = "tid " + std::to_string(th.tid);
        }
        changed = true;
        continue;
      }
      keep_threads.push_back(th);
    }
    e.threads = std::move(keep_threads);
    if (changed_threads) {
      events.push_back(
          {e.knob,
           first_tid + (changed_threads > 1
                            ? " and " + std::to_string(changed_threads - 1) + " more threads"
                            : ""),
           first_expected, first_found,
           "changed by the process itself or another tool (renice, chrt, "
           "sched_setattr); the kernel does not record which"});
      m.yield(e.knob, std::to_string(changed_threads) + " thread(s) changed by someone else");
    }
  }
  // A knob no longer applied (yielded) keeps no entry without threads: its
  // processes' new threads are not ours to restore.
  changed = std::erase_if(m.journal.tasks,
                          [&](const TaskEntry& e) {
                            return e.threads.empty() && !m.task_applied.count(e.knob);
                          }) > 0 ||
            changed;
  changed = m.prune_exited(&m.journal) || changed;
  if (changed)
    if (std::string err = m.commit(m.journal); !err.empty())
      log::warn("knobs: journal update failed: " + err);
  return events;
}

size_t KnobManager::reapply_to_new_threads() {
  Impl& m = *impl_;
  if (!m.journal_ready || m.task_applied.empty()) return 0;
  struct Work {
    std::string knob;
    TaskField field;
    int64_t kvalue;
    int64_t default_slice_ns;
    pid_t tid;
    uint64_t start;
    TaskAttr cur;
  };
  std::vector<Work> work;
  std::set<std::pair<pid_t, uint64_t>> new_tasks;  // a thread counts once, whatever the knobs
  JournalState next = m.journal;
  // Forget threads and processes that exited: under churn (a comm target
  // whose processes come and go) they would otherwise pile up.
  bool changed = m.prune_exited(&next);
  for (const auto& [name, kvalue] : m.task_applied) {
    const KnobDef* d = m.find(name);
    if (!d) continue;
    TaskEntry* e = m.task_entry(next, name);
    if (!e) {
      next.tasks.push_back({});
      e = &next.tasks.back();
      e->knob = name;
      e->field = d->field;
      e->default_slice_ns = m.slice_probe().default_slice_ns;
      e->proc_root = m.cfg.proc_root;
      remember(e->ours, kvalue);
    }
    std::set<std::pair<pid_t, uint64_t>> known;
    for (const auto& t : e->threads) known.insert({t.tid, t.start});
    for (pid_t tgid : m.set_processes(d->where == Where::Background)) {
      for (pid_t tid : threads_of(tgid, m.cfg.proc_root)) {
        uint64_t start = task_start_time(m.cfg.proc_root, tgid, tid);
        if (start == 0 || known.count({tid, start})) continue;
        TaskAttr a;
        if (get_task_attr(tid, &a) != 0 || !tunable_policy(a.policy)) continue;
        int64_t cur = task_field_get(a, d->field);
        if (!std::any_of(e->procs.begin(), e->procs.end(),
                         [&](const ProcRec& p) { return p.tgid == tgid; }))
          e->procs.push_back(
              {tgid, task_start_time(m.cfg.proc_root, tgid, tgid), m.original_for(*e, tgid, cur)});
        e->threads.push_back({tid, tgid, start, m.original_for(*e, tgid, cur), {}});
        changed = true;
        new_tasks.insert({tid, start});
        if (cur != kvalue)
          work.push_back({name, d->field, kvalue, e->default_slice_ns, tid, start, a});
        else
          e->threads.back().last = cur;
      }
    }
  }
  if (!changed) return 0;
  if (std::string err = m.commit(next); !err.empty()) {
    log::warn("knobs: not applying settings to new threads: journal write failed: " + err);
    return 0;
  }
  m.journal = std::move(next);
  m.step("journal-committed");
  for (const auto& w : work) {
    TaskAttr cur;
    if (get_task_attr(w.tid, &cur) != 0) continue;
    TaskAttr want = cur;
    task_field_set(&want, w.field, w.kvalue, w.default_slice_ns);
    if (set_task_attr(w.tid, want, cur) != 0) continue;
    m.step("wrote-task:" + w.knob);
    TaskAttr after;
    if (get_task_attr(w.tid, &after) != 0) continue;
    if (TaskEntry* e = m.task_entry(m.journal, w.knob))
      for (auto& th : e->threads)
        if (th.tid == w.tid && th.start == w.start) th.last = task_field_get(after, w.field);
  }
  if (!new_tasks.empty())
    log::debug("knobs: " + std::to_string(new_tasks.size()) +
               " new task(s) brought under management");
  return new_tasks.size();
}

RestoreReport KnobManager::restore_all() {
  Impl& m = *impl_;
  RestoreReport report;
  report.journal_path = m.store.path();
  if (std::string err = m.ensure_journal(); !err.empty()) {
    report.ok = false;
    report.problems.push_back(err);
    return report;
  }
  if (m.journal.empty()) {
    report.nothing_to_do = true;
    return report;
  }
  restore_state(&m.journal, false, m.scope, &report);
  if (std::string err = m.commit(m.journal); !err.empty()) {
    report.ok = false;
    report.problems.push_back("could not update the journal: " + err);
  }
  if (report.count("failed")) {
    report.ok = false;
    report.problems.push_back(std::to_string(report.count("failed")) +
                              " knob instance(s) could not be restored; they stay journalled");
  }
  m.task_applied.clear();
  m.gate.forget_writes();
  return report;
}

RestoreReport KnobManager::recover_leftover() {
  Impl& m = *impl_;
  RestoreReport report;
  report.journal_path = m.store.path();
  if (m.journal_ready) {
    report.nothing_to_do = true;
    return report;
  }
  if (std::string err = m.store.lock(); !err.empty()) {
    report.ok = false;
    report.problems.push_back(err);
    return report;
  }
  std::string message, aside;
  JournalState left;
  switch (m.store.load(&left, &message, &aside, &m.scope)) {
    case JournalStore::Load::Missing:
      report.nothing_to_do = true;
      break;
    case JournalStore::Load::KeptAside:
    case JournalStore::Load::Refused:
      report.ok = false;
      report.problems.push_back(message);
      break;
    case JournalStore::Load::Ok:
      restore_state(&left, false, m.scope, &report);
      if (std::string err = m.commit(left); !err.empty()) {
        report.ok = false;
        report.problems.push_back("could not update the journal: " + err);
      }
      if (report.count("failed") || report.count("refused")) report.ok = false;
      m.journal = left;  // failed entries stay managed and journalled
      m.journal.boot_id = read_boot_id();
      m.journal_ready = aside.empty() || !left.empty();
      if (report.items.empty()) report.nothing_to_do = true;
      break;
  }
  for (const auto& a : m.store.kept_aside())
    report.notes.push_back("earlier journal kept aside, needs review: " + a);
  if (report.problems.empty() && !m.journal_ready) {
    m.journal.boot_id = read_boot_id();
    m.journal_ready = true;
  }
  return report;
}

}  // namespace specact
