/* DICOM Part 10 writer (medsynth/dicom.h, docs/dicom.md).
 *
 * Encoding (DICOM PS3.5): 128-byte preamble, "DICM", the File Meta
 * Information group 0002 (Explicit VR Little Endian, with its group length),
 * then the data set in Explicit VR Little Endian (transfer syntax
 * 1.2.840.10008.1.2.1). Elements are written in ascending tag order; values
 * are padded to even length (UI with NUL, text with a space, binary with 0).
 * VRs OB, OW, SQ, UN, UT, UC, UR, OD, OF, OL have a 4-byte length after two
 * reserved bytes; the others a 2-byte length. Sequences and their items use
 * undefined length with delimitation items (PS3.5 §7.5), so no length has to
 * be known in advance.
 *
 * IODs (PS3.3): CT Image (A.3), MR Image (A.4), Secondary Capture Image
 * (A.8.1) and Segmentation (A.51, binary). Every Type 1 and Type 2
 * attribute of their mandatory modules is written; the tests run dicom3tools'
 * dciodvfy on every kind.
 *
 * Pixels: unsigned 16-bit, MONOCHROME2. Per series, intercept = min value and
 * slope = (max - min) / 65535 (at least 1e-6), written with %.10g; stored
 * values are round((v - intercept) / slope), so a reader gets every value
 * back within slope / 2. Segmentation pixels are 1 bit, packed over all
 * frames, least significant bit first (PS3.5 §8.1.1). */
#include "medsynth/dicom.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/uuid.h"
#include "io/io_private.h"
#include "medsynth/phantom.h"
#include "medsynth/version.h"

#define TS_EXPLICIT_LE "1.2.840.10008.1.2.1"
#define UID_CT "1.2.840.10008.5.1.4.1.1.2"
#define UID_MR "1.2.840.10008.5.1.4.1.1.4"
#define UID_SC "1.2.840.10008.5.1.4.1.1.7"
#define UID_SEG "1.2.840.10008.5.1.4.1.1.66.4"
/* Implementation Class UID: a 2.25 UID derived from the project name. */
#define IMPL_NAME "MEDSYNTH_" MS_VERSION_STRING

const char *ms_dicom_kind_modality(ms_dicom_kind k) {
  static const char *const m[] = {"CT", "MR", "OT"};
  return (unsigned)k < MS_DICOM_KIND_COUNT ? m[k] : "OT";
}

void ms_dicom_uid(char out[MS_DICOM_UID_MAX], uint64_t seed, const char *key, uint64_t index) {
  ms__uuid u = ms__uuid_make(seed, key, index);
  char tmp[48];
  ms__uuid_oid(&u, tmp);
  snprintf(out, MS_DICOM_UID_MAX, "%s", tmp);
}

void ms_dicom_series_init(ms_dicom_series *s) {
  memset(s, 0, sizeof *s);
  s->kind = MS_DICOM_CT;
  s->series_number = 1;
  s->spacing[0] = s->spacing[1] = s->spacing[2] = 1.0;
  s->mr_sequence = "SE";
  s->mr_tr_ms = 500;
  s->mr_te_ms = 15;
}

/* ---- element encoding -------------------------------------------------- */

typedef struct {
  uint8_t *p;
  size_t len, cap;
  int err;
} dbuf;

