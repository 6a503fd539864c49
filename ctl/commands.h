// specactctl's commands: each checks its arguments (usage errors first, before
// the bus is touched), makes its D-Bus calls and prints the result.
#pragma once

#include "args.h"

namespace specactctl {

// Runs a.command; returns the exit code, throws CtlError (or an sdbus::Error
// that main maps).
int dispatch(const Args& a);

}  // namespace specactctl
