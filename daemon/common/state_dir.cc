#include "common/state_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace specact {
namespace {

bool valid_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

std::string octal_mode(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

bool trusted_owner(uid_t uid) { return uid == 0 || uid == geteuid(); }

// "" when `st` (the directory at `shown`) is safe; else why not. The state
// directory itself must be writable by its owner only; an ancestor may also be
// sticky-and-world-writable like /tmp, where nobody can rename our entries.
std::string unsafe_dir(const struct stat& st, const std::string& shown, bool is_state_dir) {
  if (!trusted_owner(st.st_uid))
    return (is_state_dir ? "state directory " : "parent directory ") + shown + " is owned by uid " +
           std::to_string(st.st_uid) + ", not by root" +
           (geteuid() != 0 ? " or uid " + std::to_string(geteuid()) : "") +
           ": someone else could plant links in it (chown root " + shown + ")";
  bool loose = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  if (loose && (is_state_dir || !(st.st_mode & S_ISVTX)))
    return (is_state_dir ? "state directory " : "parent directory ") + shown +
           " is writable by group or others (mode " + octal_mode(st.st_mode) +
           "): someone else could plant links in it (chmod go-w " + shown + ")";
  return "";
}

int write_all(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    off += static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

StateDir StateDir::open(const std::string& path, bool create) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p.empty() || p[0] != '/')
    throw StateDirError("state directory '" + path + "' is not an absolute path", EINVAL);
  std::vector<std::string> parts;
  for (size_t i = 1; i <= p.size();) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string part = p.substr(i, j - i);
    if (part == "." || part == "..")
      throw StateDirError("state directory " + p + " must not contain '.' or '..'", EINVAL);
    if (!part.empty()) parts.push_back(part);
    i = j + 1;
  }
  int fd = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw StateDirError(std::string("cannot open /: ") + std::strerror(errno), errno);
  auto fail = [&](const std::string& what, int err) {
    close(fd);
    throw StateDirError(what, err);
  };
  std::string shown;
  struct stat st {};
  if (fstat(fd, &st) != 0) fail("cannot stat /", errno);
  if (std::string why = unsafe_dir(st, "/", parts.empty()); !why.empty()) fail(why, EPERM);
  for (size_t i = 0; i < parts.size(); ++i) {
    bool last = i + 1 == parts.size();
    shown += "/" + parts[i];
    // Ancestors may be symlinks an admin made (/var/run -> /run): the link
    // sits in a directory already checked, and its target is checked next.
    // The state directory itself must be the real directory.
    int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (last ? O_NOFOLLOW : 0);
    int next = openat(fd, parts[i].c_str(), flags);
    if (next < 0 && errno == ENOENT && create) {
      if (mkdirat(fd, parts[i].c_str(), last ? 0700 : 0755) != 0 && errno != EEXIST) {
        int err = errno;
        fail(std::string("cannot create ") + (last ? "state directory " : "directory ") + shown +
                 ": " + std::strerror(err),
             err);
      }
      next = openat(fd, parts[i].c_str(), flags);
    }
    if (next < 0) {
      int err = errno;
      if (err == ENOENT) fail("state directory " + p + " does not exist (no " + shown + ")", err);
      if (last && (err == ELOOP || err == ENOTDIR)) {
        struct stat lst {};
        if (fstatat(fd, parts[i].c_str(), &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode))
          fail("state directory " + shown +
                   " is a symbolic link: point state_dir at the real directory",
               ELOOP);
      }
      fail("cannot open " + shown + ": " + std::strerror(err), err);
    }
    close(fd);
    fd = next;
    if (fstat(fd, &st) != 0) fail("cannot stat " + shown, errno);
    if (std::string why = unsafe_dir(st, shown, last); !why.empty()) fail(why, EPERM);
  }
  return StateDir(p, fd);
}

StateDir::StateDir(StateDir&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_) { o.fd_ = -1; }

