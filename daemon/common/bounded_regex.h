// Regular expressions that come from a config file or a D-Bus caller are
// compiled by RE2: matching is linear in the input, compiling is bounded in
// memory, and nothing recurses on a pattern's nesting, so no pattern can hang
// or crash the daemon's loop (std::regex backtracks and recurses).
#pragma once

#include <re2/re2.h>

#include <cstddef>
#include <memory>
#include <string>

namespace specact {

// RE2's own default program budget (8 MiB) is meant for general use; these
// patterns are a line or a comm long, and 1 MiB refuses pathological counted
// repetitions without refusing any realistic pattern.
constexpr int64_t kBoundedRegexMaxMem = 1 << 20;

// The compiled pattern, or nullptr with *error saying why (too long, invalid
// RE2 syntax, too large a program). Errors go to *error, never to stderr.
std::shared_ptr<const re2::RE2> compile_bounded_regex(const std::string& pattern, size_t max_length,
                                                      std::string* error);

}  // namespace specact
