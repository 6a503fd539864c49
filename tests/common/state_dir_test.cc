// StateDir: the state directory cannot be turned against root. Each test
// plants what an attacker with write access would plant and checks that a
// victim file outside the directory is untouched.
#include "common/state_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_support.h"

namespace specact {
namespace {

namespace fs = std::filesystem;

struct Tmp {
  std::string path;
  Tmp() {
    std::string t = (fs::temp_directory_path() / "specact-statedir-XXXXXX").string();
    path = mkdtemp(t.data());
  }
  ~Tmp() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& rel) const { return path + "/" + rel; }
};

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void put(const std::string& p, const std::string& text) { std::ofstream(p) << text; }

std::string open_error(const std::string& path, bool create = true) {
  try {
    StateDir::open(path, create);
  } catch (const StateDirError& e) {
    return e.what();
  }
  return "";
}

struct Victim {
  Tmp tmp;
  std::string state = tmp / "state";
  std::string victim = tmp / "victim";
  Victim() {
    mkdir(state.c_str(), 0700);
    put(victim, "precious\n");
  }
};

TEST(StateDir, AppendOpenRefusesASymlinkedHistoryFile) {
  Victim v;
  ASSERT_EQ(symlink(v.victim.c_str(), (v.state + "/history.jsonl").c_str()), 0);
  StateDir d = StateDir::open(v.state);
  int fd = d.open_append("history.jsonl");
  EXPECT_EQ(fd, -ELOOP);
  if (fd >= 0) {
    (void)!write(fd, "x\n", 2);
    close(fd);
  }
  EXPECT_EQ(slurp(v.victim), "precious\n");
  EXPECT_NE(d.error("history.jsonl", -fd).find("symbolic link"), std::string::npos);
}

TEST(StateDir, AppendOpenRefusesAHardLinkAndAFifoWithoutHanging) {
  Victim v;
  ASSERT_EQ(link(v.victim.c_str(), (v.state + "/history.jsonl").c_str()), 0);
  StateDir d = StateDir::open(v.state);
  EXPECT_EQ(d.open_append("history.jsonl"), -EMLINK);
  EXPECT_EQ(d.open_file("history.jsonl", O_RDWR | O_TRUNC), -EMLINK);
  EXPECT_EQ(slurp(v.victim), "precious\n");  // O_TRUNC waits for the checks
  ASSERT_EQ(mkfifo((v.state + "/knobs.lock").c_str(), 0600), 0);
  EXPECT_EQ(d.open_file("knobs.lock", O_RDWR | O_CREAT), -EINVAL);
  std::string text;
  ASSERT_EQ(mkfifo((v.state + "/knobs-journal.json").c_str(), 0600), 0);
  EXPECT_EQ(d.read("knobs-journal.json", &text), EINVAL);  // O_NONBLOCK: no hang on a FIFO
}

TEST(StateDir, AppendOpenCreatesAndAppendsAPlainFile) {
  Victim v;
  StateDir d = StateDir::open(v.state);
  for (const char* line : {"one\n", "two\n"}) {
    int fd = d.open_append("history.jsonl");
    ASSERT_GE(fd, 0) << d.error("history.jsonl", -fd);
    ASSERT_EQ(write(fd, line, 4), 4);
    close(fd);
  }
  EXPECT_EQ(slurp(v.state + "/history.jsonl"), "one\ntwo\n");
  struct stat st {};
  ASSERT_EQ(stat((v.state + "/history.jsonl").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(StateDir, ReplaceGoesAroundAPlantedTempLink) {
  Victim v;
  ASSERT_EQ(symlink(v.victim.c_str(), (v.state + "/j.json.tmp").c_str()), 0);
  StateDir d = StateDir::open(v.state);
  ASSERT_EQ(d.replace("j.json", "{\"a\":1}\n"), 0);
  EXPECT_EQ(slurp(v.victim), "precious\n");
  EXPECT_EQ(slurp(v.state + "/j.json"), "{\"a\":1}\n");
  EXPECT_FALSE(fs::exists(fs::symlink_status(v.state + "/j.json.tmp")));
  // Replacing a symlinked target replaces the link itself, not what it points at.
  ASSERT_EQ(symlink(v.victim.c_str(), (v.state + "/k.json").c_str()), 0);
  ASSERT_EQ(d.replace("k.json", "new\n"), 0);
  EXPECT_EQ(slurp(v.victim), "precious\n");
  EXPECT_EQ(slurp(v.state + "/k.json"), "new\n");
  std::string got;
  EXPECT_EQ(d.read("k.json", &got), 0);
  EXPECT_EQ(got, "new\n");
}

TEST(StateDir, SetAsideNeverOverwrites) {
  Victim v;
  StateDir d = StateDir::open(v.state);
  std::vector<std::string> names;
  for (const char* text : {"first", "second", "third"}) {
    put(v.state + "/j.json", text);
    std::string name;
    ASSERT_EQ(d.set_aside("j.json", "corrupt", &name, 1700000000), 0);  // the same second
    names.push_back(name);
  }
  EXPECT_EQ(names[0], "j.json.corrupt-20231114T221320Z");
  EXPECT_EQ(names[1], "j.json.corrupt-20231114T221320Z-2");
  EXPECT_EQ(names[2], "j.json.corrupt-20231114T221320Z-3");
  EXPECT_EQ(slurp(v.state + "/" + names[0]), "first");
  EXPECT_EQ(slurp(v.state + "/" + names[1]), "second");
  EXPECT_EQ(slurp(v.state + "/" + names[2]), "third");
  EXPECT_FALSE(fs::exists(v.state + "/j.json"));
  // A symlink is set aside as the link itself.
  ASSERT_EQ(symlink(v.victim.c_str(), (v.state + "/j.json").c_str()), 0);
  std::string name;
  ASSERT_EQ(d.set_aside("j.json", "corrupt", &name, 1700000000), 0);
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(v.state + "/" + name)));
  EXPECT_EQ(slurp(v.victim), "precious\n");
  auto all = d.list();
  EXPECT_EQ(all.size(), 4u);
}

TEST(StateDir, LooseModesAndForeignOwnersAreRefusedWithThePath) {
  Victim v;
  ASSERT_EQ(chmod(v.state.c_str(), 0777), 0);
  std::string err = open_error(v.state);
  EXPECT_NE(err.find(v.state), std::string::npos) << err;
  EXPECT_NE(err.find("writable by group or others (mode 0777)"), std::string::npos) << err;
  ASSERT_EQ(chmod(v.state.c_str(), 0770), 0);
  EXPECT_NE(open_error(v.state).find("writable by group or others"), std::string::npos);
  ASSERT_EQ(chmod(v.state.c_str(), 01777), 0);  // sticky is fine for /tmp, not for our own dir
  EXPECT_NE(open_error(v.state).find("writable by group or others"), std::string::npos);
  ASSERT_EQ(chmod(v.state.c_str(), 0755), 0);
  EXPECT_EQ(open_error(v.state), "");  // readable by others is fine
  // A loose parent lets someone swap the state directory: refused too.
  std::string parent = v.tmp / "loose", inner = parent + "/state";
  ASSERT_EQ(mkdir(parent.c_str(), 0700), 0);
  ASSERT_EQ(mkdir(inner.c_str(), 0700), 0);
  ASSERT_EQ(chmod(parent.c_str(), 0777), 0);
  err = open_error(inner);
  EXPECT_NE(err.find("parent directory " + parent), std::string::npos) << err;
  if (geteuid() == 0) {
    ASSERT_EQ(chown(v.state.c_str(), 4242, 4242), 0);
    err = open_error(v.state);
    EXPECT_NE(err.find("owned by uid 4242"), std::string::npos) << err;
    EXPECT_NE(err.find(v.state), std::string::npos) << err;
  }
}

TEST(StateDir, SymlinkedStateDirIsRefused) {
  Victim v;
  std::string link = v.tmp / "link";
  ASSERT_EQ(symlink(v.state.c_str(), link.c_str()), 0);
  std::string err = open_error(link);
  EXPECT_NE(err.find("is a symbolic link"), std::string::npos) << err;
}

TEST(StateDir, CreatedPrivateWithParentsAndExistingModesKept) {
  Victim v;
  std::string deep = v.tmp / "a/b/state";
  mode_t old = umask(0);  // the modes must not depend on the caller's umask
  StateDir d = StateDir::open(deep);
  umask(old);
  struct stat st {};
  ASSERT_EQ(stat(deep.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(stat((v.tmp / "a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  // An existing directory keeps its mode.
  ASSERT_EQ(chmod(v.state.c_str(), 0750), 0);
  StateDir e = StateDir::open(v.state);
  ASSERT_EQ(stat(v.state.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  // Without create, a missing directory is ENOENT, and nothing is created.
  try {
    StateDir::open(v.tmp / "missing", false);
    ADD_FAILURE() << "opened a missing directory";
  } catch (const StateDirError& err) {
    EXPECT_EQ(err.error_code(), ENOENT);
  }
  EXPECT_FALSE(fs::exists(v.tmp / "missing"));
  EXPECT_NE(open_error("relative/dir").find("not an absolute path"), std::string::npos);
  EXPECT_NE(open_error(v.tmp / "a/../a").find("'..'"), std::string::npos);
}

}  // namespace
}  // namespace specact
