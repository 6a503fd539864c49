// The tuning daemon's runtime: one single-threaded Boost.Asio loop that closes
// a measurement window every window_ms, feeds it to the engine, performs the
// engine's actions (knob writes through the KnobManager gate, agent calls),
// records every event (stderr line, history.jsonl, D-Bus signal) and serves
// the ControlSurface. The machine and the agents are reached only through
// the seams of runtime/platform.h, so tests run it on the simulated kernel.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "agents/agent.h"
#include "common/clock.h"
#include "common/control.h"
#include "common/state_dir.h"
#include "engine/engine.h"
#include "runtime/platform.h"
#include "runtime/run_config.h"

namespace specact {

class DbusService;
class SystemdNotifier;

// Append-only audit trail: history.jsonl under the state directory plus a
// bounded in-memory tail for GetHistory.
class HistoryLog {
 public:
  static constexpr const char* kHistoryName = "history.jsonl";
  static constexpr long kWarnIntervalS = 60;

  explicit HistoryLog(size_t keep = 10000) : keep_(keep) {}
  ~HistoryLog();
  HistoryLog(const HistoryLog&) = delete;
  HistoryLog& operator=(const HistoryLog&) = delete;
  // Opens <state_dir>/history.jsonl for appending through StateDir (a checked
  // directory, created 0700; no symlink or hard link followed). Throws
  // ConfigError naming the path.
  void open(const std::string& state_dir);
  const std::string& path() const { return path_; }
  // Adds "seq" and "time" (UTC, ISO 8601) and writes one line.
  HistoryEvent append(nlohmann::json data);
  std::vector<HistoryEvent> since(uint64_t seq) const;
  // Why the last line could not be written ("" when the last write worked).
  const std::string& error() const { return error_; }

 private:
  void write_line(const std::string& line);

  std::optional<StateDir> dir_;
  int fd_ = -1;
  std::string error_;
  long last_warn_s_ = -1;  // CLOCK_MONOTONIC seconds of the last warning
  std::string path_;
  uint64_t seq_ = 0;
  size_t keep_;
  std::deque<HistoryEvent> tail_;
};

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
  std::vector<KnobInfo> list_knobs() override;
  std::vector<HistoryEvent> history(uint64_t since_seq) override;

  const engine::Engine* engine() const;

 private:
  struct Session;

  void start_session();
  // Builds the engine from the knobs the target's processes have now.
  void start_engine();
  void stop_session(const std::string& why);
  void record_summary(const engine::Engine& e);
  // Follows the target's processes each window; false when this window is
  // not to be judged (no process, the first window after a gap, session gone).
  bool track_target_tasks();
  engine::Engine& need_engine(const char* what);
  std::vector<std::string> warnings() const;
  void schedule_tick();
  void handle(engine::Output out);
  void call_agent(AgentRole role, AgentContext ctx);
  void record(const engine::Event& e);
  void record_json(nlohmann::json j, const std::string& line, bool info = true);
  Session& need_session(const char* what);
  void status_changed();
  // The D-Bus hook: serves this ControlSurface as org.specact.Daemon1.
  void start_dbus();

  RunConfig cfg_;
  boost::asio::io_context& io_;
  // The environment's, or the real ones owned here.
  std::unique_ptr<Platform> own_platform_;
  std::unique_ptr<AgentFactory> own_agents_;
  SteadyClock steady_clock_;
  Platform& platform_;
  AgentFactory& agents_;
  const Clock& clock_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer window_timer_;
  boost::asio::steady_timer duration_timer_;
  std::chrono::steady_clock::time_point next_tick_;
  std::unique_ptr<Session> session_;
  HistoryLog history_;
  std::unique_ptr<DbusService> dbus_;
  std::unique_ptr<SystemdNotifier> notifier_;
  int64_t started_ns_ = 0;
  bool stopping_ = false;
  nlohmann::json last_window_;
  std::string apply_errors_;     // of the actions handled since a command cleared it
  StatusSnapshot last_stopped_;  // what status() shows between sessions
};

}  // namespace specact
