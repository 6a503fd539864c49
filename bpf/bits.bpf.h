// SPDX-License-Identifier: GPL-2.0
// Bit helpers shared by the BPF programs (include after vmlinux.h).
#ifndef SPECACT_BITS_BPF_H
#define SPECACT_BITS_BPF_H

// floor(log2(v)), and 0 for v == 0. Branch-free: the verifier sees straight
// line code, and it costs the same for every value.
static __always_inline __u32 log2_u64(__u64 v) {
  __u32 r, shift;
  r = (v > 0xFFFFFFFFULL) << 5;
  v >>= r;
  shift = (v > 0xFFFF) << 4;
  v >>= shift;
  r |= shift;
  shift = (v > 0xFF) << 3;
  v >>= shift;
  r |= shift;
  shift = (v > 0xF) << 2;
  v >>= shift;
  r |= shift;
  shift = (v > 0x3) << 1;
  v >>= shift;
  r |= shift;
  r |= (v >> 1);
  return r;
}

#endif // SPECACT_BITS_BPF_H
