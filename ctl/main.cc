// specactctl: the command-line client of specactd (D-Bus org.specact.Daemon1).
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client.h"
#include "render.h"

using nlohmann::json;
using namespace specactctl;

namespace {

constexpr const char* kHelp = R"(Usage: specactctl [--json] [--bus ADDRESS] COMMAND [ARGS]

specactctl controls specactd, the speculative scheduler/sysctl tuner, over the
D-Bus system bus (name org.specact.Daemon1). Reading is open to every user;
changing anything needs root or membership in the group "specact".

Read commands (each takes --json for a stable, machine-readable form):
  status                 State, mode, target, last p95 against the baseline,
                         hit rate, agent token use and cost, and the current /
                         confirmed / baseline value of every tuned knob.
  knobs                  The knob catalogue on this machine: family, current
                         value, domain, unit, and why a knob is unavailable.
  history [--since SEQ] [--limit N]
                         Engine events with a sequence number above SEQ
                         (default 0), the newest N (default 50, 0 = all).
  watch [--count N]      Follow the daemon live: p95 per window as a chart,
                         the current and confirmed config, and a scrolling log
                         of who moved which knob and why. Plain lines when
                         stdout is not a terminal; with --json, one JSON
                         object per line. --count N exits after N windows.
                         Survives daemon restarts (waits and reconnects).

Control commands (root or group "specact"):
  start | stop           Start or stop tuning (stop keeps the current config).
  pause | resume         Freeze or resume decisions; measuring continues.
  revert                 Put every knob back to its baseline value.
  mode MODE              speculative | actor-only | speculator-only |
                         recommend | monitor
  target --pid PID[,PID...] | --unit UNIT | --cgroup PATH | --comm REGEX
                         Choose the workload to tune.
  pin KNOB=VALUE         Hold KNOB at VALUE (an integer, or a name for enum
                         knobs, e.g. task.policy=batch); agents leave it alone.
  unpin KNOB             Release a pinned knob.

Options:
  --json                 Machine-readable output (see "JSON output" below).
  --bus ADDRESS          Talk to the bus at ADDRESS (e.g. unix:path=/run/x)
                         instead of the system bus; DBUS_SYSTEM_BUS_ADDRESS is
                         honoured too.
  -h, --help             This help.   -V, --version   The version.

JSON output:
  status   the GetStatus object: version, state, mode, target, current,
           confirmed, baseline (knob -> integer), pinned, last_window,
           baseline_p95_us, hit_rate, windows, usage.{speculator,actor}.{calls,
           prompt_tokens,completion_tokens,errors,rejected,cost_usd}, uptime_s,
           warnings (array of strings)
  knobs    array of {name, family, unit, description, min, max, scale,
           values?, available, unavailable_reason?, current, default?}
  history  array of events {seq, time, type, ...}
  watch    lines {"kind":"window","index","p95_us","window"} and
           {"kind":"event","seq","type","event"}
  control commands print {"ok":true,"command":...}

Exit status:
  0  success
  1  the daemon (or the bus policy) refused or failed the request
  2  usage error (unknown command, bad argument)
  3  specactd is not running or the bus is unreachable
     (hint: systemctl start specactd)

Examples:
  specactctl status
  sudo specactctl target --unit nginx.service && sudo specactctl start
  specactctl watch
  specactctl watch --json --count 10 | jq .p95_us
  sudo specactctl pin task.slice_us=100
)";

const std::vector<std::string> kModes = {"speculative", "actor-only", "speculator-only",
                                         "recommend", "monitor"};

struct Args {
  bool json = false;
  std::string bus;
  std::string command;
  std::vector<std::string> rest;
};

