// metrics.listen parsing (no wildcard unless allowed) and the textfile writer
// (atomic replace, mode, no symlink followed).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "observe/listen_address.h"
#include "observe/textfile_writer.h"

namespace specact::observe {
namespace {

namespace fs = std::filesystem;

std::string parse_error(const std::string& text, bool allow_wildcard = false) {
  try {
    parse_listen_address(text, allow_wildcard);
  } catch (const ListenAddressError& e) {
    return e.what();
  }
  return "";
}

TEST(ListenAddress, NumericAddressesWithPort) {
  ListenAddress a = parse_listen_address("127.0.0.1:9477", false);
  EXPECT_EQ(a.address.to_string(), "127.0.0.1");
  EXPECT_EQ(a.port, 9477);
  EXPECT_EQ(a.to_string(), "127.0.0.1:9477");
  ListenAddress b = parse_listen_address("[::1]:9100", false);
  EXPECT_TRUE(b.address.is_v6());
  EXPECT_EQ(b.to_string(), "[::1]:9100");
  EXPECT_EQ(parse_listen_address("10.1.2.3:1", false).port, 1);
}

TEST(ListenAddress, MistakesAreNamed) {
  EXPECT_NE(parse_error("127.0.0.1").find("has no port"), std::string::npos);
  EXPECT_NE(parse_error("localhost:9477").find("not a numeric IP address"), std::string::npos);
  EXPECT_NE(parse_error("127.0.0.1:0").find("1..65535"), std::string::npos);
  EXPECT_NE(parse_error("127.0.0.1:65536").find("1..65535"), std::string::npos);
  EXPECT_NE(parse_error("127.0.0.1:94x").find("1..65535"), std::string::npos);
  EXPECT_NE(parse_error("::1:9477").find("needs brackets"), std::string::npos);
  EXPECT_NE(parse_error("[::1]9477").find("[IPv6]:port"), std::string::npos);
  EXPECT_NE(parse_error(":9477").find("has no address"), std::string::npos);
}

TEST(ListenAddress, WildcardOnlyWhenAllowed) {
  for (const char* any : {"0.0.0.0:9477", "[::]:9477", "[::ffff:0.0.0.0]:9477"}) {
    const std::string err = parse_error(any);
    EXPECT_NE(err.find("every interface"), std::string::npos) << any << ": " << err;
    EXPECT_NE(err.find("metrics.allow_wildcard"), std::string::npos) << err;
    EXPECT_EQ(parse_error(any, true), "") << any;
  }
}

TEST(TextfilePath, Checked) {
  EXPECT_EQ(check_textfile_path("/var/lib/prometheus/node-exporter/specact.prom"), "");
  EXPECT_NE(check_textfile_path("specact.prom").find("absolute"), std::string::npos);
  EXPECT_NE(check_textfile_path("/var/lib/x/specact.txt").find(".prom"), std::string::npos);
  EXPECT_NE(check_textfile_path("/var/lib/x/").find("directory"), std::string::npos);
  EXPECT_NE(check_textfile_path("/var/lib/../x/a.prom").find(".."), std::string::npos);
  EXPECT_NE(check_textfile_path("/var/lib/x/.a.prom").find("hidden"), std::string::npos);
  EXPECT_NE(check_textfile_path("/var/lib/x/.prom").find(".prom"), std::string::npos);
}

class Textfile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/specact-textfile-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string dir_;
};

TEST_F(Textfile, ReplacesAtomicallyReadableByOthersAndLeavesNoTemp) {
  const std::string path = dir_ + "/specact.prom";
  TextfileWriter w(path);
  const mode_t old_umask = umask(0077);  // the service's UMask
  EXPECT_EQ(w.write("a 1\n"), "");
  EXPECT_EQ(w.write("a 2\n"), "");
  umask(old_umask);
  EXPECT_EQ(read(path), "a 2\n");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "specact.prom");
  }
  EXPECT_EQ(entries, 1u);
  EXPECT_EQ(w.remove(), "");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(w.remove(), "");  // gone already: fine
}

TEST_F(Textfile, ASymlinkAtTheFileNameIsReplacedNotFollowed) {
  const std::string victim = dir_ + "/victim";
  std::ofstream(victim) << "precious\n";
  const std::string path = dir_ + "/specact.prom";
  fs::create_symlink(victim, path);
  TextfileWriter w(path);
  EXPECT_EQ(w.write("a 1\n"), "");
  EXPECT_EQ(read(victim), "precious\n");
  EXPECT_FALSE(fs::is_symlink(path));
  EXPECT_EQ(read(path), "a 1\n");
}

TEST_F(Textfile, APlantedTempIsNotWrittenThrough) {
  const std::string victim = dir_ + "/victim";
  std::ofstream(victim) << "precious\n";
  const std::string path = dir_ + "/specact.prom";
  fs::create_symlink(victim, dir_ + "/.specact.prom." + std::to_string(getpid()) + ".tmp");
  TextfileWriter w(path);
  EXPECT_EQ(w.write("a 1\n"), "");
  EXPECT_EQ(read(victim), "precious\n");
  EXPECT_EQ(read(path), "a 1\n");
}

TEST_F(Textfile, ASymlinkedDirectoryIsRefused) {
  fs::create_directory(dir_ + "/real");
  fs::create_directory_symlink(dir_ + "/real", dir_ + "/link");
  TextfileWriter w(dir_ + "/link/specact.prom");
  const std::string err = w.write("a 1\n");
  EXPECT_NE(err.find("symbolic link"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dir_ + "/real/specact.prom"));
}

TEST_F(Textfile, AMissingDirectoryIsAnErrorNotCreated) {
  TextfileWriter w(dir_ + "/missing/specact.prom");
  const std::string err = w.write("a 1\n");
  EXPECT_NE(err.find("No such file"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dir_ + "/missing"));
}

TEST_F(Textfile, ADirectoryAtTheFileNameIsAnErrorAndTheTempIsGone) {
  fs::create_directory(dir_ + "/specact.prom");
  TextfileWriter w(dir_ + "/specact.prom");
  const std::string err = w.write("a 1\n");
  EXPECT_NE(err, "");
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u) << "the temp file stayed behind";
}

}  // namespace
}  // namespace specact::observe
