/* conv_layers: a per-layer GFLOP/s benchmark of any architecture's convolutions on any backend. */
#ifndef PN_BENCH_CONV_LAYERS_H
#define PN_BENCH_CONV_LAYERS_H

#include <stdio.h>

#include "core/backend.h"
#include "core/model/arch.h"

/* Times each distinct convolution of `arch` at input batch x 3 x size x size (the list comes from the model's
 * description: pn_arch_conv_shapes): its forward (and, with `backward`, bwd_data and bwd_weights) `reps` times
 * after `warmup` runs on backend `be`; prints one line per layer (median, min, max ms and GFLOP/s) to `to` and
 * the summed model-wide conv time (median times count). Returns PN_OK or the first error. */
pn_status pn_bench_conv_layers(pn_backend *be, const pn_arch *arch, int size, int batch, int warmup, int reps,
                               int backward, FILE *to);

/* cpu backend only: times direct and Winograd alternately on every dense 3x3 stride-1 layer of `arch` (forward;
 * with `backward` also bwd_data and bwd_weights) and prints both medians, the speed-up and the largest difference
 * between the two outputs relative to the largest output. */
pn_status pn_bench_conv_algos(pn_backend *be, const pn_arch *arch, int size, int batch, int warmup, int reps,
                              int backward, FILE *to);

#endif
