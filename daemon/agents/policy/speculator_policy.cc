// The builtin Speculator: candidate 1 is what should be in force when the
// actor answers: the actor's rule replayed on the evidence it is deciding
// from (its pending view, or everything while it is not asked yet), else the
// best measured config; a right guess is confirmed as a hit. The other
// candidates are the search's next measurements, which the engine tries while
// the actor thinks.
#include <algorithm>
#include <sstream>

#include "agents/policy.h"
#include "agents/policy/rules.h"
#include "agents/policy/search.h"

namespace specact {

namespace {

std::optional<Candidate> predict_actor(const PolicyInput& in) {
  PolicyInput a = in;
  a.role = AgentRole::Actor;
  a.top_k = 1;
  a.actor_view.reset();
  if (in.actor_view) {
    a.evidence = in.actor_view->evidence;
    a.current = in.actor_view->current;
    a.confirmed = in.actor_view->confirmed;
  }
  AgentReply r = BuiltinActorPolicy{}.propose(a);
  if (r.candidates.empty()) return std::nullopt;
  Candidate c = std::move(r.candidates.front());
  c.confidence = std::clamp(c.confidence, 0.5, 0.95);
  c.rationale = "the actor's likely decision: " + c.rationale;
  return c;
}

Candidate measurement(const ConfigEvidence& champ, const policy::Step& s) {
  Candidate c;
  c.config = s.config;
  c.confidence = s.kind == policy::Step::Kind::Refine ? 0.4 : 0.5;
  std::ostringstream os;
  os << "measuring from the best config (p95 " << std::llround(champ.est.p95_us)
     << " us): " << s.why;
  c.rationale = os.str();
  return c;
}

// The config in force has evidence of its own, keeps the guards and is not
// measurably worse than `champ`. Known by more windows than a champion ranked
// ahead of it (evidence::rank_score), it gives way: the champion is then
// both the client's better expectation and the side whose windows settle
// their comparison fastest (equal windows a side make the difference's
// standard error smallest), where holding the config in force would have it
// collect the windows while the champion gets one trial window a round. A
// champion that is only the confirmed config (nothing beats it beyond the
// noise) and ranks behind the config in force does not displace it.
bool holds_up(const PolicyInput& in, const ConfigEvidence& champ) {
  const ConfigEvidence* cur = policy::find_evidence(in, in.evidence, in.current);
  if (!cur || cur == &champ || !cur->est.confident) return false;
  if (cur->est.windows > champ.est.windows &&
      evidence::rank_score(champ.est) < evidence::rank_score(cur->est))
    return false;
  if (!evidence::guard_violation(cur->est, in.guard, in.opts, in.metric == Metric::CommandP95)
           .empty())
    return false;
  return evidence::compare(cur->est, champ.est, in.opts) != evidence::Verdict::Worse;
}

// The best config again, as a measurement beside `anchor` (the config that
// will be in force): while their comparison is within the noise and the best
// config is the less known side, one more window of it settles the
// comparison fastest (equal windows a side make the difference's standard
// error smallest), up to the windows that settle a gain of one window
// standard deviation (the config in force collects a window every round
// too: past that, the two are a plateau). Steps measured from a best config
// known by one window would otherwise pile up around it while the config in
// force collects the windows.
std::optional<Candidate> settle_champion(const PolicyInput& in, const ConfigEvidence& champ,
                                         const Config& anchor) {
  if (policy::same_config(in, champ.config, anchor)) return std::nullopt;
  const ConfigEvidence* a = policy::find_evidence(in, in.evidence, anchor);
  if (!a || !a->est.confident || champ.est.windows >= a->est.windows ||
      champ.est.windows >= policy::settling_windows(in))
    return std::nullopt;
  if (evidence::compare(champ.est, a->est, in.opts) != evidence::Verdict::Unknown)
    return std::nullopt;
  Candidate c;
  c.config = policy::full_config(in, champ.config);
  c.confidence = 0.5;
  c.rationale = "measuring the best config again: p95 " +
                std::to_string(std::llround(champ.est.p95_us)) + " us over " +
                std::to_string(champ.est.windows) + " windows against the config in force's " +
                std::to_string(a->est.windows) + ", still within the noise";
  return c;
}

}  // namespace

AgentReply BuiltinSpeculatorPolicy::propose(const PolicyInput& in) const {
  AgentReply reply;
  const ConfigEvidence* champ = policy::incumbent(in, in.evidence, in.confirmed);
  if (in.measurements_only) {
    // The guess is in force: the same search steps, none of them a guess.
    if (!champ) return reply;
    if (auto c = settle_champion(in, *champ, in.current)) reply.candidates.push_back(*c);
    for (const auto& s : policy::next_steps(in, in.evidence, *champ)) {
      if (reply.candidates.size() >= static_cast<size_t>(in.top_k)) break;
      if (policy::same_config(in, s.config, in.current)) continue;
      reply.candidates.push_back(measurement(*champ, s));
    }
    return reply;
  }
  std::optional<Candidate> anchor = predict_actor(in);
  const ConfigEvidence* settle = nullptr;
  if (!anchor) {
    Candidate c;
    c.confidence = 0.6;
    // The confirmed side of an unsettled comparison, known less well than
    // the config ranked ahead of it, is what the actor waits for.
    if (champ && policy::unsettled_side(in, in.evidence, in.confirmed) == champ) settle = champ;
    if (!champ) {
      c.config = policy::full_config(in, in.current);
      c.rationale = "nothing measured yet: holding the config in force";
    } else if (settle) {
      // What the actor waits for; trials now would take windows from it.
      c.config = policy::full_config(in, settle->config);
      c.rationale =
          "the actor will not decide yet: measuring the less certain side of a comparison "
          "still within the noise (p95 " +
          std::to_string(std::llround(settle->est.p95_us)) + " us over " +
          std::to_string(settle->est.windows) + " windows)";
    } else if (holds_up(in, *champ)) {
      // A config in force that the evidence cannot call worse (a warm start,
      // a guess the actor has not judged) is the actor's to judge: putting
      // the best measured config back would end its measurement.
      c.config = policy::full_config(in, in.current);
      c.rationale =
          "the actor will not decide yet: holding the config in force (not worse than "
          "the best measured config)";
    } else {
      c.config = policy::full_config(in, champ->config);
      c.rationale = "the actor will not decide yet: holding the best measured config";
    }
    anchor = std::move(c);
  }
  reply.candidates.push_back(*anchor);
  if (!champ || settle) return reply;
  if (auto c = settle_champion(in, *champ, anchor->config);
      c && reply.candidates.size() < static_cast<size_t>(in.top_k))
    reply.candidates.push_back(*c);
  for (const auto& s : policy::next_steps(in, in.evidence, *champ)) {
    if (reply.candidates.size() >= static_cast<size_t>(in.top_k)) break;
    if (policy::same_config(in, s.config, anchor->config)) continue;
    reply.candidates.push_back(measurement(*champ, s));
  }
  return reply;
}

AgentReply builtin_propose(const PolicyInput& in) {
  if (in.role == AgentRole::Actor) return BuiltinActorPolicy{}.propose(in);
  return BuiltinSpeculatorPolicy{}.propose(in);
}

}  // namespace specact
