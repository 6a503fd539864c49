#include "runtime/runtime.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "common/log.h"
#include "common/modes.h"
#include "dbus/dbus_service.h"
#include "dbus/systemd_notify.h"
#include "runtime/linux_platform.h"

namespace specact {

using nlohmann::json;

// ---------------------------------------------------------------- history

HistoryLog::~HistoryLog() {
  if (fd_ >= 0) ::close(fd_);
}

void HistoryLog::open(const std::string& state_dir) {
  try {
    dir_.emplace(StateDir::open(state_dir, /*create=*/true));
  } catch (const StateDirError& e) {
    throw ConfigError(std::string("state_dir: ") + e.what());
  }
  path_ = dir_->path_of(kHistoryName);
  fd_ = dir_->open_append(kHistoryName);
  if (fd_ < 0) throw ConfigError("state_dir: " + dir_->error(kHistoryName, -fd_));
}

void HistoryLog::write_line(const std::string& line) {
  if (fd_ < 0) return;
  // One write(2) per line on an O_APPEND fd: a line is whole or absent, and a
  // short write (a full file system) is an error like any other.
  ssize_t n = ::write(fd_, line.data(), line.size());
  int err = n < 0 ? errno : (static_cast<size_t>(n) == line.size() ? 0 : ENOSPC);
  if (err == 0) {
    if (!error_.empty()) {
      log::info("history: writing " + path_ + " again after: " + error_);
      error_.clear();
    }
    return;
  }
  error_ =
      "cannot append to " + path_ + ": " + std::strerror(err) + " (events are kept in memory only)";
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  // A full disk fails every line; the journal and stderr get one warning a
  // minute, the status field says it all the time.
  if (last_warn_s_ < 0 || now.tv_sec - last_warn_s_ >= kWarnIntervalS) {
    last_warn_s_ = now.tv_sec;
    log::warn("history: " + error_);
  }
}

HistoryEvent HistoryLog::append(json data) {
  HistoryEvent e;
  e.seq = ++seq_;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ts.tv_nsec / 1000000));
  json line = {{"seq", e.seq}, {"time", buf}};
  for (auto it = data.begin(); it != data.end(); ++it) line[it.key()] = it.value();
  e.data = std::move(line);
  write_line(e.data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
  tail_.push_back(e);
  while (tail_.size() > keep_) tail_.pop_front();
  return e;
}

std::vector<HistoryEvent> HistoryLog::since(uint64_t seq) const {
  std::vector<HistoryEvent> out;
  for (const auto& e : tail_)
    if (e.seq > seq) out.push_back(e);
  return out;
}

// ---------------------------------------------------------------- session

// Everything that exists only while a target is being tuned.
struct Runtime::Session {
  std::unique_ptr<TargetSession> target;
  KnobGate* knobs = nullptr;        // the target's
  MetricSource* metrics = nullptr;  // the target's
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<Agent> speculator;
  std::unique_ptr<Agent> actor;
  int64_t started_ns = 0;
  // A comm, cgroup or unit target may have no process yet (a service started
  // before the application it tunes) or lose all of them (a restart). The
  // engine is built when the first process appears, so its knob set and
  // baseline come from real tasks; while the target is empty no window is
  // judged, and the settings in force reach the returning tasks.
  bool target_empty = false;
  bool pause_pending = false;  // paused before the engine existed
  // Agent replies that arrived while the target had no process.
  std::vector<std::pair<AgentRole, AgentReply>> deferred_replies;

  Agent* agent(AgentRole r) { return r == AgentRole::Speculator ? speculator.get() : actor.get(); }
};

namespace {

LinuxPlatformOptions platform_options(const RunConfig& c) {
  return {c.knobs, c.metric, c.command, c.min_samples, c.window_ms};
}

}  // namespace

