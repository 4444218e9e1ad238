/* commands: the entry points of the pneumoseg subcommands (one per row of commands.def), for main.c and tests. */
#ifndef PN_TOOLS_COMMANDS_H
#define PN_TOOLS_COMMANDS_H

#define CMD(name, fn, summary) int fn(int argc, char **argv);
#include "tools/commands.def"
#undef CMD

#endif
