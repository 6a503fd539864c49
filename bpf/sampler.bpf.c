// SPDX-License-Identifier: GPL-2.0
// specact latency sampler: run-queue and service latency of *target* tasks,
// plus switch/migration counters and on-CPU time, into per-CPU log-linear
// histograms that user space reads and diffs every window.
//
// Cost discipline: every sched event first asks "is this task a target?" with
// one load of task->tgid and one bit test in a bloom bitmap. Non-target tasks
// leave there, touching no map. Only bloom hits consult the exact tgid hash,
// and only targets get task-local storage (no global pid hash to update and
// delete on every wakeup, which is what makes a naive runqlat expensive).
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bits.bpf.h"
#include "sampler_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_RUNNING 0
#define BLOOM_WORDS (SPECACT_TARGET_BLOOM_BITS / 64)

// Set before load: cgroup/unit targets also follow processes forked later.
const volatile bool follow_forks = false;

// Bloom bitmap over target tgids (bit = tgid mod SPECACT_TARGET_BLOOM_BITS),
// written by user space through the mmaped .bss and by the fork hook.
__u64 target_bloom[BLOOM_WORDS] = {};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u8);
} target_tgids SEC(".maps");

struct task_times {
  __u64 runnable_at; // became runnable (woken or preempted), 0 if not waiting
  __u64 wakeup_at;   // woke from a voluntary sleep, 0 once it blocked again
  __u64 oncpu_at;    // got the CPU
};

struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct task_times);
} task_times SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct specact_cpu_stats);
} stats SEC(".maps");

static __always_inline bool is_target(struct task_struct *p) {
  __u32 tgid = p->tgid;
  __u32 bit = tgid & (SPECACT_TARGET_BLOOM_BITS - 1);
  if (!(target_bloom[bit >> 6] & (1ULL << (bit & 63))))
    return false;
  return bpf_map_lookup_elem(&target_tgids, &tgid) != NULL;
}

// Same geometry as specact::Histogram::bucket_of (daemon/common/histogram.cc).
static __always_inline __u32 bucket_of(__u64 v) {
  if (v < SPECACT_HIST_SUB)
    return v;
  __u32 msb = log2_u64(v);
  if (msb > SPECACT_HIST_MAX_MSB)
    return SPECACT_HIST_BUCKETS - 1;
  __u32 sub = (v >> (msb - SPECACT_HIST_SUB_BITS)) & (SPECACT_HIST_SUB - 1);
  return (msb - SPECACT_HIST_SUB_BITS + 1) * SPECACT_HIST_SUB + sub;
}

static __always_inline struct specact_cpu_stats *cpu_stats(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&stats, &zero);
}

static __always_inline void record(__u64 *hist, __u64 delta_ns) {
  // bucket_of() < SPECACT_HIST_BUCKETS <= SPECACT_HIST_SLOTS; the mask is
  // for the verifier, which cannot follow clang's copies of a range check.
  hist[bucket_of(delta_ns) & (SPECACT_HIST_SLOTS - 1)]++;  // per-CPU slot, tracepoints run with preemption off
}

static __always_inline int on_wakeup(struct task_struct *p) {
  if (!is_target(p))
    return 0;
  struct task_times *t =
      bpf_task_storage_get(&task_times, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (!t)
    return 0;
  __u64 now = bpf_ktime_get_ns();
  t->runnable_at = now;
  if (!t->wakeup_at)
    t->wakeup_at = now;
  return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sa_wakeup, struct task_struct *p) { return on_wakeup(p); }

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sa_wakeup_new, struct task_struct *p) { return on_wakeup(p); }

SEC("tp_btf/sched_switch")
int BPF_PROG(sa_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
             unsigned int prev_state) {
  bool prev_is_target = is_target(prev);
  bool next_is_target = is_target(next);
  if (!prev_is_target && !next_is_target)
    return 0;

  struct specact_cpu_stats *st = cpu_stats();
  if (!st)
    return 0;
  __u64 now = bpf_ktime_get_ns();
  struct task_times *t;

  if (prev_is_target) {
    t = bpf_task_storage_get(&task_times, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (t) {
      if (t->oncpu_at) {
        st->oncpu_ns += now - t->oncpu_at;
        t->oncpu_at = 0;
      }
      if (prev_state == TASK_RUNNING) {
        // Preempted (or yielded): still runnable, waits for the CPU again.
        st->nivcsw++;
        t->runnable_at = now;
      } else {
        st->nvcsw++;
        if (t->wakeup_at)
          record(st->service, now - t->wakeup_at);
        t->wakeup_at = 0;
        t->runnable_at = 0;
      }
    }
  }
  if (next_is_target) {
    t = bpf_task_storage_get(&task_times, next, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (t) {
      if (t->runnable_at)
        record(st->runq, now - t->runnable_at);
      t->runnable_at = 0;
      t->oncpu_at = now;
    }
  }
  return 0;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(sa_migrate, struct task_struct *p, int dest_cpu) {
  if (!is_target(p))
    return 0;
  struct specact_cpu_stats *st = cpu_stats();
  if (st)
    st->migrations++;
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sa_fork, struct task_struct *parent, struct task_struct *child) {
  if (!follow_forks)
    return 0;
  __u32 child_tgid = child->tgid;
  if (child_tgid == parent->tgid || !is_target(parent))
    return 0;
  __u8 one = 1;
  bpf_map_update_elem(&target_tgids, &child_tgid, &one, BPF_ANY);
  __u32 bit = child_tgid & (SPECACT_TARGET_BLOOM_BITS - 1);
  __sync_fetch_and_or(&target_bloom[bit >> 6], 1ULL << (bit & 63));
  struct specact_cpu_stats *st = cpu_stats();
  if (st)
    st->forks_followed++;
  return 0;
}

// Set by user space when it runs in a pid namespace other than the initial
// one (a container): the namespace's inode number.
const volatile __u32 pidns_inum = 0;

// Task iterator, run on demand by user space in a container: prints one
// "<global tgid> <tgid in our pid namespace>" line per thread-group leader
// visible in our namespace, so the target set (which the sched events compare
// against task->tgid, the global tgid) can be translated once per refresh,
// off the hot path.
SEC("iter/task")
int sa_pidns_map(struct bpf_iter__task *ctx) {
  struct seq_file *seq = ctx->meta->seq;
  struct task_struct *task = ctx->task;
  if (!task || task->pid != task->tgid)
    return 0;
  struct pid *pid = BPF_CORE_READ(task, thread_pid);
  unsigned int level = BPF_CORE_READ(pid, level);
  for (unsigned int i = 0; i < 8; i++) {  // pid namespaces nest at most 32 deep; 8 is plenty
    if (i > level)
      break;
    struct upid up = {};
    bpf_core_read(&up, sizeof(up), &pid->numbers[i]);
    if (BPF_CORE_READ(up.ns, ns.inum) == pidns_inum) {
      BPF_SEQ_PRINTF(seq, "%u %u\n", task->tgid, up.nr);
      break;
    }
  }
  return 0;
}