static void raw(dbuf *b, const void *p, size_t n) {
  if (b->err) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    uint8_t *np = ms__realloc(b->p, cap);
    if (!np) {
      b->err = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void u16(dbuf *b, uint16_t v) {
  uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
  raw(b, x, 2);
}

static void u32(dbuf *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  raw(b, x, 4);
}

static int long_vr(const char *vr) {
  static const char *const l[] = {"OB", "OW", "SQ", "UN", "UT", "UC", "UR", "OD", "OF", "OL", "OV", NULL};
  for (size_t i = 0; l[i]; i++)
    if (!strcmp(vr, l[i])) return 1;
  return 0;
}

static void header(dbuf *b, uint16_t g, uint16_t e, const char *vr, uint32_t len) {
  u16(b, g);
  u16(b, e);
  raw(b, vr, 2);
  if (long_vr(vr)) {
    u16(b, 0);
    u32(b, len);
  } else {
    u16(b, (uint16_t)len);
  }
}

/* A text value (UI padded with NUL, others with a space). */
/* Longest value of a VR (PS3.5 Table 6.2-1); longer text is cut. */
static size_t vr_max(const char *vr) {
  static const struct {
    const char *vr;
    size_t n;
  } k[] = {{"LO", 64}, {"SH", 16}, {"CS", 16}, {"PN", 64}, {"DS", 16 * 16}, {"IS", 12},
           {"UI", 64}, {"DA", 8},  {"TM", 14}, {"AE", 16}, {"ST", 1024}, {"LT", 10240}};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (!strcmp(vr, k[i].vr)) return k[i].n;
  return 0xfffe;
}

static void str(dbuf *b, uint16_t g, uint16_t e, const char *vr, const char *v) {
  if (!v) v = "";
  size_t n = strlen(v), mx = vr_max(vr);
  if (n > mx && !strchr(v, '\\')) { /* limits are per value; ours are single-valued text */
    n = mx;
    while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80) n--; /* whole UTF-8 characters */
  }
  size_t pad = n & 1;
  header(b, g, e, vr, (uint32_t)(n + pad));
  raw(b, v, n);
  if (pad) raw(b, strcmp(vr, "UI") ? " " : "", 1);
}

static void us(dbuf *b, uint16_t g, uint16_t e, uint16_t v) {
  header(b, g, e, "US", 2);
  u16(b, v);
}

static void ul(dbuf *b, uint16_t g, uint16_t e, uint32_t v) {
  header(b, g, e, "UL", 4);
  u32(b, v);
}

static void ds(dbuf *b, uint16_t g, uint16_t e, const double *v, int n) {
  char t[256] = "";
  size_t o = 0;
  for (int i = 0; i < n; i++) {
    char one[40];
    snprintf(one, sizeof one, "%.10g", fabs(v[i]) < 5e-11 ? 0.0 : v[i]);
    /* DS values are at most 16 characters */
    if (strlen(one) > 16) snprintf(one, sizeof one, "%.9g", v[i]);
    if (strlen(one) > 16) snprintf(one, sizeof one, "%.6g", v[i]);
    o += (size_t)snprintf(t + o, sizeof t - o, "%s%s", i ? "\\" : "", one);
  }
  str(b, g, e, "DS", t);
}

static void is(dbuf *b, uint16_t g, uint16_t e, long v) {
  char t[24];
  snprintf(t, sizeof t, "%ld", v);
  str(b, g, e, "IS", t);
}

static void sq_begin(dbuf *b, uint16_t g, uint16_t e) { header(b, g, e, "SQ", 0xffffffffu); }
static void item_begin(dbuf *b) {
  u16(b, 0xfffe);
  u16(b, 0xe000);
  u32(b, 0xffffffffu);
}
static void item_end(dbuf *b) {
  u16(b, 0xfffe);
  u16(b, 0xe00d);
  u32(b, 0);
}
static void sq_end(dbuf *b) {
  u16(b, 0xfffe);
  u16(b, 0xe0dd);
  u32(b, 0);
}

/* A code sequence item: (0008,0100) value, (0008,0102) scheme, (0008,0104) meaning. */
static void code_item(dbuf *b, const char *value, const char *scheme, const char *meaning) {
  item_begin(b);
  str(b, 0x0008, 0x0100, "SH", value);
  str(b, 0x0008, 0x0102, "SH", scheme);
  str(b, 0x0008, 0x0104, "LO", meaning);
  item_end(b);
}

/* ms__atomic_write's fill: the bytes of one Part 10 file. */
static int fill_file(FILE *fp, void *ctx) {
  const dbuf *f = ctx;
  return fwrite(f->p, 1, f->len, fp) == f->len ? 0 : errno ? errno : EIO;
}

/* ---- file ------------------------------------------------------------- */

static ms_status write_file(const char *path, const char *sop_class, const char *sop_uid, const dbuf *ds_,
                            ms_diag *d) {
  dbuf m = {0};
  header(&m, 0x0002, 0x0001, "OB", 2);
  raw(&m, "\0\1", 2);
  str(&m, 0x0002, 0x0002, "UI", sop_class);
  str(&m, 0x0002, 0x0003, "UI", sop_uid);
  str(&m, 0x0002, 0x0010, "UI", TS_EXPLICIT_LE);
  char impl[MS_DICOM_UID_MAX];
  ms_dicom_uid(impl, 0, "medsynth/implementation", 0);
  str(&m, 0x0002, 0x0012, "UI", impl);
  str(&m, 0x0002, 0x0013, "SH", IMPL_NAME);
  dbuf f = {0};
  static const uint8_t pre[128];
  raw(&f, pre, sizeof pre);
  raw(&f, "DICM", 4);
  ul(&f, 0x0002, 0x0000, (uint32_t)m.len);
  if (m.p) raw(&f, m.p, m.len);
  if (ds_->p) raw(&f, ds_->p, ds_->len);
  ms_status st = MS_OK;
  if (m.err || f.err || ds_->err) {
    st = ms_diag_add(d, MS_ERR_NOMEM, path, 0, 0, NULL, "DICOM: out of memory");
  } else {
    st = ms__atomic_write(path, 1, fill_file, &f, d);
  }
  free(m.p);
  free(f.p);
  return st;
}

/* Patient, General Study, General Series, Frame of Reference, General
 * Equipment elements shared by every object: the caller interleaves them
 * in tag order, so they are written as groups below. */
static void patient_module(dbuf *b, const ms_dicom_series *s) {
  str(b, 0x0010, 0x0010, "PN", s->patient_name ? s->patient_name : "");
  str(b, 0x0010, 0x0020, "LO", s->patient_id ? s->patient_id : "");
  str(b, 0x0010, 0x0030, "DA", s->birth_date ? s->birth_date : "");
  str(b, 0x0010, 0x0040, "CS", s->sex ? s->sex : "");
}

static const char *study_date(const ms_dicom_series *s) { return s->study_date ? s->study_date : "20250101"; }

/* Group 0008 elements from StudyDate to ReferringPhysicianName, in order. */
static void study_0008(dbuf *b, const ms_dicom_series *s, const char *modality, const char *series_desc,
                       int with_conversion) {
  str(b, 0x0008, 0x0020, "DA", study_date(s));                         /* StudyDate */
  str(b, 0x0008, 0x0021, "DA", study_date(s));                         /* SeriesDate */
  str(b, 0x0008, 0x0023, "DA", study_date(s));                         /* ContentDate */
  str(b, 0x0008, 0x0030, "TM", "090000");                             /* StudyTime */
  str(b, 0x0008, 0x0031, "TM", "090000");                             /* SeriesTime */
  str(b, 0x0008, 0x0033, "TM", "090000");                             /* ContentTime */
  str(b, 0x0008, 0x0050, "SH", s->accession ? s->accession : "");     /* AccessionNumber */
  str(b, 0x0008, 0x0060, "CS", modality);                              /* Modality */
  if (with_conversion) str(b, 0x0008, 0x0064, "CS", "WSD");           /* ConversionType */
  str(b, 0x0008, 0x0070, "LO", "medsynth");                            /* Manufacturer */
  str(b, 0x0008, 0x0090, "PN", "");                                    /* ReferringPhysicianName */
  str(b, 0x0008, 0x1030, "LO", s->study_description ? s->study_description : "synthetic study");
  str(b, 0x0008, 0x103e, "LO", series_desc ? series_desc : "");
}

static void plane_position(const ms_dicom_series *s, int k, double pos[3]) {
  pos[0] = s->origin[0];
  pos[1] = s->origin[1];
  pos[2] = s->origin[2] + (double)k * s->spacing[2];
}

static const double k_orient[6] = {1, 0, 0, 0, 1, 0};

ms_status ms_dicom_write_series(const char *dir, const char *prefix, const ms_dicom_series *s,
                                const float *px, ms_diag *d) {
  if (!s || s->width <= 0 || s->height <= 0 || s->depth <= 0 || s->width > 65535 || s->height > 65535 ||
      !s->sop_uids)
    return ms_diag_add(d, MS_ERR_INVALID, dir, 0, 0, NULL, "DICOM: bad series description");
  size_t plane = (size_t)s->width * (size_t)s->height;
  size_t n = plane * (size_t)s->depth;
  float lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(px[i]))
      return ms_diag_add(d, MS_ERR_DATA, dir, 0, 0, NULL, "DICOM: pixel %zu is not finite", i);
    if (px[i] < lo) lo = px[i];
    if (px[i] > hi) hi = px[i];
  }
  double slope = ((double)hi - (double)lo) / 65535.0;
  if (slope < 1e-6) slope = 1e-6;
  /* the written (decimal) values are the ones readers use */
  char t[40];
  snprintf(t, sizeof t, "%.10g", slope);
  slope = strtod(t, NULL);
  snprintf(t, sizeof t, "%.10g", (double)lo);
  double icpt = strtod(t, NULL);
  uint16_t *pix = ms__malloc(plane * sizeof *pix);
  if (!pix) return ms_diag_add(d, MS_ERR_NOMEM, dir, 0, 0, NULL, "DICOM: out of memory");
  const char *sop_class = s->kind == MS_DICOM_CT ? UID_CT : s->kind == MS_DICOM_MR ? UID_MR : UID_SC;
  const char *modality = ms_dicom_kind_modality(s->kind);
  ms_status st = MS_OK;
  for (int k = 0; k < s->depth && st == MS_OK; k++) {
    const float *src = px + (size_t)k * plane;
    uint16_t smin = 65535, smax = 0;
    for (size_t i = 0; i < plane; i++) {
      double q = floor(((double)src[i] - icpt) / slope + 0.5);
      if (q < 0) q = 0;
      if (q > 65535) q = 65535;
      pix[i] = (uint16_t)q;
      if (pix[i] < smin) smin = pix[i];
      if (pix[i] > smax) smax = pix[i];
    }
    dbuf b = {0};
    /* group 0008 */
    if (s->kind == MS_DICOM_CT)
      str(&b, 0x0008, 0x0008, "CS", "ORIGINAL\\PRIMARY\\AXIAL");
    else if (s->kind == MS_DICOM_MR)
      str(&b, 0x0008, 0x0008, "CS", "ORIGINAL\\PRIMARY\\OTHER");
    else
      str(&b, 0x0008, 0x0008, "CS", "DERIVED\\SECONDARY");
    str(&b, 0x0008, 0x0016, "UI", sop_class);
    str(&b, 0x0008, 0x0018, "UI", s->sop_uids[k]);
    study_0008(&b, s, modality, s->series_description, s->kind == MS_DICOM_SC);
    patient_module(&b, s);
    /* group 0018 */
    if (s->body_part) str(&b, 0x0018, 0x0015, "CS", s->body_part);
    if (s->kind == MS_DICOM_MR) {
      str(&b, 0x0018, 0x0020, "CS", s->mr_sequence ? s->mr_sequence : "SE"); /* ScanningSequence */
      str(&b, 0x0018, 0x0021, "CS", "NONE");                               /* SequenceVariant */
      str(&b, 0x0018, 0x0022, "CS", "");                                   /* ScanOptions */
      str(&b, 0x0018, 0x0023, "CS", s->depth > 1 ? "3D" : "2D");           /* MRAcquisitionType */
    }
    if (s->kind != MS_DICOM_SC) {
      ds(&b, 0x0018, 0x0050, &s->spacing[2], 1); /* SliceThickness */
      if (s->kind == MS_DICOM_CT) str(&b, 0x0018, 0x0060, "DS", ""); /* KVP */
      if (s->kind == MS_DICOM_MR) {
        ds(&b, 0x0018, 0x0080, &s->mr_tr_ms, 1); /* RepetitionTime */
        ds(&b, 0x0018, 0x0081, &s->mr_te_ms, 1); /* EchoTime */
      }
      if (s->depth > 1) ds(&b, 0x0018, 0x0088, &s->spacing[2], 1); /* SpacingBetweenSlices */
      if (s->kind == MS_DICOM_MR) str(&b, 0x0018, 0x0091, "IS", "1"); /* EchoTrainLength */
      str(&b, 0x0018, 0x1020, "LO", "medsynth " MS_VERSION_STRING); /* SoftwareVersions */
      if (s->kind == MS_DICOM_CT) str(&b, 0x0018, 0x5100, "CS", "HFS"); /* PatientPosition */
      if (s->kind == MS_DICOM_MR) str(&b, 0x0018, 0x5100, "CS", "HFS");
    } else {
      str(&b, 0x0018, 0x1020, "LO", "medsynth " MS_VERSION_STRING);
    }
    /* group 0020 */
    str(&b, 0x0020, 0x000d, "UI", s->study_uid);
    str(&b, 0x0020, 0x000e, "UI", s->series_uid);
    str(&b, 0x0020, 0x0010, "SH", s->study_id ? s->study_id : "1");
    is(&b, 0x0020, 0x0011, s->series_number);
    is(&b, 0x0020, 0x0012, 1); /* AcquisitionNumber */
    is(&b, 0x0020, 0x0013, k + 1);
    if (s->kind == MS_DICOM_SC) {
      str(&b, 0x0020, 0x0020, "CS", "L\\P"); /* PatientOrientation */
      str(&b, 0x0020, 0x0060, "CS", "");     /* Laterality (unpaired or unknown) */
    } else {
      double pos[3];
      plane_position(s, k, pos);
      ds(&b, 0x0020, 0x0032, pos, 3);
      ds(&b, 0x0020, 0x0037, k_orient, 6);
      str(&b, 0x0020, 0x0052, "UI", s->frame_uid);
      str(&b, 0x0020, 0x1040, "LO", ""); /* PositionReferenceIndicator */
      ds(&b, 0x0020, 0x1041, &pos[2], 1); /* SliceLocation */
    }
    /* group 0028: Image Pixel */
    us(&b, 0x0028, 0x0002, 1);
    str(&b, 0x0028, 0x0004, "CS", "MONOCHROME2");
    us(&b, 0x0028, 0x0010, (uint16_t)s->height);
    us(&b, 0x0028, 0x0011, (uint16_t)s->width);
    if (s->kind != MS_DICOM_SC) {
      double psp[2] = {s->spacing[1], s->spacing[0]}; /* row spacing \ column spacing */
      ds(&b, 0x0028, 0x0030, psp, 2);
    }
    us(&b, 0x0028, 0x0100, 16);
    us(&b, 0x0028, 0x0101, 16);
    us(&b, 0x0028, 0x0102, 15);
    us(&b, 0x0028, 0x0103, 0);
    us(&b, 0x0028, 0x0106, smin); /* SmallestImagePixelValue */
    us(&b, 0x0028, 0x0107, smax); /* LargestImagePixelValue */
    {
      /* a display window over the series' range */
      double c = icpt + slope * 32767.5, w = slope * 65535.0;
      if (s->kind == MS_DICOM_CT) {
        c = 40;
        w = 400;
      }
      if (w >= 1) { /* a window narrower than 1 needs VOILUTFunction LINEAR_EXACT: none */
        ds(&b, 0x0028, 0x1050, &c, 1);
        ds(&b, 0x0028, 0x1051, &w, 1);
      }
    }
    ds(&b, 0x0028, 0x1052, &icpt, 1);
    ds(&b, 0x0028, 0x1053, &slope, 1);
    str(&b, 0x0028, 0x1054, "LO", s->kind == MS_DICOM_CT ? "HU" : "US"); /* RescaleType */
    /* pixel data */
    header(&b, 0x7fe0, 0x0010, "OW", (uint32_t)(plane * 2));
    for (size_t i = 0; i < plane; i++) u16(&b, pix[i]);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%04d.dcm", dir, prefix, k);
    st = write_file(path, sop_class, s->sop_uids[k], &b, d);
    free(b.p);
  }
  free(pix);
  return st;
}

