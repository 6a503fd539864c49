// Helpers shared by the agent suites: a context on the simulated kernel and a
// way to wait for an asynchronous reply on a private io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <optional>

#include "agents/agent.h"
#include "sim_kernel.h"

namespace specact::testing {

// The tests talk to 127.0.0.1 only: a proxy from the environment must not
// intercept them (libcurl honours http_proxy and friends).
inline const bool kProxiesCleared = [] {
  for (const char* v :
       {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"})
    unsetenv(v);
  return true;
}();

inline AgentContext sim_context(AgentRole role, int windows = 4, uint64_t seed = 1) {
  sim::SimKernel k(sim::SimWorkload::mixed(), seed);
  AgentContext ctx;
  ctx.role = role;
  ctx.knobs = sim::catalogue();
  ctx.current = k.resolve({});
  ctx.confirmed = ctx.best = ctx.baseline = ctx.current;
  ctx.seed = seed;
  for (int i = 0; i < windows; ++i) {
    if (i == windows / 2) ctx.current[sim::kSlice] = 700;
    WindowRecord r;
    r.window = k.measure(ctx.current, i * 1'000'000'000LL, 1'000'000'000LL);
    r.config = ctx.current;
    ctx.history.push_back(std::move(r));
  }
  return ctx;
}

struct Outcome {
  std::optional<AgentReply> reply;
  bool inline_call = false;  // the callback ran inside request()
  double elapsed_ms = 0;
};

// Issues one request and runs the loop until the reply arrives or max passes.
inline Outcome ask(Agent& agent, boost::asio::io_context& io, const AgentContext& ctx,
                   std::chrono::milliseconds max = std::chrono::seconds(20)) {
  Outcome out;
  bool in_request = true;
  auto t0 = std::chrono::steady_clock::now();
  agent.request(ctx, [&](AgentReply r) {
    out.inline_call = in_request;
    out.reply = std::move(r);
  });
  in_request = false;
  io.restart();
  while (!out.reply && std::chrono::steady_clock::now() - t0 < max)
    io.run_for(std::chrono::milliseconds(10));
  out.elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace specact::testing
