#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/modes.h"

namespace specact::engine {

namespace {

std::string fmt_us(double us) {
  char buf[32];
  if (us >= 10000)
    std::snprintf(buf, sizeof buf, "%.1fms", us / 1000);
  else if (us >= 1000)
    std::snprintf(buf, sizeof buf, "%.2fms", us / 1000);
  else
    std::snprintf(buf, sizeof buf, "%.0fus", us);
  return buf;
}

// The window of the hourly budgets.
constexpr int64_t kHourNs = 3600LL * 1'000'000'000;

template <typename T>
void push_bounded(std::deque<T>& d, T v, size_t limit) {
  d.push_back(std::move(v));
  while (d.size() > limit) d.pop_front();
}

}  // namespace

// Mode's enumerators are in the order of kModeNames.
static_assert(kModeNames.size() == static_cast<size_t>(Mode::Monitor) + 1);

std::optional<Mode> mode_from_string(std::string_view s) {
  for (size_t i = 0; i < kModeNames.size(); ++i)
    if (kModeNames[i] == s) return static_cast<Mode>(i);
  return std::nullopt;
}

std::string to_string(Mode m) {
  const auto i = static_cast<size_t>(m);
  return i < kModeNames.size() ? std::string(kModeNames[i]) : "?";
}

std::string to_string(ApplyKind k) {
  switch (k) {
    case ApplyKind::Provisional:
      return "provisional";
    case ApplyKind::Confirmed:
      return "confirmed";
    case ApplyKind::Revert:
      return "revert";
  }
  return "?";
}

nlohmann::json Event::to_json() const {
  nlohmann::json j = {{"type", type}, {"time_ns", time_ns}};
  for (auto it = fields.begin(); it != fields.end(); ++it) j[it.key()] = it.value();
  if (!summary.empty()) j["summary"] = summary;
  return j;
}

void Output::append(Output&& o) {
  for (auto& a : o.actions) actions.push_back(std::move(a));
  for (auto& e : o.events) events.push_back(std::move(e));
}

Engine::Engine(EngineOptions opts, const Clock& clock, std::vector<KnobInfo> knobs, Config baseline)
    : opts_(std::move(opts)),
      clock_(clock),
      evidence_(opts_.evidence, opts_.max_configs),
      actor_latency_windows_(opts_.expected_actor_windows) {
  for (auto& k : knobs) {
    if (!k.available) continue;
    // A knob whose original value is unknown cannot be put back: do not manage it.
    auto it = baseline.find(k.name);
    std::optional<int64_t> v =
        it != baseline.end() ? std::optional<int64_t>(it->second) : k.current;
    if (!v) continue;
    baseline_[k.name] = *v;
    knobs_.push_back(std::move(k));
  }
  current_ = confirmed_ = baseline_;
  config_since_ns_ = clock_.now_ns();
  opts_.speculator_top_k = std::max(1, opts_.speculator_top_k);
  opts_.actor_top_k = std::max(1, opts_.actor_top_k);
  opts_.safety_windows = std::max(1, opts_.safety_windows);
  opts_.drift_windows = std::max(1, opts_.drift_windows);
  opts_.converge_after = std::max(1, opts_.converge_after);
  opts_.max_backoff = std::max(1, opts_.max_backoff);
}

// ---------------------------------------------------------------- helpers

bool Engine::speculator_enabled() const {
  return opts_.mode == Mode::Speculative || opts_.mode == Mode::SpeculatorOnly;
}
bool Engine::actor_enabled() const {
  return opts_.mode == Mode::Speculative || opts_.mode == Mode::ActorOnly ||
         opts_.mode == Mode::Recommend;
}
bool Engine::applies_enabled() const {
  return opts_.mode != Mode::Recommend && opts_.mode != Mode::Monitor;
}
uint64_t Engine::budget_of(AgentRole r) const {
  return r == AgentRole::Speculator ? opts_.speculator_token_budget : opts_.actor_token_budget;
}

std::string Engine::state() const {
  if (paused_) return "paused";
  if (opts_.mode == Mode::Monitor) return "monitoring";
  if (converged_) return "converged";
  return "running";
}

double Engine::hit_rate() const {
  uint64_t n = hits_ + misses_;
  return n ? static_cast<double>(hits_) / static_cast<double>(n) : 0.0;
}

double Engine::hit_probability() const {
  return static_cast<double>(hits_ + 1) / static_cast<double>(hits_ + misses_ + 2);
}

double Engine::trial_probability() const {
  return static_cast<double>(trial_rounds_won_ + 1) / static_cast<double>(trial_rounds_ + 2);
}

int Engine::speculator_branches() const {
  // Trials (branches after the guess) are worth making while something is
  // still uncertain. While the actor waits for evidence, it waits for these
  // measurements: every branch. Otherwise: the guess (1 - P(hit)) or the search (P(a trial round
  // beats its anchor), the measured share of rounds that still find a better
  // config). Both start at 0.5 under the uniform prior, where every branch of
  // top_k is asked; the larger of the two, doubled, is the share of the
  // top_k - 1 trials asked, so trials stop only once the speculator is
  // mostly right and its trials mostly find nothing. A trial costs a window
  // under an untested config, not a call: the share is rounded, not floored.
  const int k = opts_.speculator_top_k;
  if (k <= 1 || !opts_.selective_launch) return k;
  if (actor_waits_for_evidence_) return k;
  const double uncertainty = std::max(1 - hit_probability(), trial_probability());
  const double share = std::min(1.0, 2 * uncertainty);
  return 1 + static_cast<int>(std::lround((k - 1) * share));
}

void Engine::charge(RoleState& s, uint64_t tokens, double usd) {
  const int64_t now = clock_.now_ns();
  s.last_hour.push_back({now, tokens, usd});
  while (!s.last_hour.empty() && s.last_hour.front().at_ns <= now - kHourNs)
    s.last_hour.pop_front();
}

SpendReport Engine::tally(const RoleState& s) const {
  SpendReport p;
  p.tokens = s.usage.prompt_tokens + s.usage.completion_tokens + s.unbilled_tokens;
  p.usd = s.usage.cost_usd + s.unbilled_usd;
  const int64_t since = clock_.now_ns() - kHourNs;
  for (const auto& c : s.last_hour)
    if (c.at_ns > since) {
      p.tokens_last_hour += c.tokens;
      p.usd_last_hour += c.usd;
    }
  p.token_budget = budget_of(s.role);
  p.budget = role_budget(s.role);
  return p;
}

SpendReport Engine::spend(AgentRole r) const {
  SpendReport p = tally(role(r));
  p.limited_by = over_budget(role(r));
  return p;
}

std::string Engine::over_budget(const RoleState& s) const {
  // A call is made only if one more call of the role's largest size so far
  // still fits: a hard limit is never crossed by the call that reaches it.
  const SpendReport p = tally(s);
  if (p.token_budget && p.tokens + s.max_call_tokens > p.token_budget) return "tokens";
  if (p.budget.usd > 0 && p.usd + s.max_call_usd > p.budget.usd) return "usd";
  if (p.budget.tokens_per_hour && p.tokens_last_hour + s.max_call_tokens > p.budget.tokens_per_hour)
    return "tokens_per_hour";
  if (p.budget.usd_per_hour > 0 && p.usd_last_hour + s.max_call_usd > p.budget.usd_per_hour)
    return "usd_per_hour";
  return "";
}

nlohmann::json SpendReport::to_json() const {
  auto left_u = [](uint64_t budget, uint64_t spent) {
    return budget ? nlohmann::json(budget > spent ? budget - spent : 0) : nlohmann::json(nullptr);
  };
  auto left_d = [](double budget, double spent) {
    return budget > 0 ? nlohmann::json(std::max(0.0, budget - spent)) : nlohmann::json(nullptr);
  };
  auto or_null_u = [](uint64_t v) { return v ? nlohmann::json(v) : nlohmann::json(nullptr); };
  auto or_null_d = [](double v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {
      {"tokens", tokens},
      {"usd", usd},
      {"tokens_last_hour", tokens_last_hour},
      {"usd_last_hour", usd_last_hour},
      {"budget",
       {{"tokens", or_null_u(token_budget)},
        {"usd", or_null_d(budget.usd)},
        {"tokens_per_hour", or_null_u(budget.tokens_per_hour)},
        {"usd_per_hour", or_null_d(budget.usd_per_hour)}}},
      {"left",
       {{"tokens", left_u(token_budget, tokens)},
        {"usd", left_d(budget.usd, usd)},
        {"tokens_this_hour", left_u(budget.tokens_per_hour, tokens_last_hour)},
        {"usd_this_hour", left_d(budget.usd_per_hour, usd_last_hour)}}},
      {"limited_by", limited_by.empty() ? nlohmann::json(nullptr) : nlohmann::json(limited_by)}};
}

std::vector<std::string> Engine::pinned() const {
  std::vector<std::string> v;
  for (const auto& [k, _] : pins_) v.push_back(k);
  return v;
}

Event Engine::event(std::string type, nlohmann::json fields, std::string summary) const {
  Event e;
  e.type = std::move(type);
  e.time_ns = clock_.now_ns();
  e.fields = std::move(fields);
  e.summary = std::move(summary);
  return e;
}

Config Engine::sanitize(const Config& proposal, std::vector<std::string>* dropped) const {
  Config out = current_;
  for (const auto& [name, value] : proposal) {
    auto k = std::find_if(knobs_.begin(), knobs_.end(),
                          [&](const KnobInfo& i) { return i.name == name; });
    if (k == knobs_.end()) {
      if (dropped) dropped->push_back(name);
      continue;
    }
    if (pins_.count(name)) continue;  // a pin always wins over an agent
    out[name] = k->domain.clamp(value);
  }
  for (const auto& [name, value] : pins_) out[name] = value;
  return out;
}

bool Engine::matches(const Config& a, const Config& b) const {
  return evidence::same_config(knobs_, a, b);
}

GuardReference Engine::guard_reference() const {
  GuardReference g;
  g.p99_us = baseline_p99_;
  g.throughput = baseline_tp_;
  g.requests_per_s = baseline_requests_;
  return g;
}

std::string Engine::guard_violation(const Estimate& e) const {
  return evidence::guard_violation(e, guard_reference(), opts_.evidence,
                                   opts_.metric == Metric::CommandP95);
}

bool Engine::feasible(const Estimate& e) const { return guard_violation(e).empty(); }

Config Engine::best() const {
  // As the builtin agents' incumbent: the confirmed config unless a measured
  // one is better beyond the noise, then the best-ranked of those
  // (evidence::rank_score), so near-equal configs never take turns.
  const Estimate ref = evidence_.estimate(confirmed_);
  const bool ref_ok = ref.confident && feasible(ref);
  const Config* best = nullptr;
  double best_score = ref_ok ? evidence::rank_score(ref) : 0;
  for (const auto& [cfg, pool] : evidence_.all()) {
    Estimate e = evidence_.estimate(cfg);
    if (!e.confident || !feasible(e) || cfg.size() != current_.size()) continue;
    if (ref_ok && evidence::compare(e, ref, opts_.evidence) != evidence::Verdict::Better) continue;
    double score = evidence::rank_score(e);
    if ((!best && !ref_ok) || score < best_score) {
      best = &cfg;
      best_score = score;
    }
  }
  return best ? *best : confirmed_;
}

void Engine::apply(Output& out, const Config& c, ApplyKind kind, const std::string& who,
                   const std::string& why, int64_t at_ns) {
  if (c == current_) return;
  Config from = current_;
  ApplyAction a;
  a.config = c;
  a.kind = kind;
  a.who = who;
  a.why = why;
  last_apply_ = a;
  out.actions.emplace_back(std::move(a));
  current_ = c;
  push_bounded(change_times_, at_ns, 16);
  config_since_ns_ = at_ns;
  clean_since_change_ = 0;
  strikes_ = 0;
  out.events.push_back(event(
      "applied",
      {{"kind", to_string(kind)},
       {"who", who},
       {"why", why},
       {"config", config_to_json(c)},
       {"from", config_to_json(from)}},
      who + " applied " + to_string(kind) + ": " + describe_change(from, c) + " (" + why + ")"));
}

AgentContext Engine::make_context(AgentRole r) const {
  AgentContext ctx;
  ctx.role = r;
  ctx.metric = opts_.metric;
  for (const auto& k : knobs_)
    if (!pins_.count(k.name)) ctx.knobs.push_back(k);
  ctx.current = current_;
  ctx.confirmed = confirmed_;
  ctx.best = best();
  ctx.baseline = baseline_;
  // Only this epoch's windows: older ones describe a workload that is gone.
  std::vector<size_t> recs;  // indices into history_ (a deque: no pointer arithmetic)
  for (size_t i = 0; i < history_.size(); ++i) {
    uint64_t number = history_dropped_ + i + 1;
    if (number > epoch_start_) recs.push_back(i);
  }
  size_t skip =
      recs.size() > opts_.context_history_limit ? recs.size() - opts_.context_history_limit : 0;
  size_t since = 0;
  size_t view = 0;
  for (size_t i = skip; i < recs.size(); ++i) {
    ctx.history.push_back(history_[recs[i]]);
    uint64_t number = history_dropped_ + recs[i] + 1;
    if (number <= decision_window_) since = ctx.history.size();
    if (actor_.busy && number <= actor_.called_window) view = ctx.history.size();
  }
  ctx.since_decision = since;
  // A later call of the same actor round: the round's guess, made from the
  // same view, is in force; this call is for measurements only and needs no
  // view (its evidence would repeat the whole evidence list).
  ctx.measurements_only =
      r == AgentRole::Speculator && opts_.mode == Mode::Speculative && opts_.selective_launch &&
      ((actor_.busy && guessed_actor_call_ == actor_.calls) || measuring_for_actor());
  ctx.actor_view = r == AgentRole::Speculator && !ctx.measurements_only ? view : 0;
  ctx.top_k = r == AgentRole::Speculator ? speculator_branches() : opts_.actor_top_k;
  ctx.seed = opts_.seed;
  ctx.call_index = role(r).calls;
  ctx.online_cpus = opts_.online_cpus;
  ctx.actor_latency_windows = actor_latency_windows_;
  ctx.evidence = opts_.evidence;
  ctx.search = opts_.search;
  ctx.guard = guard_reference();
  // The actor explores itself unless a speculator explores for it (one with
  // room for trials beside its guess).
  ctx.actor_explores =
      !speculator_enabled() || spec_.budget_exhausted || opts_.speculator_top_k < 2;
  return ctx;
}

bool Engine::has_new_evidence(const RoleState& r) const {
  // Something new was measured since this role was last asked, and the config
  // in force is measured well enough to reason from (a config the round already
  // measured counts even if it was only just re-applied).
  if (r.calls > 0 && last_clean_window_ <= r.called_window) return false;
  return evidence_.estimate(current_).confident;
}

void Engine::new_epoch() {
  evidence_.clear();
  left_from_convergence_.clear();
  verifying_.reset();
  epoch_start_ = windows_seen_;
  clean_since_change_ = 0;
  drift_up_ = drift_down_ = 0;
  drift_fresh_.clear();
  drift_fresh_tp_.clear();
  drift_tp_recent_.clear();
  drift_recent_.clear();
}

void Engine::cancel(Output& out, AgentRole r) {
  RoleState& s = role(r);
  if (!s.busy) return;
  s.busy = false;
  // A cancelled request may still have been billed: charge its likely size to
  // the budget so cancellations cannot get around a hard limit.
  s.unbilled_tokens += s.max_call_tokens;
  s.unbilled_usd += s.max_call_usd;
  charge(s, s.max_call_tokens, s.max_call_usd);
  CancelAgentAction c;
  c.role = r;
  out.actions.emplace_back(c);
}

// ---------------------------------------------------------------- windows

Output Engine::on_window(const Window& w) {
  Output out;
  ++windows_seen_;
  attribute(out, w);
  if (opts_.mode == Mode::Monitor || paused_) return out;
  const bool clean = !history_.back().straddled;
  safety_check(out, w, clean);
  end_verification(out, w);
  drift_check(out, w, clean);
  if (opts_.mode == Mode::SpeculatorOnly) promote_if_better(out);
  run_trials(out, w.end_ns);
  retry_rate_limited(out, w.end_ns);
  // The actor first: the speculator is asked only while the actor thinks,
  // and an actor asked now is thinking. The speculator's call is emitted
  // first all the same, so its guess lands as early as it can.
  // An actor waiting for evidence is asked after the speculator has measured
  // for it.
  Output actor_call;
  if (measuring_for_actor()) {
    maybe_call(out, AgentRole::Speculator);
    maybe_call(actor_call, AgentRole::Actor);
  } else {
    maybe_call(actor_call, AgentRole::Actor);
    maybe_call(out, AgentRole::Speculator);
  }
  out.append(std::move(actor_call));
  return out;
}

// A converged engine's measurement of the actor's move (actor_reply) lasts
// the windows that settle a gain of one window sd; then the converged config
// is back in force, and the actor's next answer judges the move on the fresh
// windows with the rest.
void Engine::end_verification(Output& out, const Window& w) {
  if (!verifying_ || windows_seen_ < verify_until_) return;
  const bool in_force = current_ == *verifying_ && provisional_;
  verifying_.reset();
  if (!in_force) return;
  apply(out, confirmed_, ApplyKind::Revert, "engine",
        "converged: the actor's move measured on " +
            std::to_string(evidence::settling_windows(opts_.evidence)) +
            " fresh windows; back to the converged config until the actor judges it",
        w.end_ns);
  provisional_ = false;
}

void Engine::retry_rate_limited(Output& out, int64_t at_ns) {
  std::optional<ApplyAction> r = std::move(retry_apply_);
  retry_apply_.reset();
  // Asked once more at the next window boundary, unless something newer was
  // decided meanwhile (a later apply replaces the request).
  if (!r || !last_apply_ || last_apply_->config != r->config || r->config == current_) return;
  for (const auto& a : out.actions)
    if (std::holds_alternative<ApplyAction>(a)) return;
  apply(out, r->config, r->config == confirmed_ ? ApplyKind::Revert : r->kind, r->who,
        r->why + " (asked again: its write was rate-limited)", at_ns);
  provisional_ = current_ != confirmed_;
}

void Engine::attribute(Output& out, const Window& w) {
  bool straddled = false;
  // A command metric's result measures the time since its run started or its
  // previous report, which can begin before this window: a change inside that
  // span mixes two configs in the result.
  int64_t from = w.start_ns;
  if (opts_.metric == Metric::CommandP95 && w.command_since_ns > 0)
    from = std::min(from, w.command_since_ns);
  // A change at the very end counts too: the window was measured under the old
  // config but would be attributed to the new one.
  for (int64_t t : change_times_)
    if (t > from && t <= w.end_ns) straddled = true;
  WindowRecord rec{w, current_, straddled};
  std::optional<double> value;
  if (!straddled) {
    value = evidence_.add(current_, w, opts_.metric);
    ++clean_since_change_;
    last_clean_window_ = windows_seen_;
    if (current_ == baseline_) {
      Estimate b = evidence_.estimate(baseline_);
      if (b.confident) baseline_p95_ = b.p95_us;
      if (b.throughput) baseline_tp_ = b.throughput;
      if (b.confident && b.p99_us) baseline_p99_ = b.p99_us;
      if (b.requests_per_s) baseline_requests_ = b.requests_per_s;
    }
  } else {
    value = objective_us(w, opts_.metric);
  }
  history_.push_back(rec);
  while (history_.size() > opts_.history_limit) {
    history_.pop_front();
    ++history_dropped_;
  }
  const bool prov = provisional_ && current_ != confirmed_;
  nlohmann::json f = {{"window", window_to_json(w)},
                      {"config", config_to_json(current_)},
                      {"straddled", straddled},
                      {"provisional", prov}};
  f["objective_us"] = value ? nlohmann::json(*value) : nlohmann::json(nullptr);
  std::string s = "window " + std::to_string(w.index) + ": " + to_string(opts_.metric) + " " +
                  (value ? fmt_us(*value) : std::string("n/a")) +
                  (straddled ? " (straddles a change, not counted)" : "") +
                  (w.low_confidence ? " (low confidence)" : "") + (prov ? " [provisional]" : "");
  out.events.push_back(event("window", std::move(f), std::move(s)));
}

std::string Engine::starvation(const Window& w, const Estimate& ref) const {
  // Starvation shows in throughput and in how often the target runs at all;
  // neither needs a stable p95 (a starved target yields few, terrible samples).
  // The p99 guard is judged on pooled evidence instead: one window's p99
  // rests on a handful of samples.
  Estimate one;
  one.throughput = throughput_of(w, opts_.metric);
  if (w.duration_ms() > 0) {
    one.requests_per_s = static_cast<double>(w.nvcsw) / (w.duration_ms() / 1e3);
    one.seconds = w.duration_ms() / 1e3;
  }
  GuardReference g = guard_reference();
  g.p99_us.reset();
  std::string why =
      evidence::guard_violation(one, g, opts_.evidence, opts_.metric == Metric::CommandP95);
  char buf[160];
  if (opts_.metric != Metric::CommandP95 && ref.confident && ref.windows > 0) {
    const double per_window = static_cast<double>(ref.samples) / ref.windows;
    const uint64_t n = opts_.metric == Metric::RunqP95 ? w.runq.count : w.service.count;
    // A quarter of the usual samples: a drop no Poisson fluctuation of 40 or
    // more samples explains (its sd is at most 16 %).
    if (per_window >= 40 && static_cast<double>(n) < 0.25 * per_window) {
      std::snprintf(buf, sizeof buf,
                    "only %llu samples vs ~%.0f per window: the target barely runs",
                    static_cast<unsigned long long>(n), per_window);
      why += (why.empty() ? "" : ", ") + std::string(buf);
    }
  }
  return why;
}

void Engine::safety_check(Output& out, const Window& w, bool clean) {
  if (!applies_enabled() || !clean) return;
  if (provisional_ && current_ != confirmed_) {
    Estimate ref = evidence_.estimate(confirmed_);
    std::string why = starvation(w, ref);
    // Latency: this window's p95 if it is stable, else the pooled one, else none.
    std::optional<double> v;
    if (!w.low_confidence) {
      v = objective_us(w, opts_.metric);
    } else if (Estimate mine = evidence_.estimate(current_); mine.confident) {
      v = mine.p95_us;
    }
    // Noise is handled by requiring N consecutive windows, so one unlucky window
    // never reverts a good guess.
    if (ref.confident && v && *v > ref.p95_us * (1 + opts_.safety_margin))
      why += (why.empty() ? "" : ", ") + std::string("p95 ") + fmt_us(*v) + " vs confirmed " +
             fmt_us(ref.p95_us);
    // The p99 guard on the provisional's pooled windows.
    if (Estimate mine = evidence_.estimate(current_); mine.confident) {
      GuardReference p99_only;
      p99_only.p99_us = baseline_p99_;
      std::string g = evidence::guard_violation(mine, p99_only, opts_.evidence, false);
      if (!g.empty()) why += (why.empty() ? "" : ", ") + g;
    }
    const bool worse = !why.empty();
    if (!worse && !v) return;  // thin evidence and nothing alarming: wait
    strikes_ = worse ? strikes_ + 1 : 0;
    if (strikes_ < opts_.safety_windows) return;
    Config bad = current_;
    ++misses_;
    clear_trials();
    apply(out, confirmed_, ApplyKind::Revert, "safety",
          "provisional worse than confirmed for " + std::to_string(opts_.safety_windows) +
              " windows: " + why,
          w.end_ns);
    provisional_ = false;
    out.events.push_back(event("reverted",
                               {{"who", "safety"},
                                {"reason", why},
                                {"provisional", config_to_json(bad)},
                                {"config", config_to_json(confirmed_)},
                                {"miss", true}},
                               "safety reverted provisional " + describe_config(bad) + ": " + why));
    return;
  }
  // The guard holds for confirmed configs too: one that starves the target is a
  // constraint violation, not a matter of taste, whoever chose it.
  if (current_ == baseline_) {
    confirmed_strikes_ = 0;
    return;
  }
  std::string why = starvation(w, evidence_.estimate(baseline_));
  confirmed_strikes_ = why.empty() ? 0 : confirmed_strikes_ + 1;
  if (confirmed_strikes_ < opts_.safety_windows) return;
  confirmed_strikes_ = 0;
  // Back to the best config measured within the guards (best() ranks only
  // feasible ones; it is the config in force when nothing beats it), else the
  // baseline. Judging the fallback by this window would judge the starving
  // config again and always pick the baseline.
  Config fallback = best();
  if (fallback == current_) fallback = baseline_;
  for (const auto& [k, v] : pins_) fallback[k] = v;
  if (fallback == current_) return;  // the pins themselves are the problem: the user's call
  Config bad = current_;
  apply(out, fallback, ApplyKind::Revert, "safety", "guard: " + why, w.end_ns);
  confirmed_ = current_;
  provisional_ = false;
  clear_trials();
  out.events.push_back(
      event("reverted",
            {{"who", "safety"},
             {"reason", why},
             {"provisional", nullptr},
             {"was", config_to_json(bad)},
             {"config", config_to_json(confirmed_)},
             {"miss", false}},
            "safety reverted confirmed " + describe_change(bad, confirmed_) + ": " + why));
}

namespace {

// The rank test beside the CUSUM, which standardises by the windows' spread:
// on a workload whose windows are bimodal that spread is wide and a large
// change takes several windows to add up. Without assuming any distribution:
// if the converged windows are exchangeable, the chance that the last kRankRun
// of m + kRankRun are all above (or all below) every earlier one is
// 2 * kRankRun! m! / (m + kRankRun)!, i.e. 12 / ((m+1)(m+2)(m+3)) for runs of
// three. Summed over every window from m = kRankMin on it stays below
// 6 / ((kRankMin+1)(kRankMin+2)), 1.3 % per converged spell for 20, about what
// the CUSUM's own rate gives over a few hundred windows.
constexpr size_t kRankRun = 3;
constexpr size_t kRankMin = 20;

// +1 when the last kRankRun log p95s are all above every earlier one and
// `median` (the recent median's log ratio) is beyond `margin`, -1 for the
// mirror case, else 0.
int outranked(const std::vector<double>& fresh, double median, double margin) {
  if (fresh.size() < kRankMin + kRankRun) return 0;
  const auto split = fresh.end() - static_cast<std::ptrdiff_t>(kRankRun);
  const auto [lo_before, hi_before] = std::minmax_element(fresh.begin(), split);
  const auto [lo_last, hi_last] = std::minmax_element(split, fresh.end());
  if (*lo_last > *hi_before && median > margin) return 1;
  if (*hi_last < *lo_before && -median > margin) return -1;
  return 0;
}

}  // namespace

void Engine::drift_check(Output& out, const Window& w, bool clean) {
  // A provisional config in force says nothing about the converged one.
  if (!converged_ || !clean || w.low_confidence || current_ != confirmed_) return;
  std::optional<double> v = objective_us(w, opts_.metric);
  if (!v || *v <= 0) return;
  const Estimate e = evidence_.estimate(current_);
  if (!e.confident) return;
  const size_t n = static_cast<size_t>(opts_.drift_windows);
  std::optional<double> tp = throughput_of(w, opts_.metric);
  // The reference level is the mean of every clean window since convergence
  // before this one (a self-starting CUSUM): the windows that chose this
  // config favour it by luck (the winner's curse), fresh ones do not, and a
  // level from a few windows only would carry its own error into every test.
  // The spread comes from all of the config's windows.
  const double x = std::log(*v);
  const size_t m = drift_fresh_.size();
  double level = 0;
  for (double f : drift_fresh_) level += f / static_cast<double>(std::max<size_t>(m, 1));
  drift_fresh_.push_back(x);
  if (tp) drift_fresh_tp_.push_back(*tp);
  if (drift_fresh_.size() > opts_.history_limit) drift_fresh_.erase(drift_fresh_.begin());
  if (drift_fresh_tp_.size() > opts_.history_limit) drift_fresh_tp_.erase(drift_fresh_tp_.begin());
  if (m < n) return;
  if (tp) push_bounded(drift_tp_recent_, *tp, n);
  push_bounded(drift_recent_, x - level, n);
  // Page's two-sided CUSUM on the windows' standardised log p95: with a
  // reference of half a standard deviation and a decision level of eight it
  // raises a false alarm about once in 10^4 windows (hours of 1 s windows:
  // the test runs every window for as long as the daemon is converged),
  // finds a three-sd shift in about three windows and a workload change many
  // sds away in one.
  constexpr double kCusumSlack = 0.5;
  constexpr double kCusumLevel = 8.0;
  const double log_ratio = x - level;
  const double sd = e.window_sd * std::sqrt(1 + 1.0 / static_cast<double>(m));
  const double z = sd > 0 ? log_ratio / sd : 0;
  drift_up_ = std::max(0.0, drift_up_ + z - kCusumSlack);
  drift_down_ = std::max(0.0, drift_down_ - z - kCusumSlack);
  std::string reason;
  char buf[200];
  // Beyond chance, and beyond the margin: the median of the latest
  // `drift_windows` windows is off by more than drift_margin in the direction
  // the sum points (one odd window never re-engages).
  std::vector<double> recent(drift_recent_.begin(), drift_recent_.end());
  std::sort(recent.begin(), recent.end());
  const double median = recent.size() == n ? recent[n / 2] : 0;
  const double margin = std::log1p(opts_.drift_margin);
  const bool up = drift_up_ > kCusumLevel && median > margin;
  const bool down = drift_down_ > kCusumLevel && -median > margin;
  if (up || down) {
    std::snprintf(buf, sizeof buf,
                  "p95 moved to %.2fx its converged value (cumulative evidence %.1f sd beyond "
                  "chance, margin %.0f%%)",
                  std::exp(median), up ? drift_up_ : drift_down_, opts_.drift_margin * 100);
    reason = buf;
  } else if (const int side = outranked(drift_fresh_, median, margin); side != 0) {
    std::snprintf(buf, sizeof buf,
                  "p95 moved to %.2fx its converged value (the last %zu windows all %s than "
                  "every one of the %zu before them since convergence, margin %.0f%%)",
                  std::exp(median), kRankRun, side > 0 ? "higher" : "lower",
                  drift_fresh_.size() - kRankRun, opts_.drift_margin * 100);
    reason = buf;
  }
  double tp_ratio = 1;
  if (drift_tp_recent_.size() == n && !drift_fresh_tp_.empty()) {
    double now = 0, then = 0;
    for (double x : drift_tp_recent_) now += x / static_cast<double>(n);
    for (double x : drift_fresh_tp_) then += x / static_cast<double>(drift_fresh_tp_.size());
    tp_ratio = then > 0 ? now / then : 1;
    if (reason.empty() && std::abs(tp_ratio - 1) > opts_.drift_margin) {
      std::snprintf(buf, sizeof buf, "throughput moved to %.2fx its converged value", tp_ratio);
      reason = buf;
    }
  }
  if (reason.empty()) return;
  // The workload changed: old evidence describes a machine that is gone, and the
  // throughput reference scales with the workload's new intensity.
  if (baseline_tp_) *baseline_tp_ *= tp_ratio;
  converged_ = false;
  stable_decisions_ = 0;
  has_decision_ref_ = false;
  backoff_ = 1;
  spec_idle_ = 1;
  new_epoch();
  out.events.push_back(
      event("re_engaged", {{"reason", reason}}, "re-engaged at full cadence: " + reason));
}

void Engine::promote_if_better(Output& out) {
  if (!provisional_ || current_ == confirmed_) return;
  Estimate cur = evidence_.estimate(current_);
  Estimate conf = evidence_.estimate(confirmed_);
  if (evidence::compare(cur, conf, opts_.evidence) != evidence::Verdict::Better || !feasible(cur))
    return;
  confirmed_ = current_;
  provisional_ = false;
  stable_decisions_ = 0;
  out.events.push_back(event("confirmed",
                             {{"who", "engine"},
                              {"config", config_to_json(confirmed_)},
                              {"hit", false},
                              {"estimate", estimate_to_json(cur)}},
                             "engine confirmed " + describe_config(confirmed_) + " (p95 " +
                                 fmt_us(cur.p95_us) + " vs " + fmt_us(conf.p95_us) + ")"));
}

// ---------------------------------------------------------------- trials

void Engine::run_trials(Output& out, int64_t at_ns) {
  if (trial_round_.empty() || clean_since_change_ == 0) return;
  const Config anchor = trial_round_.front();
  const Estimate anchor_e = evidence_.estimate(anchor);
  // A trial measurably better than the anchor ends the round: the remaining
  // trials were planned around a config that is no longer the best.
  std::optional<Config> better;
  double better_score = 0;
  for (size_t i = 1; i < trial_round_.size(); ++i) {
    Estimate e = evidence_.estimate(trial_round_[i]);
    if (!feasible(e) || evidence::compare(e, anchor_e, opts_.evidence) != evidence::Verdict::Better)
      continue;
    if (!better || evidence::rank_score(e) < better_score) {
      better = trial_round_[i];
      better_score = evidence::rank_score(e);
    }
  }
  // A config measured before is worth another window only while its
  // comparison with the anchor is unsettled and it is the less known side.
  auto unsettled_against = [&](const Estimate& known, const Estimate& a) {
    return evidence::compare(known, a, opts_.evidence) == evidence::Verdict::Unknown &&
           known.windows < a.windows;
  };
  while (!better && !trials_.empty()) {
    Trial t = trials_.front();
    trials_.pop_front();
    Estimate known = evidence_.estimate(t.config);
    // Measured better than the anchor already (by windows of earlier rounds):
    // the round ends on it, as on a trial that won just now.
    if (known.confident && feasible(known) &&
        evidence::compare(known, anchor_e, opts_.evidence) == evidence::Verdict::Better) {
      better = t.config;
      break;
    }
    std::string skip;
    if (t.confidence < opts_.trial_cost) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "confidence %.2f below the trial cost %.2f", t.confidence,
                    opts_.trial_cost);
      skip = buf;
    } else if (known.confident && !unsettled_against(known, anchor_e)) {
      skip = "already measured";
    }
    if (!skip.empty()) {
      out.events.push_back(
          event("trial_skipped", {{"config", config_to_json(t.config)}, {"reason", skip}},
                "trial skipped (" + describe_change(current_, t.config) + "): " + skip));
      continue;
    }
    trial_round_.push_back(t.config);
    apply(out, t.config, t.config == confirmed_ ? ApplyKind::Revert : ApplyKind::Provisional,
          "speculator",
          "trial " + std::to_string(trial_round_.size() - 1) + ": " +
              (t.rationale.empty() ? std::string("top-k candidate") : t.rationale),
          at_ns);
    provisional_ = current_ != confirmed_;
    return;
  }
  trials_.clear();
  if (trial_round_.size() > 1) {
    ++trial_rounds_;
    if (better) ++trial_rounds_won_;
  }
  // Round over: back to the anchor, what should be in force when the actor
  // answers, unless a trial beat it.
  const Config chosen = better ? *better : anchor;
  if (chosen != current_) {
    std::string why = better ? "trial better than the round's anchor (p95 " +
                                   fmt_us(evidence_.estimate(chosen).p95_us) + " vs " +
                                   fmt_us(anchor_e.p95_us) + ")"
                             : std::string("trials done: back to the round's anchor");
    apply(out, chosen, chosen == confirmed_ ? ApplyKind::Revert : ApplyKind::Provisional,
          "speculator", why, at_ns);
    provisional_ = current_ != confirmed_;
  }
  trial_round_.clear();
  if (opts_.mode == Mode::SpeculatorOnly) {
    // Without an actor, a round is the unit of decision: it is stable when it
    // did not move the confirmed config.
    decision_made(out);
  }
}

