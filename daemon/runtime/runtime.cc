#include "runtime/runtime.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <map>
#include <utility>

#include "common/log.h"
#include "common/modes.h"
#include "dbus/dbus_service.h"
#include "dbus/systemd_notify.h"
#include "observe/journal_sink.h"
#include "observe/observer.h"
#include "runtime/linux_platform.h"

namespace specact {

using engine::EventKind;
using nlohmann::json;

namespace {

LinuxPlatformOptions platform_options(const RunConfig& c) {
  return {c.knobs, c.metric, c.command, c.min_samples, c.window_ms};
}

}  // namespace

void Runtime::LastWindow::on_event(const RecordedEvent& e) {
  if (e.kind == EventKind::Window) window = e.window;
}

Runtime::Runtime(RunConfig config, boost::asio::io_context& io, RuntimeEnvironment env)
    : cfg_(std::move(config)),
      io_(io),
      own_platform_(env.platform ? nullptr
                                 : std::make_unique<LinuxPlatform>(platform_options(cfg_))),
      own_agents_(env.agents ? nullptr : std::make_unique<LibraryAgentFactory>(io)),
      platform_(env.platform ? *env.platform : *own_platform_),
      agents_(env.agents ? *env.agents : *own_agents_),
      clock_(env.clock ? *env.clock : steady_clock_),
      events_(clock_, cfg_.metric),
      builder_(cfg_, platform_, agents_, events_, clock_),
      executor_(events_),
      signals_(io),
      window_timer_(io),
      duration_timer_(io),
      config_target_(cfg_.target),
      config_mode_(cfg_.engine.mode),
      learned_(cfg_.warm_start.max_entries) {
  log::set_min_level(cfg_.log_level == "debug"     ? log::Level::Debug
                     : cfg_.log_level == "warning" ? log::Level::Warning
                     : cfg_.log_level == "error"   ? log::Level::Error
                                                   : log::Level::Info);
  // The window is kept before anyone is told of it: a WindowMeasured
  // listener reading GetStatus sees it as last_window.
  events_.subscribe(history_);
  events_.subscribe(last_window_);
  // As a systemd service, decisions are structured journal entries instead of
  // stderr lines.
  if (observe::stderr_is_journal())
    events_.subscribe(journal_log_);
  else
    events_.subscribe(stderr_log_);
  events_.subscribe(surface_signals_);
  events_.subscribe(metrics_feed_);
}

Runtime::~Runtime() {
  // The D-Bus service holds hooks into this surface: it goes first.
  if (dbus_) dbus_->shutdown();
  dbus_.reset();
  if (session_) stop_session("exit");
  metrics_feed_.observer = nullptr;
  observer_.reset();
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
  ticking_ = true;
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
  settings_file_.open(cfg_.state_dir);
  started_ns_ = clock_.now_ns();
  notifier_ = std::make_unique<SystemdNotifier>(io_);
  start_observer();
  load_settings();
  if (cfg_.warm_start.enabled) {
    learned_.open(cfg_.state_dir);
    learned_problem_ = note_set_aside(learned_.load(), learned_.path(), "learned configs",
                                      "no remembered config is re-applied");
  }
  start_configured_session();
  start_dbus();
}

void Runtime::load_settings() {
  SavedSettings loaded;
  const StateFile::Loaded file = settings_file_.load(
      [&](const json& doc) { loaded = SavedSettings::from_json(doc, cfg_.target_policy); });
  if (file.used) saved_ = std::move(loaded);
  std::vector<std::string> dropped;
  if (saved_.target && saved_.target->kind == TargetSpec::Kind::Pid) {
    // A pid is only the process it was on the same boot with the same start time.
    const bool same_boot = !saved_.boot_id.empty() && saved_.boot_id == platform_.boot_id();
    std::vector<pid_t> same;
    for (pid_t pid : saved_.target->pids) {
      auto it = saved_.start_times.find(pid);
      if (same_boot && it != saved_.start_times.end() && it->second != 0 &&
          platform_.process_start_time(pid) == it->second)
        same.push_back(pid);
      else
        dropped.push_back("pid " + std::to_string(pid) + ": " +
                          (same_boot ? "exited, or the number now belongs to another process"
                                     : "saved before the machine rebooted"));
    }
    if (same.empty()) {
      saved_.target.reset();
      saved_.start_times.clear();
    } else if (same.size() < saved_.target->pids.size()) {
      saved_.target->pids = same;
    }
  }
  if (saved_.target) cfg_.target = saved_.target;
  if (saved_.mode) cfg_.engine.mode = *saved_.mode;

  record(EventKind::Started,
         {{"time_ns", started_ns_},
          {"mode", engine::to_string(cfg_.engine.mode)},
          {"window_ms", cfg_.window_ms},
          {"metric", to_string(cfg_.metric)},
          {"target", cfg_.target ? cfg_.target->to_json() : json(nullptr)},
          {"history", history_.path()},
          {"settings", settings_json()}},
         "specactd started (" + engine::to_string(cfg_.engine.mode) + ", window " +
             std::to_string(cfg_.window_ms) + " ms, history " + history_.path() + ")");
  settings_problem_ = note_set_aside(file, settings_file_.path(), "settings",
                                     "started from the config file's settings");
  if (!dropped.empty()) save_settings();
  if (saved_.target || saved_.mode || !dropped.empty()) {
    json fields = {{"file", settings_file_.path()}, {"dropped", dropped}};
    std::string summary = "settings restored from " + settings_file_.path() + ":";
    if (saved_.target) {
      fields["target"] = saved_.target->to_json();
      summary += " target " + saved_.target->describe();
    }
    if (saved_.mode) {
      fields["mode"] = engine::to_string(*saved_.mode);
      summary += " mode " + engine::to_string(*saved_.mode);
    }
    for (const auto& d : dropped) summary += "; dropped the saved target's " + d;
    record(EventKind::SettingsRestored, fields, summary);
  }
}

std::string Runtime::note_set_aside(const StateFile::Loaded& file, const std::string& path,
                                    const std::string& what, const std::string& outcome) {
  if (file.problem.empty()) return "";
  const std::string problem =
      file.problem + (file.kept_as.empty() ? "" : "; kept as " + file.kept_as) + "; " + outcome;
  record(EventKind::SetAside, {{"file", path}, {"kept_as", file.kept_as}, {"reason", file.problem}},
         what + ": " + problem);
  return problem;
}

void Runtime::start_configured_session() {
  if (!cfg_.target) return;
  if (!saved_.target) {
    start_session();  // startup errors propagate: the config is unusable
    return;
  }
  try {
    start_session();
    return;
  } catch (const std::exception& e) {
    // A saved target that no longer works is forgotten; the config's is
    // tried next, and its errors are the config's.
    session_.reset();
    const std::string why = std::string("the saved target ") + saved_.target->describe() +
                            " cannot be tuned: " + e.what();
    saved_.target.reset();
    saved_.start_times.clear();
    save_settings();
    record(EventKind::SettingsReset,
           {{"forgot", {"target"}}, {"reason", why}, {"settings", settings_json()}},
           why + "; forgotten, back to the config file's target");
  }
  cfg_.target = config_target_;
  if (cfg_.target) start_session();
}

void Runtime::MetricsFeed::on_event(const RecordedEvent& e) {
  if (observer) observer->on_event(e.entry.data);
}

void Runtime::start_observer() {
  observe::Observer::Options o;
  o.metrics = cfg_.metrics;
#ifdef SPECACT_VERSION
  o.version = SPECACT_VERSION;
#endif
  o.objective_metric = to_string(cfg_.metric);
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  o.start_time_seconds = static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
  observer_ = std::make_unique<observe::Observer>(std::move(o), io_, [this] { return status(); });
  observer_->start();  // MetricsServerError: the address cannot be listened on
  metrics_feed_.observer = observer_.get();
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
  record(EventKind::Stopped, {{"reason", why}}, "specactd stopped (" + why + ")");
  if (dbus_) dbus_->shutdown();
  dbus_.reset();
  if (observer_) observer_->stop();
  io_.stop();
}

void Runtime::start_session() {
  session_ = builder_.open(*cfg_.target);
  if (session_->metrics->refresh_targets() > 0) {
    start_engine();
    return;
  }
  session_->target_empty = true;
  session_->metrics->discard_window(clock_.now_ns());
  record(EventKind::WaitingForTasks, {{"target", cfg_.target->to_json()}},
         "waiting for " + cfg_.target->describe() +
             ": no process matches yet; tuning starts when one appears");
  status_changed();
}

void Runtime::start_engine() {
  Session& s = *session_;
  builder_.start_engine(s, *cfg_.target, [this] { restore_session_settings(); });
  status_changed();
}

void Runtime::restore_session_settings() {
  Session& s = *session_;
  engine::Engine& e = *s.engine;
  const bool saved_here = saved_.session_is_for(*cfg_.target);
  json pins = json::object();
  std::vector<std::string> dropped;
  if (saved_here) {
    for (const auto& [knob, value] : std::map<std::string, int64_t>(saved_.pins)) {
      std::string why;
      try {
        executor_.clear_errors();
        handle(e.pin(knob, value));
        if (!executor_.errors().empty()) {
          why = executor_.errors();
          handle(e.unpin(knob));
        }
      } catch (const ControlError& err) {
        why = err.what();
      }
      if (why.empty()) {
        pins[knob] = value;
      } else {
        dropped.push_back(knob + ": " + why);
        saved_.pins.erase(knob);
      }
    }
  }
  const bool paused = s.pause_pending || (saved_here && saved_.paused);
  if (paused) handle(e.pause());
  if (!dropped.empty()) remember_session_settings();
  if (!saved_here) return;
  std::string summary = "settings restored for " + cfg_.target->describe() + ":";
  for (const auto& [knob, value] : pins.items()) summary += " pin " + knob + "=" + value.dump();
  if (paused) summary += " paused";
  for (const auto& d : dropped) summary += "; dropped the pin of " + d;
  record(EventKind::SettingsRestored,
         {{"file", settings_file_.path()},
          {"target", cfg_.target->to_json()},
          {"pins", pins},
          {"paused", paused},
          {"dropped", dropped}},
         summary);
}

void Runtime::remember_session_settings() {
  if (!session_ || !cfg_.target) return;
  Session& s = *session_;
  std::map<std::string, int64_t> pins;
  bool paused = s.pause_pending;
  if (s.engine) {
    for (const auto& k : s.engine->pinned()) pins[k] = s.engine->current().at(k);
    paused = s.engine->paused();
  } else if (saved_.session_is_for(*cfg_.target)) {
    pins = saved_.pins;  // nothing can be pinned before the first process
  }
  saved_.set_session(*cfg_.target, std::move(pins), paused);
  save_settings();
}

void Runtime::save_target(const TargetSpec& spec) {
  saved_.target = spec;
  saved_.start_times.clear();
  saved_.boot_id.clear();
  if (spec.kind == TargetSpec::Kind::Pid) {
    saved_.boot_id = platform_.boot_id();
    for (pid_t pid : spec.pids) saved_.start_times[pid] = platform_.process_start_time(pid);
  }
  // Pins and pause were the previous target's.
  saved_.clear_session();
  save_settings();
}

void Runtime::save_settings() {
  std::string err = settings_file_.save(saved_.to_json());
  // The file now says what is in force, or the error does.
  settings_problem_.clear();
  if (err == settings_error_) return;
  if (err.empty()) {
    log::info("settings: writing " + settings_file_.path() + " again after: " + settings_error_);
  } else {
    log::warn("settings: " + err +
              " (what was set over D-Bus is in force but will not survive a restart)");
  }
  settings_error_ = err;
}

json Runtime::settings_json() const {
  return settings_status(saved_, config_target_, config_mode_, settings_error_.empty(),
                         settings_file_.path());
}

// ---------------------------------------------------------------- warm start

void Runtime::warm_start_after(const Window& w) {
  if (!cfg_.warm_start.enabled || !session_ || !session_->engine) return;
  Session& s = *session_;
  WarmStartProgress& ws = s.warm;
  const std::optional<json> key = learned_key(*cfg_.target);
  if (!key) return;
  engine::Engine& e = *s.engine;
  if (!ws.signature) {
    ws.probe.add(w);
    // The remembered config is judged against the baseline: its signature and
    // the offer wait until the baseline is measured well enough for that.
    if (e.current() != e.confirmed() || !e.estimate(e.confirmed()).confident) return;
    ws.signature = ws.probe.signature();
    if (!ws.signature) return;
  }
  if (ws.offered) return;
  // Paused, or a mode that applies nothing: the offer waits (the engine
  // measures meanwhile, and tries nothing).
  if (e.paused() || e.mode() == engine::Mode::Recommend || e.mode() == engine::Mode::Monitor)
    return;
  offer_warm_start(*key);
}

void Runtime::offer_warm_start(const json& key) {
  Session& s = *session_;
  WarmStartProgress& ws = s.warm;
  engine::Engine& e = *s.engine;
  ws.offered = true;
  const WorkloadSignature& sig = *ws.signature;
  const double decades = cfg_.warm_start.match_decades;
  const LearnedConfigs::Entry* entry = learned_.match(key, cfg_.metric, sig, decades);
  json fields = {{"target", key}, {"signature", sig.to_json()}, {"file", learned_.path()}};
  const std::string who = cfg_.target->describe();
  if (!entry) {
    const LearnedConfigs::Entry* near = learned_.closest(key, cfg_.metric, sig);
    if (!near) return;  // nothing remembered for this target: a first search
    char d[32];
    std::snprintf(d, sizeof d, "%.2f", sig.distance(near->signature));
    const std::string why = "the workload changed: " + sig.describe() + " now, " +
                            near->signature.describe() + " when its config was learned (" + d +
                            " decades apart, more than " + json(decades).dump() + ")";
    fields.update({{"applied", false},
                   {"remembered", near->to_json()},
                   {"distance", sig.distance(near->signature)},
                   {"reason", why}});
    record(EventKind::WarmStart, fields, "no warm start for " + who + ": " + why + "; searching");
    return;
  }
  fields.update({{"remembered", entry->to_json()}, {"distance", sig.distance(entry->signature)}});
  const std::string why = "remembered for " + sig.describe() + " (learned " + entry->learned_at +
                          ", " + entry->reason + ")";
  engine::Output out;
  try {
    out = e.warm_start(entry->config, why);
  } catch (const ControlError& err) {
    fields.update({{"applied", false}, {"reason", err.what()}});
    record(EventKind::WarmStart, fields,
           "no warm start for " + who + ": " + err.what() + "; searching");
    return;
  }
  const bool applies = !out.actions.empty();
  fields.update({{"applied", applies},
                 {"reason", applies ? why : "the remembered config is the one in force"}});
  record(EventKind::WarmStart, fields,
         "warm start for " + who + ": " +
             (applies ? describe_config(e.knobs(), entry->config) + " " + why
                      : std::string("the remembered config is the one in force")));
  handle(std::move(out));
  if (applies && session_) ws.warm_config = session_->engine->current();
}

void Runtime::note_for_learning(const engine::Event& ev) {
  if (!session_ || !session_->engine) return;
  WarmStartProgress& ws = session_->warm;
  switch (ev.kind()) {
    case EventKind::Confirmed:
    case EventKind::Overridden:
      if (ws.decided.empty()) ws.decided = "confirmed";
      ws.warm_config.reset();
      break;
    case EventKind::Converged:
      ws.decided = "converged";
      break;
    case EventKind::ReEngaged:
      // The workload changed under the session: what is decided from now on
      // belongs to its new shape, whose signature is taken afresh.
      ws.probe = SignatureProbe();
      ws.signature.reset();
      ws.remembered.reset();
      ws.warm_config.reset();
      break;
    case EventKind::Reverted:
      // The safety envelope threw the remembered config out: it no longer
      // suits this workload, and is not offered again.
      if (ws.warm_config && ev.fields.value("who", "") == "safety" &&
          ev.fields.value("provisional", json()) == config_to_json(*ws.warm_config)) {
        ws.warm_config.reset();
        ws.decided = "reverted";
      }
      break;
    default:
      break;
  }
}

void Runtime::remember_learned() {
  if (!session_ || !session_->engine) return;
  WarmStartProgress& ws = session_->warm;
  if (ws.decided.empty()) return;
  const std::string reason = std::exchange(ws.decided, "");
  const std::optional<json> key = learned_key(*cfg_.target);
  if (!cfg_.warm_start.enabled || !key || !ws.signature) return;
  const engine::Engine& e = *session_->engine;
  const std::string who = cfg_.target->describe();
  const double decades = cfg_.warm_start.match_decades;
  if (reason == "reverted") {
    learned_written(learned_.forget(*key, cfg_.metric, *ws.signature, decades));
    ws.remembered.reset();
    record(EventKind::Learned,
           {{"target", *key},
            {"signature", ws.signature->to_json()},
            {"config", nullptr},
            {"reason", reason},
            {"file", learned_.path()},
            {"error", learned_error_}},
           "forgot the remembered config of " + who +
               ": the safety envelope reverted it (the next run searches)");
    return;
  }
  LearnedConfigs::Entry entry;
  entry.key = *key;
  entry.metric = cfg_.metric;
  entry.signature = *ws.signature;
  entry.config = learned_config(e.confirmed(), e.baseline(), e.pinned());
  const json what = {{"config", config_to_json(entry.config)}, {"reason", reason}};
  if (ws.remembered == what) return;  // nothing new to write
  if (const auto est = e.estimate(e.confirmed()); est.confident) entry.p95_us = est.p95_us;
  entry.learned_at = utc_now_iso8601();
  entry.reason = reason;
  learned_written(learned_.remember(entry, decades));
  ws.remembered = what;
  record(EventKind::Learned,
         {{"target", *key},
          {"signature", ws.signature->to_json()},
          {"config", config_to_json(entry.config)},
          {"reason", reason},
          {"file", learned_.path()},
          {"error", learned_error_}},
         "learned for " + who + " (" + ws.signature->describe() + "): " +
             (entry.config.empty() ? std::string("the baseline")
                                   : describe_config(e.knobs(), entry.config)) +
             " (" + reason + ")" +
             (learned_error_.empty() ? "" : "; not written: " + learned_error_));
}

void Runtime::learned_written(const std::string& err) {
  if (err == learned_error_) return;
  if (err.empty())
    log::info("learned configs: writing " + learned_.path() + " again after: " + learned_error_);
  else
    log::warn("learned configs: " + err + " (what was learned is not remembered for a restart)");
  learned_error_ = err;
  learned_problem_.clear();
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
    record(EventKind::Restored, {{"reason", why}, {"ok", rep.ok}, {"report", rep.to_json()}},
           "restored settings (" + why + "):\n" + rep.to_text());
  } else {
    record(EventKind::LeftInPlace, {{"reason", why}},
           "knobs.restore_on_exit is false: settings left in place (specactd restore puts "
           "them back)");
  }
  session_.reset();
}

