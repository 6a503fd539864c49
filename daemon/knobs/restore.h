// What restore may touch, and the restore itself. Shared by `specactd
// restore` (restore_from_journal) and the manager (restore_all, recovery).
#pragma once

#include <string>
#include <vector>

#include "knobs/journal.h"
#include "knobs/knob_defs.h"

namespace specact::knobs {

// Comes from the configuration — the roots, the knob definitions, /proc —
// never from the journal: a journal only says which of these knobs to put back
// and to what, and an entry that names anything else is refused.
struct RestoreScope {
  KernelRoots roots;
  std::string proc_root = "/proc";
  std::vector<KnobDef> defs;  // built-in knobs for this kernel + the config's extra sysctls
  FaultHook fault;

  static RestoreScope from(const KnobsConfig& c);
  const KnobDef* find(const std::string& knob) const;
  // "" when restore may write this entry, else why not (one sentence).
  std::string check(const FileEntry& f) const;
  std::string check(const TaskEntry& t) const;
};

// Restores what `st` records. Entries that could not be restored ("failed")
// or may not be ("refused") stay in `st`; restored/gone/left-alone ones are
// removed.
void restore_state(JournalState* st, bool force, const RestoreScope& scope, RestoreReport* report);

}  // namespace specact::knobs
