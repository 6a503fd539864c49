// Reading and writing the kernel's knob files (/proc/sys, the scheduler
// debugfs, cgroup v2), confined to the configured roots. Knows nothing about
// knobs, values or the journal: bytes in, bytes out, errno back.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace specact {
struct KnobsConfig;
}

namespace specact::knobs {

// Returns an errno to inject for an operation ("read", "write",
// "probe-write", "journal") on a path, or 0 (KnobsConfig::fault).
using FaultHook = std::function<int(std::string_view op, const std::string& path)>;

// The directories whose files the knobs layer reads and writes: the configured
// sys_root, debugfs_root and cgroup v2 root. Nothing outside them is touched,
// whatever a journal says.
struct KernelRoots {
  std::string sys, debugfs, cgroup;               // cgroup "" = no cgroup v2 hierarchy
  static KernelRoots from(const KnobsConfig& c);  // cgroup: configured, or the cgroup2 mount
  // The root `path` lies below (lexically: plain names only, no "", "." or
  // ".."), and the rest of it. False when it is below none of them.
  bool locate(const std::string& path, std::string* root, std::string* rel) const;
  static bool contains(const std::string& root, const std::string& path);
};

// 0 or errno. The path must be below one of `roots` (else EXDEV); it is opened
// relative to that root with no symlinks (ELOOP) and no "..", and must be a
// regular file (EINVAL).
int read_file(const KernelRoots& roots, const std::string& path, std::string* out,
              const FaultHook& fault);
int write_file(const KernelRoots& roots, const std::string& path, const std::string& data,
               const FaultHook& fault);
// Opens for write and closes: mode bits, lockdown and read-only mounts are
// checked without changing anything.
int probe_writable(const KernelRoots& roots, const std::string& path, const FaultHook& fault);

std::string errno_name(int err);  // "EPERM"
std::string trim(std::string s);
std::string strip_slashes(std::string s);  // "/a/b//" -> "/a/b"; "/" stays
std::string read_boot_id();                // "" when unknown

}  // namespace specact::knobs
