// The D-Bus transport of the daemon: exposes a ControlSurface as
// org.specact.Daemon1 on the system bus (or DBUS_SYSTEM_BUS_ADDRESS), driven
// by the daemon's single-threaded Boost.Asio loop. Nothing here blocks that
// loop: the bus socket is watched with async_wait and only processed when
// readable/writable or when sd-bus' own timeout fires.
//
// Wiring (in the daemon runtime, on the thread that runs `io`):
//
//   specact::DbusOptions opts;                  // defaults: system bus
//   auto dbus = specact::start_dbus_service(surface, io, opts);  // throws DbusError
//   ... io.run() ...
//   dbus.reset();                               // before `surface` dies
//
// If the bus connection breaks (dbus restarted), the service logs it and
// reconnects every 2 s, re-owning the name; the daemon keeps running.
//
// start_dbus_service installs surface.on_window / on_event / on_status_changed;
// the runtime calls them on the loop thread whenever a window closes, an
// engine event is recorded, or anything in status() changes (state, mode,
// target, configs, pins, usage). The window JSON should be window_to_json()
// plus, when the runtime knows them, "objective_us" (the value the engine
// minimises), "metric", "config" (the config in force) and "phase"; clients
// fall back to service.p95_us when "objective_us" is absent.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <stdexcept>
#include <string>

#include "common/control.h"

namespace specact {

inline constexpr const char* kDbusName = "org.specact.Daemon1";
inline constexpr const char* kDbusPath = "/org/specact/Daemon1";
inline constexpr const char* kDbusInterface = "org.specact.Daemon1";
inline constexpr const char* kDbusErrorPrefix = "org.specact.Error.";

// Cannot connect to the bus or cannot own the name (e.g. another specactd runs).
class DbusError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DbusOptions {
  // Empty: the system bus (sd-bus honours DBUS_SYSTEM_BUS_ADDRESS). Otherwise
  // a D-Bus address such as "unix:path=/tmp/bus" (tests).
  std::string bus_address;
  std::string bus_name = kDbusName;
  std::string version;  // reported in the Version property
};

class DbusService {
 public:
  virtual ~DbusService() = default;
  // Unique name of our connection (":1.42"), for logs and tests.
  virtual std::string unique_name() const = 0;
  // Stops serving: releases the name, unregisters the object, stops watching
  // the socket, and clears the hooks it set on the surface. Idempotent; the
  // destructor calls it.
  virtual void shutdown() = 0;
};

// Connects, registers the object, owns the name, and starts serving on `io`.
// Throws DbusError with one clear sentence on failure.
std::unique_ptr<DbusService> start_dbus_service(ControlSurface& surface,
                                                boost::asio::io_context& io,
                                                const DbusOptions& options);

}  // namespace specact
