// Runs the nspawn end-to-end scripts: tests/e2e/run_e2e.sh (specactd as a real
// systemd service, installed with cmake --install) and, when configured with
// -DSPECACT_E2E_DEB=path/to/specact_*.deb, tests/e2e/run_package_e2e.sh (the
// Debian package installed with apt). See the scripts for what they check.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "test_support.h"

namespace {

void run_script(const std::string& cmd, const std::string& marker) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
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
  EXPECT_NE(out.find(marker), std::string::npos);
  EXPECT_NE(out.find("PASS"), std::string::npos);
}

}  // namespace

TEST(E2e, SystemdServiceInNspawnContainer) {
  SPECACT_REQUIRE_ROOT_BPF();
  run_script(std::string(SPECACT_E2E_SCRIPT) + " " + SPECACT_BUILD_DIR, "[e2e");
}

#ifdef SPECACT_E2E_DEB
TEST(E2e, DebianPackageInNspawnContainer) {
  SPECACT_REQUIRE_ROOT_BPF();
  run_script(
      std::string(SPECACT_E2E_PACKAGE_SCRIPT) + " " + SPECACT_E2E_DEB + " " + SPECACT_E2E_WORKLOAD,
      "[pkg-e2e");
}
#endif
