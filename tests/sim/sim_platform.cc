#include "sim_platform.h"

#include <boost/asio/post.hpp>

#include "agents/agent_config.h"
#include "metrics/sampler.h"

namespace specact::sim {

SimMachine::SimMachine(SimWorkload workload, uint64_t seed) : kernel(std::move(workload), seed) {
  for (const auto& k : knobs)
    if (k.current) in_force[k.name] = *k.current;
  for (const auto& [k, v] : kernel.workload().defaults) in_force[k] = v;
  leftover.nothing_to_do = true;
}

void SimMachine::change_behind_back(const std::string& knob, int64_t value) {
  YieldEvent y;
  y.knob = knob;
  y.instance = "sim";
  y.expected = std::to_string(in_force[knob]);
  y.found = std::to_string(value);
  y.detail = "changed by the test";
  in_force[knob] = value;
  pending_yields_.push_back(y);
}

class SimKnobGate : public KnobGate {
 public:
  explicit SimKnobGate(SimMachine& m) : m_(m) {}

  std::vector<KnobInfo> catalogue() override {
    std::vector<KnobInfo> out = m_.knobs;
    for (auto& k : out) {
      auto it = m_.in_force.find(k.name);
      if (it != m_.in_force.end()) k.current = it->second;
    }
    return out;
  }

  ApplyResult apply(const Config& desired, const std::string&) override {
    m_.applies.push_back(desired);
    ApplyResult out;
    for (const auto& [name, requested] : desired) {
      KnobResult r;
      r.knob = name;
      r.requested = requested;
      const KnobInfo* info = find(name);
      if (!info) {
        r.status = KnobResult::Status::Rejected;
        r.error = "unknown knob '" + name + "'";
      } else if (take_pending_yield(name) || m_.yielded.count(name)) {
        r.status = KnobResult::Status::Yielded;
        r.error = "yielded: changed by the test; no longer managed";
      } else if (auto f = m_.failing_writes.find(name); f != m_.failing_writes.end()) {
        r.status = KnobResult::Status::Failed;
        r.error = f->second;
      } else {
        const int64_t v = info->domain.clamp(requested);
        r.clamped = v != requested;
        r.written = v;
        r.read_back = v;
        if (m_.in_force[name] == v) {
          r.status = KnobResult::Status::NoChange;
        } else {
          m_.original.emplace(name, m_.in_force[name]);
          m_.in_force[name] = v;
          r.status = KnobResult::Status::Applied;
        }
      }
      out.results.push_back(r);
    }
    return out;
  }

  Config read_current() override {
    ++m_.reads;
    Config c;
    for (const auto& k : m_.knobs)
      if (!m_.yielded.count(k.name)) c[k.name] = m_.in_force[k.name];
    return c;
  }

  std::vector<YieldEvent> check_yielded() override {
    std::vector<YieldEvent> out = std::move(m_.pending_yields_);
    m_.pending_yields_.clear();
    for (const auto& y : out) m_.yielded.insert(y.knob);
    return out;
  }

  size_t reapply_to_new_threads() override {
    ++m_.reapplies;
    return 0;
  }

  RestoreReport restore_all() override {
    ++m_.restores;
    RestoreReport rep;
    rep.nothing_to_do = m_.original.empty();
    for (const auto& [knob, value] : m_.original) {
      RestoreItem item{knob, "sim", std::to_string(value), "restored", ""};
      if (m_.yielded.count(knob)) {
        item.outcome = "left-alone";
      } else {
        m_.in_force[knob] = value;
      }
      rep.items.push_back(item);
    }
    m_.original.clear();
    return rep;
  }

  RestoreReport recover_leftover() override { return m_.leftover; }

 private:
  const KnobInfo* find(const std::string& name) const {
    for (const auto& k : m_.knobs)
      if (k.name == name) return &k;
    return nullptr;
  }
  bool take_pending_yield(const std::string& name) {
    for (auto it = m_.pending_yields_.begin(); it != m_.pending_yields_.end(); ++it)
      if (it->knob == name) {
        m_.pending_yields_.erase(it);
        m_.yielded.insert(name);
        return true;
      }
    return false;
  }

