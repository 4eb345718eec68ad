// The table of core functions handed to plugins (lamina_host): registration into the Registry,
// tensor handles, ops, assign, full, add_weight, logging (host_table.cpp). Above dispatch and the
// Registry; plugins.cpp only passes the table on to each plugin's init.
#pragma once

#include <lamina/lamina_plugin.h>

namespace lamina {

const lamina_host* host_table();
// The table's log: level 2 (warnings) and up always, lower levels under LAMINA_VERBOSE.
void host_log(int32_t level, const char* message);

}  // namespace lamina
