#include "runtime/linux_platform.h"

#include <unistd.h>

#include <algorithm>

#include "agents/agents.h"
#include "common/log.h"
#include "knobs/kernel_files.h"
#include "knobs/task_sched.h"
#include "runtime/window_assembler.h"

namespace specact {

namespace {

class KnobManagerGate : public KnobGate {
 public:
  KnobManagerGate(const KnobsConfig& config, const TargetResolver* target)
      : knobs_(config, target) {}
  std::vector<KnobInfo> catalogue() override { return knobs_.catalogue(); }
  ApplyResult apply(const Config& desired, const std::string& who_why) override {
    return knobs_.apply(desired, who_why);
  }
  Config read_current() override { return knobs_.read_current(); }
  std::vector<YieldEvent> check_yielded() override { return knobs_.check_yielded(); }
  size_t reapply_to_new_threads() override { return knobs_.reapply_to_new_threads(); }
  RestoreReport restore_all() override { return knobs_.restore_all(); }
  RestoreReport recover_leftover() override { return knobs_.recover_leftover(); }

 private:
  KnobManager knobs_;
};

class LinuxTargetSession : public TargetSession {
 public:
  LinuxTargetSession(const TargetSpec& spec, const LinuxPlatformOptions& opts)
      : opts_(opts), target_(spec) {
    target_.validate();  // TargetError: no such pid, unit, cgroup ...
    gate_.emplace(opts_.knobs, &target_);
  }

  KnobGate& knobs() override { return *gate_; }

  MetricSource& open_metrics() override {
    if (metrics_) return *metrics_;
    std::unique_ptr<LatencySampler> sampler;
    try {
      sampler = std::make_unique<LatencySampler>(target_);
      sampler->set_min_samples(opts_.min_samples);
    } catch (const SamplerError& e) {
      // The command metric does not need the eBPF sampler; the others do.
      if (opts_.metric != Metric::CommandP95) throw;
      log::warn(std::string("eBPF sampler unavailable, using the command metric alone: ") +
                e.what());
    }
    std::unique_ptr<CommandSource> command;
    if (opts_.command) command = std::make_unique<CommandSource>(*opts_.command);
    metrics_ = std::make_unique<WindowAssembler>(target_, std::move(sampler), std::move(command),
                                                 opts_.metric, opts_.window_ms);
    return *metrics_;
  }

 private:
  LinuxPlatformOptions opts_;
  // Declared in dependency order: the sampler and the knob gate hold the
  // target, and are gone before it.
  TargetResolver target_;
  std::optional<KnobManagerGate> gate_;
  std::unique_ptr<WindowAssembler> metrics_;
};

}  // namespace

void LinuxPlatform::validate_target(const TargetSpec& spec) {
  TargetResolver probe(spec);
  probe.validate();
}

std::unique_ptr<TargetSession> LinuxPlatform::open_target(const TargetSpec& spec) {
  return std::make_unique<LinuxTargetSession>(spec, opts_);
}

int LinuxPlatform::online_cpus() const {
  return std::max(1, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
}

std::vector<KnobInfo> LinuxPlatform::catalogue_without_target() {
  // Not tuning: probe without a target (per-task knobs then show what they can).
  KnobsConfig kc = opts_.knobs;
  kc.restore_on_exit = false;
  KnobManager km(kc, nullptr);
  return km.catalogue();
}

std::string LinuxPlatform::boot_id() { return knobs::read_boot_id(); }

uint64_t LinuxPlatform::process_start_time(pid_t pid) {
  return knobs::task_start_time(opts_.knobs.proc_root, pid, pid);
}

std::unique_ptr<Agent> LibraryAgentFactory::make(AgentRole role, const AgentConfig& config) {
  return make_agent(role, config, io_);
}

}  // namespace specact