// Per-command help (`specactctl COMMAND --help`), the matching part of kHelp.
const std::map<std::string, std::string> kCommandHelp = {
    {"status",
     "Usage: specactctl [--json] status\n\nState, mode, target, last p95 against the baseline, "
     "hit rate, agent\ntoken use and cost, and the current / confirmed / baseline value of "
     "every\ntuned knob. --json prints the GetStatus object.\n"},
    {"knobs",
     "Usage: specactctl [--json] knobs\n\nThe knob catalogue on this machine: family, current "
     "value, domain, unit,\nand why a knob is unavailable.\n"},
    {"history",
     "Usage: specactctl [--json] history [--since SEQ] [--limit N]\n\nEngine events with a "
     "sequence number above SEQ (default 0), the newest N\n(default 50, 0 = all).\n"},
    {"watch",
     "Usage: specactctl [--json] watch [--count N]\n\nFollow the daemon live: p95 per window, "
     "the current and confirmed config,\nand who moved which knob and why. --count N exits after "
     "N windows.\n"},
    {"start", "Usage: specactctl start\n\nStart tuning the target (root or group specact).\n"},
    {"stop",
     "Usage: specactctl stop\n\nStop tuning; the current config is kept (root or group "
     "specact).\n"},
    {"pause",
     "Usage: specactctl pause\n\nFreeze decisions; measuring continues (root or group "
     "specact).\n"},
    {"resume", "Usage: specactctl resume\n\nResume decisions after pause.\n"},
    {"revert", "Usage: specactctl revert\n\nPut every knob back to its baseline value.\n"},
    {"mode",
     "Usage: specactctl mode MODE\n\nMODE: speculative | actor-only | speculator-only | "
     "recommend | monitor\n"},
    {"target",
     "Usage: specactctl target --pid PID[,PID...] | --unit UNIT | --cgroup PATH | --comm "
     "REGEX\n\nChoose the workload to tune. Pids are 1..kernel.pid_max; a unit or cgroup that\n"
     "does not exist yet is followed once it appears; REGEX is RE2 syntax, at most\n1024 "
     "bytes.\n"},
    {"pin",
     "Usage: specactctl pin KNOB=VALUE\n\nHold KNOB at VALUE (an integer, or a name for enum "
     "knobs, e.g.\ntask.policy=batch); agents leave it alone.\n"},
    {"unpin", "Usage: specactctl unpin KNOB\n\nRelease a pinned knob.\n"},
};

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

// RFC 3629 UTF-8: D-Bus strings must be valid, and JSON output needs it too.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values beyond U+10FFFF.
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

int64_t kernel_pid_max() {
  FILE* f = std::fopen("/proc/sys/kernel/pid_max", "r");
  long long v = 0;
  if (f) {
    if (std::fscanf(f, "%lld", &v) != 1) v = 0;
    std::fclose(f);
  }
  return v > 1 && v <= std::numeric_limits<int32_t>::max() ? v : 4194304;
}

[[noreturn]] void usage_error(const std::string& msg) {
  throw CtlError(kUsage, msg + " (see specactctl --help)");
}

uint64_t parse_uint(const std::string& s, const std::string& what) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
    usage_error(what + " must be a non-negative integer, got '" + s + "'");
  try {
    return std::stoull(s);
  } catch (...) {
    usage_error(what + " is out of range: '" + s + "'");
  }
}

void print_json(const json& j) { std::cout << j.dump(2) << "\n"; }

json parse_reply(const std::string& text, const char* what) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded())
    throw CtlError(kDaemonError, std::string("malformed ") + what + " reply from specactd");
  return j;
}

template <typename F>
auto call(const std::string& action, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const sdbus::Error& e) {
    throw map_error(e, action);
  }
}

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
  if (std::find(kModes.begin(), kModes.end(), m) == kModes.end())
    usage_error("unknown mode '" + m +
                "'; one of: speculative, actor-only, speculator-only, recommend, monitor");
  call("set the mode", [&] { c.daemon().SetMode(m); });
  return done(a, "mode", "specactd: mode set to " + m);
}

