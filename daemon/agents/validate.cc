#include "agents/validate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace specact {
namespace {

using nlohmann::json;

constexpr size_t kMaxRationale = 300;

struct DuplicateKey {
  std::string key;
};

// Parses strictly, refusing duplicate object keys (which nlohmann would
// otherwise resolve silently, last one wins).
json parse_no_duplicates(const std::string& text) {
  std::vector<std::set<std::string>> seen;
  auto cb = [&seen](int /*depth*/, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start:
        seen.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!seen.empty()) seen.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& k = parsed.get_ref<const std::string&>();
        if (!seen.empty() && !seen.back().insert(k).second) throw DuplicateKey{k};
        break;
      }
      default:
        break;
    }
    return true;
  };
  return json::parse(text, cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
}

bool is_integral_number(const json& v, int64_t* out, std::string* why) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      *why = "value does not fit int64";
      return false;
    }
    *out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d)) {
      *why = "value is not finite";
      return false;
    }
    if (d != std::floor(d)) {
      *why = "value is not an integer";
      return false;
    }
    if (d < -9.2e18 || d > 9.2e18) {
      *why = "value does not fit int64";
      return false;
    }
    *out = static_cast<int64_t>(d);
    return true;
  }
  *why = std::string("value has type ") + v.type_name() + ", expected integer";
  return false;
}

