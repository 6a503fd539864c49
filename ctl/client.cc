#include "client.h"

#include <chrono>

namespace specactctl {

namespace {
constexpr const char* kName = "org.specact.Daemon1";
constexpr const char* kPath = "/org/specact/Daemon1";
}  // namespace

Daemon1Proxy::Daemon1Proxy(sdbus::IConnection& conn, const std::string& name)
    : ProxyInterfaces(conn, name, kPath) {
  registerProxy();
}

Daemon1Proxy::~Daemon1Proxy() { unregisterProxy(); }

void Daemon1Proxy::onWindowMeasured(const uint64_t& index, const double& p95_us,
                                    const std::string& window_json) {
  if (window_cb) window_cb(index, p95_us, window_json);
}

void Daemon1Proxy::onEngineEvent(const uint64_t& seq, const std::string& type,
                                 const std::string& event_json) {
  if (event_cb) event_cb(seq, type, event_json);
}

Client::Client(const std::string& address, bool require_daemon) {
  try {
    conn_ = address.empty() ? sdbus::createSystemBusConnection()
                            : sdbus::createSessionBusConnectionWithAddress(address);
  } catch (const sdbus::Error& e) {
    throw CtlError(kNotRunning,
                   "cannot connect to the " +
                       (address.empty() ? std::string("system bus") : "bus at " + address) + " (" +
                       e.getMessage() + "); is dbus running?");
  }
  // A stuck daemon must not hang scripts forever.
  conn_->setMethodCallTimeout(std::chrono::seconds(10));
  bus_ = sdbus::createProxy(*conn_, "org.freedesktop.DBus", "/org/freedesktop/DBus");
  bus_->finishRegistration();
  daemon_ = std::make_unique<Daemon1Proxy>(*conn_, kName);
  // Checked up front, so a missing daemon is "not running" rather than a bus
  // activation attempt or a generic ServiceUnknown error.
  if (require_daemon && !daemon_present())
    throw CtlError(kNotRunning, std::string("specactd is not running (no owner for ") + kName +
                                    " on the bus); " + kStartHint);
}

Client::~Client() {
  daemon_.reset();
  bus_.reset();
}

bool Client::daemon_present() {
  bool has = false;
  try {
    bus_->callMethod("NameHasOwner")
        .onInterface("org.freedesktop.DBus")
        .withArguments(std::string(kName))
        .storeResultsTo(has);
  } catch (const sdbus::Error& e) {
    throw map_error(e, "reach the bus");
  }
  return has;
}

void Client::on_owner_changed(std::function<void(const std::string&, const std::string&)> cb) {
  bus_->uponSignal("NameOwnerChanged")
      .onInterface("org.freedesktop.DBus")
      .call([cb](const std::string& name, const std::string& old_owner,
                 const std::string& new_owner) {
        if (name == kName) cb(old_owner, new_owner);
      });
  bus_->finishRegistration();
}

CtlError map_error(const sdbus::Error& e, const std::string& action) {
  const std::string& n = e.getName();
  std::string msg = e.getMessage();
  if (n == "org.freedesktop.DBus.Error.ServiceUnknown" ||
      n == "org.freedesktop.DBus.Error.NameHasNoOwner")
    return CtlError(kNotRunning, std::string("specactd is not running; ") + kStartHint);
  if (n == "org.freedesktop.DBus.Error.AccessDenied")
    return CtlError(kDaemonError,
                    "permission denied: only root or members of the group "
                    "'specact' may " +
                        action + " (try sudo)");
  if (n == "org.freedesktop.DBus.Error.NoReply" || n == "org.freedesktop.DBus.Error.Timeout" ||
      n == "org.freedesktop.DBus.Error.TimedOut")
    return CtlError(kDaemonError, "specactd did not answer in time (" + action + ")");
  if (n == "org.freedesktop.DBus.Error.Disconnected" || n == "org.freedesktop.DBus.Error.NoServer")
    return CtlError(kNotRunning, "lost the connection to the bus; " + std::string(kStartHint));
  std::string prefix = "org.specact.Error.";
  if (n.rfind(prefix, 0) == 0) {
    std::string kind = n.substr(prefix.size());
    return CtlError(kDaemonError, "cannot " + action + ": " + msg + " [" + kind + "]");
  }
  return CtlError(kDaemonError,
                  "cannot " + action + ": " + (msg.empty() ? n : msg + " (" + n + ")"));
}

nlohmann::json parse_reply(const std::string& text, const char* what) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded())
    throw CtlError(kDaemonError, std::string("malformed ") + what + " reply from specactd");
  return j;
}

}  // namespace specactctl
