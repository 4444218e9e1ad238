/* encoders: the table of encoders (one row each, smp's names) and the walk over stem and stages they share. */
#include <string.h>

#include "builder.h"

/*  name                   stem            block                    blocks per stage  groups width  stride on 1x1 */
static const pn_encoder_desc encoders[] = {
    {"resnet18", PN_STEM_RESNET, PN_BLOCK_BASIC, {2, 2, 2, 2}, 1, 64, false},
    {"resnet34", PN_STEM_RESNET, PN_BLOCK_BASIC, {3, 4, 6, 3}, 1, 64, false},
    {"resnet50", PN_STEM_RESNET, PN_BLOCK_BOTTLENECK, {3, 4, 6, 3}, 1, 64, false},
    {"resnet101", PN_STEM_RESNET, PN_BLOCK_BOTTLENECK, {3, 4, 23, 3}, 1, 64, false},
    {"resnext50_32x4d", PN_STEM_RESNET, PN_BLOCK_BOTTLENECK, {3, 4, 6, 3}, 32, 4, false},
    {"se_resnet50", PN_STEM_SENET, PN_BLOCK_SE_BOTTLENECK, {3, 4, 6, 3}, 1, 64, true},
    {"se_resnext50_32x4d", PN_STEM_SENET, PN_BLOCK_SE_BOTTLENECK, {3, 4, 6, 3}, 32, 4, false},
    {"se_resnext101_32x4d", PN_STEM_SENET, PN_BLOCK_SE_BOTTLENECK, {3, 4, 23, 3}, 32, 4, false},
};
#define N_ENCODERS ((int)(sizeof encoders / sizeof encoders[0]))

const pn_encoder_desc *pn_encoder_find(const char *name) {
    for (int i = 0; i < N_ENCODERS; i++)
        if (strcmp(encoders[i].name, name) == 0) return &encoders[i];
    return NULL;
}

const pn_encoder_desc *pn_encoder_at(int i) { return i >= 0 && i < N_ENCODERS ? &encoders[i] : NULL; }

static int expansion(const pn_encoder_desc *e) { return e->block == PN_BLOCK_BASIC ? 1 : 4; }

void pn_encoder_channels(const pn_encoder_desc *e, int out[5]) {
    out[0] = 64;
    for (int s = 0; s < 4; s++) out[s + 1] = (64 << s) * expansion(e);
}

pn_tensor *pn_encoder_stem(pn_builder *b, const pn_encoder_desc *e, pn_tensor *x, pn_tensor **stem_out,
                           const int *pool) {
    bool senet = e->stem == PN_STEM_SENET;
    const char *conv = senet ? "encoder.layer0.conv1" : "encoder.conv1";
    const char *bn = senet ? "encoder.layer0.bn1" : "encoder.bn1";
    pn_tensor *y = pn_b_conv_bn_relu(b, x, conv, bn, 64, 7, 2, 3, 1, PN_INIT_ENCODER_CONV);
    *stem_out = y;
    if (pool) return pn_b_maxpool(b, y, pool[0], pool[1], pool[2], false, "encoder.pool");
    /* torchvision: MaxPool2d(3, 2, padding=1); Cadene's SENet: MaxPool2d(3, 2, ceil_mode=True) */
    return senet ? pn_b_maxpool(b, y, 3, 2, 0, true, "encoder.layer0.pool")
                 : pn_b_maxpool(b, y, 3, 2, 1, false, "encoder.maxpool");
}

pn_tensor *pn_encoder_stage(pn_builder *b, const pn_encoder_desc *e, pn_tensor *x, int s) {
    int planes = 64 << s;
    for (int i = 0; i < e->blocks[s]; i++) {
        char prefix[PN_NAME_LEN];
        pn_b_name(prefix, "encoder.layer%d.%d", s + 1, i);
        int stride = i == 0 && s > 0 ? 2 : 1;
        x = e->block == PN_BLOCK_BASIC ? pn_block_basic(b, e, x, prefix, planes, stride)
                                       : pn_block_bottleneck(b, e, x, prefix, planes, stride);
    }
    return x;
}