const KnobInfo* find_knob(const AgentContext& ctx, const std::string& name) {
  for (const auto& k : ctx.knobs)
    if (k.name == name) return &k;
  return nullptr;
}

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0.
size_t utf8_sequence(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n = c >= 0xC2 && c <= 0xDF   ? 2
             : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4
                                      : 0;
  if (n == 0 || i + n > s.size()) return 0;
  // The second byte's range depends on the first (excludes overlongs, surrogates, > U+10FFFF).
  unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
  unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
  if (b(1) < lo || b(1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if ((b(k) & 0xC0) != 0x80) return 0;
  return n;
}

// Model-written text (and parser messages quoting it) ends up in logs,
// history.jsonl and D-Bus: no control characters (no forged log lines), valid
// UTF-8 (nlohmann's dump() throws on anything else; invalid bytes become '?'),
// at most max_len bytes, cut between characters.
std::string sanitize(const std::string& s, size_t max_len) {
  std::string out;
  out.reserve(std::min(s.size(), max_len));
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence(s, i);
    if (out.size() + std::max<size_t>(n, 1) > max_len) break;
    if (n == 0) {
      out += '?';
      ++i;
    } else if (n == 1) {
      char c = s[i++];
      out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

}  // namespace

std::string extract_json_object(const std::string& text) {
  size_t start = text.find('{');
  while (start != std::string::npos) {
    int depth = 0;
    bool in_string = false, escape = false;
    for (size_t i = start; i < text.size(); ++i) {
      char c = text[i];
      if (in_string) {
        if (escape)
          escape = false;
        else if (c == '\\')
          escape = true;
        else if (c == '"')
          in_string = false;
        continue;
      }
      if (c == '"')
        in_string = true;
      else if (c == '{')
        depth++;
      else if (c == '}' && --depth == 0)
        return text.substr(start, i - start + 1);
    }
    // Unbalanced from here: no object starts later either that would close.
    return "";
  }
  return "";
}

ValidationResult validate_reply(const std::string& content, const AgentContext& ctx) {
  ValidationResult res;
  AgentReply& reply = res.reply;
  auto reject_all = [&](const std::string& why, uint64_t count) {
    reply.candidates.clear();
    reply.wants_more_evidence = false;
    reply.rejected = std::max<uint64_t>(count, 1);
    reply.error = sanitize("reply rejected: " + why, 400);
    res.notes.push_back(reply.error);
    return res;
  };

  std::string text = extract_json_object(content);
  if (text.empty()) return reject_all("no JSON object in the reply", 1);
  if (text.size() != content.size()) {
    // Only whitespace around the object is unremarkable.
    auto ws = content.find_first_not_of(" \t\r\n");
    if (ws == std::string::npos || content.compare(ws, text.size(), text) != 0 ||
        content.find_first_not_of(" \t\r\n", ws + text.size()) != std::string::npos)
      res.notes.push_back("reply had text around its JSON object; used the first object");
  }
  json j;
  try {
    j = parse_no_duplicates(text);
  } catch (const DuplicateKey& d) {
    return reject_all("duplicate key \"" + d.key + "\"", 1);
  } catch (const json::exception& e) {
    return reject_all(std::string("malformed JSON: ") + e.what(), 1);
  }
  if (!j.is_object()) return reject_all("top level is not an object", 1);
  for (const auto& [key, v] : j.items()) {
    if (key != "candidates" && key != "wants_more_evidence" && key != "reasoning")
      return reject_all("unexpected top-level key \"" + key + "\"", 1);
  }
  if (j.contains("reasoning") && !j["reasoning"].is_string())
    return reject_all("\"reasoning\" is not a string", 1);
  if (j.contains("wants_more_evidence")) {
    if (!j["wants_more_evidence"].is_boolean())
      return reject_all("\"wants_more_evidence\" is not a boolean", 1);
    reply.wants_more_evidence = j["wants_more_evidence"].get<bool>();
  }
  if (!j.contains("candidates")) return reject_all("missing \"candidates\"", 1);
  const json& cands = j["candidates"];
  if (!cands.is_array()) return reject_all("\"candidates\" is not an array", 1);
  // A speculator asked for measurements only may find none worth a window:
  // an empty list is then an answer (the engine asks less often), not an error.
  if (cands.empty() && !reply.wants_more_evidence && !ctx.measurements_only)
    return reject_all("no candidates and no request for more evidence", 1);

  size_t top_k = static_cast<size_t>(std::max(1, ctx.top_k));
  std::vector<std::string> reasons;
  auto reject = [&](size_t i, const std::string& why) {
    reply.rejected++;
    std::string line = sanitize("candidate " + std::to_string(i) + " rejected: " + why, 300);
    reasons.push_back(line);
    res.notes.push_back(line);
  };
  for (size_t i = 0; i < cands.size(); ++i) {
    const json& c = cands[i];
    if (reply.candidates.size() >= top_k) {
      reject(i, "more than top_k=" + std::to_string(top_k) + " candidates");
      continue;
    }
    if (!c.is_object()) {
      reject(i, "not an object");
      continue;
    }
    std::string bad_key;
    for (const auto& [key, v] : c.items())
      if (key != "config" && key != "confidence" && key != "rationale") bad_key = key;
    if (!bad_key.empty()) {
      reject(i, "unexpected key \"" + bad_key + "\"");
      continue;
    }
    if (!c.contains("config") || !c["config"].is_object()) {
      reject(i, "missing or non-object \"config\"");
      continue;
    }
    if (!c.contains("confidence") || !c["confidence"].is_number()) {
      reject(i, "missing or non-numeric \"confidence\"");
      continue;
    }
    double conf = c["confidence"].get<double>();
    if (!std::isfinite(conf) || conf < 0 || conf > 1) {
      reject(i, "confidence outside [0,1]");
      continue;
    }
    std::string rationale;
    if (c.contains("rationale")) {
      if (!c["rationale"].is_string()) {
        reject(i, "\"rationale\" is not a string");
        continue;
      }
      rationale = sanitize(c["rationale"].get<std::string>(), kMaxRationale);
    }
    Config config = ctx.current;
    std::string why;
    std::vector<std::string> clamps;
    for (const auto& [name, v] : c["config"].items()) {
      const KnobInfo* k = find_knob(ctx, name);
      if (!k) {
        why = "\"" + name + "\" is not a tunable knob here";
        break;
      }
      int64_t value = 0;
      if (k->domain.scale == KnobScale::Enum && v.is_string()) {
        const auto& names = k->domain.enum_values;
        auto it = std::find(names.begin(), names.end(), v.get<std::string>());
        if (it == names.end()) {
          why = name + ": no such value \"" + v.get<std::string>() + "\"";
          break;
        }
        value = it - names.begin();
      } else {
        std::string type_why;
        if (!is_integral_number(v, &value, &type_why)) {
          why = name + ": " + type_why;
          break;
        }
      }
      if (!k->domain.contains(value)) {
        bool clampable = k->domain.scale != KnobScale::Enum && k->domain.max - k->domain.min > 1;
        if (!clampable) {
          why = name + ": " + std::to_string(value) + " outside [" + std::to_string(k->domain.min) +
                ", " + std::to_string(k->domain.max) + "]";
          break;
        }
        int64_t clamped = k->domain.clamp(value);
        clamps.push_back("candidate " + std::to_string(i) + ": " + name + " " +
                         std::to_string(value) + " clamped to " + std::to_string(clamped));
        value = clamped;
      }
      config[name] = value;
    }
    if (!why.empty()) {
      reject(i, why);
      continue;
    }
    bool duplicate = false;
    for (const auto& prev : reply.candidates) duplicate |= prev.config == config;
    if (duplicate) {
      reject(i, "same config as an earlier candidate");
      continue;
    }
    for (auto& n : clamps) res.notes.push_back(std::move(n));
    reply.candidates.push_back({std::move(config), conf, std::move(rationale)});
  }
  if (reply.candidates.empty() && !reply.wants_more_evidence && !cands.empty()) {
    std::string joined;
    for (const auto& r : reasons) joined += (joined.empty() ? "" : "; ") + r;
    reply.error =
        sanitize("all " + std::to_string(reply.rejected) + " candidates rejected: " + joined, 1000);
  }
  return res;
}

}  // namespace specact
