// knobs_victim: a multi-threaded process for the knobs tests. argv[1] threads
// sleep forever. SIGUSR1 adds a thread that resets its own EEVDF slice and
// nice to the defaults (like a thread pool that sets its own attributes);
// SIGUSR2 adds a thread that keeps what it inherited.
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <thread>

namespace {
struct Attr {
  uint32_t size, policy;
  uint64_t flags;
  int32_t nice;
  uint32_t prio;
  uint64_t runtime, deadline, period;
  uint32_t umin, umax;
};

void sleeper(bool reset) {
  if (reset) {
    Attr a{};
    a.size = sizeof(a);
    a.policy = SCHED_OTHER;
    syscall(SYS_sched_setattr, 0, &a, 0);  // runtime 0 = default slice, nice 0
  }
  for (;;) pause();
}
}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 3;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // threads inherit the mask
  for (int i = 0; i < n; ++i) std::thread(sleeper, false).detach();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    std::thread(sleeper, sig == SIGUSR1).detach();
  }
}
