// The speculative engine: pure decision logic. Inputs are
// measurement windows, agent replies, apply outcomes and commands; every input
// returns the actions the caller must perform (apply a config, call or cancel
// an agent) and the events for the audit trail. It reads time only from the
// injected Clock and never touches the kernel, sleeps or does I/O, so tests run
// it in virtual time against a simulated kernel.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/agent_protocol.h"
#include "common/clock.h"
#include "common/control.h"
#include "common/evidence_options.h"
#include "common/knob_info.h"
#include "common/window.h"
#include "engine/event.h"
#include "engine/evidence_store.h"

namespace specact::engine {

enum class Mode { Speculative, ActorOnly, SpeculatorOnly, Recommend, Monitor };

// Limits on one role's spend beside the session token budget; 0 = unlimited.
struct RoleBudget {
  double usd = 0;  // per session
  uint64_t tokens_per_hour = 0;
  double usd_per_hour = 0;
};

// One role's spend against its budgets, for status.
struct SpendReport {
  uint64_t tokens = 0;  // this session (prompt + completion, incl. cancelled calls' estimate)
  double usd = 0;
  uint64_t tokens_last_hour = 0;  // the last 3600 s of the clock: the hourly rate
  double usd_last_hour = 0;
  uint64_t token_budget = 0;  // session; 0 = unlimited
  RoleBudget budget;
  std::string
      limited_by;  // empty, or the budget that stops calls now ("tokens", "usd_per_hour", ...)
  nlohmann::json to_json() const;  // with "tokens_left" etc. (null = unlimited)
};
std::optional<Mode> mode_from_string(std::string_view s);
std::string to_string(Mode m);

struct EngineOptions {
  Metric metric = Metric::ServiceP95;
  Mode mode = Mode::Speculative;
  // Candidates asked of the speculator: the anchor plus trials (1 = no trials).
  int speculator_top_k = 3;
  int actor_top_k = 1;
  // Safety envelope: a provisional config worse than the confirmed one by more
  // than `safety_margin` (relative p95) in `safety_windows` consecutive clean
  // windows is reverted at once; so is one that breaks a guard (p99 margin,
  // throughput floor: EvidenceOptions), which binds confirmed configs too.
  double safety_margin = 0.10;
  int safety_windows = 2;
  EvidenceOptions evidence;
  SearchOptions search;  // handed to the agents
  int online_cpus = 1;   // handed to the agents (the target's CPU share)
  // Selective launching of top-k trials: a further candidate is tried only if
  // confidence >= trial_cost (a trial costs one window under an untested config).
  double trial_cost = 0.2;
  double expected_actor_windows = 10;  // prior for the actor's latency (then measured)
  // Cadence: windows between calls at full speed. Converged (after
  // `converge_after` stable decisions) the speculator is not asked at all and
  // the actor's confirmations wait, counted from its last answer, 2, 4, 8 ...
  // windows, up to `max_backoff`: drift is the engine's own test on every
  // window, so a confirmation only re-checks a decided config; at the cap, a
  // 10-window actor is asked about once a minute of 1 s windows.
  int speculator_interval = 1;
  int actor_interval = 1;
  int converge_after = 2;
  int max_backoff = 64;
  // Re-engage when, while converged, the objective moves beyond chance (a
  // CUSUM test against the converged config's own windows, or a rank test:
  // the last three windows beyond every earlier one) and by more than
  // `drift_margin` (relative), or the mean throughput of the last
  // `drift_windows` clean windows moves by more than `drift_margin`.
  double drift_margin = 0.25;
  int drift_windows = 5;
  // Hard per-role token budgets (prompt + completion) for the session; 0 = unlimited.
  uint64_t speculator_token_budget = 0;
  uint64_t actor_token_budget = 0;
  // Per role: USD for the session, tokens and USD per hour (the spend of the
  // last 3600 s of the clock, a sliding window); 0 = unlimited. A call is
  // made only if its likely size (the role's largest call so far) still fits.
  RoleBudget speculator_budget;
  RoleBudget actor_budget;
  // Selective launching (Speculative mode): the speculator is asked only
  // while the actor thinks, and only when the expected saving of the call,
  // P(useful) x (the windows until the actor's answer less the speculator's
  // own latency) x window_price_usd, is at least the expected cost of a call
  // (its mean billed USD so far). The round's first call guesses the actor's
  // decision: P(useful) is P(hit) = (hits + 1) / (decisions + 2), the
  // measured hit rate under a uniform prior (0.5 before any decision). A
  // later call in the same round guesses the same decision from the same
  // view, so it is worth only its trials: P(useful) is the share of trial
  // rounds whose trial beat their anchor (kept in force at once), under the
  // same prior. An actor whose last answer asked for more evidence waits for
  // the speculator's measurements (it does not explore itself when a
  // speculator does): the speculator is asked to measure for it first (worth
  // a whole actor round), and the actor again once they are in.
  // window_price_usd < 0: the actor's own price of a window (its mean USD per
  // call / its latency in windows): what the user already pays per window of
  // deliberation. Unpriced (builtin or free agents, or the actor not yet
  // billed): the speculator is asked whenever its guess can still save time.
  double window_price_usd = -1;
  // false: the speculator is asked whenever it is free, with every branch of
  // speculator_top_k (always-on speculation, as before selective launching).
  bool selective_launch = true;
  // Memory bounds.
  size_t history_limit = 600;          // windows kept
  size_t context_history_limit = 240;  // windows handed to an agent
  size_t max_configs = 512;            // configs with pooled evidence
  uint64_t seed = 1;
};

class Engine {
 public:
  // `knobs`: the knobs the engine may manage (available ones are kept).
  // `baseline`: their values before specact (read from the machine).
  Engine(EngineOptions opts, const Clock& clock, std::vector<KnobInfo> knobs, Config baseline);

