/* triplet_grid: post-processing triplets and their grid as options give them (min areas in 1024-pixels). */
#ifndef PN_TOOLS_TRIPLET_GRID_H
#define PN_TOOLS_TRIPLET_GRID_H

#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"

/* Triplets have one unit wherever a user reads or writes them: min_area in pixels of a 1024 image (the
 * competition's). Only the rule itself counts pixels at the working size: this is the one conversion. */
int64_t pn_area_at_size(int64_t area_1024, int size);

/* The triplet grid of a run: the core grid (min areas at the evaluated size) and the same areas as given. */
typedef struct pn_run_grid {
    pn_triplet_grid g;
    int64_t area_1024[PN_GRID_MAX];
} pn_run_grid;
/* The grid from comma lists (NULL = the default grid {0.6,0.75} x {1000,2000,3000} x {0.3,0.4}): tops and bottoms in
 * (0, 1], areas whole numbers >= 0 of 1024-pixels; anything else is a usage error. */
pn_status pn_tool_grid(const char *tops, const char *areas, const char *bottoms, int size, pn_run_grid *g);
/* The triplet at a flat index of the grid with its min area in 1024-pixels. */
pn_triplet pn_tool_grid_triplet(const pn_run_grid *g, int index);
/* Parses "top,min_area,bottom" (min area in 1024-pixels) with the grid's ranges; a usage error naming `what`. */
pn_status pn_parse_triplet(const char *text, const char *what, pn_triplet *t);
/* "top,min_area,bottom" as the user writes it (the shortest decimals that read back to the same floats). */
const char *pn_triplet_text(const pn_triplet *t, char *buf, size_t cap);
/* Parses "a,b,c" of up to `cap` finite numbers (a usage error naming `what` otherwise). */
pn_status pn_parse_doubles(const char *text, const char *what, double *out, int cap, int *count);

#endif
