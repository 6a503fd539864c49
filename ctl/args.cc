#include "args.h"

#include <cstdint>
#include <map>
#include <string_view>

#include "client.h"
#include "common/modes.h"

namespace specactctl {
namespace {

// "{modes}" stands for the mode names (common/modes.h).
constexpr const char* kHelpTemplate = R"(Usage: specactctl [--json] [--bus ADDRESS] COMMAND [ARGS]

specactctl controls specactd, the speculative scheduler/sysctl tuner, over the
D-Bus system bus (name org.specact.Daemon1). Reading is open to every user;
changing anything needs root or membership in the group "specact".

Read commands (each takes --json for a stable, machine-readable form):
  status                 State, mode, target, last p95 against the baseline,
                         hit rate, agent token use and cost, and the current /
                         confirmed / baseline value of every tuned knob.
  knobs                  The knob catalogue on this machine: family, current
                         value, domain, unit, and why a knob is unavailable.
  history [--since SEQ] [--limit N]
                         Engine events with a sequence number above SEQ
                         (default 0), the newest N (default 50, 0 = all).
  watch [--count N]      Follow the daemon live: p95 per window as a chart,
                         the current and confirmed config, and a scrolling log
                         of who moved which knob and why. Plain lines when
                         stdout is not a terminal; with --json, one JSON
                         object per line. --count N exits after N windows.
                         Survives daemon restarts (waits and reconnects).

Control commands (root or group "specact"):
  start | stop           Start or stop tuning (stop keeps the current config).
  pause | resume         Freeze or resume decisions; measuring continues.
  revert                 Put every knob back to its baseline value.
  mode MODE              {modes}
  target --pid PID[,PID...] | --unit UNIT | --cgroup PATH | --comm REGEX
                         Choose the workload to tune.
  target --clear         Forget the target set here: the config file's
                         target (or none) is in force again.
  pin KNOB=VALUE         Hold KNOB at VALUE (an integer, or a name for enum
                         knobs, e.g. task.policy=batch); agents leave it alone.
  unpin KNOB             Release a pinned knob.
  reset [SETTING...]     Forget what was set here for each SETTING (target,
                         mode, pins, paused; default: all of them): the config
                         file's values are in force again.

Saved settings:
  The target, the mode, the pins and the pause set with the commands above
  are saved in specactd's state directory and kept when it restarts, until
  reset; status shows where each came from (config or saved).

Options:
  --json                 Machine-readable output (see "JSON output" below).
  --bus ADDRESS          Talk to the bus at ADDRESS (e.g. unix:path=/run/x)
                         instead of the system bus; DBUS_SYSTEM_BUS_ADDRESS is
                         honoured too.
  -h, --help             This help.   -V, --version   The version.

JSON output:
  status   the GetStatus object: version, state, mode, target, current,
           confirmed, baseline (knob -> integer), pinned, last_window,
           baseline_p95_us, hit_rate, windows, usage.{speculator,actor}.{calls,
           prompt_tokens,cached_tokens,completion_tokens,errors,rejected,
           cost_usd}, spend.{speculator,actor}.{tokens,usd,tokens_last_hour,
           usd_last_hour,budget,left,limited_by}, uptime_s,
           warnings (array of strings), settings.{target,mode,pins,paused}.
           source ("config", "saved" or "unsaved") and settings.file
  knobs    array of {name, family, unit, description, min, max, scale,
           values?, available, unavailable_reason?, current, default?}
  history  array of events {seq, time, type, ...}
  watch    lines {"kind":"window","index","p95_us","window"} and
           {"kind":"event","seq","type","event"}
  control commands print {"ok":true,"command":...}

Exit status:
  0  success
  1  the daemon (or the bus policy) refused or failed the request
  2  usage error (unknown command, bad argument)
  3  specactd is not running or the bus is unreachable
     (hint: systemctl start specactd)

Examples:
  specactctl status
  sudo specactctl target --unit nginx.service && sudo specactctl start
  specactctl watch
  specactctl watch --json --count 10 | jq .p95_us
  sudo specactctl pin task.slice_us=100
  sudo specactctl reset pins mode
)";

// The mode names joined by " | ", starting at column `first_column` and
// wrapped (before column 80) onto lines indented by `indent`.
std::string mode_list(size_t first_column, size_t indent) {
  constexpr size_t kWidth = 79;
  std::string out;
  size_t column = first_column;
  for (size_t i = 0; i < specact::kModeNames.size(); ++i) {
    std::string word(specact::kModeNames[i]);
    if (i + 1 < specact::kModeNames.size()) word += " |";
    if (i > 0 && column + 1 + word.size() > kWidth) {
      out += "\n" + std::string(indent, ' ');
      column = indent;
    } else if (i > 0) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
  }
  return out;
}

const std::map<std::string, std::string>& command_helps() {
  // The matching part of the full help.
  static const std::map<std::string, std::string> helps = {
      {"status",
       "Usage: specactctl [--json] status\n\nState, mode, target, last p95 against the baseline, "
       "hit rate, agent\ntoken use and cost, and the current / confirmed / baseline value of "
       "every\ntuned knob. --json prints the GetStatus object.\n"},
      {"knobs",
       "Usage: specactctl [--json] knobs\n\nThe knob catalogue on this machine: family, current "
       "value, domain, unit,\nand why a knob is unavailable.\n"},
      {"history",
       "Usage: specactctl [--json] history [--since SEQ] [--limit N]\n\nEngine events with a "
       "sequence number above SEQ (default 0), the newest N\n(default 50, 0 = all).\n"},
      {"watch",
       "Usage: specactctl [--json] watch [--count N]\n\nFollow the daemon live: p95 per window, "
       "the current and confirmed config,\nand who moved which knob and why. --count N exits after "
       "N windows.\n"},
      {"start", "Usage: specactctl start\n\nStart tuning the target (root or group specact).\n"},
      {"stop",
       "Usage: specactctl stop\n\nStop tuning; the current config is kept (root or group "
       "specact).\n"},
      {"pause",
       "Usage: specactctl pause\n\nFreeze decisions; measuring continues (root or group "
       "specact).\n"},
      {"resume", "Usage: specactctl resume\n\nResume decisions after pause.\n"},
      {"revert", "Usage: specactctl revert\n\nPut every knob back to its baseline value.\n"},
      {"mode", "Usage: specactctl mode MODE\n\nMODE: " + mode_list(6, 6) + "\n"},
      {"target",
       "Usage: specactctl target --pid PID[,PID...] | --unit UNIT | --cgroup PATH | --comm "
       "REGEX\n       specactctl target --clear\n\nChoose the workload to tune. Pids are "
       "1..kernel.pid_max; a unit or cgroup that\ndoes not exist yet is followed once it appears; "
       "REGEX is RE2 syntax, at most\n1024 bytes. The target is saved and kept when specactd "
       "restarts (a pid target\nonly while its processes are the same ones). --clear forgets it: "
       "the config\nfile's target (or none) is in force again.\n"},
      {"reset",
       "Usage: specactctl reset [target] [mode] [pins] [paused]\n\nForget what was set over "
       "D-Bus (and saved across restarts) for each setting\nnamed, or for all of them: the "
       "config file's values are in force again.\n"},
      {"pin",
       "Usage: specactctl pin KNOB=VALUE\n\nHold KNOB at VALUE (an integer, or a name for enum "
       "knobs, e.g.\ntask.policy=batch); agents leave it alone.\n"},
      {"unpin", "Usage: specactctl unpin KNOB\n\nRelease a pinned knob.\n"},
  };
  return helps;
}

}  // namespace