// ---------------------------------------------------------------- agents

std::optional<double> Engine::window_price() const {
  if (opts_.window_price_usd >= 0) return opts_.window_price_usd;
  if (actor_.billed == 0 || actor_.usage.cost_usd <= 0) return std::nullopt;
  const double per_call = actor_.usage.cost_usd / static_cast<double>(actor_.billed);
  return per_call / std::max(1.0, actor_latency_windows_);
}

bool Engine::measuring_for_actor() const {
  return opts_.selective_launch && opts_.mode == Mode::Speculative && actor_waits_for_evidence_ &&
         !actor_.busy && !measured_for_actor_ && opts_.speculator_top_k >= 2;
}

bool Engine::speculation_pays(std::string* why) const {
  const std::optional<double> price = window_price();
  const double cost = spec_.billed ? spec_.usage.cost_usd / static_cast<double>(spec_.billed) : 0.0;
  char buf[200];
  if (measuring_for_actor()) {
    // The actor asked for more evidence and waits for the speculator's
    // measurements: made before it is asked again, they save it a round.
    const double saving = actor_latency_windows_ * price.value_or(0);
    if (!price || saving >= cost) return true;
    std::snprintf(buf, sizeof buf,
                  "measurements worth $%.6f (a round of %.1f windows x $%.6f) below the cost of "
                  "a call ($%.6f)",
                  saving, actor_latency_windows_, *price, cost);
    *why = buf;
    return false;
  }
  if (!actor_.busy) {
    *why = "the actor is not thinking: no decision to guess";
    return false;
  }
  // The windows until the actor answers; an actor already later than its
  // estimate is expected to take as long again as it has (a waiting time
  // that has outlived its estimate says the estimate was short).
  const double elapsed = static_cast<double>(windows_seen_ - actor_.called_window);
  double remaining = actor_latency_windows_ - elapsed;
  if (remaining <= 0) remaining = elapsed;
  // A guess is in force only once the speculator has answered.
  const double saved = remaining - spec_.latency_windows;
  if (saved <= 0) {
    std::snprintf(buf, sizeof buf,
                  "the actor answers in ~%.1f windows, before a guess (~%.1f windows) could land",
                  remaining, spec_.latency_windows);
    *why = buf;
    return false;
  }
  if (!price || spec_.billed == 0) return true;  // unpriced, or its cost not yet measured
  const bool guess = guessed_actor_call_ != actor_.calls;
  const double p = guess ? hit_probability() : trial_probability();
  const double saving = p * saved * *price;
  if (saving >= cost) return true;
  std::snprintf(buf, sizeof buf,
                "expected saving $%.6f (%s %.2f x %.1f windows x $%.6f) below the cost of a "
                "call ($%.6f)",
                saving, guess ? "P(hit)" : "P(a trial beats the guess)", p, saved, *price, cost);
  *why = buf;
  return false;
}

