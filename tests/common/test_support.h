// Guards for tests that need root or BPF. Elsewhere they skip with a reason;
// when SPECACT_REQUIRE_PRIVILEGED=1 (set by .ci/run) a missing privilege is a
// failure, so CI can never pass by skipping them.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace specact::testing {

inline bool privileged_required() {
  const char* v = std::getenv("SPECACT_REQUIRE_PRIVILEGED");
  return v && std::string(v) == "1";
}

inline std::string missing_privilege() {
  if (geteuid() != 0) return "needs root";
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) return "needs kernel BTF";
  return "";
}

}  // namespace specact::testing

#define SPECACT_REQUIRE_ROOT_BPF()                                                                \
  do {                                                                                            \
    std::string why_ = ::specact::testing::missing_privilege();                                   \
    if (!why_.empty()) {                                                                          \
      if (::specact::testing::privileged_required())                                              \
        FAIL() << "privileged test cannot run (" << why_ << ") but SPECACT_REQUIRE_PRIVILEGED=1"; \
      GTEST_SKIP() << why_;                                                                       \
    }                                                                                             \
  } while (0)
