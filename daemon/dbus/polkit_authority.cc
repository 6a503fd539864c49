#include "dbus/polkit_authority.h"

#include <sdbus-c++/Error.h>
#include <systemd/sd-bus.h>

#include <cstring>
#include <utility>

#include "common/log.h"

namespace specact {
namespace {

constexpr const char* kPolkitName = "org.freedesktop.PolicyKit1";
constexpr const char* kPolkitPath = "/org/freedesktop/PolicyKit1/Authority";
constexpr const char* kPolkitInterface = "org.freedesktop.PolicyKit1.Authority";

struct BusCloser {
  void operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }
};
struct MessageUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
struct CredsUnref {
  void operator()(sd_bus_creds* c) const { sd_bus_creds_unref(c); }
};
using BusPtr = std::unique_ptr<sd_bus, BusCloser>;
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;

std::string errno_text(int r) { return std::string(strerror(-r)); }

// A connection of its own: the check is a blocking call, and the service's
// connection is being dispatched (we are inside one of its callbacks).
int open_bus(const std::string& address, BusPtr* out) {
  sd_bus* b = nullptr;
  int r;
  if (address.empty()) {
    r = sd_bus_open_system(&b);
  } else {
    r = sd_bus_new(&b);
    if (r >= 0) r = sd_bus_set_address(b, address.c_str());
    if (r >= 0) r = sd_bus_set_bus_client(b, 1);
    if (r >= 0) r = sd_bus_start(b);
  }
  if (r < 0) {
    if (b) sd_bus_unref(b);
    return r;
  }
  out->reset(b);
  return 0;
}

}  // namespace

PolkitAuthority::PolkitAuthority(Options options) : options_(std::move(options)) {}

const char* PolkitAuthority::verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kAllowed:
      return "allowed";
    case Verdict::kDenied:
      return "denied";
    case Verdict::kNoPolkit:
      return "no-polkit";
    case Verdict::kRoot:
      return "root";
    case Verdict::kError:
      return "error";
  }
  return "?";
}

PolkitAuthority::Decision PolkitAuthority::check(const std::string& sender,
                                                 const std::string& action) {
  if (sender.empty()) return {Verdict::kError, "no sender on the message"};
  BusPtr bus;
  int r = open_bus(options_.bus_address, &bus);
  if (r < 0) return {Verdict::kError, "cannot connect to the bus: " + errno_text(r)};
  sd_bus_set_method_call_timeout(bus.get(), options_.timeout_usec);

  if (options_.trust_root) {
    sd_bus_creds* raw = nullptr;
    uid_t euid = 0;
    r = sd_bus_get_name_creds(bus.get(), sender.c_str(), SD_BUS_CREDS_EUID, &raw);
    std::unique_ptr<sd_bus_creds, CredsUnref> creds(raw);
    if (r >= 0 && sd_bus_creds_get_euid(creds.get(), &euid) >= 0 && euid == 0)
      return {Verdict::kRoot, "caller is root"};
  }

  sd_bus_message* raw_call = nullptr;
  r = sd_bus_message_new_method_call(bus.get(), &raw_call, kPolkitName, kPolkitPath,
                                     kPolkitInterface, "CheckAuthorization");
  MessagePtr call(raw_call);
  // CheckAuthorization(subject (sa{sv}), action_id s, details a{ss}, flags u,
  // cancellation_id s): the subject is the caller's unique bus name, which
  // polkit resolves to its process and user itself (no pid reuse race).
  if (r >= 0)
    r = sd_bus_message_append(call.get(), "(sa{sv})s", "system-bus-name", 1, "name", "s",
                              sender.c_str(), action.c_str());
  // Flags 0: no interactive authentication; the daemon has nobody to ask.
  if (r >= 0) r = sd_bus_message_append(call.get(), "a{ss}us", 0, 0u, "");
  if (r < 0) return {Verdict::kError, "cannot build the polkit call: " + errno_text(r)};

  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* raw_reply = nullptr;
  r = sd_bus_call(bus.get(), call.get(), 0, &error, &raw_reply);
  MessagePtr reply(raw_reply);
  if (r < 0) {
    Decision d;
    if (sd_bus_error_has_names(&error, "org.freedesktop.DBus.Error.ServiceUnknown",
                               "org.freedesktop.DBus.Error.NameHasNoOwner")) {
      d = {Verdict::kNoPolkit, "polkit is not on the bus"};
    } else {
      d = {Verdict::kError, std::string("polkit CheckAuthorization failed: ") +
                                (error.message ? error.message : errno_text(r))};
    }
    sd_bus_error_free(&error);
    return d;
  }
  int authorized = 0, challenge = 0;
  r = sd_bus_message_enter_container(reply.get(), 'r', "bba{ss}");
  if (r >= 0) r = sd_bus_message_read(reply.get(), "bb", &authorized, &challenge);
  if (r < 0) return {Verdict::kError, "malformed polkit reply: " + errno_text(r)};
  if (authorized) return {Verdict::kAllowed, "polkit: authorized for " + action};
  return {Verdict::kDenied, std::string("polkit: not authorized for ") + action +
                                (challenge ? " (would need authentication)" : "")};
}

namespace {

class PolkitSurface final : public ControlSurface {
 public:
  PolkitSurface(ControlSurface& inner, std::shared_ptr<PolkitAuthority> authority,
                std::function<std::string()> current_sender)
      : inner_(inner), authority_(std::move(authority)), sender_(std::move(current_sender)) {}

  StatusSnapshot status() override { return inner_.status(); }
  std::vector<KnobInfo> list_knobs() override { return inner_.list_knobs(); }
  std::vector<HistoryEvent> history(uint64_t since) override { return inner_.history(since); }

  void start() override {
    authorize("Start");
    inner_.start();
  }
  void stop() override {
    authorize("Stop");
    inner_.stop();
  }
  void pause() override {
    authorize("Pause");
    inner_.pause();
  }
  void resume() override {
    authorize("Resume");
    inner_.resume();
  }
  void set_mode(const std::string& m) override {
    authorize("SetMode");
    inner_.set_mode(m);
  }
  void set_target(const nlohmann::json& t) override {
    authorize("SetTarget");
    inner_.set_target(t);
  }
  void revert() override {
    authorize("Revert");
    inner_.revert();
  }
  void pin(const std::string& k, int64_t v) override {
    authorize("Pin");
    inner_.pin(k, v);
  }
  void unpin(const std::string& k) override {
    authorize("Unpin");
    inner_.unpin(k);
  }
  void reset(const std::vector<std::string>& settings) override {
    authorize("Reset");
    inner_.reset(settings);
  }

 private:
  void authorize(const char* method) {
    const std::string sender = sender_ ? sender_() : std::string();
    auto d = authority_->check(sender, kPolkitManageAction);
    if (d.allowed()) return;
    log::warn(std::string("D-Bus ") + method + " from " + (sender.empty() ? "?" : sender) +
              " refused: " + d.detail);
    throw sdbus::Error("org.freedesktop.DBus.Error.AccessDenied",
                       d.detail + " (polkit action " + kPolkitManageAction +
                           ": root and the group \"specact\" are allowed by default)");
  }

  ControlSurface& inner_;
  std::shared_ptr<PolkitAuthority> authority_;
  std::function<std::string()> sender_;
};

}  // namespace

std::unique_ptr<ControlSurface> make_polkit_surface(ControlSurface& inner,
                                                    std::shared_ptr<PolkitAuthority> authority,
                                                    std::function<std::string()> current_sender) {
  return std::make_unique<PolkitSurface>(inner, std::move(authority), std::move(current_sender));
}

}  // namespace specact
