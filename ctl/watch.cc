#include "watch.h"

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
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client.h"
#include "render.h"

namespace specactctl {

using nlohmann::json;

namespace {

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

}  // namespace

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

}  // namespace specactctl
