// specactd's subcommands, one file each in daemon/cli/. argv[0] is the
// subcommand name; each parses its own options, maps its errors to an exit
// code (0 success, 1 runtime error, 2 usage or configuration error) and
// returns it.
#pragma once

namespace specact {
int cmd_monitor(int argc, char** argv);  // monitor_command.cc
int cmd_knobs(int argc, char** argv);    // knobs_command.cc
int cmd_restore(int argc, char** argv);  // restore_command.cc
int cmd_run(int argc, char** argv);      // run_command.cc
}  // namespace specact
