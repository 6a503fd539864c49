// 100k nested brackets at every JSON entry point. nlohmann::json 3.11 parses
// and destroys such input without recursion, but copying, comparing and
// dump() recurse (a 100k-deep copy or dump overflows an 8 MiB stack). These
// tests pin that the daemon's paths only parse, inspect and refuse: if one
// starts copying or dumping the input, it crashes here instead of in root's
// daemon.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "agents/validate.h"
#include "knobs/journal.h"
#include "knobs/knob_defs.h"
#include "runtime/run_config.h"
#include "target/target.h"

using nlohmann::json;
using namespace specact;

namespace {

constexpr int kDepth = 100'000;

std::string deep_array() { return std::string(kDepth, '[') + std::string(kDepth, ']'); }
std::string deep_object() {
  std::string s;
  s.reserve(kDepth * 7);
  for (int i = 0; i < kDepth; ++i) s += "{\"a\":";
  s += "1";
  s.append(kDepth, '}');
  return s;
}

// Where a nested value can sit in each input: "@" is replaced by it.
std::string at(const std::string& tmpl, const std::string& deep) {
  std::string s = tmpl;
  s.replace(s.find('@'), 1, deep);
  return s;
}

// run_command.cc: parse, then RunConfig::from_json; ConfigError or success.
void config_survives(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error&) {
    return;
  }
  try {
    (void)RunConfig::from_json(j);
  } catch (const ConfigError&) {
  }
}

const char* const kConfigPlaces[] = {
    "@",
    R"({"_comment":@})",
    R"({"target":@})",
    R"({"target":{"pid":@}})",
    R"({"target":{"pids":@}})",
    R"({"target":{"comm":@}})",
    R"({"background":@})",
    R"({"objective":{"metric":@}})",
    R"({"window_ms":@})",
    R"({"knobs":{"allow":@}})",
    R"({"knobs":{"ranges":{"task.nice":@}}})",
    R"({"knobs":{"extra_sysctls":@}})",
    R"({"knobs":{"background":@}})",
    R"({"speculator":{"backend":@}})",
    R"({"actor":{"backend":"openai","base_url":"http://127.0.0.1:1/v1","model":@}})",
    R"({"safety":{"margin":@}})",
    R"({"engine":{"seed":@}})",
    R"({"dbus":{"bus_address":@}})",
    R"({"log_level":@})",
};

TEST(DeepNesting, ConfigFile) {
  for (const char* place : kConfigPlaces) {
    SCOPED_TRACE(place);
    config_survives(at(place, deep_array()));
    config_survives(at(place, deep_object()));
  }
}

// dbus_service.cc SetTarget, then runtime.cc's TargetSpec::from_json.
TEST(DeepNesting, DbusSetTarget) {
  for (const char* place :
       {"@", R"({"pid":@})", R"({"pids":@})", R"({"comm":@})", R"({"unit":@})", R"({"x":@})"}) {
    for (const std::string& deep : {deep_array(), deep_object()}) {
      SCOPED_TRACE(place);
      json j = json::parse(at(place, deep), nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object()) continue;
      EXPECT_THROW(TargetSpec::from_json(j), std::exception);
    }
  }
}

TEST(DeepNesting, AgentReply) {
  AgentContext ctx;
  for (auto& d : knobs::builtin_defs({6, 18}, 2)) {
    d.info.available = true;
    ctx.current[d.info.name] = d.info.domain.clamp(d.info.default_value.value_or(0));
    ctx.knobs.push_back(d.info);
  }
  for (const char* place : {"@", R"({"candidates":@})", R"({"reasoning":@})",
                            R"({"candidates":[{"config":{"task.nice":@},"confidence":0.5}]})",
                            R"({"candidates":[{"config":@,"confidence":0.5}]})",
                            R"({"candidates":[{"config":{},"confidence":0.5,"rationale":@}]})",
                            R"(Here you go: {"candidates":@} hope it helps)"}) {
    for (const std::string& deep : {deep_array(), deep_object()}) {
      SCOPED_TRACE(place);
      ValidationResult r = validate_reply(at(place, deep), ctx);
      EXPECT_TRUE(r.reply.candidates.empty());
      EXPECT_FALSE(r.reply.ok());
    }
  }
}

// JournalStore::load(): parse, then journal_from_json; any std::exception is
// "corrupt".
TEST(DeepNesting, Journal) {
  const std::string head = R"({"format":"specactd-knobs-journal","version":1,)";
  for (const std::string& place :
       {std::string("@"), head + R"("files":@,"tasks":[]})", head + R"("files":[@],"tasks":[]})",
        head + R"("files":[],"tasks":[{"knob":"task.nice","field":@}]})",
        head + R"("boot_id":@,"files":[],"tasks":[]})"}) {
    for (const std::string& deep : {deep_array(), deep_object()}) {
      SCOPED_TRACE(place);
      try {
        (void)knobs::journal_from_json(json::parse(at(place, deep)));
        ADD_FAILURE() << "accepted";
      } catch (const std::exception&) {
      }
    }
  }
}

}  // namespace
