// Parsing and validation of agent replies (what an LLM wrote) against the knob
// catalogue. Nothing that fails here reaches the engine. Rules (also in
// daemon/agents/README.md):
//  - The reply must contain one JSON object: the whole text, or the first
//    balanced {...} inside prose or a ``` code fence (tolerated, logged).
//  - Reply-level rejection (nothing from the reply is used): no JSON object,
//    syntax error, invalid UTF-8, duplicate keys anywhere, NaN/Infinity, a
//    top-level key other than candidates / wants_more_evidence / reasoning,
//    missing or non-array "candidates" (an empty array is fine only with
//    wants_more_evidence=true).
//  - Candidate-level rejection (that candidate is dropped and counted): not an
//    object, keys other than config / confidence / rationale, missing config or
//    confidence, confidence not a number in [0,1], a config key that is not a
//    tunable knob of this context (e.g. an injected "kernel.panic"), a value
//    that is not an integer (strings, booleans, fractions, null, non-finite),
//    enum names that do not exist, an out-of-range value for an enum or
//    two-valued knob, a value outside int64, and a config equal to an earlier
//    candidate. Candidates beyond top_k are dropped and counted.
//  - Clamping (logged, candidate kept): an integer outside a linear or log
//    knob's [min, max] is clamped to the nearest bound. Enum knobs also accept
//    the value's name. Knobs the candidate does not mention keep their value in
//    `current`. Rationale is cut to 300 characters.
#pragma once

#include <string>
#include <vector>

#include "agents/agent.h"

namespace specact {

struct ValidationResult {
  AgentReply reply;                // candidates that passed; rejected count; error if none usable
  std::vector<std::string> notes;  // one line per clamp, rejection, tolerance used
};

// Validates the assistant message text `content` for a request made with ctx.
ValidationResult validate_reply(const std::string& content, const AgentContext& ctx);

// The first balanced JSON object in text (respecting strings), or "" if none.
std::string extract_json_object(const std::string& text);

}  // namespace specact
