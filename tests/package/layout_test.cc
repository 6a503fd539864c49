// Who may include whom (docs/ARCHITECTURE.md, "Who may include whom"): every
// #include in daemon/, ctl/ and bpf/ is checked against the table, so a layer
// cannot quietly start depending on one above it, and the engine stays free of
// I/O.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Set = std::set<std::string>;

struct Rule {
  Set modules;                 // "x" allows #include "x/..."
  Set plain;                   // #include "name" that is not a file of the directory itself
  Set not_headers;             // "x/y.h" excluded although x is allowed
  bool standard_only = false;  // <...> only from the C++ library and nlohmann/json
};

// Headers of common that do I/O or need a system library: not for the pure
// layers.
const Set kNotPure = {"common/log.h", "common/state_dir.h", "common/asio.h",
                      "common/bounded_regex.h"};

const std::map<std::string, Rule>& rules() {
  static const std::map<std::string, Rule> r = {
      {"daemon/common", {{"common"}, {"sampler_abi.h"}, {}}},
      {"daemon/target", {{"common", "target"}, {}, {}}},
      {"daemon/metrics",
       {{"common", "target", "metrics"}, {"sampler_abi.h", "sampler.skel.h"}, {}}},
      {"daemon/knobs", {{"common", "target", "knobs"}, {}, {}}},
      {"daemon/agents", {{"common", "agents", "evidence"}, {}, {}}},
      {"daemon/evidence", {{"common", "evidence"}, {}, kNotPure, true}},
      {"daemon/engine", {{"common", "engine", "evidence"}, {}, kNotPure, true}},
      {"daemon/dbus", {{"common", "target", "dbus"}, {"specact_daemon1_adaptor.h"}, {}}},
      {"daemon/observe", {{"common", "observe"}, {}, {}}},
      {"daemon/runtime",
       {{"common", "target", "metrics", "knobs", "evidence", "agents", "engine", "dbus", "observe",
         "runtime"},
        {},
        {}}},
      {"daemon/cli",
       {{"common", "target", "metrics", "knobs", "agents", "dbus", "runtime", "cli"}, {}, {}}},
      {"ctl", {{"common", "target"}, {"specact_daemon1_proxy.h"}, {}}},
      {"bpf", {{}, {"vmlinux.h"}, {}}},
  };
  return r;
}

bool standard_header(const std::string& h) {
  static const std::regex std_lib("^[a-z_]+$");  // <vector>, <cstdint>, <string_view>, ...
  return std::regex_match(h, std_lib) || h.rfind("nlohmann/", 0) == 0;
}

