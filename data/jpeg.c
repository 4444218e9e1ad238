/* jpeg: libjpeg(-turbo) decoding of the single-component 8-bit frames SIIM DICOMs hold (the fast path of data/dicom).
 */
#include "jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>

#include "data/image_limit.h"

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} error_mgr;

static void on_error(j_common_ptr cinfo) {
    error_mgr *e = (error_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings (a truncated or corrupt stream, which libjpeg fills with grey) are kept and become errors. */
static void on_message(j_common_ptr cinfo) {
    error_mgr *e = (error_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
}

pn_status pn_jpeg_decode_gray8(const uint8_t *data, size_t size, const char *name, int *w, int *h, uint8_t **out) {
    struct jpeg_decompress_struct cinfo;
    error_mgr err;
    uint8_t *volatile px = NULL;
    *out = NULL;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.output_message = on_message;
    err.msg[0] = 0;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        pn_free(px);
        return pn_error(PN_ERR_FORMAT, "%s: JPEG data cannot be decoded: %s", name, err.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    /* The frame header's size, before libjpeg allocates anything for the pixels. */
    if (pn_image_check_size(name, cinfo.image_width, cinfo.image_height, cinfo.num_components, 1, 1) != PN_OK) {
        jpeg_destroy_decompress(&cinfo);
        return PN_ERR_UNSUPPORTED;
    }
    if (cinfo.num_components != 1 || cinfo.data_precision != 8) {
        int nc = cinfo.num_components, prec = cinfo.data_precision;
        jpeg_destroy_decompress(&cinfo);
        return pn_error(PN_ERR_UNSUPPORTED, "%s: JPEG with %d components at %d bits is not a grey 8-bit frame", name,
                        nc, prec);
    }
    cinfo.out_color_space = JCS_GRAYSCALE;
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = FALSE;
    jpeg_start_decompress(&cinfo);
    size_t W = cinfo.output_width, H = cinfo.output_height;
    if (W == 0 || H == 0 || W > 16384 || H > 16384) {
        jpeg_destroy_decompress(&cinfo);
        return pn_error(PN_ERR_FORMAT, "%s: JPEG size %zux%zu is outside 1..16384", name, W, H);
    }
    px = pn_alloc(W * H);
    if (!px) {
        jpeg_destroy_decompress(&cinfo);
        return pn_error(PN_ERR_NOMEM, "%s: out of memory for a %zux%zu image", name, W, H);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[16];
        JDIMENSION first = cinfo.output_scanline,
                   n = cinfo.output_height - first < 16 ? cinfo.output_height - first : 16;
        for (JDIMENSION r = 0; r < n; r++) rows[r] = px + (size_t)(first + r) * W;
        if (jpeg_read_scanlines(&cinfo, rows, n) == 0) break;
    }
    jpeg_finish_decompress(&cinfo);
    long warnings = err.pub.num_warnings;
    jpeg_destroy_decompress(&cinfo);
    if (warnings) {
        pn_free(px);
        return pn_error(PN_ERR_FORMAT, "%s: JPEG data is corrupt or truncated: %s", name, err.msg);
    }
    *w = (int)W;
    *h = (int)H;
    *out = px;
    return PN_OK;
}
