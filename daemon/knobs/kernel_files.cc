// Reading and writing the kernel's knob files (/proc/sys, the scheduler
// debugfs, cgroup v2) — and nothing else. Every path must lie below one of the
// configured roots, and is opened relative to that root with no symlinks and
// no "..": procfs, debugfs and cgroupfs have no symlinks below those roots, so
// a link there can only be something planted (in a fake or bind-mounted tree),
// and following it could make root write a file elsewhere.
#include "knobs/kernel_files.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "knobs/knob_manager.h"
#include "target/target.h"

namespace specact::knobs {
namespace {

// `path` == root + "/" + rel with rel made of plain names (no "", ".", "..").
bool below(const std::string& root, const std::string& path, std::string* rel) {
  if (root.empty() || path.size() <= root.size() + 1) return false;
  if (path.compare(0, root.size(), root) != 0) return false;
  if (root != "/" && path[root.size()] != '/') return false;
  std::string r = path.substr(root == "/" ? 1 : root.size() + 1);
  for (size_t i = 0; i <= r.size();) {
    size_t j = r.find('/', i);
    if (j == std::string::npos) j = r.size();
    std::string part = r.substr(i, j - i);
    if (part.empty() || part == "." || part == "..") return false;
    i = j + 1;
  }
  *rel = r;
  return true;
}

// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) below `root`; a walk with
// O_NOFOLLOW on kernels before 5.6. The fd, or -errno (ELOOP for a symlink).
int open_beneath(const std::string& root, const std::string& rel, int flags) {
  int dfd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_NOFOLLOW | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, dfd, rel.c_str(), &how, sizeof how);
  int err = fd < 0 ? errno : 0;
  if (fd < 0 && err == ENOSYS) {
    // No openat2 (Linux < 5.6, or a seccomp filter that hides it): walk the
    // components, none of them followed if it is a link.
    int cur = dfd;
    dfd = -1;
    size_t i = 0;
    fd = -1;
    err = 0;
    for (;;) {
      size_t j = rel.find('/', i);
      bool last = j == std::string::npos;
      std::string part = rel.substr(i, last ? std::string::npos : j - i);
      int next = openat(
          cur, part.c_str(),
          last ? flags | O_NOFOLLOW | O_CLOEXEC : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) err = errno;
      close(cur);
      if (next < 0) break;
      if (last) {
        fd = next;
        break;
      }
      cur = next;
      i = j + 1;
    }
  }
  if (dfd >= 0) close(dfd);
  return fd >= 0 ? static_cast<int>(fd) : -err;
}

// Kernel files (proc, sysfs, cgroupfs, debugfs) take a value in one atomic
// write(2); a plain file (a fake root in tests, a bind-mounted copy) gets the
// same all-or-nothing behaviour from temp + rename.
bool kernel_fs(int fd) {
  struct statfs sfs {};
  if (fstatfs(fd, &sfs) != 0) return true;
  switch (static_cast<unsigned long>(sfs.f_type)) {
    case 0x9fa0:      // PROC_SUPER_MAGIC
    case 0x62656572:  // SYSFS_MAGIC
    case 0x27e0eb:    // CGROUP_SUPER_MAGIC
    case 0x63677270:  // CGROUP2_SUPER_MAGIC
    case 0x64626720:  // DEBUGFS_MAGIC
    case 0x74726163:  // TRACEFS_MAGIC
      return true;
    default:
      return false;
  }
}

// Opens a knob file for `flags` and checks it is a regular file (kernel knob
// files are); O_NONBLOCK while checking, so a planted FIFO cannot hang us.
int open_knob_file(const KernelRoots& roots, const std::string& path, int flags) {
  std::string root, rel;
  if (!roots.locate(path, &root, &rel)) return -EXDEV;
  int fd = open_beneath(root, rel, flags | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return fd;
  struct stat st {};
  int err = 0;
  if (fstat(fd, &st) != 0)
    err = errno;
  else if (!S_ISREG(st.st_mode))
    err = EINVAL;
  else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
    err = errno;
  if (err) {
    close(fd);
    return -err;
  }
  return fd;
}

int write_once(int fd, const std::string& data) {
  ssize_t n = write(fd, data.data(), data.size());
  return n < 0 ? errno : (static_cast<size_t>(n) != data.size() ? EIO : 0);
}

int replace_plain_file(const KernelRoots& roots, const std::string& path, const std::string& data) {
  std::string root, rel;
  if (!roots.locate(path, &root, &rel)) return EXDEV;
  auto slash = rel.find_last_of('/');
  std::string parent = slash == std::string::npos ? "" : rel.substr(0, slash);
  std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
  int dfd = parent.empty() ? open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                           : open_beneath(root, parent, O_RDONLY | O_DIRECTORY);
  if (dfd < 0) return parent.empty() ? errno : -dfd;
  std::string tmp = base + ".specact-tmp";
  int fd = openat(dfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    unlinkat(dfd, tmp.c_str(), 0);  // a leftover: the entry itself, never a link's target
    fd = openat(dfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  }
  if (fd < 0) {
    int err = errno;
    close(dfd);
    return err;
  }
  int err = write_once(fd, data);
  if (close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && renameat(dfd, tmp.c_str(), dfd, base.c_str()) != 0) err = errno;
  if (err) unlinkat(dfd, tmp.c_str(), 0);
  close(dfd);
  return err;
}

}  // namespace

KernelRoots KernelRoots::from(const KnobsConfig& c) {
  KernelRoots r;
  r.sys = strip_slashes(c.sys_root);
  r.debugfs = strip_slashes(c.debugfs_root);
  r.cgroup = strip_slashes(c.cgroup_root.empty() ? cgroup2_mount(c.proc_root) : c.cgroup_root);
  return r;
}

bool KernelRoots::locate(const std::string& path, std::string* root, std::string* rel) const {
  // The longest root wins, should one lie inside another.
  const std::string* best = nullptr;
  std::string best_rel;
  for (const std::string* r : {&sys, &debugfs, &cgroup}) {
    std::string x;
    if (below(*r, path, &x) && (!best || r->size() > best->size())) best = r, best_rel = x;
  }
  if (!best) return false;
  *root = *best;
  *rel = best_rel;
  return true;
}

bool KernelRoots::contains(const std::string& root, const std::string& path) {
  std::string rel;
  return below(strip_slashes(root), path, &rel);
}

std::string errno_name(int err) {
  switch (err) {
    case EPERM:
      return "EPERM";
    case EACCES:
      return "EACCES";
    case ENOENT:
      return "ENOENT";
    case EROFS:
      return "EROFS";
    case ENOSPC:
      return "ENOSPC";
    case EINVAL:
      return "EINVAL";
    case ESRCH:
      return "ESRCH";
    case EIO:
      return "EIO";
    case EBUSY:
      return "EBUSY";
    case ENODEV:
      return "ENODEV";
    case EDQUOT:
      return "EDQUOT";
    case ENOTDIR:
      return "ENOTDIR";
    case ELOOP:
      return "ELOOP (a symbolic link where a kernel file should be: refused)";
    case EXDEV:
      return "EXDEV (not below the configured sys_root, debugfs_root or cgroup root: refused)";
    default:
      return "errno " + std::to_string(err) + " (" + std::strerror(err) + ")";
  }
}

std::string strip_slashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string trim(std::string s) {
  auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  while (!s.empty() && ws(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && ws(s[i])) ++i;
  return s.substr(i);
}

int read_file(const KernelRoots& roots, const std::string& path, std::string* out,
              const FaultHook& fault) {
  if (fault)
    if (int err = fault("read", path)) return err;
  int fd = open_knob_file(roots, path, O_RDONLY);
  if (fd < 0) return -fd;
  out->clear();
  char buf[4096];
  int err = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > (1u << 20)) {  // no knob file is this large
      err = EFBIG;
      break;
    }
  }
  close(fd);
  return err;
}

int write_file(const KernelRoots& roots, const std::string& path, const std::string& data,
               const FaultHook& fault) {
  if (fault)
    if (int err = fault("write", path)) return err;
  int fd = open_knob_file(roots, path, O_WRONLY);
  if (fd < 0) return -fd;
  if (!kernel_fs(fd)) {
    close(fd);
    return replace_plain_file(roots, path, data);
  }
  // One write(2): sysctl and cgroup files take the value in a single call.
  int err = write_once(fd, data);
  if (close(fd) != 0 && err == 0) err = errno;
  return err;
}

int probe_writable(const KernelRoots& roots, const std::string& path, const FaultHook& fault) {
  if (fault)
    if (int err = fault("probe-write", path)) return err;
  // Opening for write checks mode bits, lockdown and read-only mounts without
  // changing anything.
  int fd = open_knob_file(roots, path, O_WRONLY);
  if (fd < 0) return -fd;
  close(fd);
  return 0;
}

std::string read_boot_id() {
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[64] = {};
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n > 0 ? trim(std::string(buf, static_cast<size_t>(n))) : "";
}

}  // namespace specact::knobs
