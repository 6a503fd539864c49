#include "dbus/dbus_service.h"

#include <poll.h>
#include <sdbus-c++/sdbus-c++.h>
#include <time.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>

#include "common/log.h"
#include "dbus/arguments.h"
#include "dbus/polkit_authority.h"
#include "dbus/status_json.h"
#include "specact_daemon1_adaptor.h"

namespace specact {
namespace {

namespace asio = boost::asio;
using nlohmann::json;

using UsageTuple = sdbus::Struct<uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, double>;

// Runs a method body and turns every failure into a named D-Bus error; an
// exception must never unwind through sd-bus' C callbacks.
template <typename F>
auto guarded(const char* what, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const ControlError& e) {
    throw sdbus::Error(std::string(kDbusErrorPrefix) + e.name(), e.what());
  } catch (const sdbus::Error&) {
    throw;
  } catch (const std::exception& e) {
    log::warn(std::string("D-Bus ") + what + " failed: " + e.what());
    throw sdbus::Error(std::string(kDbusErrorPrefix) + "Failed", e.what());
  } catch (...) {
    throw sdbus::Error(std::string(kDbusErrorPrefix) + "Failed", "internal error");
  }
}

// The org.specact.Daemon1 object. Every call runs on the Asio loop thread (the
// only thread that processes the connection) and calls the surface directly:
// the surface's commands are quick state changes, so nothing here waits.
class Daemon1Object final
    : public sdbus::AdaptorInterfaces<org::specact::Daemon1_adaptor, sdbus::Properties_adaptor> {
 public:
  Daemon1Object(sdbus::IConnection& conn, ControlSurface& surface, std::string version,
                std::function<void()> after_change)
      : AdaptorInterfaces(conn, kDbusPath),
        surface_(surface),
        version_(std::move(version)),
        after_change_(std::move(after_change)) {
    registerAdaptor();
  }
  ~Daemon1Object() { unregisterAdaptor(); }

  // Drops the cached snapshot so the next getter sees fresh state. Getters of
  // one GetAll (or one PropertiesChanged) share a snapshot: one status() call.
  void invalidate() { snapshot_.reset(); }

  const StatusSnapshot& snap() {
    if (!snapshot_) snapshot_ = surface_.status();
    return *snapshot_;
  }

  // The property values PropertiesChanged covers, to diff against the last
  // emitted ones (UptimeSec and Version are excluded by design).
  std::map<std::string, json> observable() {
    const auto& s = snap();
    std::map<std::string, json> m;
    m["State"] = s.state;
    m["Mode"] = s.mode;
    m["Target"] = s.target;
    m["CurrentConfig"] = config_to_json(s.current);
    m["ConfirmedConfig"] = config_to_json(s.confirmed);
    m["BaselineConfig"] = config_to_json(s.baseline);
    m["PinnedKnobs"] = s.pinned;
    m["LastWindow"] = s.last_window;
    m["BaselineP95Us"] = s.baseline_p95_us;
    m["HitRate"] = s.hit_rate;
    m["Windows"] = s.windows;
    m["Usage"] = {role_usage_to_json(s.speculator), role_usage_to_json(s.actor)};
    return m;
  }

  void emit_changed_properties() {
    invalidate();
    auto now = observable();
    std::vector<std::string> changed;
    for (const auto& [name, value] : now) {
      auto it = last_emitted_.find(name);
      if (it == last_emitted_.end() || it->second != value) changed.push_back(name);
    }
    last_emitted_ = std::move(now);
    if (!changed.empty()) emitPropertiesChangedSignal(kDbusInterface, changed);
  }

  void remember_properties() {
    invalidate();
    last_emitted_ = observable();
  }

  // Unique name of the caller being served (for the polkit check), or "".
  std::string current_sender() {
    const auto* msg = getObject().getCurrentlyProcessedMessage();
    return msg ? msg->getSender() : std::string();
  }

 private:
  void mutated(const char* what, const std::string& detail = "") {
    const auto* msg = getObject().getCurrentlyProcessedMessage();
    log::info(std::string("D-Bus ") + what + (detail.empty() ? "" : " " + detail) +
              (msg ? " from " + msg->getSender() : ""));
    after_change_();
  }

  // Methods.
  void Start() override {
    guarded("Start", [&] { surface_.start(); });
    mutated("Start");
  }
  void Stop() override {
    guarded("Stop", [&] { surface_.stop(); });
    mutated("Stop");
  }
  void Pause() override {
    guarded("Pause", [&] { surface_.pause(); });
    mutated("Pause");
  }
  void Resume() override {
    guarded("Resume", [&] { surface_.resume(); });
    mutated("Resume");
  }
  void SetMode(const std::string& mode) override {
    guarded("SetMode", [&] {
      check_string_argument("mode", mode, kMaxDbusNameArg);
      surface_.set_mode(mode);
    });
    mutated("SetMode", mode);
  }
  void SetTarget(const std::string& target_json) override {
    std::string normalised;
    guarded("SetTarget", [&] {
      json j = parse_target_argument(target_json);
      normalised = j.dump();
      surface_.set_target(j);
    });
    // Bounded in the log: a pids list can be long.
    mutated("SetTarget", normalised.size() > 200 ? normalised.substr(0, 200) + "..." : normalised);
  }
  void Revert() override {
    guarded("Revert", [&] { surface_.revert(); });
    mutated("Revert");
  }
  void Pin(const std::string& knob, const int64_t& value) override {
    guarded("Pin", [&] {
      check_string_argument("knob", knob, kMaxDbusNameArg);
      surface_.pin(knob, value);
    });
    mutated("Pin", knob + "=" + std::to_string(value));
  }
  void Unpin(const std::string& knob) override {
    guarded("Unpin", [&] {
      check_string_argument("knob", knob, kMaxDbusNameArg);
      surface_.unpin(knob);
    });
    mutated("Unpin", knob);
  }
  void Reset(const std::vector<std::string>& settings) override {
    guarded("Reset", [&] {
      if (settings.size() > kMaxResetNames)
        throw ControlError("InvalidArgument",
                           "Reset takes at most " + std::to_string(kMaxResetNames) + " names");
      for (const auto& name : settings) check_string_argument("setting", name, kMaxDbusNameArg);
      surface_.reset(settings);
    });
    std::string names;
    for (const auto& n : settings) names += (names.empty() ? "" : ",") + n.substr(0, 32);
    mutated("Reset", names.empty() ? "(all)" : names);
  }
  std::string GetStatus() override {
    return guarded("GetStatus", [&] {
      invalidate();
      return status_to_json(snap(), version_).dump();
    });
  }
  std::string ListKnobs() override {
    return guarded("ListKnobs", [&] { return knobs_to_json(surface_.list_knobs()).dump(); });
  }
  std::string GetHistory(const uint64_t& since, const uint32_t& limit) override {
    return guarded("GetHistory",
                   [&] { return history_to_json(surface_.history(since), since, limit).dump(); });
  }

  // Properties.
  std::string Version() override { return version_; }
  std::string State() override {
    return guarded("State", [&] { return snap().state; });
  }
  std::string Mode() override {
    return guarded("Mode", [&] { return snap().mode; });
  }
  std::string Target() override {
    return guarded("Target", [&] { return snap().target.dump(); });
  }
  std::map<std::string, int64_t> CurrentConfig() override {
    return guarded("CurrentConfig", [&] { return to_map(snap().current); });
  }
  std::map<std::string, int64_t> ConfirmedConfig() override {
    return guarded("ConfirmedConfig", [&] { return to_map(snap().confirmed); });
  }
  std::map<std::string, int64_t> BaselineConfig() override {
    return guarded("BaselineConfig", [&] { return to_map(snap().baseline); });
  }
  std::vector<std::string> PinnedKnobs() override {
    return guarded("PinnedKnobs", [&] { return snap().pinned; });
  }
  std::string LastWindow() override {
    return guarded("LastWindow", [&] { return snap().last_window.dump(); });
  }
  double BaselineP95Us() override {
    return guarded("BaselineP95Us", [&] { return snap().baseline_p95_us; });
  }
  double HitRate() override {
    return guarded("HitRate", [&] { return snap().hit_rate; });
  }
  uint64_t Windows() override {
    return guarded("Windows", [&] { return snap().windows; });
  }
  std::map<std::string, UsageTuple> Usage() override {
    return guarded("Usage", [&] {
      auto tuple = [](const RoleUsage& u) {
        return UsageTuple(u.calls, u.prompt_tokens, u.completion_tokens, u.errors, u.rejected,
                          u.cost_usd);
      };
      return std::map<std::string, UsageTuple>{{"speculator", tuple(snap().speculator)},
                                               {"actor", tuple(snap().actor)}};
    });
  }
  double UptimeSec() override {
    // Not cached: it is the one property that moves on its own.
    return guarded("UptimeSec", [&] { return surface_.status().uptime_s; });
  }

  static std::map<std::string, int64_t> to_map(const Config& c) { return {c.begin(), c.end()}; }

  ControlSurface& surface_;
  std::string version_;
  std::function<void()> after_change_;
  std::optional<StatusSnapshot> snapshot_;
  std::map<std::string, json> last_emitted_;
};

uint64_t monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

class DbusServiceImpl final : public DbusService {
 public:
  DbusServiceImpl(ControlSurface& surface, asio::io_context& io, const DbusOptions& options)
      : surface_(surface),
        io_(io),
        options_(options),
        socket_(io),
        timer_(io),
        reconnect_timer_(io),
        alive_(std::make_shared<bool>(true)) {
    // Mutating calls are checked with polkit where it runs (polkit_authority.h).
    polkit_surface_ = make_polkit_surface(
        surface_, std::make_shared<PolkitAuthority>(PolkitAuthority::Options{options.bus_address}),
        [this] { return object_ ? object_->current_sender() : std::string(); });
    connect();
    surface_.on_window = [this](const json& w) { on_window(w); };
    surface_.on_event = [this](const HistoryEvent& e) { on_event(e); };
    surface_.on_status_changed = [this] { on_state_changed(); };
  }

