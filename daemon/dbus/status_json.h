// The JSON shapes the D-Bus API returns (GetStatus, ListKnobs, GetHistory).
// Field names are stable and documented in daemon/dbus/README.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/control.h"

namespace specact {

nlohmann::json status_to_json(const StatusSnapshot& s, const std::string& version);
nlohmann::json knobs_to_json(const std::vector<KnobInfo>& knobs);
// One event: its data with "seq" filled in from HistoryEvent::seq.
nlohmann::json event_to_json(const HistoryEvent& e);
// Events with seq > since, oldest first; only the newest `limit` when limit > 0.
nlohmann::json history_to_json(const std::vector<HistoryEvent>& events, uint64_t since,
                               uint32_t limit);
// The objective p95 of a window JSON: "objective_us", else command.p95_us,
// else service.p95_us; NaN when there is none.
double window_p95_us(const nlohmann::json& window);

}  // namespace specact
