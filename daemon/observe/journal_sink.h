// Sends decisions to the systemd journal as structured entries
// (journal_events.h) with sd_journal_sendv(). Used only when the daemon's
// stderr is the journal, i.e. it runs as a systemd service: then the entry
// replaces the stderr line of that event (same MESSAGE, plus the fields), and
// elsewhere nothing changes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace specact::observe {

// True when `journal_stream` (systemd's $JOURNAL_STREAM, "device:inode")
// names the file open at `fd`: systemd sets it for a service whose stderr it
// connected to the journal, and a child that inherited the variable but not
// the stream must not believe it.
bool stream_is_journal(const char* journal_stream, int fd);
// stream_is_journal(getenv("JOURNAL_STREAM"), STDERR_FILENO).
bool stderr_is_journal();

class JournalSink {
 public:
  // Sends the event's entries (none for a type that is not journalled).
  // 0, or the first sd_journal_sendv() error (-errno).
  int send(const nlohmann::json& event) const;
};

}  // namespace specact::observe