Runtime::Runtime(RunConfig config, boost::asio::io_context& io, RuntimeEnvironment env)
    : cfg_(std::move(config)),
      io_(io),
      own_platform_(env.platform ? nullptr
                                 : std::make_unique<LinuxPlatform>(platform_options(cfg_))),
      own_agents_(env.agents ? nullptr : std::make_unique<LibraryAgentFactory>(io)),
      platform_(env.platform ? *env.platform : *own_platform_),
      agents_(env.agents ? *env.agents : *own_agents_),
      clock_(env.clock ? *env.clock : steady_clock_),
      signals_(io),
      window_timer_(io),
      duration_timer_(io) {
  log::set_min_level(cfg_.log_level == "debug"     ? log::Level::Debug
                     : cfg_.log_level == "warning" ? log::Level::Warning
                     : cfg_.log_level == "error"   ? log::Level::Error
                                                   : log::Level::Info);
}

Runtime::~Runtime() {
  // The D-Bus service holds hooks into this surface: it goes first.
  if (dbus_) dbus_->shutdown();
  dbus_.reset();
  if (session_) stop_session("exit");
}

const engine::Engine* Runtime::engine() const {
  return session_ ? session_->engine.get() : nullptr;
}

int Runtime::run(std::optional<double> duration_s) {
  open();
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (!ec) shutdown(sig == SIGINT ? "SIGINT" : "SIGTERM");
  });
  if (duration_s) {
    duration_timer_.expires_after(
        std::chrono::milliseconds(static_cast<int64_t>(*duration_s * 1000)));
    duration_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) shutdown("duration reached");
    });
  }
  next_tick_ = std::chrono::steady_clock::now();
  schedule_tick();
  // sd_notify hook: READY once measuring (or waiting for a target), then
  // STATUS per window and WATCHDOG pings from the notifier's own timer.
  notifier_->ready(session_ ? "tuning " + cfg_.target->describe()
                            : "waiting for a target (specactctl target)");
  io_.run();
  return 0;
}

void Runtime::open() {
  history_.open(cfg_.state_dir);
  started_ns_ = clock_.now_ns();
  notifier_ = std::make_unique<SystemdNotifier>(io_);
  record_json({{"type", "started"},
               {"time_ns", started_ns_},
               {"mode", engine::to_string(cfg_.engine.mode)},
               {"window_ms", cfg_.window_ms},
               {"metric", to_string(cfg_.metric)},
               {"target", cfg_.target ? cfg_.target->to_json() : json(nullptr)},
               {"history", history_.path()}},
              "specactd started (" + engine::to_string(cfg_.engine.mode) + ", window " +
                  std::to_string(cfg_.window_ms) + " ms, history " + history_.path() + ")");
  if (cfg_.target) start_session();  // startup errors propagate: the config is unusable
  start_dbus();
}

void Runtime::start_dbus() {
  // D-Bus hook: the transport only needs this ControlSurface and the loop.
  if (!cfg_.dbus.enabled) return;
  DbusOptions opts;
  opts.bus_address = cfg_.dbus.bus_address;
#ifdef SPECACT_VERSION
  opts.version = SPECACT_VERSION;
#endif
  try {
    dbus_ = start_dbus_service(*this, io_, opts);
    log::info("serving " + std::string(kDbusName) + " on the bus as " + dbus_->unique_name());
  } catch (const DbusError& e) {
    if (cfg_.dbus.required) throw;
    log::warn(std::string("D-Bus unavailable, running without it: ") + e.what());
  }
}

void Runtime::shutdown(const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  log::info("stopping: " + why);
  if (notifier_) notifier_->stopping();
  window_timer_.cancel();
  duration_timer_.cancel();
  signals_.cancel();
  if (session_) stop_session(why);
  record_json({{"type", "stopped"}, {"time_ns", clock_.now_ns()}, {"reason", why}},
              "specactd stopped (" + why + ")");
  if (dbus_) dbus_->shutdown();
  dbus_.reset();
  io_.stop();
}