  ~DbusServiceImpl() override { shutdown(); }

  std::string unique_name() const override {
    return conn_ ? conn_->getUniqueName() : std::string();
  }

  void shutdown() override {
    if (stopped_) return;
    stopped_ = true;
    *alive_ = false;
    surface_.on_window = nullptr;
    surface_.on_event = nullptr;
    surface_.on_status_changed = nullptr;
    reconnect_timer_.cancel();
    disconnect(/*release_name=*/true);
  }

 private:
  // Connects, registers the object and owns the name; throws DbusError.
  void connect() {
    const DbusOptions& o = options_;
    try {
      conn_ = o.bus_address.empty() ? sdbus::createSystemBusConnection()
                                    : sdbus::createSessionBusConnectionWithAddress(o.bus_address);
    } catch (const sdbus::Error& e) {
      throw DbusError(
          "cannot connect to the " +
          (o.bus_address.empty() ? std::string("system bus") : "bus at " + o.bus_address) + ": " +
          e.getMessage());
    }
    object_ = std::make_unique<Daemon1Object>(*conn_, *polkit_surface_, o.version,
                                              [this] { on_state_changed(); });
    try {
      conn_->requestName(o.bus_name);
    } catch (const sdbus::Error& e) {
      object_.reset();
      conn_.reset();
      throw DbusError("cannot own the bus name " + o.bus_name +
                      " (is another specactd running, or is the bus policy "
                      "org.specact.Daemon1.conf not installed?): " +
                      e.getMessage());
    }
    name_ = o.bus_name;
    object_->remember_properties();
    // Not owned: sd-bus closes its own socket; release() before it does.
    socket_.assign(conn_->getEventLoopPollData().fd);
    // requestName was a synchronous round trip that may have queued messages.
    post_process();
  }