  SimMachine& m_;
};

namespace {

class SimMetricSource : public MetricSource {
 public:
  explicit SimMetricSource(SimMachine& m) : m_(m) {}

  size_t refresh_targets() override { return m_.processes; }

  Window close_window(int64_t now_ns) override {
    Window w;
    // Like the eBPF sampler: the first close starts window 1 and returns it empty.
    if (last_ns_ >= 0 && now_ns > last_ns_ && m_.processes > 0)
      w = m_.kernel.measure(m_.in_force, last_ns_, now_ns - last_ns_);
    w.start_ns = last_ns_ < 0 ? now_ns : last_ns_;
    w.end_ns = now_ns;
    w.index = ++index_;
    if (w.service.count < m_.kernel.workload().min_samples) w.low_confidence = true;
    last_ns_ = now_ns;
    return w;
  }

  void discard_window(int64_t now_ns) override { last_ns_ = now_ns; }

 private:
  SimMachine& m_;
  int64_t last_ns_ = -1;
  uint64_t index_ = 0;
};

class SimTargetSession : public TargetSession {
 public:
  explicit SimTargetSession(SimMachine& m) : gate_(m), metrics_(m), m_(m) {}
  KnobGate& knobs() override { return gate_; }
  MetricSource& open_metrics() override {
    if (m_.metrics_unavailable) throw SamplerError("the simulated sampler is unavailable");
    return metrics_;
  }

 private:
  SimKnobGate gate_;
  SimMetricSource metrics_;
  SimMachine& m_;
};

// One scripted agent: its reply is computed at the call and posted to the loop.
class ScriptedAgent : public Agent {
 public:
  ScriptedAgent(boost::asio::io_context& io, ScriptedAgents& owner, AgentRole role)
      : io_(io), owner_(owner), role_(role), state_(std::make_shared<State>()) {}
  ~ScriptedAgent() override { cancel(); }

  void request(const AgentContext& ctx, Callback done) override {
    owner_.calls.push_back({role_, ctx});
    const auto& policy = role_ == AgentRole::Speculator ? owner_.speculator : owner_.actor;
    AgentReply reply = policy ? policy(ctx) : AgentReply{};
    state_->busy = true;
    const uint64_t call = ++state_->call;
    boost::asio::post(
        io_, [state = state_, call, done = std::move(done), reply = std::move(reply)]() mutable {
          if (state->call != call || !state->busy) return;  // cancelled
          state->busy = false;
          done(std::move(reply));
        });
  }
  void cancel() override {
    if (state_->busy) ++owner_.cancels;
    state_->busy = false;
    ++state_->call;
  }
  bool busy() const override { return state_->busy; }
  std::string describe() const override { return "scripted"; }

 private:
  struct State {
    bool busy = false;
    uint64_t call = 0;
  };
  boost::asio::io_context& io_;
  ScriptedAgents& owner_;
  AgentRole role_;
  std::shared_ptr<State> state_;
};

}  // namespace

void SimPlatform::validate_target(const TargetSpec& spec) {
  if (!machine_.target_exists) throw TargetError(spec.describe() + " does not exist (simulated)");
}

std::unique_ptr<TargetSession> SimPlatform::open_target(const TargetSpec& spec) {
  validate_target(spec);
  return std::make_unique<SimTargetSession>(machine_);
}

std::vector<KnobInfo> SimPlatform::catalogue_without_target() {
  return SimKnobGate(machine_).catalogue();
}

size_t ScriptedAgents::calls_of(AgentRole r) const {
  size_t n = 0;
  for (const auto& c : calls) n += c.role == r;
  return n;
}

std::unique_ptr<Agent> ScriptedAgents::make(AgentRole role, const AgentConfig&) {
  if (!config_error.empty()) throw AgentConfigError(config_error);
  return std::make_unique<ScriptedAgent>(io_, *this, role);
}

}  // namespace specact::sim
