#include "common/bounded_regex.h"

namespace specact {

std::shared_ptr<const re2::RE2> compile_bounded_regex(const std::string& pattern, size_t max_length,
                                                      std::string* error) {
  if (pattern.size() > max_length) {
    *error = std::to_string(pattern.size()) + " bytes; the limit is " + std::to_string(max_length);
    return nullptr;
  }
  re2::RE2::Options opts;
  opts.set_log_errors(false);
  opts.set_max_mem(kBoundedRegexMaxMem);
  auto re = std::make_shared<const re2::RE2>(pattern, opts);
  if (!re->ok()) {
    *error = re->error() + " (RE2 syntax: no backreferences or lookaround)";
    return nullptr;
  }
  return re;
}

}  // namespace specact
