/* cli: the small option parser every subcommand uses (--name value, --flag, --help). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"

static void print_help(const char *cmd, const pn_opt *opts, const pn_command_help *help) {
    printf("usage: %s\n\n%s\n\noptions:\n", help->usage, help->description);
    for (const pn_opt *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        printf("  %-28s %s%s\n", left, o->help, o->required ? " (required)" : "");
    }
    printf("  %-28s %s\n", "--help", "show this help and exit");
    (void)cmd;
}

static const pn_opt *find_opt(const pn_opt *opts, const char *name) {
    for (const pn_opt *o = opts; o->name; o++)
        if (strcmp(o->name, name) == 0) return o;
    return NULL;
}

static int usage_error(const char *cmd, const char *msg, const char *arg) {
    fprintf(stderr, "pneumoseg %s: %s%s%s (see --help)\n", cmd, msg, arg ? " " : "", arg ? arg : "");
    return 2;
}

static int set_value(const char *cmd, const pn_opt *o, const char *v) {
    char *end;
    errno = 0;
    switch (o->kind) {
    case PN_OPT_STR: *(const char **)o->dst = v; return 0;
    case PN_OPT_INT: {
        long x = strtol(v, &end, 10);
        if (errno || *end || end == v || x < -2147483647L || x > 2147483647L) {
            fprintf(stderr, "pneumoseg %s: --%s expects an integer, got '%s'\n", cmd, o->name, v);
            return 2;
        }
        *(int *)o->dst = (int)x;
        return 0;
    }
    case PN_OPT_FLOAT: {
        double x = strtod(v, &end);
        if (errno || *end || end == v || !isfinite(x)) {
            fprintf(stderr, "pneumoseg %s: --%s expects a finite number, got '%s'\n", cmd, o->name, v);
            return 2;
        }
        *(double *)o->dst = x;
        return 0;
    }
    default: return 2;
    }
}

static void range_text(const pn_opt_range *r, char *buf, size_t cap) {
    if (r->hi >= 1e300)
        snprintf(buf, cap, "%s %g", r->lo_open ? "above" : "at least", r->lo);
    else
        snprintf(buf, cap, "%s%g, %g%s", r->lo_open ? "(" : "[", r->lo, r->hi, r->hi_open ? ")" : "]");
}

/* The value of option `o` against its range in `ranges` (none: any value). */
static int check_range(const char *cmd, const pn_opt *o, const pn_opt_range *ranges) {
    if (!ranges || (o->kind != PN_OPT_INT && o->kind != PN_OPT_FLOAT)) return 0;
    double v = o->kind == PN_OPT_INT ? (double)*(int *)o->dst : *(double *)o->dst;
    for (const pn_opt_range *r = ranges; r->name; r++) {
        if (strcmp(r->name, o->name) != 0) continue;
        bool below = r->lo_open ? !(v > r->lo) : !(v >= r->lo), above = r->hi_open ? !(v < r->hi) : !(v <= r->hi);
        if (!below && !above) return 0;
        char want[96];
        range_text(r, want, sizeof want);
        fprintf(stderr, "pneumoseg %s: --%s %g is out of range: expected %s (see --help)\n", cmd, o->name, v, want);
        return 2;
    }
    return 0;
}

int pn_cli_parse(int argc, char **argv, const pn_opt *opts, const pn_command_help *help) {
    return pn_cli_parse_ranged(argc, argv, opts, NULL, help);
}

int pn_cli_parse_ranged(int argc, char **argv, const pn_opt *opts, const pn_opt_range *ranges,
                        const pn_command_help *help) {
    const char *cmd = argv[0];
    bool seen[128] = {false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(cmd, opts, help);
            return -1;
        }
        if (strncmp(a, "--", 2) != 0) return usage_error(cmd, "unexpected argument", a);
        const char *name = a + 2;
        char key[64];
        const char *inline_value = strchr(name, '=');
        if (inline_value) {
            snprintf(key, sizeof key, "%.*s", (int)(inline_value - name), name);
            name = key;
            inline_value++;
        }
        const pn_opt *o = find_opt(opts, name);
        if (!o) return usage_error(cmd, "unknown option", a);
        seen[o - opts] = true;
        if (o->kind == PN_OPT_FLAG) {
            if (inline_value) return usage_error(cmd, "flag takes no value:", a);
            *(bool *)o->dst = true;
        } else if (o->kind == PN_OPT_STRS) {
            pn_str_list *list = o->dst;
            list->count = 0;
            if (inline_value) list->items[list->count++] = inline_value;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                if (list->count == PN_MAX_LIST) return usage_error(cmd, "too many values for", a);
                list->items[list->count++] = argv[++i];
            }
            if (list->count == 0) return usage_error(cmd, "missing value for", a);
        } else {
            const char *v = inline_value;
            if (!v) {
                if (i + 1 >= argc) return usage_error(cmd, "missing value for", a);
                v = argv[++i];
            }
            int rc = set_value(cmd, o, v);
            if (!rc) rc = check_range(cmd, o, ranges);
            if (rc) return rc;
        }
    }
    for (const pn_opt *o = opts; o->name; o++)
        if (o->required && !seen[o - opts]) {
            char buf[80];
            snprintf(buf, sizeof buf, "--%s", o->name);
            return usage_error(cmd, "missing required option", buf);
        }
    return 0;
}

int pn_cli_fail(const char *cmd) {
    fprintf(stderr, "pneumoseg %s: %s\n", cmd, pn_last_error());
    return 1;
}

int pn_cli_exit(const char *cmd, pn_status st) {
    if (st == PN_OK) return 0;
    fprintf(stderr, "pneumoseg %s: %s%s\n", cmd, pn_last_error(), st == PN_ERR_USAGE ? " (see --help)" : "");
    return st == PN_ERR_USAGE ? 2 : 1;
}

pn_status pn_as_usage(pn_status st) { return st == PN_OK ? PN_OK : PN_ERR_USAGE; }
