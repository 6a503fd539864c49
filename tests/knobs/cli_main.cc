// knobs_cli: the `specactd knobs` / `specactd restore` entry points alone, so
// the CLI can be tested without linking the whole daemon.
#include <cstdio>
#include <string_view>

#include "cli/commands.h"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  std::string_view cmd = argv[1];
  if (cmd == "knobs") return specact::cmd_knobs(argc - 1, argv + 1);
  if (cmd == "restore" || cmd == "--restore") return specact::cmd_restore(argc - 1, argv + 1);
  std::fprintf(stderr, "knobs_cli: unknown command\n");
  return 2;
}
