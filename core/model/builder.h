/* builder: the one walk over an architecture that both declares its parameters (names, shapes, initialisation)
 * and builds its graph. Encoders and decoders are written once against these calls: in a declaring walk the
 * tensors carry shapes only and no node is added; in a building walk the same calls add nodes and use the
 * parameters declared in the same order. */
#ifndef PN_MODEL_BUILDER_H
#define PN_MODEL_BUILDER_H

#include <stdbool.h>

#include "../graph.h"
#include "arch.h"

#define PN_NAME_LEN 96

typedef enum pn_init_rule {
    PN_INIT_ENCODER_CONV, /* kaiming-normal, fan_out, relu (torchvision) */
    PN_INIT_DECODER_CONV, /* kaiming-uniform, fan_in, relu (smp's decoder) */
    PN_INIT_HEAD_CONV,    /* xavier-uniform (smp's segmentation head) */
    PN_INIT_ZERO,
    PN_INIT_ONE,
} pn_init_rule;

typedef struct pn_param_decl {
    char name[PN_NAME_LEN]; /* smp state_dict name */
    int ndim;
    int64_t shape[4];
    pn_init_rule rule;
    int64_t offset; /* in floats, into the flat parameter buffers (64-byte aligned) */
} pn_param_decl;

typedef struct pn_bn_decl {
    char prefix[PN_NAME_LEN];
    int64_t channels, offset; /* running_mean at offset, running_var at offset + channels (state buffer) */
    int gamma, beta;          /* indices of its parameters */
} pn_bn_decl;

/* What a declaring walk produces: every parameter and BatchNorm of the model, in walk order. */
typedef struct pn_model_desc {
    pn_arch arch;
    pn_param_decl *params;
    int n_params, cap_params;
    pn_bn_decl *bns;
    int n_bns, cap_bns;
    int64_t n_scalars, n_state; /* sizes of the flat parameter and running-statistics buffers, in floats */
} pn_model_desc;

/* Walks the architecture in declaring mode at input 1 x 3 x h x w (any multiple of 32). */
pn_status pn_model_describe(const pn_arch *a, pn_model_desc *out);
void pn_model_desc_free(pn_model_desc *d);

typedef struct pn_builder pn_builder;

/* The graph views of the parameters and running statistics a building walk uses (indices as in the desc). */
typedef struct pn_builder_views {
    pn_tensor **param;
    pn_tensor **running; /* [2 i] mean, [2 i + 1] var of BatchNorm i */
} pn_builder_views;

/* Builds the forward graph of `d` on g for input x (n, 3, h, w) in train or eval mode; *logits gets the output. */
pn_status pn_model_build(const pn_model_desc *d, pn_graph *g, const pn_builder_views *v, bool train, pn_tensor *x,
                         pn_tensor **logits);

/* ---- the calls encoders and decoders are written with ---- */

bool pn_b_training(const pn_builder *b);
/* conv(x) with a weight (cout, cin / groups, k, k) named name.weight and, with bias, name.bias. */
pn_tensor *pn_b_conv(pn_builder *b, pn_tensor *x, const char *name, int cout, int k, int stride, int pad, int groups,
                     bool bias, pn_init_rule rule);
/* BatchNorm2d named prefix (weight, bias, running_mean, running_var, num_batches_tracked); eps 1e-5, momentum 0.1.
 * In eval it works in place (a backend may fold it into the conv before). */
pn_tensor *pn_b_batchnorm(pn_builder *b, pn_tensor *x, const char *prefix);
/* ReLU in place. Every x given is one no backward node reads (a BN or conv output, a sum). */
pn_tensor *pn_b_relu(pn_builder *b, pn_tensor *x, const char *label);
/* x + y into x's storage (the same rule as relu). */
pn_tensor *pn_b_add(pn_builder *b, pn_tensor *x, pn_tensor *y, const char *label);
/* conv + BN + ReLU; in training the output is recomputed in backward from the conv output. */
pn_tensor *pn_b_conv_bn_relu(pn_builder *b, pn_tensor *x, const char *conv, const char *bn, int cout, int k, int stride,
                             int pad, int groups, pn_init_rule rule);