  Output on_window(const Window& w);
  // An apply emitted here (between windows) is expected to restart the window
  // at the write (the runtime does): a speculator's first trial may start at
  // once (when less than half of the open window has passed).
  Output on_agent_reply(AgentRole role, const AgentReply& reply);
  Output on_apply_outcome(const ApplyOutcome& outcome);
  // Knobs yielded outside an apply (the knob layer's periodic check).
  Output on_yielded(const std::vector<std::string>& knobs);

  // Commands. Invalid arguments throw ControlError (InvalidArgument / UnknownKnob).
  Output pause();
  Output resume();
  Output set_mode(Mode m);
  Output revert_to_baseline();  // applies the baseline and pauses (resume to tune again)
  Output pin(const std::string& knob, int64_t value);
  Output unpin(const std::string& knob);
  Output set_budgets(uint64_t speculator_tokens, uint64_t actor_tokens);
  // Warm start: `remembered` was confirmed for this workload in an earlier run.
  // It is applied as a provisional config, so the safety envelope and the
  // actor judge it exactly like a speculator's guess (an actor that agrees
  // confirms it, a hit; one that does not overrides it, a miss). Pins win over
  // it. Nothing is applied when it equals the config in force. Throws
  // ControlError when it cannot be used: UnknownKnob for a knob not managed
  // here, InvalidArgument for a value outside its domain, Failed when paused
  // or in a mode that applies nothing (recommend, monitor).
  Output warm_start(const Config& remembered, const std::string& why);

  // State, for status and tests.
  Mode mode() const { return opts_.mode; }
  std::string state() const;  // running, paused, converged, monitoring
  bool paused() const { return paused_; }
  bool converged() const { return converged_; }
  const Config& current() const { return current_; }
  const Config& confirmed() const { return confirmed_; }
  const Config& baseline() const { return baseline_; }
  bool provisional() const { return provisional_; }
  Config best() const;
  std::vector<std::string> pinned() const;
  const std::vector<KnobInfo>& knobs() const { return knobs_; }
  uint64_t windows() const { return windows_seen_; }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  // hits / (hits + misses); a miss is a provisional overridden by the actor or
  // reverted by the safety envelope.
  double hit_rate() const;
  const RoleUsage& usage(AgentRole r) const {
    return r == AgentRole::Speculator ? spec_.usage : actor_.usage;
  }
  bool busy(AgentRole r) const { return role(r).busy; }
  double actor_latency_windows() const { return actor_latency_windows_; }
  bool budget_exhausted(AgentRole r) const { return role(r).budget_exhausted; }
  SpendReport spend(AgentRole r) const;
  // Speculative branches asked of the speculator now (adaptive, <= speculator_top_k).
  int speculator_branches() const;
  // P(hit) the selective launch uses: (hits + 1) / (decisions + 2).
  double hit_probability() const;
  // P(a trial round beats its anchor): (rounds that did + 1) / (trial rounds + 2).
  double trial_probability() const;
  int backoff() const { return backoff_; }
  Estimate estimate(const Config& c) const { return evidence_.estimate(c); }
  std::optional<double> baseline_p95_us() const { return baseline_p95_; }
  const std::deque<WindowRecord>& history() const { return history_; }
  const EngineOptions& options() const { return opts_; }
  size_t pending_trials() const { return trials_.size(); }
  // The config in force is a speculator's trial (one window of exploration),
  // not the round's anchor.
  bool trial_in_force() const { return !trial_round_.empty() && current_ != trial_round_.front(); }

