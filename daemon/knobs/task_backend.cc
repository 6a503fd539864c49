#include "knobs/task_backend.h"

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>

namespace specact::knobs {
namespace {

// One thread as read when planning.
struct TaskInstance {
  pid_t tid = 0, tgid = 0;
  uint64_t start = 0;
  TaskAttr attr;
  bool write = false;  // false: already at the value (journalled all the same)
};

// Every thread of `procs` with a tunable policy, read now. Threads that
// vanish meanwhile count in *gone, realtime/deadline ones in *skipped.
std::vector<TaskInstance> scan(const std::vector<pid_t>& procs, const std::string& proc_root,
                               size_t* gone, size_t* skipped) {
  std::vector<TaskInstance> out;
  for (pid_t tgid : procs)
    for (pid_t tid : threads_of(tgid, proc_root)) {
      TaskAttr a;
      if (int err = get_task_attr(tid, &a)) {
        if (err == ESRCH) ++*gone;
        continue;
      }
      if (!tunable_policy(a.policy)) {
        ++*skipped;
        continue;
      }
      out.push_back({tid, tgid, task_start_time(proc_root, tgid, tid), a, false});
    }
  return out;
}

bool contains(const std::vector<int64_t>& v, int64_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

ThreadRec* find_thread(TaskEntry* e, pid_t tid, uint64_t start) {
  if (e)
    for (auto& th : e->threads)
      if (th.tid == tid && th.start == start) return &th;
  return nullptr;
}

// The original of a thread or process first seen now: a value equal to one
// specact wrote was inherited from a thread specact changed.
int64_t original_for(const TaskEntry& e, pid_t tgid, int64_t cur) {
  if (!contains(e.ours, cur)) return cur;
  for (const auto& p : e.procs)
    if (p.tgid == tgid) return p.original;
  if (!e.procs.empty()) return e.procs.front().original;
  if (!e.threads.empty()) return e.threads.front().original;
  return cur;
}

// Adds to `e` the processes and threads of `threads` it does not list yet,
// each with its original value.
void record_tasks(TaskEntry* e, const std::vector<TaskInstance>& threads,
                  const std::string& proc_root) {
  for (const auto& t : threads) {
    int64_t cur = task_field_get(t.attr, e->field);
    if (std::none_of(e->procs.begin(), e->procs.end(),
                     [&](const ProcRec& p) { return p.tgid == t.tgid; })) {
      TaskAttr main;
      int64_t orig = get_task_attr(t.tgid, &main) == 0 ? task_field_get(main, e->field) : cur;
      e->procs.push_back(
          {t.tgid, task_start_time(proc_root, t.tgid, t.tgid), original_for(*e, t.tgid, orig)});
    }
    if (!find_thread(e, t.tid, t.start))
      e->threads.push_back({t.tid, t.tgid, t.start, original_for(*e, t.tgid, cur), {}});
  }
}

}  // namespace

// Writes one knob's value into a list of threads: for apply() every tunable
// thread of the set, for plan_new_instances() the threads born since.
class TaskKnobBackend::Write : public PlannedWrite {
 public:
  Write(TaskKnobBackend& b, const KnobDef& d, int64_t kvalue, std::vector<TaskInstance> threads)
      : b_(b), d_(d), kvalue_(kvalue), threads_(std::move(threads)) {}

  void journal(JournalState* next) const override {
    TaskEntry* e = next->task(d_.info.name);
    if (!e) {
      TaskEntry fresh;
      fresh.knob = d_.info.name;
      fresh.field = d_.field;
      fresh.default_slice_ns = b_.env_.slice_probe().default_slice_ns;
      fresh.proc_root = b_.env_.cfg.proc_root;
      next->tasks.push_back(std::move(fresh));
      e = &next->tasks.back();
    }
    record_tasks(e, threads_, b_.env_.cfg.proc_root);
    remember_ours(e->ours, kvalue_);
  }

  std::string write(JournalState* journal, KnobResult* r, bool* recommit) override {
    const std::string& name = d_.info.name;
    TaskEntry* e = journal->task(name);
    std::string failure;
    for (const auto& t : threads_) {
      if (!t.write) {
        if (ThreadRec* th = find_thread(e, t.tid, t.start)) th->last = kvalue_;
        continue;
      }
      // Re-read: another knob of this batch may have just changed this thread.
      TaskAttr cur;
      if (get_task_attr(t.tid, &cur) != 0) {
        r->tasks_gone++;
        continue;
      }
      TaskAttr want = cur;
      task_field_set(&want, d_.field, kvalue_, e ? e->default_slice_ns : 0);
      if (int err = set_task_attr(t.tid, want, cur)) {
        if (err == ESRCH)
          r->tasks_gone++;
        else
          failure = "sched_setattr tid " + std::to_string(t.tid) + ": " + errno_name(err);
        continue;
      }
      r->tasks_written++;
      b_.env_.step("wrote-task:" + name);
      TaskAttr after;
      if (get_task_attr(t.tid, &after) != 0) continue;  // exited right after the write
      int64_t back = task_field_get(after, d_.field);
      if (ThreadRec* th = find_thread(e, t.tid, t.start)) th->last = back;
      if (e && !contains(e->ours, back)) remember_ours(e->ours, back), *recommit = true;
      if (!r->read_back) r->read_back = from_kernel_units(d_.field, back);
    }
    if (r->tasks_written > 0 || failure.empty()) b_.applied_[name] = {&d_, kvalue_};
    bool some_at_value = std::any_of(threads_.begin(), threads_.end(),
                                     [](const TaskInstance& t) { return !t.write; });
    if (r->tasks_written == 0 && failure.empty() && !some_at_value)
      failure = "every target thread exited during the write";
    // Nothing read back after a write: what a thread still alive (same start
    // time: not a recycled tid) has is what is in force.
    for (const auto& t : threads_) {
      if (r->read_back) break;
      TaskAttr now;
      if (task_start_time(b_.env_.cfg.proc_root, t.tgid, t.tid) == t.start &&
          get_task_attr(t.tid, &now) == 0)
        r->read_back = from_kernel_units(d_.field, task_field_get(now, d_.field));
    }
    return failure;
  }

