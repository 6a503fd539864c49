/* Shared between the BPF sampler and user space: histogram geometry and the
 * per-CPU counter block layout. Plain C so both clang -target bpf and g++ read it. */
#ifndef SPECACT_SAMPLER_ABI_H
#define SPECACT_SAMPLER_ABI_H

/* Log-linear (HDR-style) histogram of nanosecond values: exact below 16 ns,
 * then 16 linear sub-buckets per power of two, so a bucket is at most 1/16
 * (6.25 %) wide and its midpoint is within ~3.1 % of any value in it. */
#define SPECACT_HIST_SUB_BITS 4
#define SPECACT_HIST_SUB (1 << SPECACT_HIST_SUB_BITS)
#define SPECACT_HIST_MAX_MSB 40 /* ~1100 s; larger values land in the last bucket */
#define SPECACT_HIST_BUCKETS ((SPECACT_HIST_MAX_MSB - SPECACT_HIST_SUB_BITS + 2) * SPECACT_HIST_SUB)

/* Array slots per histogram: a power of two >= SPECACT_HIST_BUCKETS, so the
 * BPF side can bound an index with a mask the verifier always understands. */
#define SPECACT_HIST_SLOTS 1024

/* Size of the target-tgid bloom bitmap (bits); a power of two. */
#define SPECACT_TARGET_BLOOM_BITS 4096

struct specact_cpu_stats {
  unsigned long long runq[SPECACT_HIST_SLOTS];    /* runnable -> on CPU */
  unsigned long long service[SPECACT_HIST_SLOTS]; /* wakeup -> next voluntary block */
  unsigned long long nvcsw;
  unsigned long long nivcsw;
  unsigned long long migrations;
  unsigned long long oncpu_ns;
  unsigned long long forks_followed;
};

#endif
