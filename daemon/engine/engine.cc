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
      actor_latency_windows_(opts_.expected_actor_windows),
      step_gain_(opts_.initial_step_gain) {
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

std::string Engine::describe_config(const Config& c) const {
  std::ostringstream os;
  bool first = true;
  for (const auto& k : knobs_) {
    auto it = c.find(k.name);
    if (it == c.end()) continue;
    os << (first ? "" : " ") << k.name << "=" << format_knob_value(k, it->second);
    first = false;
  }
  return first ? "{}" : os.str();
}

std::string Engine::describe_change(const Config& from, const Config& to) const {
  std::ostringstream os;
  bool first = true;
  for (const auto& k : knobs_) {
    auto a = from.find(k.name), b = to.find(k.name);
    if (b == to.end() || (a != from.end() && a->second == b->second)) continue;
    os << (first ? "" : ", ") << k.name << " "
       << (a != from.end() ? format_knob_value(k, a->second) : "?") << "->"
       << format_knob_value(k, b->second);
    first = false;
  }
  return first ? "no change" : os.str();
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
  for (const auto& k : knobs_) {
    auto ia = a.find(k.name), ib = b.find(k.name);
    if (ia == a.end() || ib == b.end()) {
      if ((ia == a.end()) != (ib == b.end())) return false;
      continue;
    }
    const double va = static_cast<double>(ia->second), vb = static_cast<double>(ib->second);
    const double tol = std::max(0.0, k.tolerance_fraction);
    switch (k.domain.scale) {
      case KnobScale::Enum:
        if (ia->second != ib->second) return false;
        break;
      case KnobScale::Log:
        if (std::abs(va - vb) > tol * std::max(std::abs(va), std::abs(vb))) return false;
        break;
      case KnobScale::Linear:
        if (std::abs(va - vb) > tol * static_cast<double>(k.domain.max - k.domain.min) + 1e-9)
          return false;
        break;
    }
  }
  return true;
}

bool Engine::feasible(const Estimate& e) const {
  if (!baseline_tp_ || !e.throughput || *baseline_tp_ <= 0) return true;
  return *e.throughput >= opts_.throughput_floor * *baseline_tp_;
}

Config Engine::best() const {
  const Config* best = nullptr;
  double best_p95 = 0;
  for (const auto& [cfg, ev] : evidence_.all()) {
    Estimate e = ev.estimate(evidence_.options());
    if (!e.confident || !feasible(e) || cfg.size() != current_.size()) continue;
    if (!best || e.p95_us < best_p95) {
      best = &cfg;
      best_p95 = e.p95_us;
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
  for (size_t i = skip; i < recs.size(); ++i) {
    ctx.history.push_back(history_[recs[i]]);
    uint64_t number = history_dropped_ + recs[i] + 1;
    if (number <= decision_window_) since = ctx.history.size();
  }
  ctx.since_decision = since;
  ctx.top_k = r == AgentRole::Speculator ? opts_.speculator_top_k : opts_.actor_top_k;
  ctx.seed = opts_.seed;
  ctx.call_index = role(r).calls;
  return ctx;
}

bool Engine::has_new_evidence(const RoleState& r) const {
  // Something new was measured since this role was last asked, and the config
  // in force is measured well enough to reason from (a config the round already
  // measured counts even if it was only just re-applied).
  if (r.calls > 0 && last_clean_window_ <= r.called_window) return false;
  return evidence_.estimate(current_).confident;
}

void Engine::record_step_gain(const Config& cfg, double value) {
  auto it = step_from_p95_.find(cfg);
  if (it == step_from_p95_.end()) return;
  if (it->second > 0) {
    double gain = std::clamp((it->second - value) / it->second, -1.0, 1.0);
    step_gain_ = 0.7 * step_gain_ + 0.3 * gain;
  }
  step_from_p95_.erase(it);
}

void Engine::new_epoch() {
  evidence_.clear();
  epoch_start_ = windows_seen_;
  clean_since_change_ = 0;
  step_from_p95_.clear();
  drift_ratio_.clear();
  drift_tp_ratio_.clear();
}

void Engine::cancel(Output& out, AgentRole r) {
  RoleState& s = role(r);
  if (!s.busy) return;
  s.busy = false;
  // A cancelled request may still have been billed: charge its likely size to
  // the budget so cancellations cannot get around a hard limit.
  s.unbilled_tokens += s.max_call_tokens;
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
  drift_check(out, w, clean);
  if (opts_.mode == Mode::SpeculatorOnly) promote_if_better(out);
  run_trials(out, w.end_ns);
  maybe_call(out, AgentRole::Speculator);
  maybe_call(out, AgentRole::Actor);
  return out;
}

void Engine::attribute(Output& out, const Window& w) {
  bool straddled = false;
  // A change at the very end counts too: the window was measured under the old
  // config but would be attributed to the new one.
  for (int64_t t : change_times_)
    if (t > w.start_ns && t <= w.end_ns) straddled = true;
  WindowRecord rec{w, current_, straddled};
  std::optional<double> value;
  if (!straddled) {
    value = evidence_.add(current_, w, opts_.metric);
    ++clean_since_change_;
    last_clean_window_ = windows_seen_;
    if (value) record_step_gain(current_, *value);
    if (current_ == baseline_) {
      Estimate b = evidence_.estimate(baseline_);
      if (b.confident) baseline_p95_ = b.p95_us;
      if (b.throughput) baseline_tp_ = b.throughput;
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
  std::string why;
  char buf[160];
  std::optional<double> tp = throughput_of(w, opts_.metric);
  if (tp && baseline_tp_ && *baseline_tp_ > 0 && *tp < opts_.throughput_floor * *baseline_tp_) {
    std::snprintf(buf, sizeof buf, "throughput %.3g < %.2f x baseline %.3g", *tp,
                  opts_.throughput_floor, *baseline_tp_);
    why = buf;
  }
  if (opts_.metric != Metric::CommandP95 && ref.confident && ref.windows > 0) {
    const double per_window = static_cast<double>(ref.samples) / ref.windows;
    const uint64_t n = opts_.metric == Metric::RunqP95 ? w.runq.count : w.service.count;
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
  Config fallback = best();
  if (fallback == current_ || !starvation(w, evidence_.estimate(fallback)).empty())
    fallback = baseline_;
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

void Engine::drift_check(Output& out, const Window& w, bool clean) {
  if (!converged_ || !clean || w.low_confidence) return;
  // Only windows of configs measured before convergence say anything about
  // drift; a freshly probed neighbour has no reference.
  auto ref = drift_ref_.find(current_);
  if (ref == drift_ref_.end() || ref->second.p95_us <= 0) return;
  std::optional<double> v = objective_us(w, opts_.metric);
  if (!v) return;
  const size_t n = static_cast<size_t>(opts_.drift_windows);
  push_bounded(
      drift_ratio_,
      std::make_pair(*v / ref->second.p95_us, ref->second.half_width() / ref->second.p95_us), n);
  std::optional<double> tp = throughput_of(w, opts_.metric);
  if (tp && ref->second.throughput && *ref->second.throughput > 0)
    push_bounded(drift_tp_ratio_, *tp / *ref->second.throughput, n);
  if (drift_ratio_.size() < n) return;
  double ratio = 0, rel_hw = 0;
  for (const auto& [r, hw] : drift_ratio_) {
    ratio += r;
    rel_hw += hw;
  }
  ratio /= static_cast<double>(n);
  rel_hw /= static_cast<double>(n);
  std::string reason;
  char buf[160];
  if (std::abs(ratio - 1) > rel_hw + opts_.drift_margin) {
    std::snprintf(buf, sizeof buf,
                  "p95 moved to %.2fx its converged value (beyond noise %.0f%% + margin %.0f%%)",
                  ratio, rel_hw * 100, opts_.drift_margin * 100);
    reason = buf;
  }
  double tp_ratio = 1;
  if (drift_tp_ratio_.size() == n) {
    tp_ratio = 0;
    for (double r : drift_tp_ratio_) tp_ratio += r;
    tp_ratio /= static_cast<double>(n);
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
  drift_ref_.clear();
  new_epoch();
  out.events.push_back(
      event("re_engaged", {{"reason", reason}}, "re-engaged at full cadence: " + reason));
}

void Engine::promote_if_better(Output& out) {
  if (!provisional_ || current_ == confirmed_) return;
  Estimate cur = evidence_.estimate(current_);
  Estimate conf = evidence_.estimate(confirmed_);
  if (!confidently_better(cur, conf) || !feasible(cur)) return;
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
  const int64_t round_size = static_cast<int64_t>(trial_round_.size());
  while (!trials_.empty()) {
    // Trials only fill the actor's thinking time; once it is about to answer (or
    // has), a trial would be overridden before it is measured.
    if (opts_.mode == Mode::Speculative) {
      double elapsed = static_cast<double>(windows_seen_ - actor_.called_window);
      if (!actor_.busy || actor_latency_windows_ - elapsed < 1.5) break;
    }
    Trial t = trials_.front();
    trials_.pop_front();
    Estimate known = evidence_.estimate(t.config);
    double gain = t.confidence * step_gain_;
    std::string skip;
    if (gain < opts_.trial_cost) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "expected gain %.3f below cost %.3f", gain, opts_.trial_cost);
      skip = buf;
    } else if (known.confident) {
      skip = "already measured";
    }
    if (!skip.empty()) {
      out.events.push_back(
          event("trial_skipped", {{"config", config_to_json(t.config)}, {"reason", skip}},
                "trial skipped (" + describe_change(current_, t.config) + "): " + skip));
      continue;
    }
    step_from_p95_[t.config] = evidence_.estimate(trial_round_.front()).p95_us;
    trial_round_.push_back(t.config);
    apply(out, t.config, t.config == confirmed_ ? ApplyKind::Revert : ApplyKind::Provisional,
          "speculator",
          "trial " + std::to_string(round_size) + ": " +
              (t.rationale.empty() ? std::string("top-k candidate") : t.rationale),
          at_ns);
    provisional_ = current_ != confirmed_;
    return;
  }
  trials_.clear();
  // Round over: keep the best config measured in it (the one it started from included).
  if (trial_round_.size() > 2) {
    const Config* pick = nullptr;
    double p = 0;
    for (const auto& c : trial_round_) {
      Estimate e = evidence_.estimate(c);
      if (!e.confident || !feasible(e)) continue;
      if (!pick || e.p95_us < p) {
        pick = &c;
        p = e.p95_us;
      }
    }
    if (pick && *pick != current_) {
      Config chosen = *pick;
      apply(out, chosen, chosen == confirmed_ ? ApplyKind::Revert : ApplyKind::Provisional,
            "speculator",
            "best of " + std::to_string(trial_round_.size()) + " configs tried this round (p95 " +
                fmt_us(p) + ")",
            at_ns);
      provisional_ = current_ != confirmed_;
    }
  }
  trial_round_.clear();
  if (opts_.mode == Mode::SpeculatorOnly) {
    // Without an actor, a round is the unit of decision: it is stable when it
    // did not move the confirmed config.
    decision_made(out);
  }
}

// ---------------------------------------------------------------- agents

void Engine::maybe_call(Output& out, AgentRole r) {
  if (paused_) return;
  if (r == AgentRole::Speculator ? !speculator_enabled() : !actor_enabled()) return;
  RoleState& s = role(r);
  if (s.busy || s.budget_exhausted) return;
  if (r == AgentRole::Speculator && !trial_round_.empty()) return;
  const uint64_t budget = budget_of(r);
  if (budget &&
      s.usage.prompt_tokens + s.usage.completion_tokens + s.unbilled_tokens + s.max_call_tokens >
          budget) {
    s.budget_exhausted = true;
    out.events.push_back(
        event("budget_exhausted",
              {{"role", to_string(r)},
               {"tokens", s.usage.prompt_tokens + s.usage.completion_tokens},
               {"budget", budget}},
              std::string(to_string(r)) + " token budget exhausted (" +
                  std::to_string(s.usage.prompt_tokens + s.usage.completion_tokens) + " of " +
                  std::to_string(budget) + "): no more calls"));
    return;
  }
  const int interval =
      r == AgentRole::Speculator ? opts_.speculator_interval : opts_.actor_interval;
  const int slow = r == AgentRole::Speculator ? std::max(backoff_, spec_idle_) : backoff_;
  if (s.calls > 0 &&
      windows_seen_ - s.called_window < static_cast<uint64_t>(std::max(1, interval) * slow))
    return;
  if (!has_new_evidence(s)) return;
  AgentContext ctx = make_context(r);
  s.busy = true;
  s.called_ns = clock_.now_ns();
  s.called_window = windows_seen_;
  ++s.calls;
  ++s.usage.calls;
  out.events.push_back(
      event("agent_called",
            {{"role", to_string(r)},
             {"call", s.calls},
             {"windows", ctx.history.size()},
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
  s.usage.completion_tokens += reply.usage.completion_tokens;
  s.usage.cost_usd += reply.usage.cost_usd;
  s.usage.rejected += reply.rejected;
  s.max_call_tokens =
      std::max(s.max_call_tokens, reply.usage.prompt_tokens + reply.usage.completion_tokens);
  if (r == AgentRole::Actor && windows_seen_ > 0 && !history_.empty()) {
    double wlen = history_.back().window.duration_ms() * 1e6;
    if (wlen > 0) {
      double observed = static_cast<double>(clock_.now_ns() - s.called_ns) / wlen;
      actor_latency_windows_ = 0.5 * actor_latency_windows_ + 0.5 * observed;
    }
  }
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
  std::vector<Trial> cands;
  for (const auto& c : reply.candidates) {
    std::vector<std::string> dropped;
    Config cfg = sanitize(c.config, &dropped);
    if (!dropped.empty()) spec_.usage.rejected += dropped.size();
    if (cfg == current_) continue;
    if (std::any_of(cands.begin(), cands.end(), [&](const Trial& t) { return t.config == cfg; }))
      continue;
    cands.push_back({cfg, std::clamp(c.confidence, 0.0, 1.0), c.rationale});
    if (cands.size() >= static_cast<size_t>(opts_.speculator_top_k)) break;
  }
  if (cands.empty()) {
    // Nothing new to try: ask less often until something changes.
    spec_idle_ = std::min(opts_.max_backoff, spec_idle_ * 2);
    out.events.push_back(event("agent_waiting",
                               {{"role", "speculator"}, {"idle_backoff", spec_idle_}},
                               "speculator proposed nothing new"));
    return;
  }
  clear_trials();
  Estimate from = evidence_.estimate(current_);
  if (from.confident) step_from_p95_[cands[0].config] = from.p95_us;
  if (step_from_p95_.size() > 64) step_from_p95_.clear();
  trial_round_ = {current_, cands[0].config};
  for (size_t i = 1; i < cands.size(); ++i) trials_.push_back(cands[i]);
  const Config& c = cands[0].config;
  apply(
      out, c, c == confirmed_ ? ApplyKind::Revert : ApplyKind::Provisional, "speculator",
      cands[0].rationale.empty() ? std::string("speculator's best candidate") : cands[0].rationale,
      clock_.now_ns());
  provisional_ = current_ != confirmed_;
}

void Engine::actor_reply(Output& out, const AgentReply& reply) {
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
  if (provisional_ && current_ != confirmed_) {
    if (matches(c, current_)) {
      ++hits_;
      confirmed_ = current_;
      provisional_ = false;
      out.events.push_back(event(
          "confirmed",
          {{"who", "actor"}, {"config", config_to_json(confirmed_)}, {"hit", true}, {"why", why}},
          "actor confirmed provisional " + describe_config(confirmed_) + " (hit)"));
    } else {
      ++misses_;
      Config prov = current_;
      apply(out, c, ApplyKind::Confirmed, "actor", why, clock_.now_ns());
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
    }
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
  // Stable when the best-measured config did not move since the previous
  // decision: an actor that probes neighbours of the best has still settled.
  // In recommend mode nothing is applied, so the recommendation itself counts.
  const Config now = opts_.mode == Mode::Recommend ? recommended_ : best();
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
    // Drift is judged against what every well-measured config looked like now.
    drift_ref_.clear();
    for (const auto& [cfg, ev] : evidence_.all()) {
      Estimate e = ev.estimate(evidence_.options());
      if (e.confident && e.windows >= 2) drift_ref_[cfg] = e;
    }
    drift_ref_[ref_cfg] = ref;
    drift_ratio_.clear();
    drift_tp_ratio_.clear();
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
  bool changed = false;
  for (const auto& [k, v] : o.applied) {
    auto it = current_.find(k);
    if (it == current_.end() || it->second == v) continue;
    bool was_confirmed = !provisional_ || current_ == confirmed_;
    it->second = v;
    if (was_confirmed) confirmed_[k] = v;
    changed = true;
  }
  if (changed) provisional_ = provisional_ && current_ != confirmed_;
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
    uint64_t b = budget_of(s->role);
    s->budget_exhausted = b && s->usage.prompt_tokens + s->usage.completion_tokens +
                                       s->unbilled_tokens + s->max_call_tokens >
                                   b;
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
  // A speculator call in flight reasons from the config this replaces.
  cancel(out, AgentRole::Speculator);
  clear_trials();
  apply(out, c, c == confirmed_ ? ApplyKind::Revert : ApplyKind::Provisional, "warm_start", why,
        clock_.now_ns());
  provisional_ = current_ != confirmed_;
  return out;
}

}  // namespace specact::engine
