#include "commands.h"

#include <algorithm>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "client.h"
#include "common/knob_info.h"
#include "common/modes.h"
#include "render.h"
#include "target/target.h"
#include "watch.h"

namespace specactctl {

using nlohmann::json;
using specact::join_mode_names;
using specact::kModeNames;

namespace {

// Connects on first use, so every usage error is reported (exit 2) before the
// daemon's absence (exit 3) can be.
class LazyClient {
 public:
  explicit LazyClient(std::string bus) : bus_(std::move(bus)) {}
  Client& get() {
    if (!client_) client_.emplace(bus_);
    return *client_;
  }
  Daemon1Proxy& daemon() { return get().daemon(); }

 private:
  std::string bus_;
  std::optional<Client> client_;
};

void print_json(const json& j) { std::cout << j.dump(2) << "\n"; }

// ---- read commands --------------------------------------------------------

int cmd_status(LazyClient& c, const Args& a) {
  if (!a.rest.empty()) usage_error("status takes no arguments");
  json status =
      parse_reply(call("read the status", [&] { return c.daemon().GetStatus(); }), "status");
  if (a.json) {
    print_json(status);
    return kOk;
  }
  json knobs = json::array();
  try {
    knobs = parse_reply(c.daemon().ListKnobs(), "knobs");
  } catch (...) {
    // Only used to print enum names; the status stands without it.
  }
  std::cout << render_status(status, knobs);
  return kOk;
}

int cmd_knobs(LazyClient& c, const Args& a) {
  if (!a.rest.empty()) usage_error("knobs takes no arguments");
  json knobs = parse_reply(call("list knobs", [&] { return c.daemon().ListKnobs(); }), "knobs");
  if (a.json)
    print_json(knobs);
  else
    std::cout << render_knobs(knobs);
  return kOk;
}

int cmd_history(LazyClient& c, const Args& a) {
  uint64_t since = 0;
  uint64_t limit = 50;
  for (size_t i = 0; i < a.rest.size(); ++i) {
    if ((a.rest[i] == "--since" || a.rest[i] == "--limit") && i + 1 < a.rest.size()) {
      uint64_t v = parse_uint(a.rest[i + 1], a.rest[i]);
      (a.rest[i] == "--since" ? since : limit) = v;
      ++i;
    } else {
      usage_error("history: unexpected argument '" + a.rest[i] + "'");
    }
  }
  if (limit > std::numeric_limits<uint32_t>::max()) usage_error("--limit is too large");
  json events =
      parse_reply(call("read the history",
                       [&] { return c.daemon().GetHistory(since, static_cast<uint32_t>(limit)); }),
                  "history");
  if (a.json)
    print_json(events);
  else
    std::cout << render_history(events);
  return kOk;
}

// ---- control commands -----------------------------------------------------

int done(const Args& a, const std::string& command, const std::string& text) {
  if (a.json)
    std::cout << json{{"ok", true}, {"command", command}}.dump() << "\n";
  else
    std::cout << text << "\n";
  return kOk;
}

int cmd_simple(LazyClient& c, const Args& a) {
  if (!a.rest.empty()) usage_error(a.command + " takes no arguments");
  auto& d = c.daemon();
  const std::string& cmd = a.command;
  call(cmd, [&] {
    if (cmd == "start") d.Start();
    if (cmd == "stop") d.Stop();
    if (cmd == "pause") d.Pause();
    if (cmd == "resume") d.Resume();
    if (cmd == "revert") d.Revert();
  });
  static const std::map<std::string, std::string> kDone = {
      {"start", "specactd: tuning started"},
      {"stop",
       "specactd: tuning stopped (current config kept; 'specactctl revert' restores the baseline)"},
      {"pause", "specactd: paused (still measuring)"},
      {"resume", "specactd: resumed"},
      {"revert", "specactd: reverted every knob to its baseline"}};
  return done(a, cmd, kDone.at(cmd));
}

int cmd_mode(LazyClient& c, const Args& a) {
  if (a.rest.size() != 1) usage_error("mode takes exactly one MODE");
  const std::string& m = a.rest[0];
  if (std::find(kModeNames.begin(), kModeNames.end(), m) == kModeNames.end())
    usage_error("unknown mode '" + m + "'; one of: " + join_mode_names(", "));
  call("set the mode", [&] { c.daemon().SetMode(m); });
  return done(a, "mode", "specactd: mode set to " + m);
}

int cmd_target(LazyClient& c, const Args& a) {
  if (a.rest.size() == 1 && a.rest[0] == "--clear") {
    call("clear the target", [&] { c.daemon().Reset({"target"}); });
    return done(a, "target", "specactd: target set here forgotten; the config file's is in force");
  }
  if (a.rest.size() != 2)
    usage_error("target takes one of --pid PID[,PID...], --unit, --cgroup, --comm, or --clear");
  const std::string& opt = a.rest[0];
  const std::string& val = a.rest[1];
  // The daemon judges the target (TargetSpec::from_json); here only what is
  // no pid at all is a usage error.
  specact::TargetSpec spec;
  if (opt == "--pid") {
    const int64_t pid_max = specact::kernel_pid_max();
    size_t start = 0;
    while (start <= val.size()) {
      size_t comma = val.find(',', start);
      std::string one =
          val.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      uint64_t pid = parse_uint(one, "--pid");
      if (pid == 0 || pid >= static_cast<uint64_t>(pid_max))
        usage_error("--pid " + one + " is not a valid pid (1.." + std::to_string(pid_max - 1) +
                    ")");
      spec.pids.push_back(static_cast<pid_t>(pid));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  } else if (opt == "--unit" || opt == "--cgroup" || opt == "--comm") {
    if (val.empty()) usage_error(opt + " needs a value");
    using Kind = specact::TargetSpec::Kind;
    spec.kind = opt == "--unit" ? Kind::Unit : opt == "--cgroup" ? Kind::Cgroup : Kind::Comm;
    (opt == "--unit" ? spec.unit : opt == "--cgroup" ? spec.cgroup : spec.comm_regex) = val;
  } else {
    usage_error("target: unknown option '" + opt + "'");
  }
  const json t = spec.to_json();
  call("set the target", [&] { c.daemon().SetTarget(t.dump()); });
  return done(a, "target", "specactd: target set to " + describe_target(t));
}

int cmd_pin(LazyClient& c, const Args& a) {
  if (a.rest.size() != 1 || a.rest[0].find('=') == std::string::npos)
    usage_error("pin takes KNOB=VALUE");
  std::string knob = a.rest[0].substr(0, a.rest[0].find('='));
  std::string value = a.rest[0].substr(a.rest[0].find('=') + 1);
  if (knob.empty() || value.empty()) usage_error("pin takes KNOB=VALUE");
  int64_t v = 0;
  bool numeric = value.find_first_not_of("-0123456789") == std::string::npos && value != "-";
  if (numeric) {
    try {
      v = std::stoll(value);
    } catch (...) {
      usage_error("value out of range: " + value);
    }
  } else {
    // Enum knobs take the value's name; the catalogue maps it to its index.
    json knobs = parse_reply(call("list knobs", [&] { return c.daemon().ListKnobs(); }), "knobs");
    std::optional<specact::KnobInfo> info;
    for (const auto& k : knobs)
      if (k.value("name", "") == knob) info = specact::knob_info_from_json(k);
    if (!info)
      throw CtlError(kDaemonError,
                     "cannot pin: unknown knob '" + knob + "' (see specactctl knobs)");
    std::optional<int64_t> index = specact::enum_value_index(info->domain, value);
    if (!index) usage_error("'" + value + "' is not a value of " + knob);
    v = *index;
  }
  call("pin " + knob, [&] { c.daemon().Pin(knob, v); });
  return done(a, "pin", "specactd: pinned " + knob + "=" + value);
}

int cmd_reset(LazyClient& c, const Args& a) {
  static const std::vector<std::string> kSettings = {"target", "mode", "pins", "paused"};
  for (const auto& s : a.rest)
    if (std::find(kSettings.begin(), kSettings.end(), s) == kSettings.end())
      usage_error("reset: '" + s + "' is not a setting (target, mode, pins, paused)");
  call("reset", [&] { c.daemon().Reset(a.rest); });
  std::string what;
  for (const auto& s : a.rest) what += (what.empty() ? "" : ", ") + s;
  return done(a, "reset",
              "specactd: " + (what.empty() ? std::string("every setting") : what) +
                  " back to the config file's");
}

int cmd_unpin(LazyClient& c, const Args& a) {
  if (a.rest.size() != 1 || a.rest[0].empty()) usage_error("unpin takes KNOB");
  call("unpin " + a.rest[0], [&] { c.daemon().Unpin(a.rest[0]); });
  return done(a, "unpin", "specactd: unpinned " + a.rest[0]);
}

}  // namespace

int dispatch(const Args& a) {
  const std::string& cmd = a.command;
  if (cmd.empty()) usage_error("missing COMMAND");
  if (std::find(a.rest.begin(), a.rest.end(), "--help") != a.rest.end() ||
      std::find(a.rest.begin(), a.rest.end(), "-h") != a.rest.end()) {
    const std::string* help = command_help(cmd);
    if (!help) usage_error("unknown command '" + cmd + "'");
    std::cout << *help;
    return kOk;
  }
  if (cmd == "watch") return cmd_watch(a);
  static const std::vector<std::string> kKnown = {"status", "knobs",  "history", "start", "stop",
                                                  "pause",  "resume", "revert",  "mode",  "target",
                                                  "pin",    "unpin",  "reset"};
  if (std::find(kKnown.begin(), kKnown.end(), cmd) == kKnown.end())
    usage_error("unknown command '" + cmd + "'");
  LazyClient client(a.bus);
  if (cmd == "status") return cmd_status(client, a);
  if (cmd == "knobs") return cmd_knobs(client, a);
  if (cmd == "history") return cmd_history(client, a);
  if (cmd == "mode") return cmd_mode(client, a);
  if (cmd == "target") return cmd_target(client, a);
  if (cmd == "pin") return cmd_pin(client, a);
  if (cmd == "unpin") return cmd_unpin(client, a);
  if (cmd == "reset") return cmd_reset(client, a);
  return cmd_simple(client, a);
}

}  // namespace specactctl
