// Child processes for tests: started with fork/exec, stdout captured through a
// pipe, always stopped by pid (SIGTERM then SIGKILL) when the handle goes away.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

namespace specact::testing {

class Subprocess {
 public:
  // argv[0] is the program path. stdout (and stderr when merge_stderr) is captured.
  explicit Subprocess(const std::vector<std::string>& argv, bool merge_stderr = false) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(merge_stderr ? out[1] : err[1], STDERR_FILENO);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
  }
  ~Subprocess() {
    stop();
    if (out_fd_ >= 0) close(out_fd_);
    if (err_fd_ >= 0) close(err_fd_);
  }
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !exited_; }

  // Reads one line of stdout, waiting up to timeout_ms. False on EOF/timeout.
  bool read_line(std::string& line, int timeout_ms) {
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return true;
      }
      if (!fill(out_fd_, buf_, timeout_ms)) return false;
    }
  }
  // Waits for exit up to timeout_ms; returns the exit code (128+sig if signalled), or -1.
  int wait(int timeout_ms) {
    if (exited_) return code_;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
      int status;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return code_;
      }
      timespec ts{0, 10'000'000};
      nanosleep(&ts, nullptr);
    }
    return -1;
  }
  void signal(int sig) {
    if (running()) kill(pid_, sig);
  }
  void stop() {
    if (!running()) return;
    kill(pid_, SIGTERM);
    if (wait(3000) < 0) {
      kill(pid_, SIGKILL);
      wait(5000);
    }
  }
  // Everything left on stdout / stderr (after exit).
  std::string drain_stdout() { return drain(out_fd_, buf_); }
  std::string drain_stderr() { return drain(err_fd_, err_buf_); }

 private:
  static bool fill(int fd, std::string& buf, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, timeout_ms);
    if (n <= 0) return false;
    char tmp[4096];
    ssize_t got = read(fd, tmp, sizeof tmp);
    if (got <= 0) return false;
    buf.append(tmp, static_cast<size_t>(got));
    return true;
  }
  static std::string drain(int fd, std::string& buf) {
    while (fill(fd, buf, 200)) {
    }
    std::string out;
    out.swap(buf);
    return out;
  }

  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  std::string buf_, err_buf_;
  bool exited_ = false;
  int code_ = -1;
};

// Runs a shell command, returns its exit status (-1 if it did not exit) and
// its standard output in *out.
inline int run_shell(const std::string& cmd, std::string* out) {
  out->clear();
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace specact::testing
