// How a file knob's text maps to the integer the engine and the agents see,
// and back. Pure: no file is opened here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace specact::knobs {

struct KnobDef;

// Int: "42". CpuMax: cgroup v2 "QUOTA PERIOD" ("max" = unlimited).
// BracketEnum: debugfs "none voluntary (full) lazy", the chosen word in
// brackets.
enum class Codec { Int, CpuMax, BracketEnum };
std::string to_string(Codec c);
std::optional<Codec> codec_from_string(const std::string& s);

// The file's text in the form journals store and restore writes back:
// whitespace trimmed, "QUOTA PERIOD" single-spaced, the bracketed word alone.
std::string normalize(Codec c, const std::string& raw);
// A normalized text -> the knob's value (cpu.max scaled to a 100 ms period,
// capped at d.unlimited; an enum word -> its index); nullopt when it is not one.
std::optional<int64_t> decode(const KnobDef& d, const std::string& normalized);
// The knob's value -> the text written to the file.
std::string encode(const KnobDef& d, int64_t value);
// Whether `normalized` is text d's codec can produce, so that no journal can
// smuggle other text into a kernel file on restore.
bool plausible_value(const KnobDef& d, const std::string& normalized);

}  // namespace specact::knobs
