// Performs the engine's ApplyActions through a session's knob gate and tells
// the engine what came of each (an ApplyOutcome).
#pragma once

#include <string>
#include <vector>

#include "engine/engine.h"
#include "runtime/event_sink.h"
#include "runtime/platform.h"

namespace specact {

// What the knob layer's apply result says about an ApplyAction: the values
// in force of the knobs it applied or found at their value
// (ApplyResult::in_force), the knobs that yielded, and the errors of the
// failed, refused and unavailable ones. `unresolved` gets the requested knobs
// whose value now the result does not tell (not written: failed, rate
// limited, refused); yielded knobs are not among them (no longer managed).
engine::ApplyOutcome outcome_of(const engine::ApplyAction& action, const ApplyResult& result,
                                std::vector<std::string>* unresolved);

class ActionExecutor {
 public:
  explicit ActionExecutor(EventSink& events) : events_(events) {}

  // Applies `action` through `knobs`. The outcome comes from the apply result;
  // the machine is read only when some requested knob was not written, so
  // the engine is told its real value. An apply not fully done is recorded
  // (apply_result) and its errors are kept for errors().
  engine::ApplyOutcome apply(KnobGate& knobs, const engine::ApplyAction& action);
  // The errors of the applies since clear_errors(), "; "-joined (a pin or
  // revert reports them to its caller).
  const std::string& errors() const { return errors_; }
  void clear_errors() { errors_.clear(); }

 private:
  EventSink& events_;
  std::string errors_;
};

}  // namespace specact