void Engine::maybe_call(Output& out, AgentRole r) {
  if (paused_) return;
  if (r == AgentRole::Speculator ? !speculator_enabled() : !actor_enabled()) return;
  RoleState& s = role(r);
  if (s.busy || s.budget_exhausted) return;
  if (r == AgentRole::Speculator && !trial_round_.empty()) return;
  // Converged: nothing to speculate about until the workload drifts (the
  // actor's slower confirmations go on, backed off).
  if (r == AgentRole::Speculator && converged_ && opts_.mode == Mode::Speculative) return;
  // An actor that asked for more evidence is asked again once the
  // speculator's measurements for it are in (its view would miss them).
  if (r == AgentRole::Actor && opts_.selective_launch && opts_.mode == Mode::Speculative &&
      actor_waits_for_evidence_ && measured_for_actor_ && (spec_.busy || !trial_round_.empty()))
    return;
  if (const std::string limit = over_budget(s); !limit.empty()) {
    const SpendReport p = tally(s);
    const bool hourly = limit.find("per_hour") != std::string::npos;
    if (hourly && s.hour_limit == limit) return;  // said so already; waits for the hour to roll
    if (hourly) {
      s.hour_limit = limit;
    } else {
      s.budget_exhausted = true;
    }
    out.events.push_back(event(
        "budget_exhausted",
        {{"role", to_string(r)},
         {"limit", limit},
         {"budget", p.to_json()["budget"][limit]},
         {"tokens", p.tokens},
         {"usd", p.usd},
         {"tokens_last_hour", p.tokens_last_hour},
         {"usd_last_hour", p.usd_last_hour},
         {"spend", p.to_json()}},
        std::string(to_string(r)) + " budget " + limit + " reached (" + std::to_string(p.tokens) +
            " tokens, $" + std::to_string(p.usd) + "; last hour " +
            std::to_string(p.tokens_last_hour) +
            " tokens): " + (hourly ? "no calls until the hour's spend falls" : "no more calls")));
    return;
  }
  s.hour_limit.clear();
  const int interval =
      r == AgentRole::Speculator ? opts_.speculator_interval : opts_.actor_interval;
  if (r == AgentRole::Actor && converged_) {
    // Converged: confirmations wait `backoff_` windows after the last answer.
    if (windows_seen_ - actor_answered_window_ <
        static_cast<uint64_t>(std::max(1, interval) * backoff_))
      return;
  } else {
    const int slow = r == AgentRole::Speculator ? std::max(backoff_, spec_idle_) : backoff_;
    if (s.calls > 0 &&
        windows_seen_ - s.called_window < static_cast<uint64_t>(std::max(1, interval) * slow))
      return;
  }
  if (r == AgentRole::Speculator && opts_.mode == Mode::Speculative && opts_.selective_launch) {
    std::string why;
    if (!speculation_pays(&why)) {
      if (actor_.busy && !spec_.told_unprofitable) {
        spec_.told_unprofitable = true;
        out.events.push_back(event("agent_waiting", {{"role", "speculator"}, {"reason", why}},
                                   "speculator not asked: " + why));
      }
      return;
    }
  }
  if (!has_new_evidence(s)) return;
  AgentContext ctx = make_context(r);
  s.busy = true;
  s.called_ns = clock_.now_ns();
  s.called_window = windows_seen_;
  s.asked_top_k = ctx.top_k;
  if (r == AgentRole::Speculator) spec_measurements_only_ = ctx.measurements_only;
  if (r == AgentRole::Actor) spec_.told_unprofitable = false;  // a new round to guess
  if (r == AgentRole::Speculator && actor_.busy) guessed_actor_call_ = actor_.calls;
  if (r == AgentRole::Speculator && !actor_.busy) measured_for_actor_ = true;
  if (r == AgentRole::Actor) measured_for_actor_ = false;
  ++s.calls;
  ++s.usage.calls;
  out.events.push_back(
      event("agent_called",
            {{"role", to_string(r)},
             {"call", s.calls},
             {"windows", ctx.history.size()},
             {"top_k", ctx.top_k},
             {"backoff", backoff_}},
            std::string("calling ") + to_string(r) + " (call " + std::to_string(s.calls) + ")"));
  CallAgentAction call;
  call.role = r;
  call.context = std::move(ctx);
  out.actions.emplace_back(std::move(call));
}

