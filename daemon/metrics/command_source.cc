// The command metric source: for workloads whose latency only the application
// knows (the paper used `sysbench cpu --percentile=95`).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "common/bounded_regex.h"
#include "common/clock.h"
#include "metrics/sampler.h"

namespace specact {

namespace {

// The patterns were checked when the config was read (run_config); a failure
// here is reported in the result, not thrown.
std::shared_ptr<const re2::RE2> metric_regex(const std::string& pattern, std::string* error) {
  return compile_bounded_regex(pattern, kMaxMetricRegexLength, error);
}

// The first capture group of `re` in `text`, as a number.
std::optional<double> first_number(const std::string& text, const re2::RE2& re) {
  std::string captured;
  if (re.NumberOfCapturingGroups() < 1 || !re2::RE2::PartialMatch(text, re, &captured))
    return std::nullopt;
  return std::stod(captured);
}

}  // namespace

CommandResult parse_command_output(const std::string& output, const CommandSourceOptions& opt) {
  CommandResult r;
  try {
    std::string error;
    auto p95_re = metric_regex(opt.p95_regex, &error);
    if (!p95_re) {
      r.error = "p95 regex: " + error;
      return r;
    }
    if (auto v = first_number(output, *p95_re))
      r.p95_us = *v * opt.p95_scale_to_us;
    else
      r.error = "no p95 found in the command's output (regex: " + opt.p95_regex + ")";
    if (!opt.throughput_regex.empty()) {
      auto tp_re = metric_regex(opt.throughput_regex, &error);
      if (tp_re) r.throughput = first_number(output, *tp_re);
    }
  } catch (const std::exception& e) {
    r.p95_us.reset();
    r.error = std::string("cannot parse the command's output: ") + e.what();
  }
  return r;
}

namespace {

// Starts `sh -c command` in its own process group with stdout+stderr on a
// pipe. Returns the child's pid and sets *read_fd, or -1 with error set.
pid_t spawn_shell(const std::string& command, int* read_fd, std::string& error) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + strerror(errno);
    return -1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    error = std::string("fork: ") + strerror(errno);
    close(pipefd[0]);
    close(pipefd[1]);
    return -1;
  }
  if (pid == 0) {
    setpgid(0, 0);
    dup2(pipefd[1], STDOUT_FILENO);
    dup2(pipefd[1], STDERR_FILENO);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);  // also here: no race with the child's own setpgid
  close(pipefd[1]);
  *read_fd = pipefd[0];
  return pid;
}

// Runs `sh -c command` in its own process group, collecting stdout+stderr.
// Returns false on timeout or stop (the group is killed).
bool run_collect(const std::string& command, int timeout_ms, const std::atomic<bool>* stop,
                 std::string& out, int& status, std::string& error) {
  int read_fd = -1;
  pid_t pid = spawn_shell(command, &read_fd, error);
  if (pid < 0) return false;
  SteadyClock clock;
  int64_t deadline = clock.now_ns() + int64_t{timeout_ms} * 1'000'000;
  bool ok = true;
  char buf[4096];
  for (;;) {
    if (stop && stop->load()) {
      error = "stopped";
      ok = false;
      break;
    }
    int64_t left_ms = (deadline - clock.now_ns()) / 1'000'000;
    if (left_ms <= 0) {
      error = "command timed out after " + std::to_string(timeout_ms) + " ms";
      ok = false;
      break;
    }
    pollfd pfd{read_fd, POLLIN, 0};
    int n = poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left_ms, 100)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    ssize_t got = read(read_fd, buf, sizeof buf);
    if (got <= 0) break;  // EOF: the command closed its output
    if (out.size() < (1 << 20)) out.append(buf, static_cast<size_t>(got));
  }
  close(read_fd);
  if (!ok) kill(-pid, SIGKILL);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return ok;
}