std::string help_text() {
  std::string help = kHelpTemplate;
  const std::string_view placeholder = "{modes}";
  const size_t at = help.find(placeholder);
  const size_t column = at - help.rfind('\n', at) - 1;
  return help.replace(at, placeholder.size(), mode_list(column, column));
}

const std::string* command_help(const std::string& command) {
  auto it = command_helps().find(command);
  return it == command_helps().end() ? nullptr : &it->second;
}

// RFC 3629 UTF-8: D-Bus strings must be valid, and JSON output needs it too.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values beyond U+10FFFF.
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

[[noreturn]] void usage_error(const std::string& msg) {
  throw CtlError(kUsage, msg + " (see specactctl --help)");
}

uint64_t parse_uint(const std::string& s, const std::string& what) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
    usage_error(what + " must be a non-negative integer, got '" + s + "'");
  try {
    return std::stoull(s);
  } catch (...) {
    usage_error(what + " is out of range: '" + s + "'");
  }
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (!valid_utf8(s)) usage_error("argument " + std::to_string(i) + " is not valid UTF-8 text");
    if (s == "--json") {
      a.json = true;
    } else if (s == "--bus") {
      if (i + 1 >= argc) usage_error("--bus needs an ADDRESS");
      a.bus = argv[++i];
    } else if (s.rfind("--bus=", 0) == 0) {
      a.bus = s.substr(6);
    } else if (a.command.empty()) {
      if (!s.empty() && s[0] == '-' && s != "-h" && s != "--help" && s != "-V" && s != "--version")
        usage_error("unknown option '" + s + "'");
      a.command = s;
    } else {
      a.rest.push_back(s);
    }
  }
  return a;
}

}  // namespace specactctl
