// The seam between the knob manager and the kernel: one backend per kind of
// access (files below the knob roots, per-thread scheduler attributes). The
// manager runs every knob through the same steps — gate, plan, journal, write
// — and a backend supplies the parts that depend on where the knob lives.
//
//   plan    reads every instance the knob acts on (files, threads), notices
//           instances changed behind specact's back (yield), and decides
//           what to write;
//   journal records, in the journal about to be committed, the original of
//           every instance the write changes and the value it writes;
//   write   runs only after that journal is durable: writes, reads back,
//           remembers what it read.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "knobs/journal.h"
#include "knobs/kernel_files.h"
#include "knobs/knob_defs.h"
#include "knobs/knob_manager.h"
#include "knobs/task_sched.h"
#include "knobs/task_sets.h"

namespace specact::knobs {

// What the manager and its backends share.
class KnobEnv {
 public:
  KnobEnv(const KnobsConfig& c, const TargetResolver* target)
      : cfg(c), roots(KernelRoots::from(c)), sets(c, target) {}
  const KnobsConfig& cfg;   // proc_root, fault and on_step hooks
  const KernelRoots roots;  // the only places file knobs are read and written
  const TaskSets sets;
  // Someone else changed `knob`: from now on it is not managed. Set by the
  // manager; backends call it when they notice.
  std::function<void(const std::string& knob, const std::string& why)> yield;

  void step(std::string_view s) const {
    if (cfg.on_step) cfg.on_step(s);
  }
  // Per-task slice support, probed once on first use (it starts a thread).
  const SliceProbe& slice_probe() {
    if (!slice_) slice_ = probe_slice_support();
    return *slice_;
  }

 private:
  std::optional<SliceProbe> slice_;
};

struct KnobProbe {
  std::string reason;  // "" = available
  std::optional<int64_t> current;
};

// One knob's write, planned: what apply() journals and then writes.
class PlannedWrite {
 public:
  virtual ~PlannedWrite() = default;
  // Adds to `next` (not yet committed) the original of every instance this
  // write changes, and the value it writes.
  virtual void journal(JournalState* next) const = 0;
  // Writes and reads back, once the journal holding journal()'s records is
  // durable. Records what it read back in `journal` (sets *recommit when that
  // adds a value worth committing) and in r (read_back, task counters).
  // Returns "" or why it failed (one sentence). Afterwards r->read_back is
  // what the kernel reports for the first instance that could be read.
  virtual std::string write(JournalState* journal, KnobResult* r, bool* recommit) = 0;
};

struct KnobPlan {
  std::unique_ptr<PlannedWrite> write;  // something to write
  // When there is nothing to write: NoChange, Unavailable, Yielded (the
  // backend has called KnobEnv::yield) or Failed.
  KnobResult::Status status = KnobResult::Status::NoChange;
  std::string why;  // Unavailable, Failed: the reason

  static KnobPlan to_write(std::unique_ptr<PlannedWrite> w) {
    KnobPlan p;
    p.write = std::move(w);
    return p;
  }
  static KnobPlan nothing(KnobResult::Status s, std::string why = "") {
    KnobPlan p;
    p.status = s;
    p.why = std::move(why);
    return p;
  }
};

class KnobBackend {
 public:
  virtual ~KnobBackend() = default;
  virtual bool handles(const KnobDef& d) const = 0;
  // Availability and the current value; writes nothing.
  virtual KnobProbe probe(const KnobDef& d) = 0;
  // Plans writing `value` (knob units, passed by the write gate). Sets
  // r->read_back to the current value of the first instance read, and
  // r->tasks_gone / tasks_skipped for threads it passes over.
  virtual KnobPlan plan(const KnobDef& d, int64_t value, const JournalState& journal,
                        KnobResult* r) = 0;
  // Compares the journalled instances with what was last read back: a
  // changed one is reported, yielded and dropped from the journal (restore
  // must not undo someone else's value), a vanished one dropped. True when
  // the journal changed.
  virtual bool check_yielded(JournalState* journal, std::vector<YieldEvent>* events) = 0;
  // Writes that bring instances born since the last call (new threads of the
  // target) under the settings in force; *count += how many instances.
  virtual std::vector<std::unique_ptr<PlannedWrite>> plan_new_instances(const JournalState&,
                                                                        size_t* /*count*/) {
    return {};
  }
  // Drops journal records no restore can use (exited tasks). `keep_applied`:
  // keep an empty entry of a knob still in force (it recognises values
  // inherited by instances born later). True when anything went.
  virtual bool prune(JournalState*, bool /*keep_applied*/) const { return false; }
  // `knob` is no longer in force (yielded); forget_all: nothing is (restored).
  virtual void forget(const std::string& /*knob*/) {}
  virtual void forget_all() {}
};

}  // namespace specact::knobs
