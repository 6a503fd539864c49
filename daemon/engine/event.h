// What the engine hands back for every input: the actions the caller must
// perform and the events for the audit trail. Every history.jsonl line has a
// kind; the engine's events carry theirs as a string (`Event::type`), and the
// runtime turns it into an EventKind once, where an event enters its sink
// (daemon/runtime/event_sink.h). The fields of each kind are documented in
// daemon/runtime/README.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/agent_protocol.h"
#include "common/knob_info.h"

namespace specact::engine {

enum class EventKind {
  // From the engine.
  Window,
  Applied,
  Confirmed,
  Overridden,
  Reverted,
  Yielded,
  AgentCalled,
  AgentError,
  AgentWaiting,
  BudgetExhausted,
  Budgets,
  Converged,
  ReEngaged,
  Recommended,
  TrialSkipped,
  ApplyError,
  Mode,
  Paused,
  Resumed,
  Pinned,
  Unpinned,
  // From the runtime around the engine.
  Started,
  SessionStarted,
  WaitingForTasks,
  TargetAppeared,
  TargetEmpty,
  TargetReturned,
  TargetExited,
  Recovered,
  AgentReply,
  YieldDetail,
  ApplyResult,
  Status,
  Restored,
  LeftInPlace,
  Stopped,
  SettingsRestored,
  SettingsReset,
  SetAside,
  WarmStart,
  Learned,
  // A type this build does not list (an engine newer than this table): kept
  // under its own name in the history, handled like a decision.
  Unlisted,
};

// The history "type" string: window, applied, session_started, ...
// ("unlisted" for Unlisted).
std::string_view to_string(EventKind k);
// nullopt for a string that names no kind (Unlisted is never parsed).
std::optional<EventKind> event_kind_from_string(std::string_view s);

// One audit-trail entry. Stable fields: "type", "time_ns", then type-specific
// fields (documented in daemon/runtime/README.md).
struct Event {
  std::string type;  // to_string(EventKind) of one of the engine's kinds above
                     // (warm starts are "applied" events by who "warm_start")
  int64_t time_ns = 0;
  nlohmann::json fields = nlohmann::json::object();
  std::string summary;  // one line for people (the daemon's stderr log)
  nlohmann::json to_json() const;
  // event_kind_from_string(type), Unlisted when it names none.
  EventKind kind() const;
};

// What a window event says about its window: the engine's verdict, read from
// the event's fields in this one place.
struct WindowVerdict {
  nlohmann::json objective_us;  // number, or null (straddled or too few samples)
  nlohmann::json config;        // the config in force at the window's end
  bool straddled = false;       // a change happened inside it: not evidence
  bool provisional = false;     // measured under an unconfirmed config
  // "straddled", "provisional" or "confirmed" (the D-Bus window payload's phase).
  std::string_view phase() const;
  static WindowVerdict of(const Event& window_event);
};

enum class ApplyKind { Provisional, Confirmed, Revert };
std::string to_string(ApplyKind k);

struct ApplyAction {
  Config config;  // every managed knob
  ApplyKind kind = ApplyKind::Provisional;
  std::string who;  // speculator, actor, safety, user, engine
  std::string why;
};
struct CallAgentAction {
  AgentRole role = AgentRole::Speculator;
  AgentContext context;
};
struct CancelAgentAction {
  AgentRole role = AgentRole::Speculator;
};
using Action = std::variant<ApplyAction, CallAgentAction, CancelAgentAction>;

struct Output {
  std::vector<Action> actions;
  std::vector<Event> events;
  void append(Output&& o);
};

// What the knob layer reports after performing an ApplyAction.
struct ApplyOutcome {
  Config applied;                    // what is in force now (managed knobs)
  std::vector<std::string> yielded;  // knobs changed behind our back: left alone from now on
  std::string error;                 // non-empty: (part of) the apply failed
  // Knobs the request did not reach (rate-limited, rejected, unavailable,
  // failed): the decision stands, the machine differs from it.
  std::vector<std::string> unwritten;
  bool retry = false;  // some were only rate-limited: worth asking again
};

}  // namespace specact::engine
