// Where event lines go when the daemon runs as a systemd service (its stderr
// is the journal, observe::stderr_is_journal()): decisions become structured
// journal entries with SPECACT_* fields and a MESSAGE_ID
// (daemon/observe/journal_events.h), carrying the same MESSAGE the stderr
// line would have; every other event, and a decision the journal refused,
// goes to the StderrLog as before. Subscribed instead of the StderrLog, so no
// line is logged twice.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>

#include "observe/journal_sink.h"
#include "observe/rate_limited_warning.h"
#include "runtime/event_sink.h"

namespace specact {

class JournalLog : public EventSubscriber {
 public:
  // Sends an event's journal entries: 0 or -errno (observe::JournalSink by
  // default; tests put a stand-in here).
  using Send = std::function<int(const nlohmann::json& event)>;
  explicit JournalLog(StderrLog& lines, Send send = nullptr)
      : lines_(lines),
        send_(send ? std::move(send) : [sink = observe::JournalSink()](const nlohmann::json& e) {
          return sink.send(e);
        }) {}
  void on_event(const RecordedEvent& e) override;

 private:
  StderrLog& lines_;
  Send send_;
  observe::RateLimitedWarning refused_;
};

}  // namespace specact
