// Helpers of the observability tests: programs the tests need (promtool,
// prometheus), and running promtool on exposition text.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "test_support.h"

namespace specact::testing {

inline std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t at = 0;
  while (at <= dirs.size()) {
    size_t colon = dirs.find(':', at);
    if (colon == std::string::npos) colon = dirs.size();
    std::string candidate = dirs.substr(at, colon - at) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    at = colon + 1;
  }
  return "";
}

}  // namespace specact::testing

// Debian's prometheus package (scripts/install-deps.sh) provides both
// programs; without it the test skips, and fails under SPECACT_REQUIRE_PRIVILEGED=1.
#define SPECACT_REQUIRE_PROGRAM(name)                                \
  do {                                                               \
    if (::specact::testing::find_program(name).empty()) {            \
      if (::specact::testing::privileged_required())                 \
        FAIL() << name << " not found (apt install prometheus) but " \
               << "SPECACT_REQUIRE_PRIVILEGED=1";                    \
      GTEST_SKIP() << name << " not found (apt install prometheus)"; \
    }                                                                \
  } while (0)

namespace specact::observe {

struct PromtoolResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// `promtool check metrics` reads the exposition on stdin.
inline PromtoolResult promtool_check_metrics(const std::string& text) {
  char path[] = "/tmp/specact-promtool-XXXXXX";
  int fd = mkstemp(path);
  PromtoolResult r;
  if (fd < 0) return r;
  if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    close(fd);
    unlink(path);
    return r;
  }
  close(fd);
  FILE* p = popen(("promtool check metrics < " + std::string(path) + " 2>&1").c_str(), "r");
  if (p) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  unlink(path);
  return r;
}

}  // namespace specact::observe