// Why each include of `text` (a file of directory `dir` whose own files are
// `own`) breaks the rules; empty when none does.
std::vector<std::string> violations(const std::string& dir, const Set& own, const std::string& file,
                                    const std::string& text) {
  std::vector<std::string> out;
  const Rule& rule = rules().at(dir);
  static const std::regex quoted(R"re(^\s*#\s*include\s*"([^"]+)")re");
  static const std::regex angled(R"(^\s*#\s*include\s*<([^>]+)>)");
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    std::smatch m;
    const std::string where = file + ":" + std::to_string(n) + ": ";
    if (std::regex_search(line, m, quoted)) {
      const std::string h = m[1];
      const size_t slash = h.find('/');
      if (slash == std::string::npos) {
        if (!own.count(h) && !rule.plain.count(h))
          out.push_back(where + "\"" + h + "\" is neither in " + dir + " nor allowed there");
        continue;
      }
      const std::string module = h.substr(0, slash);
      if (!rule.modules.count(module) || rule.not_headers.count(h))
        out.push_back(where + dir + " may not include \"" + h + "\"");
    } else if (rule.standard_only && std::regex_search(line, m, angled) && !standard_header(m[1])) {
      out.push_back(where + dir + " does no I/O: <" + m[1].str() + "> is not allowed");
    } else if (dir == "bpf" && std::regex_search(line, m, angled) &&
               m[1].str().rfind("bpf/", 0) != 0) {
      out.push_back(where + "BPF programs include only libbpf's <bpf/...> headers, not <" +
                    m[1].str() + ">");
    }
  }
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(Layout, EveryIncludeFollowsTheTable) {
  const fs::path root = SPECACT_SOURCE_DIR;
  size_t files = 0;
  for (const auto& [dir, rule] : rules()) {
    const fs::path d = root / dir;
    ASSERT_TRUE(fs::is_directory(d)) << d;
    Set own;
    for (const auto& e : fs::directory_iterator(d)) own.insert(e.path().filename().string());
    for (const auto& e : fs::recursive_directory_iterator(d)) {
      const std::string ext = e.path().extension().string();
      if (ext != ".h" && ext != ".cc" && ext != ".c" && ext != ".in") continue;
      ++files;
      for (const auto& v :
           violations(dir, own, fs::relative(e.path(), root).string(), read_file(e.path())))
        ADD_FAILURE() << v << " (docs/ARCHITECTURE.md, \"Who may include whom\")";
    }
  }
  EXPECT_GT(files, 50u) << "the source tree was not found";
}

TEST(Layout, EveryDaemonDirectoryIsInTheTable) {
  // A new directory gets its row in docs/ARCHITECTURE.md and here.
  for (const auto& e : fs::directory_iterator(fs::path(SPECACT_SOURCE_DIR) / "daemon")) {
    if (!e.is_directory()) continue;
    const std::string dir = "daemon/" + e.path().filename().string();
    EXPECT_TRUE(rules().count(dir))
        << dir << " has no include rules (docs/ARCHITECTURE.md, \"Who may include whom\")";
  }
}

TEST(Layout, CheckSeesViolations) {
  // The check must be able to fail: an engine that includes the runtime, a
  // POSIX header or the agents (even their interface), an evidence model that
  // reaches into the engine or does I/O, agents that include the engine, and
  // a ctl file reaching into knobs.
  const Set own = {"engine.h"};
  EXPECT_EQ(violations("daemon/engine", own, "e.cc",
                       "#include \"engine/engine.h\"\n#include \"evidence/evidence.h\"\n"
                       "#include \"common/agent_protocol.h\"\n#include <vector>\n"
                       "#include <nlohmann/json.hpp>\n")
                .size(),
            0u);
  EXPECT_EQ(violations("daemon/engine", own, "e.cc",
                       "#include \"runtime/runtime.h\"\n#include <unistd.h>\n"
                       "#include \"agents/agents.h\"\n#include \"common/log.h\"\n"
                       "#include <boost/asio.hpp>\n#include \"other.h\"\n"
                       "#include \"agents/agent.h\"\n")
                .size(),
            7u);
  EXPECT_EQ(violations("daemon/evidence", {"evidence.h"}, "v.cc",
                       "#include \"evidence/evidence.h\"\n#include \"common/window.h\"\n"
                       "#include \"engine/engine.h\"\n#include \"agents/policy.h\"\n"
                       "#include <sys/stat.h>\n#include \"common/log.h\"\n")
                .size(),
            4u);
  EXPECT_EQ(violations("daemon/agents", {"agent.h"}, "a.cc",
                       "#include \"agents/policy/search.h\"\n#include \"evidence/evidence.h\"\n"
                       "#include \"engine/engine.h\"\n#include \"knobs/knob_manager.h\"\n")
                .size(),
            2u);
  EXPECT_EQ(violations("ctl", {"args.h"}, "c.cc", "#include \"knobs/knob_manager.h\"\n").size(),
            1u);
  EXPECT_EQ(violations("daemon/common", {}, "w.cc", "  #  include \"target/target.h\"\n").size(),
            1u);
  EXPECT_EQ(violations("bpf", {"sampler_abi.h"}, "s.bpf.c",
                       "#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\n"
                       "#include \"sampler_abi.h\"\n#include <stdio.h>\n")
                .size(),
            1u);
}

}  // namespace
