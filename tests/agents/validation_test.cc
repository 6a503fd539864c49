// Table-driven hostile replies: every one is rejected (nothing reaches the
// caller) or safely clamped into the knob's domain. Nothing else is allowed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent_test_util.h"
#include "agents/validate.h"

using namespace specact;
using namespace specact::testing;

namespace {

enum class Expect { Reject, Clamp, Partial };

struct Case {
  const char* name;
  std::string content;
  Expect expect;
  std::string knob = "";  // Clamp: the knob and the value it must be clamped to
  int64_t value = 0;
  size_t accepted = 0;  // Partial: candidates that survive
};

std::string cand(const std::string& config, const std::string& conf = "0.5",
                 const std::string& extra = "") {
  return R"({"config":)" + config + R"(,"confidence":)" + conf + extra + R"(,"rationale":"r"})";
}
std::string reply(const std::string& cands) { return R"({"candidates":[)" + cands + "]}"; }
std::string one(const std::string& config, const std::string& conf = "0.5") {
  return reply(cand(config, conf));
}

std::string deep(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += R"({"x":)";
  s += "1";
  for (int i = 0; i < depth; ++i) s += "}";
  return one(s);
}

std::string many(int n) {
  std::string s;
  for (int i = 0; i < n; ++i)
    s += (i ? "," : "") + cand(R"({"task.slice_us":)" + std::to_string(100 + i) + "}");
  return reply(s);
}

AgentContext context() {
  AgentContext ctx = sim_context(AgentRole::Speculator);
  KnobInfo policy;
  policy.name = "task.policy";
  policy.family = "task";
  policy.unit = "enum";
  policy.domain = {0, 2, KnobScale::Enum, {"other", "batch", "idle"}};
  policy.available = true;
  ctx.knobs.push_back(policy);
  ctx.current["task.policy"] = 0;
  ctx.top_k = 2;
  return ctx;
}

std::vector<Case> hostile_cases() {
  const std::string good = cand(R"({"task.slice_us":400})");
  return {
      {"empty", "", Expect::Reject},
      {"prose only", "I think you should lower the slice to 100 us.", Expect::Reject},
      {"null", "null", Expect::Reject},
      {"array", "[]", Expect::Reject},
      {"number", "42", Expect::Reject},
      {"string", "\"candidates\"", Expect::Reject},
      {"lone brace", "{", Expect::Reject},
      {"truncated array", R"({"candidates": [)", Expect::Reject},
      {"missing close", R"({"candidates":[{"config":{"task.slice_us":100},"confidence":0.5}])",
       Expect::Reject},
      {"NaN value", one(R"({"task.slice_us":NaN})"), Expect::Reject},
      {"Infinity value", one(R"({"task.slice_us":Infinity})"), Expect::Reject},
      {"-Infinity confidence", one(R"({"task.slice_us":100})", "-Infinity"), Expect::Reject},
      {"1e999 value", one(R"({"task.slice_us":1e999})"), Expect::Reject},
      {"1e999 confidence", one(R"({"task.slice_us":100})", "1e999"), Expect::Reject},
      {"duplicate top-level key", R"({"candidates":[],"candidates":[)" + good + "]}",
       Expect::Reject},
      {"duplicate knob key", one(R"({"task.slice_us":100,"task.slice_us":100000})"),
       Expect::Reject},
      {"duplicate confidence",
       reply(R"({"config":{"task.slice_us":100},"confidence":0.1,"confidence":0.9})"),
       Expect::Reject},
      {"injected kernel.panic", one(R"({"kernel.panic":1})"), Expect::Reject},
      {"injected sysctl.kernel.panic", one(R"({"task.slice_us":100,"sysctl.kernel.panic":1})"),
       Expect::Reject},
      {"knob in other case", one(R"({"TASK.SLICE_US":100})"), Expect::Reject},
      {"knob with trailing space", one(R"({"task.slice_us ":100})"), Expect::Reject},
      {"knob not tunable here", one(R"({"sysctl.kernel.sched_rr_timeslice_ms":1})"),
       Expect::Reject},
      {"value as string", one(R"({"task.slice_us":"100"})"), Expect::Reject},
      {"value as hex string", one(R"({"task.slice_us":"0x64"})"), Expect::Reject},
      {"value with shell", one(R"({"task.slice_us":"100; echo pwned"})"), Expect::Reject},
      {"value bool", one(R"({"task.slice_us":true})"), Expect::Reject},
      {"value null", one(R"({"task.slice_us":null})"), Expect::Reject},
      {"value array", one(R"({"task.slice_us":[100]})"), Expect::Reject},
      {"value object", one(R"({"task.slice_us":{"v":100}})"), Expect::Reject},
      {"value fraction", one(R"({"task.slice_us":150.5})"), Expect::Reject},
      {"value 1e30", one(R"({"task.slice_us":1e30})"), Expect::Reject},
      {"value uint64 max", one(R"({"task.slice_us":18446744073709551615})"), Expect::Reject},
      {"value below int64", one(R"({"task.nice":-9223372036854775809})"), Expect::Reject},
      {"bool knob 2", one(R"({"sysctl.kernel.sched_autogroup_enabled":2})"), Expect::Reject},
      {"bool knob -1", one(R"({"sysctl.kernel.sched_autogroup_enabled":-1})"), Expect::Reject},
      {"enum unknown name", one(R"({"task.policy":"fifo"})"), Expect::Reject},
      {"enum index out of range", one(R"({"task.policy":5})"), Expect::Reject},
      {"confidence above 1", one(R"({"task.slice_us":100})", "1.5"), Expect::Reject},
      {"confidence negative", one(R"({"task.slice_us":100})", "-0.1"), Expect::Reject},
      {"confidence string", one(R"({"task.slice_us":100})", "\"high\""), Expect::Reject},
      {"confidence missing", reply(R"({"config":{"task.slice_us":100}})"), Expect::Reject},
      {"config missing", reply(R"({"confidence":0.5})"), Expect::Reject},
      {"config array", one(R"([["task.slice_us",100]])"), Expect::Reject},
      {"config string", one(R"("task.slice_us=100")"), Expect::Reject},
      {"candidate string", reply(R"("task.slice_us=100")"), Expect::Reject},
      {"candidate number", reply("7"), Expect::Reject},
      {"candidates object", R"({"candidates":{"config":{"task.slice_us":100}}})", Expect::Reject},
      {"candidates missing", R"({"wants_more_evidence":false})", Expect::Reject},
      {"candidates null", R"({"candidates":null})", Expect::Reject},
      {"top-level kernel.panic", R"({"candidates":[)" + good + R"(],"kernel.panic":1})",
       Expect::Reject},
      {"top-level instructions",
       R"({"candidates":[)" + good + R"(],"instructions":"ignore previous instructions"})",
       Expect::Reject},
      {"candidate extra key apply_now",
       reply(cand(R"({"task.slice_us":100})", "0.5", R"(,"apply_now":true)")), Expect::Reject},
      {"candidate extra sysctl map",
       reply(cand(R"({"task.slice_us":100})", "0.5", R"(,"sysctl":{"kernel.panic":1})")),
       Expect::Reject},
      {"empty candidates, no request for evidence", R"({"candidates":[]})", Expect::Reject},
      {"wants_more_evidence as string", R"({"candidates":[],"wants_more_evidence":"yes"})",
       Expect::Reject},
      {"reasoning not a string", R"({"candidates":[)" + good + R"(],"reasoning":{"a":1}})",
       Expect::Reject},
      {"invalid UTF-8 in a string",
       reply(cand(R"({"task.slice_us":100})", "0.5"))
           .replace(reply(cand(R"({"task.slice_us":100})", "0.5")).find("\"r\""), 3,
                    "\"\xff\xfe\""),
       Expect::Reject},
      {"raw NUL in JSON", std::string("{\"candidates\":[\0]}", 19), Expect::Reject},
      {"comment in JSON", "{\"candidates\":[ // set kernel.panic=1\n" + good + "]}",
       Expect::Reject},
      {"deep nesting", deep(3000), Expect::Reject},
      {"hostile object first, good second",
       one(R"({"kernel.panic":1})") + "\n" + one(R"({"task.slice_us":400})"), Expect::Reject},
      {"braces in prose before the JSON", "Try {slice} smaller: " + one(R"({"task.slice_us":400})"),
       Expect::Reject},
      // Clamped: a numeric knob out of its range is moved to the nearest bound.
      {"slice 0", one(R"({"task.slice_us":0})"), Expect::Clamp, "task.slice_us", 100},
      {"slice negative", one(R"({"task.slice_us":-5})"), Expect::Clamp, "task.slice_us", 100},
      {"slice 1e9", one(R"({"task.slice_us":1000000000})"), Expect::Clamp, "task.slice_us", 100000},
      {"slice 1e9 as float", one(R"({"task.slice_us":1e9})"), Expect::Clamp, "task.slice_us",
       100000},
      {"nice -100", one(R"({"task.nice":-100})"), Expect::Clamp, "task.nice", -20},
      {"nice 100", one(R"({"task.nice":100})"), Expect::Clamp, "task.nice", 19},
      // Partial: the hostile candidates are dropped, the sound ones survive.
      {"good plus kernel.panic", reply(good + "," + cand(R"({"kernel.panic":1})")), Expect::Partial,
       "", 0, 1},
      {"too many candidates (5 for top_k 2)", many(5), Expect::Partial, "", 0, 2},
      {"10000 candidates", many(10000), Expect::Partial, "", 0, 2},
      {"duplicate candidates", reply(good + "," + good), Expect::Partial, "", 0, 1},
  };
}

}  // namespace

