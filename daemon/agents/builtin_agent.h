// The offline agent: a builtin policy answering on the daemon's event loop,
// optionally after a fixed delay (so tests and benchmarks can reproduce a
// model's latency without a server).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>

#include "agents/agent.h"

namespace specact {

class BuiltinAgent final : public Agent {
 public:
  BuiltinAgent(AgentRole role, boost::asio::io_context& io,
               std::chrono::milliseconds delay = std::chrono::milliseconds(0),
               std::optional<uint64_t> seed = std::nullopt, int max_top_k = 0);
  ~BuiltinAgent() override;

  void request(const AgentContext& ctx, Callback done) override;
  void cancel() override;
  bool busy() const override { return busy_; }
  std::string describe() const override;

 private:
  AgentRole role_;
  boost::asio::io_context& io_;
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds delay_;
  std::optional<uint64_t> seed_;
  int max_top_k_;
  bool busy_ = false;
  uint64_t generation_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace specact
