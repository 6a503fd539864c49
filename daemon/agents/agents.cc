#include "agents/agents.h"

#include "agents/builtin_agent.h"
#include "agents/openai_agent.h"

namespace specact {

std::unique_ptr<Agent> make_agent(AgentRole role, const AgentConfig& config,
                                  boost::asio::io_context& io) {
  if (config.backend == AgentConfig::Backend::OpenAI)
    return std::make_unique<OpenAIAgent>(role, config, io);
  std::optional<uint64_t> seed;
  if (config.seed >= 0) seed = static_cast<uint64_t>(config.seed);
  return std::make_unique<BuiltinAgent>(role, io, std::chrono::milliseconds(config.delay_ms), seed,
                                        config.top_k);
}

}  // namespace specact
