// dicom_write: dcmtk shim behind data/dicom_write.h: fills the tags, JPEG-encodes with dcmjpeg, saves atomically.
// core/base.h is C11; give it C linkage and C++'s spelling of _Noreturn.
#define _Noreturn [[noreturn]]
extern "C" {
#include "core/base.h"
}
#undef _Noreturn
#include "data/dicom_write.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmjpeg/djencode.h>
#include <dcmtk/dcmjpeg/djrploss.h>
#include <dcmtk/oflog/oflog.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <unistd.h>

static void register_encoders() {
    static std::once_flag once;
    std::call_once(once, [] {
        OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
        // EUC_never: keep our SOPInstanceUID (dcmtk would mint a new one for a lossy file).
        // pUsePixelValues = false: scale by the 8-bit range, not the image's min..max, so the
        // stored grey levels are ours (dcmcjpeg's +sr) rather than stretched.
        DJEncoderRegistration::registerCodecs(ECC_lossyYCbCr, EUC_never, OFFalse, 0, 0, 0, OFTrue, ESS_422, OFTrue,
                                              OFFalse, 0, 0, 0.0, 0.0, 0, 0, 0, 0, /*pUsePixelValues=*/OFFalse);
    });
}

static const char *or_empty(const char *s) { return s ? s : ""; }

extern "C" bool pn_dicom_write_supported(void) { return true; }

extern "C" pn_status pn_dicom_write_u8(const char *path, const uint8_t *px, int width, int height,
                                       const pn_dicom_meta *m, int jpeg_quality) {
    if (width <= 0 || height <= 0 || width > 65535 || height > 65535)
        return pn_error(PN_ERR_ARG, "%s: image size %dx%d is not writable as DICOM", path, width, height);
    if (jpeg_quality < 0 || jpeg_quality > 100)
        return pn_error(PN_ERR_ARG, "%s: JPEG quality %d (expected 1..100, or 0 for uncompressed)", path, jpeg_quality);
    register_encoders();
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
    if (c.good()) c = ds->putAndInsertUint8Array(DCM_PixelData, px, (unsigned long)width * height);
    if (c.bad()) return pn_error(PN_ERR_FORMAT, "%s: cannot set DICOM tags: %s", path, c.text());
    E_TransferSyntax xfer = EXS_LittleEndianExplicit;
    if (jpeg_quality > 0) {
        xfer = EXS_JPEGProcess1;
        DJ_RPLossy rp((int)jpeg_quality);
        c = ds->chooseRepresentation(xfer, &rp);
        if (c.bad() || !ds->canWriteXfer(xfer))
            return pn_error(PN_ERR_FORMAT, "%s: JPEG baseline encoding failed: %s", path, c.text());
    }
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
