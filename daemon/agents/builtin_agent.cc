#include "agents/builtin_agent.h"

#include <boost/asio/post.hpp>

#include "agents/policy.h"

namespace specact {

BuiltinAgent::BuiltinAgent(AgentRole role, boost::asio::io_context& io,
                           std::chrono::milliseconds delay, std::optional<uint64_t> seed,
                           int max_top_k)
    : role_(role), io_(io), timer_(io), delay_(delay), seed_(seed), max_top_k_(max_top_k) {}

BuiltinAgent::~BuiltinAgent() {
  *alive_ = false;
  timer_.cancel();
}

void BuiltinAgent::request(const AgentContext& ctx, Callback done) {
  std::weak_ptr<bool> alive = alive_;
  if (busy_) {
    AgentReply r;
    r.error = "agent busy: one request at a time";
    boost::asio::post(io_, [alive, done = std::move(done), r]() mutable {
      if (auto a = alive.lock(); a && *a) done(std::move(r));
    });
    return;
  }
  AgentContext c = ctx;
  c.role = role_;
  if (seed_) c.seed = *seed_;
  if (max_top_k_ > 0) c.top_k = std::min(c.top_k, max_top_k_);
  auto started = std::chrono::steady_clock::now();
  AgentReply reply = builtin_propose(digest(c));
  busy_ = true;
  uint64_t gen = ++generation_;
  auto finish = [this, alive, gen, started, reply = std::move(reply),
                 done = std::move(done)]() mutable {
    if (auto a = alive.lock(); !a || !*a) return;
    if (gen != generation_ || !busy_) return;  // cancelled
    busy_ = false;
    reply.usage.latency_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    done(std::move(reply));
  };
  if (delay_.count() > 0) {
    timer_.expires_after(delay_);
    timer_.async_wait([finish = std::move(finish)](const boost::system::error_code& ec) mutable {
      if (!ec) finish();
    });
  } else {
    boost::asio::post(io_, std::move(finish));
  }
}

void BuiltinAgent::cancel() {
  if (!busy_) return;
  busy_ = false;
  ++generation_;
  timer_.cancel();
}

std::string BuiltinAgent::describe() const {
  std::string s = std::string("builtin:") + to_string(role_);
  if (delay_.count() > 0) s += " (delay " + std::to_string(delay_.count()) + " ms)";
  return s;
}

}  // namespace specact
