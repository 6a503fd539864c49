#include "common/window.h"

#include <nlohmann/json.hpp>

namespace specact {

LatencySummary LatencySummary::from(const Histogram& h) {
  LatencySummary s;
  s.count = h.count();
  s.p50_us = h.percentile_ns(0.50) / 1e3;
  s.p95_us = h.percentile_ns(0.95) / 1e3;
  s.p99_us = h.percentile_ns(0.99) / 1e3;
  return s;
}

std::optional<Metric> metric_from_string(const std::string& s) {
  if (s == "service_p95") return Metric::ServiceP95;
  if (s == "runq_p95") return Metric::RunqP95;
  if (s == "command") return Metric::CommandP95;
  return std::nullopt;
}

std::string to_string(Metric m) {
  switch (m) {
    case Metric::ServiceP95:
      return "service_p95";
    case Metric::RunqP95:
      return "runq_p95";
    case Metric::CommandP95:
      return "command";
  }
  return "?";
}

std::optional<double> objective_us(const Window& w, Metric m) {
  switch (m) {
    case Metric::ServiceP95:
      if (w.service.count == 0) return std::nullopt;
      return w.service.p95_us;
    case Metric::RunqP95:
      if (w.runq.count == 0) return std::nullopt;
      return w.runq.p95_us;
    case Metric::CommandP95:
      return w.command_p95_us;
  }
  return std::nullopt;
}

std::optional<double> throughput_of(const Window& w, Metric m) {
  if (m == Metric::CommandP95) return w.command_throughput;
  double ms = w.duration_ms();
  if (ms <= 0) return std::nullopt;
  return w.oncpu_ms * 1000.0 / ms;
}

template <typename Json>
static Json summary_json(const LatencySummary& s) {
  return {{"p50_us", s.p50_us}, {"p95_us", s.p95_us}, {"p99_us", s.p99_us}, {"count", s.count}};
}

template <typename Json>
static Json window_json(const Window& w) {
  Json j = {{"window", w.index},
            {"duration_ms", w.duration_ms()},
            {"runq", summary_json<Json>(w.runq)},
            {"service", summary_json<Json>(w.service)},
            {"nvcsw", w.nvcsw},
            {"nivcsw", w.nivcsw},
            {"migrations", w.migrations},
            {"oncpu_ms", w.oncpu_ms},
            {"low_confidence", w.low_confidence}};
  if (w.command_p95_us) j["command"]["p95_us"] = *w.command_p95_us;
  if (w.command_throughput) j["command"]["throughput"] = *w.command_throughput;
  if (!w.command_error.empty()) j["command"]["error"] = w.command_error;
  return j;
}

nlohmann::json window_to_json(const Window& w) { return window_json<nlohmann::json>(w); }

std::string window_to_json_line(const Window& w) {
  return window_json<nlohmann::ordered_json>(w).dump();
}

}  // namespace specact
