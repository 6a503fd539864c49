// specactctl's side of the bus: connection, the generated proxy, and the
// mapping from bus errors to exit codes and one-line messages.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "specact_daemon1_proxy.h"

namespace specactctl {

enum Exit { kOk = 0, kDaemonError = 1, kUsage = 2, kNotRunning = 3 };

// A failure with the exit code it maps to and a message for people.
class CtlError : public std::runtime_error {
 public:
  CtlError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

class Daemon1Proxy final
    : public sdbus::ProxyInterfaces<org::specact::Daemon1_proxy, sdbus::Properties_proxy> {
 public:
  Daemon1Proxy(sdbus::IConnection& conn, const std::string& name);
  ~Daemon1Proxy();

  std::function<void(uint64_t, double, const std::string&)> window_cb;
  std::function<void(uint64_t, const std::string&, const std::string&)> event_cb;

 private:
  void onWindowMeasured(const uint64_t& index, const double& p95_us,
                        const std::string& window_json) override;
  void onEngineEvent(const uint64_t& seq, const std::string& type,
                     const std::string& event_json) override;
  void onPropertiesChanged(const std::string&, const std::map<std::string, sdbus::Variant>&,
                           const std::vector<std::string>&) override {}
};

class Client {
 public:
  // address "" = the system bus (DBUS_SYSTEM_BUS_ADDRESS honoured).
  // Throws CtlError(kNotRunning) when the bus or the daemon is not there.
  explicit Client(const std::string& address, bool require_daemon = true);
  ~Client();

  Daemon1Proxy& daemon() { return *daemon_; }
  sdbus::IConnection& connection() { return *conn_; }
  bool daemon_present();
  // Called with (name, old_owner, new_owner) for org.specact.Daemon1.
  void on_owner_changed(std::function<void(const std::string&, const std::string&)> cb);

 private:
  std::unique_ptr<sdbus::IConnection> conn_;
  std::unique_ptr<sdbus::IProxy> bus_;
  std::unique_ptr<Daemon1Proxy> daemon_;
};

// Maps a bus error from `action` ("start", "status", ...) to a CtlError.
CtlError map_error(const sdbus::Error& e, const std::string& action);

// Runs one call on the daemon; a bus error becomes map_error(e, action).
template <typename F>
auto call(const std::string& action, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const sdbus::Error& e) {
    throw map_error(e, action);
  }
}

// A JSON reply of the daemon (`what`: "status", "knobs", ...); a reply that is
// not JSON is CtlError(kDaemonError).
nlohmann::json parse_reply(const std::string& text, const char* what);

inline constexpr const char* kStartHint = "hint: systemctl start specactd";

}  // namespace specactctl