void Runtime::start_session() {
  auto s = std::make_unique<Session>();
  s->target = platform_.open_target(*cfg_.target);  // TargetError: no such pid, unit, ...
  s->knobs = &s->target->knobs();
  RestoreReport leftover = s->knobs->recover_leftover();
  if (!leftover.nothing_to_do) {
    record_json(
        {{"type", "recovered"}, {"time_ns", clock_.now_ns()}, {"report", leftover.to_json()}},
        "restored settings left by an earlier run:\n" + leftover.to_text());
    if (!leftover.ok)
      throw ConfigError("a journal left by an earlier run could not be fully restored (see " +
                        cfg_.state_dir + "; run `specactd restore`)");
  }
  s->metrics = &s->target->open_metrics();  // SamplerError
  s->speculator = agents_.make(AgentRole::Speculator, cfg_.speculator);
  s->actor = agents_.make(AgentRole::Actor, cfg_.actor);
  s->started_ns = clock_.now_ns();
  session_ = std::move(s);
  if (session_->metrics->refresh_targets() > 0) {
    start_engine();
    return;
  }
  session_->target_empty = true;
  session_->metrics->discard_window(clock_.now_ns());
  record_json({{"type", "waiting_for_tasks"},
               {"time_ns", clock_.now_ns()},
               {"target", cfg_.target->to_json()}},
              "waiting for " + cfg_.target->describe() +
                  ": no process matches yet; tuning starts when one appears");
  status_changed();
}

void Runtime::start_engine() {
  Session& s = *session_;
  std::vector<KnobInfo> catalogue = s.knobs->catalogue();
  Config baseline = s.knobs->read_current();
  std::vector<KnobInfo> managed;
  std::string unavailable;
  for (auto& k : catalogue) {
    if (k.available && baseline.count(k.name)) {
      managed.push_back(k);
    } else if (!k.available) {
      unavailable += "\n  " + k.name + ": " + k.unavailable_reason;
    }
  }
  if (!unavailable.empty()) log::debug("knobs not available here:" + unavailable);
  s.engine = std::make_unique<engine::Engine>(cfg_.engine, clock_, managed, baseline);
  s.target_empty = false;
  s.metrics->refresh_targets();
  s.metrics->discard_window(clock_.now_ns());  // opens window 1

  json knobs = json::array();
  for (const auto& k : s.engine->knobs()) knobs.push_back(k.name);
  record_json({{"type", "session_started"},
               {"time_ns", clock_.now_ns()},
               {"target", cfg_.target->to_json()},
               {"mode", engine::to_string(s.engine->mode())},
               {"knobs", knobs},
               {"baseline", config_to_json(s.engine->baseline())},
               {"speculator", s.speculator->describe()},
               {"actor", s.actor->describe()}},
              "tuning " + cfg_.target->describe() + " with " + std::to_string(knobs.size()) +
                  " knobs (" + knobs.dump() + "); speculator " + s.speculator->describe() +
                  ", actor " + s.actor->describe());
  if (s.pause_pending) handle(s.engine->pause());
  status_changed();
}

void Runtime::stop_session(const std::string& why) {
  if (!session_) return;
  Session& s = *session_;
  if (s.speculator) s.speculator->cancel();
  if (s.actor) s.actor->cancel();
  // Final numbers, for the audit trail and the benchmarks.
  if (s.engine) record_summary(*s.engine);
  last_stopped_ = status();
  if (cfg_.knobs.restore_on_exit) {
    RestoreReport rep = s.knobs->restore_all();
    record_json({{"type", "restored"},
                 {"time_ns", clock_.now_ns()},
                 {"reason", why},
                 {"ok", rep.ok},
                 {"report", rep.to_json()}},
                "restored settings (" + why + "):\n" + rep.to_text());
  } else {
    record_json({{"type", "left_in_place"}, {"time_ns", clock_.now_ns()}, {"reason", why}},
                "knobs.restore_on_exit is false: settings left in place (specactd restore puts "
                "them back)");
  }
  session_.reset();
}

