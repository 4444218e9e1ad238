// dicom_write: dcmtk shim behind data/dicom_write.h: fills the tags, JPEG-encodes with libjpeg, saves atomically.
// core/base.h is C11; give it C linkage and C++'s spelling of _Noreturn.
#define _Noreturn [[noreturn]]
extern "C" {
#include "core/base.h"
}
#undef _Noreturn
#include "data/dicom_write.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/oflog/oflog.h>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <unistd.h>
#include <vector>

#include <jpeglib.h>

static void quiet_dcmtk() {
    static std::once_flag once;
    std::call_once(once, [] { OFLog::configure(OFLogger::FATAL_LOG_LEVEL); });
}

// libjpeg reports errors through error_exit, which must not return: jump back to the encoder.
struct jpeg_failure {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void on_jpeg_error(j_common_ptr c) {
    jpeg_failure *f = reinterpret_cast<jpeg_failure *>(c->err);
    (*c->err->format_message)(c, f->message);
    std::longjmp(f->jump, 1);
}

// Baseline (Process 1) JPEG of an 8-bit grey image with libjpeg(-turbo); false with `err` set on failure.
static bool encode_jpeg(const uint8_t *px, int w, int h, int quality, std::vector<uint8_t> &out, std::string &err) {
    jpeg_compress_struct c;
    jpeg_failure f;
    unsigned char *mem = nullptr;
    unsigned long size = 0;
    c.err = jpeg_std_error(&f.mgr);
    f.mgr.error_exit = on_jpeg_error;
    if (setjmp(f.jump)) { // only on out-of-memory: the arguments were checked (mem may leak here)
        err = f.message;
        jpeg_destroy_compress(&c);
        return false;
    }
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &size);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(px + (size_t)c.next_scanline * w);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    out.assign(mem, mem + size);
    jpeg_destroy_compress(&c);
    std::free(mem);
    return true;
}

static const char *or_empty(const char *s) { return s ? s : ""; }

extern "C" bool pn_dicom_write_supported(void) { return true; }

