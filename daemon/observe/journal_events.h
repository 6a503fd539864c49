// Decisions as structured systemd journal entries: the fields of each entry
// for one audit-trail event, so that `journalctl -u specactd
// SPECACT_EVENT=reverted` or `SPECACT_KNOB=task.nice` finds them. Pure: the
// JournalSink sends what these functions compose.
//
// One entry per knob the event changed (SPECACT_KNOB, SPECACT_OLD,
// SPECACT_NEW; values as in history.jsonl, enum knobs as their index), or one
// entry without them when it changed none. Every entry has MESSAGE (the same
// line as stderr), MESSAGE_ID (fixed per event type: kJournalKinds),
// PRIORITY, SYSLOG_IDENTIFIER=specactd, SPECACT_EVENT, SPECACT_SEQ (the
// history.jsonl seq, shared by the entries of one event), SPECACT_WHO and,
// when the event says why, SPECACT_WHY. Documented in daemon/observe/README.md.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace specact::observe {

struct JournalKind {
  const char* type;        // the history.jsonl event type
  const char* message_id;  // 128-bit id, 32 hex digits (journalctl MESSAGE_ID=...)
  int priority;            // syslog priority: 5 notice (against the plan), 6 info
};

// The event types that become journal entries, with their fixed ids.
extern const std::vector<JournalKind> kJournalKinds;

// The kind of `type`, or nullptr when that type is not journalled.
const JournalKind* journal_kind(std::string_view type);

// "FIELD=value" strings per entry; empty when the event is not journalled.
// Free text (MESSAGE, SPECACT_WHY) is cut to kMaxJournalText bytes.
inline constexpr size_t kMaxJournalText = 4096;
std::vector<std::vector<std::string>> journal_entries(const nlohmann::json& event);

}  // namespace specact::observe
