#include "metrics/sampler.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include "common/log.h"
#include "sampler.skel.h"
#include "sampler_abi.h"

namespace specact {
namespace {

int libbpf_to_log(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (getenv("SPECACT_LIBBPF_DEBUG")) {  // full verifier logs, for developers
    vfprintf(stderr, fmt, args);
    return 0;
  }
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, args);
  std::string line(buf);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  if (level == LIBBPF_WARN)
    log::debug("libbpf: " + line);  // load failures are reported by us, in one sentence
  return 0;
}

std::string load_error_sentence(int err) {
  err = err < 0 ? -err : err;
  if (err == EACCES && geteuid() == 0)
    return "the kernel's BPF verifier rejected the sampler (rerun with SPECACT_LIBBPF_DEBUG=1 "
           "for its log)";
  if (err == EPERM || err == EACCES)
    return "loading the BPF sampler was refused (" + std::string(strerror(err)) +
           "): run as root or with CAP_BPF and CAP_PERFMON";
  return "loading the BPF sampler failed: " + std::string(strerror(err));
}

constexpr size_t kStatsWords = sizeof(specact_cpu_stats) / sizeof(uint64_t);

// The initial pid namespace's inode number (PROC_PID_INIT_INO): anything
// else means we run in a container, where pids differ from the kernel's.
constexpr uint64_t kInitPidNsInode = 0xEFFFFFFCu;

uint64_t own_pidns_inode() {
  struct stat st {};
  if (stat("/proc/self/ns/pid", &st) != 0) return kInitPidNsInode;
  return st.st_ino;
}

}  // namespace

struct LatencySampler::Impl {
  sampler_bpf* skel = nullptr;
  bpf_link* pidns_iter = nullptr;  // only in a non-initial pid namespace
  int ncpus = 0;
  std::set<uint32_t> tgids;      // what user space last put into the target set
  std::set<uint32_t> unwanted;   // in the map but not found by the last scan (cgroup/unit)
  std::vector<uint64_t> prev;    // cumulative sums at the last window close
  std::vector<uint64_t> percpu;  // scratch for the per-CPU map read
  int64_t window_start_ns = 0;
  uint64_t window_index = 0;
  bool started = false;

  ~Impl() {
    if (pidns_iter) bpf_link__destroy(pidns_iter);
    if (skel) sampler_bpf__destroy(skel);  // detaches every program
  }

  // Our namespace's tgids -> the kernel's global tgids, from the task iterator.
  std::map<uint32_t, uint32_t> global_tgids() {
    std::map<uint32_t, uint32_t> out;
    int fd = bpf_iter_create(bpf_link__fd(pidns_iter));
    if (fd < 0) return out;
    std::string text;
    char buf[8192];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
    close(fd);
    unsigned global = 0, local = 0;
    for (size_t pos = 0; pos < text.size();) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) nl = text.size();
      if (std::sscanf(text.c_str() + pos, "%u %u", &global, &local) == 2) out[local] = global;
      pos = nl + 1;
    }
    return out;
  }

  std::vector<uint64_t> read_totals() {
    std::vector<uint64_t> totals(kStatsWords, 0);
    uint32_t zero = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.stats), &zero, percpu.data()) != 0)
      throw SamplerError(std::string("reading BPF statistics failed: ") + strerror(errno));
    for (int cpu = 0; cpu < ncpus; ++cpu) {
      const uint64_t* row = percpu.data() + static_cast<size_t>(cpu) * kStatsWords;
      for (size_t i = 0; i < kStatsWords; ++i) totals[i] += row[i];
    }
    return totals;
  }
};

LatencySampler::LatencySampler(const TargetResolver& target)
    : impl_(std::make_unique<Impl>()), target_(target) {
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
    throw SamplerError(
        "kernel BTF is not available (/sys/kernel/btf/vmlinux missing): the BPF sampler needs "
        "a kernel built with CONFIG_DEBUG_INFO_BTF=y");
  libbpf_set_print(libbpf_to_log);
  impl_->ncpus = libbpf_num_possible_cpus();
  if (impl_->ncpus <= 0) throw SamplerError("cannot determine the number of possible CPUs");
  impl_->percpu.assign(static_cast<size_t>(impl_->ncpus) * kStatsWords, 0);

  impl_->skel = sampler_bpf__open();
  if (!impl_->skel) throw SamplerError(load_error_sentence(errno));
  impl_->skel->rodata->follow_forks = target.follows_forks();
  uint64_t pidns = own_pidns_inode();
  impl_->skel->rodata->pidns_inum = static_cast<uint32_t>(pidns);
  bpf_program__set_autoattach(impl_->skel->progs.sa_pidns_map, false);
  if (int err = sampler_bpf__load(impl_->skel)) throw SamplerError(load_error_sentence(err));
  if (pidns != kInitPidNsInode) {
    // In a container the sched events see global tgids; translate ours.
    impl_->pidns_iter = bpf_program__attach_iter(impl_->skel->progs.sa_pidns_map, nullptr);
    if (!impl_->pidns_iter)
      throw SamplerError("cannot map this pid namespace's pids to the kernel's (task iterator: " +
                         std::string(strerror(errno)) + ")");
    log::info("running in a pid namespace: target pids are translated to global tgids");
  }
  refresh_targets();
  if (int err = sampler_bpf__attach(impl_->skel))
    throw SamplerError("attaching the BPF sampler to sched tracepoints failed: " +
                       std::string(strerror(-err)));
}

