#include "runtime/action_executor.h"

#include <algorithm>

namespace specact {

engine::ApplyOutcome outcome_of(const engine::ApplyAction& action, const ApplyResult& result,
                                std::vector<std::string>* unresolved) {
  engine::ApplyOutcome o;
  const Config in_force = result.in_force();
  for (const auto& [k, v] : in_force)
    if (action.config.count(k)) o.applied[k] = v;
  std::string errors;
  for (const auto& r : result.results) {
    if (r.status == KnobResult::Status::Yielded) o.yielded.push_back(r.knob);
    if (r.status == KnobResult::Status::RateLimited || r.status == KnobResult::Status::Rejected ||
        r.status == KnobResult::Status::Unavailable || r.status == KnobResult::Status::Failed)
      o.unwritten.push_back(r.knob);
    if (r.status == KnobResult::Status::RateLimited) o.retry = true;
    if (r.status == KnobResult::Status::Failed || r.status == KnobResult::Status::Rejected ||
        r.status == KnobResult::Status::Unavailable)
      errors += (errors.empty() ? "" : "; ") + r.knob + ": " + r.error;
  }
  o.error = errors;
  if (unresolved) {
    unresolved->clear();
    for (const auto& [k, v] : action.config)
      if (!in_force.count(k) && std::find(o.yielded.begin(), o.yielded.end(), k) == o.yielded.end())
        unresolved->push_back(k);
  }
  return o;
}

engine::ApplyOutcome ActionExecutor::apply(KnobGate& knobs, const engine::ApplyAction& action) {
  ApplyResult r = knobs.apply(action.config, action.who + ": " + action.why);
  std::vector<std::string> unresolved;
  engine::ApplyOutcome o = outcome_of(action, r, &unresolved);
  if (!unresolved.empty()) {
    // The engine assumed the requested values: tell it what is there instead.
    Config now = knobs.read_current();
    for (const auto& k : unresolved)
      if (auto it = now.find(k); it != now.end()) o.applied[k] = it->second;
  }
  if (!o.error.empty()) errors_ += (errors_.empty() ? "" : "; ") + o.error;
  if (!r.all_ok())
    events_.record(engine::EventKind::ApplyResult, {{"result", r.to_json()}},
                   "apply was not fully done: " + r.to_json().dump());
  return o;
}

}  // namespace specact