void Runtime::record_summary(const engine::Engine& e) {
  auto usage_json = [](const RoleUsage& u) {
    return json{{"calls", u.calls},
                {"prompt_tokens", u.prompt_tokens},
                {"completion_tokens", u.completion_tokens},
                {"errors", u.errors},
                {"rejected", u.rejected},
                {"cost_usd", u.cost_usd}};
  };
  record_json({{"type", "status"},
               {"time_ns", clock_.now_ns()},
               {"windows", e.windows()},
               {"hits", e.hits()},
               {"misses", e.misses()},
               {"hit_rate", e.hit_rate()},
               {"confirmed", config_to_json(e.confirmed())},
               {"current", config_to_json(e.current())},
               {"baseline", config_to_json(e.baseline())},
               {"usage",
                {{"speculator", usage_json(e.usage(AgentRole::Speculator))},
                 {"actor", usage_json(e.usage(AgentRole::Actor))}}}},
              "session summary: " + std::to_string(e.windows()) + " windows, " +
                  std::to_string(e.hits()) + " hits / " + std::to_string(e.misses()) +
                  " misses, confirmed " + config_to_json(e.confirmed()).dump());
}

// ---------------------------------------------------------------- the loop

void Runtime::schedule_tick() {
  // Absolute deadlines: windows do not drift by the time each tick takes.
  next_tick_ += std::chrono::milliseconds(cfg_.window_ms);
  window_timer_.expires_at(next_tick_);
  window_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    try {
      close_window();
    } catch (const std::exception& e) {
      // One bad window must not take the daemon down with settings applied.
      log::error(std::string("window failed: ") + e.what());
    }
    if (!stopping_) schedule_tick();
  });
}

void Runtime::close_window() {
  if (!session_) return;
  Session& s = *session_;
  if (!track_target_tasks()) return;
  s.knobs->reapply_to_new_threads();
  std::vector<std::string> yielded;
  for (const auto& y : s.knobs->check_yielded()) {
    record_json({{"type", "yield_detail"},
                 {"time_ns", clock_.now_ns()},
                 {"knob", y.knob},
                 {"instance", y.instance},
                 {"expected", y.expected},
                 {"found", y.found},
                 {"detail", y.detail}},
                y.knob + " (" + y.instance + ") changed behind specactd's back: " + y.expected +
                    " -> " + y.found + (y.detail.empty() ? "" : " (" + y.detail + ")"));
    yielded.push_back(y.knob);
  }
  if (!yielded.empty()) handle(s.engine->on_yielded(yielded));

  Window w = s.metrics->close_window(clock_.now_ns());
  engine::Output out = s.engine->on_window(w);
  // The window hook for D-Bus: window_to_json plus what the engine made of it.
  for (const auto& e : out.events) {
    if (e.type != "window") continue;
    json j = window_to_json(w);
    j["metric"] = to_string(cfg_.metric);
    j["objective_us"] = e.fields.value("objective_us", json(nullptr));
    j["config"] = e.fields.value("config", json::object());
    j["phase"] = e.fields.value("straddled", false)     ? "straddled"
                 : e.fields.value("provisional", false) ? "provisional"
                                                        : "confirmed";
    last_window_ = j;
    if (on_window) on_window(j);
  }
  handle(std::move(out));
  if (notifier_ && session_) {
    const auto& eng = *session_->engine;
    std::string p95 =
        last_window_.value("objective_us", json(nullptr)).is_number()
            ? std::to_string(static_cast<long long>(last_window_["objective_us"].get<double>())) +
                  " us"
            : "n/a";
    notifier_->status("window " + std::to_string(w.index) + ": p95 " + p95 + ", " + eng.state() +
                      ", hit rate " + std::to_string(static_cast<int>(eng.hit_rate() * 100)) + "%");
  }
  status_changed();
}

