// A private dbus-daemon with system-bus default policy plus the project's real
// policy file, a server thread running the D-Bus service on an Asio loop, and
// a helper to run specactctl (optionally as another user) with a timeout.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dbus/dbus_service.h"
#include "fake_surface.h"

namespace specact::testing {

class PrivateBus {
  static void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
      s.replace(at, from.size(), to);
  }

 public:
  PrivateBus() {
    char tmpl[] = "/tmp/specact-dbus-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    // The unprivileged client must reach the socket.
    chmod(dir_.c_str(), 0755);
    std::string conf = dir_ + "/bus.conf";
    // The template the demo and the benchmarks use too.
    std::ifstream in(SPECACT_PRIVATE_BUS_TEMPLATE);
    std::stringstream tpl;
    tpl << in.rdbuf();
    std::string text = tpl.str();
    if (text.empty()) throw std::runtime_error("cannot read " SPECACT_PRIVATE_BUS_TEMPLATE);
    replace_all(text, "@SOCKET@", dir_ + "/system_bus_socket");
    replace_all(text, "@POLICY@", SPECACT_POLICY_FILE);
    std::ofstream(conf) << text;
    conf_ = conf;
    spawn();
    // Without the server guid, so clients (and the service) can reconnect to a
    // restarted daemon at the same path.
    address_ = "unix:path=" + dir_ + "/system_bus_socket";
  }
  // Kills the bus and starts a new one at the same socket path.
  void restart() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    unlink((dir_ + "/system_bus_socket").c_str());
    spawn();
  }
  void spawn() {
    const std::string& conf = conf_;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 3);
      // The socket must be connectable by every user, like /run/dbus/system_bus_socket.
      umask(0);
      // Dies with the test process even if a test crashes.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      execlp("dbus-daemon", "dbus-daemon", "--nofork", "--nosyslog",
             ("--config-file=" + conf).c_str(), "--print-address=3", nullptr);
      _exit(127);
    }
    close(fds[1]);
    std::string out;
    char buf[256];
    pollfd p{fds[0], POLLIN, 0};
    while (out.find('\n') == std::string::npos && poll(&p, 1, 10000) > 0) {
      ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    close(fds[0]);
    if (out.find('\n') == std::string::npos) throw std::runtime_error("dbus-daemon did not start");
  }
  ~PrivateBus() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }

 private:
  std::string dir_;
  std::string conf_;
  std::string address_;
  pid_t pid_ = -1;
};

// The daemon side: an io_context on its own thread, like specactd's loop.
class ServerThread {
 public:
  explicit ServerThread(const std::string& address) : address_(address), work_(io_.get_executor()) {
    thread_ = std::thread([this] { io_.run(); });
    start_service();
  }
  ~ServerThread() {
    stop_service();
    work_.reset();
    io_.stop();
    thread_.join();
  }
  void start_service() {
    run([this] {
      DbusOptions o;
      o.bus_address = address_;
      o.version = "1.2.3-test";
      service_ = start_dbus_service(surface, io_, o);
    });
  }
  void stop_service() {
    run([this] { service_.reset(); });
  }
  // Runs f on the loop thread and waits for it.
  void run(std::function<void()> f) {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      try {
        f();
        done.set_value();
      } catch (...) {
        done.set_exception(std::current_exception());
      }
    });
    done.get_future().get();
  }
  boost::asio::io_context& io() { return io_; }

  FakeSurface surface;

 private:
  std::string address_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<DbusService> service_;
};

struct ProcessResult {
  int exit_code = -1;  // -1: killed (timeout)
  std::string out;
  std::string err;
};

// Runs argv with extra environment, optionally as `uid` (nobody), killing it
// after `timeout`. While it runs, `tick` is called every ~50 ms.
inline ProcessResult run_process(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env,
                                 std::optional<uid_t> uid = std::nullopt,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(20),
                                 std::function<void()> tick = nullptr) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> envs = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"};
  envs.insert(envs.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (uid) {
      if (setgroups(0, nullptr) != 0 || setresgid(*uid, *uid, *uid) != 0 ||
          setresuid(*uid, *uid, *uid) != 0)
        _exit(126);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  ProcessResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      break;
    }
    pollfd p[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
    poll(p, 2, 50);
    char buf[4096];
    if (p[0].revents) {
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0)
        out_open = false;
      else
        r.out.append(buf, static_cast<size_t>(n));
    }
    if (p[1].revents) {
      ssize_t n = read(err[0], buf, sizeof buf);
      if (n <= 0)
        err_open = false;
      else
        r.err.append(buf, static_cast<size_t>(n));
    }
    if (tick) tick();
  }
  close(out[0]);
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace specact::testing
