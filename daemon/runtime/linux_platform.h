// The runtime's seams on the real machine: targets resolved on /proc and the
// cgroup2 tree, windows from the eBPF sampler and the command metric source,
// knobs through KnobManager, agents from the agents library.
#pragma once

#include <boost/asio/io_context.hpp>
#include <optional>

#include "metrics/sampler.h"
#include "runtime/platform.h"

namespace specact {

struct LinuxPlatformOptions {
  KnobsConfig knobs;
  Metric metric = Metric::ServiceP95;
  std::optional<CommandSourceOptions> command;  // the command metric, when configured
  uint64_t min_samples = 20;                    // eBPF samples for a stable window p95
  int window_ms = 1000;
};

class LinuxPlatform : public Platform {
 public:
  explicit LinuxPlatform(LinuxPlatformOptions options) : opts_(std::move(options)) {}
  void validate_target(const TargetSpec& spec) override;
  std::unique_ptr<TargetSession> open_target(const TargetSpec& spec) override;
  std::vector<KnobInfo> catalogue_without_target() override;
  std::string boot_id() override;
  uint64_t process_start_time(pid_t pid) override;
  int online_cpus() const override;

 private:
  LinuxPlatformOptions opts_;
};

// make_agent() on the runtime's loop.
class LibraryAgentFactory : public AgentFactory {
 public:
  explicit LibraryAgentFactory(boost::asio::io_context& io) : io_(io) {}
  std::unique_ptr<Agent> make(AgentRole role, const AgentConfig& config) override;

 private:
  boost::asio::io_context& io_;
};

}  // namespace specact
