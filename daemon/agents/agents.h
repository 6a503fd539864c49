// What the runtime includes: the Agent interface, the config and the factory.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "agents/agent.h"
#include "agents/agent_config.h"

namespace specact {

// Builds the agent for a role. Throws AgentConfigError when the config cannot
// work here (e.g. the API key variable or file is missing, prompt_dir unreadable).
std::unique_ptr<Agent> make_agent(AgentRole role, const AgentConfig& config,
                                  boost::asio::io_context& io);

}  // namespace specact
