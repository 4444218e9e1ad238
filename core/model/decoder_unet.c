/* decoder_unet: smp's Unet decoder (decoder_channels 256, 128, 64, 32, 16; no centre block) and segmentation head,
 * optionally with scSE attention (decoder_attention_type='scse'), over any encoder of the table. */
#include <string.h>

#include "builder.h"

static const int decoder_channels[5] = {256, 128, 64, 32, 16};

/* smp's SCSEModule (reduction 16) named prefix: x * cSE(x) + x * sSE(x), cSE = sigmoid(conv 1x1 (cSE.3) of
 * relu(conv 1x1 (cSE.1) of avgpool(x))), sSE = sigmoid(conv 1x1 to one channel (sSE.0) of x). */
static pn_tensor *scse(pn_builder *b, pn_tensor *x, const char *prefix) {
    char c1[PN_NAME_LEN], c3[PN_NAME_LEN], s0[PN_NAME_LEN];
    pn_b_name(c1, "%s.cSE.1", prefix);
    pn_b_name(c3, "%s.cSE.3", prefix);
    pn_b_name(s0, "%s.sSE.0", prefix);
    int c = (int)x->shape[1];
    pn_tensor *cg = pn_b_global_avg_pool(b, x, c1);
    cg = pn_b_relu(b, pn_b_conv(b, cg, c1, c / 16, 1, 1, 0, 1, true, PN_INIT_DECODER_CONV), c1);
    cg = pn_b_sigmoid(b, pn_b_conv(b, cg, c3, c, 1, 1, 0, 1, true, PN_INIT_DECODER_CONV), c3);
    pn_tensor *sg = pn_b_sigmoid(b, pn_b_conv(b, x, s0, 1, 1, 1, 0, 1, true, PN_INIT_DECODER_CONV), s0);
    return pn_b_add(b, pn_b_gate(b, x, cg, prefix), pn_b_gate(b, x, sg, prefix), prefix);
}

/* Decoder block i: nearest x2, concat the skip, [attention1], conv1 (conv3x3 + BN + ReLU), conv2, [attention2].
 * smp declares attention1 in the last block too (no skip there, so it is never applied): its parameters exist. */
static pn_tensor *decoder_block(pn_builder *b, pn_tensor *x, pn_tensor *skip, int i, bool attention) {
    char c1[PN_NAME_LEN], b1[PN_NAME_LEN], c2[PN_NAME_LEN], b2[PN_NAME_LEN], a1[PN_NAME_LEN], a2[PN_NAME_LEN];
    pn_b_name(c1, "decoder.blocks.%d.conv1.0", i);
    pn_b_name(b1, "decoder.blocks.%d.conv1.1", i);
    pn_b_name(c2, "decoder.blocks.%d.conv2.0", i);
    pn_b_name(b2, "decoder.blocks.%d.conv2.1", i);
    pn_b_name(a1, "decoder.blocks.%d.attention1.attention", i);
    pn_b_name(a2, "decoder.blocks.%d.attention2.attention", i);
    pn_tensor *y = pn_b_upsample_concat(b, x, skip, c1);
    if (attention && skip) y = scse(b, y, a1);
    if (attention && !skip) pn_b_unused_scse(b, (int)y->shape[1], a1);
    y = pn_b_conv_bn_relu(b, y, c1, b1, decoder_channels[i], 3, 1, 1, 1, PN_INIT_DECODER_CONV);
    y = pn_b_conv_bn_relu(b, y, c2, b2, decoder_channels[i], 3, 1, 1, 1, PN_INIT_DECODER_CONV);
    return attention ? scse(b, y, a2) : y;
}

pn_tensor *pn_decoder_unet(pn_builder *b, const pn_encoder_desc *e, const pn_arch *a, pn_tensor *x) {
    pn_tensor *f[5];
    pn_tensor *y = pn_encoder_stem(b, e, x, &f[0], NULL);
    for (int s = 0; s < 4; s++) y = f[s + 1] = pn_encoder_stage(b, e, y, s);
    pn_tensor *skips[5] = {f[3], f[2], f[1], f[0], NULL};
    bool attention = strcmp(a->attention, "scse") == 0;
    for (int i = 0; i < 5; i++) y = decoder_block(b, y, skips[i], i, attention);
    return pn_b_conv(b, y, "segmentation_head.0", 1, 3, 1, 1, 1, true, PN_INIT_HEAD_CONV);
}
