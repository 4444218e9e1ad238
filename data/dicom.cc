// dicom: the dcmtk shim behind data/dicom.h: decoders registered once, one rendering rule, one-line errors.
// core/base.h is C11; give it C linkage and C++'s spelling of _Noreturn before dicom.h includes it.
#define _Noreturn [[noreturn]]
extern "C" {
#include "core/base.h"
}
#undef _Noreturn
#include "data/dicom.h"
#include "data/dicom_scan.h"
#include "data/image_limit.h"
#include "data/jpeg.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmimage/diregist.h>
#include <dcmtk/dcmimgle/dcmimage.h>
#include <dcmtk/dcmimgle/dipixel.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef PN_HAVE_ZLIB
#include <zlib.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <memory>
#include <mutex>
#include <atomic>
#include <vector>
#include <new>

namespace {

std::once_flag init_once;
std::atomic<bool> fast_jpeg{true};

const int kMaxSide = 16384;

void copy_tag(DcmItem *item, const DcmTagKey &key, char *dst, size_t cap) {
    OFString s;
    dst[0] = 0;
    if (item->findAndGetOFString(key, s).good()) std::snprintf(dst, cap, "%s", s.c_str());
}

int get_int(DcmItem *item, const DcmTagKey &key, int fallback) {
    Uint16 v16;
    if (item->findAndGetUint16(key, v16).good()) return v16;
    OFString s;
    if (item->findAndGetOFString(key, s).good() && !s.empty()) return std::atoi(s.c_str());
    return fallback;
}

// PatientAge is "nnnD", "nnnW", "nnnM" or "nnnY"; returns whole years or -1.
int parse_age(const char *s) {
    if (std::strlen(s) != 4) return -1;
    for (int i = 0; i < 3; i++)
        if (s[i] < '0' || s[i] > '9') return -1;
    int n = std::atoi(std::string(s, 3).c_str());
    switch (s[3]) {
    case 'Y': return n;
    case 'M': return n / 12;
    case 'W': return n / 52;
    case 'D': return n / 365;
    default: return -1;
    }
}

// True when the file has the "DICM" marker after a 128-byte preamble.
bool has_dicm_marker(const char *path) {
    FILE *f = std::fopen(path, "rb");
    if (!f) return false;
    char buf[132];
    size_t n = std::fread(buf, 1, sizeof buf, f);
    std::fclose(f);
    return n == sizeof buf && std::memcmp(buf + 128, "DICM", 4) == 0;
}

// Transfer syntaxes newer than this dcmtk, named in messages (dcmtk names the ones it knows).
const char *syntax_name(const char *uid) {
    static const char *const names[][2] = {
        {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 (Lossless Only)"},
        {"1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options (Lossless Only)"},
        {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000"},
        {"1.2.840.10008.1.2.4.204", "JPIP HTJ2K Referenced"},
        {"1.2.840.10008.1.2.4.205", "JPIP HTJ2K Referenced Deflate"},
        {"1.2.840.10008.1.2.4.110", "JPEG XL Lossless"},
        {"1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression"},
        {"1.2.840.10008.1.2.4.112", "JPEG XL"},
        {"1.2.840.10008.1.2.8.1", "Deflated Image Frame Compression"},
        {"1.2.840.10008.1.2.7.1", "SMPTE ST 2110-20 Uncompressed Progressive Active Video"},
        {"1.2.840.10008.1.2.7.2", "SMPTE ST 2110-20 Uncompressed Interlaced Active Video"},
        {"1.2.840.10008.1.2.7.3", "SMPTE ST 2110-30 PCM Digital Audio"},
    };
    for (const auto &n : names)
        if (std::strcmp(uid, n[0]) == 0) return n[1];
    DcmXfer x(uid);
    return x.getXfer() != EXS_Unknown ? x.getXferName() : "not a transfer syntax this build knows";
}

// For the scan of implicit-VR data sets: whether the data dictionary makes (g,e) a sequence.
int dictionary_sq_hint(uint16_t g, uint16_t e) {
    if (g & 1) return -1; // private: depends on its creator; judged from the value
    DcmTag tag(g, e);
    DcmEVR vr = tag.getEVR();
    return vr == EVR_SQ ? 1 : vr == EVR_UN || vr == EVR_UNKNOWN ? -1 : 0;
}

#ifdef PN_HAVE_ZLIB
// Inflates a deflated data set (raw deflate) up to `cap` bytes; false when it would be larger or is corrupt.
bool inflate_dataset(const uint8_t *src, size_t n, size_t cap, std::vector<uint8_t> &out) {
    z_stream z;
    std::memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return false;
    z.next_in = const_cast<Bytef *>(src);
    z.avail_in = (uInt)(n < 0x7fffffffu ? n : 0x7fffffffu);
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (out.size() >= cap) break;
        size_t at = out.size(), chunk = std::min<size_t>(1u << 20, cap - at);
        out.resize(at + chunk);
        z.next_out = out.data() + at;
        z.avail_out = (uInt)chunk;
        rc = inflate(&z, Z_NO_FLUSH);
        out.resize(at + chunk - z.avail_out);
    }
    inflateEnd(&z);
    return rc == Z_STREAM_END || rc == Z_BUF_ERROR; // BUF_ERROR: the stream ends early (a truncated file)
}
#endif

// Refuses, before dcmtk parses it (recursively, one stack frame chain per level), a file whose sequences nest
// deeper than PN_DICOM_MAX_DEPTH: measured by an explicit-stack scan of the mapped file.
pn_status check_nesting(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return pn_error(PN_ERR_IO, "%s: cannot open for reading (%s)", path, std::strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0) {
        close(fd);
        return PN_OK; // not a regular file or empty: dcmtk's own error says so
    }
    size_t n = (size_t)sb.st_size;
    void *map = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return pn_error(PN_ERR_IO, "%s: cannot map the file (%s)", path, std::strerror(errno));
    const uint8_t *d = static_cast<const uint8_t *>(map);
    pn_dicom_meta s;
    pn_dicom_scan_meta(d, n, &s);
    pn_dicom_structure ds;
    std::memset(&ds, 0, sizeof ds);
    pn_status st = PN_OK;
    if (s.syntax == PN_DCM_DEFLATED) {
#ifdef PN_HAVE_ZLIB
        std::vector<uint8_t> inflated;
        size_t cap = pn_image_limit_bytes() + (64u << 20);
        if (!inflate_dataset(d + s.dataset_at, n - s.dataset_at, cap, inflated))
            st = inflated.size() >= cap
                     ? pn_error(PN_ERR_UNSUPPORTED,
                                "%s: the deflated data set inflates to more than %.0f MB (--max-image-mb)", path,
                                (double)cap / 1e6)
                     : pn_error(PN_ERR_FORMAT, "%s: the deflated data set is corrupt", path);
        else
            pn_dicom_scan_structure(inflated.data(), inflated.size(), PN_DCM_EXPLICIT_LE, dictionary_sq_hint,
                                    PN_DICOM_MAX_DEPTH, &ds);
#else
        st = pn_error(PN_ERR_UNSUPPORTED,
                      "%s: transfer syntax 1.2.840.10008.1.2.1.99 (Deflated Explicit VR Little Endian) "
                      "needs zlib, which this build lacks",
                      path);
#endif
    } else {
        pn_dicom_scan_structure(d + s.dataset_at, n - s.dataset_at, s.syntax, dictionary_sq_hint, PN_DICOM_MAX_DEPTH,
                                &ds);
    }
    bool marker = n >= 132 && std::memcmp(d + 128, "DICM", 4) == 0;
    munmap(map, n);
    if (st != PN_OK) return st;
    if (ds.depth > PN_DICOM_MAX_DEPTH)
        return pn_error(PN_ERR_FORMAT, "%s: sequences nested %s%d deep (at most %d are read)", path,
                        ds.followed ? "" : "up to ", ds.depth, PN_DICOM_MAX_DEPTH);
    // dcmtk allocates an element's declared length before it reads the bytes (a few bytes could claim gigabytes); and
    // where the elements cannot be followed, neither their lengths nor their nesting are known: not handed to dcmtk.
    char detail[160] = "";
    if (ds.overrun.found)
        std::snprintf(detail, sizeof detail, "element (%04X,%04X) claims %llu bytes but only %llu follow",
                      ds.overrun.group, ds.overrun.element, (unsigned long long)ds.overrun.claimed,
                      (unsigned long long)ds.overrun.left);
    else if (!ds.followed)
        std::snprintf(detail, sizeof detail, "the element structure breaks off at byte %zu of the data set%s",
                      ds.broken_at, s.syntax == PN_DCM_DEFLATED ? " (inflated)" : "");
    if (detail[0] && !marker)
        return pn_error(PN_ERR_FORMAT,
                        "%s: not a DICOM file (no 'DICM' marker at byte 128 and no readable data set: %s)", path,
                        detail);
    if (detail[0]) return pn_error(PN_ERR_FORMAT, "%s: truncated or malformed DICOM (%s)", path, detail);
    return st;
}

pn_status load(const char *path, DcmFileFormat &ff) {
    FILE *f = std::fopen(path, "rb");
    if (!f) return pn_error(PN_ERR_IO, "%s: cannot open for reading", path);
    std::fclose(f);
    PN_TRY(check_nesting(path));
    bool marker = has_dicm_marker(path);
    OFCondition c = ff.loadFile(path, EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
    if (c.bad()) {
        if (!marker)
            return pn_error(PN_ERR_FORMAT,
                            "%s: not a DICOM file (no 'DICM' marker at byte 128 and no readable data set)", path);
        return pn_error(PN_ERR_FORMAT, "%s: truncated or malformed DICOM (%s)", path, c.text());
    }
    return PN_OK;
}

void fill_info(DcmFileFormat &ff, pn_dicom_info *info) {
    DcmDataset *ds = ff.getDataset();
    std::memset(info, 0, sizeof *info);
    copy_tag(ds, DCM_PatientID, info->patient_id, sizeof info->patient_id);
    copy_tag(ds, DCM_PatientSex, info->sex, sizeof info->sex);
    char age[32];
    copy_tag(ds, DCM_PatientAge, age, sizeof age);
    info->age_years = parse_age(age);
    copy_tag(ds, DCM_SOPInstanceUID, info->sop_instance_uid, sizeof info->sop_instance_uid);
    copy_tag(ds, DCM_PhotometricInterpretation, info->photometric, sizeof info->photometric);
    copy_tag(ff.getMetaInfo(), DCM_TransferSyntaxUID, info->transfer_syntax, sizeof info->transfer_syntax);
    if (!info->transfer_syntax[0]) {
        DcmXfer x(ds->getOriginalXfer());
        std::snprintf(info->transfer_syntax, sizeof info->transfer_syntax, "%s", x.getXferID());
    }
    info->rows = get_int(ds, DCM_Rows, 0);
    info->cols = get_int(ds, DCM_Columns, 0);
    info->samples_per_pixel = get_int(ds, DCM_SamplesPerPixel, 1);
    info->bits_allocated = get_int(ds, DCM_BitsAllocated, 0);
    info->bits_stored = get_int(ds, DCM_BitsStored, info->bits_allocated);
    info->pixel_signed = get_int(ds, DCM_PixelRepresentation, 0);
    info->frames = get_int(ds, DCM_NumberOfFrames, 1);
}

bool is_jpeg2000(E_TransferSyntax x) {
    return x == EXS_JPEG2000LosslessOnly || x == EXS_JPEG2000 || x == EXS_JPEG2000MulticomponentLosslessOnly ||
           x == EXS_JPEG2000Multicomponent;
}

bool maps_unchanged(DcmDataset *ds, const pn_dicom_info &info);

// The SIIM case: one 8-bit grey JPEG frame with nothing to map (no rescale, window or LUT), so the rule's
// output is the stored pixels: libjpeg(-turbo) decodes it directly, bit-exact with dcmtk's decoder.
bool fast_jpeg_eligible(DcmDataset *ds, const pn_dicom_info &info) {
    E_TransferSyntax x = ds->getOriginalXfer();
    bool mono = std::strcmp(info.photometric, "MONOCHROME2") == 0 || std::strcmp(info.photometric, "MONOCHROME1") == 0;
    return fast_jpeg.load() && (x == EXS_JPEGProcess1 || x == EXS_JPEGProcess2_4) && mono &&
           info.samples_per_pixel == 1 && info.bits_allocated == 8 && info.bits_stored == 8 && !info.pixel_signed &&
           info.frames <= 1 && maps_unchanged(ds, info) && !ds->tagExists(DCM_WindowCenter) &&
           !ds->tagExists(DCM_VOILUTSequence) && !ds->tagExists(DCM_ModalityLUTSequence);
}

pn_status decode_fast_jpeg(const char *path, DcmDataset *ds, const pn_dicom_info &info, int bits, pn_dicom_image *out) {
    DcmElement *e = NULL;
    if (ds->findAndGetElement(DCM_PixelData, e).bad() || !e)
        return pn_error(PN_ERR_FORMAT, "%s: no pixel data (7FE0,0010)", path);
    DcmPixelData *pd = OFstatic_cast(DcmPixelData *, e);
    DcmPixelSequence *seq = NULL;
    if (pd->getEncapsulatedRepresentation(ds->getOriginalXfer(), NULL, seq).bad() || !seq || seq->card() < 2)
        return pn_error(PN_ERR_FORMAT, "%s: encapsulated pixel data has no JPEG fragment", path);
    std::vector<Uint8> joined;
    const Uint8 *data = NULL;
    size_t size = 0;
    for (unsigned long i = 1; i < seq->card(); i++) {
        DcmPixelItem *item = NULL;
        Uint8 *frag = NULL;
        if (seq->getItem(item, i).bad() || !item || item->getUint8Array(frag).bad() || !frag) continue;
        size_t n = item->getLength();
        if (seq->card() == 2) {
            data = frag;
            size = n;
        } else {
            joined.insert(joined.end(), frag, frag + n);
        }
    }
    if (!data) {
        data = joined.data();
        size = joined.size();
    }
    if (!data || size == 0) return pn_error(PN_ERR_FORMAT, "%s: encapsulated pixel data is empty", path);
    int w = 0, h = 0;
    uint8_t *px = NULL;
    PN_TRY(pn_jpeg_decode_gray8(data, size, path, &w, &h, &px));
    if (w != info.cols || h != info.rows) {
        pn_free(px);
        return pn_error(PN_ERR_FORMAT, "%s: JPEG frame is %dx%d but the header says %dx%d", path, w, h, info.cols,
                        info.rows);
    }
    size_t n = (size_t)w * (size_t)h;
    bool invert = std::strcmp(info.photometric, "MONOCHROME1") == 0;
    if (bits == 8) {
        if (invert)
            for (size_t i = 0; i < n; i++) px[i] = (uint8_t)(255 - px[i]);
        out->pixels = px;
    } else {
        uint16_t *wide = static_cast<uint16_t *>(pn_alloc(n * 2));
        if (!wide) {
            pn_free(px);
            return pn_error(PN_ERR_NOMEM, "%s: out of memory", path);
        }
        for (size_t i = 0; i < n; i++) wide[i] = (uint16_t)((invert ? 255 - px[i] : px[i]) * 257);
        pn_free(px);
        out->pixels = wide;
    }
    out->width = w;
    out->height = h;
    out->bits = bits;
    return PN_OK;
}

// The JPEG process syntaxes (dcmtk's DJ codec decodes them all).
bool is_jpeg_process(E_TransferSyntax x) { return x >= EXS_JPEGProcess1 && x <= EXS_JPEGProcess14SV1; }

// Fragment k (1 = the first after the offset table) of encapsulated pixel data, or false.
bool fragment(DcmDataset *ds, unsigned long k, const Uint8 **data, size_t *size) {
    DcmElement *e = NULL;
    DcmPixelSequence *seq = NULL;
    DcmPixelItem *item = NULL;
    Uint8 *frag = NULL;
    if (ds->findAndGetElement(DCM_PixelData, e).bad() || !e) return false;
    if (OFstatic_cast(DcmPixelData *, e)->getEncapsulatedRepresentation(ds->getOriginalXfer(), NULL, seq).bad() ||
        !seq || k >= seq->card() || seq->getItem(item, k).bad() || !item || item->getUint8Array(frag).bad() || !frag)
        return false;
    *data = frag;
    *size = item->getLength();
    return true;
}

// Walks a JPEG stream's markers up to its frame header the way dcmtk 3.6's codec does before decoding (to find the
// sample precision): true when that walk ends. It never ends on a TEM marker (FF01), which it does not step over,
// so such a stream must not reach it.
bool jpeg_walk_ends(const Uint8 *d, size_t n) {
    for (size_t at = 0; at + 4 < n;) {
        unsigned m = (unsigned)d[at] << 8 | d[at + 1];
        bool frame = m >= 0xffc0 && m <= 0xffcf && m != 0xffc4 && m != 0xffc8 && m != 0xffcc;
        bool segment = (m >= 0xffc4 && m <= 0xffcc && !frame) || (m >= 0xffda && m <= 0xfffe);
        if (frame) return true;
        if (m == 0xff01) return false;
        if (segment)
            at += ((size_t)d[at + 2] << 8 | d[at + 3]) + 2;
        else if (m >= 0xffd0 && m <= 0xffd9)
            at += 2;
        else if (m == 0xffff)
            at += 1;
        else if (d[at] == 0xff && d[at + 1] > 2 && d[at + 1] <= 0xbf)
            at += 2;
        else
            return true; // the walk gives up here
    }
    return true;
}

// Checks tags, sizes and the transfer syntax, and decompresses encapsulated pixel data in place unless
// the fast JPEG path will read it (*fast).
pn_status check_and_decompress(const char *path, DcmDataset *ds, const pn_dicom_info &info, bool *fast) {
    *fast = false;
    if (!ds->tagExists(DCM_PixelData)) return pn_error(PN_ERR_FORMAT, "%s: no pixel data (7FE0,0010)", path);
    if (info.rows <= 0 || info.cols <= 0)
        return pn_error(PN_ERR_FORMAT, "%s: Rows (0028,0010) or Columns (0028,0011) is missing or zero", path);
    if (info.rows > kMaxSide || info.cols > kMaxSide)
        return pn_error(PN_ERR_FORMAT, "%s: image size %dx%d is outside 1..%d", path, info.cols, info.rows, kMaxSide);
    if (info.samples_per_pixel != 1 && info.samples_per_pixel != 3)
        return pn_error(PN_ERR_FORMAT, "%s: %d samples per pixel; expected 1 or 3", path, info.samples_per_pixel);
    if (info.bits_allocated != 1 && info.bits_allocated != 8 && info.bits_allocated != 16 && info.bits_allocated != 32)
        return pn_error(PN_ERR_FORMAT, "%s: %d bits allocated; expected 8, 16 or 32", path, info.bits_allocated);
    if (info.frames < 1) return pn_error(PN_ERR_FORMAT, "%s: Number of Frames (0028,0008) is %d", path, info.frames);
    E_TransferSyntax xfer = ds->getOriginalXfer();
    DcmXfer x(xfer);
    // A transfer syntax the meta group names but dcmtk does not know (HTJ2K, JPEG XL, ...): named, not guessed at.
    if (xfer == EXS_Unknown || (info.transfer_syntax[0] && DcmXfer(info.transfer_syntax).getXfer() == EXS_Unknown))
        return pn_error(PN_ERR_UNSUPPORTED, "%s: transfer syntax %s (%s) is not supported", path, info.transfer_syntax,
                        syntax_name(info.transfer_syntax));
    // The decoded size before any decoding: one frame of native pixels (what is rendered), every frame of
    // compressed ones (dcmtk decompresses them all).
    PN_TRY(pn_image_check_size(path, info.cols, info.rows, info.samples_per_pixel, (info.bits_allocated + 7) / 8,
                               x.isEncapsulated() ? info.frames : 1));
    if (is_jpeg2000(xfer))
        return pn_error(PN_ERR_UNSUPPORTED,
                        "%s: transfer syntax %s (%s) cannot be decoded: this build has no JPEG 2000 decoder", path,
                        x.getXferID(), x.getXferName());
    if (xfer == EXS_BigEndianExplicit && info.bits_allocated == 32)
        return pn_error(
            PN_ERR_UNSUPPORTED,
            "%s: transfer syntax %s (%s) with 32 bits allocated is not supported (dcmtk swaps it as 16-bit words)",
            path, x.getXferID(), x.getXferName());
    if (x.isEncapsulated()) {
        if (fast_jpeg_eligible(ds, info)) {
            *fast = true;
            return PN_OK;
        }
        const Uint8 *frag = NULL;
        size_t frag_size = 0;
        for (unsigned long k = 1; is_jpeg_process(xfer) && fragment(ds, k, &frag, &frag_size); k++)
            if (!jpeg_walk_ends(frag, frag_size))
                return pn_error(PN_ERR_FORMAT, "%s: JPEG data is corrupt: a TEM marker (FF01) before a frame header",
                                path);
        OFCondition c = ds->chooseRepresentation(EXS_LittleEndianExplicit, NULL);
        if (c.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit))
            return pn_error(PN_ERR_UNSUPPORTED, "%s: pixel data in transfer syntax %s (%s) could not be decoded: %s",
                            path, x.getXferID(), x.getXferName(), c.bad() ? c.text() : "no decoder for it");
        return PN_OK;
    }
    DcmElement *pd = NULL;
    if (ds->findAndGetElement(DCM_PixelData, pd).bad() || !pd)
        return pn_error(PN_ERR_FORMAT, "%s: no pixel data (7FE0,0010)", path);
    unsigned long long need =
        ((unsigned long long)info.rows * info.cols * info.samples_per_pixel * info.bits_allocated + 7) / 8;
    if (std::strncmp(info.photometric, "YBR_FULL_422", 12) == 0 ||
        std::strncmp(info.photometric, "YBR_PARTIAL_422", 15) == 0)
        need = need * 2 / 3; // chroma subsampled horizontally: 2 samples per pixel
    if ((unsigned long long)pd->getLength() < need)
        return pn_error(PN_ERR_FORMAT, "%s: pixel data is truncated: %lu bytes, one frame needs %llu", path,
                        (unsigned long)pd->getLength(), need);
    return PN_OK;
}

// True when the stored values map to the output unchanged: unsigned, at most 8 bits, no rescale.
bool maps_unchanged(DcmDataset *ds, const pn_dicom_info &info) {
    // findAndGet* zero their output when the tag is absent, so keep the defaults unless found.
    Float64 slope = 1.0, intercept = 0.0, v = 0.0;
    if (ds->findAndGetFloat64(DCM_RescaleSlope, v).good()) slope = v;
    if (ds->findAndGetFloat64(DCM_RescaleIntercept, v).good()) intercept = v;
    return info.bits_stored <= 8 && !info.pixel_signed && slope == 1.0 && intercept == 0.0;
}

// Colour: dcmtk renders RGB at 16 bits, we take 0.299 R + 0.587 G + 0.114 B and map it as the rule says.
pn_status render_colour(const char *path, DicomImage &img, const pn_dicom_info &info, int bits, pn_dicom_image *out) {
    const Uint16 *rgb = static_cast<const Uint16 *>(img.getOutputData(16, 0, 0));
    if (!rgb)
        return pn_error(PN_ERR_FORMAT, "%s: cannot render the %s image: %s", path, info.photometric,
                        DicomImage::getString(img.getStatus()));
    size_t w = img.getWidth(), h = img.getHeight(), n = w * h;
    if (w == 0 || h == 0 || img.getOutputDataSize(16) < n * 6)
        return pn_error(PN_ERR_FORMAT, "%s: rendered image has an unexpected size", path);
    std::unique_ptr<double[]> grey(new double[n]);
    double lo = 1e300, hi = -1e300;
    for (size_t i = 0; i < n; i++) {
        double g = 0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2];
        grey[i] = g;
        lo = g < lo ? g : lo;
        hi = g > hi ? g : hi;
    }
    double ymax = bits == 8 ? 255.0 : 65535.0;
    bool full_range = info.bits_stored <= 8;
    out->pixels = pn_alloc(n * (size_t)(bits / 8));
    if (!out->pixels) return pn_error(PN_ERR_NOMEM, "%s: out of memory for a %zux%zu image", path, w, h);
    for (size_t i = 0; i < n; i++) {
        double y = full_range ? grey[i] / 65535.0 * ymax : (hi > lo ? (grey[i] - lo) / (hi - lo) * ymax : 0.0);
        y = y < 0 ? 0 : (y > ymax ? ymax : y);
        unsigned v = (unsigned)(y + 1e-7);
        if (bits == 8)
            static_cast<uint8_t *>(out->pixels)[i] = (uint8_t)(v > 255 ? 255 : v);
        else
            static_cast<uint16_t *>(out->pixels)[i] = (uint16_t)(v > 65535 ? 65535 : v);
    }
    out->width = (int)w;
    out->height = (int)h;
    out->bits = bits;
    return PN_OK;
}

// Unsigned <= 8 stored bits without rescale or window: 0..2^bits-1 onto the output range, by integer
// arithmetic from dcmtk's modality values (its own "no VOI" output stretches the image's min..max).
template <typename T>
void map_stored(const T *v, size_t n, unsigned maxv, unsigned ymax, bool invert, int bits, void *dst) {
    unsigned lut[256]; // maxv < 256 here
    for (unsigned x = 0; x <= maxv; x++) lut[x] = invert ? ymax - x * ymax / maxv : x * ymax / maxv;
    for (size_t i = 0; i < n; i++) {
        long long x = (long long)v[i];
        unsigned y = lut[x < 0 ? 0 : (x > (long long)maxv ? maxv : (unsigned)x)];
        if (bits == 8)
            static_cast<uint8_t *>(dst)[i] = (uint8_t)y;
        else
            static_cast<uint16_t *>(dst)[i] = (uint16_t)y;
    }
}

pn_status render_stored_range(const char *path, DicomImage &img, const pn_dicom_info &info, int bits,
                              pn_dicom_image *out) {
    const DiPixel *px = img.getInterData();
    size_t w = img.getWidth(), h = img.getHeight(), n = w * h;
    if (!px || !px->getData() || w == 0 || h == 0 || px->getCount() < n)
        return pn_error(PN_ERR_FORMAT, "%s: cannot render the image: no pixel values", path);
    out->pixels = pn_alloc(n * (size_t)(bits / 8));
    if (!out->pixels) return pn_error(PN_ERR_NOMEM, "%s: out of memory for a %zux%zu image", path, w, h);
    unsigned maxv = (1u << (info.bits_stored > 0 ? info.bits_stored : 8)) - 1, ymax = bits == 8 ? 255u : 65535u;
    bool invert = std::strcmp(info.photometric, "MONOCHROME1") == 0;
    const void *d = px->getData();
    switch (px->getRepresentation()) {
    case EPR_Uint8: map_stored(static_cast<const Uint8 *>(d), n, maxv, ymax, invert, bits, out->pixels); break;
    case EPR_Sint8: map_stored(static_cast<const Sint8 *>(d), n, maxv, ymax, invert, bits, out->pixels); break;
    case EPR_Uint16: map_stored(static_cast<const Uint16 *>(d), n, maxv, ymax, invert, bits, out->pixels); break;
    case EPR_Sint16: map_stored(static_cast<const Sint16 *>(d), n, maxv, ymax, invert, bits, out->pixels); break;
    case EPR_Uint32: map_stored(static_cast<const Uint32 *>(d), n, maxv, ymax, invert, bits, out->pixels); break;
    case EPR_Sint32: map_stored(static_cast<const Sint32 *>(d), n, maxv, ymax, invert, bits, out->pixels); break;
    default:
        pn_dicom_image_free(out);
        return pn_error(PN_ERR_FORMAT, "%s: cannot render the image: unexpected internal representation", path);
    }
    out->width = (int)w;
    out->height = (int)h;
    out->bits = bits;
    return PN_OK;
}

pn_status render(const char *path, DcmDataset *ds, const pn_dicom_info &info, int bits, pn_dicom_image *out) {
    DicomImage img(ds, ds->getCurrentXfer(), CIF_DecompressCompletePixelData, 0, 1);
    if (img.getStatus() != EIS_Normal)
        return pn_error(PN_ERR_FORMAT, "%s: cannot render the image: %s", path, DicomImage::getString(img.getStatus()));
    if (!img.isMonochrome()) return render_colour(path, img, info, bits, out);
    DicomImage *im = &img;
    bool windowed = im->getWindowCount() > 0 && im->setWindow(0);
    if (!windowed && maps_unchanged(ds, info)) return render_stored_range(path, img, info, bits, out);
    if (!windowed) im->setMinMaxWindow(0);
    const void *data = im->getOutputData(bits, 0, 0);
    if (!data)
        return pn_error(PN_ERR_FORMAT, "%s: cannot render the image: %s", path, DicomImage::getString(im->getStatus()));
    size_t w = im->getWidth(), h = im->getHeight(), bytes = w * h * (size_t)(bits / 8);
    if (w == 0 || h == 0 || im->getOutputDataSize(bits) < bytes)
        return pn_error(PN_ERR_FORMAT, "%s: rendered image has an unexpected size", path);
    out->pixels = pn_alloc(bytes);
    if (!out->pixels) return pn_error(PN_ERR_NOMEM, "%s: out of memory for a %zux%zu image", path, w, h);
    std::memcpy(out->pixels, data, bytes);
    out->width = (int)w;
    out->height = (int)h;
    out->bits = bits;
    return PN_OK;
}

} // namespace