int cmd_target(LazyClient& c, const Args& a) {
  if (a.rest.size() != 2)
    usage_error("target takes one of --pid PID[,PID...], --unit, --cgroup, --comm");
  const std::string& opt = a.rest[0];
  const std::string& val = a.rest[1];
  json t;
  if (opt == "--pid") {
    json pids = json::array();
    size_t start = 0;
    while (start <= val.size()) {
      size_t comma = val.find(',', start);
      std::string one =
          val.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      uint64_t pid = parse_uint(one, "--pid");
      const int64_t pid_max = kernel_pid_max();
      if (pid == 0 || pid >= static_cast<uint64_t>(pid_max))
        usage_error("--pid " + one + " is not a valid pid (1.." + std::to_string(pid_max - 1) +
                    ")");
      pids.push_back(pid);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    t = pids.size() == 1 ? json{{"pid", pids[0]}} : json{{"pids", pids}};
  } else if (opt == "--unit" || opt == "--cgroup" || opt == "--comm") {
    if (val.empty()) usage_error(opt + " needs a value");
    t = json{{opt.substr(2), val}};
  } else {
    usage_error("target: unknown option '" + opt + "'");
  }
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
    bool found_knob = false, found_value = false;
    for (const auto& k : knobs) {
      if (k.value("name", "") != knob) continue;
      found_knob = true;
      if (k.contains("values"))
        for (size_t i = 0; i < k["values"].size(); ++i)
          if (k["values"][i] == value) v = static_cast<int64_t>(i), found_value = true;
    }
    if (!found_knob)
      throw CtlError(kDaemonError,
                     "cannot pin: unknown knob '" + knob + "' (see specactctl knobs)");
    if (!found_value) usage_error("'" + value + "' is not a value of " + knob);
  }
  call("pin " + knob, [&] { c.daemon().Pin(knob, v); });
  return done(a, "pin", "specactd: pinned " + knob + "=" + value);
}

int cmd_unpin(LazyClient& c, const Args& a) {
  if (a.rest.size() != 1 || a.rest[0].empty()) usage_error("unpin takes KNOB");
  call("unpin " + a.rest[0], [&] { c.daemon().Unpin(a.rest[0]); });
  return done(a, "unpin", "specactd: unpinned " + a.rest[0]);
}

// ---- watch ----------------------------------------------------------------

volatile sig_atomic_t g_interrupted = 0;
volatile sig_atomic_t g_resized = 0;

std::string clock_now() {
  time_t t = time(nullptr);
  tm lt{};
  localtime_r(&t, &lt);
  char buf[16];
  strftime(buf, sizeof buf, "%H:%M:%S", &lt);
  return buf;
}

class Watcher {
 public:
  Watcher(const Args& a, std::optional<uint64_t> count)
      : args_(a), count_(count), tty_(!a.json && isatty(STDOUT_FILENO)) {}