// Streaming: runs the command, calling on_line for each output line, until it
// exits or stop is set (then its process group is killed).
void run_streaming(const std::string& command, const std::atomic<bool>& stop,
                   const std::function<void(const std::string&)>& on_line) {
  std::string error;
  int read_fd = -1;
  pid_t pid = spawn_shell(command, &read_fd, error);
  if (pid < 0) return;
  std::string pending;
  char buf[4096];
  while (!stop.load()) {
    pollfd pfd{read_fd, POLLIN, 0};
    int n = poll(&pfd, 1, 100);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    ssize_t got = read(read_fd, buf, sizeof buf);
    if (got <= 0) break;
    pending.append(buf, static_cast<size_t>(got));
    for (size_t nl; (nl = pending.find_first_of("\r\n")) != std::string::npos;) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (!line.empty()) on_line(line);
    }
    if (pending.size() > (1 << 16)) pending.clear();  // no newline in 64 KiB: not our format
  }
  close(read_fd);
  kill(-pid, SIGKILL);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

CommandResult run_command_source(const CommandSourceOptions& opt) {
  std::string out, error;
  int status = 0;
  if (!run_collect(opt.command, opt.timeout_ms, nullptr, out, status, error))
    return CommandResult{std::nullopt, std::nullopt, error};
  CommandResult r = parse_command_output(out, opt);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    r.p95_us.reset();
    r.error = "command failed (" +
              (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                 : std::string("killed by a signal")) +
              ")";
  }
  return r;
}

struct CommandSource::Impl {
  CommandSourceOptions opt;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::optional<CommandResult> latest;
  std::thread worker;
};

CommandSource::CommandSource(CommandSourceOptions opt) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(opt);
  impl_->worker = std::thread([impl = impl_.get()] {
    if (impl->opt.stream) {
      std::string error;
      auto p95_re = metric_regex(impl->opt.p95_regex, &error);
      SteadyClock clock;
      while (!impl->stop.load()) {
        int64_t previous_report_ns = clock.now_ns();
        run_streaming(impl->opt.command, impl->stop, [&](const std::string& line) {
          if (!p95_re || !re2::RE2::PartialMatch(line, *p95_re)) return;
          CommandResult r = parse_command_output(line, impl->opt);
          // A periodic report covers the time since the previous one.
          r.covers_from_ns = std::exchange(previous_report_ns, clock.now_ns());
          std::lock_guard lock(impl->mu);
          impl->latest = std::move(r);
        });
        if (impl->stop.load()) break;
        {
          std::lock_guard lock(impl->mu);
          impl->latest = CommandResult{std::nullopt, std::nullopt, "streaming command exited"};
        }
        for (int i = 0; i < 10 && !impl->stop.load(); ++i)  // restart after 1 s
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      return;
    }
    SteadyClock clock;
    while (!impl->stop.load()) {
      std::string out, error;
      int status = 0;
      CommandResult r;
      const int64_t started_ns = clock.now_ns();
      if (run_collect(impl->opt.command, impl->opt.timeout_ms, &impl->stop, out, status, error)) {
        r = parse_command_output(out, impl->opt);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          r.p95_us.reset();
          r.error = "command failed with status " + std::to_string(status);
        }
      } else {
        r.error = error;
      }
      r.covers_from_ns = started_ns;
      if (impl->stop.load()) break;
      bool failed = !r.error.empty();
      {
        std::lock_guard lock(impl->mu);
        impl->latest = std::move(r);
      }
      // A failing command is retried once a second, not in a hot loop.
      for (int i = 0; failed && i < 10 && !impl->stop.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

CommandSource::~CommandSource() {
  impl_->stop = true;
  if (impl_->worker.joinable()) impl_->worker.join();
}

std::optional<CommandResult> CommandSource::take_latest() {
  std::lock_guard lock(impl_->mu);
  auto r = std::move(impl_->latest);
  impl_->latest.reset();
  return r;
}

}  // namespace specact
