// The man pages (docs/man/*.scd) and the bash completions (data/bash-completion)
// must list exactly the options and subcommands the binaries' --help shows.
// Option lists are read from --help lines that define something (the usage
// line, and lines indented by exactly two spaces; deeper lines continue a
// description) and from the man pages' definition lines (a line that starts
// with a bold term, "*...").
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/modes.h"

namespace {

using Set = std::set<std::string>;

std::string run(const std::string& cmd, int* exit_status = nullptr) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  if (exit_status) *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

Set long_options(const std::string& line) {
  static const std::regex opt(R"((^|[^A-Za-z0-9-])(--[a-z][a-z0-9-]*))");
  Set s;
  for (std::sregex_iterator it(line.begin(), line.end(), opt), end; it != end; ++it)
    s.insert((*it)[2]);
  return s;
}

bool defines_something(const std::string& line) {
  if (line.rfind("Usage:", 0) == 0) return true;
  return line.size() > 2 && line[0] == ' ' && line[1] == ' ' && line[2] != ' ';
}

// --help: the options on defining lines (all of them, or only those in the
// section whose header starts with `section`).
Set help_options(const std::string& help, const std::string& section = "") {
  Set s;
  std::string current;
  for (const auto& line : lines_of(help)) {
    if (!line.empty() && line[0] != ' ') current = line;
    if (!section.empty() && current.rfind(section, 0) != 0) continue;
    if (defines_something(line)) s.merge(long_options(line));
  }
  return s;
}

// --help: subcommands are the leading lowercase words (joined by "|") of the
// defining lines in sections whose header mentions "ommands".
Set help_commands(const std::string& help) {
  Set s;
  bool in_commands = false;
  static const std::regex word("^[a-z][a-z-]*$");
  for (const auto& line : lines_of(help)) {
    if (!line.empty() && line[0] != ' ') in_commands = line.find("ommands") != std::string::npos;
    if (!in_commands || !defines_something(line) || line.rfind("Usage:", 0) == 0) continue;
    std::istringstream words(line.substr(2, line.find("  ", 2) - 2));
    for (std::string w; words >> w;) {
      if (w == "|") continue;
      if (!std::regex_match(w, word)) break;
      s.insert(w);
    }
  }
  return s;
}

// A man page source split into its "# " sections and "## " subsections.
struct ManPage {
  std::vector<std::string> lines;
  explicit ManPage(const std::string& path) : lines(lines_of(read_file(path))) {}

  // Lines of the section (or subsection) whose heading is exactly `heading`.
  std::vector<std::string> section(const std::string& heading) const {
    std::vector<std::string> out;
    bool in = false;
    const bool sub = heading.rfind("## ", 0) == 0;
    for (const auto& l : lines) {
      if (l == heading) {
        in = true;
        continue;
      }
      if (in && (l.rfind("# ", 0) == 0 || (sub && l.rfind("## ", 0) == 0))) break;
      if (in) out.push_back(l);
    }
    return out;
  }

  static Set definition_options(const std::vector<std::string>& ls) {
    Set s;
    for (const auto& l : ls)
      if (!l.empty() && l[0] == '*') s.merge(long_options(l));
    return s;
  }

  // "*word*" at the start of definition lines.
  static Set definition_words(const std::vector<std::string>& ls) {
    static const std::regex term(R"(^\*([a-z][a-z-]*)\*)");
    Set s;
    std::smatch m;
    for (const auto& l : ls)
      if (std::regex_search(l, m, term)) s.insert(m[1]);
    return s;
  }

  Set subsections(const std::string& heading) const {
    Set s;
    for (const auto& l : section(heading))
      if (l.rfind("## ", 0) == 0) s.insert(l.substr(3));
    // section() stops at the first "## " only for subsections; collect all.
    bool in = false;
    for (const auto& l : lines) {
      if (l == heading)
        in = true;
      else if (in && l.rfind("# ", 0) == 0)
        break;
      else if (in && l.rfind("## ", 0) == 0)
        s.insert(l.substr(3));
    }
    return s;
  }
};

std::string join(const Set& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : " ") + x;
  return out.empty() ? "(none)" : out;
}

// Names in `a` missing from `b`.
Set minus(const Set& a, const Set& b) {
  Set d;
  for (const auto& x : a)
    if (!b.count(x)) d.insert(x);
  return d;
}