Output Engine::on_agent_reply(AgentRole r, const AgentReply& reply) {
  Output out;
  RoleState& s = role(r);
  if (!s.busy) return out;  // cancelled meanwhile: a stale answer is not evidence
  s.busy = false;
  s.usage.prompt_tokens += reply.usage.prompt_tokens;
  s.usage.cached_tokens += reply.usage.cached_tokens;
  s.usage.completion_tokens += reply.usage.completion_tokens;
  s.usage.cost_usd += reply.usage.cost_usd;
  s.usage.rejected += reply.rejected;
  const uint64_t tokens = reply.usage.prompt_tokens + reply.usage.completion_tokens;
  s.max_call_tokens = std::max(s.max_call_tokens, tokens);
  s.max_call_usd = std::max(s.max_call_usd, reply.usage.cost_usd);
  if (tokens > 0 || reply.usage.cost_usd > 0) ++s.billed;
  charge(s, tokens, reply.usage.cost_usd);
  if (windows_seen_ > 0 && !history_.empty()) {
    double wlen = history_.back().window.duration_ms() * 1e6;
    if (wlen > 0) {
      double observed = static_cast<double>(clock_.now_ns() - s.called_ns) / wlen;
      // Half old, half new: follows a model that slows down within two calls.
      if (r == AgentRole::Actor)
        actor_latency_windows_ = 0.5 * actor_latency_windows_ + 0.5 * observed;
      else
        s.latency_windows =
            s.billed <= 1 && s.calls <= 1 ? observed : 0.5 * s.latency_windows + 0.5 * observed;
    }
  }
  if (r == AgentRole::Actor) actor_answered_window_ = windows_seen_;
  if (!reply.ok()) {
    ++s.usage.errors;
    out.events.push_back(event("agent_error", {{"role", to_string(r)}, {"error", reply.error}},
                               std::string(to_string(r)) + " error: " + reply.error + " (keeping " +
                                   describe_config(current_) + ")"));
    return out;
  }
  if (paused_) return out;
  if (r == AgentRole::Speculator) {
    if (speculator_enabled()) speculator_reply(out, reply);
  } else if (actor_enabled()) {
    actor_reply(out, reply);
  }
  return out;
}