 private:
  struct RoleState {
    explicit RoleState(AgentRole r) : role(r) {}
    AgentRole role;
    bool busy = false;
    int64_t called_ns = 0;
    uint64_t called_window = 0;  // windows_seen_ at the call
    uint64_t calls = 0;
    uint64_t max_call_tokens = 0;
    uint64_t unbilled_tokens = 0;  // estimated tokens of cancelled calls
    double max_call_usd = 0;
    double unbilled_usd = 0;
    uint64_t billed = 0;         // replies that carried usage
    double latency_windows = 0;  // EMA of the answer time in windows (0: not measured)
    int asked_top_k = 1;         // candidates asked in the call in flight
    bool budget_exhausted = false;
    std::string hour_limit;          // the hourly budget holding calls back now, if any
    bool told_unprofitable = false;  // an agent_waiting event for this actor round was sent
    RoleUsage usage;
    struct Charge {
      int64_t at_ns;
      uint64_t tokens;
      double usd;
    };
    std::deque<Charge> last_hour;  // charges of the last 3600 s
  };
  struct Trial {
    Config config;
    double confidence = 0;
    std::string rationale;
  };

  RoleState& role(AgentRole r) { return r == AgentRole::Speculator ? spec_ : actor_; }
  const RoleState& role(AgentRole r) const { return r == AgentRole::Speculator ? spec_ : actor_; }
  bool speculator_enabled() const;
  bool actor_enabled() const;
  bool applies_enabled() const;
  uint64_t budget_of(AgentRole r) const;
  const RoleBudget& role_budget(AgentRole r) const {
    return r == AgentRole::Speculator ? opts_.speculator_budget : opts_.actor_budget;
  }
  void charge(RoleState& s, uint64_t tokens, double usd);
  SpendReport tally(const RoleState& s) const;        // spend, without limited_by
  std::string over_budget(const RoleState& s) const;  // which budget a next call would break
  std::optional<double> window_price() const;         // USD per window; nullopt: unpriced
  bool speculation_pays(std::string* why) const;
  // The actor waits for evidence, idle, and the speculator (which explores for
  // it) has not yet been asked to measure for it: a measurement call is due.
  bool measuring_for_actor() const;
  enum class MoveEvidence { None, Thin, Enough };
  MoveEvidence move_from_convergence(const Config& c) const;
  void end_verification(Output& out, const Window& w);

  Event event(std::string type, nlohmann::json fields, std::string summary) const;
  void apply(Output& out, const Config& c, ApplyKind kind, const std::string& who,
             const std::string& why, int64_t at_ns);
  Config sanitize(const Config& proposal, std::vector<std::string>* dropped) const;
  bool matches(const Config& a, const Config& b) const;
  std::string describe_config(const Config& c) const { return specact::describe_config(knobs_, c); }
  std::string describe_change(const Config& from, const Config& to) const {
    return specact::describe_change(knobs_, from, to);
  }
  GuardReference guard_reference() const;
  std::string guard_violation(const Estimate& e) const;
  AgentContext make_context(AgentRole r) const;
  bool has_new_evidence(const RoleState& r) const;
  bool feasible(const Estimate& e) const;

