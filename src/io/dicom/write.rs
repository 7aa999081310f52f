//! Writing results as a new derived DICOM series (PS3.3 C.7.6.1 "DERIVED\SECONDARY" images).
//!
//! Each slice becomes one single-frame instance in Explicit VR Little Endian with:
//! - a new SeriesInstanceUID and SOPInstanceUIDs under the `2.25` UUID root ([`super::uid`]);
//! - ImageType `DERIVED\SECONDARY` (plus `AXIAL` for CT), SeriesDescription and
//!   DerivationDescription naming the method and its settings;
//! - Patient, Study and Frame of Reference attributes copied from the source (or, with
//!   [`DerivedSeriesOptions::anonymize`], de-identified: see [`super::deid`]);
//! - the source geometry; when the output grid differs from the source's (e.g. a 64² network
//!   output for a 512² slice) the same field of view is kept: spacing s' = s·N/N' and the first
//!   pixel centre moved by (s' − s)/2 along the row and column directions;
//! - signed 16-bit pixels with one RescaleSlope m and RescaleIntercept b for the whole series,
//!   chosen so that v = m·stored + b reproduces the values within m/2: m = 1, b = 0 when the
//!   data are integers in the int16 range, else m = (max − min)/65000 and b = (max + min)/2
//!   (m and b are the decimal strings actually written, ≤ 16 characters, parsed back).
//!
//! The SOP class follows the source modality: CT Image Storage, MR Image Storage, else (or
//! without a source) Secondary Capture Image Storage with modality OT. A series is written to a
//! temporary sibling folder and renamed into place, so a failure leaves no partial series.

use super::deid::{deidentify, DEIDENTIFICATION_METHOD};
use super::geometry::FrameGeometry;
use super::read::{element_string, DicomVolume};
use super::uid::{new_uid, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};
use crate::io::atomic::write_bytes_atomic;
use crate::io::ensure_finite;
use anyhow::{anyhow, bail, Context, Result};
use dicom::core::value::{PrimitiveValue, C};
use dicom::core::{DataElement, Tag, VR};
use dicom::dictionary_std::{tags, uids};
use dicom::object::meta::FileMetaTableBuilder;
use dicom::object::{FileDicomObject, InMemDicomObject};
use ndarray::{ArrayView2, ArrayView3, Axis};
use std::path::{Path, PathBuf};

/// Settings of a derived series.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedSeriesOptions {
    /// SeriesDescription (LO, cut to 64 characters), e.g. "medsgm pc-projection N=500".
    pub description: String,
    /// DerivationDescription (ST, cut to 1024 characters): the full method settings.
    pub derivation: String,
    /// SeriesNumber.
    pub series_number: i32,
    /// De-identify the output (PS3.15 Basic Application Level Confidentiality Profile subset).
    pub anonymize: bool,
    /// Per-slice ImageComments (LT), e.g. the slice's uncertainty and out-of-distribution
    /// figures; empty entries (or an empty list) write none.
    pub slice_comments: Vec<String>,
}

impl Default for DerivedSeriesOptions {
    fn default() -> Self {
        DerivedSeriesOptions {
            description: "medsgm reconstruction".to_owned(),
            derivation: String::new(),
            series_number: 9001,
            anonymize: false,
            slice_comments: Vec::new(),
        }
    }
}

/// What [`write_derived_series`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenSeries {
    /// The new SeriesInstanceUID.
    pub series_instance_uid: String,
    /// One file per slice, in slice order.
    pub files: Vec<PathBuf>,
    /// RescaleSlope and RescaleIntercept used.
    pub rescale: (f64, f64),
}

/// Patient, study and clinical attributes copied from the source (type 2 ones written empty
/// when the source lacks them).
const PATIENT_STUDY: &[(Tag, VR, bool)] = &[
    (tags::PATIENT_NAME, VR::PN, true),
    (tags::PATIENT_ID, VR::LO, true),
    (tags::ISSUER_OF_PATIENT_ID, VR::LO, false),
    (tags::PATIENT_BIRTH_DATE, VR::DA, true),
    (tags::PATIENT_SEX, VR::CS, true),
    (tags::PATIENT_AGE, VR::AS, false),
    (tags::PATIENT_SIZE, VR::DS, false),
    (tags::PATIENT_WEIGHT, VR::DS, false),
    (tags::STUDY_DATE, VR::DA, true),
    (tags::STUDY_TIME, VR::TM, true),
    (tags::REFERRING_PHYSICIAN_NAME, VR::PN, true),
    (tags::STUDY_ID, VR::SH, true),
    (tags::ACCESSION_NUMBER, VR::SH, true),
    (tags::STUDY_DESCRIPTION, VR::LO, false),
    (tags::BODY_PART_EXAMINED, VR::CS, false),
    (tags::LATERALITY, VR::CS, true),
];