void Engine::speculator_reply(Output& out, const AgentReply& reply) {
  // Candidate 1 is the round's anchor: what should be in force when the actor
  // answers (applied now unless it is in force already). The others are
  // trials, measured one window each while the actor thinks.
  std::vector<Trial> cands;
  for (const auto& c : reply.candidates) {
    std::vector<std::string> dropped;
    Config cfg = sanitize(c.config, &dropped);
    if (!dropped.empty()) spec_.usage.rejected += dropped.size();
    if (std::any_of(cands.begin(), cands.end(), [&](const Trial& t) { return t.config == cfg; }))
      continue;
    cands.push_back({cfg, std::clamp(c.confidence, 0.0, 1.0), c.rationale});
    if (cands.size() >= static_cast<size_t>(spec_.asked_top_k)) break;
  }
  if (cands.empty() || (cands.size() == 1 && cands[0].config == current_)) {
    // Nothing new to try: ask less often until something changes.
    spec_idle_ = std::min(opts_.max_backoff, spec_idle_ * 2);
    out.events.push_back(event("agent_waiting",
                               {{"role", "speculator"}, {"idle_backoff", spec_idle_}},
                               "speculator proposed nothing new"));
    return;
  }
  clear_trials();
  // Measurements only: the guess in force stays the round's anchor.
  const bool measuring = spec_measurements_only_;
  const Config anchor = measuring ? current_ : cands[0].config;
  trial_round_ = {anchor};
  for (size_t i = measuring ? 0 : 1; i < cands.size(); ++i)
    if (cands[i].config != anchor) trials_.push_back(cands[i]);
  if (measuring || anchor == current_) {
    // The anchor is in force. The runtime begins a new window at a write
    // between windows: a trial started now costs the anchor the part of the
    // open window measured so far and gives the trial the rest of it, so it
    // starts now when the rest is the larger part, else at the boundary.
    if (!history_.empty()) {
      const Window& last = history_.back().window;
      const int64_t now = clock_.now_ns();
      const int64_t open_since = std::max(last.end_ns, config_since_ns_);
      if (2 * (now - open_since) < last.end_ns - last.start_ns) run_trials(out, now);
    }
    return;
  }
  apply(
      out, anchor, anchor == confirmed_ ? ApplyKind::Revert : ApplyKind::Provisional, "speculator",
      cands[0].rationale.empty() ? std::string("speculator's best candidate") : cands[0].rationale,
      clock_.now_ns());
  provisional_ = current_ != confirmed_;
}