/* ---- segments ---------------------------------------------------------- */

typedef struct {
  int label;
  const char *code, *meaning;
} sct;

void ms_dicom_segment_for_label(ms_dicom_segment *o, int label, int lesion_organ, char *name_buf, size_t cap) {
  /* SNOMED CT concepts as DICOM CID 7150/7151/7166 use them */
  static const sct k[] = {
      {MS_LABEL_SOFT_TISSUE, "87784001", "Soft tissue"},
      {MS_LABEL_FAT, "55603005", "Adipose tissue"},
      {MS_LABEL_MUSCLE, "127954009", "Skeletal muscle"},
      {MS_LABEL_SKULL, "89546000", "Skull"},
      {MS_LABEL_VERTEBRA, "51282000", "Vertebra"},
      {MS_LABEL_RIB, "113197003", "Rib"},
      {MS_LABEL_CSF, "65216001", "Cerebrospinal fluid"},
      {MS_LABEL_VENTRICLE, "66720007", "Lateral ventricle"},
      {MS_LABEL_LUNG, "39607008", "Lung"},
      {MS_LABEL_HEART, "80891009", "Heart"},
      {MS_LABEL_AORTA, "15825003", "Aorta"},
      {MS_LABEL_LIVER, "10200004", "Liver"},
      {MS_LABEL_KIDNEY, "64033007", "Kidney"},
      {MS_LABEL_SPLEEN, "78961009", "Spleen"},
  };
  memset(o, 0, sizeof *o);
  o->label = label;
  if (label >= MS_LABEL_LESION_FIRST) {
    snprintf(name_buf, cap, "lesion %d", label - MS_LABEL_LESION_FIRST + 1);
    o->name = name_buf;
    o->category_scheme = "SCT";
    o->category_code = "49755003";
    o->category_meaning = "Morphologically Altered Structure";
    o->type_scheme = "SCT";
    if (lesion_organ == MS_LABEL_LUNG) {
      o->type_code = "27925004";
      o->type_meaning = "Nodule";
    } else {
      o->type_code = "52988006";
      o->type_meaning = "Lesion";
    }
    return;
  }
  const char *nm = ms_label_name(label);
  snprintf(name_buf, cap, "%s", nm ? nm : "label");
  o->name = name_buf;
  o->category_scheme = "SCT";
  int tissue = label == MS_LABEL_SOFT_TISSUE || label == MS_LABEL_FAT || label == MS_LABEL_MUSCLE ||
               label == MS_LABEL_CSF;
  o->category_code = tissue ? "85756007" : "123037004";
  o->category_meaning = tissue ? "Tissue" : "Anatomical Structure";
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (k[i].label == label) {
      o->type_scheme = "SCT";
      o->type_code = k[i].code;
      o->type_meaning = k[i].meaning;
      return;
    }
  /* no SNOMED CT concept chosen: a local code (private scheme "99MSYN") */
  o->type_scheme = "99MSYN";
  o->type_code = nm ? nm : "label";
  o->type_meaning = nm ? nm : "label";
}

