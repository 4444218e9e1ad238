/* cpu int8 Winograd F(2x2, 3x3) for 3x3 stride-1 pad-1 convolutions on a u8 nhwc input (AVX-512 with VNNI): each
 * 4x4 input tile transformed in 16-bit integers and brought back to 8 bits at a scale of its own per tile and
 * position, the weights transformed in double and quantized per position and output channel, 16 u8 x s8 matrix
 * products (vpdpbusd) a block of tiles, and the 2x2 outputs transformed back in float with the bias, the ReLU and the
 * output's type (float32, or u8/s8 at the next convolution's input scale). See docs/ARCHITECTURE.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef PN_HAVE_OPENMP
#include <omp.h>
#endif

#include "conv2d.h"

#define P 16  /* transformed positions of a 4x4 tile */
#define R 8   /* tiles (rows) of the matrix-product kernel */
#define CO 64 /* output channels a block's products and output transform take at a time */

struct pn_wino8 {
    int64_t cin, cout;
    int64_t k4;     /* groups of 4 input channels (cin rounded up to 4, over 4) */
    int64_t cin32;  /* a transformed row's bytes: cin rounded up to 32 */
    int8_t *u;      /* [P][cout / 16][k4][16][4]: the transformed weights, quantized */
    int32_t *start; /* [P][cout]: -128 x the sum of u over the input channels, where the products start (the input's
                       offset of 128 taken away) */
    float *deq;     /* [P][cout]: 1 / (input scale x weight scale) */
    float *bias;    /* [cout] */
    struct requant {
        int16_t pre, mult;
        float back;
    } rq[1024]; /* per max |v| of a tile's position: requant_for */
};

bool pn_cpu_wino8_applies(const pn_conv_dims *d) {
    return d->k == 3 && d->stride == 1 && d->pad == 1 && d->groups == 1 && d->cout % 16 == 0 && d->oh == d->h &&
           d->ow == d->w && pn_cpu_wino8_supported();
}

void pn_cpu_wino8_free(pn_wino8 *w) {
    if (!w) return;
    free(w->u);
    free(w->start);
    free(w->deq);
    free(w->bias);
    free(w);
}

/* U = G g G^T of one 3x3 kernel g (row-major, element i at g[i * step]), G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
 */
static void weight_transform(const float *g, int64_t step, double scale, double u[P]) {
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    double t[4][3];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            t[i][j] = G[i][0] * g[j * step] + G[i][1] * g[(3 + j) * step] + G[i][2] * g[(6 + j) * step];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) u[i * 4 + j] = scale * (t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
}

/* One output channel o of weights w (cout x cin x 3 x 3 in input channel blocks of b: element (o, c, i) at
 * cpu_at(b, cin, 9, o, c, i)): its transformed weights (cin x P, scaled by the BN scale), then per position the weight
 * scale, the quantized weights, their sum and the dequantizing factor; false if a transformed weight is not finite. */
static bool make_channel(pn_wino8 *w, const float *wt, int64_t b, double bn, float src_scale, int64_t o, double *ut) {
    int64_t cin = w->cin;
    for (int64_t c = 0; c < cin; c++) weight_transform(wt + cpu_at(b, cin, 9, o, c, 0), b, bn, ut + c * P);
    for (int p = 0; p < P; p++) {
        double amax = 0;
        for (int64_t c = 0; c < cin; c++) {
            double a = fabs(ut[c * P + p]);
            if (!(a <= 1e30)) return false; /* NaN or infinite */
            amax = a > amax ? a : amax;
        }
        double sw = amax > 0 ? 127.0 / amax : 1.0;
        int8_t *up = w->u + ((int64_t)p * (w->cout / 16) + o / 16) * w->k4 * 64 + o % 16 * 4;
        int32_t sum = 0;
        for (int64_t c = 0; c < cin; c++) {
            int q = (int)nearbyint(ut[c * P + p] * sw);
            up[c / 4 * 64 + c % 4] = (int8_t)q;
            sum += q;
        }
        w->start[p * w->cout + o] = -128 * sum;
        w->deq[p * w->cout + o] = (float)(1.0 / ((double)src_scale * sw));
    }
    return true;
}

