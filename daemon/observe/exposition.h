// The Prometheus text exposition format (version 0.0.4) of a MetricsSnapshot.
// One pure function serves both the HTTP endpoint and the node_exporter
// textfile; the metric names are listed in daemon/observe/README.md.
#pragma once

#include <string>
#include <string_view>

#include "observe/metrics_snapshot.h"

namespace specact::observe {

// The Content-Type of the text format.
inline constexpr const char* kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

// Every family with its HELP and TYPE line, in a fixed order; samples sorted by
// label. A gauge without a value (no window yet) has no sample.
std::string render_exposition(const MetricsSnapshot& s);

// A label value with \, " and newline escaped as the format requires.
std::string escape_label_value(std::string_view v);
// Shortest text that reads back as the same double; NaN, +Inf, -Inf spelled
// as the format wants.
std::string format_sample_value(double v);

}  // namespace specact::observe