  void disconnect(bool release_name) {
    ++generation_;  // handlers of the old connection become no-ops
    read_armed_ = write_armed_ = process_posted_ = false;
    boost::system::error_code ec;
    timer_.cancel();
    socket_.cancel(ec);
    if (socket_.is_open()) socket_.release();
    try {
      object_.reset();
      if (release_name && conn_ && !name_.empty()) conn_->releaseName(name_);
    } catch (const std::exception& e) {
      log::debug(std::string("D-Bus disconnect: ") + e.what());
    }
    name_.clear();
    conn_.reset();
  }

  // The bus went away (dbus restarted, socket closed): keep the daemon
  // running and try to serve again every 2 s.
  void connection_lost(const std::string& why) {
    log::error("D-Bus connection lost (" + why + "); reconnecting every 2 s");
    disconnect(/*release_name=*/false);
    schedule_reconnect();
  }

  void schedule_reconnect() {
    reconnect_timer_.expires_after(std::chrono::seconds(2));
    reconnect_timer_.async_wait(
        [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
          if (ec || alive.expired() || !*alive.lock() || stopped_) return;
          try {
            connect();
            log::info("D-Bus: serving " + options_.bus_name + " again as " + unique_name());
          } catch (const DbusError& e) {
            log::debug(std::string("D-Bus reconnect failed: ") + e.what());
            schedule_reconnect();
          }
        });
  }

  void on_window(const json& w) {
    if (stopped_ || !object_) return;
    try {
      uint64_t index = 0;
      if (w.is_object() && w.contains("window") && w["window"].is_number_integer() &&
          w["window"].get<int64_t>() >= 0)
        index = w["window"].get<uint64_t>();
      object_->emitWindowMeasured(index, window_p95_us(w), w.dump());
      object_->emit_changed_properties();
    } catch (const std::exception& e) {
      log::warn(std::string("D-Bus: cannot emit WindowMeasured: ") + e.what());
    }
    kick();
  }

