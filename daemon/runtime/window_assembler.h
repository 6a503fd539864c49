// The real metric source: one window of the target from the eBPF sampler
// (when loaded) and the command metric source (when configured).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "common/window.h"
#include "metrics/sampler.h"
#include "runtime/platform.h"
#include "target/target.h"

namespace specact {

// Puts a command run's figures into the window (or why there is none). With
// the command metric the command's p95 is the evidence: a CPU-bound target
// that rarely blocks has few eBPF samples, which must not matter, so the
// window is low-confidence exactly when the command gave no p95.
void add_command_result(Window& w, const std::optional<CommandResult>& result, Metric metric);

class WindowAssembler : public MetricSource {
 public:
  // `sampler` may be null (the command metric without BPF), `command` null
  // without the command metric. `target` must outlive the assembler.
  WindowAssembler(const TargetResolver& target, std::unique_ptr<LatencySampler> sampler,
                  std::unique_ptr<CommandSource> command, Metric metric, int window_ms);
  ~WindowAssembler() override;

  size_t refresh_targets() override;
  Window close_window(int64_t now_ns) override;
  void discard_window(int64_t now_ns) override;

 private:
  const TargetResolver& target_;
  std::unique_ptr<LatencySampler> sampler_;
  std::unique_ptr<CommandSource> command_;
  Metric metric_;
  int window_ms_;
  uint64_t window_index_ = 0;     // without the sampler, which counts its own
  int64_t window_start_ns_ = -1;  // without the sampler: the last close or discard
};

}  // namespace specact