/// General Series / Frame of Reference attributes of CT and MR images (type 2 and 2C).
const PATIENT_SPACE: &[(Tag, VR, bool)] = &[
    (tags::PATIENT_POSITION, VR::CS, true),
    (tags::POSITION_REFERENCE_INDICATOR, VR::LO, true),
];

/// Acquisition attributes of the CT and MR Image modules (copied when present; type 1 MR
/// attributes get a neutral value when absent).
const CT_ATTRIBUTES: &[(Tag, VR, bool)] = &[
    (tags::KVP, VR::DS, true),
    (tags::ACQUISITION_NUMBER, VR::IS, true),
    (tags::WINDOW_CENTER, VR::DS, false),
    (tags::WINDOW_WIDTH, VR::DS, false),
];
const MR_ATTRIBUTES: &[(Tag, VR, bool)] = &[
    (tags::SCAN_OPTIONS, VR::CS, true),
    (tags::MR_ACQUISITION_TYPE, VR::CS, true),
    (tags::REPETITION_TIME, VR::DS, false),
    (tags::ECHO_TIME, VR::DS, true),
    (tags::ECHO_TRAIN_LENGTH, VR::IS, true),
    (tags::INVERSION_TIME, VR::DS, false),
    (tags::MAGNETIC_FIELD_STRENGTH, VR::DS, false),
    (tags::IMAGED_NUCLEUS, VR::SH, false),
    (tags::ACQUISITION_NUMBER, VR::IS, false),
];

/// The SOP class and modality of a derived series.
fn sop_class(modality: &str) -> (&'static str, &'static str) {
    match modality {
        "CT" => (uids::CT_IMAGE_STORAGE, "CT"),
        "MR" => (uids::MR_IMAGE_STORAGE, "MR"),
        _ => (uids::SECONDARY_CAPTURE_IMAGE_STORAGE, "OT"),
    }
}

/// The DICOM DS string (at most 16 characters) closest to `v`, and the value it stands for:
/// the shortest round-trip form when it fits, else the more accurate of the best fixed-point
/// and the best exponent form that fit.
fn decimal_string(v: f64) -> (String, f64) {
    let parse = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
    let plain = format!("{v}");
    if plain.len() <= 16 {
        let x = parse(&plain);
        return (plain, x);
    }
    let fixed = (0..=15usize)
        .rev()
        .map(|p| format!("{v:.p$}"))
        .find(|s| s.len() <= 16);
    let exponent = (0..=12usize)
        .rev()
        .map(|p| format!("{v:.p$e}"))
        .find(|s| s.len() <= 16);
    let best = [fixed, exponent]
        .into_iter()
        .flatten()
        .min_by(|a, b| (parse(a) - v).abs().total_cmp(&(parse(b) - v).abs()))
        .unwrap_or_else(|| "0".to_owned());
    let x = parse(&best);
    (best, x)
}

/// RescaleSlope/Intercept strings and values for data with range [lo, hi].
fn choose_rescale(lo: f32, hi: f32, all_integer: bool) -> ((String, f64), (String, f64)) {
    if all_integer && lo >= -32768.0 && hi <= 32767.0 {
        return (decimal_string(1.0), decimal_string(0.0));
    }
    let span = f64::from(hi) - f64::from(lo);
    let slope = if span > 0.0 { span / 65000.0 } else { 1.0 };
    let mid = 0.5 * (f64::from(hi) + f64::from(lo));
    (decimal_string(slope), decimal_string(mid))
}

/// Today's date (YYYYMMDD) and time (HHMMSS) in UTC.
fn now_utc() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}{m:02}{d:02}"),
        format!("{:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60),
    )
}

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn put_floats(obj: &mut InMemDicomObject, tag: Tag, values: &[f64]) {
    let strs: C<String> = values.iter().map(|&v| decimal_string(v).0).collect();
    obj.put(DataElement::new(tag, VR::DS, PrimitiveValue::Strs(strs)));
}