  int run() {
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_interrupted = 1; };
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sa.sa_handler = [](int) { g_resized = 1; };
    sigaction(SIGWINCH, &sa, nullptr);
    if (tty_) std::cout << "\033[?1049h\033[?25l" << std::flush;  // alternate screen, no cursor
    int rc = loop();
    if (tty_) std::cout << "\033[?25h\033[?1049l" << std::flush;
    return rc;
  }

 private:
  int loop() {
    bool ever_connected = false;
    bool said_waiting = false;
    while (!g_interrupted) {
      try {
        Client client(args_.bus, /*require_daemon=*/false);
        client.daemon().window_cb = [this](uint64_t i, double p, const std::string& w) {
          on_window(i, p, w);
        };
        client.daemon().event_cb = [this](uint64_t s, const std::string& t, const std::string& e) {
          on_event(s, t, e);
        };
        client.on_owner_changed([this](const std::string&, const std::string& now) {
          daemon_up_ = !now.empty();
          refresh_ = true;
          note(daemon_up_ ? "specactd is back (" + now + ")"
                          : "specactd went away; waiting for it");
        });
        if (!client.daemon_present()) {
          if (!ever_connected)
            throw CtlError(kNotRunning, std::string("specactd is not running; ") + kStartHint);
          if (!said_waiting) note("waiting for specactd"), said_waiting = true;
        } else {
          daemon_up_ = true;
          refresh_ = true;
        }
        ever_connected = true;
        said_waiting = false;
        int rc = pump(client);
        if (rc >= 0) return rc;
      } catch (const CtlError& e) {
        if (!ever_connected || e.code() == kUsage) {
          std::cerr << "specactctl: " << e.what() << "\n";
          return e.code();
        }
        if (!said_waiting)
          note(std::string("lost the bus (") + e.what() + "); reconnecting"), said_waiting = true;
      } catch (const sdbus::Error& e) {
        if (!ever_connected) {
          CtlError m = map_error(e, "watch");
          std::cerr << "specactctl: " << m.what() << "\n";
          return m.code();
        }
        if (!said_waiting)
          note("lost the bus (" + e.getMessage() + "); reconnecting"), said_waiting = true;
      }
      draw();
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    return kOk;
  }

  // Processes the connection until the count is reached (returns 0), the
  // user interrupts (0), or the connection breaks (throws).
  int pump(Client& client) {
    auto& conn = client.connection();
    while (!g_interrupted) {
      if (refresh_ && daemon_up_) {
        refresh_ = false;
        fetch(client);
        draw();
      }
      while (conn.processPendingRequest()) {
      }
      if (count_ && windows_seen_ >= *count_) return kOk;
      if (dirty_ || g_resized) {
        g_resized = 0;
        draw();
      }
      auto pd = conn.getEventLoopPollData();
      int timeout_ms = 1000;
      if (pd.timeout_usec != std::numeric_limits<uint64_t>::max()) {
        timespec ts{};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
        uint64_t left = pd.timeout_usec > now ? (pd.timeout_usec - now + 999) / 1000 : 0;
        timeout_ms = static_cast<int>(std::min<uint64_t>(left, 1000));
      }
      pollfd pfd{pd.fd, pd.events, 0};
      int r = poll(&pfd, 1, timeout_ms);
      if (r < 0 && errno != EINTR)
        throw CtlError(kDaemonError, std::string("poll: ") + strerror(errno));
      if (r > 0 && (pfd.revents & (POLLHUP | POLLERR))) {
        // Let sd-bus see the hangup; processing then throws "not connected".
        conn.processPendingRequest();
        throw CtlError(kNotRunning, "bus connection closed");
      }
    }
    return kOk;
  }

  void fetch(Client& client) {
    try {
      status_ = parse_reply(client.daemon().GetStatus(), "status");
      knobs_ = parse_reply(client.daemon().ListKnobs(), "knobs");
      if (!seeded_) {
        seeded_ = true;
        json events = parse_reply(client.daemon().GetHistory(0, 200), "history");
        for (const auto& e : events) {
          std::string t = e.value("type", "");
          if (t == "window" || t == "agent_called" || t == "agent_waiting" || t == "trial_skipped")
            continue;
          add_log(e.value("time", std::string()), describe_event(e, knobs_));
        }
      }
    } catch (const sdbus::Error& e) {
      if (e.getName() == "org.freedesktop.DBus.Error.ServiceUnknown") {
        daemon_up_ = false;
        return;
      }
      throw;
    }
  }

  void on_window(uint64_t index, double p95, const std::string& text) {
    // Several windows can arrive in one batch; --count N means exactly N.
    if (count_ && windows_seen_ >= *count_) return;
    json w = json::parse(text, nullptr, false);
    ++windows_seen_;
    if (args_.json) {
      std::cout << json{{"kind", "window"},
                        {"index", index},
                        {"p95_us", std::isfinite(p95) ? json(p95) : json(nullptr)},
                        {"window", w.is_discarded() ? json(text) : w}}
                       .dump()
                << "\n"
                << std::flush;
      return;
    }
    p95s_.push_back(p95);
    if (p95s_.size() > 2000) p95s_.pop_front();
    if (!w.is_discarded()) status_["last_window"] = w;
    if (!w.is_discarded() && w.contains("config") && w["config"].is_object())
      status_["current"] = w["config"];
    refresh_ = true;  // configs and counters change with windows
    if (!tty_) {
      std::string line = "window " + std::to_string(index) + "  p95 " + format_us(p95);
      if (!w.is_discarded() && w.value("low_confidence", false)) line += " (low confidence)";
      if (!w.is_discarded() && w.contains("config") && w["config"].is_object())
        for (const auto& [k, v] : w["config"].items())
          line += "  " + k + "=" +
                  (v.is_number_integer() ? format_value(knobs_, k, v.get<int64_t>()) : v.dump());
      std::cout << line << "\n" << std::flush;
    }
    dirty_ = true;
  }

  void on_event(uint64_t seq, const std::string& type, const std::string& text) {
    if (count_ && windows_seen_ >= *count_) return;
    json e = json::parse(text, nullptr, false);
    if (args_.json) {
      std::cout << json{{"kind", "event"},
                        {"seq", seq},
                        {"type", type},
                        {"event", e.is_discarded() ? json(text) : e}}
                       .dump()
                << "\n"
                << std::flush;
      return;
    }
    // Windows are drawn from WindowMeasured; agent bookkeeping is not a move.
    if (type == "window" || type == "agent_called" || type == "agent_waiting" ||
        type == "trial_skipped")
      return;
    std::string line = describe_event(e.is_discarded() ? json{{"type", type}} : e, knobs_);
    add_log(e.is_discarded() ? std::string() : e.value("time", std::string()), line);
    if (!tty_) std::cout << "event " << seq << "  " << line << "\n" << std::flush;
    refresh_ = true;
    dirty_ = true;
  }

  void note(const std::string& text) {
    if (args_.json) {
      std::cerr << "specactctl: " << text << "\n";
      return;
    }
    add_log("", "-- " + text);
    if (!tty_) std::cout << "-- " << text << "\n" << std::flush;
    dirty_ = true;
  }

  void add_log(std::string time, const std::string& line) {
    if (time.size() >= 19 && time[10] == 'T') time = time.substr(11, 8);  // ISO 8601 -> HH:MM:SS
    if (time.empty()) time = clock_now();
    log_.push_back(time + "  " + line);
    if (log_.size() > 500) log_.pop_front();
  }

  void draw() {
    dirty_ = false;
    if (!tty_) return;
    winsize ws{};
    int cols = 100, rows = 40;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
      cols = ws.ws_col, rows = ws.ws_row;
    std::string out = "\033[H\033[2J";
    auto add = [&](const std::string& s) { out += s.substr(0, std::string::npos) + "\n"; };
    if (!daemon_up_) {
      add("specactctl watch: waiting for specactd (" + std::string(kStartHint) +
          ")   Ctrl-C quits");
    } else {
      add("specactd " + status_.value("version", std::string("?")) + ": " +
          status_.value("state", std::string("?")) + ", mode " +
          status_.value("mode", std::string("?")) + ", target " +
          describe_target(status_.value("target", json())) + "   Ctrl-C quits");
    }
    double base = status_.value("baseline_p95_us", 0.0);
    double now = p95s_.empty() ? NAN : p95s_.back();
    std::string head = "p95 per window: now " + format_us(now) + ", baseline " +
                       (base > 0 ? format_us(base) : "-");
    if (base > 0 && std::isfinite(now)) {
      char b[32];
      snprintf(b, sizeof b, " (%+.1f%%)", (now - base) / base * 100);
      head += b;
    }
    head += ", hit rate " +
            std::to_string(static_cast<int>(status_.value("hit_rate", 0.0) * 100 + 0.5)) + "%";
    add(head);
    int chart_h = std::clamp(rows / 3, 4, 12);
    for (const auto& l : render_chart({p95s_.begin(), p95s_.end()}, cols, chart_h)) add(l);
    add(std::string(10, ' ') + "windows, oldest left (" + std::to_string(p95s_.size()) + " seen)");
    // Current vs confirmed config.
    std::vector<std::vector<std::string>> cfg;
    std::set<std::string> names;
    for (const char* key : {"current", "confirmed"})
      if (status_.contains(key) && status_[key].is_object())
        for (const auto& [k, v] : status_[key].items()) names.insert(k);
    auto cell = [&](const char* key, const std::string& n) {
      if (!status_.contains(key) || !status_[key].contains(n) ||
          !status_[key][n].is_number_integer())
        return std::string("-");
      return format_value(knobs_, n, status_[key][n].get<int64_t>());
    };
    for (const auto& n : names)
      cfg.push_back({n, cell("current", n), cell("confirmed", n), cell("baseline", n)});
    out += "\n";
    if (cfg.empty())
      add("(no knobs tuned yet)");
    else
      out += render_table({"KNOB", "CURRENT", "CONFIRMED", "BASELINE"}, cfg,
                          {false, true, true, true});
    out += "\nWho moved what, and why:\n";
    int used = 2 + chart_h + 2 + 2 + static_cast<int>(cfg.size()) + 2;
    int room = std::max(3, rows - used - 1);
    size_t first = log_.size() > static_cast<size_t>(room) ? log_.size() - room : 0;
    for (size_t i = first; i < log_.size(); ++i) add(log_[i].substr(0, static_cast<size_t>(cols)));
    std::cout << out << std::flush;
  }

  const Args& args_;
  std::optional<uint64_t> count_;
  bool tty_;
  bool daemon_up_ = false;
  bool refresh_ = false;
  bool dirty_ = false;
  bool seeded_ = false;
  uint64_t windows_seen_ = 0;
  json status_ = json::object();
  json knobs_ = json::array();
  std::deque<double> p95s_;
  std::deque<std::string> log_;
};