 private:
  TaskKnobBackend& b_;
  const KnobDef& d_;
  int64_t kvalue_;
  std::vector<TaskInstance> threads_;
};

KnobProbe TaskKnobBackend::probe(const KnobDef& d) {
  KnobProbe p;
  if (!d.static_reason.empty()) {
    p.reason = d.static_reason;
    return p;
  }
  std::string why;
  if (d.background() && !env_.sets.resolver(true, &why)) {
    p.reason = why;
    return p;
  }
  if (d.field == TaskField::Slice && !env_.slice_probe().supported) {
    p.reason = env_.slice_probe().reason;
    return p;
  }
  for (pid_t proc : env_.sets.processes(d.background())) {
    TaskAttr a;
    if (get_task_attr(proc, &a) == 0 && tunable_policy(a.policy)) {
      p.current = from_kernel_units(d.field, task_field_get(a, d.field));
      break;
    }
  }
  return p;
}

KnobPlan TaskKnobBackend::plan(const KnobDef& d, int64_t value, const JournalState& journal,
                               KnobResult* r) {
  const std::string& name = d.info.name;
  KnobProbe p = probe(d);
  if (!p.reason.empty()) return KnobPlan::nothing(KnobResult::Status::Unavailable, p.reason);
  int64_t kvalue = to_kernel_units(d.field, value);
  const TaskEntry* e = journal.task(name);
  std::vector<pid_t> procs = env_.sets.processes(d.background());
  std::vector<TaskInstance> threads =
      scan(procs, env_.cfg.proc_root, &r->tasks_gone, &r->tasks_skipped);
  bool yielded = false, any_write = false;
  for (auto& t : threads) {
    int64_t cur = task_field_get(t.attr, d.field);
    if (e)
      for (const auto& th : e->threads)
        if (th.tid == t.tid && th.start == t.start && th.last && *th.last != cur) yielded = true;
    if (!r->read_back) r->read_back = from_kernel_units(d.field, cur);
    t.write = cur != kvalue;
    any_write = any_write || t.write;
  }
  if (yielded) {
    env_.yield(name, "a managed thread's value was changed by someone else");
    return KnobPlan::nothing(KnobResult::Status::Yielded);
  }
  if (procs.empty() || threads.empty())
    return KnobPlan::nothing(KnobResult::Status::Failed,
                             std::string(d.background() ? "background" : "target") +
                                 " has no live tasks with a normal/batch/idle policy");
  if (!any_write) return KnobPlan::nothing(KnobResult::Status::NoChange);
  return KnobPlan::to_write(std::make_unique<Write>(*this, d, kvalue, std::move(threads)));
}

std::vector<std::unique_ptr<PlannedWrite>> TaskKnobBackend::plan_new_instances(
    const JournalState& journal, size_t* count) {
  std::vector<std::unique_ptr<PlannedWrite>> out;
  std::set<std::pair<pid_t, uint64_t>> fresh;  // a thread counts once, whatever the knobs
  for (const auto& [name, applied] : applied_) {
    std::set<std::pair<pid_t, uint64_t>> known;
    if (const TaskEntry* e = journal.task(name))
      for (const auto& t : e->threads) known.insert({t.tid, t.start});
    size_t gone = 0, skipped = 0;
    std::vector<TaskInstance> threads =
        scan(env_.sets.processes(applied.def->background()), env_.cfg.proc_root, &gone, &skipped);
    std::erase_if(threads, [&](const TaskInstance& t) {
      return t.start == 0 || known.count({t.tid, t.start});
    });
    if (threads.empty()) continue;
    for (auto& t : threads) {
      t.write = task_field_get(t.attr, applied.def->field) != applied.kvalue;
      fresh.insert({t.tid, t.start});
    }
    out.push_back(std::make_unique<Write>(*this, *applied.def, applied.kvalue, std::move(threads)));
  }
  *count += fresh.size();
  return out;
}

bool TaskKnobBackend::check_yielded(JournalState* journal, std::vector<YieldEvent>* events) {
  bool changed = false;
  for (auto& e : journal->tasks) {
    std::vector<ThreadRec> keep;
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
      keep.push_back(th);
    }
    e.threads = std::move(keep);
    if (changed_threads) {
      events->push_back(
          {e.knob,
           first_tid + (changed_threads > 1
                            ? " and " + std::to_string(changed_threads - 1) + " more threads"
                            : ""),
           first_expected, first_found,
           "changed by the process itself or another tool (renice, chrt, "
           "sched_setattr); the kernel does not record which"});
      env_.yield(e.knob, std::to_string(changed_threads) + " thread(s) changed by someone else");
    }
  }
  // A knob no longer applied (yielded) keeps no entry without threads: its
  // processes' new threads are not ours to restore.
  changed = std::erase_if(journal->tasks,
                          [&](const TaskEntry& e) {
                            return e.threads.empty() && !applied_.count(e.knob);
                          }) > 0 ||
            changed;
  return changed;
}

bool TaskKnobBackend::prune(JournalState* st, bool keep_applied) const {
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
                                   !(keep_applied && applied_.count(e.knob));
                          }) > 0 ||
            changed;
  return changed;
}

}  // namespace specact::knobs