/// Copies `attrs` from `src` (present values), writing type 2 ones empty when absent.
fn copy_attributes(
    dst: &mut InMemDicomObject,
    src: Option<&InMemDicomObject>,
    attrs: &[(Tag, VR, bool)],
) {
    for &(tag, vr, type2) in attrs {
        match src.and_then(|s| s.get(tag)) {
            Some(e) if e.vr() != VR::SQ => {
                dst.put(DataElement::new(tag, vr, e.value().clone()));
            }
            _ if type2 => {
                dst.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
            }
            _ => {}
        }
    }
}

/// The geometry of an output slice of `dims` pixels from a source frame of `src_dims` pixels
/// covering the same field of view.
fn resample_geometry(
    g: &FrameGeometry,
    src_dims: (usize, usize),
    dims: (usize, usize),
) -> FrameGeometry {
    let mut out = g.clone();
    if let (Some(spacing), Some(o)) = (g.pixel_spacing, g.orientation) {
        let sr = spacing[0] * src_dims.0 as f64 / dims.0 as f64;
        let sc = spacing[1] * src_dims.1 as f64 / dims.1 as f64;
        out.pixel_spacing = Some([sr, sc]);
        if let Some(p) = g.position {
            let (dc, dr) = (0.5 * (sc - spacing[1]), 0.5 * (sr - spacing[0]));
            out.position = Some([0, 1, 2].map(|i| p[i] + dc * o[i] + dr * o[3 + i]));
        }
    }
    out
}

/// Everything shared by the instances of one derived series.
struct SeriesTemplate {
    base: InMemDicomObject,
    sop_class: &'static str,
    slope: f64,
    intercept: f64,
    /// Per-slice ImageComments ([`DerivedSeriesOptions::slice_comments`]).
    comments: Vec<String>,
}

