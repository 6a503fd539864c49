// The tuning daemon's runtime: one single-threaded Boost.Asio loop that closes
// a measurement window every window_ms, feeds it to the engine, performs the
// engine's actions and serves the ControlSurface. Its parts, one job each:
// the session builder (session.h), the action executor (action_executor.h),
// the event sink and its subscribers (event_sink.h, history_log.h), and the
// seams to the machine and the agents (platform.h), so tests run it on the
// simulated kernel.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>

#include "agents/agent.h"
#include "common/clock.h"
#include "common/control.h"
#include "engine/engine.h"
#include "runtime/action_executor.h"
#include "runtime/event_sink.h"
#include "runtime/history_log.h"
#include "runtime/journal_log.h"
#include "runtime/platform.h"
#include "runtime/run_config.h"
#include "runtime/saved_settings.h"
#include "runtime/session.h"
#include "runtime/state_file.h"
#include "runtime/warm_start.h"

namespace specact {

class DbusService;
class SystemdNotifier;
namespace observe {
class Observer;
}

// What the runtime runs against; each must outlive the Runtime. Null: the
// real machine (LinuxPlatform), the agents library on the loop, the steady
// clock.
struct RuntimeEnvironment {
  Platform* platform = nullptr;
  AgentFactory* agents = nullptr;
  const Clock* clock = nullptr;
};

class Runtime : public ControlSurface {
 public:
  Runtime(RunConfig config, boost::asio::io_context& io, RuntimeEnvironment env = {});
  ~Runtime() override;

  // open(), then runs the loop, closing a window every window_ms, until the
  // duration ends, SIGTERM or SIGINT (or shutdown()). Restores the knobs per
  // the config. Returns the exit code. Throws ConfigError / TargetError /
  // SamplerError / AgentConfigError / DbusError for startup failures (the
  // caller maps them to messages and exit codes).
  int run(std::optional<double> duration_s);
  // The steps run() is made of, for a caller that drives the loop itself (the
  // simulated-kernel tests): open() opens the history, starts the session on
  // the configured target and the D-Bus service; close_window() is one
  // window; shutdown() stops the session (restoring the knobs) and the loop.
  void open();
  void close_window();
  void shutdown(const std::string& why);

  // Every event of the run passes through here; subscribe to see them.
  EventSink& events() { return events_; }

  // ControlSurface.
  StatusSnapshot status() override;
  void start() override;
  void stop() override;
  void pause() override;
  void resume() override;
  void set_mode(const std::string& mode) override;
  void set_target(const nlohmann::json& target) override;
  void revert() override;
  void pin(const std::string& knob, int64_t value) override;
  void unpin(const std::string& knob) override;
  void reset(const std::vector<std::string>& settings) override;
  std::vector<KnobInfo> list_knobs() override;
  std::vector<HistoryEvent> history(uint64_t since_seq) override;

  const engine::Engine* engine() const;

 private:
  // Keeps the latest window payload for status().
  struct LastWindow : EventSubscriber {
    nlohmann::json window;
    void on_event(const RecordedEvent& e) override;
  };

  // Every event to the Prometheus outputs, once open() has started them.
  struct MetricsFeed : EventSubscriber {
    observe::Observer* observer = nullptr;
    void on_event(const RecordedEvent& e) override;
  };

  void start_session();
  void start_engine();
  void stop_session(const std::string& why);
  void record_summary(const engine::Engine& e);
  // Follows the target's processes each window; false when this window is
  // not to be judged (no process, the first window after a gap, session gone).
  bool track_target_tasks();
  engine::Engine& need_engine(const char* what);
  Session& need_session(const char* what);
  std::vector<std::string> warnings() const;
  void schedule_tick();
  // Records the events, then performs the actions (recursively for what the
  // engine makes of an apply's outcome). A write made between windows (an
  // agent's reply, a control command) restarts the window at the write.
  void handle(engine::Output out);
  // The open window mixes the configs before and after a write and would be
  // pooled nowhere (the engine marks it straddled): it is dropped and the
  // next one starts at the write, so the new config's first window ends one
  // window_ms after the write instead of up to two.
  void restart_window();
  void call_agent(AgentRole role, AgentContext ctx);
  void record(engine::EventKind kind, nlohmann::json fields, const std::string& summary);
  void status_changed();
  // The D-Bus hook: serves this ControlSurface as org.specact.Daemon1.
  void start_dbus();
  // The Prometheus hook: endpoint and textfile (daemon/observe), fed by
  // metrics_feed_ and by close_window (the windows' histograms).
  void start_observer();