StateDir& StateDir::operator=(StateDir&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    path_ = std::move(o.path_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

StateDir::~StateDir() {
  if (fd_ >= 0) close(fd_);
}

int StateDir::open_file(std::string_view name, int flags, mode_t mode) const {
  if (!valid_name(name)) return -EINVAL;
  bool trunc = (flags & O_TRUNC) != 0;
  bool nonblock = (flags & O_NONBLOCK) != 0;
  flags &= ~O_TRUNC;
  int fd = openat(fd_, std::string(name).c_str(),
                  flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, mode);
  if (fd < 0) return -errno;
  struct stat st {};
  int err = 0;
  if (fstat(fd, &st) != 0)
    err = errno;
  else if (!S_ISREG(st.st_mode))
    err = EINVAL;
  else if (st.st_nlink > 1)
    err = EMLINK;  // a hard link to a file elsewhere: writing it would write that file
  else if (!nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
    err = errno;
  else if (trunc && ftruncate(fd, 0) != 0)
    err = errno;
  if (err) {
    close(fd);
    return -err;
  }
  return fd;
}

int StateDir::open_append(std::string_view name) const {
  return open_file(name, O_WRONLY | O_APPEND | O_CREAT, 0600);
}

int StateDir::read(std::string_view name, std::string* out, size_t max_bytes) const {
  int fd = open_file(name, O_RDONLY);
  if (fd < 0) return -fd;
  out->clear();
  char buf[8192];
  int err = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (n == 0) break;
    if (out->size() + static_cast<size_t>(n) > max_bytes) {
      err = EFBIG;
      break;
    }
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return err;
}

int StateDir::replace(std::string_view name, std::string_view data) const {
  if (!valid_name(name)) return EINVAL;
  std::string target(name), tmp = target + ".tmp";
  int fd = -1;
  for (int attempt = 0; attempt < 3 && fd < 0; ++attempt) {
    fd = openat(fd_, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) return errno;
    // A temp left by a crash, or something planted: remove the entry itself
    // (unlinkat never follows a link) and create our own.
    if (fd < 0) unlinkat(fd_, tmp.c_str(), 0);
  }
  if (fd < 0) return EEXIST;
  int err = write_all(fd, data);
  if (!err && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && !err) err = errno;
  if (!err && renameat(fd_, tmp.c_str(), fd_, target.c_str()) != 0) err = errno;
  if (err) {
    unlinkat(fd_, tmp.c_str(), 0);
    return err;
  }
  return sync();
}

int StateDir::remove(std::string_view name) const {
  if (!valid_name(name)) return EINVAL;
  if (unlinkat(fd_, std::string(name).c_str(), 0) != 0) return errno;
  return sync();
}

int StateDir::set_aside(std::string_view name, std::string_view label, std::string* new_name,
                        time_t now) const {
  if (!valid_name(name) || !valid_name(label)) return EINVAL;
  tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  std::string from(name), base = from + "." + std::string(label) + "-" + stamp;
  for (int n = 1; n < 10000; ++n) {
    std::string to = n == 1 ? base : base + "-" + std::to_string(n);
    // RENAME_NOREPLACE: an existing kept-aside file is never overwritten.
    if (renameat2(fd_, from.c_str(), fd_, to.c_str(), RENAME_NOREPLACE) == 0) {
      *new_name = to;
      return sync();
    }
    if (errno == EEXIST) continue;
    if (errno != EINVAL && errno != ENOSYS) return errno;
    // A file system without RENAME_NOREPLACE: link() is just as exclusive.
    if (linkat(fd_, from.c_str(), fd_, to.c_str(), 0) == 0) {
      unlinkat(fd_, from.c_str(), 0);
      *new_name = to;
      return sync();
    }
    if (errno != EEXIST) return errno;
  }
  return EEXIST;
}

std::vector<std::string> StateDir::list() const {
  std::vector<std::string> out;
  int dup_fd = fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return out;
  DIR* d = fdopendir(dup_fd);
  if (!d) {
    close(dup_fd);
    return out;
  }
  rewinddir(d);  // the dup shares its offset with fd_: start from the top
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

int StateDir::sync() const { return fsync(fd_) == 0 ? 0 : errno; }

std::string StateDir::describe(int err) {
  switch (err) {
    case ELOOP:
      return "is a symbolic link (refused: files in the state directory are never opened "
             "through links)";
    case EINVAL:
      return "is not a regular file (refused)";
    case EMLINK:
      return "has other hard links (refused: writing it would change another file)";
    case EFBIG:
      return "is too large to be a specactd file";
    default:
      return std::strerror(err);
  }
}

std::string StateDir::error(std::string_view name, int err) const {
  return path_of(name) + ": " + describe(err);
}

}  // namespace specact