#define EXPECT_SAME_SET(help, man, what)                                                   \
  do {                                                                                     \
    EXPECT_TRUE(minus(help, man).empty())                                                  \
        << what << ": in --help but not in the man page: " << join(minus(help, man));      \
    EXPECT_TRUE(minus(man, help).empty())                                                  \
        << what << ": in the man page but not in --help: " << join(minus(man, help));      \
    EXPECT_FALSE(help.empty()) << what << ": nothing parsed from --help (parser broken?)"; \
  } while (0)

const std::string kSpecactd = SPECACT_SPECACTD;
const std::string kSpecactctl = SPECACT_SPECACTCTL;
const std::string kManDir = std::string(SPECACT_SOURCE_DIR) + "/docs/man/";
const std::string kCompletionDir = std::string(SPECACT_SOURCE_DIR) + "/data/bash-completion/";

TEST(HelpVsMan, SpecactdCommands) {
  int rc = -1;
  std::string help = run(kSpecactd + " --help", &rc);
  ASSERT_EQ(rc, 0) << help;
  ManPage man(kManDir + "specactd.8.scd");
  EXPECT_SAME_SET(help_commands(help), man.subsections("# COMMANDS"), "specactd commands");
  EXPECT_SAME_SET(help_options(help, "Options:"),
                  ManPage::definition_options(man.section("# OPTIONS")), "specactd options");
}

TEST(HelpVsMan, SpecactdSubcommandOptions) {
  std::string top = run(kSpecactd + " --help");
  ManPage man(kManDir + "specactd.8.scd");
  Set commands = help_commands(top);
  ASSERT_GE(commands.size(), 4u) << top;
  for (const auto& cmd : commands) {
    int rc = -1;
    std::string help = run(kSpecactd + " " + cmd + " --help", &rc);
    EXPECT_EQ(rc, 0) << cmd << ": " << help;
    EXPECT_SAME_SET(help_options(help), ManPage::definition_options(man.section("## " + cmd)),
                    "specactd " + cmd + " options");
  }
}

TEST(HelpVsMan, SpecactctlCommandsAndOptions) {
  int rc = -1;
  std::string help = run(kSpecactctl + " --help", &rc);
  ASSERT_EQ(rc, 0) << help;
  ManPage man(kManDir + "specactctl.1.scd");
  Set man_commands = ManPage::definition_words(man.section("# READ COMMANDS"));
  man_commands.merge(ManPage::definition_words(man.section("# CONTROL COMMANDS")));
  EXPECT_SAME_SET(help_commands(help), man_commands, "specactctl commands");
  EXPECT_SAME_SET(help_options(help), ManPage::definition_options(man.lines), "specactctl options");
}

TEST(HelpVsMan, ParserSeesDrift) {
  // The comparison must be able to fail: an option only in --help is found.
  std::string help = "Usage: x [--alpha]\n\nOptions:\n  --beta  b\n      --not-this one\n";
  EXPECT_EQ(help_options(help), (Set{"--alpha", "--beta"}));
  std::vector<std::string> man = {"*--alpha*", "\tprose --gamma", "*-b, --beta* _X_"};
  EXPECT_EQ(ManPage::definition_options(man), (Set{"--alpha", "--beta"}));
  EXPECT_EQ(help_commands("Commands:\n  start | stop   x\n  mode MODE  y\n  target --pid\n"),
            (Set{"mode", "start", "stop", "target"}));
}

