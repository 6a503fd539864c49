// What apply() reports: per-knob results, JSON, and what is in force.
#include <algorithm>

#include "knobs/knob_manager.h"

namespace specact {

std::string to_string(KnobResult::Status s) {
  switch (s) {
    case KnobResult::Status::Applied:
      return "applied";
    case KnobResult::Status::NoChange:
      return "no-change";
    case KnobResult::Status::RateLimited:
      return "rate-limited";
    case KnobResult::Status::Rejected:
      return "rejected";
    case KnobResult::Status::Unavailable:
      return "unavailable";
    case KnobResult::Status::Yielded:
      return "yielded";
    case KnobResult::Status::Failed:
      return "failed";
  }
  return "?";
}

bool ApplyResult::all_ok() const {
  return std::all_of(results.begin(), results.end(), [](const KnobResult& r) {
    return r.status == KnobResult::Status::Applied || r.status == KnobResult::Status::NoChange;
  });
}

Config ApplyResult::in_force() const {
  Config c;
  for (const auto& r : results)
    if (r.read_back && r.status != KnobResult::Status::Yielded) c[r.knob] = *r.read_back;
  return c;
}

nlohmann::json ApplyResult::to_json() const {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : results) {
    nlohmann::json j = {{"knob", r.knob},
                        {"status", to_string(r.status)},
                        {"requested", r.requested},
                        {"clamped", r.clamped}};
    j["written"] = r.written ? nlohmann::json(*r.written) : nlohmann::json(nullptr);
    j["read_back"] = r.read_back ? nlohmann::json(*r.read_back) : nlohmann::json(nullptr);
    if (!r.error.empty()) j["error"] = r.error;
    if (r.tasks_written || r.tasks_gone || r.tasks_skipped)
      j["tasks"] = {
          {"written", r.tasks_written}, {"gone", r.tasks_gone}, {"skipped", r.tasks_skipped}};
    a.push_back(j);
  }
  return {{"ok", all_ok()}, {"results", a}};
}

}  // namespace specact
