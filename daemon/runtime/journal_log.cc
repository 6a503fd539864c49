#include "runtime/journal_log.h"

#include <cstring>

#include "observe/journal_events.h"

namespace specact {

void JournalLog::on_event(const RecordedEvent& e) {
  if (observe::journal_kind(engine::to_string(e.kind))) {
    const int r = send_(e.entry.data);
    if (r == 0) return;
    refused_.warn(std::string("journal: cannot send a structured entry: ") + std::strerror(-r) +
                  " (decisions go to stderr instead)");
  }
  lines_.on_event(e);
}

}  // namespace specact
