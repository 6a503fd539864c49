#include "common/log.h"

#include <cstdio>
#include <mutex>
#include <string>

namespace specact::log {
namespace {
Level g_min = Level::Info;
bool g_prefix = false;
std::mutex g_mu;

const char* name(Level l) {
  switch (l) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warning:
      return "warning";
    case Level::Error:
      return "error";
  }
  return "?";
}
}  // namespace

void set_min_level(Level l) { g_min = l; }
void set_syslog_prefix(bool on) { g_prefix = on; }

void write(Level l, std::string_view msg) {
  if (static_cast<int>(l) > static_cast<int>(g_min)) return;
  std::string line;
  if (g_prefix)
    line = "<" + std::to_string(static_cast<int>(l)) + ">";
  else
    line = std::string("specactd: ") + name(l) + ": ";
  line.append(msg);
  line.push_back('\n');
  std::lock_guard lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace specact::log
