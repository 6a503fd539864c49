// Restore: what it may touch (RestoreScope, from the configuration), putting
// journalled knobs back (restore_state), and `specactd restore`
// (restore_from_journal).
#include "knobs/restore.h"

#include <algorithm>
#include <cerrno>
#include <set>

#include "common/log.h"
#include "target/target.h"

namespace specact::knobs {

// ---------------------------------------------------------------- restore

namespace {

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
  s.defs = configured_defs(c);
  s.fault = c.fault;
  return s;
}

const KnobDef* RestoreScope::find(const std::string& knob) const {
  for (const auto& d : defs)
    if (d.info.name == knob) return &d;
  return nullptr;
}

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
