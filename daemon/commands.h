// specactd subcommands. argv[0] is the subcommand name; each returns the exit code.
#pragma once

namespace specact {
int cmd_monitor(int argc, char** argv);  // daemon/metrics/monitor_command.cc
int cmd_knobs(int argc, char** argv);    // daemon/knobs/knobs_command.cc
int cmd_restore(int argc, char** argv);  // daemon/knobs/knobs_command.cc
int cmd_run(int argc, char** argv);      // daemon/runtime/run_command.cc
}  // namespace specact
