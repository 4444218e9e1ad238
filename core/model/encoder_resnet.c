/* encoder_resnet: the residual blocks of torchvision's ResNet/ResNeXt (v1.5) and Cadene's SENet, with smp's names:
 * BasicBlock (resnet18/34) and Bottleneck (resnet50/101, resnext50_32x4d; with SENet's SE gate, encoder_senet.c,
 * for se_*). */
#include "builder.h"

/* The shortcut: x itself, or downsample.0 (1x1 conv, stride, padding 0) + downsample.1 (BN) when the block
 * changes the size or the channels. In eval the sum goes into the downsample branch, computed last, so a backend
 * can fuse the add into that convolution. */
static pn_tensor *residual_sum(pn_builder *b, pn_tensor *x, pn_tensor *y, const char *prefix, int stride) {
    if (stride == 1 && x->shape[1] == y->shape[1]) return pn_b_relu(b, pn_b_add(b, y, x, prefix), prefix);
    char conv[PN_NAME_LEN], bn[PN_NAME_LEN];
    pn_b_name(conv, "%s.downsample.0", prefix);
    pn_b_name(bn, "%s.downsample.1", prefix);
    pn_tensor *shortcut = pn_b_conv(b, x, conv, (int)y->shape[1], 1, stride, 0, 1, false, PN_INIT_ENCODER_CONV);
    shortcut = pn_b_batchnorm(b, shortcut, bn);
    return pn_b_relu(b, pn_b_add(b, shortcut, y, prefix), prefix);
}

/* relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); the stride is on conv1. */
pn_tensor *pn_block_basic(pn_builder *b, const pn_encoder_desc *e, pn_tensor *x, const char *prefix, int planes,
                          int stride) {
    (void)e;
    char c1[PN_NAME_LEN], b1[PN_NAME_LEN], c2[PN_NAME_LEN], b2[PN_NAME_LEN];
    pn_b_name(c1, "%s.conv1", prefix);
    pn_b_name(b1, "%s.bn1", prefix);
    pn_b_name(c2, "%s.conv2", prefix);
    pn_b_name(b2, "%s.bn2", prefix);
    pn_tensor *y = pn_b_conv_bn_relu(b, x, c1, b1, planes, 3, stride, 1, 1, PN_INIT_ENCODER_CONV);
    y = pn_b_batchnorm(b, pn_b_conv(b, y, c2, planes, 3, 1, 1, 1, false, PN_INIT_ENCODER_CONV), b2);
    return residual_sum(b, x, y, prefix, stride);
}

/* conv1 1x1 -> conv2 3x3 (groups) -> conv3 1x1 (x4), BN after each, ReLU after the first two; then the SE gate for
 * se_* encoders; then the shortcut sum and ReLU. width = floor(planes * width_per_group / 64) * groups. The
 * stride is on conv2 (torchvision v1.5, se_resnext) or on conv1 (se_resnet). */
pn_tensor *pn_block_bottleneck(pn_builder *b, const pn_encoder_desc *e, pn_tensor *x, const char *prefix, int planes,
                               int stride) {
    char c1[PN_NAME_LEN], b1[PN_NAME_LEN], c2[PN_NAME_LEN], b2[PN_NAME_LEN], c3[PN_NAME_LEN], b3[PN_NAME_LEN];
    pn_b_name(c1, "%s.conv1", prefix);
    pn_b_name(b1, "%s.bn1", prefix);
    pn_b_name(c2, "%s.conv2", prefix);
    pn_b_name(b2, "%s.bn2", prefix);
    pn_b_name(c3, "%s.conv3", prefix);
    pn_b_name(b3, "%s.bn3", prefix);
    int width = planes * e->width_per_group / 64 * e->groups;
    int s1 = e->stride_on_1x1 ? stride : 1, s2 = e->stride_on_1x1 ? 1 : stride;
    pn_tensor *y = pn_b_conv_bn_relu(b, x, c1, b1, width, 1, s1, 0, 1, PN_INIT_ENCODER_CONV);
    y = pn_b_conv_bn_relu(b, y, c2, b2, width, 3, s2, 1, e->groups, PN_INIT_ENCODER_CONV);
    y = pn_b_batchnorm(b, pn_b_conv(b, y, c3, planes * 4, 1, 1, 0, 1, false, PN_INIT_ENCODER_CONV), b3);
    if (e->block == PN_BLOCK_SE_BOTTLENECK) y = pn_se_module(b, y, prefix);
    return residual_sum(b, x, y, prefix, stride);
}
