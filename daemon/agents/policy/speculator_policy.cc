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

}  // namespace

AgentReply BuiltinSpeculatorPolicy::propose(const PolicyInput& in) const {
  AgentReply reply;
  const ConfigEvidence* champ = policy::incumbent(in, in.evidence, in.confirmed);
  if (in.measurements_only) {
    // The guess is in force: the same search steps, none of them a guess.
    if (!champ) return reply;
    for (const auto& s : policy::next_steps(in, in.evidence, *champ)) {
      if (reply.candidates.size() >= static_cast<size_t>(in.top_k)) break;
      if (policy::same_config(in, s.config, in.current)) continue;
      reply.candidates.push_back(measurement(*champ, s));
    }
    return reply;
  }
  std::optional<Candidate> anchor = predict_actor(in);
  if (!anchor) {
    Candidate c;
    c.config = policy::full_config(in, champ ? champ->config : in.current);
    c.confidence = 0.6;
    c.rationale = champ ? "the actor will not decide yet: holding the best measured config"
                        : "nothing measured yet: holding the config in force";
    anchor = std::move(c);
  }
  reply.candidates.push_back(*anchor);
  if (!champ) return reply;
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
