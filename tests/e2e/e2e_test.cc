// Runs tests/e2e/run_e2e.sh: specactd as a real systemd service in a booted
// systemd-nspawn container (see the script for what it checks).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "test_support.h"

TEST(E2e, SystemdServiceInNspawnContainer) {
  SPECACT_REQUIRE_ROOT_BPF();
  std::string cmd = std::string(SPECACT_E2E_SCRIPT) + " " + SPECACT_BUILD_DIR + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
    out.append(buf, n);
    fwrite(buf, 1, n, stdout);  // progress in the ctest log
    fflush(stdout);
  }
  int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_NE(out.find("[e2e"), std::string::npos);
  EXPECT_NE(out.find("PASS"), std::string::npos);
}