LatencySampler::~LatencySampler() = default;

size_t LatencySampler::refresh_targets() {
  std::vector<pid_t> procs = target_.processes();
  std::set<uint32_t> wanted;
  if (impl_->pidns_iter) {
    auto global = impl_->global_tgids();
    for (pid_t p : procs)
      if (auto it = global.find(static_cast<uint32_t>(p)); it != global.end())
        wanted.insert(it->second);
  } else {
    wanted.insert(procs.begin(), procs.end());
  }
  int fd = bpf_map__fd(impl_->skel->maps.target_tgids);
  uint8_t one = 1;
  for (uint32_t tgid : wanted)
    if (!impl_->tgids.count(tgid)) bpf_map_update_elem(fd, &tgid, &one, BPF_ANY);
  // Entries nobody wants any more, including children the BPF fork hook added
  // that have since exited, would fill the hash over a long run. An entry is
  // dropped when it was unwanted at two refreshes in a row: a child forked
  // after this scan is never dropped before the next scan can see it.
  std::set<uint32_t> in_map, unwanted;
  uint32_t key = 0, next = 0;
  for (uint32_t* prev = nullptr; bpf_map_get_next_key(fd, prev, &next) == 0; prev = &key) {
    key = next;
    in_map.insert(key);
  }
  for (uint32_t tgid : in_map) {
    if (wanted.count(tgid)) continue;
    if (impl_->unwanted.count(tgid) || !target_.follows_forks()) {
      bpf_map_delete_elem(fd, &tgid);
    } else {
      unwanted.insert(tgid);
    }
  }
  impl_->unwanted = std::move(unwanted);
  // The bloom covers exactly what stays in the map. Set new bits before
  // clearing old ones, so a task that stays a target is never missed.
  std::vector<uint64_t> bloom(SPECACT_TARGET_BLOOM_BITS / 64, 0);
  auto add_bit = [&](uint32_t tgid) {
    uint32_t bit = tgid & (SPECACT_TARGET_BLOOM_BITS - 1);
    bloom[bit >> 6] |= uint64_t{1} << (bit & 63);
  };
  for (uint32_t tgid : wanted) add_bit(tgid);
  for (uint32_t tgid : impl_->unwanted) add_bit(tgid);
  auto* live = impl_->skel->bss->target_bloom;
  for (size_t i = 0; i < bloom.size(); ++i) __atomic_fetch_or(&live[i], bloom[i], __ATOMIC_RELAXED);
  for (size_t i = 0; i < bloom.size(); ++i) __atomic_store_n(&live[i], bloom[i], __ATOMIC_RELAXED);
  impl_->tgids = std::move(wanted);
  return impl_->tgids.size();
}

size_t LatencySampler::target_map_entries() const {
  int fd = bpf_map__fd(impl_->skel->maps.target_tgids);
  size_t n = 0;
  uint32_t key = 0, next = 0;
  for (uint32_t* prev = nullptr; bpf_map_get_next_key(fd, prev, &next) == 0; prev = &key, ++n)
    key = next;
  return n;
}

void LatencySampler::restart_window(int64_t now_ns) {
  impl_->prev = impl_->read_totals();
  impl_->started = true;
  impl_->window_start_ns = now_ns;
}

Window LatencySampler::close_window(int64_t now_ns) {
  Window w;
  if (!impl_->started) {
    restart_window(now_ns);
    w.start_ns = w.end_ns = now_ns;
    w.low_confidence = true;
    return w;
  }
  std::vector<uint64_t> totals = impl_->read_totals();
  std::vector<uint64_t> delta(kStatsWords);
  for (size_t i = 0; i < kStatsWords; ++i) delta[i] = totals[i] - impl_->prev[i];
  impl_->prev = std::move(totals);

  const auto* d = reinterpret_cast<const specact_cpu_stats*>(delta.data());
  w.index = ++impl_->window_index;
  w.start_ns = impl_->window_start_ns;
  w.end_ns = now_ns;
  impl_->window_start_ns = now_ns;
  auto dense = [](const unsigned long long* counts) {
    return std::span<const uint64_t>(reinterpret_cast<const uint64_t*>(counts),
                                     SPECACT_HIST_BUCKETS);
  };
  w.runq_hist = Histogram::from_dense(dense(d->runq));
  w.service_hist = Histogram::from_dense(dense(d->service));
  w.runq = LatencySummary::from(w.runq_hist);
  w.service = LatencySummary::from(w.service_hist);
  w.nvcsw = d->nvcsw;
  w.nivcsw = d->nivcsw;
  w.migrations = d->migrations;
  w.oncpu_ms = static_cast<double>(d->oncpu_ns) / 1e6;
  // Either histogram too thin for a stable p95: the engine pools or waits.
  w.low_confidence = w.service.count < min_samples_ || w.runq.count < min_samples_;
  return w;
}

}  // namespace specact
