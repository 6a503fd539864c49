#include "engine/event.h"

#include <array>
#include <utility>

namespace specact::engine {

namespace {

// One row per kind, in enum order: the history "type" strings.
constexpr std::array<std::pair<EventKind, std::string_view>, 42> kKindNames = {{
    {EventKind::Window, "window"},
    {EventKind::Applied, "applied"},
    {EventKind::Confirmed, "confirmed"},
    {EventKind::Overridden, "overridden"},
    {EventKind::Reverted, "reverted"},
    {EventKind::Yielded, "yielded"},
    {EventKind::AgentCalled, "agent_called"},
    {EventKind::AgentError, "agent_error"},
    {EventKind::AgentWaiting, "agent_waiting"},
    {EventKind::BudgetExhausted, "budget_exhausted"},
    {EventKind::Budgets, "budgets"},
    {EventKind::Converged, "converged"},
    {EventKind::ReEngaged, "re_engaged"},
    {EventKind::Recommended, "recommended"},
    {EventKind::TrialSkipped, "trial_skipped"},
    {EventKind::ApplyError, "apply_error"},
    {EventKind::Mode, "mode"},
    {EventKind::Paused, "paused"},
    {EventKind::Resumed, "resumed"},
    {EventKind::Pinned, "pinned"},
    {EventKind::Unpinned, "unpinned"},
    {EventKind::Started, "started"},
    {EventKind::SessionStarted, "session_started"},
    {EventKind::WaitingForTasks, "waiting_for_tasks"},
    {EventKind::TargetAppeared, "target_appeared"},
    {EventKind::TargetEmpty, "target_empty"},
    {EventKind::TargetReturned, "target_returned"},
    {EventKind::TargetExited, "target_exited"},
    {EventKind::Recovered, "recovered"},
    {EventKind::AgentReply, "agent_reply"},
    {EventKind::YieldDetail, "yield_detail"},
    {EventKind::ApplyResult, "apply_result"},
    {EventKind::Status, "status"},
    {EventKind::Restored, "restored"},
    {EventKind::LeftInPlace, "left_in_place"},
    {EventKind::Stopped, "stopped"},
    {EventKind::SettingsRestored, "settings_restored"},
    {EventKind::SettingsReset, "settings_reset"},
    {EventKind::SetAside, "set_aside"},
    {EventKind::WarmStart, "warm_start"},
    {EventKind::Learned, "learned"},
    {EventKind::Unlisted, "unlisted"},
}};

constexpr bool in_enum_order() {
  for (size_t i = 0; i < kKindNames.size(); ++i)
    if (static_cast<size_t>(kKindNames[i].first) != i) return false;
  return true;
}
static_assert(in_enum_order() && kKindNames.back().first == EventKind::Unlisted,
              "kKindNames lists every EventKind once, in enum order");

}  // namespace

std::string_view to_string(EventKind k) { return kKindNames[static_cast<size_t>(k)].second; }

std::optional<EventKind> event_kind_from_string(std::string_view s) {
  for (const auto& [kind, name] : kKindNames)
    if (name == s && kind != EventKind::Unlisted) return kind;
  return std::nullopt;
}

EventKind Event::kind() const { return event_kind_from_string(type).value_or(EventKind::Unlisted); }

std::string_view WindowVerdict::phase() const {
  return straddled ? "straddled" : provisional ? "provisional" : "confirmed";
}

WindowVerdict WindowVerdict::of(const Event& e) {
  WindowVerdict v;
  v.objective_us = e.fields.value("objective_us", nlohmann::json(nullptr));
  v.config = e.fields.value("config", nlohmann::json::object());
  v.straddled = e.fields.value("straddled", false);
  v.provisional = e.fields.value("provisional", false);
  return v;
}

}  // namespace specact::engine
