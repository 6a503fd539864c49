#include "observe/textfile_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace specact::observe {

namespace {

std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    if (slash > at) out.push_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return out;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

}  // namespace

std::string check_textfile_path(const std::string& path) {
  if (path.empty() || path[0] != '/') return "must be an absolute path";
  if (path.back() == '/') return "names a directory; give the file, e.g. .../specact.prom";
  for (const auto& c : components(path))
    if (c == "." || c == "..") return "must not contain . or .. components";
  const std::string name = path.substr(path.rfind('/') + 1);
  if (name.size() <= 5 || name.compare(name.size() - 5, 5, ".prom") != 0)
    return "must end in .prom (node_exporter's textfile collector reads only *.prom files)";
  if (name[0] == '.') return "must not be a hidden file (name starting with '.')";
  return "";
}

TextfileWriter::TextfileWriter(std::string path) : path_(std::move(path)) {
  const size_t slash = path_.rfind('/');
  dir_ = slash == 0 ? "/" : path_.substr(0, slash);
  name_ = path_.substr(slash + 1);
  // Hidden and not *.prom: node_exporter ignores it while it is being written.
  temp_name_ = "." + name_ + "." + std::to_string(::getpid()) + ".tmp";
}

int TextfileWriter::open_dir() const {
  int fd = ::open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  for (const auto& c : components(dir_)) {
    const int next = ::openat(fd, c.c_str(), O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    const int err = errno;
    ::close(fd);
    if (next < 0) return -err;
    fd = next;
  }
  return fd;
}

std::string TextfileWriter::write(std::string_view text) const {
  const int dfd = open_dir();
  if (dfd < 0)
    return dir_ + ": " +
           (-dfd == ELOOP || -dfd == ENOTDIR
                ? std::string("a component is a symbolic link or not a directory (symbolic links "
                              "are refused)")
                : std::string(std::strerror(-dfd)));
  Fd dir(dfd);
  // A temp left by a crash of this pid's predecessor goes; a planted one too
  // (unlinkat removes the entry itself, whatever it points at).
  ::unlinkat(dir.get(), temp_name_.c_str(), 0);
  Fd out(::openat(dir.get(), temp_name_.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (out.get() < 0) return dir_ + "/" + temp_name_ + ": " + std::strerror(errno);
  auto fail = [&](const char* what) {
    std::string why = dir_ + "/" + temp_name_ + ": " + what + ": " + std::strerror(errno);
    ::unlinkat(dir.get(), temp_name_.c_str(), 0);
    return why;
  };
  // The service's UMask=0077 would hide it from node_exporter's user.
  if (::fchmod(out.get(), 0644) != 0) return fail("fchmod");
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(out.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      return fail("write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(out.get()) != 0) return fail("fsync");
  if (::close(out.release()) != 0) return fail("close");
  if (::renameat(dir.get(), temp_name_.c_str(), dir.get(), name_.c_str()) != 0)
    return fail(("rename to " + name_).c_str());
  return "";
}

std::string TextfileWriter::remove() const {
  const int dfd = open_dir();
  if (dfd == -ENOENT) return "";
  if (dfd < 0) return dir_ + ": " + std::strerror(-dfd);
  Fd dir(dfd);
  ::unlinkat(dir.get(), temp_name_.c_str(), 0);
  if (::unlinkat(dir.get(), name_.c_str(), 0) != 0 && errno != ENOENT)
    return path_ + ": " + std::strerror(errno);
  return "";
}

}  // namespace specact::observe
