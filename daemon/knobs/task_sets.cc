#include "knobs/task_sets.h"

#include <unistd.h>

#include <set>

#include "knobs/knob_manager.h"

namespace specact::knobs {

TaskSets::TaskSets(const KnobsConfig& c, const TargetResolver* target) : target_(target) {
  if (!c.background) return;
  try {
    background_.emplace(*c.background, c.proc_root, c.cgroup_root);
    background_->validate();
  } catch (const TargetError& e) {
    background_.reset();
    background_error_ = std::string("background set unusable: ") + e.what();
  }
}

std::vector<pid_t> TaskSets::processes(bool background) const {
  std::vector<pid_t> out;
  pid_t self = getpid();
  if (!background) {
    if (target_)
      for (pid_t p : target_->processes())
        if (p != self) out.push_back(p);
    return out;
  }
  if (!background_) return out;
  std::set<pid_t> tgt;
  if (target_)
    for (pid_t p : target_->processes()) tgt.insert(p);
  for (pid_t p : background_->processes())
    if (p != self && !tgt.count(p)) out.push_back(p);  // the target always wins
  return out;
}

const TargetResolver* TaskSets::resolver(bool background, std::string* why) const {
  const TargetResolver* r = background ? (background_ ? &*background_ : nullptr) : target_;
  if (!r) *why = background ? background_missing() : "no target given";
  return r;
}

std::string TaskSets::background_missing() const {
  return background_error_.empty() ? "no background set configured (knobs.background)"
                                   : background_error_;
}

}  // namespace specact::knobs