// A move away from a converged config is evidenced (Enough) when the config
// is better than the confirmed one beyond the noise over at least the windows
// that settle a gain of one window sd (evidence::settling_windows), keeps the
// guards, and was not itself left from convergence before; Thin when only
// the window count is short.
Engine::MoveEvidence Engine::move_from_convergence(const Config& c) const {
  if (left_from_convergence_.count(c)) return MoveEvidence::None;
  const Estimate e = evidence_.estimate(c);
  if (!e.confident || !feasible(e) ||
      evidence::compare(e, evidence_.estimate(confirmed_), opts_.evidence) !=
          evidence::Verdict::Better)
    return MoveEvidence::None;
  return e.windows >= evidence::settling_windows(opts_.evidence) ? MoveEvidence::Enough
                                                                 : MoveEvidence::Thin;
}

void Engine::actor_reply(Output& out, const AgentReply& reply) {
  actor_waits_for_evidence_ = reply.candidates.empty();
  if (reply.candidates.empty()) {
    out.events.push_back(event("agent_waiting",
                               {{"role", "actor"}, {"more_evidence", reply.wants_more_evidence}},
                               "actor wants more evidence before deciding"));
    return;
  }
  const Candidate& top = reply.candidates.front();
  std::vector<std::string> dropped;
  Config c = sanitize(top.config, &dropped);
  if (!dropped.empty()) actor_.usage.rejected += dropped.size();
  if (opts_.mode == Mode::Recommend) {
    Estimate e = evidence_.estimate(c);
    out.events.push_back(event("recommended",
                               {{"config", config_to_json(c)},
                                {"from", config_to_json(current_)},
                                {"confidence", top.confidence},
                                {"why", top.rationale},
                                {"estimate", estimate_to_json(e)}},
                               "actor recommends " + describe_change(current_, c) + " (" +
                                   top.rationale + "); not applied (recommend mode)"));
    recommended_ = c;
    decision_made(out);
    return;
  }
  const std::string why = top.rationale.empty() ? std::string("actor's decision") : top.rationale;
  // Converged: a config is left only on evidence of the move's own (drift
  // re-engages otherwise). Evidence that only accumulates for the config in
  // force slowly makes an old one-window trial look better, so a move resting
  // on few windows is held; and a config once left from convergence is not
  // returned to (no back-and-forth).
  if (converged_ && !matches(c, confirmed_)) {
    const MoveEvidence m = move_from_convergence(c);
    if (m != MoveEvidence::Enough) {
      out.events.push_back(event("agent_waiting", {{"role", "actor"}, {"held", config_to_json(c)}},
                                 "converged: actor's move held (" + describe_change(confirmed_, c) +
                                     ") until the workload changes"));
      // Better beyond the noise on too few windows: measured in force on
      // fresh windows, judged at the actor's next answer (a provisional; the
      // safety envelope guards it, the drift test skips it).
      if (m == MoveEvidence::Thin && current_ == confirmed_ && trial_round_.empty()) {
        apply(out, c, ApplyKind::Provisional, "actor",
              "converged: measuring the actor's move on fresh windows before leaving " +
                  describe_config(confirmed_),
              clock_.now_ns());
        provisional_ = true;
        verifying_ = c;
        verify_until_ = windows_seen_ + evidence::settling_windows(opts_.evidence);
      }
      return;
    }
    left_from_convergence_.insert(confirmed_);
  }
  // The speculator's guess is the round's anchor: a trial in force is
  // exploration, not a guess, and is judged by the anchor it returns to.
  const Config guess = trial_round_.empty() ? current_ : trial_round_.front();
  // The engine's own measurement of a move (end_verification) is no guess.
  const bool guessed = provisional_ && guess != confirmed_ && guess != verifying_;
  if (guessed && matches(c, guess)) {
    ++hits_;
    if (guess != current_) apply(out, guess, ApplyKind::Confirmed, "actor", why, clock_.now_ns());
    confirmed_ = current_;
    provisional_ = false;
    out.events.push_back(event(
        "confirmed",
        {{"who", "actor"}, {"config", config_to_json(confirmed_)}, {"hit", true}, {"why", why}},
        "actor confirmed provisional " + describe_config(confirmed_) + " (hit)"));
  } else if (guessed) {
    ++misses_;
    const Config prov = guess;
    if (!matches(c, current_)) apply(out, c, ApplyKind::Confirmed, "actor", why, clock_.now_ns());
    confirmed_ = current_;
    provisional_ = false;
    out.events.push_back(
        event("overridden",
              {{"who", "actor"},
               {"provisional", config_to_json(prov)},
               {"config", config_to_json(confirmed_)},
               {"hit", false},
               {"why", why}},
              "actor overrode provisional: " + describe_change(prov, confirmed_) + " (miss)"));
  } else {
    if (!matches(c, current_)) apply(out, c, ApplyKind::Confirmed, "actor", why, clock_.now_ns());
    confirmed_ = current_;
    provisional_ = false;
    out.events.push_back(event(
        "confirmed",
        {{"who", "actor"}, {"config", config_to_json(confirmed_)}, {"hit", false}, {"why", why}},
        "actor decided " + describe_config(confirmed_)));
  }
  decision_made(out);
}