  void attribute(Output& out, const Window& w);
  void safety_check(Output& out, const Window& w, bool clean);
  std::string starvation(const Window& w, const Estimate& ref) const;
  void drift_check(Output& out, const Window& w, bool clean);
  void run_trials(Output& out, int64_t at_ns);
  // A config whose write was rate-limited is asked for again at the next
  // window boundary if nothing newer was decided.
  void retry_rate_limited(Output& out, int64_t at_ns);
  void maybe_call(Output& out, AgentRole r);
  void speculator_reply(Output& out, const AgentReply& reply);
  void actor_reply(Output& out, const AgentReply& reply);
  void decision_made(Output& out);
  void cancel(Output& out, AgentRole r);
  void clear_trials() {
    trials_.clear();
    trial_round_.clear();
  }
  void new_epoch();
  void drop_knob(const std::string& name);
  void promote_if_better(Output& out);

  EngineOptions opts_;
  const Clock& clock_;
  std::vector<KnobInfo> knobs_;
  std::map<std::string, int64_t> pins_;
  Config baseline_, confirmed_, current_;
  bool provisional_ = false;
  bool paused_ = false;
  bool converged_ = false;

  EvidenceStore evidence_;
  std::deque<WindowRecord> history_;
  size_t epoch_start_ = 0;        // history index (absolute count) where the epoch began
  uint64_t history_dropped_ = 0;  // windows dropped from the front of history_
  uint64_t decision_window_ = 0;  // absolute window count at the actor's last decision
  uint64_t windows_seen_ = 0;
  std::deque<int64_t> change_times_;  // when the config in force changed (recent)
  int64_t config_since_ns_ = 0;       // when the current config took effect
  uint64_t clean_since_change_ = 0;   // clean windows under the current config
  uint64_t last_clean_window_ = 0;    // windows_seen_ at the latest clean window
  Config recommended_;                // recommend mode: the actor's latest recommendation

  RoleState spec_{AgentRole::Speculator};
  RoleState actor_{AgentRole::Actor};
  double actor_latency_windows_;  // EMA of observed actor latency

  // Top-k trials of the latest speculator round.
  std::deque<Trial> trials_;
  std::vector<Config> trial_round_;  // configs tried in this round (incl. the one before)

  // Safety envelope.
  int strikes_ = 0;
  int confirmed_strikes_ = 0;  // guard strikes against the confirmed config

  // Convergence and drift.
  int stable_decisions_ = 0;
  int backoff_ = 1;
  uint64_t actor_answered_window_ = 0;  // windows_seen_ at the actor's latest answer
  Config decision_ref_;  // best config (recommend: recommendation) at the last decision
  bool has_decision_ref_ = false;
  int spec_idle_ = 1;  // speculator backoff: nothing new proposed, or its steps stopped gaining
  std::optional<ApplyAction> last_apply_;   // the last config asked for
  std::optional<ApplyAction> retry_apply_;  // ... when part of it was rate-limited
  std::vector<double> drift_fresh_;         // log p95 of the first windows after convergence
  std::vector<double> drift_fresh_tp_;      // their throughput
  std::deque<double> drift_recent_;         // log p95 - reference level, latest windows
  double drift_up_ = 0, drift_down_ = 0;    // CUSUM sums of the p95 against its converged value
  std::deque<double> drift_tp_recent_;      // throughput of the latest windows

  uint64_t hits_ = 0, misses_ = 0;
  uint64_t trial_rounds_ = 0,
           trial_rounds_won_ = 0;        // rounds with a trial; of them, beaten anchors
  bool spec_measurements_only_ = false;  // the speculator call in flight asks for measurements only
  bool actor_waits_for_evidence_ = false;
  bool measured_for_actor_ = false;  // the speculator measured for the waiting actor since its call
                                     // // the actor's last answer asked for more measurements
  std::set<Config> left_from_convergence_;  // configs a converged engine moved away from
  std::optional<Config> verifying_;  // the actor's move measured while converged (actor_reply)
  uint64_t verify_until_ = 0;        // windows_seen_ when that measurement ends
  uint64_t guessed_actor_call_ = 0;  // actor_.calls when the speculator last guessed (0: never)
  std::optional<double> baseline_p95_;
  std::optional<double> baseline_tp_;
  std::optional<double> baseline_p99_;
  std::optional<double> baseline_requests_;
};

}  // namespace specact::engine