/* The 8-bit requantization of 16-bit values up to m: v' = round((v << *pre) * *mult / 2^15) (vpmulhrsw) is v * 127 / m
 * to 15 bits (127 at most; a rounding to 128 saturates); returns the factor that takes v' back to v. A tile's
 * transformed values are sums of 4 pixels, so m <= 4 x 255 (the table of pn_wino8 covers 0..1023). */
static float requant_for(int m, int *pre, int *mult) {
    *pre = 0, *mult = 0;
    if (m == 0) return 1.0f; /* all 0 */
    double t = 127.0 / m;
    while ((double)(1 << *pre) <= t) ++*pre;
    *mult = (int)lrint(ldexp(t, 15 - *pre));
    if (*mult > 32767) *mult = 32767;
    return (float)(ldexp(1.0, 15 - *pre) / *mult);
}

pn_status pn_cpu_wino8_make(pn_wino8 **out, const float *weights, int64_t wblk, int64_t cout, int64_t cin,
                            const float *bn_scale, const float *bias, float src_scale) {
    *out = NULL;
    pn_wino8 *w = calloc(1, sizeof *w);
    if (!w) return pn_error(PN_ERR_NOMEM, "out of memory for int8 Winograd weights");
    w->cin = cin, w->cout = cout, w->k4 = (cin + 3) / 4, w->cin32 = (cin + 31) / 32 * 32;
    size_t u_bytes = (size_t)(P * cout * w->k4 * 4); /* a multiple of 64: whole cache lines, so 64-byte aligned */
    w->u = aligned_alloc(64, u_bytes);
    if (w->u) memset(w->u, 0, u_bytes);
    w->start = malloc((size_t)(P * cout) * sizeof *w->start);
    w->deq = malloc((size_t)(P * cout) * sizeof *w->deq);
    w->bias = malloc((size_t)cout * sizeof *w->bias);
    bool ok = w->u && w->start && w->deq && w->bias;
    int64_t bad = 0, nomem = 0;
#pragma omp parallel if (ok) reduction(+ : bad, nomem)
    {
        double *t = ok ? malloc((size_t)(cin * P) * sizeof *t) : NULL;
        nomem += ok && !t;
#pragma omp for schedule(static)
        for (int64_t o = 0; o < cout; o++)
            bad += t && !make_channel(w, weights, wblk, bn_scale ? bn_scale[o] : 1.0, src_scale, o, t);
        free(t);
    }
    if (!ok || nomem || bad) {
        pn_cpu_wino8_free(w);
        return bad ? pn_error(PN_ERR_NUMERIC, "int8 Winograd: a weight or BatchNorm scale is NaN or infinite")
                   : pn_error(PN_ERR_NOMEM, "out of memory for int8 Winograd weights");
    }
    for (int64_t o = 0; o < cout; o++) w->bias[o] = bias ? bias[o] : 0.0f;
    for (int m = 0; m < 1024; m++) {
        int pre, mult;
        w->rq[m].back = requant_for(m, &pre, &mult);
        w->rq[m].pre = (int16_t)pre, w->rq[m].mult = (int16_t)mult;
    }
    *out = w;
    return PN_OK;
}

/* How a run reads and writes: the u8 nhwc input, the nhwc output (float32, u8 or s8 times out_mul), the tiles. */
typedef struct wino8_io {
    const uint8_t *x;
    void *y;
    int64_t n, h, w, th, tw, tiles;
    int out_type; /* PN_WINO8_F32, PN_WINO8_U8, PN_WINO8_S8 */
    float out_mul;
    bool relu;
} wino8_io;

/* Tiles a thread takes at a time: its transformed rows (P x tiles x cin32 bytes) in about 256 KiB, a multiple of R,
 * and no more than an even share of all tiles. */
static int64_t block_tiles(int64_t cin32, int64_t tiles, int threads) {
    int64_t tb = 262144 / (P * cin32) / R * R;
    tb = tb < R ? R : tb > 96 ? 96 : tb;
    int64_t share = (tiles + threads - 1) / threads;
    share = (share + R - 1) / R * R;
    return share < tb ? share : tb;
}