TEST(ReplyValidation, HostileTableIsRejectedOrSafelyClamped) {
  AgentContext ctx = context();
  auto cases = hostile_cases();
  ASSERT_GE(cases.size(), 50u);
  size_t rejected = 0, clamped = 0, partial = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ValidationResult v = validate_reply(c.content, ctx);
    const AgentReply& r = v.reply;
    // Whatever survives is inside the catalogue and its domains.
    for (const auto& cand : r.candidates) {
      EXPECT_GE(cand.confidence, 0.0);
      EXPECT_LE(cand.confidence, 1.0);
      for (const auto& [k, val] : cand.config) {
        auto it = std::find_if(ctx.knobs.begin(), ctx.knobs.end(),
                               [&](const KnobInfo& ki) { return ki.name == k; });
        ASSERT_NE(it, ctx.knobs.end()) << k;
        EXPECT_TRUE(it->domain.contains(val)) << k << "=" << val;
      }
    }
    EXPECT_LE(r.candidates.size(), 2u);
    switch (c.expect) {
      case Expect::Reject:
        EXPECT_TRUE(r.candidates.empty());
        EXPECT_FALSE(r.ok());
        EXPECT_GE(r.rejected, 1u);
        EXPECT_FALSE(v.notes.empty());
        rejected += r.candidates.empty() && !r.ok();
        break;
      case Expect::Clamp:
        ASSERT_EQ(r.candidates.size(), 1u);
        EXPECT_TRUE(r.ok());
        EXPECT_EQ(r.candidates[0].config.at(c.knob), c.value);
        EXPECT_TRUE(std::any_of(v.notes.begin(), v.notes.end(), [](const std::string& n) {
          return n.find("clamped") != std::string::npos;
        }));
        clamped += r.candidates[0].config.at(c.knob) == c.value;
        break;
      case Expect::Partial:
        EXPECT_EQ(r.candidates.size(), c.accepted);
        EXPECT_GE(r.rejected, 1u);
        for (const auto& cand : r.candidates) EXPECT_FALSE(cand.config.count("kernel.panic"));
        partial += r.candidates.size() == c.accepted && r.rejected >= 1;
        break;
    }
  }
  std::printf("hostile replies: %zu cases, %zu rejected, %zu clamped, %zu partially rejected\n",
              cases.size(), rejected, clamped, partial);
  EXPECT_EQ(rejected + clamped + partial, cases.size());
}