  // Settings set over D-Bus (saved_settings.h). At open: read the file and
  // put its target and mode in force (a pid target only while its processes
  // are the same ones).
  void load_settings();
  // A state file read at open() that could not be used: recorded (set_aside),
  // and the status warning returned ("" when it was fine).
  std::string note_set_aside(const StateFile::Loaded& file, const std::string& path,
                             const std::string& what, const std::string& outcome);
  // Opens the session of the target in force; when a saved target cannot be
  // opened, it is forgotten and the config's target is tried.
  void start_configured_session();
  // The saved pins and pause of the target in force, before window 1.
  void restore_session_settings();
  // The session's pins and pause into the saved settings, then saves.
  void remember_session_settings();
  void save_target(const TargetSpec& spec);

  // Warm start (warm_start.h). After each window: the session's signature
  // once its baseline is measured, then the remembered config of a workload
  // that matches, offered to the engine as its first provisional.
  void warm_start_after(const Window& w);
  void offer_warm_start(const nlohmann::json& key);
  // Notes the engine's decisions in an event (handle() calls it for each).
  void note_for_learning(const engine::Event& e);
  // Writes what the engine decided since the last call to learned.json.
  void remember_learned();
  void learned_written(const std::string& err);
  void save_settings();
  nlohmann::json settings_json() const;

  RunConfig cfg_;
  boost::asio::io_context& io_;
  // The environment's, or the real ones owned here.
  std::unique_ptr<Platform> own_platform_;
  std::unique_ptr<AgentFactory> own_agents_;
  SteadyClock steady_clock_;
  Platform& platform_;
  AgentFactory& agents_;
  const Clock& clock_;

  EventSink events_;
  HistoryLog history_;
  LastWindow last_window_;
  StderrLog stderr_log_;
  JournalLog journal_log_{stderr_log_};  // instead of stderr_log_ under systemd
  ControlSurfaceSignals surface_signals_{*this};
  MetricsFeed metrics_feed_;
  SessionBuilder builder_;
  ActionExecutor executor_;

  boost::asio::signal_set signals_;
  boost::asio::steady_timer window_timer_;
  boost::asio::steady_timer duration_timer_;
  std::chrono::steady_clock::time_point next_tick_;
  uint64_t tick_generation_ = 0;  // a restarted window's superseded tick is ignored
  bool ticking_ = false;          // run() drives the windows (not a test closing them itself)
  bool closing_window_ = false;   // inside close_window(): its writes are at a boundary
  int handle_depth_ = 0;
  bool wrote_between_windows_ = false;
  std::unique_ptr<Session> session_;
  std::unique_ptr<DbusService> dbus_;
  std::unique_ptr<SystemdNotifier> notifier_;
  std::unique_ptr<observe::Observer> observer_;
  int64_t started_ns_ = 0;
  bool stopping_ = false;
  StatusSnapshot last_stopped_;  // what status() shows between sessions

  // What the config file says (the defaults), and what was set over D-Bus.
  std::optional<TargetSpec> config_target_;
  engine::Mode config_mode_;
  StateFile settings_file_{SavedSettings::kFileName, SavedSettings::kKind, SavedSettings::kFormat,
                           SavedSettings::kMaxBytes};
  SavedSettings saved_;
  std::string settings_error_;    // why the last save failed ("" when it worked)
  std::string settings_problem_;  // the file read at start could not be used
  LearnedConfigs learned_;
  std::string learned_error_;    // why the last write of learned.json failed
  std::string learned_problem_;  // learned.json read at start could not be used
};

}  // namespace specact