bool Runtime::track_target_tasks() {
  Session& s = *session_;
  size_t procs = s.metrics->refresh_targets();
  const bool empty = procs == 0;
  if (empty && cfg_.target->kind == TargetSpec::Kind::Pid) {
    // A pid never comes back. As a service the daemon stays up for the next
    // target; run from a shell it has nothing left to do.
    const std::string why = "target " + cfg_.target->describe() + " exited";
    if (!dbus_) {
      shutdown(why);
      return false;
    }
    stop_session(why);
    record_json({{"type", "target_exited"}, {"time_ns", clock_.now_ns()}},
                why + "; waiting for a new target (specactctl target)");
    status_changed();
    return false;
  }
  if (!empty && !s.engine) {
    record_json({{"type", "target_appeared"}, {"time_ns", clock_.now_ns()}, {"processes", procs}},
                cfg_.target->describe() + ": " + std::to_string(procs) +
                    " process(es) appeared; probing their knobs");
    start_engine();
    return false;
  }
  if (empty != s.target_empty) {
    s.target_empty = empty;
    if (empty)
      record_json({{"type", "target_empty"}, {"time_ns", clock_.now_ns()}},
                  cfg_.target->describe() +
                      " has no process now; windows are not judged until one appears");
    else
      record_json({{"type", "target_returned"}, {"time_ns", clock_.now_ns()}, {"processes", procs}},
                  cfg_.target->describe() + ": " + std::to_string(procs) +
                      " process(es) again; the settings in force are applied to them");
  } else if (!empty) {
    return true;
  }
  // An empty window, or the one that spans the gap, is evidence for nothing:
  // discard it so the next window starts with the returning tasks.
  if (!empty) {
    s.knobs->reapply_to_new_threads();
    auto deferred = std::move(s.deferred_replies);
    s.deferred_replies.clear();
    for (auto& [role, reply] : deferred) handle(s.engine->on_agent_reply(role, reply));
  }
  s.metrics->discard_window(clock_.now_ns());
  status_changed();
  return false;
}

void Runtime::handle(engine::Output out) {
  for (const auto& e : out.events) record(e);
  for (auto& a : out.actions) {
    if (!session_) return;
    Session& s = *session_;
    if (auto* ap = std::get_if<engine::ApplyAction>(&a)) {
      ApplyResult r = s.knobs->apply(ap->config, ap->who + ": " + ap->why);
      engine::ApplyOutcome o;
      // The machine is the truth: read back what is in force now.
      Config now = s.knobs->read_current();
      for (const auto& [k, v] : now)
        if (ap->config.count(k)) o.applied[k] = v;
      std::string errors;
      for (const auto& kr : r.results) {
        if (kr.status == KnobResult::Status::Yielded) o.yielded.push_back(kr.knob);
        if (kr.status == KnobResult::Status::Failed || kr.status == KnobResult::Status::Rejected ||
            kr.status == KnobResult::Status::Unavailable)
          errors += (errors.empty() ? "" : "; ") + kr.knob + ": " + kr.error;
      }
      o.error = errors;
      if (!errors.empty()) apply_errors_ += (apply_errors_.empty() ? "" : "; ") + errors;
      if (!r.all_ok())
        record_json(
            {{"type", "apply_result"}, {"time_ns", clock_.now_ns()}, {"result", r.to_json()}},
            "apply was not fully done: " + r.to_json().dump(), false);
      handle(s.engine->on_apply_outcome(o));
    } else if (auto* call = std::get_if<engine::CallAgentAction>(&a)) {
      call_agent(call->role, std::move(call->context));
    } else if (auto* cancel = std::get_if<engine::CancelAgentAction>(&a)) {
      if (Agent* ag = s.agent(cancel->role)) ag->cancel();
    }
  }
}

