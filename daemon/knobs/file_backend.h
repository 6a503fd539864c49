// File knobs: sysctls (/proc/sys), the scheduler debugfs and cgroup v2 cpu.*
// files. A knob's instances are its files (one, or one per cgroup of the
// set); each is read and written through kernel_files.h and converted by the
// knob's codec (file_codec.h).
#pragma once

#include "knobs/knob_backend.h"

namespace specact::knobs {

class FileKnobBackend : public KnobBackend {
 public:
  explicit FileKnobBackend(KnobEnv& env) : env_(env) {}
  bool handles(const KnobDef& d) const override { return !d.per_task(); }
  KnobProbe probe(const KnobDef& d) override;
  KnobPlan plan(const KnobDef& d, int64_t value, const JournalState& journal,
                KnobResult* r) override;
  bool check_yielded(JournalState* journal, std::vector<YieldEvent>* events) override;

 private:
  struct Located {
    std::string reason;  // "" = usable
    std::vector<std::string> paths;
    std::optional<int64_t> current;  // of the first path
  };
  Located locate(const KnobDef& d) const;
  // Files the knob writes; empty and *reason when there are none.
  std::vector<std::string> paths(const KnobDef& d, std::string* reason) const;
  std::vector<std::string> cgroup_paths(const KnobDef& d, std::string* reason) const;

  KnobEnv& env_;
};

}  // namespace specact::knobs
