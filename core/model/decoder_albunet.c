/* decoder_albunet: the 1st place's AlbuNet (ternausnets.py, num_filters 32, is_deconv False) on the resnet34
 * encoder: stem conv + BN + ReLU + MaxPool(2, 2), layer1..4, a centre block on MaxPool(2, 2) of layer4, decoder
 * blocks of bilinear x2 (align_corners False) and two conv3x3-with-bias + ReLU (no BatchNorm), dec0 and a 1x1
 * final conv. Names as the winner's state_dict: encoder.*, center.block.{1,2}.conv, dec5..dec1.block.{1,2}.conv,
 * dec0.conv, final. */
#include "builder.h"

/* ConvRelu named prefix.conv: conv3x3 (padding 1, bias) + ReLU. */
static pn_tensor *conv_relu(pn_builder *b, pn_tensor *x, const char *prefix, int cout) {
    char conv[PN_NAME_LEN];
    pn_b_name(conv, "%s.conv", prefix);
    return pn_b_relu(b, pn_b_conv(b, x, conv, cout, 3, 1, 1, 1, true, PN_INIT_DECODER_CONV), conv);
}

/* DecoderBlockV2 (is_deconv False) named name: block.0 bilinear x2, block.1 ConvRelu(in, middle), block.2
 * ConvRelu(middle, out). */
static pn_tensor *decoder_block(pn_builder *b, pn_tensor *x, const char *name, int middle, int out) {
    char p1[PN_NAME_LEN], p2[PN_NAME_LEN];
    pn_b_name(p1, "%s.block.1", name);
    pn_b_name(p2, "%s.block.2", name);
    pn_tensor *y = pn_b_bilinear2x(b, x, name);
    return conv_relu(b, conv_relu(b, y, p1, middle), p2, out);
}

pn_tensor *pn_decoder_albunet(pn_builder *b, const pn_encoder_desc *e, pn_tensor *x) {
    static const int pool2[3] = {2, 2, 0};
    pn_tensor *stem, *conv[6];
    conv[1] = pn_encoder_stem(b, e, x, &stem, pool2);
    for (int s = 0; s < 4; s++) conv[s + 2] = pn_encoder_stage(b, e, conv[s + 1], s);
    pn_tensor *y = decoder_block(b, pn_b_maxpool(b, conv[5], 2, 2, 0, false, "pool"), "center", 512, 256);
    y = decoder_block(b, pn_b_concat(b, y, conv[5], "dec5"), "dec5", 512, 256);
    y = decoder_block(b, pn_b_concat(b, y, conv[4], "dec4"), "dec4", 512, 256);
    y = decoder_block(b, pn_b_concat(b, y, conv[3], "dec3"), "dec3", 256, 64);
    y = decoder_block(b, pn_b_concat(b, y, conv[2], "dec2"), "dec2", 128, 128);
    y = decoder_block(b, y, "dec1", 128, 32);
    y = conv_relu(b, y, "dec0", 32);
    return pn_b_conv(b, y, "final", 1, 1, 1, 0, 1, true, PN_INIT_HEAD_CONV);
}
