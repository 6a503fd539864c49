#include <cstdio>

int main() {
  std::fprintf(stderr, "specactctl: not implemented yet\n");
  return 1;
}