void Runtime::call_agent(AgentRole role, AgentContext ctx) {
  Agent* agent = session_->agent(role);
  if (!agent) return;
  if (agent->busy()) agent->cancel();  // the engine thinks it is idle: it is the authority
  Session* session = session_.get();
  agent->request(ctx, [this, role, session](AgentReply reply) {
    // A reply for a session that has ended is not evidence for the new one.
    if (!session_ || session_.get() != session) return;
    json usage = {{"prompt_tokens", reply.usage.prompt_tokens},
                  {"completion_tokens", reply.usage.completion_tokens},
                  {"latency_ms", reply.usage.latency_ms},
                  {"cost_usd", reply.usage.cost_usd}};
    record_json({{"type", "agent_reply"},
                 {"time_ns", clock_.now_ns()},
                 {"role", to_string(role)},
                 {"candidates", reply.candidates.size()},
                 {"wants_more_evidence", reply.wants_more_evidence},
                 {"rejected", reply.rejected},
                 {"error", reply.error},
                 {"usage", usage}},
                std::string(to_string(role)) + " replied in " +
                    std::to_string(static_cast<long long>(reply.usage.latency_ms)) + " ms with " +
                    std::to_string(reply.candidates.size()) + " candidate(s)",
                false);
    if (session_->target_empty) {
      // Nothing to apply it to: it waits for the target's processes to return.
      session_->deferred_replies.emplace_back(role, std::move(reply));
      return;
    }
    handle(session_->engine->on_agent_reply(role, reply));
    status_changed();
  });
}

void Runtime::record(const engine::Event& e) {
  // Decisions go to stderr; the rest (windows, calls, skipped trials) at debug.
  const bool quiet = e.type == "window" || e.type == "agent_called" || e.type == "agent_waiting" ||
                     e.type == "trial_skipped";
  json j = e.to_json();
  if (e.type == "window") j["metric"] = to_string(cfg_.metric);
  record_json(std::move(j), e.summary, !quiet);
}

void Runtime::record_json(json j, const std::string& line, bool info) {
  // The one line for people travels with the event (history, D-Bus, watch).
  if (!line.empty() && !j.contains("summary")) j["summary"] = line;
  HistoryEvent ev = history_.append(std::move(j));
  if (!line.empty()) (info ? log::info(line) : log::debug(line));
  if (on_event) on_event(ev);
}

void Runtime::status_changed() {
  if (on_status_changed) on_status_changed();
}

// ---------------------------------------------------------------- control surface

Runtime::Session& Runtime::need_session(const char* what) {
  if (!session_)
    throw ControlError("NotRunning", std::string("cannot ") + what +
                                         ": not tuning (set a target with specactctl target, then "
                                         "specactctl start)");
  return *session_;
}

StatusSnapshot Runtime::status() {
  if (!session_) {
    StatusSnapshot s = last_stopped_;
    s.state = "stopped";
    s.mode = engine::to_string(cfg_.engine.mode);
    s.target = cfg_.target ? cfg_.target->to_json() : json(nullptr);
    s.uptime_s = static_cast<double>(clock_.now_ns() - started_ns_) / 1e9;
    s.warnings = warnings();
    return s;
  }
  if (!session_->engine) {
    StatusSnapshot s;
    s.state = "waiting";  // for the target's first process
    s.mode = engine::to_string(cfg_.engine.mode);
    s.target = cfg_.target->to_json();
    s.uptime_s = static_cast<double>(clock_.now_ns() - started_ns_) / 1e9;
    s.warnings = warnings();
    return s;
  }
  const engine::Engine& e = *session_->engine;
  StatusSnapshot s;
  s.state = e.state();
  s.mode = engine::to_string(e.mode());
  s.target = cfg_.target->to_json();
  s.current = e.current();
  s.confirmed = e.confirmed();
  s.baseline = e.baseline();
  s.pinned = e.pinned();
  s.last_window = last_window_.is_null() ? json(nullptr) : last_window_;
  s.baseline_p95_us = e.baseline_p95_us().value_or(0);
  s.hit_rate = e.hit_rate();
  s.windows = e.windows();
  s.speculator = e.usage(AgentRole::Speculator);
  s.actor = e.usage(AgentRole::Actor);
  s.uptime_s = static_cast<double>(clock_.now_ns() - started_ns_) / 1e9;
  if (session_->target_empty) s.state = "waiting";
  s.warnings = warnings();
  return s;
}

