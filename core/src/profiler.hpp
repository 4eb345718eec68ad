// LAMINA_PROFILE=1: time spent per op and backend (and in collectives), printed when the process
// exits. A leaf: depends on nothing else in the core.
#pragma once

#include <string>

namespace lamina {

// Whether LAMINA_PROFILE is set (read once).
bool profiling();
// Adds `seconds` and one call to the entry `name` of the profile printed at exit; nothing when not
// profiling.
void profile_record(const std::string& name, double seconds);

}  // namespace lamina
