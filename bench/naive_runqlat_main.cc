// Loads the naive hash-map runqlat (bpf/naive_runqlat.bpf.c) until SIGINT or
// SIGTERM, as the comparison baseline of bench/sampler_overhead.sh.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "naive_runqlat.skel.h"

int main() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  naive_runqlat_bpf* skel = naive_runqlat_bpf__open_and_load();
  if (!skel || naive_runqlat_bpf__attach(skel) != 0) {
    std::fprintf(stderr, "specact-naive-runqlat: cannot load or attach (root needed)\n");
    naive_runqlat_bpf__destroy(skel);
    return 1;
  }
  std::puts("attached");
  std::fflush(stdout);
  int sig;
  sigwait(&set, &sig);
  naive_runqlat_bpf__destroy(skel);
  return 0;
}
