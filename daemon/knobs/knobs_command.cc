#include <cstdio>

#include "commands.h"

namespace specact {
int cmd_knobs(int, char**) {
  std::fprintf(stderr, "specactd knobs: not implemented yet\n");
  return 1;
}
int cmd_restore(int, char**) {
  std::fprintf(stderr, "specactd restore: not implemented yet\n");
  return 1;
}
}  // namespace specact
