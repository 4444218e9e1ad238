/* arch: the architectures pneumoseg builds (smp Unet over eight encoders, optionally with scSE attention, and the
 * 1st-place AlbuNet), each described once: the same description yields parameter names and shapes, the graph,
 * multiply-add counts and the list of convolutions. */
#ifndef PN_MODEL_ARCH_H
#define PN_MODEL_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "../base.h"
#include "../safetensors.h"

typedef struct pn_arch {
    char encoder[32];   /* smp encoder name: "resnet34", "se_resnext50_32x4d", ... */
    char decoder[16];   /* "unet" or "albunet" */
    char attention[16]; /* Unet decoder_attention_type: "" or "scse" */
} pn_arch;

/* Validates and fills an architecture: decoder NULL or "" = "unet"; attention NULL or "" = none. An unknown name
 * or a combination that does not exist (AlbuNet is resnet34 only) is PN_ERR_UNSUPPORTED naming what is. */
pn_status pn_arch_make(const char *encoder, const char *decoder, const char *attention, pn_arch *out);
/* "se_resnext50_32x4d unet", "resnet34 unet+scse", "resnet34 albunet". */
const char *pn_arch_text(const pn_arch *a, char *buf, size_t n);
/* The PyTorch constructor of this architecture, e.g. "smp.Unet('resnet34', encoder_weights=None, classes=1)". */
const char *pn_arch_pytorch_call(const pn_arch *a, char *buf, size_t n);

/* Every architecture, for listings: i = 0, 1, ... until false. */
bool pn_arch_at(int i, pn_arch *out);
/* The encoder names, comma separated. */
const char *pn_arch_encoder_names(void);

/* Trainable scalars and forward multiply-adds of the convolutions at input 1 x 3 x h x w. */
pn_status pn_arch_count(const pn_arch *a, int h, int w, int64_t *params, double *macs);

/* One distinct convolution of the model at a given input size, and how often it occurs. */
typedef struct pn_conv_shape {
    char name[64];                               /* the first layer with this shape, e.g. "encoder.layer1.0.conv1" */
    int cin, cout, k, stride, pad, groups, h, w; /* h, w = input size of the convolution */
    int count;
    bool bias;
} pn_conv_shape;
/* Fills out[0..max) with the model's distinct convolution shapes at input 1 x 3 x h x w; *n gets the count.
 * PN_ERR_ARG if more than max. */
pn_status pn_arch_conv_shapes(const pn_arch *a, int h, int w, pn_conv_shape *out, int max, int *n);

/* Whether `name` is one of the buffers PyTorch saves for the BatchNorm `bn_prefix` (running_mean, running_var,
 * num_batches_tracked). */
bool pn_is_bn_buffer(const char *name, const char *bn_prefix);
/* Whether a tensor of a file of this architecture is set aside on loading rather than matched (AlbuNet: the
 * winner's second names of the encoder modules, conv1.*..conv5.*, and the unused encoder.fc). */
bool pn_arch_is_set_aside(const pn_arch *a, const char *name);
/* Input height and width must be multiples of this (32; 64 for AlbuNet, whose centre pools layer4 once more). */
int pn_arch_input_multiple(const pn_arch *a);

/* The architecture whose parameter names and shapes are exactly the file's tensors ("module." prefixes and, for
 * AlbuNet, the winner's aliases and encoder.fc set aside). When none is, PN_ERR_FORMAT naming, for the closest
 * architecture, the first key or shape that does not fit. */
pn_status pn_arch_from_file(const pn_st_file *f, pn_arch *out);

#endif
