// sd_notify for the daemon: READY=1 once serving, STATUS=... as it works,
// STOPPING=1 on shutdown, and WATCHDOG=1 pings on the Asio loop at half of
// WATCHDOG_USEC (so a stuck loop is what stops the pings). Every call is a
// no-op when not started by systemd (no NOTIFY_SOCKET).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace specact {

class SystemdNotifier {
 public:
  explicit SystemdNotifier(boost::asio::io_context& io);
  ~SystemdNotifier();

  // True when NOTIFY_SOCKET is set (started by systemd with Type=notify).
  bool enabled() const { return enabled_; }
  void ready(const std::string& status = "");  // READY=1 (+ STATUS), starts the watchdog
  void status(const std::string& text);        // STATUS=text
  void stopping();                             // STOPPING=1, stops the watchdog
  // Half of WATCHDOG_USEC when the watchdog is on for this process.
  std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_interval_; }

 private:
  void arm_watchdog();

  boost::asio::io_context& io_;
  bool enabled_ = false;
  std::optional<std::chrono::microseconds> watchdog_interval_;
  boost::asio::steady_timer watchdog_timer_;
  std::shared_ptr<bool> alive_;
};

}  // namespace specact
