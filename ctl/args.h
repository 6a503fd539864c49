// specactctl's command line: global options, the command and its arguments,
// the help texts, and the checks every command's arguments share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace specactctl {

struct Args {
  bool json = false;
  std::string bus;  // "" = the system bus
  std::string command;
  std::vector<std::string> rest;  // the command's own arguments
};

// Splits argv into global options (anywhere), the command and its arguments.
// Throws CtlError(kUsage) for an unknown option or an argument that is not
// valid UTF-8 (D-Bus strings and JSON output must be).
Args parse_args(int argc, char** argv);

// `specactctl --help`, and `specactctl COMMAND --help` (nullptr for an
// unknown command).
std::string help_text();
const std::string* command_help(const std::string& command);

// Throws CtlError(kUsage) with msg and a pointer to --help.
[[noreturn]] void usage_error(const std::string& msg);
// A non-negative decimal integer, or a usage error naming `what`.
uint64_t parse_uint(const std::string& s, const std::string& what);
// RFC 3629 UTF-8 (no overlong forms, surrogates or values beyond U+10FFFF).
bool valid_utf8(const std::string& s);

}  // namespace specactctl
