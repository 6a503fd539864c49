// Fuzzes the daemon's configuration path as `specactd run --config FILE` takes
// it (daemon/cli/run_command.cc): JSON text -> RunConfig::from_text (parse,
// then RunConfig::from_json). Contract: every input ends in a RunConfig or a
// ConfigError (exit 2); nothing else escapes, nothing crashes, and what is
// accepted says what the file said.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_support.h"
#include "observe/textfile_writer.h"
#include "runtime/run_config.h"
#include "target_oracle.h"

using nlohmann::json;
using namespace specact;

namespace {

void check_accepted(const RunConfig& c, const json& j) {
  FUZZ_CHECK(c.window_ms >= 50 && c.window_ms <= 600'000, std::to_string(c.window_ms));
  FUZZ_CHECK(!c.state_dir.empty(), "empty state_dir accepted");
  FUZZ_CHECK(c.engine.safety_margin >= 0 && c.engine.safety_margin <= 10,
             std::to_string(c.engine.safety_margin));
  FUZZ_CHECK(c.engine.evidence.throughput_floor >= 0 && c.engine.evidence.throughput_floor <= 1,
             std::to_string(c.engine.evidence.throughput_floor));
  FUZZ_CHECK(c.metric != Metric::CommandP95 || (c.command && !c.command->command.empty()),
             "command metric without a command");
  if (c.target) fuzz::check_target(*c.target, j.at("target"));
  if (j.contains("background") && c.knobs.background)
    fuzz::check_target(*c.knobs.background, j.at("background"));
  // No wildcard listener unless the file asked for one; a textfile path the
  // writer accepts.
  if (c.metrics.listen) {
    FUZZ_CHECK(c.metrics.listen->port >= 1, c.metrics.listen->to_string());
    FUZZ_CHECK(!c.metrics.listen->address.is_unspecified() || c.metrics.allow_wildcard,
               "wildcard listener accepted without metrics.allow_wildcard");
  }
  if (!c.metrics.textfile.empty())
    FUZZ_CHECK(observe::check_textfile_path(c.metrics.textfile).empty(), c.metrics.textfile);
  FUZZ_CHECK(c.metrics.max_connections >= 1 && c.metrics.max_connections <= 1024,
             std::to_string(c.metrics.max_connections));
  // What the daemon reports about its config must serialise.
  (void)c.knobs.to_json().dump();
  (void)c.speculator.to_json().dump();
  (void)c.actor.to_json().dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = fuzz::as_string(data, size);
  try {
    RunConfig c = RunConfig::from_text(text);
    // Accepted: the text is valid JSON, so the oracle can read what it said.
    check_accepted(c, json::parse(text));
  } catch (const ConfigError& e) {
    FUZZ_CHECK(*e.what() != '\0', "empty ConfigError");
  }
  return 0;
}
