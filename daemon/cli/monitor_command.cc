// `specactd monitor`: measure the target's latency per window, change nothing.
#include <getopt.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "common/asio.h"
#include "common/bounded_regex.h"
#include "common/clock.h"
#include "common/log.h"
#include "metrics/sampler.h"
#include "target/target.h"

namespace specact {
namespace {

constexpr const char* kMonitorUsage = R"USAGE(Usage: specactd monitor TARGET [OPTIONS]

Measure the target's scheduling latency with eBPF, one line per window.
Nothing on the system is changed.

Target (exactly one):
  --pid PID[,PID...]   these processes, all their threads, including later ones
                       (repeatable)
  --cgroup PATH        every task in this cgroup v2 directory and below
                       (absolute, or relative to the cgroup2 mount)
  --unit NAME          every task of this systemd unit (its cgroup)
  --comm REGEX         every process whose comm matches REGEX (RE2 syntax)

Options:
  --window-ms MS       window length in milliseconds (default 1000, 50..60000)
  --windows N          exit after N windows (default: run until SIGINT/SIGTERM)
  --json               one JSON object per window per line
  --min-samples N      fewer samples than N mark a window low-confidence (default 20)
  --command CMD        also run CMD (via /bin/sh -c) back to back and report the
                       p95 parsed from its output, e.g.
                       'sysbench cpu --threads=16 --time=1 --percentile=95 run'
  --stream             CMD runs continuously; every output line matching the
                       p95 regex is a new result, e.g. 'sysbench cpu
                       --threads=16 --time=0 --report-interval=1
                       --percentile=95 run'
  --p95-regex RE       regex whose first group is the command's p95 (default
                       matches sysbench's "95th percentile:" and per-interval
                       "lat (ms,95%):" lines)
  --p95-scale F        multiply the parsed p95 by F to get microseconds
                       (default 1000: sysbench prints milliseconds)
  -h, --help           show this help

Metrics (per window, for target tasks only):
  runq     run-queue latency: runnable (woken or preempted) -> on CPU
  service  wakeup -> next voluntary block (the response time of request-driven
           threads)
  nvcsw / nivcsw  voluntary / involuntary context switches
  migrations      CPU migrations
  oncpu_ms        on-CPU time (a throughput proxy)

JSON fields: window, duration_ms, runq{p50_us,p95_us,p99_us,count},
service{p50_us,p95_us,p99_us,count}, nvcsw, nivcsw, migrations, oncpu_ms,
low_confidence, and command{p95_us,throughput,error} with --command.

Exit status: 0 after N windows, on SIGINT/SIGTERM, or when the target exits;
1 on a runtime error (no BTF, no permission, ...); 2 on a usage error.
Needs root (or CAP_BPF and CAP_PERFMON) and a kernel with BTF.
)USAGE";

bool parse_int(const char* s, long long lo, long long hi, long long& out) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s, &end, 10);
  if (errno || !end || *end || end == s || v < lo || v > hi) return false;
  out = v;
  return true;
}

std::string fmt_us(double us) {
  char buf[32];
  if (us >= 1000.0)
    std::snprintf(buf, sizeof buf, "%.2fms", us / 1000.0);
  else
    std::snprintf(buf, sizeof buf, "%.0fus", us);
  return buf;
}

std::string human_line(const Window& w) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "window %-4llu service p50 %-8s p95 %-8s p99 %-8s (n=%llu)  runq p95 %-8s "
                "(n=%llu)  vcsw %llu ivcsw %llu migr %llu oncpu %.1fms",
                static_cast<unsigned long long>(w.index), fmt_us(w.service.p50_us).c_str(),
                fmt_us(w.service.p95_us).c_str(), fmt_us(w.service.p99_us).c_str(),
                static_cast<unsigned long long>(w.service.count), fmt_us(w.runq.p95_us).c_str(),
                static_cast<unsigned long long>(w.runq.count),
                static_cast<unsigned long long>(w.nvcsw), static_cast<unsigned long long>(w.nivcsw),
                static_cast<unsigned long long>(w.migrations), w.oncpu_ms);
  std::string line = buf;
  if (w.command_p95_us) line += "  command p95 " + fmt_us(*w.command_p95_us);
  if (!w.command_error.empty()) line += "  command: " + w.command_error;
  if (w.low_confidence) line += "  [low confidence]";
  return line;
}

}  // namespace