impl SeriesTemplate {
    fn new(
        data: &ArrayView3<f32>,
        source: Option<&DicomVolume>,
        opts: &DerivedSeriesOptions,
    ) -> Result<Self> {
        ensure_finite("image to write as DICOM", data.iter().copied())?;
        let (n, rows, cols) = data.dim();
        if n == 0 || rows == 0 || cols == 0 || rows > 65535 || cols > 65535 {
            bail!("cannot write a DICOM series of shape {:?}", data.shape());
        }
        let src = source.map(|s| s.header.dataset());
        let modality = source.map(|s| s.header.modality()).unwrap_or_default();
        let (sop_class, out_modality) = sop_class(&modality);
        let mut base = InMemDicomObject::new_empty();
        put_str(&mut base, tags::SOP_CLASS_UID, VR::UI, sop_class);
        put_str(&mut base, tags::MODALITY, VR::CS, out_modality);
        copy_attributes(&mut base, src, PATIENT_STUDY);
        if out_modality == "OT" {
            // No Image Plane module: General Image's Patient Orientation (type 2C) instead.
            base.put(DataElement::new(
                tags::PATIENT_ORIENTATION,
                VR::CS,
                PrimitiveValue::Empty,
            ));
        } else {
            copy_attributes(&mut base, src, PATIENT_SPACE);
        }
        match out_modality {
            "CT" => copy_attributes(&mut base, src, CT_ATTRIBUTES),
            "MR" => {
                copy_attributes(&mut base, src, MR_ATTRIBUTES);
                for (tag, default) in [
                    (tags::SCANNING_SEQUENCE, "RM"),
                    (tags::SEQUENCE_VARIANT, "NONE"),
                ] {
                    let v = src
                        .and_then(|s| element_string(s, tag))
                        .unwrap_or_else(|| default.to_owned());
                    put_str(&mut base, tag, VR::CS, &v);
                }
            }
            _ => put_str(&mut base, tags::CONVERSION_TYPE, VR::CS, "WSD"),
        }
        let study_uid = src
            .and_then(|s| element_string(s, tags::STUDY_INSTANCE_UID))
            .unwrap_or_else(new_uid);
        put_str(&mut base, tags::STUDY_INSTANCE_UID, VR::UI, &study_uid);
        if out_modality != "OT" {
            let frame_uid = src
                .and_then(|s| element_string(s, tags::FRAME_OF_REFERENCE_UID))
                .unwrap_or_else(new_uid);
            put_str(&mut base, tags::FRAME_OF_REFERENCE_UID, VR::UI, &frame_uid);
        }
        put_str(&mut base, tags::SERIES_INSTANCE_UID, VR::UI, &new_uid());
        put_str(
            &mut base,
            tags::SERIES_NUMBER,
            VR::IS,
            &opts.series_number.to_string(),
        );
        let description: String = opts.description.chars().take(64).collect();
        put_str(&mut base, tags::SERIES_DESCRIPTION, VR::LO, &description);
        if !opts.derivation.is_empty() {
            let derivation: String = opts.derivation.chars().take(1024).collect();
            put_str(&mut base, tags::DERIVATION_DESCRIPTION, VR::ST, &derivation);
        }
        // ImageType: DERIVED\SECONDARY, and for CT/MR the source's value 3 (AXIAL, OTHER, ...).
        let mut image_type: C<String> = ["DERIVED", "SECONDARY"]
            .map(String::from)
            .into_iter()
            .collect();
        if out_modality != "OT" {
            let default = if out_modality == "CT" {
                "AXIAL"
            } else {
                "OTHER"
            };
            let third = src
                .and_then(|s| {
                    s.get(tags::IMAGE_TYPE)?
                        .to_multi_str()
                        .ok()?
                        .get(2)
                        .cloned()
                })
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned());
            image_type.push(third);
        }
        base.put(DataElement::new(
            tags::IMAGE_TYPE,
            VR::CS,
            PrimitiveValue::Strs(image_type),
        ));
        put_str(&mut base, tags::MANUFACTURER, VR::LO, "medsgm");
        put_str(
            &mut base,
            tags::SOFTWARE_VERSIONS,
            VR::LO,
            env!("CARGO_PKG_VERSION"),
        );
        put_str(&mut base, tags::BURNED_IN_ANNOTATION, VR::CS, "NO");
        // Image pixel module: signed 16-bit grayscale.
        base.put(DataElement::new(
            tags::SAMPLES_PER_PIXEL,
            VR::US,
            PrimitiveValue::from(1u16),
        ));
        put_str(
            &mut base,
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            "MONOCHROME2",
        );
        base.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(rows as u16),
        ));
        base.put(DataElement::new(
            tags::COLUMNS,
            VR::US,
            PrimitiveValue::from(cols as u16),
        ));
        for tag in [tags::BITS_ALLOCATED, tags::BITS_STORED] {
            base.put(DataElement::new(tag, VR::US, PrimitiveValue::from(16u16)));
        }
        base.put(DataElement::new(
            tags::HIGH_BIT,
            VR::US,
            PrimitiveValue::from(15u16),
        ));
        base.put(DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(1u16),
        ));
        // Modality LUT.
        let (lo, hi) = data
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let all_integer = data.iter().all(|v| v.fract() == 0.0);
        let ((slope_s, slope), (icpt_s, intercept)) = choose_rescale(lo, hi, all_integer);
        put_str(&mut base, tags::RESCALE_SLOPE, VR::DS, &slope_s);
        put_str(&mut base, tags::RESCALE_INTERCEPT, VR::DS, &icpt_s);
        put_str(
            &mut base,
            tags::RESCALE_TYPE,
            VR::LO,
            if out_modality == "CT" { "HU" } else { "US" },
        );
        // Padding (outside the field of view) written back as padding: the source's padded
        // value, stored with this series' rescale.
        if let Some(p) = source.and_then(|s| s.padding()) {
            let raw = ((f64::from(p.hi) - intercept) / slope).round();
            if data.iter().any(|&v| p.contains(v)) && (-32768.0..=32767.0).contains(&raw) {
                base.put(DataElement::new(
                    tags::PIXEL_PADDING_VALUE,
                    VR::SS,
                    PrimitiveValue::from(raw as i16),
                ));
            }
        }
        if opts.anonymize {
            deidentify(&mut base);
            put_str(&mut base, tags::PATIENT_IDENTITY_REMOVED, VR::CS, "YES");
            put_str(
                &mut base,
                tags::DEIDENTIFICATION_METHOD,
                VR::LO,
                DEIDENTIFICATION_METHOD,
            );
        } else {
            let (date, time) = now_utc();
            for (d, t) in [
                (tags::INSTANCE_CREATION_DATE, tags::INSTANCE_CREATION_TIME),
                (tags::SERIES_DATE, tags::SERIES_TIME),
                (tags::CONTENT_DATE, tags::CONTENT_TIME),
            ] {
                put_str(&mut base, d, VR::DA, &date);
                put_str(&mut base, t, VR::TM, &time);
            }
        }
        let non_ascii = base
            .iter()
            .any(|e| e.to_str().map(|s| !s.is_ascii()).unwrap_or(false));
        if non_ascii {
            put_str(
                &mut base,
                tags::SPECIFIC_CHARACTER_SET,
                VR::CS,
                "ISO_IR 192",
            );
        }
        Ok(SeriesTemplate {
            base,
            sop_class,
            slope,
            intercept,
            comments: opts.slice_comments.clone(),
        })
    }

    /// The complete file object of slice `k` with geometry `geometry`.
    fn instance(
        &self,
        k: usize,
        slice: &ArrayView2<f32>,
        geometry: Option<&FrameGeometry>,
    ) -> Result<FileDicomObject<InMemDicomObject>> {
        let mut obj = self.base.clone();
        if let Some(comment) = self.comments.get(k).filter(|c| !c.is_empty()) {
            let comment: String = comment.chars().take(10240).collect();
            put_str(&mut obj, tags::IMAGE_COMMENTS, VR::LT, &comment);
        }
        let sop_uid = new_uid();
        put_str(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, &sop_uid);
        put_str(
            &mut obj,
            tags::INSTANCE_NUMBER,
            VR::IS,
            &(k + 1).to_string(),
        );
        if let Some(g) = geometry {
            if let Some(p) = g.position {
                put_floats(&mut obj, tags::IMAGE_POSITION_PATIENT, &p);
                if let Some(n) = g.normal() {
                    put_floats(
                        &mut obj,
                        tags::SLICE_LOCATION,
                        &[p[0] * n[0] + p[1] * n[1] + p[2] * n[2]],
                    );
                }
            }
            if let Some(o) = g.orientation {
                put_floats(&mut obj, tags::IMAGE_ORIENTATION_PATIENT, &o);
            }
            if let Some(s) = g.pixel_spacing {
                put_floats(&mut obj, tags::PIXEL_SPACING, &s);
            }
            match g.slice_thickness {
                Some(t) => put_floats(&mut obj, tags::SLICE_THICKNESS, &[t]),
                None => obj
                    .put(DataElement::new(
                        tags::SLICE_THICKNESS,
                        VR::DS,
                        PrimitiveValue::Empty,
                    ))
                    .map_or((), |_| ()),
            }
        }
        let stored: C<u16> = slice
            .iter()
            .map(|&v| {
                let q = ((f64::from(v) - self.intercept) / self.slope)
                    .round()
                    .clamp(-32768.0, 32767.0);
                (q as i16) as u16
            })
            .collect();
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(stored),
        ));
        obj.with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .media_storage_sop_class_uid(self.sop_class)
                .media_storage_sop_instance_uid(sop_uid)
                .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
                .implementation_version_name(IMPLEMENTATION_VERSION_NAME),
        )
        .map_err(|e| anyhow!("cannot build the file meta information: {e}"))
    }
}

