// A simulated kernel for tests and benchmarks: a function from a knob
// configuration to a latency distribution, sampled with noise into Windows
// that look like the ones the BPF sampler produces (populated histograms,
// counters, on-CPU time). The slice -> p95 curves are fitted to what the real
// workloads measured on a 2-core kernel 6.18 machine (see sim_kernel.cc).
//
// CMake: link `specact_sim`. The target is defined by tests/sim/CMakeLists.txt;
// a suite that needs it and may be configured before tests/agents does
//   if(NOT TARGET specact_sim)
//     add_subdirectory(${CMAKE_CURRENT_SOURCE_DIR}/../sim ${CMAKE_BINARY_DIR}/tests/sim)
//   endif()
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/knob_info.h"
#include "common/window.h"

namespace specact::sim {

// Knob names the simulated kernel understands. Keys missing from a Config take
// the workload's defaults; unknown keys are ignored (they have no effect).
inline constexpr const char* kSlice = "task.slice_us";
inline constexpr const char* kNice = "task.nice";
inline constexpr const char* kAutogroup = "sysctl.kernel.sched_autogroup_enabled";
inline constexpr const char* kTimerMigration = "sysctl.kernel.timer_migration";
inline constexpr const char* kPolicy = "task.policy";  // 0 other, 1 batch, 2 idle
inline constexpr const char* kRrTimeslice = "sysctl.kernel.sched_rr_timeslice_ms";

struct SimWorkload {
  std::string name;
  // True service-latency p95 (us) of the target under a config. Service latency
  // of one request = run-queue wait + work_us of CPU.
  std::function<double(const Config&)> p95_us;
  // Target on-CPU milliseconds per second of wall time (throughput proxy).
  std::function<double(const Config&)> oncpu_ms_per_s;
  double work_us = 300;          // CPU time of one request (service = runq + work)
  double requests_per_s = 1000;  // samples per second of window
  double spread = 0.6;           // lognormal sigma of the run-queue wait within a window
  double window_noise = 0.04;    // sigma of a per-window multiplicative drift of the latency
  // Two modes: each window is this much slower with probability 1/2 (a target
  // whose windows land either side of another task's slice); 1: one mode.
  double bimodal_ratio = 1;
  // The share of windows in the slow mode under a config (unset: 1/2).
  std::function<double(const Config&)> slow_share;
  uint64_t min_samples = 50;    // fewer samples in a window -> low_confidence
  bool command_metric = false;  // also fill Window::command_p95_us / command_throughput
  bool cpu_bound = false;       // threads never block: (almost) no voluntary switches
  // The command metric's own quantisation (relative step of its histogram;
  // 0: exact), as a command that prints a p95 from coarse buckets has.
  double command_quantum = 0;
  double quantise(double value_us) const;
  Config defaults;  // the machine's settings before any tuning

  // A 300 us periodic task (1 kHz) against 4 CPU hogs on 2 cores: only a slice
  // just above the burst helps (340..560 us -> ~340 us; 100 us -> 2.5 ms,
  // default 2800 -> ~3.9 ms). nice / autogroup / timer_migration scale the wait
  // above the 300 us of work.
  static SimWorkload periodic_vs_hogs();
  // The "mixed" workload of the benchmarks: periodic_vs_hogs (the bundled demo).
  static SimWorkload mixed() { return periodic_vs_hogs(); }
  // sysbench cpu --threads=16 on 2 cores: large slices help.
  // default (2800) -> 28.7 ms, 100000 us -> 0.89 ms. Fills the command metric too.
  static SimWorkload sysbench_like();
  // Shaped on the real-workload suite's measured grids (bench/results/suite.md):
  // sysbench cpu --threads=16: a flat plateau (~60 ms) from 100 us to 20 ms
  // slices and a cliff to ~0.65 ms above; nice and policy do nothing (every
  // competing thread is the target); a quantised command metric.
  static SimWorkload sysbench_plateau();
  // PostgreSQL backends under pgbench beside CPU hogs: short slices help a
  // little, long ones hurt a lot; a lower nice or batch hurts (the client
  // waits behind the server).
  static SimWorkload pgbench_like();
  // A 1 kHz timer thread (cyclictest) beside hogs: no slice matters; batch is
  // a disaster.
  static SimWorkload cyclictest_like();
  // memcached worker threads beside hogs and their client: batch and long
  // slices help, most else is noise.
  static SimWorkload memcached_like();
  // The bundled demo as the package e2e runs it (specact-workload asking for
  // a 10 ms slice, everything on one CPU): at a slice well above its burst
  // each window lands in a fast phase (~0.35 ms) or, more often, a slow one
  // (~15x); a slice just above the burst makes every window fast. A single
  // window at a good slice looks like the baseline's fast windows.
  static SimWorkload periodic_phase_locked();
  // The bundled demo as bench/suite runs it (4 hogs, default slice): a lower
  // nice alone makes it fast at any slice; a slice just above the burst helps
  // too but lands about one window in three in a slower phase.
  static SimWorkload periodic_nice_dominant();
  // Every workload above and the two older ones, for suites that sweep them.
  static std::vector<SimWorkload> all();
};

// Piecewise interpolation of y over log(x) through sorted points (x, y), with
// log-scale y; flat outside the range.
double interpolate_log(const std::vector<std::pair<double, double>>& points, double x);

// Knob catalogue matching the simulated kernel (all available):
// task.slice_us (log, 100..100000, default 2800), task.nice (linear, -20..19,
// default 0), sysctl.kernel.sched_autogroup_enabled (0..1, default 1),
// sysctl.kernel.timer_migration (0..1, default 1).
std::vector<KnobInfo> catalogue();
// The catalogue a default config has on the development machines: the four
// above plus task.policy (other/batch/idle) and the conditional
// sysctl.kernel.sched_rr_timeslice_ms (no effect on these workloads). Current
// values follow the workload's defaults.
std::vector<KnobInfo> full_catalogue(const SimWorkload& w);

class SimKernel {
 public:
  SimKernel(SimWorkload workload, uint64_t seed);

  // Simulates one window of window_ns under config (deterministic given the
  // seed and the call sequence). Window::index counts calls from 1.
  Window measure(const Config& config, int64_t start_ns, int64_t window_ns);
  // A window begins at start_ns: the measures from here on share one noise
  // draw until the next begin_window (without it, each second has its own).
  void begin_window(int64_t start_ns) { window_start_ns_ = start_ns; }
  // Noise-free truths of the model (for asserting on results). A bimodal
  // workload's pooled p95 lies in its slow mode once more than 5 % of the
  // windows are slow.
  double true_p95_us(const Config& config) const;
  double true_oncpu_ms_per_s(const Config& config) const;
  // Drift: a different workload from now on (same RNG stream).
  void set_workload(SimWorkload workload);
  const SimWorkload& workload() const { return workload_; }
  // The workload's defaults overlaid with config.
  Config resolve(const Config& config) const;

 private:
  double slow_share(const Config& resolved) const;

  SimWorkload workload_;
  std::mt19937_64 rng_;
  uint64_t windows_ = 0;
  int64_t window_start_ns_ = -1;  // begin_window()'s; -1: windows are the seconds
  int64_t noise_key_ = -1;        // the window (or second) whose noise draw is noise_
  double noise_ = 0;
};

// Exhaustive search over the true model: every combination of `points_per_knob`
// values per knob (log-spaced for log knobs, all values for small domains).
// Returns the best config and its true p95.
std::pair<Config, double> grid_search(const SimKernel& kernel, const std::vector<KnobInfo>& knobs,
                                      int points_per_knob = 13);

}  // namespace specact::sim
