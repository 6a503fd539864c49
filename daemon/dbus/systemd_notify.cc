#include "dbus/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>

#include "common/log.h"

namespace specact {

SystemdNotifier::SystemdNotifier(boost::asio::io_context& io)
    : io_(io), watchdog_timer_(io), alive_(std::make_shared<bool>(true)) {
  const char* sock = std::getenv("NOTIFY_SOCKET");
  enabled_ = sock && *sock;
  uint64_t usec = 0;
  // Checks WATCHDOG_PID too, so a child of the service does not ping for it.
  if (enabled_ && sd_watchdog_enabled(/*unset_environment=*/0, &usec) > 0 && usec > 0)
    watchdog_interval_ = std::chrono::microseconds(usec / 2);
}

SystemdNotifier::~SystemdNotifier() {
  *alive_ = false;
  watchdog_timer_.cancel();
}

void SystemdNotifier::ready(const std::string& status) {
  if (!enabled_) return;
  std::string msg = "READY=1";
  if (!status.empty()) msg += "\nSTATUS=" + status;
  int r = sd_notify(0, msg.c_str());
  if (r < 0) log::warn("sd_notify(READY=1) failed: error " + std::to_string(-r));
  if (watchdog_interval_) arm_watchdog();
}

void SystemdNotifier::status(const std::string& text) {
  if (!enabled_) return;
  sd_notify(0, ("STATUS=" + text).c_str());
}

void SystemdNotifier::stopping() {
  if (!enabled_) return;
  watchdog_timer_.cancel();
  sd_notify(0, "STOPPING=1");
}

// The ping runs as an ordinary handler on the daemon's loop, so a loop that is
// stuck (a blocking call, a runaway handler) misses pings and systemd restarts it.
void SystemdNotifier::arm_watchdog() {
  watchdog_timer_.expires_after(*watchdog_interval_);
  watchdog_timer_.async_wait(
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired() || !*alive.lock()) return;
        sd_notify(0, "WATCHDOG=1");
        arm_watchdog();
      });
}

}  // namespace specact