int cmd_monitor(int argc, char** argv) {
  std::optional<TargetSpec> spec;
  int selectors = 0;
  long long window_ms = 1000, windows = 0, min_samples = 20;
  bool json = false;
  std::optional<CommandSourceOptions> command;
  CommandSourceOptions cmd_opt;
  enum {
    kPid = 1,
    kCgroup,
    kUnit,
    kComm,
    kWindowMs,
    kWindows,
    kJson,
    kMinSamples,
    kCommand,
    kP95Regex,
    kP95Scale,
    kStream
  };
  static option opts[] = {{"pid", 1, nullptr, kPid},
                          {"cgroup", 1, nullptr, kCgroup},
                          {"unit", 1, nullptr, kUnit},
                          {"comm", 1, nullptr, kComm},
                          {"window-ms", 1, nullptr, kWindowMs},
                          {"windows", 1, nullptr, kWindows},
                          {"json", 0, nullptr, kJson},
                          {"min-samples", 1, nullptr, kMinSamples},
                          {"command", 1, nullptr, kCommand},
                          {"p95-regex", 1, nullptr, kP95Regex},
                          {"p95-scale", 1, nullptr, kP95Scale},
                          {"stream", 0, nullptr, kStream},
                          {"help", 0, nullptr, 'h'},
                          {nullptr, 0, nullptr, 0}};
  auto usage_error = [](const std::string& msg) {
    std::fprintf(stderr, "specactd monitor: %s (see specactd monitor --help)\n", msg.c_str());
    return 2;
  };
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "h", opts, nullptr)) != -1;) {
    switch (c) {
      case kPid: {
        if (!spec || spec->kind != TargetSpec::Kind::Pid) {
          spec = TargetSpec{};
          ++selectors;
        }
        std::string list = optarg;
        size_t pos = 0;
        while (pos <= list.size()) {
          size_t comma = list.find(',', pos);
          std::string item =
              list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
          long long pid;
          if (!parse_int(item.c_str(), 1, 0x3fffffff, pid))
            return usage_error("invalid pid '" + item + "'");
          spec->pids.push_back(static_cast<pid_t>(pid));
          if (comma == std::string::npos) break;
          pos = comma + 1;
        }
        break;
      }
      case kCgroup:
        spec = TargetSpec{TargetSpec::Kind::Cgroup, {}, optarg, {}, {}}, ++selectors;
        break;
      case kUnit:
        spec = TargetSpec{TargetSpec::Kind::Unit, {}, {}, optarg, {}}, ++selectors;
        break;
      case kComm:
        spec = TargetSpec{TargetSpec::Kind::Comm, {}, {}, {}, optarg}, ++selectors;
        break;
      case kWindowMs:
        if (!parse_int(optarg, 50, 60000, window_ms))
          return usage_error("--window-ms must be an integer in 50..60000");
        break;
      case kWindows:
        if (!parse_int(optarg, 1, 1LL << 40, windows))
          return usage_error("--windows must be a positive integer");
        break;
      case kJson:
        json = true;
        break;
      case kMinSamples:
        if (!parse_int(optarg, 1, 1 << 30, min_samples))
          return usage_error("--min-samples must be a positive integer");
        break;
      case kCommand:
        cmd_opt.command = optarg;
        command = cmd_opt;
        break;
      case kP95Regex:
        cmd_opt.p95_regex = optarg;
        break;
      case kStream:
        cmd_opt.stream = true;
        break;
      case kP95Scale: {
        char* end = nullptr;
        double f = std::strtod(optarg, &end);
        if (!end || *end || !(f > 0)) return usage_error("--p95-scale must be a positive number");
        cmd_opt.p95_scale_to_us = f;
        break;
      }
      case 'h':
        std::fputs(kMonitorUsage, stdout);
        return 0;
      default:
        return usage_error("invalid option");
    }
  }
  if (optind < argc) return usage_error(std::string("unexpected argument '") + argv[optind] + "'");
  if (selectors != 1)
    return usage_error("give exactly one target: --pid, --cgroup, --unit or --comm");
  if (command) {
    command->p95_regex = cmd_opt.p95_regex;
    command->p95_scale_to_us = cmd_opt.p95_scale_to_us;
    command->stream = cmd_opt.stream;
    std::string error;
    auto check = compile_bounded_regex(command->p95_regex, kMaxMetricRegexLength, &error);
    if (!check) return usage_error("--p95-regex refused: " + error);
    if (check->NumberOfCapturingGroups() < 1)
      return usage_error("--p95-regex needs one capture group around the number");
  }

  try {
    TargetResolver target(*spec);
    target.validate();
    LatencySampler sampler(target);
    sampler.set_min_samples(static_cast<uint64_t>(min_samples));
    std::unique_ptr<CommandSource> command_source;
    if (command) command_source = std::make_unique<CommandSource>(*command);

    boost::asio::io_context io;
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    boost::asio::steady_timer timer(io);
    SteadyClock clock;
    int exit_code = 0;
    long long printed = 0;
    auto deadline = std::chrono::steady_clock::now();
    sampler.close_window(clock.now_ns());  // opens window 1

    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (!ec) io.stop();
    });
    std::function<void(const boost::system::error_code&)> tick =
        [&](const boost::system::error_code& ec) {
          if (ec) return;
          bool gone = sampler.refresh_targets() == 0 && spec->kind == TargetSpec::Kind::Pid;
          Window w = sampler.close_window(clock.now_ns());
          if (command_source)
            if (auto r = command_source->take_latest()) {
              w.command_p95_us = r->p95_us;
              w.command_throughput = r->throughput;
              w.command_error = r->error;
            }
          if (json)
            std::printf("%s\n", window_to_json_line(w).c_str());
          else
            std::printf("%s\n", human_line(w).c_str());
          std::fflush(stdout);
          ++printed;
          if (gone) {
            log::info("target " + spec->describe() + " exited; stopping");
            io.stop();
            return;
          }
          if (windows && printed >= windows) {
            io.stop();
            return;
          }
          deadline += std::chrono::milliseconds(window_ms);
          timer.expires_at(deadline);
          timer.async_wait(tick);
        };
    deadline += std::chrono::milliseconds(window_ms);
    timer.expires_at(deadline);
    timer.async_wait(tick);
    io.run();
    return exit_code;
  } catch (const TargetError& e) {
    std::fprintf(stderr, "specactd monitor: %s\n", e.what());
    return 1;
  } catch (const SamplerError& e) {
    std::fprintf(stderr, "specactd monitor: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "specactd monitor: %s\n", e.what());
    return 1;
  }
}

}  // namespace specact
