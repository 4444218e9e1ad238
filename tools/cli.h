/* cli: the small option parser every subcommand uses (--name value, --flag, --help). */
#ifndef PN_CLI_H
#define PN_CLI_H

#include <stdbool.h>

#include "core/base.h"

typedef enum { PN_OPT_STR, PN_OPT_INT, PN_OPT_FLOAT, PN_OPT_FLAG, PN_OPT_STRS } pn_opt_kind;

/* One option. `dst` points at: const char * (STR), int (INT), double (FLOAT), bool (FLAG),
 * or pn_str_list (STRS: every value up to the next --option). */
typedef struct pn_opt {
    const char *name; /* without the leading "--" */
    pn_opt_kind kind;
    void *dst;
    const char *metavar;
    const char *help;
    bool required;
} pn_opt;

#define PN_MAX_LIST 64
typedef struct pn_str_list {
    int count;
    const char *items[PN_MAX_LIST];
} pn_str_list;

/* The values a numeric option (INT or FLOAT) accepts: lo..hi, either end open; checked when the option is given,
 * a value outside is a usage error (exit 2) naming the option, the value and the range. A table of them ends with
 * an entry whose name is NULL. FLOAT options never accept NaN or Inf. */
typedef struct pn_opt_range {
    const char *name; /* without the leading "--" */
    double lo, hi;
    bool lo_open, hi_open;
} pn_opt_range;
#define PN_AT_LEAST(name, v)                                                                                           \
    { name, v, 1e300, false, false }
#define PN_ABOVE(name, v)                                                                                              \
    { name, v, 1e300, true, false }
#define PN_BETWEEN(name, lo, hi)                                                                                       \
    { name, lo, hi, false, false }
#define PN_SHARE(name)                                                                                                 \
    { name, 0, 1, true, false } /* (0, 1] */

typedef struct pn_command_help {
    const char *usage;       /* "pneumoseg infer --weights W --input X [options]" */
    const char *description; /* one paragraph */
} pn_command_help;

/* Parses argv[1..argc) (argv[0] is the subcommand). Returns 0 to go on, or an exit code:
 * 0 is never returned for --help (it returns -1, meaning "printed help, exit 0"), 2 on a usage error
 * (one line printed to stderr). The option table ends with an entry whose name is NULL. */
int pn_cli_parse(int argc, char **argv, const pn_opt *opts, const pn_command_help *help);
/* The same, and every numeric option given is checked against `ranges` (may be NULL). */
int pn_cli_parse_ranged(int argc, char **argv, const pn_opt *opts, const pn_opt_range *ranges,
                        const pn_command_help *help);

/* Prints the error line "pneumoseg <cmd>: <pn_last_error()>" and returns 1. */
int pn_cli_fail(const char *cmd);
/* The same for status `st`: returns 2 for PN_ERR_USAGE (a bad option value or combination), else 1. */
int pn_cli_exit(const char *cmd, pn_status st);
/* `st` as a usage error (its message kept): for what a library parses out of an option's value. */
pn_status pn_as_usage(pn_status st);

#endif
