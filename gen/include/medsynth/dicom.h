/* DICOM Part 10 files (Explicit VR Little Endian) for generated images and
 * masks: CT Image Storage, MR Image Storage, Secondary Capture, and binary
 * Segmentation objects that reference their source images (docs/dicom.md).
 *
 * Usage:
 *   ms_dicom_series s; ms_dicom_series_init(&s);
 *   s.kind = MS_DICOM_CT; s.width = W; s.height = H; s.depth = D;
 *   s.spacing[0..2] = ...; s.origin[0..2] = ...;      // mm, patient LPS
 *   ms_dicom_uid(s.study_uid, seed, "patients/chest_ct/study", row); ...
 *   s.patient_id = "P00012345"; ...
 *   if (ms_dicom_write_series(dir, &s, image, &d) != MS_OK) ...;  // D files
 *   if (ms_dicom_write_seg(path, &s, &seg, mask, &d) != MS_OK) ...;
 *
 * Geometry: the image is axial, ImageOrientationPatient 1\0\0\0\1\0 (columns
 * towards the patient's left, rows towards posterior: medsynth's phantom x and
 * y), plane k at origin + k * spacing[2] along z (superior). Pixel values
 * are stored as unsigned 16-bit with RescaleSlope/RescaleIntercept chosen per
 * series from the value range, so that slope * stored + intercept gives
 * back every float value within slope / 2 (CT: Hounsfield units).
 *
 * UIDs: ms_dicom_uid derives "2.25.<decimal UUID>" from (seed, key, index),
 * so reruns write identical UIDs and a FHIR ImagingStudy can name them.
 *
 * Files are written through a temporary name and renamed; the library never
 * prints. Ownership: everything is borrowed for the call. */
#ifndef MEDSYNTH_DICOM_H
#define MEDSYNTH_DICOM_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/phantom.h"
#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MS_DICOM_CT, MS_DICOM_MR, MS_DICOM_SC, MS_DICOM_KIND_COUNT } ms_dicom_kind;

/* "CT", "MR", "OT" (the Modality of each kind). */
const char *ms_dicom_kind_modality(ms_dicom_kind k);

#define MS_DICOM_UID_MAX 64

/* "2.25." + the decimal value of the UUID of (seed, key, index). */
void ms_dicom_uid(char out[MS_DICOM_UID_MAX], uint64_t seed, const char *key, uint64_t index);

typedef struct {
  ms_dicom_kind kind;
  /* Patient module (NULL: empty, which DICOM allows for these) */
  const char *patient_id, *patient_name; /* name as "Family^Given" */
  const char *birth_date;                /* YYYYMMDD */
  const char *sex;                       /* "M", "F" or "O" */
  /* Study and series */
  char study_uid[MS_DICOM_UID_MAX], series_uid[MS_DICOM_UID_MAX], frame_uid[MS_DICOM_UID_MAX];
  const char *study_date;  /* YYYYMMDD; default 20250101 */
  const char *study_id, *accession, *study_description, *series_description, *body_part;
  int series_number;
  /* Geometry */
  int width, height, depth;
  double spacing[3]; /* column (x), row (y), plane (z) spacing in mm */
  double origin[3];  /* ImagePositionPatient of pixel (0, 0) of plane 0 */
  /* SOP Instance UIDs, one per plane (depth entries); filled by
   * ms_dicom_series_uids when left empty */
  char (*sop_uids)[MS_DICOM_UID_MAX];
  /* MR acquisition descriptors */
  const char *mr_sequence; /* ScanningSequence, default "SE" */
  double mr_tr_ms, mr_te_ms;
} ms_dicom_series;

void ms_dicom_series_init(ms_dicom_series *s);

/* Writes plane k as "<dir>/<prefix><k:04>.dcm" for every plane, pixels
 * float32 [depth][height][width]. The directory must exist. */
ms_status ms_dicom_write_series(const char *dir, const char *prefix, const ms_dicom_series *s,
                                const float *pixels, ms_diag *d);

typedef struct {
  int label;               /* mask value */
  const char *name;        /* SegmentLabel */
  /* SegmentedPropertyCategory/Type: SNOMED CT codes where known, else a
   * local code ("99MSYN") */
  const char *category_scheme, *category_code, *category_meaning;
  const char *type_scheme, *type_code, *type_meaning;
} ms_dicom_segment;

typedef struct {
  char series_uid[MS_DICOM_UID_MAX], sop_uid[MS_DICOM_UID_MAX];
  int series_number;
  size_t n_segments;
  const ms_dicom_segment *segments;
} ms_dicom_seg;

/* Segment description of a medsynth phantom label (medsynth/phantom.h);
 * lesions (label >= 100) as "lesion N". name_buf holds the name. */
void ms_dicom_segment_for_label(ms_dicom_segment *out, int label, int lesion_organ, char *name_buf,
                                size_t cap);

/* A binary Segmentation of the series `src` (same geometry and Frame of
 * Reference; each frame references its source plane): one frame per
 * segment per plane, mask uint8 [depth][height][width]. */
ms_status ms_dicom_write_seg(const char *path, const ms_dicom_series *src, const ms_dicom_seg *seg,
                             const uint8_t *mask, ms_diag *d);

/* ---- Output directories and phantoms ---------------------------------
 *
 * A DICOM output directory appears only when complete: open creates a
 * temporary directory beside `dir` (path() is where to write), commit
 * renames it into place (replacing an existing one only with force), abort
 * removes it. */
typedef struct ms_dicom_dir ms_dicom_dir;
ms_status ms_dicom_dir_open(ms_dicom_dir **out, const char *dir, int force, ms_diag *d);
const char *ms_dicom_dir_path(const ms_dicom_dir *dd);
/* Frees dd either way. */
ms_status ms_dicom_dir_commit(ms_dicom_dir *dd, ms_diag *d);
void ms_dicom_dir_abort(ms_dicom_dir *dd);

/* Who and what a phantom image is: the Patient module and the key of its
 * UIDs. UIDs are ms_dicom_uid(seed, "<key>/<part>", index) with part study,
 * series, frame, image/<plane>, seg-series, seg (docs/dicom.md), so a FHIR
 * ImagingStudy of the same (seed, key, index) names the same UIDs. */
typedef struct {
  const char *patient_id, *patient_name, *birth_date, *sex, *study_date;
  const char *study_description, *series_description;
  uint64_t seed;
  const char *key;   /* e.g. "patients/chest_ct" or "phantom/chest" */
  uint64_t index;    /* row or image index */
  int is_model;      /* a model sample: Secondary Capture, no geometry */
} ms_dicom_subject;

/* Writes image `index` as "<dir>/<NNNNN>/IMG<plane:04>.dcm" (CT or MR from
 * the phantom's modality; Secondary Capture when is_model) and, when the
 * mask has any label, "<dir>/<NNNNN>/SEG.dcm" with one segment per label
 * present. p may be NULL for model samples (no geometry). */
ms_status ms_dicom_write_phantom(const char *dir, const ms_dicom_subject *subj,
                                 const ms_phantom_params *p, const ms_phantom_image *img,
                                 ms_diag *d);

#ifdef __cplusplus
}
#endif
#endif