std::vector<std::string> Runtime::warnings() const {
  std::vector<std::string> out;
  if (!history_.error().empty()) out.push_back("history: " + history_.error());
  return out;
}

engine::Engine& Runtime::need_engine(const char* what) {
  Session& s = need_session(what);
  if (!s.engine)
    throw ControlError("Failed", std::string("cannot ") + what +
                                     " yet: " + cfg_.target->describe() +
                                     " has no process (tuning starts when one appears)");
  return *s.engine;
}

void Runtime::start() {
  if (session_) return;  // already tuning: nothing to do
  if (!cfg_.target)
    throw ControlError("NoSuchTarget", "no target set (specactctl target --pid/--unit/...)");
  try {
    start_session();
  } catch (const ControlError&) {
    throw;
  } catch (const TargetError& e) {
    throw ControlError("NoSuchTarget", e.what());
  } catch (const std::exception& e) {
    throw ControlError("Failed", e.what());
  }
}

void Runtime::stop() {
  if (!session_) return;
  stop_session("stop requested");
  status_changed();
}

void Runtime::pause() {
  Session& s = need_session("pause");
  if (s.engine)
    handle(s.engine->pause());
  else
    s.pause_pending = true;
  status_changed();
}

void Runtime::resume() {
  Session& s = need_session("resume");
  if (s.engine)
    handle(s.engine->resume());
  else
    s.pause_pending = false;
  status_changed();
}

void Runtime::set_mode(const std::string& mode) {
  auto m = engine::mode_from_string(mode);
  if (!m)
    throw ControlError("InvalidArgument",
                       "'" + mode + "' is not a mode (" + join_mode_names(", ") + ")");
  cfg_.engine.mode = *m;
  if (session_ && session_->engine) handle(session_->engine->set_mode(*m));
  status_changed();
}

void Runtime::set_target(const json& target) {
  TargetSpec spec;
  try {
    spec = TargetSpec::from_json(target);
  } catch (const std::exception& e) {
    throw ControlError("InvalidArgument", e.what());
  }
  try {
    platform_.validate_target(spec);
  } catch (const TargetError& e) {
    throw ControlError("NoSuchTarget", e.what());
  }
  // A new target is a new session: the old one's settings are put back first.
  if (session_) stop_session("target changed");
  cfg_.target = spec;
  start();
}

void Runtime::revert() {
  apply_errors_.clear();
  handle(need_engine("revert").revert_to_baseline());
  status_changed();
  if (!apply_errors_.empty())
    throw ControlError("Failed", "the baseline was not fully restored: " + apply_errors_);
}

void Runtime::pin(const std::string& knob, int64_t value) {
  engine::Engine& e = need_engine("pin");
  apply_errors_.clear();
  handle(e.pin(knob, value));
  status_changed();
  if (apply_errors_.empty()) return;
  // The caller is told the pin failed, so it must not stay in force either.
  if (session_ && session_->engine) handle(session_->engine->unpin(knob));
  throw ControlError(
      "Failed", "pin " + knob + "=" + std::to_string(value) + " was not applied: " + apply_errors_);
}

void Runtime::unpin(const std::string& knob) {
  handle(need_engine("unpin").unpin(knob));
  status_changed();
}

std::vector<KnobInfo> Runtime::list_knobs() {
  if (session_) return session_->knobs->catalogue();
  return platform_.catalogue_without_target();
}

std::vector<HistoryEvent> Runtime::history(uint64_t since_seq) { return history_.since(since_seq); }

}  // namespace specact
