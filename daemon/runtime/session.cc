#include "runtime/session.h"

#include "common/log.h"

namespace specact {

using engine::EventKind;
using nlohmann::json;

std::unique_ptr<Session> SessionBuilder::open(const TargetSpec& target) const {
  auto s = std::make_unique<Session>();
  s->target = platform_.open_target(target);  // TargetError: no such pid, unit, ...
  s->knobs = &s->target->knobs();
  RestoreReport leftover = s->knobs->recover_leftover();
  if (!leftover.nothing_to_do) {
    events_.record(EventKind::Recovered, {{"report", leftover.to_json()}},
                   "restored settings left by an earlier run:\n" + leftover.to_text());
    if (!leftover.ok)
      throw ConfigError("a journal left by an earlier run could not be fully restored (see " +
                        cfg_.state_dir + "; run `specactd restore`)");
  }
  s->metrics = &s->target->open_metrics();  // SamplerError
  s->speculator = agents_.make(AgentRole::Speculator, cfg_.speculator);
  s->actor = agents_.make(AgentRole::Actor, cfg_.actor);
  s->started_ns = clock_.now_ns();
  return s;
}

void SessionBuilder::start_engine(Session& s, const TargetSpec& target,
                                  const std::function<void()>& before_first_window) const {
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
  engine::EngineOptions opts = cfg_.engine;
  opts.online_cpus = platform_.online_cpus();
  s.engine = std::make_unique<engine::Engine>(opts, clock_, managed, baseline);
  s.target_empty = false;

  json knobs = json::array();
  for (const auto& k : s.engine->knobs()) knobs.push_back(k.name);
  events_.record(EventKind::SessionStarted,
                 {{"target", target.to_json()},
                  {"mode", engine::to_string(s.engine->mode())},
                  {"knobs", knobs},
                  {"baseline", config_to_json(s.engine->baseline())},
                  {"speculator", s.speculator->describe()},
                  {"actor", s.actor->describe()}},
                 "tuning " + target.describe() + " with " + std::to_string(knobs.size()) +
                     " knobs (" + knobs.dump() + "); speculator " + s.speculator->describe() +
                     ", actor " + s.actor->describe());
  if (before_first_window) before_first_window();
  s.metrics->refresh_targets();
  s.metrics->discard_window(clock_.now_ns());  // opens window 1
}

}  // namespace specact
