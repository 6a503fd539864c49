#include <cstdio>

#include "commands.h"

namespace specact {
int cmd_monitor(int, char**) {
  std::fprintf(stderr, "specactd monitor: not implemented yet\n");
  return 1;
}
}  // namespace specact
