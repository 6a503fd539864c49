#include "knobs/file_codec.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "knobs/kernel_files.h"
#include "knobs/knob_defs.h"

namespace specact::knobs {
namespace {

std::optional<int64_t> parse_int(const std::string& s) {
  if (s.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || !end || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(v);
}

// Decimal digits with an optional minus, at most 20 characters: what an
// int64 prints as.
bool is_int_text(const std::string& s) {
  size_t i = s.size() > 1 && s[0] == '-' ? 1 : 0;
  return i < s.size() && s.size() <= 20 &&
         std::all_of(s.begin() + static_cast<long>(i), s.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// cgroup v2 cpu.max periods are microseconds; values are expressed per 100 ms.
constexpr int64_t kCpuMaxPeriodUs = 100000;

}  // namespace

std::string to_string(Codec c) {
  switch (c) {
    case Codec::Int:
      return "int";
    case Codec::CpuMax:
      return "cpu.max";
    case Codec::BracketEnum:
      return "bracket-enum";
  }
  return "?";
}

std::optional<Codec> codec_from_string(const std::string& s) {
  if (s == "int") return Codec::Int;
  if (s == "cpu.max") return Codec::CpuMax;
  if (s == "bracket-enum") return Codec::BracketEnum;
  return std::nullopt;
}

std::string normalize(Codec c, const std::string& raw) {
  std::string t = trim(raw);
  switch (c) {
    case Codec::Int:
      return t;
    case Codec::CpuMax: {
      std::istringstream in(t);
      std::string quota, period;
      in >> quota >> period;
      return period.empty() ? quota : quota + " " + period;
    }
    case Codec::BracketEnum: {
      // "none voluntary (full) lazy" -> "full"; a plain word stays as it is.
      auto open = t.find('(');
      auto close = t.find(')', open == std::string::npos ? 0 : open);
      if (open != std::string::npos && close != std::string::npos)
        return t.substr(open + 1, close - open - 1);
      return t;
    }
  }
  return t;
}

std::optional<int64_t> decode(const KnobDef& d, const std::string& norm) {
  switch (d.codec) {
    case Codec::Int:
      return parse_int(norm);
    case Codec::CpuMax: {
      std::istringstream in(norm);
      std::string q, p;
      in >> q >> p;
      auto period = p.empty() ? std::optional<int64_t>(kCpuMaxPeriodUs) : parse_int(p);
      if (!period || *period <= 0) return std::nullopt;
      if (q == "max") return d.unlimited;
      auto quota = parse_int(q);
      if (!quota) return std::nullopt;
      return std::min(d.unlimited, *quota * kCpuMaxPeriodUs / *period);
    }
    case Codec::BracketEnum: {
      const auto& v = d.info.domain.enum_values;
      auto it = std::find(v.begin(), v.end(), norm);
      if (it == v.end()) return std::nullopt;
      return it - v.begin();
    }
  }
  return std::nullopt;
}

std::string encode(const KnobDef& d, int64_t v) {
  switch (d.codec) {
    case Codec::Int:
      return std::to_string(v);
    case Codec::CpuMax:
      return (v >= d.unlimited ? std::string("max") : std::to_string(v)) + " " +
             std::to_string(kCpuMaxPeriodUs);
    case Codec::BracketEnum:
      return d.info.domain.enum_values.at(static_cast<size_t>(v));
  }
  return std::to_string(v);
}

bool plausible_value(const KnobDef& d, const std::string& v) {
  switch (d.codec) {
    case Codec::Int:
      return is_int_text(v);
    case Codec::CpuMax: {
      auto sp = v.find(' ');
      std::string quota = v.substr(0, sp);
      return (quota == "max" || is_int_text(quota)) &&
             (sp == std::string::npos || is_int_text(v.substr(sp + 1)));
    }
    case Codec::BracketEnum: {
      const auto& vals = d.info.domain.enum_values;
      return std::find(vals.begin(), vals.end(), v) != vals.end();
    }
  }
  return false;
}

}  // namespace specact::knobs
