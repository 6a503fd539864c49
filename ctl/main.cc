// specactctl: the command-line client of specactd (D-Bus org.specact.Daemon1).
// args.cc parses the command line, commands.cc runs one command, watch.cc
// follows the daemon live.
#include <signal.h>

#include <exception>
#include <iostream>

#include "args.h"
#include "client.h"
#include "commands.h"

using namespace specactctl;

int main(int argc, char** argv) {
  // A reader that goes away (specactctl watch | head) must not kill us mid-write.
  signal(SIGPIPE, SIG_IGN);
  try {
    Args a = parse_args(argc, argv);
    if (a.command == "-h" || a.command == "--help" || a.command == "help") {
      std::cout << help_text();
      return kOk;
    }
    if (a.command == "-V" || a.command == "--version") {
      std::cout << "specactctl " SPECACT_VERSION "\n";
      return kOk;
    }
    return dispatch(a);
  } catch (const CtlError& e) {
    std::cerr << "specactctl: " << e.what() << "\n";
    return e.code();
  } catch (const sdbus::Error& e) {
    CtlError m = map_error(e, "talk to specactd");
    std::cerr << "specactctl: " << m.what() << "\n";
    return m.code();
  } catch (const std::exception& e) {
    std::cerr << "specactctl: " << e.what() << "\n";
    return kDaemonError;
  }
}
