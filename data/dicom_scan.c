/* dicom_scan: the sequence nesting of a DICOM data set, measured with an explicit stack (no recursion). */
#include "dicom_scan.h"

#include <string.h>

#define UNDEFINED 0xffffffffu

static uint16_t rd16(const uint8_t *p, bool big) {
    return big ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}
static uint32_t rd32(const uint8_t *p, bool big) {
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static bool is_vr(const uint8_t *p) { return p[0] >= 'A' && p[0] <= 'Z' && p[1] >= 'A' && p[1] <= 'Z'; }
/* VRs whose explicit form has two reserved bytes and a 4-byte length. */
static bool long_vr(const uint8_t *p) {
    static const char *const vrs[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof vrs / sizeof vrs[0]; i++)
        if (p[0] == vrs[i][0] && p[1] == vrs[i][1]) return true;
    return false;
}

void pn_dicom_scan_meta(const uint8_t *d, size_t n, pn_dicom_meta *out) {
    memset(out, 0, sizeof *out);
    size_t pos = n >= 132 && memcmp(d + 128, "DICM", 4) == 0 ? 132 : 0;
    while (pos + 8 <= n && rd16(d + pos, false) == 0x0002) { /* the meta group: explicit VR little endian */
        uint16_t e = rd16(d + pos + 2, false);
        size_t hdr = 8, len;
        if (is_vr(d + pos + 4) && d[pos + 4] == 'S' && d[pos + 5] == 'Q') break; /* a sequence: the depth scan's */
        if (is_vr(d + pos + 4) && long_vr(d + pos + 4)) {
            if (pos + 12 > n) break;
            hdr = 12, len = rd32(d + pos + 8, false);
        } else if (is_vr(d + pos + 4)) {
            len = rd16(d + pos + 6, false);
        } else {
            len = rd32(d + pos + 4, false); /* an implicit meta group, as some writers make */
        }
        if (len == UNDEFINED || len > n - pos - hdr) break;
        if (e == 0x0010) {
            size_t k = len < sizeof out->transfer_syntax ? len : sizeof out->transfer_syntax - 1;
            memcpy(out->transfer_syntax, d + pos + hdr, k);
            while (k > 0 && (out->transfer_syntax[k - 1] == 0 || out->transfer_syntax[k - 1] == ' ')) k--;
            out->transfer_syntax[k] = 0;
        }
        pos += hdr + len;
    }
    out->dataset_at = pos;
    const char *ts = out->transfer_syntax;
    if (!strcmp(ts, "1.2.840.10008.1.2"))
        out->syntax = PN_DCM_IMPLICIT_LE;
    else if (!strcmp(ts, "1.2.840.10008.1.2.2"))
        out->syntax = PN_DCM_EXPLICIT_BE;
    else if (!strcmp(ts, "1.2.840.10008.1.2.1.99"))
        out->syntax = PN_DCM_DEFLATED;
    else if (ts[0])
        out->syntax = PN_DCM_EXPLICIT_LE;
    else if (pos + 6 <= n) { /* no transfer syntax: guess from the first element, as readers do */
        bool big = d[pos] == 0 && d[pos + 1] != 0;
        out->syntax = !is_vr(d + pos + 4) ? PN_DCM_IMPLICIT_LE : big ? PN_DCM_EXPLICIT_BE : PN_DCM_EXPLICIT_LE;
    }
}

/* One open level: the data set, a sequence or an item. */
typedef struct frame {
    size_t end;    /* for a defined length: where it ends */
    bool defined;  /* its length is defined */
    bool sequence; /* a sequence (holds items only) */
    bool implicit; /* its elements are implicit VR (UN sequences hold implicit little endian) */
    bool big;      /* big endian */
} frame;

/* Item tags from `pos` on, in either byte order: each could open one more level. */
static int count_items(const uint8_t *d, size_t n, size_t pos) {
    int count = 0;
    for (size_t i = pos; i + 4 <= n && count < 1 << 30; i++)
        count += (d[i] == 0xfe && d[i + 1] == 0xff && d[i + 2] == 0x00 && d[i + 3] == 0xe0) ||
                 (d[i] == 0xff && d[i + 1] == 0xfe && d[i + 2] == 0xe0 && d[i + 3] == 0x00);
    return count;
}

static void note_overrun(pn_dicom_overrun *o, uint16_t g, uint16_t e, uint64_t claimed, uint64_t left) {
    if (o && !o->found) *o = (pn_dicom_overrun){true, g, e, claimed, left};
}

/* Skips the items of encapsulated pixel data (each of defined length, none nested) up to the sequence delimiter. */
static bool skip_pixel_items(const uint8_t *d, size_t n, size_t *pos, bool big, pn_dicom_overrun *overrun) {
    while (*pos + 8 <= n) {
        uint16_t g = rd16(d + *pos, big), e = rd16(d + *pos + 2, big);
        uint32_t len = rd32(d + *pos + 4, big);
        *pos += 8;
        if (g != 0xfffe) return false;
        if (e == 0xe0dd) return true;
        if (e != 0xe000 || len == UNDEFINED) return false;
        if (len > n - *pos) {
            note_overrun(overrun, g, e, len, n - *pos);
            *pos = n;
            return true;
        }
        *pos += len;
    }
    *pos = n;
    return true;
}

#define MAX_FRAMES (2 * 256 + 2)

/* The scan; returns the depth and sets *followed and *broken_at. */
static int scan(const uint8_t *d, size_t n, pn_dicom_syntax_kind syntax, pn_dicom_sq_hint hint, int max_depth,
                bool *followed, size_t *broken_at, pn_dicom_overrun *overrun) {
    if (max_depth > 255) max_depth = 255;
    frame st[MAX_FRAMES];
    int top = 0, depth = 0, deepest = 0;
    st[0] = (frame){n, true, false, syntax == PN_DCM_IMPLICIT_LE, syntax == PN_DCM_EXPLICIT_BE};
    size_t pos = 0;
    *followed = true;
    for (;;) {
        frame *f = &st[top];
        if (f->defined && pos >= f->end) {
            if (top == 0) return deepest;
            depth -= f->sequence;
            top--;
            continue;
        }
        if (pos + 8 > n) return deepest; /* truncated or ended: nothing more can nest */
        uint16_t g = rd16(d + pos, f->big), e = rd16(d + pos + 2, f->big);
        if (g == 0xfffe) { /* item, item delimiter or sequence delimiter: tag and a 4-byte length, no VR */
            uint32_t len = rd32(d + pos + 4, f->big);
            pos += 8;
            if (e == 0xe000 && f->sequence && top + 1 < MAX_FRAMES) {
                if (len != UNDEFINED && len > n - pos) {
                    note_overrun(overrun, g, e, len, n - pos);
                    return deepest;
                }
                st[++top] = (frame){len == UNDEFINED ? 0 : pos + len, len != UNDEFINED, false, f->implicit, f->big};
                continue;
            }
            if (e == 0xe00d && !f->sequence && top > 0) {
                top--;
                continue;
            }
            if (e == 0xe0dd && top > 0) {
                if (!f->sequence) top--; /* an item left open */
                if (top > 0 && st[top].sequence) depth--, top--;
                continue;
            }
            break;
        }
        if (f->sequence) break; /* a sequence holds items only */
        uint32_t len;
        bool explicit_vr = !f->implicit, sq = false, un = false, pixel_data = g == 0x7fe0 && e == 0x0010;
        const uint8_t *vr = d + pos + 4;
        if (explicit_vr) {
            if (!is_vr(vr)) break;
            if (long_vr(vr)) {
                if (pos + 12 > n) return deepest;
                len = rd32(d + pos + 8, f->big);
                pos += 12;
            } else {
                len = rd16(d + pos + 6, f->big);
                pos += 8;
            }
            sq = vr[0] == 'S' && vr[1] == 'Q';
            un = vr[0] == 'U' && vr[1] == 'N';
            pixel_data = pixel_data || (vr[0] == 'O' && (vr[1] == 'B' || vr[1] == 'W') && len == UNDEFINED);
        } else {
            len = rd32(d + pos + 4, f->big);
            pos += 8;
        }
        if (len == UNDEFINED && pixel_data) {
            if (!skip_pixel_items(d, n, &pos, f->big, overrun)) break;
            if (overrun && overrun->found) return deepest;
            continue;
        }
        if (len != UNDEFINED && !sq) {
            int h = f->implicit && hint ? hint(g, e) : -1;
            bool starts_with_item =
                len >= 8 && len <= n - pos && rd16(d + pos, f->big) == 0xfffe && rd16(d + pos + 2, f->big) == 0xe000;
            sq = f->implicit && (h == 1 || (h < 0 && starts_with_item));
            if (!sq) {
                if (len > n - pos) {
                    note_overrun(overrun, g, e, len, n - pos);
                    return deepest;
                }
                pos += len;
                continue;
            }
        }
        /* A sequence: of undefined length (any VR), or SQ / an implicit sequence of defined length. */
        if (top + 2 >= MAX_FRAMES) break;
        if (len != UNDEFINED && len > n - pos) {
            note_overrun(overrun, g, e, len, n - pos);
            return deepest;
        }
        st[++top] = (frame){len == UNDEFINED ? 0 : pos + len, len != UNDEFINED, true, f->implicit || un, f->big && !un};
        if (++depth > deepest) deepest = depth;
        if (deepest > max_depth) return deepest;
    }
    /* The structure could not be followed from `pos` on: every item tag left could open a level. */
    *followed = false;
    *broken_at = pos;
    int bound = depth + count_items(d, n, pos);
    return bound > deepest ? bound : deepest;
}

void pn_dicom_scan_structure(const uint8_t *d, size_t n, pn_dicom_syntax_kind syntax, pn_dicom_sq_hint hint,
                             int max_depth, pn_dicom_structure *out) {
    memset(out, 0, sizeof *out);
    out->depth = scan(d, n, syntax, hint, max_depth, &out->followed, &out->broken_at, &out->overrun);
}