void Engine::decision_made(Output& out) {
  verifying_.reset();
  // The speculator's context restarts from the decision; its in-flight guess
  // and pending trials were made against the old one.
  if (opts_.mode != Mode::SpeculatorOnly) {
    decision_window_ = windows_seen_;
    clear_trials();
    cancel(out, AgentRole::Speculator);
    // Predicting the next decision is the speculator's main job: ask it
    // promptly after each one (only its exploration backs off when idle).
    spec_idle_ = 1;
  }
  // Stable when the decision kept the config it found: an actor that still
  // moves (to a better config, or to measure one) has not settled. In
  // recommend mode nothing is applied, so the recommendation itself counts.
  const Config now = opts_.mode == Mode::Recommend ? recommended_ : confirmed_;
  const bool stable = has_decision_ref_ && matches(now, decision_ref_);
  decision_ref_ = now;
  has_decision_ref_ = true;
  if (stable) {
    ++stable_decisions_;
  } else {
    stable_decisions_ = 0;
    if (converged_) {
      converged_ = false;
      backoff_ = 1;
    }
  }
  if (stable_decisions_ < opts_.converge_after) return;
  const Config& ref_cfg = opts_.mode == Mode::Recommend ? current_ : now;
  Estimate ref = evidence_.estimate(ref_cfg);
  if (!ref.confident) return;
  backoff_ =
      std::min(opts_.max_backoff, 1 << std::min(20, stable_decisions_ - opts_.converge_after + 1));
  if (!converged_) {
    converged_ = true;
    drift_up_ = drift_down_ = 0;
    drift_fresh_.clear();
    drift_fresh_tp_.clear();
    drift_recent_.clear();
    drift_tp_recent_.clear();
    out.events.push_back(event("converged",
                               {{"config", config_to_json(now)},
                                {"estimate", estimate_to_json(ref)},
                                {"backoff", backoff_}},
                               "converged on " + describe_config(now) + " (p95 " +
                                   fmt_us(ref.p95_us) + "); backing off agents x" +
                                   std::to_string(backoff_)));
  }
}

// ---------------------------------------------------------------- outcomes

void Engine::drop_knob(const std::string& name) {
  knobs_.erase(std::remove_if(knobs_.begin(), knobs_.end(),
                              [&](const KnobInfo& k) { return k.name == name; }),
               knobs_.end());
  pins_.erase(name);
  baseline_.erase(name);
  confirmed_.erase(name);
  current_.erase(name);
  recommended_.erase(name);
  clear_trials();
  // Evidence is keyed by whole configs; with a knob gone the keys no longer fit.
  new_epoch();
}

Output Engine::on_yielded(const std::vector<std::string>& names) {
  Output out;
  for (const auto& n : names) {
    auto it =
        std::find_if(knobs_.begin(), knobs_.end(), [&](const KnobInfo& k) { return k.name == n; });
    if (it == knobs_.end()) continue;
    drop_knob(n);
    out.events.push_back(
        event("yielded", {{"knob", n}},
              n + " was changed by someone else: yielded (left alone from now on)"));
  }
  return out;
}