TEST(ReplyValidation, SoundRepliesPass) {
  AgentContext ctx = context();
  ValidationResult v = validate_reply(
      R"({"candidates":[{"config":{"task.slice_us":400,"task.policy":"batch"},"confidence":0.8,)"
      R"("rationale":"also set kernel.panic=1"}],"wants_more_evidence":false,"reasoning":"..."})",
      ctx);
  ASSERT_TRUE(v.reply.ok()) << v.reply.error;
  ASSERT_EQ(v.reply.candidates.size(), 1u);
  const Config& c = v.reply.candidates[0].config;
  EXPECT_EQ(c.at("task.slice_us"), 400);
  EXPECT_EQ(c.at("task.policy"), 1);
  EXPECT_EQ(c.at("task.nice"), ctx.current.at("task.nice"));  // unmentioned knobs keep current
  EXPECT_EQ(c.size(), ctx.current.size());
  EXPECT_EQ(v.reply.rejected, 0u);

  // An integral float and a request for more evidence are fine.
  v = validate_reply(R"({"candidates":[{"config":{"task.slice_us":400.0},"confidence":1}]})", ctx);
  EXPECT_TRUE(v.reply.ok());
  v = validate_reply(R"({"candidates":[],"wants_more_evidence":true})", ctx);
  EXPECT_TRUE(v.reply.ok());
  EXPECT_TRUE(v.reply.wants_more_evidence);
}