pn_tensor *pn_b_maxpool(pn_builder *b, pn_tensor *x, int k, int stride, int pad, bool ceil_mode, const char *label);
pn_tensor *pn_b_global_avg_pool(pn_builder *b, pn_tensor *x, const char *label);
pn_tensor *pn_b_sigmoid(pn_builder *b, pn_tensor *x, const char *label);
/* x * s with s (N, C, 1, 1) or (N, 1, H, W): a new tensor (the gate's backward reads x). */
pn_tensor *pn_b_gate(pn_builder *b, pn_tensor *x, pn_tensor *s, const char *label);
/* Nearest x2 upsample of x, then the skip's channels behind it (skip NULL: the upsample alone); in eval written in
 * place into the concatenation when the backend can address the channel slices. */
pn_tensor *pn_b_upsample_concat(pn_builder *b, pn_tensor *x, pn_tensor *skip, const char *label);
/* Bilinear x2 (align_corners=False). */
pn_tensor *pn_b_bilinear2x(pn_builder *b, pn_tensor *x, const char *label);
/* torch.cat([x, y], 1). */
pn_tensor *pn_b_concat(pn_builder *b, pn_tensor *x, pn_tensor *y, const char *label);
/* Declares (and in a building walk, takes) the parameters of an scSE module on `channels` channels that the
 * forward never applies (smp's attention1 of the last decoder block): they exist in the state_dict, no node. */
void pn_b_unused_scse(pn_builder *b, int channels, const char *prefix);
/* Marks t to be recomputed in backward rather than kept (training only; a no-op otherwise). */
pn_tensor *pn_b_recomputed(pn_builder *b, pn_tensor *t);
/* printf into a name buffer of PN_NAME_LEN (names are short by construction: truncation is a bug). */
void pn_b_name(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- encoders and decoders (one table row per encoder, one function per block kind and decoder) ---- */

typedef enum pn_stem_kind { PN_STEM_RESNET, PN_STEM_SENET } pn_stem_kind;
typedef enum pn_block_kind { PN_BLOCK_BASIC, PN_BLOCK_BOTTLENECK, PN_BLOCK_SE_BOTTLENECK } pn_block_kind;

typedef struct pn_encoder_desc {
    const char *name;
    pn_stem_kind stem; /* resnet: encoder.conv1/bn1 + MaxPool(3, 2, 1); senet: encoder.layer0.* + MaxPool(3, 2, ceil) */
    pn_block_kind block; /* basic (expansion 1) or bottleneck (expansion 4), with or without SE */
    int blocks[4];       /* blocks per stage layer1..layer4 */
    int groups;          /* of the 3x3 convolution */
    int width_per_group; /* bottleneck width = floor(planes * width_per_group / 64) * groups */
    bool stride_on_1x1;  /* se_resnet: the stride is on conv1, not conv2 (torchvision v1.5 and se_resnext: conv2) */
} pn_encoder_desc;

/* The row for `name`, or NULL. */
const pn_encoder_desc *pn_encoder_find(const char *name);
const pn_encoder_desc *pn_encoder_at(int i);
/* Channels of the five features f1..f5 (stem at H/2, layer1..4 at H/4..H/32). */
void pn_encoder_channels(const pn_encoder_desc *e, int out[5]);
/* The stem: conv 7x7/2 + BN + ReLU (f1 at H/2, into *stem_out), then its max-pool (or `pool` when not NULL:
 * AlbuNet's MaxPool(2, 2)); returns the pooled tensor. */
pn_tensor *pn_encoder_stem(pn_builder *b, const pn_encoder_desc *e, pn_tensor *x, pn_tensor **stem_out,
                           const int *pool);
/* Stage s (0..3 = layer1..layer4) on x. */
pn_tensor *pn_encoder_stage(pn_builder *b, const pn_encoder_desc *e, pn_tensor *x, int s);
/* The block kinds (encoder_resnet.c, encoder_senet.c). */
pn_tensor *pn_block_basic(pn_builder *b, const pn_encoder_desc *e, pn_tensor *x, const char *prefix, int planes,
                          int stride);
pn_tensor *pn_block_bottleneck(pn_builder *b, const pn_encoder_desc *e, pn_tensor *x, const char *prefix, int planes,
                               int stride);

/* SENet's SE gate on y, named prefix.se_module.fc1/fc2 (encoder_senet.c). */
pn_tensor *pn_se_module(pn_builder *b, pn_tensor *y, const char *prefix);

/* Decoders: from the input tensor to the logits (n, 1, h, w). */
pn_tensor *pn_decoder_unet(pn_builder *b, const pn_encoder_desc *e, const pn_arch *a, pn_tensor *x);
pn_tensor *pn_decoder_albunet(pn_builder *b, const pn_encoder_desc *e, pn_tensor *x);

#endif