/// The geometry of every output slice, from the source volume when one is given.
fn output_geometry(
    data: &ArrayView3<f32>,
    source: Option<&DicomVolume>,
) -> Result<Vec<Option<FrameGeometry>>> {
    let (n, rows, cols) = data.dim();
    match source {
        None => Ok(vec![None; n]),
        Some(src) => {
            if src.frames.len() != n {
                bail!(
                    "the output has {n} slices, its DICOM source {}",
                    src.frames.len()
                );
            }
            let src_dims = (src.data.len_of(Axis(1)), src.data.len_of(Axis(2)));
            Ok(src
                .frames
                .iter()
                .map(|g| Some(resample_geometry(g, src_dims, (rows, cols))))
                .collect())
        }
    }
}

/// Encodes `obj` in memory, then writes the bytes atomically: an encoding problem and an I/O
/// failure (e.g. "No space left on device") are reported as what they are (the encoder's
/// own writer error hid the cause behind "Could not print data set").
fn write_file(path: &Path, obj: &FileDicomObject<InMemDicomObject>) -> Result<()> {
    let mut bytes = Vec::new();
    obj.write_all(&mut bytes)
        .map_err(|e| anyhow!("cannot encode DICOM: {e}"))?;
    write_bytes_atomic(path, &bytes)
}

