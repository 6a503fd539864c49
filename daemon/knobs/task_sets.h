// The two sets of processes the per-task and cgroup knobs act on: the target,
// and the background set (knobs.background), which never includes a target
// process nor this daemon.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "target/target.h"

namespace specact {
struct KnobsConfig;
}

namespace specact::knobs {

class TaskSets {
 public:
  // target may be null (nothing to act on); it must outlive this.
  TaskSets(const KnobsConfig& c, const TargetResolver* target);
  // The live processes of the target (background = false) or of the
  // background set, never this daemon; the target wins over the background.
  std::vector<pid_t> processes(bool background) const;
  // The set's resolver, or null and *why (not configured, unusable, no target).
  const TargetResolver* resolver(bool background, std::string* why) const;

 private:
  std::string background_missing() const;
  const TargetResolver* target_;
  std::optional<TargetResolver> background_;
  std::string background_error_;
};

}  // namespace specact::knobs
