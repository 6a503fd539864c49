#include "agents/prompts.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace specact {

// Generated from daemon/agents/prompts/*.txt at configure time.
extern const char* const kDefaultSystemPrompt;
extern const char* const kDefaultSpeculatorPrompt;
extern const char* const kDefaultActorPrompt;

namespace {

std::string render(std::string tpl, const std::vector<std::pair<std::string, std::string>>& vars) {
  // Single pass so substituted text (which may contain braces) is never re-expanded.
  std::string out;
  out.reserve(tpl.size() * 2);
  size_t pos = 0;
  while (pos < tpl.size()) {
    size_t open = tpl.find("{{", pos);
    if (open == std::string::npos) break;
    size_t close = tpl.find("}}", open + 2);
    if (close == std::string::npos) break;
    std::string name = tpl.substr(open + 2, close - open - 2);
    out.append(tpl, pos, open - pos);
    bool found = false;
    for (const auto& [k, v] : vars)
      if (k == name) {
        out += v;
        found = true;
        break;
      }
    if (!found) out.append(tpl, open, close + 2 - open);  // unknown placeholder stays visible
    pos = close + 2;
  }
  out.append(tpl, pos, std::string::npos);
  return out;
}

std::string fmt_us(double us) {
  std::ostringstream os;
  os << std::llround(us) << " us";
  return os.str();
}

std::string knob_values(const PolicyInput& in, const Config& c, const Config* base) {
  std::ostringstream os;
  bool first = true;
  for (const auto& k : in.knobs) {
    auto it = c.find(k.name);
    if (it == c.end()) continue;
    if (base)
      if (auto b = base->find(k.name); b != base->end() && b->second == it->second) continue;
    os << (first ? "" : ", ") << k.name << "=" << format_knob_value(k, it->second);
    first = false;
  }
  return first ? "" : os.str();
}

// A config as its differences from the baseline ("baseline" when none): the
// knobs that matter, without every knob name in every line.
std::string config_text(const PolicyInput& in, const Config& c) {
  if (c.empty()) return "(none)";
  const std::string d = knob_values(in, c, &in.baseline);
  return d.empty() ? "baseline" : "baseline with " + d;
}

std::string baseline_text(const PolicyInput& in) {
  const std::string all = knob_values(in, in.baseline, nullptr);
  return all.empty() ? "(none)" : all;
}

std::string knob_lines(const PolicyInput& in) {
  std::ostringstream os;
  for (const auto& k : in.knobs) {
    os << "- " << k.name << ": integer " << k.domain.min << ".." << k.domain.max;
    if (!k.unit.empty()) os << " " << k.unit;
    os << ", " << to_string(k.domain.scale) << " scale";
    if (k.domain.scale == KnobScale::Enum) {
      os << " (";
      for (size_t i = 0; i < k.domain.enum_values.size(); ++i)
        os << (i ? ", " : "") << i << "=" << k.domain.enum_values[i];
      os << ")";
    }
    if (k.default_value) os << "; default " << format_knob_value(k, *k.default_value);
    os << ". " << k.description << "\n";
  }
  std::string s = os.str();
  if (!s.empty()) s.pop_back();
  return s;
}

std::string window_lines(const PolicyInput& in) {
  if (in.recent.empty()) return "(none yet)";
  std::ostringstream os;
  for (const auto& w : in.recent) {
    os << "#" << w.index << " " << config_text(in, w.config) << ": ";
    if (w.objective_us)
      os << "p95 " << fmt_us(*w.objective_us) << " (p50 " << fmt_us(w.p50_us) << ", p99 "
         << fmt_us(w.p99_us) << ", " << w.samples << " samples)";
    else
      os << "no measurement";
    if (w.straddled) os << " [straddles a change: not evidence]";
    if (w.low_confidence) os << " [too few samples]";
    os << "\n";
  }
  std::string s = os.str();
  s.pop_back();
  return s;
}

std::string evidence_lines(const PolicyInput& in) {
  if (in.evidence.empty()) return "(no usable windows yet)";
  std::ostringstream os;
  for (const auto& e : in.evidence) {
    os << "- " << config_text(in, e.config) << ": " << e.est.windows << " windows, "
       << e.est.samples << " samples, pooled p95 " << fmt_us(e.est.p95_us) << " ["
       << fmt_us(e.est.lo_us) << ", " << fmt_us(e.est.hi_us) << "]";
    if (e.est.p99_us) os << ", p99 " << fmt_us(*e.est.p99_us);
    os << ", last #" << e.last_window << "\n";
  }
  std::string s = os.str();
  s.pop_back();
  return s;
}

std::string metric_description(Metric m) {
  switch (m) {
    case Metric::ServiceP95:
      return "95th percentile of service latency: from a thread's wakeup to its next voluntary "
             "block, i.e. the response time of a request";
    case Metric::RunqP95:
      return "95th percentile of run-queue latency: from becoming runnable to getting a CPU";
    case Metric::CommandP95:
      return "95th percentile latency reported by the workload's own benchmark command";
  }
  return "";
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p);
  if (!f) throw std::runtime_error("cannot read prompt template " + p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

PromptTemplates PromptTemplates::defaults() {
  return {kDefaultSystemPrompt, kDefaultSpeculatorPrompt, kDefaultActorPrompt};
}

PromptTemplates PromptTemplates::load(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw std::runtime_error("prompt_dir " + dir + " is not a directory");
  PromptTemplates t = defaults();
  if (fs::exists(fs::path(dir) / "system.txt")) t.system = read_file(fs::path(dir) / "system.txt");
  if (fs::exists(fs::path(dir) / "speculator.txt"))
    t.speculator = read_file(fs::path(dir) / "speculator.txt");
  if (fs::exists(fs::path(dir) / "actor.txt")) t.actor = read_file(fs::path(dir) / "actor.txt");
  return t;
}

ChatPrompt build_prompt(const AgentContext& ctx, const PromptTemplates& templates,
                        const std::vector<std::string>& own_recent_replies, double window_ms) {
  PolicyInput in = digest(ctx);
  if (!ctx.history.empty() && ctx.history.back().window.duration_ms() > 0)
    window_ms = ctx.history.back().window.duration_ms();
  bool actor = ctx.role == AgentRole::Actor;
  std::string own = "(none)";
  if (!own_recent_replies.empty()) {
    own.clear();
    for (const auto& r : own_recent_replies) own += "- " + r + "\n";
    own.pop_back();
  }
  // Two significant figures ("about"): a millisecond of timer jitter in the
  // window's length must not change the system prompt, the cached prefix.
  std::ostringstream wm;
  const double magnitude = std::pow(10.0, std::floor(std::log10(std::max(1.0, window_ms))) - 1);
  wm << std::llround(std::round(window_ms / magnitude) * magnitude);
  std::vector<std::pair<std::string, std::string>> vars = {
      {"role", to_string(ctx.role)},
      {"role_title", actor ? "Actor (slow, deliberate decision maker)"
                           : "Speculator (fast, provisional guesses)"},
      {"metric_name", to_string(ctx.metric)},
      {"metric_description", metric_description(ctx.metric)},
      {"window_ms", wm.str()},
      {"knobs", knob_lines(in)},
      {"top_k", std::to_string(in.top_k)},
      {"ask", in.measurements_only
                  ? "Your guess for the actor's pending decision is in force already: propose up "
                    "to " +
                        std::to_string(in.top_k) +
                        " measurements only (step 2), none if none is worth a window."
                  : "Propose up to " + std::to_string(in.top_k) + " configurations."},
      {"current", config_text(in, in.current)},
      {"confirmed", config_text(in, in.confirmed)},
      {"best", config_text(in, in.best)},
      {"baseline", baseline_text(in)},
      {"since_count", std::to_string(in.windows_since_decision)},
      {"total_count", std::to_string(in.windows_total)},
      {"recent", window_lines(in)},
      {"evidence", evidence_lines(in)},
      {"own_replies", own},
      {"state", state_to_json(in).dump()},
  };
  ChatPrompt p;
  p.system = render(templates.system, vars);
  p.user = render(actor ? templates.actor : templates.speculator, vars);
  return p;
}

std::string reply_summary(const AgentReply& reply, const AgentContext& ctx) {
  nlohmann::json cands = nlohmann::json::array();
  for (const auto& c : reply.candidates) {
    nlohmann::json d = nlohmann::json::object();
    for (const auto& [k, v] : c.config)
      if (auto b = ctx.baseline.find(k); b == ctx.baseline.end() || b->second != v) d[k] = v;
    cands.push_back(std::move(d));
  }
  return nlohmann::json{{"candidates", cands}, {"wants_more_evidence", reply.wants_more_evidence}}
      .dump();
}

std::optional<nlohmann::json> extract_state(const std::string& text) {
  size_t begin = text.find(kStateBegin);
  size_t end = text.rfind(kStateEnd);
  if (begin == std::string::npos || end == std::string::npos || end < begin) return std::nullopt;
  begin += std::string(kStateBegin).size();
  auto j = nlohmann::json::parse(text.substr(begin, end - begin), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

}  // namespace specact