Output Engine::on_apply_outcome(const ApplyOutcome& o) {
  Output out = on_yielded(o.yielded);
  if (!o.error.empty())
    out.events.push_back(event("apply_error", {{"error", o.error}}, "apply failed: " + o.error));
  // The machine is the truth: attribute what was read back, not what was asked.
  // A value the kernel normalised (written, read back otherwise) is what a
  // confirmed config is; a knob the request did not reach leaves the decision
  // as it was: the config in force is then not the confirmed one (a
  // rate-limited revert must not turn a guess into a decision).
  const bool was_confirmed = !provisional_ || current_ == confirmed_;
  bool changed = false, unwritten = false;
  for (const auto& [k, v] : o.applied) {
    auto it = current_.find(k);
    if (it == current_.end() || it->second == v) continue;
    it->second = v;
    const bool reached = std::find(o.unwritten.begin(), o.unwritten.end(), k) == o.unwritten.end();
    if (was_confirmed && reached) confirmed_[k] = v;
    unwritten = unwritten || !reached;
    changed = true;
  }
  if (changed) provisional_ = current_ != confirmed_;
  if (unwritten && o.retry && last_apply_) retry_apply_ = last_apply_;
  return out;
}

// ---------------------------------------------------------------- commands

Output Engine::pause() {
  Output out;
  if (paused_) return out;
  cancel(out, AgentRole::Speculator);
  cancel(out, AgentRole::Actor);
  clear_trials();
  // Paused means "hold a decided state": an unconfirmed guess does not linger.
  if (provisional_ && current_ != confirmed_ && applies_enabled())
    apply(out, confirmed_, ApplyKind::Revert, "user", "paused: provisional dropped",
          clock_.now_ns());
  provisional_ = false;
  paused_ = true;
  out.events.push_back(event("paused", nlohmann::json::object(), "paused: measuring only"));
  return out;
}

Output Engine::resume() {
  Output out;
  if (!paused_) return out;
  paused_ = false;
  out.events.push_back(event("resumed", nlohmann::json::object(), "resumed tuning"));
  return out;
}

Output Engine::set_mode(Mode m) {
  Output out;
  if (m == opts_.mode) return out;
  Mode old = opts_.mode;
  // Leaving a mode with a speculator: an unconfirmed guess is dropped first,
  // while writing is still allowed.
  bool keeps_provisional = m == Mode::Speculative || m == Mode::SpeculatorOnly;
  if (!keeps_provisional && provisional_ && current_ != confirmed_ && applies_enabled())
    apply(out, confirmed_, ApplyKind::Revert, "user",
          "mode " + to_string(m) + ": provisional dropped", clock_.now_ns());
  if (!keeps_provisional) provisional_ = false;
  opts_.mode = m;
  if (!speculator_enabled()) cancel(out, AgentRole::Speculator);
  if (!actor_enabled()) cancel(out, AgentRole::Actor);
  clear_trials();
  converged_ = false;
  stable_decisions_ = 0;
  has_decision_ref_ = false;
  backoff_ = 1;
  spec_idle_ = 1;
  out.events.push_back(event("mode", {{"from", to_string(old)}, {"to", to_string(m)}},
                             "mode " + to_string(old) + " -> " + to_string(m)));
  return out;
}

Output Engine::revert_to_baseline() {
  Output out;
  cancel(out, AgentRole::Speculator);
  cancel(out, AgentRole::Actor);
  clear_trials();
  Config target = baseline_;
  for (const auto& [k, v] : pins_) target[k] = v;
  Config was = current_;
  // Reverting only undoes specact's own writes, so it is allowed in every mode.
  apply(out, target, ApplyKind::Revert, "user", "revert to baseline", clock_.now_ns());
  confirmed_ = current_;
  provisional_ = false;
  paused_ = true;
  converged_ = false;
  stable_decisions_ = 0;
  has_decision_ref_ = false;
  backoff_ = 1;
  spec_idle_ = 1;
  out.events.push_back(event(
      "reverted",
      {{"who", "user"},
       {"reason", "revert to baseline"},
       {"was", config_to_json(was)},
       {"config", config_to_json(current_)},
       {"miss", false}},
      "reverted to baseline " + describe_config(current_) + "; paused (resume to tune again)"));
  return out;
}

Output Engine::pin(const std::string& knob, int64_t value) {
  auto it =
      std::find_if(knobs_.begin(), knobs_.end(), [&](const KnobInfo& k) { return k.name == knob; });
  if (it == knobs_.end()) throw ControlError("UnknownKnob", "no managed knob named '" + knob + "'");
  if (!it->domain.contains(value))
    throw ControlError("InvalidArgument", knob + "=" + std::to_string(value) + " is outside [" +
                                              std::to_string(it->domain.min) + ", " +
                                              std::to_string(it->domain.max) + "]");
  Output out;
  pins_[knob] = value;
  clear_trials();
  bool applied = false;
  if (applies_enabled()) {
    Config c = current_;
    c[knob] = value;
    apply(out, c, provisional_ ? ApplyKind::Provisional : ApplyKind::Confirmed, "user",
          "pinned " + knob, clock_.now_ns());
    applied = true;
  }
  if (applied) confirmed_[knob] = value;  // recommend/monitor: recorded, never written
  provisional_ = provisional_ && current_ != confirmed_;
  out.events.push_back(event("pinned", {{"knob", knob}, {"value", value}, {"applied", applied}},
                             "pinned " + knob + "=" + format_knob_value(*it, value) +
                                 (applied ? "" : " (not applied in this mode)")));
  return out;
}

Output Engine::unpin(const std::string& knob) {
  if (!pins_.count(knob)) throw ControlError("UnknownKnob", "knob '" + knob + "' is not pinned");
  Output out;
  pins_.erase(knob);
  out.events.push_back(event("unpinned", {{"knob", knob}}, "unpinned " + knob));
  return out;
}

Output Engine::set_budgets(uint64_t speculator_tokens, uint64_t actor_tokens) {
  Output out;
  opts_.speculator_token_budget = speculator_tokens;
  opts_.actor_token_budget = actor_tokens;
  for (RoleState* s : {&spec_, &actor_}) {
    const std::string limit = over_budget(*s);
    s->budget_exhausted = limit == "tokens" || limit == "usd";
  }
  out.events.push_back(
      event("budgets", {{"speculator_tokens", speculator_tokens}, {"actor_tokens", actor_tokens}},
            "token budgets: speculator " + std::to_string(speculator_tokens) + ", actor " +
                std::to_string(actor_tokens) + " (0 = unlimited)"));
  return out;
}

Output Engine::warm_start(const Config& remembered, const std::string& why) {
  if (!applies_enabled())
    throw ControlError("Failed", "mode " + to_string(opts_.mode) + " applies no settings");
  if (paused_) throw ControlError("Failed", "paused");
  // All or nothing: a config with a knob this machine lacks, or a value its
  // domain refuses, is not the config that was confirmed.
  for (const auto& [name, value] : remembered) {
    auto k = std::find_if(knobs_.begin(), knobs_.end(),
                          [&](const KnobInfo& i) { return i.name == name; });
    if (k == knobs_.end())
      throw ControlError("UnknownKnob", "'" + name + "' is not a knob managed here");
    if (!k->domain.contains(value))
      throw ControlError("InvalidArgument", name + "=" + std::to_string(value) + " is outside [" +
                                                std::to_string(k->domain.min) + ", " +
                                                std::to_string(k->domain.max) + "]");
  }
  Output out;
  Config c = sanitize(remembered, nullptr);
  if (c == current_) return out;
  // Calls in flight reason from the config this replaces: an actor answering
  // from a view without the remembered config would override it unjudged.
  // Both are asked again once it is measured.
  cancel(out, AgentRole::Speculator);
  cancel(out, AgentRole::Actor);
  clear_trials();
  apply(out, c, c == confirmed_ ? ApplyKind::Revert : ApplyKind::Provisional, "warm_start", why,
        clock_.now_ns());
  provisional_ = current_ != confirmed_;
  return out;
}

}  // namespace specact::engine