/// Writes `data` [slice, row, col] (modality units, e.g. HU) as a new derived series in the
/// folder `dir` (created; it must not exist or be empty), one file `slice_NNNN.dcm` per slice.
/// `source`, when given, must have as many slices as `data`.
pub fn write_derived_series(
    dir: &Path,
    data: &ArrayView3<f32>,
    source: Option<&DicomVolume>,
    opts: &DerivedSeriesOptions,
) -> Result<WrittenSeries> {
    let ctx = || format!("cannot write DICOM series {}", dir.display());
    let geometry = output_geometry(data, source).with_context(ctx)?;
    let template = SeriesTemplate::new(data, source, opts).with_context(ctx)?;
    if dir.exists() && std::fs::read_dir(dir).with_context(ctx)?.next().is_some() {
        return Err(anyhow!("the output folder is not empty")).with_context(ctx);
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = crate::io::atomic::output_builder(true)
        .prefix(".medsgm-tmp-series-")
        .tempdir_in(&parent)
        .with_context(ctx)?;
    let mut names = Vec::with_capacity(data.len_of(Axis(0)));
    for (k, (slice, g)) in data.outer_iter().zip(&geometry).enumerate() {
        let name = format!("slice_{:04}.dcm", k + 1);
        let obj = template.instance(k, &slice, g.as_ref()).with_context(ctx)?;
        write_file(&tmp.path().join(&name), &obj).with_context(ctx)?;
        names.push(name);
    }
    if dir.exists() {
        std::fs::remove_dir(dir).with_context(ctx)?;
    }
    let tmp_path = tmp.keep();
    std::fs::rename(&tmp_path, dir)
        .map_err(|e| {
            let _ = std::fs::remove_dir_all(&tmp_path);
            anyhow!("cannot move the series into place: {e}")
        })
        .with_context(ctx)?;
    Ok(WrittenSeries {
        series_instance_uid: element_string(&template.base, tags::SERIES_INSTANCE_UID)
            .unwrap_or_default(),
        files: names.into_iter().map(|n| dir.join(n)).collect(),
        rescale: (template.slope, template.intercept),
    })
}

/// Writes one 2-D image as a single-instance derived series file at `path` (atomically).
/// `source`, when given, must be a one-slice volume (see [`DicomVolume::slice`]).
pub fn write_derived_file(
    path: &Path,
    image: &ArrayView2<f32>,
    source: Option<&DicomVolume>,
    opts: &DerivedSeriesOptions,
) -> Result<()> {
    let ctx = || format!("cannot write DICOM file {}", path.display());
    let data = image.view().insert_axis(Axis(0));
    let geometry = output_geometry(&data, source).with_context(ctx)?;
    let template = SeriesTemplate::new(&data, source, opts).with_context(ctx)?;
    let obj = template
        .instance(0, image, geometry[0].as_ref())
        .with_context(ctx)?;
    write_file(path, &obj).with_context(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_fit_and_are_accurate() {
        for v in [
            1.0,
            -1024.0,
            10.000000000000002,
            -158.13580312345678,
            3.104615349e-5,
            2.5e-12,
            1.234e22,
            -0.1,
        ] {
            let (s, x) = decimal_string(v);
            assert!(s.len() <= 16, "{s}");
            assert_eq!(s.parse::<f64>().unwrap(), x);
            assert!((x - v).abs() <= 1e-9 * v.abs(), "{v} -> {s}");
        }
        assert_eq!(decimal_string(10.000000000000002).0, "10.0000000000000");
    }

    #[test]
    fn rescale_covers_the_range_in_int16() {
        let ((_, m), (_, b)) = choose_rescale(-1000.5, 3000.25, false);
        for v in [-1000.5f64, 3000.25] {
            let q = ((v - b) / m).round();
            assert!((-32768.0..=32767.0).contains(&q));
            assert!((m * q + b - v).abs() <= 0.5 * m + 1e-9);
        }
        assert_eq!(choose_rescale(-1024.0, 3071.0, true).0 .1, 1.0);
        assert_eq!(choose_rescale(5.0, 5.0, false).0 .1, 1.0);
    }

    #[test]
    fn civil_date_is_well_formed() {
        let (d, t) = now_utc();
        assert_eq!((d.len(), t.len()), (8, 6));
        assert!(d.as_str() >= "20240101");
    }
}
