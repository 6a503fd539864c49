// `specactctl watch`: follows the daemon live over its signals (WindowMeasured,
// EngineEvent) and survives its restarts; a chart on a terminal, plain lines
// otherwise, JSON lines with --json.
#pragma once

#include "args.h"

namespace specactctl {

// a.rest holds the command's arguments ([--count N]); returns the exit code.
int cmd_watch(const Args& a);

}  // namespace specactctl
