// Fuzzes the agent reply validator (daemon/agents/validate.cc) with the text an
// LLM could send, against the real knob catalogue. Contract (validate.h): only
// known knobs, values inside their domains, at most top_k distinct candidates,
// confidences in [0,1]; everything that leaves it (rationale, error, notes)
// is bounded, free of control characters and valid UTF-8, because it goes to
// logs, history.jsonl and D-Bus.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "agents/validate.h"
#include "fuzz_support.h"
#include "knobs/knob_defs.h"

using namespace specact;

namespace {

AgentContext make_context() {
  AgentContext ctx;
  ctx.role = AgentRole::Speculator;
  for (auto& d : knobs::builtin_defs({6, 18}, 2)) {
    KnobInfo k = d.info;
    k.available = true;
    ctx.current[k.name] = k.domain.clamp(k.default_value.value_or(k.domain.min));
    ctx.knobs.push_back(std::move(k));
  }
  ctx.confirmed = ctx.best = ctx.baseline = ctx.current;
  ctx.top_k = 2;
  return ctx;
}

void check_text(const std::string& s, size_t max, const char* what) {
  FUZZ_CHECK(s.size() <= max, std::string(what) + " longer than " + std::to_string(max));
  FUZZ_CHECK(!fuzz::has_control_chars(s), std::string(what) + " has control characters: " + s);
  FUZZ_CHECK(fuzz::valid_utf8(s), std::string(what) + " is not valid UTF-8");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const AgentContext ctx = make_context();
  ValidationResult res = validate_reply(fuzz::as_string(data, size), ctx);
  const AgentReply& r = res.reply;
  FUZZ_CHECK(r.candidates.size() <= static_cast<size_t>(ctx.top_k), "more than top_k");
  if (!r.ok()) FUZZ_CHECK(r.candidates.empty(), "error with candidates");
  if (r.candidates.empty() && !r.wants_more_evidence && !ctx.measurements_only)
    FUZZ_CHECK(!r.ok(), "nothing usable, yet no error");
  check_text(r.error, 1000, "error");
  for (const auto& n : res.notes) check_text(n, 1000, "note");
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    const Candidate& c = r.candidates[i];
    FUZZ_CHECK(std::isfinite(c.confidence) && c.confidence >= 0 && c.confidence <= 1,
               std::to_string(c.confidence));
    check_text(c.rationale, 300, "rationale");
    FUZZ_CHECK(c.config.size() == ctx.current.size(), "config gained or lost knobs");
    for (const auto& k : ctx.knobs) {
      auto it = c.config.find(k.name);
      FUZZ_CHECK(it != c.config.end(), "candidate misses " + k.name);
      FUZZ_CHECK(k.domain.contains(it->second),
                 k.name + "=" + std::to_string(it->second) + " outside its domain");
    }
    for (size_t p = 0; p < i; ++p)
      FUZZ_CHECK(r.candidates[p].config != c.config, "duplicate candidates");
  }
  return 0;
}