ms_status ms_dicom_write_seg(const char *path, const ms_dicom_series *s, const ms_dicom_seg *seg,
                             const uint8_t *mask, ms_diag *d) {
  if (!s || !seg || !seg->n_segments || s->kind == MS_DICOM_SC || !s->sop_uids)
    return ms_diag_add(d, MS_ERR_INVALID, path, 0, 0, NULL,
                       "DICOM SEG: needs a CT/MR source series and at least one segment");
  size_t plane = (size_t)s->width * (size_t)s->height;
  size_t nframes = seg->n_segments * (size_t)s->depth;
  dbuf b = {0};
  const char *src_class = s->kind == MS_DICOM_CT ? UID_CT : UID_MR;
  str(&b, 0x0008, 0x0008, "CS", "DERIVED\\PRIMARY");
  str(&b, 0x0008, 0x0016, "UI", UID_SEG);
  str(&b, 0x0008, 0x0018, "UI", seg->sop_uid);
  str(&b, 0x0008, 0x0020, "DA", study_date(s));
  str(&b, 0x0008, 0x0021, "DA", study_date(s));
  str(&b, 0x0008, 0x0023, "DA", study_date(s));
  str(&b, 0x0008, 0x0030, "TM", "090000");
  str(&b, 0x0008, 0x0031, "TM", "090000");
  str(&b, 0x0008, 0x0033, "TM", "090000");
  str(&b, 0x0008, 0x0050, "SH", s->accession ? s->accession : "");
  str(&b, 0x0008, 0x0060, "CS", "SEG");
  str(&b, 0x0008, 0x0070, "LO", "medsynth");
  str(&b, 0x0008, 0x0090, "PN", "");
  str(&b, 0x0008, 0x1030, "LO", s->study_description ? s->study_description : "synthetic study");
  str(&b, 0x0008, 0x103e, "LO", "ground-truth segmentation");
  str(&b, 0x0008, 0x1090, "LO", "medsynth phantom"); /* ManufacturerModelName */
  /* ReferencedSeriesSequence (Common Instance Reference) */
  sq_begin(&b, 0x0008, 0x1115);
  item_begin(&b);
  sq_begin(&b, 0x0008, 0x114a); /* ReferencedInstanceSequence */
  for (int k = 0; k < s->depth; k++) {
    item_begin(&b);
    str(&b, 0x0008, 0x1150, "UI", src_class);
    str(&b, 0x0008, 0x1155, "UI", s->sop_uids[k]);
    item_end(&b);
  }
  sq_end(&b);
  str(&b, 0x0020, 0x000e, "UI", s->series_uid);
  item_end(&b);
  sq_end(&b);
  patient_module(&b, s);
  str(&b, 0x0018, 0x1000, "LO", "0");                                  /* DeviceSerialNumber */
  str(&b, 0x0018, 0x1020, "LO", "medsynth " MS_VERSION_STRING);        /* SoftwareVersions */
  str(&b, 0x0020, 0x000d, "UI", s->study_uid);
  str(&b, 0x0020, 0x000e, "UI", seg->series_uid);
  str(&b, 0x0020, 0x0010, "SH", s->study_id ? s->study_id : "1");
  is(&b, 0x0020, 0x0011, seg->series_number);
  is(&b, 0x0020, 0x0013, 1);
  str(&b, 0x0020, 0x0052, "UI", s->frame_uid);
  str(&b, 0x0020, 0x1040, "LO", "");
  /* Multi-frame Dimension */
  char dim_uid[MS_DICOM_UID_MAX];
  ms_dicom_uid(dim_uid, 0, seg->sop_uid, 1);
  sq_begin(&b, 0x0020, 0x9221); /* DimensionOrganizationSequence */
  item_begin(&b);
  str(&b, 0x0020, 0x9164, "UI", dim_uid);
  item_end(&b);
  sq_end(&b);
  sq_begin(&b, 0x0020, 0x9222); /* DimensionIndexSequence */
  item_begin(&b);
  str(&b, 0x0020, 0x9164, "UI", dim_uid);
  header(&b, 0x0020, 0x9165, "AT", 4); /* DimensionIndexPointer: ReferencedSegmentNumber */
  u16(&b, 0x0062);
  u16(&b, 0x000b);
  header(&b, 0x0020, 0x9167, "AT", 4); /* FunctionalGroupPointer: SegmentIdentificationSequence */
  u16(&b, 0x0062);
  u16(&b, 0x000a);
  str(&b, 0x0020, 0x9421, "LO", "segment");
  item_end(&b);
  item_begin(&b);
  str(&b, 0x0020, 0x9164, "UI", dim_uid);
  header(&b, 0x0020, 0x9165, "AT", 4); /* ImagePositionPatient */
  u16(&b, 0x0020);
  u16(&b, 0x0032);
  header(&b, 0x0020, 0x9167, "AT", 4); /* PlanePositionSequence */
  u16(&b, 0x0020);
  u16(&b, 0x9113);
  str(&b, 0x0020, 0x9421, "LO", "position");
  item_end(&b);
  sq_end(&b);
  /* Image Pixel */
  us(&b, 0x0028, 0x0002, 1);
  str(&b, 0x0028, 0x0004, "CS", "MONOCHROME2");
  is(&b, 0x0028, 0x0008, (long)nframes);
  us(&b, 0x0028, 0x0010, (uint16_t)s->height);
  us(&b, 0x0028, 0x0011, (uint16_t)s->width);
  us(&b, 0x0028, 0x0100, 1);
  us(&b, 0x0028, 0x0101, 1);
  us(&b, 0x0028, 0x0102, 0);
  us(&b, 0x0028, 0x0103, 0);
  str(&b, 0x0028, 0x2110, "CS", "00"); /* LossyImageCompression */
  /* Segmentation Image */
  str(&b, 0x0062, 0x0001, "CS", "BINARY");
  sq_begin(&b, 0x0062, 0x0002); /* SegmentSequence */
  for (size_t i = 0; i < seg->n_segments; i++) {
    const ms_dicom_segment *g = &seg->segments[i];
    item_begin(&b);
    sq_begin(&b, 0x0062, 0x0003); /* SegmentedPropertyCategoryCodeSequence */
    code_item(&b, g->category_code, g->category_scheme, g->category_meaning);
    sq_end(&b);
    us(&b, 0x0062, 0x0004, (uint16_t)(i + 1));  /* SegmentNumber */
    str(&b, 0x0062, 0x0005, "LO", g->name);      /* SegmentLabel */
    str(&b, 0x0062, 0x0008, "CS", "AUTOMATIC");  /* SegmentAlgorithmType */
    str(&b, 0x0062, 0x0009, "LO", "medsynth phantom ground truth"); /* SegmentAlgorithmName */
    sq_begin(&b, 0x0062, 0x000f); /* SegmentedPropertyTypeCodeSequence */
    code_item(&b, g->type_code, g->type_scheme, g->type_meaning);
    sq_end(&b);
    item_end(&b);
  }
  sq_end(&b);
  str(&b, 0x0062, 0x0013, "CS", "NO"); /* SegmentsOverlap */
  str(&b, 0x0070, 0x0080, "CS", "SEGMENTATION"); /* ContentLabel */
  str(&b, 0x0070, 0x0081, "LO", "phantom labels");  /* ContentDescription */
  str(&b, 0x0070, 0x0084, "PN", "medsynth^generator"); /* ContentCreatorName */
  /* Shared functional groups */
  sq_begin(&b, 0x5200, 0x9229);
  item_begin(&b);
  sq_begin(&b, 0x0020, 0x9116); /* PlaneOrientationSequence */
  item_begin(&b);
  ds(&b, 0x0020, 0x0037, k_orient, 6);
  item_end(&b);
  sq_end(&b);
  sq_begin(&b, 0x0028, 0x9110); /* PixelMeasuresSequence */
  item_begin(&b);
  ds(&b, 0x0018, 0x0050, &s->spacing[2], 1);
  ds(&b, 0x0018, 0x0088, &s->spacing[2], 1);
  double psp[2] = {s->spacing[1], s->spacing[0]};
  ds(&b, 0x0028, 0x0030, psp, 2);
  item_end(&b);
  sq_end(&b);
  item_end(&b);
  sq_end(&b);
  /* Per-frame functional groups: segment-major, plane-minor */
  sq_begin(&b, 0x5200, 0x9230);
  for (size_t i = 0; i < seg->n_segments; i++)
    for (int k = 0; k < s->depth; k++) {
      item_begin(&b);
      sq_begin(&b, 0x0008, 0x9124); /* DerivationImageSequence */
      item_begin(&b);
      sq_begin(&b, 0x0008, 0x2112); /* SourceImageSequence */
      item_begin(&b);
      str(&b, 0x0008, 0x1150, "UI", src_class);
      str(&b, 0x0008, 0x1155, "UI", s->sop_uids[k]);
      sq_begin(&b, 0x0040, 0xa170); /* PurposeOfReferenceCodeSequence */
      code_item(&b, "121322", "DCM", "Source image for image processing operation");
      sq_end(&b);
      item_end(&b);
      sq_end(&b);
      sq_begin(&b, 0x0008, 0x9215); /* DerivationCodeSequence */
      code_item(&b, "113076", "DCM", "Segmentation");
      sq_end(&b);
      item_end(&b);
      sq_end(&b);
      sq_begin(&b, 0x0020, 0x9111); /* FrameContentSequence */
      item_begin(&b);
      header(&b, 0x0020, 0x9157, "UL", 8); /* DimensionIndexValues */
      u32(&b, (uint32_t)(i + 1));
      u32(&b, (uint32_t)(k + 1));
      item_end(&b);
      sq_end(&b);
      sq_begin(&b, 0x0020, 0x9113); /* PlanePositionSequence */
      item_begin(&b);
      double pos[3];
      plane_position(s, k, pos);
      ds(&b, 0x0020, 0x0032, pos, 3);
      item_end(&b);
      sq_end(&b);
      sq_begin(&b, 0x0062, 0x000a); /* SegmentIdentificationSequence */
      item_begin(&b);
      us(&b, 0x0062, 0x000b, (uint16_t)(i + 1));
      item_end(&b);
      sq_end(&b);
      item_end(&b);
    }
  sq_end(&b);
  /* Pixel data: frames packed bit by bit, LSB first */
  size_t nbits = nframes * plane, nbytes = (nbits + 7) / 8;
  uint8_t *bits = ms__calloc(nbytes + 1, 1);
  if (!bits) {
    free(b.p);
    return ms_diag_add(d, MS_ERR_NOMEM, path, 0, 0, NULL, "DICOM: out of memory");
  }
  size_t bit = 0;
  for (size_t i = 0; i < seg->n_segments; i++)
    for (int k = 0; k < s->depth; k++) {
      const uint8_t *m = mask + (size_t)k * plane;
      int lab = seg->segments[i].label;
      for (size_t p = 0; p < plane; p++, bit++)
        if (m[p] == lab) bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    }
  size_t padded = nbytes + (nbytes & 1);
  header(&b, 0x7fe0, 0x0010, "OB", (uint32_t)padded);
  raw(&b, bits, padded);
  free(bits);
  ms_status st = write_file(path, UID_SEG, seg->sop_uid, &b, d);
  free(b.p);
  return st;
}