void Runtime::record_summary(const engine::Engine& e) {
  record(EventKind::Status,
         {{"windows", e.windows()},
          {"hits", e.hits()},
          {"misses", e.misses()},
          {"hit_rate", e.hit_rate()},
          {"confirmed", config_to_json(e.confirmed())},
          {"current", config_to_json(e.current())},
          {"baseline", config_to_json(e.baseline())},
          {"usage",
           {{"speculator", role_usage_to_json(e.usage(AgentRole::Speculator))},
            {"actor", role_usage_to_json(e.usage(AgentRole::Actor))}}}},
         "session summary: " + std::to_string(e.windows()) + " windows, " +
             std::to_string(e.hits()) + " hits / " + std::to_string(e.misses()) +
             " misses, confirmed " + config_to_json(e.confirmed()).dump());
}

// ---------------------------------------------------------------- the loop

void Runtime::schedule_tick() {
  // Absolute deadlines: windows do not drift by the time each tick takes.
  next_tick_ += std::chrono::milliseconds(cfg_.window_ms);
  window_timer_.expires_at(next_tick_);
  window_timer_.async_wait([this, gen = ++tick_generation_](const boost::system::error_code& ec) {
    // A cancel cannot recall a handler already queued: the generation can.
    if (ec || stopping_ || gen != tick_generation_) return;
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
  closing_window_ = true;
  struct Closed {
    bool& flag;
    ~Closed() { flag = false; }
  } closed{closing_window_};
  wrote_between_windows_ = false;  // this boundary is the restart
  Session& s = *session_;
  if (!track_target_tasks()) return;
  s.knobs->reapply_to_new_threads();
  std::vector<std::string> yielded;
  for (const auto& y : s.knobs->check_yielded()) {
    record(EventKind::YieldDetail,
           {{"knob", y.knob},
            {"instance", y.instance},
            {"expected", y.expected},
            {"found", y.found},
            {"detail", y.detail}},
           y.knob + " (" + y.instance + ") changed behind specactd's back: " + y.expected + " -> " +
               y.found + (y.detail.empty() ? "" : " (" + y.detail + ")"));
    yielded.push_back(y.knob);
  }
  if (!yielded.empty()) handle(s.engine->on_yielded(yielded));

  Window w = s.metrics->close_window(clock_.now_ns());
  if (observer_) observer_->on_window(w);  // its histograms, which no event carries
  // The window event's payload reaches the D-Bus window hook and
  // last_window_ through the event sink.
  handle(s.engine->on_window(w));
  warm_start_after(w);
  remember_learned();
  if (notifier_ && session_) {
    const auto& eng = *session_->engine;
    std::string p95 = last_window_.window.value("objective_us", json(nullptr)).is_number()
                          ? std::to_string(static_cast<long long>(
                                last_window_.window["objective_us"].get<double>())) +
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
    record(EventKind::TargetExited, json::object(),
           why + "; waiting for a new target (specactctl target)");
    status_changed();
    return false;
  }
  if (!empty && !s.engine) {
    record(EventKind::TargetAppeared, {{"processes", procs}},
           cfg_.target->describe() + ": " + std::to_string(procs) +
               " process(es) appeared; probing their knobs");
    start_engine();
    return false;
  }
  if (empty != s.target_empty) {
    s.target_empty = empty;
    if (empty)
      record(EventKind::TargetEmpty, json::object(),
             cfg_.target->describe() +
                 " has no process now; windows are not judged until one appears");
    else
      record(EventKind::TargetReturned, {{"processes", procs}},
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
  ++handle_depth_;
  struct Depth {
    int& depth;
    ~Depth() { --depth; }
  } depth{handle_depth_};
  for (const auto& e : out.events) {
    events_.record(e);
    note_for_learning(e);
  }
  for (auto& a : out.actions) {
    if (!session_) break;
    Session& s = *session_;
    if (auto* ap = std::get_if<engine::ApplyAction>(&a)) {
      if (!closing_window_) wrote_between_windows_ = true;
      handle(s.engine->on_apply_outcome(executor_.apply(*s.knobs, *ap)));
    } else if (auto* call = std::get_if<engine::CallAgentAction>(&a)) {
      call_agent(call->role, std::move(call->context));
    } else if (auto* cancel = std::get_if<engine::CancelAgentAction>(&a)) {
      if (Agent* ag = s.agent(cancel->role)) ag->cancel();
    }
  }
  if (handle_depth_ == 1 && wrote_between_windows_) restart_window();
}

void Runtime::restart_window() {
  wrote_between_windows_ = false;
  if (!session_ || !session_->engine || session_->target_empty || stopping_) return;
  try {
    session_->metrics->discard_window(clock_.now_ns());
  } catch (const std::exception& e) {
    // Called from an agent's reply or a control command: a failed read must
    // not take the daemon down with settings applied. The window then ends
    // at its boundary, marked straddled, and its own read reports the fault.
    log::error(std::string("restarting the window failed: ") + e.what());
    return;
  }
  if (!ticking_) return;
  next_tick_ = std::chrono::steady_clock::now();
  window_timer_.cancel();
  schedule_tick();
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
                  {"cached_tokens", reply.usage.cached_tokens},
                  {"completion_tokens", reply.usage.completion_tokens},
                  {"latency_ms", reply.usage.latency_ms},
                  {"cost_usd", reply.usage.cost_usd}};
    record(EventKind::AgentReply,
           {{"role", to_string(role)},
            {"candidates", reply.candidates.size()},
            {"wants_more_evidence", reply.wants_more_evidence},
            {"rejected", reply.rejected},
            {"error", reply.error},
            {"usage", usage}},
           std::string(to_string(role)) + " replied in " +
               std::to_string(static_cast<long long>(reply.usage.latency_ms)) + " ms with " +
               std::to_string(reply.candidates.size()) + " candidate(s)");
    if (session_->target_empty) {
      // Nothing to apply it to: it waits for the target's processes to return.
      session_->deferred_replies.emplace_back(role, std::move(reply));
      return;
    }
    handle(session_->engine->on_agent_reply(role, reply));
    remember_learned();
    status_changed();
  });
}

void Runtime::record(EventKind kind, json fields, const std::string& summary) {
  events_.record(kind, std::move(fields), summary);
}

void Runtime::status_changed() {
  if (on_status_changed) on_status_changed();
}

// ---------------------------------------------------------------- control surface

Session& Runtime::need_session(const char* what) {
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
    s.settings = settings_json();
    return s;
  }
  if (!session_->engine) {
    StatusSnapshot s;
    s.state = "waiting";  // for the target's first process
    s.mode = engine::to_string(cfg_.engine.mode);
    s.target = cfg_.target->to_json();
    s.uptime_s = static_cast<double>(clock_.now_ns() - started_ns_) / 1e9;
    s.warnings = warnings();
    s.settings = settings_json();
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
  s.last_window = last_window_.window;
  s.baseline_p95_us = e.baseline_p95_us().value_or(0);
  s.hit_rate = e.hit_rate();
  s.windows = e.windows();
  s.speculator = e.usage(AgentRole::Speculator);
  s.actor = e.usage(AgentRole::Actor);
  s.spend = {{"speculator", e.spend(AgentRole::Speculator).to_json()},
             {"actor", e.spend(AgentRole::Actor).to_json()}};
  s.uptime_s = static_cast<double>(clock_.now_ns() - started_ns_) / 1e9;
  if (session_->target_empty) s.state = "waiting";
  s.warnings = warnings();
  s.settings = settings_json();
  return s;
}

std::vector<std::string> Runtime::warnings() const {
  std::vector<std::string> out;
  if (!history_.error().empty()) out.push_back("history: " + history_.error());
  if (!settings_error_.empty())
    out.push_back("settings: " + settings_error_ +
                  " (what was set over D-Bus will not survive a restart)");
  if (!settings_problem_.empty()) out.push_back("settings: " + settings_problem_);
  if (!learned_error_.empty())
    out.push_back("learned configs: " + learned_error_ + " (not remembered for a warm start)");
  if (!learned_problem_.empty()) out.push_back("learned configs: " + learned_problem_);
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
  remember_session_settings();
  status_changed();
}

void Runtime::resume() {
  Session& s = need_session("resume");
  if (s.engine)
    handle(s.engine->resume());
  else
    s.pause_pending = false;
  remember_session_settings();
  status_changed();
}

void Runtime::set_mode(const std::string& mode) {
  auto m = engine::mode_from_string(mode);
  if (!m)
    throw ControlError("InvalidArgument",
                       "'" + mode + "' is not a mode (" + join_mode_names(", ") + ")");
  cfg_.engine.mode = *m;
  if (session_ && session_->engine) handle(session_->engine->set_mode(*m));
  saved_.mode = *m;
  save_settings();
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
  save_target(spec);
  start();
}

void Runtime::revert() {
  executor_.clear_errors();
  handle(need_engine("revert").revert_to_baseline());
  remember_session_settings();  // revert pauses
  status_changed();
  if (!executor_.errors().empty())
    throw ControlError("Failed", "the baseline was not fully restored: " + executor_.errors());
}

void Runtime::pin(const std::string& knob, int64_t value) {
  engine::Engine& e = need_engine("pin");
  executor_.clear_errors();
  handle(e.pin(knob, value));
  status_changed();
  if (executor_.errors().empty()) {
    remember_session_settings();
    return;
  }
  // The caller is told the pin failed, so it must not stay in force either.
  if (session_ && session_->engine) handle(session_->engine->unpin(knob));
  throw ControlError("Failed", "pin " + knob + "=" + std::to_string(value) +
                                   " was not applied: " + executor_.errors());
}

void Runtime::unpin(const std::string& knob) {
  handle(need_engine("unpin").unpin(knob));
  remember_session_settings();
  status_changed();
}

void Runtime::reset(const std::vector<std::string>& settings) {
  const auto& known = SavedSettings::names();
  for (const auto& name : settings)
    if (std::find(known.begin(), known.end(), name) == known.end())
      throw ControlError("InvalidArgument",
                         "'" + name + "' is not a setting (target, mode, pins, paused)");
  auto wants = [&](const char* name) {
    return settings.empty() || std::find(settings.begin(), settings.end(), name) != settings.end();
  };
  json forgot = json::array();
  engine::Engine* e = session_ && session_->engine ? session_->engine.get() : nullptr;
  if (wants("pins")) {
    if (!saved_.pins.empty() || (e && !e->pinned().empty())) forgot.push_back("pins");
    if (e)
      for (const auto& knob : e->pinned()) handle(e->unpin(knob));
    saved_.pins.clear();
  }
  if (wants("paused")) {
    const bool was_paused =
        saved_.paused || (e && e->paused()) || (session_ && session_->pause_pending);
    if (was_paused) forgot.push_back("paused");
    if (e && e->paused()) handle(e->resume());
    if (session_) session_->pause_pending = false;
    saved_.paused = false;
  }
  if (saved_.pins.empty() && !saved_.paused) saved_.clear_session();
  if (wants("mode") && saved_.mode) {
    forgot.push_back("mode");
    saved_.mode.reset();
    cfg_.engine.mode = config_mode_;
    if (e) handle(e->set_mode(config_mode_));
  }
  bool restart = false;
  if (wants("target") && saved_.target) {
    forgot.push_back("target");
    saved_.target.reset();
    saved_.start_times.clear();
    saved_.boot_id.clear();
    const json in_force = cfg_.target ? cfg_.target->to_json() : json(nullptr);
    const json configured = config_target_ ? config_target_->to_json() : json(nullptr);
    restart = in_force != configured;
  }
  save_settings();
  std::string summary = "settings reset to the config file's";
  for (const auto& f : forgot) summary += " " + f.get<std::string>();
  if (forgot.empty()) summary += " (nothing was set over D-Bus)";
  record(EventKind::SettingsReset, {{"forgot", forgot}, {"settings", settings_json()}}, summary);
  if (restart) {
    // The config's target replaces the one set over D-Bus: a new session.
    if (session_) stop_session("target reset to the config file's");
    cfg_.target = config_target_;
    if (cfg_.target) start();
  }
  status_changed();
}

std::vector<KnobInfo> Runtime::list_knobs() {
  if (session_) return session_->knobs->catalogue();
  return platform_.catalogue_without_target();
}

std::vector<HistoryEvent> Runtime::history(uint64_t since_seq) { return history_.since(since_seq); }

}  // namespace specact
