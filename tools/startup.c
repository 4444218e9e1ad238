/* startup: where a command's start-up time goes (process start, weights, planning, primitives, first forward),
 * printed by --verbose. */
#define _POSIX_C_SOURCE 200809L
#include "startup.h"

#include "model_load.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backends/options.h"

/* Seconds since this process was exec'd (Linux /proc; 0 when unknown): uptime minus the start time in ticks. */
static double process_age(void) {
    double up = 0;
    unsigned long long start = 0;
    FILE *f = fopen("/proc/uptime", "r");
    if (!f || fscanf(f, "%lf", &up) != 1) up = -1;
    if (f) fclose(f);
    f = fopen("/proc/self/stat", "r");
    char buf[1024];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces: fields count from after it */
    for (int field = 2; p && field < 22; field++) p = strchr(p + 1, ' ');
    if (up < 0 || !p || sscanf(p + 1, "%llu", &start) != 1) return 0;
    double age = up - (double)start / (double)sysconf(_SC_CLK_TCK);
    return age > 0 ? age : 0;
}

/* Resident memory now (VmRSS), in MB; 0 when unknown. */
static double rss_now_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0 && sscanf(line + 6, "%lld", &kib) == 1) break;
    if (f) fclose(f);
    return (double)kib / 1024.0 * 1.048576;
}

void pn_startup_begin(pn_startup *c, bool on) {
    memset(c, 0, sizeof *c);
    c->on = on;
    if (!on) return;
    c->before_main = process_age();
    c->last = pn_now();
}

static void add_lap(pn_startup *c, const char *what, const char *detail) {
    if (!c->on || c->n == PN_STARTUP_MAX) return;
    double now = pn_now();
    c->lap[c->n].what = what;
    c->lap[c->n].seconds = now - c->last;
    c->lap[c->n].rss_mb = rss_now_mb();
    snprintf(c->lap[c->n].detail, sizeof c->lap[c->n].detail, "%s", detail ? detail : "");
    c->n++;
    c->last = now;
}

void pn_startup_lap(pn_startup *c, const char *what) { add_lap(c, what, NULL); }

void pn_startup_plan(pn_startup *c, pn_backend *be) {
    if (!c->on) return;
    pn_backend_stats s;
    pn_backend_stats_get(be, &s);
    char d[160] = "";
    if (s.kept)
        snprintf(d, sizeof d,
                 "preparing nodes (oneDNN primitives) %.3f s, of which timing direct vs Winograd %.3f s "
                 "(%d shapes, %d Winograd)",
                 s.prepare_seconds, s.algo_seconds, s.algo_shapes, s.algo_winograd);
    add_lap(c, "plan", d);
}

void pn_startup_forward(pn_startup *c, pn_backend *be) {
    if (!c->on) return;
    pn_backend_stats s;
    pn_backend_stats_get(be, &s);
    char d[160] = "";
    if (s.kept) snprintf(d, sizeof d, "of which BatchNorm folding and weight reorders %.3f s", s.weight_prep_seconds);
    add_lap(c, "input set + forward + logits", d);
}

pn_status pn_startup_load_model(pn_startup *c, const pn_arch_opts *arch, const char *weights, pn_backend *be,
                                pn_unet **out) {
    PN_TRY(pn_tool_create_model(arch, weights, be, out));
    pn_startup_lap(c, "model create");
    pn_status st = pn_tool_load_into(*out, weights);
    if (st != PN_OK) {
        pn_unet_free(*out);
        *out = NULL;
        return st;
    }
    pn_startup_lap(c, "weights read");
    return PN_OK;
}

void pn_startup_end(const pn_startup *c) {
    if (!c->on) return;
    double total = c->before_main;
    for (int i = 0; i < c->n; i++) total += c->lap[i].seconds;
    pn_log_info("start-up breakdown (wall seconds; resident MB after the step):");
    pn_log_info("  %-30s %7.3f", "process start to main", c->before_main);
    for (int i = 0; i < c->n; i++)
        pn_log_info("  %-30s %7.3f %7.1f MB%s%s", c->lap[i].what, c->lap[i].seconds, c->lap[i].rss_mb,
                    c->lap[i].detail[0] ? "  " : "", c->lap[i].detail);
    pn_log_info("  %-30s %7.3f   peak %.1f MB", "total", total, (double)pn_peak_rss_bytes() / 1e6);
}
