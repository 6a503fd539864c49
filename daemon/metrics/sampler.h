// The metrics layer: the eBPF latency sampler and the command metric source.
// Produces one Window per call; all kernel access for measuring lives here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/window.h"
#include "target/target.h"

namespace specact {

class SamplerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Loads and attaches the BPF sampler (bpf/sampler.bpf.c) for one target.
// Detaches everything in the destructor.
class LatencySampler {
 public:
  // Throws SamplerError with one clear sentence (no BTF, no permission, ...).
  explicit LatencySampler(const TargetResolver& target);
  ~LatencySampler();
  LatencySampler(const LatencySampler&) = delete;
  LatencySampler& operator=(const LatencySampler&) = delete;

  // Re-resolves the target's processes and updates the BPF target set.
  // Returns how many processes are targeted now.
  size_t refresh_targets();
  // Entries in the BPF target map (for tests: forked children that exited
  // must not accumulate over a long run).
  size_t target_map_entries() const;
  // Closes the current window: diffs the BPF counters against the last call.
  // The first call after construction starts window 1 and returns it empty.
  Window close_window(int64_t now_ns);
  // Drops the open window: the next one starts now and keeps the next index.
  void restart_window(int64_t now_ns);
  // Minimum samples for a window's p95 to count as stable (default 20).
  void set_min_samples(uint64_t n) { min_samples_ = n; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  const TargetResolver& target_;
  uint64_t min_samples_ = 20;
};

// Runs a shell command each window and parses its p95 (and optionally a
// throughput figure) from its output, e.g. sysbench's "95th percentile: 1.23" (ms).
// Metric patterns are RE2 (linear-time matching on the command's output);
// a line-sized pattern needs far less than this.
inline constexpr size_t kMaxMetricRegexLength = 1024;

struct CommandSourceOptions {
  std::string command;  // run with /bin/sh -c
  // Matches sysbench's final "95th percentile: 1.23" and its per-interval
  // "lat (ms,95%): 1.23" lines; the first group is the p95.
  std::string p95_regex = R"((?:95th percentile:\s+|lat \(ms,95%\):\s*)([0-9.]+))";
  double p95_scale_to_us = 1000.0;  // sysbench reports ms
  std::string throughput_regex = R"((?:events per second:\s+|eps:\s*)([0-9.]+))";
  int timeout_ms = 30000;  // per run (ignored when streaming)
  // Streaming: run the command once (restarted if it exits) and take every
  // output line matching p95_regex as a new result, e.g.
  // `sysbench cpu --time=0 --report-interval=1 --percentile=95 run`.
  bool stream = false;
};

struct CommandResult {
  std::optional<double> p95_us;
  std::optional<double> throughput;
  std::string error;  // empty on success
  // CLOCK_MONOTONIC ns when the measured interval began: the run's start, or a
  // stream's previous report (0: unknown). A report measures the time before
  // it, which can begin before the window that receives it.
  int64_t covers_from_ns = 0;
};

// Parses one run's output (exposed for unit tests).
CommandResult parse_command_output(const std::string& output, const CommandSourceOptions& opt);
// Runs the command to completion (bounded by timeout_ms) and parses it. Blocking:
// callers run it off the event loop.
CommandResult run_command_source(const CommandSourceOptions& opt);

// Runs the command back to back on a worker thread; each window takes the
// latest completed result. The destructor stops the worker and kills a
// running command (its whole process group).
class CommandSource {
 public:
  explicit CommandSource(CommandSourceOptions opt);
  ~CommandSource();
  CommandSource(const CommandSource&) = delete;
  CommandSource& operator=(const CommandSource&) = delete;
  // The newest result completed since the last call, if any.
  std::optional<CommandResult> take_latest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specact