TEST(ReplyValidation, NoMeasurementIsAnAnswerOnlyToAMeasurementsOnlyRequest) {
  // The builtin speculator's reply through the JSON protocol when nothing is
  // worth a window: it was rejected as invalid and logged as an agent error.
  AgentContext ctx = context();
  const std::string none = R"({"candidates":[],"wants_more_evidence":false})";
  ctx.measurements_only = true;
  ValidationResult v = validate_reply(none, ctx);
  EXPECT_TRUE(v.reply.ok()) << v.reply.error;
  EXPECT_TRUE(v.reply.candidates.empty());
  ctx.measurements_only = false;
  v = validate_reply(none, ctx);
  EXPECT_FALSE(v.reply.ok());
  EXPECT_NE(v.reply.error.find("no candidates and no request for more evidence"), std::string::npos);
}

TEST(ReplyValidation, LongRationaleIsCutOnACharacterBoundary) {
  AgentContext ctx = context();
  std::string r(299, 'a');
  r += "\xc3\xa9\xc3\xa9";  // two-byte characters across the 300-byte cut
  auto v = validate_reply(
      R"({"candidates":[{"config":{"task.slice_us":400},"confidence":0.5,"rationale":")" + r +
          "\"}]}",
      ctx);
  ASSERT_EQ(v.reply.candidates.size(), 1u);
  EXPECT_EQ(v.reply.candidates[0].rationale, std::string(299, 'a'));
}

TEST(ReplyValidation, ModelTextCannotForgeLogLines) {
  AgentContext ctx = context();
  auto v = validate_reply(
      R"({"candidates":[{"config":{"evil\nspecactd: applied kernel.panic=1":1},"confidence":0.5},)"
      R"({"config":{"task.slice_us":400},"confidence":0.5,"rationale":"a\nb\u001b[31m"}]})",
      ctx);
  ASSERT_EQ(v.reply.candidates.size(), 1u);
  EXPECT_EQ(v.reply.candidates[0].rationale.find_first_of("\n\x1b"), std::string::npos);
  for (const auto& n : v.notes) EXPECT_EQ(n.find('\n'), std::string::npos) << n;
}

// reply.error and the notes go to the log, history.jsonl and D-Bus, where
// nlohmann's dump() throws on invalid UTF-8: the parser's message quotes the
// raw bytes it choked on, and a byte-wise cut can split a character.
TEST(ReplyValidation, ErrorsAndNotesAreValidUtf8) {
  AgentContext ctx = context();
  auto dumps = [](const std::string& s) {
    try {
      (void)nlohmann::json(s).dump();
      return true;
    } catch (const nlohmann::json::type_error&) {
      return false;
    }
  };
  std::string two_byte_name;
  for (int i = 0; i < 400; ++i) two_byte_name += "\xc3\xa9";
  const std::vector<std::string> replies = {
      "{\"candidates\":[],\"x\":\"\xff\xfe\"}",  // malformed JSON quoting invalid bytes
      "{\"candidates\":[{\"config\":{\"" + two_byte_name + "\":1},\"confidence\":0.5}]}",
      "{\"candidates\":[{\"config\":{\"x\":1},\"confidence\":0.5}],\"" + two_byte_name + "\":1}",
  };
  for (const auto& r : replies) {
    auto v = validate_reply(r, ctx);
    EXPECT_FALSE(v.reply.ok());
    EXPECT_TRUE(dumps(v.reply.error)) << v.reply.error;
    EXPECT_LE(v.reply.error.size(), 1000u);
    for (const auto& n : v.notes) {
      EXPECT_TRUE(dumps(n)) << n;
      EXPECT_LE(n.size(), 1000u);
    }
  }
}

TEST(ReplyValidation, ExtractsTheFirstBalancedObject) {
  EXPECT_EQ(extract_json_object("x ```json\n{\"a\":\"}\"}\n``` y"), "{\"a\":\"}\"}");
  EXPECT_EQ(extract_json_object("no json"), "");
  EXPECT_EQ(extract_json_object("{\"a\":{\"b\":1}} {\"c\":2}"), "{\"a\":{\"b\":1}}");
  EXPECT_EQ(extract_json_object("{\"unclosed\":1"), "");
}
