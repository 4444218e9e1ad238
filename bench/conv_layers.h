/* conv_layers: the convolutions of smp Unet-resnet34 and a per-layer GFLOP/s benchmark on any backend. */
#ifndef PN_BENCH_CONV_LAYERS_H
#define PN_BENCH_CONV_LAYERS_H

#include <stdio.h>

#include "core/backend.h"

/* One distinct convolution shape of the model at input size `size`; `count` = how often it occurs. */
typedef struct pn_conv_layer {
    const char *name;
    int cin, cout, k, stride, pad, h; /* h = input height = width */
    int count;
    int bias;
} pn_conv_layer;

/* Fills `out` (room for 32) with the model's distinct conv shapes at input size `size`; returns the count. */
int pn_unet_r34_conv_layers(int size, pn_conv_layer *out);

/* Times each layer's forward (and, with `backward`, bwd_data and bwd_weights) `reps` times after `warmup`
 * runs on backend `be`; prints one line per layer (median, min, max ms and GFLOP/s) to `to` and the summed
 * model-wide conv time (median times count). Returns PN_OK or the first error. */
pn_status pn_bench_conv_layers(pn_backend *be, int size, int batch, int warmup, int reps, int backward, FILE *to);

/* cpu backend only: times direct and Winograd alternately on every 3x3 stride-1 layer (forward; with `backward`
 * also bwd_data and bwd_weights) and prints both medians, the speed-up and the largest difference between the two
 * outputs relative to the largest output. */
pn_status pn_bench_conv_algos(pn_backend *be, int size, int batch, int warmup, int reps, int backward, FILE *to);

#endif