  void on_event(const HistoryEvent& e) {
    if (stopped_ || !object_) return;
    try {
      json j = event_to_json(e);
      std::string type = j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>()
                                                                     : std::string("unknown");
      object_->emitEngineEvent(e.seq, type, j.dump());
    } catch (const std::exception& ex) {
      log::warn(std::string("D-Bus: cannot emit EngineEvent: ") + ex.what());
    }
    kick();
  }

  void on_state_changed() {
    if (stopped_ || !object_) return;
    try {
      object_->emit_changed_properties();
    } catch (const std::exception& e) {
      log::warn(std::string("D-Bus: cannot emit PropertiesChanged: ") + e.what());
    }
    kick();
  }

  // Emitting queues messages in sd-bus; if the socket was full they wait for
  // POLLOUT, so re-evaluate what to wait for on the next loop turn.
  void kick() { post_process(); }

  void post_process() {
    if (process_posted_ || !conn_) return;
    process_posted_ = true;
    asio::post(io_, [this, gen = generation_, alive = std::weak_ptr<bool>(alive_)] {
      if (alive.expired() || !*alive.lock() || gen != generation_) return;
      process_posted_ = false;
      process();
    });
  }

  // Drains sd-bus (dispatching calls into the object), then arms the waits
  // sd-bus asks for: readable, writable if it has queued output, and its
  // timeout (method-call timeouts, authentication).
  void process() {
    if (stopped_ || !conn_) return;
    try {
      object_->invalidate();
      // Bounded so a flood of calls cannot starve the engine's handlers.
      for (int i = 0; i < 64; ++i) {
        if (!conn_->processPendingRequest()) break;
        if (i == 63) {
          post_process();
          return;
        }
      }
      object_->invalidate();
      arm(conn_->getEventLoopPollData());
    } catch (const sdbus::Error& e) {
      connection_lost(e.getMessage());
    }
  }

  void arm(const sdbus::IConnection::PollData& pd) {
    auto alive = std::weak_ptr<bool>(alive_);
    auto gen = generation_;
    auto stale = [this, alive, gen] {
      return alive.expired() || !*alive.lock() || gen != generation_;
    };
    if ((pd.events & POLLIN) && !read_armed_) {
      read_armed_ = true;
      socket_.async_wait(asio::posix::stream_descriptor::wait_read,
                         [this, stale](const boost::system::error_code& ec) {
                           if (stale()) return;
                           read_armed_ = false;
                           if (ec == asio::error::operation_aborted) return;
                           process();
                         });
    }
    if ((pd.events & POLLOUT) && !write_armed_) {
      write_armed_ = true;
      socket_.async_wait(asio::posix::stream_descriptor::wait_write,
                         [this, stale](const boost::system::error_code& ec) {
                           if (stale()) return;
                           write_armed_ = false;
                           if (ec == asio::error::operation_aborted) return;
                           process();
                         });
    }
    if (pd.timeout_usec != std::numeric_limits<uint64_t>::max()) {
      uint64_t now = monotonic_usec();
      auto delay = std::chrono::microseconds(pd.timeout_usec > now ? pd.timeout_usec - now : 0);
      timer_.expires_after(delay);
      timer_.async_wait([this, stale](const boost::system::error_code& ec) {
        if (stale()) return;
        if (ec == asio::error::operation_aborted) return;
        process();
      });
    } else {
      timer_.cancel();
    }
  }

  ControlSurface& surface_;
  asio::io_context& io_;
  DbusOptions options_;
  std::unique_ptr<ControlSurface> polkit_surface_;  // outlives object_, which calls it
  std::unique_ptr<sdbus::IConnection> conn_;
  std::unique_ptr<Daemon1Object> object_;
  std::string name_;
  asio::posix::stream_descriptor socket_;
  asio::steady_timer timer_;
  asio::steady_timer reconnect_timer_;
  std::shared_ptr<bool> alive_;
  uint64_t generation_ = 0;
  bool read_armed_ = false;
  bool write_armed_ = false;
  bool process_posted_ = false;
  bool stopped_ = false;
};

}  // namespace

std::unique_ptr<DbusService> start_dbus_service(ControlSurface& surface, asio::io_context& io,
                                                const DbusOptions& options) {
  return std::make_unique<DbusServiceImpl>(surface, io, options);
}

}  // namespace specact
