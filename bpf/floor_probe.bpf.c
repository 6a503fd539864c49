// SPDX-License-Identifier: GPL-2.0
// Benchmark baseline only (bench/sampler_overhead.sh): empty programs on the
// same tracepoints as the sampler. Their cost is the floor any tp_btf
// sampler pays (trampoline entry, and with kernel.bpf_stats_enabled the
// kernel's own run-time accounting), so it is reported beside the sampler's.
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sched_wakeup")
int BPF_PROG(floor_wakeup, struct task_struct *p) { return 0; }

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(floor_wakeup_new, struct task_struct *p) { return 0; }

SEC("tp_btf/sched_switch")
int BPF_PROG(floor_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
             unsigned int prev_state) {
  return 0;
}
