/* ref conv2d: direct convolution forward, backward-data and backward-weights, accumulated in double. */
#include <stdlib.h>

#include "ref.h"

typedef struct conv_dims {
    int64_t n, cin, h, w;     /* input */
    int64_t cout, oh, ow;     /* output */
    int64_t k, cin_g, cout_g; /* kernel size, channels per group */
    int stride, pad;
} conv_dims;

static conv_dims dims_of(const pn_tensor *x, const pn_tensor *w, const pn_tensor *y, const pn_conv2d_params *p) {
    conv_dims d = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], y->shape[1],
                   y->shape[2], y->shape[3], w->shape[2], w->shape[1], y->shape[1] / p->groups,
                   p->stride,   p->pad};
    return d;
}

static double *alloc_plane(int64_t count) {
    double *acc = malloc((size_t)count * sizeof *acc);
    return acc;
}

pn_status pn_ref_conv2d_fwd(pn_node *node) {
    const pn_conv2d_params *p = &node->p.conv2d_fwd;
    const pn_tensor *ty = node->out[0], *tx = node->in[0], *tw = node->in[1];
    conv_dims d = dims_of(tx, tw, ty, p);
    float *y = ref_ptr(ty);
    const float *x = ref_ptr(tx), *w = ref_ptr(tw), *b = ref_ptr(node->in[2]);
    double *acc = alloc_plane(d.oh * d.ow);
    if (!acc) return pn_error(PN_ERR_NOMEM, "conv2d_fwd: out of memory");
    for (int64_t n = 0; n < d.n; n++) {
        for (int64_t co = 0; co < d.cout; co++) {
            int64_t g = co / d.cout_g;
            for (int64_t i = 0; i < d.oh * d.ow; i++) acc[i] = b ? b[co] : 0.0;
            for (int64_t cig = 0; cig < d.cin_g; cig++) {
                const float *xp = x + ((n * d.cin + g * d.cin_g + cig) * d.h) * d.w;
                for (int64_t ky = 0; ky < d.k; ky++) {
                    for (int64_t kx = 0; kx < d.k; kx++) {
                        double wv = w[((co * d.cin_g + cig) * d.k + ky) * d.k + kx];
                        for (int64_t oy = 0; oy < d.oh; oy++) {
                            int64_t iy = oy * d.stride - d.pad + ky;
                            if (iy < 0 || iy >= d.h) continue;
                            for (int64_t ox = 0; ox < d.ow; ox++) {
                                int64_t ix = ox * d.stride - d.pad + kx;
                                if (ix < 0 || ix >= d.w) continue;
                                acc[oy * d.ow + ox] += wv * xp[iy * d.w + ix];
                            }
                        }
                    }
                }
            }
            float *yp = y + (n * d.cout + co) * d.oh * d.ow;
            for (int64_t i = 0; i < d.oh * d.ow; i++) yp[i] = (float)acc[i];
        }
    }
    free(acc);
    return PN_OK;
}

pn_status pn_ref_conv2d_bwd_data(pn_node *node) {
    const pn_conv2d_params *p = &node->p.conv2d_bwd_data;
    const pn_tensor *tdx = node->out[0], *tdy = node->in[0], *tw = node->in[1];
    conv_dims d = dims_of(tdx, tw, tdy, p);
    float *dx = ref_ptr(tdx);
    const float *dy = ref_ptr(tdy), *w = ref_ptr(tw);
    double *acc = alloc_plane(d.h * d.w);
    if (!acc) return pn_error(PN_ERR_NOMEM, "conv2d_bwd_data: out of memory");
    for (int64_t n = 0; n < d.n; n++) {
        for (int64_t ci = 0; ci < d.cin; ci++) {
            int64_t g = ci / d.cin_g, cig = ci % d.cin_g;
            for (int64_t i = 0; i < d.h * d.w; i++) acc[i] = 0.0;
            for (int64_t cog = 0; cog < d.cout_g; cog++) {
                int64_t co = g * d.cout_g + cog;
                const float *dyp = dy + (n * d.cout + co) * d.oh * d.ow;
                for (int64_t ky = 0; ky < d.k; ky++) {
                    for (int64_t kx = 0; kx < d.k; kx++) {
                        double wv = w[((co * d.cin_g + cig) * d.k + ky) * d.k + kx];
                        for (int64_t oy = 0; oy < d.oh; oy++) {
                            int64_t iy = oy * d.stride - d.pad + ky;
                            if (iy < 0 || iy >= d.h) continue;
                            for (int64_t ox = 0; ox < d.ow; ox++) {
                                int64_t ix = ox * d.stride - d.pad + kx;
                                if (ix < 0 || ix >= d.w) continue;
                                acc[iy * d.w + ix] += wv * dyp[oy * d.ow + ox];
                            }
                        }
                    }
                }
            }
            float *dxp = dx + (n * d.cin + ci) * d.h * d.w;
            for (int64_t i = 0; i < d.h * d.w; i++) dxp[i] = (float)acc[i];
        }
    }
    free(acc);
    return PN_OK;
}

pn_status pn_ref_conv2d_bwd_weights(pn_node *node) {
    const pn_conv2d_params *p = &node->p.conv2d_bwd_weights;
    const pn_tensor *tdw = node->out[0], *tdy = node->in[0], *tx = node->in[1];
    conv_dims d = dims_of(tx, tdw, tdy, p);
    float *dw = ref_ptr(tdw), *db = ref_ptr(node->out[1]);
    const float *dy = ref_ptr(tdy), *x = ref_ptr(tx);
    for (int64_t co = 0; co < d.cout; co++) {
        int64_t g = co / d.cout_g;
        for (int64_t cig = 0; cig < d.cin_g; cig++) {
            for (int64_t ky = 0; ky < d.k; ky++) {
                for (int64_t kx = 0; kx < d.k; kx++) {
                    double sum = 0.0;
                    for (int64_t n = 0; n < d.n; n++) {
                        const float *xp = x + ((n * d.cin + g * d.cin_g + cig) * d.h) * d.w;
                        const float *dyp = dy + (n * d.cout + co) * d.oh * d.ow;
                        for (int64_t oy = 0; oy < d.oh; oy++) {
                            int64_t iy = oy * d.stride - d.pad + ky;
                            if (iy < 0 || iy >= d.h) continue;
                            for (int64_t ox = 0; ox < d.ow; ox++) {
                                int64_t ix = ox * d.stride - d.pad + kx;
                                if (ix < 0 || ix >= d.w) continue;
                                sum += (double)dyp[oy * d.ow + ox] * xp[iy * d.w + ix];
                            }
                        }
                    }
                    dw[((co * d.cin_g + cig) * d.k + ky) * d.k + kx] += (float)sum;
                }
            }
        }
        if (db) {
            double sum = 0.0;
            for (int64_t n = 0; n < d.n; n++) {
                const float *dyp = dy + (n * d.cout + co) * d.oh * d.ow;
                for (int64_t i = 0; i < d.oh * d.ow; i++) sum += dyp[i];
            }
            db[co] += (float)sum;
        }
    }
    return PN_OK;
}