static size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }

/* A thread's scratch: 16-bit transformed tile, 8-bit transformed rows, the rows' factors, the products. */
static size_t thread_bytes(int64_t cin32, int64_t tb) {
    return align64((size_t)(P * cin32) * 2) + align64((size_t)(P * tb * cin32)) + align64((size_t)(tb * P) * 4) +
           align64((size_t)(P * tb * CO) * 4);
}

size_t pn_cpu_wino8_scratch_bytes(int64_t cin, int64_t n, int64_t h, int64_t wd, int threads) {
    int64_t tiles = n * ((h + 1) / 2) * ((wd + 1) / 2), cin32 = (cin + 31) / 32 * 32;
    return (size_t)threads * thread_bytes(cin32, block_tiles(cin32, tiles, threads)) + 64;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define WINO8_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

bool pn_cpu_wino8_supported(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

/* The largest of 32 non-negative 16-bit lanes. */
WINO8_TARGET static int lanes_max16(__m512i v) {
    __m256i a = _mm256_max_epi16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i b = _mm_max_epi16(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    b = _mm_max_epi16(b, _mm_srli_si128(b, 8));
    b = _mm_max_epi16(b, _mm_srli_si128(b, 4));
    b = _mm_max_epi16(b, _mm_srli_si128(b, 2));
    return _mm_extract_epi16(b, 0);
}

/* One tile: the 4x4 input pixels from (y0, x0) of image `img` (outside the image: 0), transformed (B^T d B) in 16
 * bits into tmp, then per position brought to 8 bits at a scale of its own (requant_for) plus 128 (vq: the tile's row
 * of each position's block, `pstride` apart); f[p] takes the 8 bits back to the 16. */
WINO8_TARGET static void tile_in(const pn_wino8 *w, const wino8_io *io, int64_t img, int64_t y0, int64_t x0,
                                 int16_t *tmp, uint8_t *vq, int64_t pstride, float *f) {
    int64_t cin = w->cin, cin32 = w->cin32;
    const uint8_t *px[16];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            int64_t y = y0 + a, x = x0 + b;
            bool in = y >= 0 && y < io->h && x >= 0 && x < io->w;
            px[a * 4 + b] = in ? io->x + ((img * io->h + y) * io->w + x) * cin : NULL;
        }
    __m512i mx[P];
    for (int p = 0; p < P; p++) mx[p] = _mm512_setzero_si512();
    for (int64_t c0 = 0; c0 < cin32; c0 += 32) {
        __mmask32 mask = c0 + 32 <= cin ? ~(__mmask32)0 : (((__mmask32)1 << (cin - c0)) - 1);
        __m512i d[16], t[16];
        for (int i = 0; i < 16; i++)
            d[i] = px[i] ? _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(mask, px[i] + c0)) : _mm512_setzero_si512();
        for (int b = 0; b < 4; b++) { /* along y: rows (d0 - d2, d1 + d2, d2 - d1, d1 - d3) */
            t[0 + b] = _mm512_sub_epi16(d[0 + b], d[8 + b]);
            t[4 + b] = _mm512_add_epi16(d[4 + b], d[8 + b]);
            t[8 + b] = _mm512_sub_epi16(d[8 + b], d[4 + b]);
            t[12 + b] = _mm512_sub_epi16(d[4 + b], d[12 + b]);
        }
        for (int a = 0; a < 4; a++) { /* along x, the same */
            __m512i *r = t + 4 * a, v[4];
            v[0] = _mm512_sub_epi16(r[0], r[2]);
            v[1] = _mm512_add_epi16(r[1], r[2]);
            v[2] = _mm512_sub_epi16(r[2], r[1]);
            v[3] = _mm512_sub_epi16(r[1], r[3]);
            for (int b = 0; b < 4; b++) {
                _mm512_store_si512(tmp + (4 * a + b) * cin32 + c0, v[b]);
                mx[4 * a + b] = _mm512_max_epi16(mx[4 * a + b], _mm512_abs_epi16(v[b]));
            }
        }
    }
    const __m256i offset = _mm256_set1_epi8((char)0x80);
    for (int p = 0; p < P; p++) {
        int m = lanes_max16(mx[p]);
        const struct requant *q = &w->rq[m < 1024 ? m : 1023];
        f[p] = q->back;
        __m128i count = _mm_cvtsi32_si128(q->pre);
        __m512i by = _mm512_set1_epi16(q->mult);
        for (int64_t c0 = 0; c0 < cin32; c0 += 32) {
            __m512i v = _mm512_mulhrs_epi16(_mm512_sll_epi16(_mm512_load_si512(tmp + p * cin32 + c0), count), by);
            __m256i s8 = _mm512_cvtsepi16_epi8(v);
            _mm256_storeu_si256((__m256i *)(vq + p * pstride + c0), _mm256_xor_si256(s8, offset));
        }
    }
}

/* c (R = 8 rows of ldc int32, 16 or 32 columns) = start (a row of those columns) + a (8 rows of lda bytes, u8) x b (k4
 * groups of 16 x 4 s8; a second block of 16 columns `bs` bytes on). One named accumulator per row and block keeps them
 * all in registers. */
#define ROW_BYTES(r) _mm512_set1_epi32(load4(a + (r)*lda + 4 * k))
#define DP1(r) c##r##0 = _mm512_dpbusd_epi32(c##r##0, x, w0)
#define DP2(r) DP1(r), c##r##1 = _mm512_dpbusd_epi32(c##r##1, x, w1)
#define EACH_ROW(DP)                                                                                                   \
    x = ROW_BYTES(0), DP(0);                                                                                           \
    x = ROW_BYTES(1), DP(1);                                                                                           \
    x = ROW_BYTES(2), DP(2);                                                                                           \
    x = ROW_BYTES(3), DP(3);                                                                                           \
    x = ROW_BYTES(4), DP(4);                                                                                           \
    x = ROW_BYTES(5), DP(5);                                                                                           \
    x = ROW_BYTES(6), DP(6);                                                                                           \
    x = ROW_BYTES(7), DP(7)

static inline int32_t load4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

WINO8_TARGET static void gemm_r8x32(const int32_t *start, const uint8_t *a, int64_t lda, const int8_t *b, int64_t bs,
                                    int64_t k4, int32_t *c, int64_t ldc) {
    __m512i c00 = _mm512_loadu_si512(start), c01 = _mm512_loadu_si512(start + 16);
    __m512i c10 = c00, c11 = c01, c20 = c00, c21 = c01, c30 = c00, c31 = c01;
    __m512i c40 = c00, c41 = c01, c50 = c00, c51 = c01, c60 = c00, c61 = c01, c70 = c00, c71 = c01;
    for (int64_t k = 0; k < k4; k++) {
        __m512i w0 = _mm512_loadu_si512(b + k * 64), w1 = _mm512_loadu_si512(b + bs + k * 64), x;
        EACH_ROW(DP2);
    }
    __m512i out[16] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71};
    for (int r = 0; r < R; r++) {
        _mm512_storeu_si512(c + r * ldc, out[2 * r]);
        _mm512_storeu_si512(c + r * ldc + 16, out[2 * r + 1]);
    }
}

