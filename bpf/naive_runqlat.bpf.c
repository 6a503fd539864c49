// SPDX-License-Identifier: GPL-2.0
// Benchmark baseline only (bench/sampler_overhead.sh): the textbook run-queue
// latency tracer, as in libbpf-tools' runqlat without filters. Every wakeup of
// every task updates a global pid-keyed hash, and every switch looks it up and
// deletes it. This per-event hash traffic is what specact's sampler avoids.
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bits.bpf.h"
#include "sampler_abi.h"

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 10240);
  __type(key, __u32);
  __type(value, __u64);
} start SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct specact_cpu_stats);
} naive_stats SEC(".maps");

static __always_inline int trace_enqueue(struct task_struct *p) {
  __u32 pid = p->pid;
  __u64 ts = bpf_ktime_get_ns();
  if (!pid)
    return 0;
  bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
  return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(naive_wakeup, struct task_struct *p) { return trace_enqueue(p); }

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(naive_wakeup_new, struct task_struct *p) { return trace_enqueue(p); }

SEC("tp_btf/sched_switch")
int BPF_PROG(naive_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
             unsigned int prev_state) {
  if (prev_state == 0)
    trace_enqueue(prev);
  __u32 pid = next->pid;
  __u64 *tsp = bpf_map_lookup_elem(&start, &pid);
  if (!tsp)
    return 0;
  __u64 delta = bpf_ktime_get_ns() - *tsp;
  __u32 zero = 0;
  struct specact_cpu_stats *st = bpf_map_lookup_elem(&naive_stats, &zero);
  if (st)
    st->runq[log2_u64(delta) & (SPECACT_HIST_SLOTS - 1)]++;
  bpf_map_delete_elem(&start, &pid);
  return 0;
}
