#include <cstdio>

#include "commands.h"

namespace specact {
int cmd_run(int, char**) {
  std::fprintf(stderr, "specactd run: not implemented yet\n");
  return 1;
}
}  // namespace specact
