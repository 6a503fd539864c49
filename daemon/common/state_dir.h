// The daemon's state directory (/var/lib/specactd: the knobs journal, its
// lock, history.jsonl), opened so that it cannot be turned against root.
//
// Root writes these files. If someone else could put a symlink or a hard link
// in the directory, root would truncate, append to or overwrite whatever it
// points at. So:
//  - the directory must be owned by root (or the daemon's euid) and not be
//    writable by group or others, and so must every existing ancestor unless
//    it is sticky (like /tmp); it is created 0700 when missing (missing parents
//    0755); modes of existing directories are never changed;
//  - every file is opened with openat() relative to the directory's fd, with
//    O_NOFOLLOW | O_CLOEXEC, and refused unless it is a regular file with one
//    link (O_NONBLOCK while checking, so a planted FIFO cannot hang us);
//  - replacing a file is atomic: a temp opened O_EXCL | O_NOFOLLOW, write,
//    fsync, renameat(), fsync of the directory;
//  - setting a file aside never overwrites an earlier one.
#pragma once

#include <sys/types.h>

#include <ctime>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace specact {

class StateDirError : public std::runtime_error {
 public:
  StateDirError(const std::string& what, int err) : std::runtime_error(what), err_(err) {}
  // errno behind the refusal when there is one (ENOENT: missing and not created;
  // EPERM: unsafe ownership or mode).
  int error_code() const { return err_; }

 private:
  int err_;
};

class StateDir {
 public:
  // Opens the state directory at the absolute `path`, creating it (and missing
  // parents) when `create`. Throws StateDirError whose message names the path
  // and says what is wrong and how to fix it.
  static StateDir open(const std::string& path, bool create = true);

  StateDir(StateDir&& o) noexcept;
  StateDir& operator=(StateDir&& o) noexcept;
  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;
  ~StateDir();

  const std::string& path() const { return path_; }
  int fd() const { return fd_; }
  std::string path_of(std::string_view name) const { return path_ + "/" + std::string(name); }

  // Every `name` below is a plain file name inside the directory (no '/').

  // openat(name, flags | O_NOFOLLOW | O_CLOEXEC, mode): the fd (the caller
  // closes it), or -errno: -ELOOP for a symlink, -EINVAL for anything but a
  // regular file, -EMLINK for a file with other hard links. O_TRUNC is done
  // only after those checks.
  int open_file(std::string_view name, int flags, mode_t mode = 0600) const;
  // For an append-only log such as history.jsonl: O_WRONLY | O_APPEND |
  // O_CREAT (0600), same checks and return value as open_file.
  int open_append(std::string_view name) const;
  // Reads a whole file (at most max_bytes, else EFBIG). 0 or an errno.
  int read(std::string_view name, std::string* out, size_t max_bytes = 64u << 20) const;
  // Atomically replaces (or creates) `name` with `data`, durably. 0 or an errno;
  // on error the old file is intact.
  int replace(std::string_view name, std::string_view data) const;
  // Removes `name` (the entry itself, never what a link points at) and syncs
  // the directory. 0, ENOENT or another errno.
  int remove(std::string_view name) const;
  // Renames `name` to "<name>.<label>-<UTC time>", or "...-2", "-3", ... when
  // that exists: never overwrites. *new_name gets the name chosen. 0 or an errno.
  int set_aside(std::string_view name, std::string_view label, std::string* new_name,
                time_t now = time(nullptr)) const;
  // Names of the entries in the directory (not "." and ".."), sorted.
  std::vector<std::string> list() const;
  // fsync of the directory. 0 or an errno.
  int sync() const;

  // "is a symbolic link (refused: ...)" for the errors above, strerror otherwise.
  static std::string describe(int err);
  // "<path>/<name>: <describe(err)>".
  std::string error(std::string_view name, int err) const;

 private:
  StateDir(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

}  // namespace specact