// The paragraph of a man page (or README line) that starts with `start`: up to
// the next empty line.
std::string paragraph(const std::string& text, const std::string& start) {
  size_t at = text.find(start);
  if (at == std::string::npos) return "";
  size_t end = text.find("\n\n", at);
  return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// The mode names come from one list (common/modes.h): specactctl's help texts
// are built from it, and what people read or type elsewhere must agree.
TEST(ModeNames, OneListEverywhere) {
  Set modes;
  for (auto m : specact::kModeNames) modes.insert(std::string(m));
  ASSERT_EQ(modes.size(), 5u);

  std::string completion = read_file(kCompletionDir + "specactctl");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(completion, m, std::regex("local modes=\"([^\"]*)\"")))
      << "no modes list in the specactctl completion";
  Set completed;
  std::istringstream words(m[1].str());
  for (std::string w; words >> w;) completed.insert(w);
  EXPECT_EQ(completed, modes) << "the completion offers " << join(completed) << ", not "
                              << join(modes);

  const std::string help = run(kSpecactctl + " --help");
  const std::string mode_help = run(kSpecactctl + " mode --help");
  const std::string ctl_man = paragraph(read_file(kManDir + "specactctl.1.scd"), "*mode* _MODE_");
  const std::string config_man =
      paragraph(read_file(kManDir + "specactd.json.5.scd"), "*mode* (string");
  std::string readme =
      paragraph(read_file(std::string(SPECACT_SOURCE_DIR) + "/README.md"), "| `mode` |");
  readme = readme.substr(0, readme.find('\n'));  // the table row
  ASSERT_FALSE(ctl_man.empty() || config_man.empty() || readme.empty());
  for (const auto& mode : modes) {
    EXPECT_NE(help.find(mode), std::string::npos) << "specactctl --help lacks " << mode;
    EXPECT_NE(mode_help.find(mode), std::string::npos) << "specactctl mode --help lacks " << mode;
    EXPECT_NE(ctl_man.find("*" + mode + "*"), std::string::npos) << "specactctl(1) lacks " << mode;
    EXPECT_NE(config_man.find("*" + mode + "*"), std::string::npos)
        << "specactd.json(5) lacks " << mode;
    EXPECT_NE(readme.find("`" + mode + "`"), std::string::npos) << "README lacks " << mode;
  }
}

// Every option and command of --help appears as a word in the completion.
void expect_completion_knows(const std::string& file, const Set& words) {
  std::string text = read_file(kCompletionDir + file);
  ASSERT_FALSE(text.empty()) << "cannot read " << kCompletionDir << file;
  for (const auto& w : words) {
    std::regex re("(^|[^A-Za-z0-9-])" + std::regex_replace(w, std::regex("-"), "\\-") +
                  "($|[^A-Za-z0-9-])");
    EXPECT_TRUE(std::regex_search(text, re)) << file << " does not complete " << w;
  }
}

TEST(Completion, KnowsEveryOptionAndCommand) {
  std::string top = run(kSpecactd + " --help");
  Set d = help_commands(top);
  d.merge(help_options(top, "Options:"));
  for (const auto& cmd : help_commands(top))
    d.merge(help_options(run(kSpecactd + " " + cmd + " --help")));
  expect_completion_knows("specactd", d);
  std::string ctl = run(kSpecactctl + " --help");
  Set c = help_commands(ctl);
  c.merge(help_options(ctl));
  expect_completion_knows("specactctl", c);
}

// Runs the completion function in a real bash with bash-completion loaded.
std::string complete(const std::string& file, const std::string& line) {
  const std::string lib = "/usr/share/bash-completion/bash_completion";
  std::string script = "source " + lib + " >/dev/null 2>&1; source " + kCompletionDir + file +
                       "; COMP_LINE='" + line + "'; COMP_POINT=${#COMP_LINE}; " +
                       "read -ra COMP_WORDS <<<\"$COMP_LINE\"; " +
                       "[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=(''); " +
                       "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _" + file +
                       "; printf '%s\\n' \"${COMPREPLY[@]}\" | sort | tr '\\n' ' '";
  std::string quoted;
  for (char ch : script) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  // No daemon answers here (an unreachable bus): knob names complete to none.
  return run("DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent PATH=" +
             kSpecactctl.substr(0, kSpecactctl.rfind('/')) + ":$PATH bash -c '" + quoted + "'");
}

TEST(Completion, CompletesInBash) {
  ASSERT_EQ(access("/usr/share/bash-completion/bash_completion", R_OK), 0)
      << "bash-completion is not installed (scripts/install-deps.sh installs it)";
  EXPECT_EQ(complete("specactctl", "specactctl mo"), "mode ");
  EXPECT_EQ(complete("specactctl", "specactctl mode spec"), "speculative speculator-only ");
  EXPECT_EQ(complete("specactctl", "specactctl --bus unix:path=/x tar"), "target ");
  EXPECT_EQ(complete("specactctl", "specactctl target --"),
            "--cgroup --clear --comm --json --pid --unit ");
  EXPECT_EQ(complete("specactctl", "specactctl reset p"), "paused pins ");
  EXPECT_EQ(complete("specactctl", "specactctl history --l"), "--limit ");
  EXPECT_EQ(complete("specactd", "specactd re"), "restore ");
  EXPECT_EQ(complete("specactd", "specactd restore --f"), "--force ");
  EXPECT_EQ(complete("specactd", "specactd monitor --window-ms 100 --wi"),
            "--window-ms --windows ");
}

}  // namespace
