// specact-workload: latency-sensitive periodic threads competing with CPU hogs.
// Each periodic thread wakes at absolute release times, burns a fixed amount of
// its own CPU time, then sleeps; it records the wakeup latency (release ->
// running) and the completion latency (release -> work done) and reports exact
// percentiles, so a sampler can be checked against the workload's own view.
#include <getopt.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "knobs/task_sched.h"

namespace {

std::atomic<bool> g_stop{false};

int64_t now_ns(clockid_t c = CLOCK_MONOTONIC) {
  timespec ts{};
  clock_gettime(c, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Samples {
  std::mutex mu;
  std::vector<int64_t> completion_ns, wakeup_ns;
};

// Asks for an EEVDF slice of `us` for the calling thread, as an application
// that sets its own would (policy and nice kept). Linux >= 6.12 takes
// sched_runtime as a fair task's slice; older kernels ignore it, which the
// read-back reports. 0, or the errno of the failed call (EINVAL: ignored).
int set_own_slice_us(int64_t us) {
  const pid_t tid = gettid();
  specact::knobs::TaskAttr cur, back;
  if (int err = specact::knobs::get_task_attr(tid, &cur)) return err;
  specact::knobs::TaskAttr want = cur;
  want.runtime_ns = static_cast<uint64_t>(us) * 1000;
  if (int err = specact::knobs::set_task_attr(tid, want, cur)) return err;
  if (int err = specact::knobs::get_task_attr(tid, &back)) return err;
  return back.runtime_ns == want.runtime_ns ? 0 : EINVAL;
}

void burn_cpu_ns(int64_t ns) {
  int64_t end = now_ns(CLOCK_THREAD_CPUTIME_ID) + ns;
  volatile uint64_t x = 0;
  while (now_ns(CLOCK_THREAD_CPUTIME_ID) < end)
    for (int i = 0; i < 200; ++i) x = x * 6364136223846793005ull + 1;
}

void periodic_thread(int64_t period_ns, int64_t work_ns, int64_t slice_us, Samples* out) {
  prctl(PR_SET_TIMERSLACK, 1);  // no timer slack: wakeups happen at the release time
  prctl(PR_SET_NAME, "sa-periodic");
  if (slice_us > 0) set_own_slice_us(slice_us);  // the main thread checked that it takes
  int64_t release = now_ns() + period_ns;
  std::vector<int64_t> comp, wake;
  while (!g_stop.load(std::memory_order_relaxed)) {
    timespec ts{static_cast<time_t>(release / 1'000'000'000),
                static_cast<long>(release % 1'000'000'000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
    int64_t woke = now_ns();
    burn_cpu_ns(work_ns);
    int64_t done = now_ns();
    wake.push_back(woke - release);
    comp.push_back(done - release);
    if (wake.size() >= 64) {
      std::lock_guard lock(out->mu);
      out->wakeup_ns.insert(out->wakeup_ns.end(), wake.begin(), wake.end());
      out->completion_ns.insert(out->completion_ns.end(), comp.begin(), comp.end());
      wake.clear();
      comp.clear();
    }
    release += period_ns;
    if (done > release) release = done + period_ns / 4;  // overran: do not pile up
  }
  std::lock_guard lock(out->mu);
  out->wakeup_ns.insert(out->wakeup_ns.end(), wake.begin(), wake.end());
  out->completion_ns.insert(out->completion_ns.end(), comp.begin(), comp.end());
}

double pct_us(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return static_cast<double>(v[std::max<size_t>(rank, 1) - 1]) / 1e3;
}

void print_summary(const char* kind, double t, std::vector<int64_t> comp,
                   std::vector<int64_t> wake) {
  std::printf(
      "{\"%s\":true,\"t\":%.3f,\"completion\":{\"p50_us\":%.1f,\"p95_us\":%.1f,\"p99_us\":%.1f,"
      "\"count\":%zu},\"wakeup\":{\"p50_us\":%.1f,\"p95_us\":%.1f,\"p99_us\":%.1f,\"count\":%zu}}"
      "\n",
      kind, t, pct_us(comp, .5), pct_us(comp, .95), pct_us(comp, .99), comp.size(),
      pct_us(wake, .5), pct_us(wake, .95), pct_us(wake, .99), wake.size());
  std::fflush(stdout);
}

// Whole-string number, or exit 2 naming the option.
double number_or_exit(const char* opt, const char* text) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text, &end);
  if (errno || end == text || *end) {
    std::fprintf(stderr, "specact-workload: --%s: '%s' is not a number\n", opt, text);
    std::exit(2);
  }
  return v;
}

void usage(FILE* f) {
  std::fputs(
      "Usage: specact-workload [OPTIONS]\n"
      "Periodic latency-sensitive threads against CPU hogs; reports its own latencies.\n\n"
      "  --threads N        periodic threads (default 1)\n"
      "  --period-us US     release period (default 2000)\n"
      "  --work-us US       CPU time burnt per release (default 300)\n"
      "  --hogs N           CPU hog processes, children of this one (default 4)\n"
      "  --slice-us US      every thread and hog asks for this EEVDF slice\n"
      "                     (sched_setattr; Linux >= 6.12; default: the kernel's)\n"
      "  --duration-s S     run time, 0 = until SIGTERM/SIGINT (default 0)\n"
      "  --report-ms MS     print a JSON line of the last interval's latencies every MS\n"
      "                     (default 0 = only the final summary)\n"
      "  --ready-fd FD      write one byte to FD once running (for tests)\n",
      f);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, hogs = 4, ready_fd = -1;
  int64_t period_us = 2000, work_us = 300, slice_us = 0;
  double duration_s = 0, report_ms = 0;
  static option opts[] = {{"threads", 1, nullptr, 't'},    {"period-us", 1, nullptr, 'p'},
                          {"work-us", 1, nullptr, 'w'},    {"hogs", 1, nullptr, 'g'},
                          {"duration-s", 1, nullptr, 'd'}, {"report-ms", 1, nullptr, 'r'},
                          {"ready-fd", 1, nullptr, 'f'},   {"slice-us", 1, nullptr, 's'},
                          {"help", 0, nullptr, 'h'},       {nullptr, 0, nullptr, 0}};
  for (int c; (c = getopt_long(argc, argv, "h", opts, nullptr)) != -1;) {
    switch (c) {
      case 't':
        threads = static_cast<int>(number_or_exit("threads", optarg));
        break;
      case 'p':
        period_us = static_cast<int64_t>(number_or_exit("period-us", optarg));
        break;
      case 'w':
        work_us = static_cast<int64_t>(number_or_exit("work-us", optarg));
        break;
      case 'g':
        hogs = static_cast<int>(number_or_exit("hogs", optarg));
        break;
      case 'd':
        duration_s = number_or_exit("duration-s", optarg);
        break;
      case 'r':
        report_ms = number_or_exit("report-ms", optarg);
        break;
      case 'f':
        ready_fd = static_cast<int>(number_or_exit("ready-fd", optarg));
        break;
      case 's':
        slice_us = static_cast<int64_t>(number_or_exit("slice-us", optarg));
        break;
      case 'h':
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (threads < 1 || threads > 64 || hogs < 0 || hogs > 64 || period_us < 100 || work_us < 1 ||
      work_us >= period_us || duration_s < 0 || report_ms < 0 || slice_us < 0) {
    std::fprintf(stderr, "specact-workload: invalid options (see --help)\n");
    return 2;
  }
  if (int err = slice_us > 0 ? set_own_slice_us(slice_us) : 0) {
    std::fprintf(stderr,
                 "specact-workload: --slice-us %lld: the kernel did not take it (%s; per-task "
                 "slices need Linux >= 6.12, within 100..100000 us)\n",
                 static_cast<long long>(slice_us), std::strerror(err));
    return 1;
  }

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  std::vector<pid_t> hog_pids;
  pid_t parent = getpid();
  for (int i = 0; i < hogs; ++i) {
    pid_t p = fork();
    if (p == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the workload
      if (getppid() != parent) _exit(0);
      prctl(PR_SET_NAME, "sa-hog");
      if (slice_us > 0) set_own_slice_us(slice_us);
      volatile uint64_t x = 0;
      for (;;) x = x * 2862933555777941757ull + 3037000493ull;
    }
    if (p > 0) hog_pids.push_back(p);
  }

  Samples samples;
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i)
    workers.emplace_back(periodic_thread, period_us * 1000, work_us * 1000, slice_us, &samples);
  if (ready_fd >= 0) {
    char b = 'r';
    (void)!write(ready_fd, &b, 1);
    close(ready_fd);
  }

  int64_t start = now_ns();
  std::vector<int64_t> all_comp, all_wake;
  int64_t step_ns = report_ms > 0 ? static_cast<int64_t>(report_ms * 1e6) : 100'000'000;
  int64_t next = start + step_ns;
  for (;;) {
    timespec wait{static_cast<time_t>(step_ns / 1'000'000'000),
                  static_cast<long>(step_ns % 1'000'000'000)};
    int64_t left = next - now_ns();
    if (left > 0)
      wait = {static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
    int sig = sigtimedwait(&set, nullptr, &wait);
    bool timed_out_run =
        duration_s > 0 && now_ns() - start >= static_cast<int64_t>(duration_s * 1e9);
    if (sig > 0 || timed_out_run) break;
    if (now_ns() < next) continue;
    next += step_ns;
    std::vector<int64_t> comp, wake;
    {
      std::lock_guard lock(samples.mu);
      comp.swap(samples.completion_ns);
      wake.swap(samples.wakeup_ns);
    }
    all_comp.insert(all_comp.end(), comp.begin(), comp.end());
    all_wake.insert(all_wake.end(), wake.begin(), wake.end());
    if (report_ms > 0) print_summary("interval", double(now_ns() - start) / 1e9, comp, wake);
  }
  g_stop = true;
  for (auto& t : workers) t.join();
  for (pid_t p : hog_pids) kill(p, SIGKILL);
  for (pid_t p : hog_pids) waitpid(p, nullptr, 0);
  all_comp.insert(all_comp.end(), samples.completion_ns.begin(), samples.completion_ns.end());
  all_wake.insert(all_wake.end(), samples.wakeup_ns.begin(), samples.wakeup_ns.end());
  print_summary("summary", double(now_ns() - start) / 1e9, all_comp, all_wake);
  return 0;
}
