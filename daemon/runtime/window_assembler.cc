#include "runtime/window_assembler.h"

namespace specact {

void add_command_result(Window& w, const std::optional<CommandResult>& result, Metric metric) {
  if (result) {
    w.command_p95_us = result->p95_us;
    w.command_throughput = result->throughput;
    w.command_error = result->error;
    w.command_since_ns = result->covers_from_ns;
  } else {
    w.command_error = "no command result completed in this window";
  }
  if (metric == Metric::CommandP95) w.low_confidence = !w.command_p95_us.has_value();
}

WindowAssembler::WindowAssembler(const TargetResolver& target,
                                 std::unique_ptr<LatencySampler> sampler,
                                 std::unique_ptr<CommandSource> command, Metric metric,
                                 int window_ms)
    : target_(target),
      sampler_(std::move(sampler)),
      command_(std::move(command)),
      metric_(metric),
      window_ms_(window_ms) {}

WindowAssembler::~WindowAssembler() = default;

size_t WindowAssembler::refresh_targets() {
  return sampler_ ? sampler_->refresh_targets() : target_.processes().size();
}

Window WindowAssembler::close_window(int64_t now_ns) {
  Window w;
  if (sampler_) {
    w = sampler_->close_window(now_ns);
  } else {
    w.index = ++window_index_;
    w.start_ns =
        window_start_ns_ >= 0 ? window_start_ns_ : now_ns - int64_t{window_ms_} * 1'000'000;
    w.end_ns = now_ns;
    window_start_ns_ = now_ns;
  }
  if (command_) add_command_result(w, command_->take_latest(), metric_);
  return w;
}

void WindowAssembler::discard_window(int64_t now_ns) {
  // The command source keeps its latest result: the next window takes it.
  if (sampler_) sampler_->restart_window(now_ns);
  window_start_ns_ = now_ns;
}

}  // namespace specact