extern "C" void pn_dicom_init(void) {
    std::call_once(init_once, [] {
        OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
        DJDecoderRegistration::registerCodecs();
        DJLSDecoderRegistration::registerCodecs();
        DcmRLEDecoderRegistration::registerCodecs();
    });
}

extern "C" pn_status pn_dicom_read_info(const char *path, pn_dicom_info *info) {
    pn_dicom_init();
    std::memset(info, 0, sizeof *info);
    try {
        DcmFileFormat ff;
        PN_TRY(load(path, ff));
        fill_info(ff, info);
        return PN_OK;
    } catch (const std::bad_alloc &) {
        return pn_error(PN_ERR_NOMEM, "%s: out of memory reading the DICOM", path);
    } catch (...) {
        return pn_error(PN_ERR_FORMAT, "%s: malformed DICOM", path);
    }
}

extern "C" pn_status pn_dicom_read(const char *path, int bits, pn_dicom_image *out, pn_dicom_info *info_out) {
    pn_dicom_init();
    std::memset(out, 0, sizeof *out);
    if (bits != 8 && bits != 16) return pn_error(PN_ERR_ARG, "%s: output bits must be 8 or 16, got %d", path, bits);
    pn_dicom_info info;
    std::memset(&info, 0, sizeof info);
    pn_status st;
    bool fast = false;
    try {
        DcmFileFormat ff;
        st = load(path, ff);
        if (st == PN_OK) {
            fill_info(ff, &info);
            st = check_and_decompress(path, ff.getDataset(), info, &fast);
        }
        if (st == PN_OK)
            st = fast ? decode_fast_jpeg(path, ff.getDataset(), info, bits, out)
                      : render(path, ff.getDataset(), info, bits, out);
    } catch (const std::bad_alloc &) {
        st = pn_error(PN_ERR_NOMEM, "%s: out of memory decoding the DICOM", path);
    } catch (...) {
        st = pn_error(PN_ERR_FORMAT, "%s: malformed DICOM", path);
    }
    // A failure inside compressed pixel data names the transfer syntax, so a user knows which codec it was.
    if (st != PN_OK && st != PN_ERR_IO && info.transfer_syntax[0] && DcmXfer(info.transfer_syntax).isEncapsulated() &&
        !std::strstr(pn_last_error(), info.transfer_syntax)) {
        std::string msg = pn_last_error();
        pn_error(st, "%s [transfer syntax %s, %s]", msg.c_str(), info.transfer_syntax,
                 syntax_name(info.transfer_syntax));
    }
    if (st != PN_OK) pn_dicom_image_free(out);
    if (info_out) *info_out = info;
    return st;
}

extern "C" void pn_dicom_set_fast_jpeg(bool on) { fast_jpeg.store(on); }

extern "C" void pn_dicom_image_free(pn_dicom_image *img) {
    pn_free(img->pixels);
    std::memset(img, 0, sizeof *img);
}