int cmd_watch(const Args& a) {
  std::optional<uint64_t> count;
  for (size_t i = 0; i < a.rest.size(); ++i) {
    if (a.rest[i] == "--count" && i + 1 < a.rest.size()) {
      count = parse_uint(a.rest[++i], "--count");
      if (*count == 0) usage_error("--count must be at least 1");
    } else {
      usage_error("watch: unexpected argument '" + a.rest[i] + "'");
    }
  }
  Watcher w(a, count);
  return w.run();
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (!valid_utf8(s)) usage_error("argument " + std::to_string(i) + " is not valid UTF-8 text");
    if (s == "--json") {
      a.json = true;
    } else if (s == "--bus") {
      if (i + 1 >= argc) usage_error("--bus needs an ADDRESS");
      a.bus = argv[++i];
    } else if (s.rfind("--bus=", 0) == 0) {
      a.bus = s.substr(6);
    } else if (a.command.empty()) {
      if (!s.empty() && s[0] == '-' && s != "-h" && s != "--help" && s != "-V" && s != "--version")
        usage_error("unknown option '" + s + "'");
      a.command = s;
    } else {
      a.rest.push_back(s);
    }
  }
  return a;
}

int dispatch(const Args& a) {
  const std::string& cmd = a.command;
  if (cmd.empty()) usage_error("missing COMMAND");
  if (std::find(a.rest.begin(), a.rest.end(), "--help") != a.rest.end() ||
      std::find(a.rest.begin(), a.rest.end(), "-h") != a.rest.end()) {
    auto help = kCommandHelp.find(cmd);
    if (help == kCommandHelp.end()) usage_error("unknown command '" + cmd + "'");
    std::cout << help->second;
    return kOk;
  }
  if (cmd == "watch") return cmd_watch(a);
  static const std::vector<std::string> kKnown = {"status", "knobs",  "history", "start",
                                                  "stop",   "pause",  "resume",  "revert",
                                                  "mode",   "target", "pin",     "unpin"};
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
  return cmd_simple(client, a);
}

}  // namespace

int main(int argc, char** argv) {
  // A reader that goes away (specactctl watch | head) must not kill us mid-write.
  signal(SIGPIPE, SIG_IGN);
  try {
    Args a = parse_args(argc, argv);
    if (a.command == "-h" || a.command == "--help" || a.command == "help") {
      std::cout << kHelp;
      return kOk;
    }
    if (a.command == "-V" || a.command == "--version") {
      std::cout << "specactctl " SPECACT_VERSION "\n";
      return kOk;
    }
    return dispatch(a);
  } catch (const CtlError& e) {
    std::cerr << "specactctl: " << e.what() << "\n";
    return e.code();
  } catch (const sdbus::Error& e) {
    CtlError m = map_error(e, "talk to specactd");
    std::cerr << "specactctl: " << m.what() << "\n";
    return m.code();
  } catch (const std::exception& e) {
    std::cerr << "specactctl: " << e.what() << "\n";
    return kDaemonError;
  }
}