/* ---- directories and phantoms ---------------------------------------- */

struct ms_dicom_dir {
  ms__atomic a;
};

ms_status ms_dicom_dir_open(ms_dicom_dir **out, const char *dir, int force, ms_diag *d) {
  *out = NULL;
  ms_dicom_dir *dd = ms__calloc(1, sizeof *dd);
  if (!dd) return ms_diag_add(d, MS_ERR_NOMEM, dir, 0, 0, NULL, "out of memory");
  ms_status st = ms__atomic_mkdir_whole(&dd->a, dir, force, d);
  if (st) {
    free(dd);
    return st;
  }
  *out = dd;
  return MS_OK;
}

const char *ms_dicom_dir_path(const ms_dicom_dir *dd) { return dd->a.tmp; }

ms_status ms_dicom_dir_commit(ms_dicom_dir *dd, ms_diag *d) {
  ms_status st = ms__atomic_commit(&dd->a, d);
  if (st)
    ms__atomic_discard(&dd->a);
  else
    ms__atomic_deinit(&dd->a);
  free(dd);
  return st;
}

void ms_dicom_dir_abort(ms_dicom_dir *dd) {
  if (!dd) return;
  ms__atomic_discard(&dd->a);
  free(dd);
}

ms_status ms_dicom_write_phantom(const char *dir, const ms_dicom_subject *subj, const ms_phantom_params *p,
                                 const ms_phantom_image *img, ms_diag *d) {
  char sub[4096], key[512];
  snprintf(sub, sizeof sub, "%s/%05llu", dir, (unsigned long long)subj->index);
  if (mkdir(sub, 0777) && errno != EEXIST)
    return ms_diag_add(d, MS_ERR_IO, sub, 0, 0, NULL, "cannot create directory: %s", strerror(errno));
  ms_dicom_series s;
  ms_dicom_series_init(&s);
  s.kind = subj->is_model || !p ? MS_DICOM_SC : p->modality == MS_MODALITY_CT ? MS_DICOM_CT : MS_DICOM_MR;
  s.patient_id = subj->patient_id;
  s.patient_name = subj->patient_name;
  s.birth_date = subj->birth_date;
  s.sex = subj->sex;
  s.study_date = subj->study_date;
  s.study_description = subj->study_description;
  s.series_description = subj->series_description;
  s.width = img->width;
  s.height = img->height;
  s.depth = img->depth > 0 ? img->depth : 1;
  for (int a = 0; a < 3; a++) s.spacing[a] = img->spacing[a] > 0 ? img->spacing[a] : 1.0;
  s.origin[0] = (0.5 - 0.5 * s.width) * s.spacing[0];
  s.origin[1] = (0.5 - 0.5 * s.height) * s.spacing[1];
  s.origin[2] = p ? (p->depth > 0 ? ms_phantom_plane_z(p, 0) : p->slice_z_mm) : 0.0;
  if (p) {
    static const char *const body[] = {"HEAD", "CHEST", "ABDOMEN"};
    s.body_part = (unsigned)p->kind < 3 ? body[p->kind] : NULL;
  }
  snprintf(key, sizeof key, "%s/study", subj->key);
  ms_dicom_uid(s.study_uid, subj->seed, key, subj->index);
  snprintf(key, sizeof key, "%s/series", subj->key);
  ms_dicom_uid(s.series_uid, subj->seed, key, subj->index);
  snprintf(key, sizeof key, "%s/frame", subj->key);
  ms_dicom_uid(s.frame_uid, subj->seed, key, subj->index);
  char(*uids)[MS_DICOM_UID_MAX] = ms__calloc((size_t)s.depth, sizeof *uids);
  if (!uids) return ms_diag_add(d, MS_ERR_NOMEM, sub, 0, 0, NULL, "DICOM: out of memory");
  for (int k = 0; k < s.depth; k++) {
    snprintf(key, sizeof key, "%s/image/%d", subj->key, k);
    ms_dicom_uid(uids[k], subj->seed, key, subj->index);
  }
  s.sop_uids = uids;
  ms_status st = ms_dicom_write_series(sub, "IMG", &s, img->image, d);
  if (st == MS_OK && img->mask && s.kind != MS_DICOM_SC) {
    uint8_t present[256] = {0};
    size_t n = (size_t)s.width * (size_t)s.height * (size_t)s.depth;
    for (size_t i = 0; i < n; i++) present[img->mask[i]] = 1;
    ms_dicom_segment segs[256];
    char names[256][32];
    size_t ns = 0;
    int organ = p ? p->lesions.organ : 0;
    for (int lab = 1; lab < 256; lab++)
      if (present[lab]) {
        int o = organ;
        for (size_t l = 0; l < img->n_lesions; l++)
          if (img->lesions[l].label == lab) o = img->lesions[l].organ;
        ms_dicom_segment_for_label(&segs[ns], lab, o, names[ns], sizeof names[ns]);
        ns++;
      }
    if (ns) {
      ms_dicom_seg g;
      memset(&g, 0, sizeof g);
      snprintf(key, sizeof key, "%s/seg-series", subj->key);
      ms_dicom_uid(g.series_uid, subj->seed, key, subj->index);
      snprintf(key, sizeof key, "%s/seg", subj->key);
      ms_dicom_uid(g.sop_uid, subj->seed, key, subj->index);
      g.series_number = 2;
      g.n_segments = ns;
      g.segments = segs;
      char path[4200];
      snprintf(path, sizeof path, "%s/SEG.dcm", sub);
      st = ms_dicom_write_seg(path, &s, &g, img->mask, d);
    }
  }
  free(uids);
  return st;
}