WINO8_TARGET static void gemm_r8x16(const int32_t *start, const uint8_t *a, int64_t lda, const int8_t *b, int64_t bs,
                                    int64_t k4, int32_t *c, int64_t ldc) {
    (void)bs;
    __m512i c00 = _mm512_loadu_si512(start), c10 = c00, c20 = c00, c30 = c00, c40 = c00, c50 = c00, c60 = c00,
            c70 = c00;
    for (int64_t k = 0; k < k4; k++) {
        __m512i w0 = _mm512_loadu_si512(b + k * 64), x;
        EACH_ROW(DP1);
    }
    __m512i out[8] = {c00, c10, c20, c30, c40, c50, c60, c70};
    for (int r = 0; r < R; r++) _mm512_storeu_si512(c + r * ldc, out[r]);
}

/* One output vector (16 channels from co of pixel pix): ReLU, then float32 or 8 bits at out_mul. */
WINO8_TARGET static void store16(const wino8_io *io, int64_t cout, int64_t pix, int64_t co, __m512 v) {
    if (io->relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
    int64_t at = pix * cout + co;
    if (io->out_type == PN_WINO8_F32) {
        _mm512_storeu_ps((float *)io->y + at, v);
        return;
    }
    __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(v, _mm512_set1_ps(io->out_mul))); /* nearest, ties to even */
    __m128i b = io->out_type == PN_WINO8_U8 ? _mm512_cvtusepi32_epi8(_mm512_max_epi32(q, _mm512_setzero_si512()))
                                            : _mm512_cvtsepi32_epi8(q);
    _mm_storeu_si128((__m128i *)((uint8_t *)io->y + at), b);
}