static pn_status write_u8(const char *path, const uint8_t *px, int width, int height, const pn_dicom_meta *m,
                          int jpeg_quality) {
    if (width <= 0 || height <= 0 || width > 65535 || height > 65535)
        return pn_error(PN_ERR_ARG, "%s: image size %dx%d is not writable as DICOM", path, width, height);
    if (jpeg_quality < 0 || jpeg_quality > 100)
        return pn_error(PN_ERR_ARG, "%s: JPEG quality %d (expected 1..100, or 0 for uncompressed)", path, jpeg_quality);
    quiet_dcmtk();
    DcmFileFormat ff;
    DcmDataset *ds = ff.getDataset();
    char spacing[64];
    std::snprintf(spacing, sizeof spacing, "%.6g\\%.6g", m->pixel_spacing_mm, m->pixel_spacing_mm);
    OFCondition c = EC_Normal;
    auto put = [&](const DcmTagKey &tag, const char *v) {
        if (c.good()) c = ds->putAndInsertString(tag, or_empty(v));
    };
    put(DCM_SpecificCharacterSet, "ISO_IR 100");
    put(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
    put(DCM_SOPInstanceUID, m->sop_instance_uid);
    put(DCM_StudyInstanceUID, m->study_uid);
    put(DCM_SeriesInstanceUID, m->series_uid);
    put(DCM_StudyDate, "19010101");
    put(DCM_StudyTime, "000000.00");
    put(DCM_AccessionNumber, "");
    put(DCM_Modality, "CR");
    put(DCM_ConversionType, "WSD");
    put(DCM_ReferringPhysicianName, "");
    put(DCM_SeriesDescription, "view: PA");
    put(DCM_PatientName, m->patient_name);
    put(DCM_PatientID, m->patient_id);
    put(DCM_PatientBirthDate, "");
    put(DCM_PatientSex, m->patient_sex);
    put(DCM_PatientAge, m->patient_age);
    put(DCM_BodyPartExamined, "CHEST");
    put(DCM_ViewPosition, m->view_position);
    put(DCM_StudyID, "");
    put(DCM_SeriesNumber, "1");
    put(DCM_InstanceNumber, "1");
    put(DCM_PatientOrientation, "");
    put(DCM_PhotometricInterpretation, "MONOCHROME2");
    put(DCM_PixelSpacing, spacing);
    if (c.good()) c = ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
    if (c.good()) c = ds->putAndInsertUint16(DCM_Rows, (Uint16)height);
    if (c.good()) c = ds->putAndInsertUint16(DCM_Columns, (Uint16)width);
    if (c.good()) c = ds->putAndInsertUint16(DCM_BitsAllocated, 8);
    if (c.good()) c = ds->putAndInsertUint16(DCM_BitsStored, 8);
    if (c.good()) c = ds->putAndInsertUint16(DCM_HighBit, 7);
    if (c.good()) c = ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
    E_TransferSyntax xfer = EXS_LittleEndianExplicit;
    if (jpeg_quality == 0) {
        if (c.good()) c = ds->putAndInsertUint8Array(DCM_PixelData, px, (unsigned long)width * height);
    } else {
        // Encapsulated pixel data: an empty offset table item, then the JPEG stream as one fragment.
        std::vector<uint8_t> jpeg;
        std::string err;
        if (!encode_jpeg(px, width, height, jpeg_quality, jpeg, err))
            return pn_error(PN_ERR_FORMAT, "%s: JPEG baseline encoding failed: %s", path, err.c_str());
        char ratio[32];
        std::snprintf(ratio, sizeof ratio, "%.2f", (double)width * height / (double)jpeg.size());
        put(DCM_LossyImageCompression, "01");
        put(DCM_LossyImageCompressionRatio, ratio);
        put(DCM_LossyImageCompressionMethod, "ISO_10918_1");
        xfer = EXS_JPEGProcess1;
        DcmPixelSequence *seq = new DcmPixelSequence(DCM_PixelSequenceTag);
        seq->insert(new DcmPixelItem(DCM_PixelItemTag));
        DcmOffsetList offsets;
        if (c.good()) c = seq->storeCompressedFrame(offsets, jpeg.data(), (Uint32)jpeg.size(), 0);
        DcmPixelData *pd = new DcmPixelData(DCM_PixelData);
        pd->putOriginalRepresentation(xfer, nullptr, seq);
        if (c.good())
            c = ds->insert(pd, true);
        else
            delete pd;
    }
    if (c.bad()) return pn_error(PN_ERR_FORMAT, "%s: cannot set DICOM tags: %s", path, c.text());
    std::string tmp = std::string(path) + ".tmp." + std::to_string((long)getpid());
    c = ff.saveFile(tmp.c_str(), xfer, EET_ExplicitLength, EGL_recalcGL, EPD_noChange);
    if (c.bad()) {
        std::remove(tmp.c_str());
        return pn_error(PN_ERR_IO, "%s: cannot write: %s", path, c.text());
    }
    if (std::rename(tmp.c_str(), path) != 0) {
        std::remove(tmp.c_str());
        return pn_error(PN_ERR_IO, "%s: cannot rename the temporary file into place", path);
    }
    return PN_OK;
}

// The C entry: no C++ exception may cross it (an escaping one would terminate the process).
extern "C" pn_status pn_dicom_write_u8(const char *path, const uint8_t *px, int width, int height,
                                       const pn_dicom_meta *m, int jpeg_quality) {
    try {
        return write_u8(path, px, width, height, m, jpeg_quality);
    } catch (const std::bad_alloc &) {
        return pn_error(PN_ERR_NOMEM, "%s: out of memory writing the DICOM", path);
    } catch (...) {
        return pn_error(PN_ERR_IO, "%s: writing the DICOM failed", path);
    }
}
