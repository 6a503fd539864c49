// The builtin Actor: deliberate. It moves only on evidence the engine would
// accept (a config better than the confirmed one beyond the noise and the
// metric's resolution), waits while more windows of the config in force can
// still settle a comparison, explores only when no speculator explores for it,
// and says "converged" when the search has nothing left to measure.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "agents/policy.h"
#include "agents/policy/rules.h"
#include "agents/policy/search.h"

namespace specact {

namespace {

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

std::string describe(const ConfigEvidence& e) {
  std::ostringstream os;
  os << "pooled p95 " << std::llround(e.est.p95_us) << " us [" << std::llround(e.est.lo_us) << ", "
     << std::llround(e.est.hi_us) << "] over " << e.est.windows << " windows";
  return os.str();
}

}  // namespace

AgentReply BuiltinActorPolicy::propose(const PolicyInput& in) const {
  using evidence::Verdict;
  AgentReply reply;
  auto add = [&](const Config& c, double confidence, std::string why) {
    Candidate cand;
    cand.config = policy::full_config(in, c);
    cand.confidence = confidence;
    cand.rationale = std::move(why);
    reply.candidates.push_back(std::move(cand));
  };
  auto wait = [&] {
    reply.candidates.clear();
    reply.wants_more_evidence = true;
    return reply;
  };
  // Further measurements as the other top-k slots, when this actor explores.
  auto add_steps = [&](const ConfigEvidence& from) {
    if (!in.actor_explores) return;
    for (const auto& s : policy::next_steps(in, in.evidence, from)) {
      if (reply.candidates.size() >= static_cast<size_t>(in.top_k)) break;
      add(s.config, 0.3, "to measure next: " + s.why);
    }
  };

  const ConfigEvidence* conf = policy::find_evidence(in, in.evidence, in.confirmed);
  const ConfigEvidence* in_force = policy::find_evidence(in, in.evidence, in.current);
  if (conf && !conf->est.confident) conf = nullptr;
  // The last decision is in force and not measured yet: measure it first.
  if (!conf && policy::same_config(in, in.current, in.confirmed)) return wait();
  const ConfigEvidence* inc = policy::incumbent(in, in.evidence, in.confirmed);
  if (!inc) return wait();
  if (!conf) conf = inc;  // the confirmed config has no evidence here: judge from the best

  if (inc != conf) {
    // Better than the confirmed config beyond the noise, by construction.
    const double z = evidence::z_better(inc->est, conf->est);
    std::ostringstream os;
    os << describe(*inc) << " beats " << std::llround(conf->est.p95_us) << " us (z=" << std::fixed
       << std::setprecision(1) << z << "): "
       << describe_change(in.knobs, policy::full_config(in, conf->config),
                          policy::full_config(in, inc->config));
    add(inc->config, std::min(0.99, normal_cdf(z)), os.str());
    add_steps(*inc);
    return reply;
  }
  // A config ranked better but not yet beyond the noise: more windows of the
  // config in force settle it only while that is the less certain side.
  if (const ConfigEvidence* lead = policy::champion(in, in.evidence);
      lead && lead != conf &&
      evidence::compare(lead->est, conf->est, in.opts) == Verdict::Unknown && in_force &&
      (in_force == lead || in_force == conf)) {
    const ConfigEvidence* other = in_force == lead ? conf : lead;
    if (in_force->est.se >= other->est.se) return wait();
  }
  auto steps = policy::next_steps(in, in.evidence, *inc);
  if (!steps.empty()) {
    // With a speculator measuring for it, the actor waits for the evidence.
    if (!in.actor_explores) return wait();
    add(steps.front().config, 0.35,
        "nothing measured beats " + describe(*conf) + "; measuring next: " + steps.front().why);
    for (size_t i = 1; i < steps.size() && reply.candidates.size() < static_cast<size_t>(in.top_k);
         ++i)
      add(steps[i].config, 0.3, "to measure next: " + steps[i].why);
    return reply;
  }
  // Not converged on a confirmed config known less well than one ranked
  // ahead of it (a warm start judged against a baseline of one window): its
  // own windows settle the comparison first.
  if (policy::unsettled_side(in, in.evidence, in.confirmed) == conf) {
    if (!in.actor_explores || in_force == conf) return wait();
    add(conf->config, 0.35,
        "measuring again: " + describe(*conf) +
            " is known less well than a config ranked ahead of it");
    return reply;
  }
  add(conf->config, 0.9,
      "converged: " + describe(*conf) +
          "; no measured config is better beyond the noise and every searched knob is screened");
  return reply;
}

}  // namespace specact