/* One tile's outputs for channels [co0, co0 + nco): the products (acc, positions pstride apart) dequantized, A^T m A
 * with A^T = [1 1 1 0; 0 1 -1 -1], the bias, stored at the 2x2 pixels from (oy, ox) inside the image. Named values,
 * not arrays, keep the 16 positions in registers. */
#define DEQ(p)                                                                                                         \
    _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(acc + (p)*pstride + j)),                                       \
                  _mm512_mul_ps(_mm512_loadu_ps(w->deq + (p)*cout + co), _mm512_set1_ps(f[p])))
WINO8_TARGET static void tile_out(const pn_wino8 *w, const wino8_io *io, const int32_t *acc, int64_t pstride,
                                  const float *f, int64_t co0, int64_t nco, int64_t img, int64_t oy, int64_t ox) {
    int64_t cout = w->cout;
    for (int64_t j = 0; j < nco; j += 16) {
        int64_t co = co0 + j;
        /* along y: s0 = m0 + m1 + m2, s1 = m1 - m2 - m3 (rows of 4 positions) */
        __m512 s00 = DEQ(0), s01 = DEQ(1), s02 = DEQ(2), s03 = DEQ(3);
        __m512 s10 = DEQ(4), s11 = DEQ(5), s12 = DEQ(6), s13 = DEQ(7);
        s00 = _mm512_add_ps(s00, s10), s01 = _mm512_add_ps(s01, s11), s02 = _mm512_add_ps(s02, s12);
        s03 = _mm512_add_ps(s03, s13);
        __m512 m0 = DEQ(8), m1 = DEQ(9), m2 = DEQ(10), m3 = DEQ(11);
        s00 = _mm512_add_ps(s00, m0), s01 = _mm512_add_ps(s01, m1), s02 = _mm512_add_ps(s02, m2);
        s03 = _mm512_add_ps(s03, m3);
        s10 = _mm512_sub_ps(s10, m0), s11 = _mm512_sub_ps(s11, m1), s12 = _mm512_sub_ps(s12, m2);
        s13 = _mm512_sub_ps(s13, m3);
        s10 = _mm512_sub_ps(s10, DEQ(12)), s11 = _mm512_sub_ps(s11, DEQ(13)), s12 = _mm512_sub_ps(s12, DEQ(14));
        s13 = _mm512_sub_ps(s13, DEQ(15));
        /* along x, the same */
        __m512 bias = _mm512_loadu_ps(w->bias + co);
        __m512 y00 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s00, s01), s02), bias);
        __m512 y01 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s01, s02), s03), bias);
        __m512 y10 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s10, s11), s12), bias);
        __m512 y11 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s11, s12), s13), bias);
        int64_t pix = (img * io->h + oy) * io->w + ox;
        bool right = ox + 1 < io->w, below = oy + 1 < io->h;
        store16(io, cout, pix, co, y00);
        if (right) store16(io, cout, pix + 1, co, y01);
        if (below) store16(io, cout, pix + io->w, co, y10);
        if (right && below) store16(io, cout, pix + io->w + 1, co, y11);
    }
}

