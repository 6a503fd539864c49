// specact-bench-probe naive|floor: loads a comparison BPF object until SIGINT
// or SIGTERM, for bench/sampler_overhead.sh.
//   naive  the textbook hash-map runqlat (bpf/naive_runqlat.bpf.c)
//   floor  empty programs on the sampler's tracepoints (bpf/floor_probe.bpf.c)
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "floor_probe.skel.h"
#include "naive_runqlat.skel.h"

namespace {

template <typename Skel, typename Open, typename Attach, typename Destroy>
int hold(Open open, Attach attach, Destroy destroy) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  Skel* skel = open();
  if (!skel || attach(skel) != 0) {
    std::fprintf(stderr, "specact-bench-probe: cannot load or attach (root needed)\n");
    destroy(skel);
    return 1;
  }
  std::puts("attached");
  std::fflush(stdout);
  int sig;
  sigwait(&set, &sig);
  destroy(skel);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "naive") == 0)
    return hold<naive_runqlat_bpf>(naive_runqlat_bpf__open_and_load, naive_runqlat_bpf__attach,
                                   naive_runqlat_bpf__destroy);
  if (argc == 2 && std::strcmp(argv[1], "floor") == 0)
    return hold<floor_probe_bpf>(floor_probe_bpf__open_and_load, floor_probe_bpf__attach,
                                 floor_probe_bpf__destroy);
  std::fprintf(stderr, "usage: specact-bench-probe naive|floor\n");
  return 2;
}
