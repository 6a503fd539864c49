// polkit authorisation for specactd's mutating D-Bus methods (action
// org.specact.manage). The bus policy (org.specact.Daemon1.conf) stays the
// first gate; where polkit is on the bus it is asked too, so that admins can
// delegate (or restrict) with polkit rules. Without polkit on the bus the bus
// policy alone decides, as before.
//
// Wiring (dbus_service.cc): the D-Bus object calls a ControlSurface; wrap the
// real one with make_polkit_surface(), which checks the sender of the message
// being processed before every command and passes reads through.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/control.h"

namespace specact {

inline constexpr const char* kPolkitManageAction = "org.specact.manage";

class PolkitAuthority {
 public:
  enum class Verdict {
    kAllowed,   // polkit said yes
    kDenied,    // polkit said no (or wanted interactive authentication)
    kNoPolkit,  // org.freedesktop.PolicyKit1 neither runs nor is activatable
    kRoot,      // the caller's effective uid is 0: not asked
    kError,     // the check itself failed (fails closed)
  };
  struct Decision {
    Verdict verdict = Verdict::kError;
    std::string detail;
    bool allowed() const {
      return verdict == Verdict::kAllowed || verdict == Verdict::kNoPolkit ||
             verdict == Verdict::kRoot;
    }
  };

  struct Options {
    // Empty: the system bus (sd-bus honours DBUS_SYSTEM_BUS_ADDRESS); it must be
    // the bus the caller's name is on.
    std::string bus_address;
    // Callers with euid 0 pass without a polkit round trip (and are never
    // locked out by a broken polkitd). Tests switch it off.
    bool trust_root = true;
    uint64_t timeout_usec = 5'000'000;
  };

  explicit PolkitAuthority(Options options);

  // Asks whether the unique bus name `sender` may perform `action`. Blocks for
  // at most the timeout; never throws. No interactive authentication.
  Decision check(const std::string& sender, const std::string& action = kPolkitManageAction);

  static const char* verdict_name(Verdict v);

 private:
  Options options_;
};

// A ControlSurface that forwards to `inner`, checking `authority` for the
// sender returned by `current_sender` before every command (start, stop,
// pause, resume, set_mode, set_target, revert, pin, unpin, reset). A refusal throws
// sdbus::Error org.freedesktop.DBus.Error.AccessDenied. The hooks (on_window,
// ...) stay on `inner`.
std::unique_ptr<ControlSurface> make_polkit_surface(ControlSurface& inner,
                                                    std::shared_ptr<PolkitAuthority> authority,
                                                    std::function<std::string()> current_sender);

}  // namespace specact
