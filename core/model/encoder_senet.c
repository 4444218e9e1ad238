/* encoder_senet: the squeeze-and-excitation gate of Cadene's SENet (pretrainedmodels senet.py, SEModule) that the
 * se_resnet/se_resnext bottlenecks apply after bn3; their stem (layer0) is in encoders.c. */
#include "builder.h"

/* SENet's SE module on y (C channels): y * sigmoid(fc2(relu(fc1(avgpool(y))))), fc1/fc2 1x1 convs with bias,
 * reduction 16. */
pn_tensor *pn_se_module(pn_builder *b, pn_tensor *y, const char *prefix) {
    char fc1[PN_NAME_LEN], fc2[PN_NAME_LEN];
    pn_b_name(fc1, "%s.se_module.fc1", prefix);
    pn_b_name(fc2, "%s.se_module.fc2", prefix);
    int c = (int)y->shape[1];
    pn_tensor *s = pn_b_global_avg_pool(b, y, fc1);
    s = pn_b_relu(b, pn_b_conv(b, s, fc1, c / 16, 1, 1, 0, 1, true, PN_INIT_ENCODER_CONV), fc1);
    s = pn_b_sigmoid(b, pn_b_conv(b, s, fc2, c, 1, 1, 0, 1, true, PN_INIT_ENCODER_CONV), fc2);
    return pn_b_gate(b, y, s, prefix);
}
