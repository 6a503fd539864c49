// Text rendering for specactctl: tables, durations, the p95 chart. Pure
// functions of JSON documents, so output is stable and testable.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace specactctl {

// "420 us", "4.97 ms", "1.20 s"; "-" for NaN/negative.
std::string format_us(double us);
// "1h 02m 03s", "4m 05s", "7s".
std::string format_uptime(double seconds);
std::string describe_target(const nlohmann::json& target);
// A knob value for people: enum names when the catalogue knows them.
std::string format_value(const nlohmann::json& knobs, const std::string& name, int64_t v);

std::string render_status(const nlohmann::json& status, const nlohmann::json& knobs);
std::string render_knobs(const nlohmann::json& knobs);
std::string render_history(const nlohmann::json& events);
// One line describing an engine event: who moved which knob, and why.
std::string describe_event(const nlohmann::json& event, const nlohmann::json& knobs);

// A chart of p95 over windows with a y axis in time units, `height` rows of
// at most `width` columns (the newest windows on the right). NaN = gap.
std::vector<std::string> render_chart(const std::vector<double>& p95_us, int width, int height);

// Left-aligned columns separated by two spaces; numeric columns right-aligned.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         const std::vector<bool>& right_align);

}  // namespace specactctl
