// Per-task knobs: a scheduler attribute (slice, nice, policy) of every thread
// of the target or the background set. A knob's instances are the threads,
// each journalled with its original (and each process with its own, for
// threads born later that inherit specact's value); threads born after a
// write are brought under the setting in force by plan_new_instances().
#pragma once

#include <map>

#include "knobs/knob_backend.h"

namespace specact::knobs {

class TaskKnobBackend : public KnobBackend {
 public:
  explicit TaskKnobBackend(KnobEnv& env) : env_(env) {}
  bool handles(const KnobDef& d) const override { return d.per_task(); }
  KnobProbe probe(const KnobDef& d) override;
  KnobPlan plan(const KnobDef& d, int64_t value, const JournalState& journal,
                KnobResult* r) override;
  bool check_yielded(JournalState* journal, std::vector<YieldEvent>* events) override;
  std::vector<std::unique_ptr<PlannedWrite>> plan_new_instances(const JournalState& journal,
                                                                size_t* count) override;
  bool prune(JournalState* st, bool keep_applied) const override;
  void forget(const std::string& knob) override { applied_.erase(knob); }
  void forget_all() override { applied_.clear(); }

 private:
  class Write;
  struct Applied {
    const KnobDef* def;
    int64_t kvalue;  // kernel units
  };
  KnobEnv& env_;
  std::map<std::string, Applied> applied_;  // knobs in force: what new threads get
};

}  // namespace specact::knobs