/* Tiles [t0, t0 + cnt) with one thread's scratch. */
WINO8_TARGET static void run_block(const pn_wino8 *w, const wino8_io *io, int64_t t0, int64_t cnt, int64_t tb,
                                   char *scratch) {
    int64_t cin32 = w->cin32, rows = (cnt + R - 1) / R * R, cb_n = w->cout / 16;
    int16_t *tmp = (int16_t *)scratch;
    uint8_t *vq = (uint8_t *)scratch + align64((size_t)(P * cin32) * 2);
    float *f = (float *)(vq + align64((size_t)(P * tb * cin32)));
    int32_t *acc = (int32_t *)((char *)f + align64((size_t)(tb * P) * 4));
    int64_t per_img = io->th * io->tw;
    for (int64_t r = 0; r < cnt; r++) {
        int64_t t = t0 + r, img = t / per_img, ty = t % per_img / io->tw, tx = t % io->tw;
        tile_in(w, io, img, 2 * ty - 1, 2 * tx - 1, tmp, vq + r * cin32, tb * cin32, f + r * P);
    }
    for (int p = 0; p < P; p++) /* rows past the tiles: products never stored, but of defined bytes */
        memset(vq + (p * tb + cnt) * cin32, 128, (size_t)((rows - cnt) * cin32));
    for (int64_t co0 = 0; co0 < w->cout; co0 += CO) {
        int64_t nco = w->cout - co0 < CO ? w->cout - co0 : CO;
        for (int p = 0; p < P; p++)
            for (int64_t j = 0; j < nco; j += 32) {
                int64_t cb = p * cb_n + (co0 + j) / 16;
                const int8_t *b = w->u + cb * w->k4 * 64;
                for (int64_t r = 0; r < rows; r += R) {
                    const uint8_t *a = vq + (p * tb + r) * cin32;
                    int32_t *c = acc + (p * tb + r) * CO + j;
                    const int32_t *start = w->start + p * w->cout + co0 + j;
                    if (j + 32 <= nco)
                        gemm_r8x32(start, a, cin32, b, w->k4 * 64, w->k4, c, CO);
                    else
                        gemm_r8x16(start, a, cin32, b, w->k4 * 64, w->k4, c, CO);
                }
            }
        for (int64_t r = 0; r < cnt; r++) {
            int64_t t = t0 + r, img = t / per_img, ty = t % per_img / io->tw, tx = t % io->tw;
            tile_out(w, io, acc + r * CO, tb * CO, f + r * P, co0, nco, img, 2 * ty, 2 * tx);
        }
    }
}

void pn_cpu_wino8_run(const pn_wino8 *w, const uint8_t *x, int64_t n, int64_t h, int64_t wd, void *y, int out_type,
                      float out_mul, bool relu, int threads, char *scratch) {
    wino8_io io = {.x = x,
                   .y = y,
                   .n = n,
                   .h = h,
                   .w = wd,
                   .th = (h + 1) / 2,
                   .tw = (wd + 1) / 2,
                   .out_type = out_type,
                   .out_mul = out_mul,
                   .relu = relu};
    io.tiles = n * io.th * io.tw;
    int64_t tb = block_tiles(w->cin32, io.tiles, threads), blocks = (io.tiles + tb - 1) / tb;
    size_t per = thread_bytes(w->cin32, tb);
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t b = 0; b < blocks; b++) {
        int me = 0;
#ifdef PN_HAVE_OPENMP
        me = omp_get_thread_num();
#endif
        int64_t t0 = b * tb, cnt = io.tiles - t0 < tb ? io.tiles - t0 : tb;
        run_block(w, &io, t0, cnt, tb, base + (size_t)me * per);
    }
}
#else
bool pn_cpu_wino8_supported(void) { return false; }

void pn_cpu_wino8_run(const pn_wino8 *w, const uint8_t *x, int64_t n, int64_t h, int64_t wd, void *y, int out_type,
                      float out_mul, bool relu, int threads, char *scratch) {
    (void)w, (void)x, (void)n, (void)h, (void)wd, (void)y, (void)out_type, (void)out_mul, (void)relu, (void)threads;
    (void)scratch;
}
#endif
