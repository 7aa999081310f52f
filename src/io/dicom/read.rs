//! Reading DICOM Part 10 files into modality-value arrays (HU for CT).
//!
//! Pipeline per file: check the size and the `DICM` marker; read the file meta information and
//! refuse, with the transfer syntax named, anything the pure-Rust codecs cannot decode; check
//! the declared value lengths against the file ([`super::prescan`]); parse; re-read VR UN
//! elements with their dictionary VR ([`super::vr_un`]); validate the image dimensions against
//! [`MAX_PIXELS`] and the stored pixel bytes; decode with dicom-pixeldata, which applies the
//! modality LUT (PS3.3 C.11.1: value = RescaleSlope · stored + RescaleIntercept, the slope and
//! intercept taken from the top level or the Pixel Value Transformation functional group, per
//! frame); and, for MONOCHROME1, map v ↦ lo + hi − v where [lo, hi] is the rescaled range of
//! the stored values (2^BitsStored codes), so that larger values always mean brighter.
//!
//! Parser or decoder panics on hostile input are caught and reported as errors (the fuzzer in
//! tests/dicom_robustness.rs finds such panics in dicom-rs's RLE decoder; its panic message is
//! still printed by the default panic hook).

use super::geometry::{frame_geometries, slice_order, FrameGeometry, SliceOrder};
use super::{prescan, vr_un};
use anyhow::{anyhow, bail, Context, Result};
use dicom::dictionary_std::tags;
use dicom::encoding::TransferSyntaxIndex;
use dicom::object::{DefaultDicomObject, FileMetaTable, InMemDicomObject, OpenFileOptions};
use dicom::pixeldata::PixelDecoder;
use dicom::transfer_syntax::TransferSyntaxRegistry;
use ndarray::{Array3, Axis};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Largest image accepted, in pixels over all frames (2³⁰, as for NIfTI).
pub const MAX_PIXELS: usize = 1 << 30;

/// The data set of a source instance without its pixel data: the template from which derived
/// series copy patient, study and equipment attributes. Its `Debug` output names only
/// non-identifying attributes (modality, SOP class, transfer syntax).
#[derive(Clone, PartialEq)]
pub struct DicomHeader {
    dataset: InMemDicomObject,
    transfer_syntax: String,
}

impl std::fmt::Debug for DicomHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DicomHeader")
            .field("modality", &self.modality())
            .field("sop_class_uid", &self.string(tags::SOP_CLASS_UID))
            .field("transfer_syntax", &self.transfer_syntax)
            .finish_non_exhaustive()
    }
}

impl DicomHeader {
    /// The trimmed string value of `tag` at the top level, if present and non-empty.
    pub fn string(&self, tag: dicom::core::Tag) -> Option<String> {
        element_string(&self.dataset, tag)
    }

    /// Modality (e.g. "CT", "MR"); empty when absent.
    pub fn modality(&self) -> String {
        self.string(tags::MODALITY).unwrap_or_default()
    }

    /// The transfer syntax UID of the file the header was read from.
    pub fn transfer_syntax(&self) -> &str {
        &self.transfer_syntax
    }

    /// The underlying data set (pixel data removed).
    pub fn dataset(&self) -> &InMemDicomObject {
        &self.dataset
    }
}

/// The trimmed string value of `tag`, if present and non-empty.
pub(crate) fn element_string(obj: &InMemDicomObject, tag: dicom::core::Tag) -> Option<String> {
    let s = obj.get(tag)?.to_str().ok()?;
    let t = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!t.is_empty()).then(|| t.to_owned())
}

/// Slices of one DICOM file or series, in modality units, ordered along the slice normal.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomVolume {
    /// Values [slice, row, col] after the modality LUT (HU for CT) and MONOCHROME1 inversion.
    pub data: Array3<f32>,
    /// Geometry of each slice, in the order of `data`.
    pub frames: Vec<FrameGeometry>,
    /// How the slices were ordered.
    pub order: SliceOrder,
    /// Whether MONOCHROME1 values were inverted.
    pub inverted: bool,
    /// Header of the first source instance.
    pub header: DicomHeader,
    /// The file each slice came from.
    pub files: Vec<PathBuf>,
}

impl DicomVolume {
    /// The Pixel Padding Value (and Range Limit) of the series, in modality units.
    pub fn padding(&self) -> Option<super::Padding> {
        super::Padding::from_header(&self.header)
    }

    /// The in-plane pixel spacing (mm) of the first slice: the mean of its row and column
    /// spacings, when PixelSpacing gives positive finite values.
    pub fn in_plane_spacing_mm(&self) -> Option<f32> {
        self.frames
            .first()
            .and_then(|f| f.pixel_spacing)
            .map(|[r, c]| ((r + c) / 2.0) as f32)
            .filter(|s| s.is_finite() && *s > 0.0)
    }

    /// Whether the values are Hounsfield units (modality CT after the modality LUT).
    pub fn is_hu(&self) -> bool {
        self.header.modality() == "CT"
    }

    /// The one-slice volume holding slice `k` (e.g. the source of a 2-D reconstruction).
    pub fn slice(&self, k: usize) -> Result<DicomVolume> {
        let n = self.frames.len();
        if k >= n {
            bail!("slice {k} does not exist: the volume has {n} slices");
        }
        Ok(DicomVolume {
            data: self.data.select(Axis(0), &[k]),
            frames: vec![self.frames[k].clone()],
            order: self.order,
            inverted: self.inverted,
            header: self.header.clone(),
            files: vec![self.files[k].clone()],
        })
    }
}

/// Reads the file, checks its length, `DICM` marker and meta group lengths, and returns the
/// bytes after the marker with the parsed file meta information.
fn read_meta(path: &Path) -> Result<(Vec<u8>, FileMetaTable)> {
    let bytes = std::fs::read(path).context("cannot read the file")?;
    if bytes.len() < 132 {
        bail!(
            "the file has {} bytes, too short for a DICOM Part 10 file",
            bytes.len()
        );
    }
    if &bytes[128..132] != b"DICM" {
        bail!("not a DICOM Part 10 file (no \"DICM\" marker at byte 128)");
    }
    prescan::check_meta(&bytes[132..])?;
    let meta = catch_unwind(AssertUnwindSafe(|| {
        FileMetaTable::from_reader(&bytes[128..])
    }))
    .map_err(|_| anyhow!("the file meta information is malformed"))?
    .map_err(|e| anyhow!("cannot read the file meta information: {e}"))?;
    Ok((bytes, meta))
}

/// The transfer syntax UID of `meta`, checked to be one medsgm can fully decode.
fn check_transfer_syntax(meta: &FileMetaTable) -> Result<String> {
    let uid = meta
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_owned();
    let ts = TransferSyntaxRegistry.get(&uid).ok_or_else(|| {
        anyhow!("unknown transfer syntax {uid:?}: medsgm cannot decode this file")
    })?;
    if !ts.can_decode_all() {
        bail!(
            "transfer syntax {} ({uid}) is not supported: medsgm decodes uncompressed, deflated, RLE, JPEG baseline/extended/lossless and JPEG 2000 data only; convert the file first (e.g. `gdcmconv --raw` or `dcmdjpls`)",
            ts.name()
        );
    }
    Ok(uid)
}

/// Opens a DICOM file with full checks; `headers_only` stops before the pixel data.
pub(crate) fn open_checked(
    path: &Path,
    headers_only: bool,
) -> Result<(DefaultDicomObject, String)> {
    let (bytes, meta) = read_meta(path)?;
    let ts = check_transfer_syntax(&meta)?;
    let end = 132 + prescan::check_dataset(&bytes[132..], &ts)?;
    let mut opts = OpenFileOptions::new();
    if headers_only {
        opts = opts.read_until(tags::PIXEL_DATA);
    }
    let mut obj = catch_unwind(AssertUnwindSafe(|| opts.from_reader(&bytes[128..end])))
        .map_err(|_| anyhow!("the DICOM parser failed on malformed data"))?
        .map_err(|e| anyhow!("cannot parse the data set: {e}"))?;
    vr_un::reread_un_elements(&mut obj);
    Ok((obj, ts))
}

/// An unsigned attribute, with a name for the error.
fn required_u32(obj: &InMemDicomObject, tag: dicom::core::Tag, name: &str) -> Result<u32> {
    obj.get(tag)
        .ok_or_else(|| anyhow!("{name} is missing"))?
        .to_int::<u32>()
        .map_err(|e| anyhow!("{name} is not a valid number: {e}"))
}

/// The numbers a reconstruction depends on, where present at the top level: RescaleSlope
/// finite and non-zero, RescaleIntercept finite (a "NaN" slope must not silently become 1, nor
/// a zero slope give a constant image), PixelSpacing two positive finite values (not silently
/// dropped).
fn check_numbers(obj: &InMemDicomObject) -> Result<()> {
    let text = |tag| element_string(obj, tag).map(|s| s.trim().to_owned());
    let number = |name: &str, raw: &str| -> Result<f64> {
        raw.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| anyhow!("{name} {raw:?} is not a finite number"))
    };
    if let Some(raw) = text(tags::RESCALE_SLOPE).filter(|s| !s.is_empty()) {
        if number("RescaleSlope", &raw)? == 0.0 {
            bail!("RescaleSlope is 0: every pixel would have the same value");
        }
    }
    if let Some(raw) = text(tags::RESCALE_INTERCEPT).filter(|s| !s.is_empty()) {
        number("RescaleIntercept", &raw)?;
    }
    if let Some(raw) = text(tags::PIXEL_SPACING).filter(|s| !s.is_empty()) {
        let values: Vec<&str> = raw.split('\\').map(str::trim).collect();
        let ok = values.len() == 2
            && values
                .iter()
                .all(|v| v.parse::<f64>().is_ok_and(|x| x.is_finite() && x > 0.0));
        if !ok {
            bail!("PixelSpacing {raw:?} is not two positive numbers (mm)");
        }
    }
    Ok(())
}

/// Checks the image attributes before decoding; returns the number of frames.
fn validate_image(obj: &InMemDicomObject) -> Result<usize> {
    if obj.get(tags::PIXEL_DATA).is_none() {
        let what = if obj.get(tags::FLOAT_PIXEL_DATA).is_some()
            || obj.get(tags::DOUBLE_FLOAT_PIXEL_DATA).is_some()
        {
            "float pixel data are not supported".to_owned()
        } else {
            format!(
                "there is no Pixel Data: modality {:?} is not an image",
                element_string(obj, tags::MODALITY).unwrap_or_default()
            )
        };
        bail!("{what}");
    }
    let rows = required_u32(obj, tags::ROWS, "Rows")? as usize;
    let cols = required_u32(obj, tags::COLUMNS, "Columns")? as usize;
    let frames = match obj.get(tags::NUMBER_OF_FRAMES) {
        Some(e) => e
            .to_int::<i64>()
            .map_err(|e| anyhow!("NumberOfFrames is not a valid number: {e}"))?,
        None => 1,
    };
    let spp = obj
        .get(tags::SAMPLES_PER_PIXEL)
        .and_then(|e| e.to_int::<u32>().ok())
        .unwrap_or(1);
    if spp != 1 {
        bail!(
            "the image has {spp} samples per pixel ({}); medsgm needs grayscale images",
            element_string(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default()
        );
    }
    if rows == 0 || cols == 0 || frames < 1 {
        bail!("invalid image dimensions: {rows} rows, {cols} columns, {frames} frames");
    }
    let frames = usize::try_from(frames)?;
    let pixels = rows
        .checked_mul(cols)
        .and_then(|p| p.checked_mul(frames))
        .filter(|&p| p <= MAX_PIXELS)
        .ok_or_else(|| {
            anyhow!("image of {frames} × {rows} × {cols} pixels exceeds the limit of {MAX_PIXELS}")
        })?;
    let bits = required_u32(obj, tags::BITS_ALLOCATED, "BitsAllocated")?;
    if ![1, 8, 16].contains(&bits) {
        bail!("BitsAllocated {bits} is not supported (1, 8 or 16)");
    }
    // The modality LUT has 2^BitsStored entries; the decoder asserts 1 ≤ BitsStored ≤ 32.
    let stored = required_u32(obj, tags::BITS_STORED, "BitsStored")?;
    if stored == 0 || stored > bits {
        bail!("BitsStored {stored} is not in 1..=BitsAllocated ({bits})");
    }
    check_numbers(obj)?;
    let pixel_data = obj.get(tags::PIXEL_DATA).map(|e| e.value());
    if let Some(dicom::core::value::Value::Primitive(p)) = pixel_data {
        let need = (pixels * bits as usize).div_ceil(8);
        let have = p.calculate_byte_len();
        if have < need {
            bail!("truncated pixel data: {frames} × {rows} × {cols} pixels of {bits} bits need {need} bytes, the file holds {have}");
        }
    }
    Ok(frames)
}

/// Decodes the frames of an opened object into [frame, row, col] modality values.
fn decode(obj: &DefaultDicomObject, ts: &str) -> Result<(Array3<f32>, bool)> {
    let decoded = catch_unwind(AssertUnwindSafe(|| obj.decode_pixel_data()))
        .map_err(|_| anyhow!("the pixel decoder failed on malformed data"))?
        .map_err(|e| {
            let name = TransferSyntaxRegistry.get(ts).map_or("unknown", |t| t.name());
            anyhow!(
                "cannot decode the pixel data in transfer syntax {name} ({ts}): {e} (the pure-Rust codecs do not handle 12-bit lossy JPEG or JPEG-LS)"
            )
        })?;
    let arr = catch_unwind(AssertUnwindSafe(|| decoded.to_ndarray::<f32>()))
        .map_err(|_| anyhow!("the pixel converter failed on malformed data"))?
        .map_err(|e| anyhow!("cannot convert the pixel data: {e}"))?;
    let mut data = arr.index_axis_move(Axis(3), 0);
    let monochrome1 = decoded.photometric_interpretation().as_str() == "MONOCHROME1";
    if monochrome1 {
        let bits = u32::from(decoded.bits_stored()).clamp(1, 32);
        let signed = matches!(
            decoded.pixel_representation(),
            dicom::pixeldata::PixelRepresentation::Signed
        );
        let (smin, smax) = if signed {
            (
                -(2f64.powi(bits as i32 - 1)),
                2f64.powi(bits as i32 - 1) - 1.0,
            )
        } else {
            (0.0, 2f64.powi(bits as i32) - 1.0)
        };
        let rescale = decoded
            .rescale()
            .map_err(|e| anyhow!("invalid rescale: {e}"))?
            .to_vec();
        for (f, mut frame) in data.outer_iter_mut().enumerate() {
            let r = rescale
                .get(f)
                .or(rescale.first())
                .copied()
                .unwrap_or(dicom::pixeldata::Rescale::new(1.0, 0.0));
            let sum = (r.apply(smin) + r.apply(smax)) as f32;
            frame.mapv_inplace(|v| sum - v);
        }
    }
    Ok((data.as_standard_layout().into_owned(), monochrome1))
}

/// Reads one DICOM file (single- or multi-frame) as a volume; frames are ordered along the
/// slice normal when their positions are known (see [`slice_order`]).
pub fn read_dicom_file(path: &Path) -> Result<DicomVolume> {
    read_file_unordered(path)
        .and_then(sort_volume)
        .with_context(|| format!("cannot read DICOM file {}", path.display()))
}

/// Reads one file without reordering its frames.
pub(crate) fn read_file_unordered(path: &Path) -> Result<DicomVolume> {
    let (mut obj, ts) = open_checked(path, false)?;
    let n_frames = validate_image(&obj)?;
    let (data, inverted) = decode(&obj, &ts)?;
    if data.len_of(Axis(0)) != n_frames {
        bail!(
            "decoded {} frames, NumberOfFrames says {n_frames}",
            data.len_of(Axis(0))
        );
    }
    super::super::ensure_finite(&path.display().to_string(), data.iter().copied())?;
    let frames = frame_geometries(&obj, n_frames);
    obj.remove_element(tags::PIXEL_DATA);
    Ok(DicomVolume {
        data,
        frames,
        order: SliceOrder::InstanceNumber,
        inverted,
        header: DicomHeader {
            dataset: obj.into_inner(),
            transfer_syntax: ts,
        },
        files: vec![path.to_path_buf(); n_frames],
    })
}

/// Reorders the slices of a volume by [`slice_order`].
pub(crate) fn sort_volume(mut v: DicomVolume) -> Result<DicomVolume> {
    let (order, rule) = slice_order(&v.frames)?;
    v.data = v.data.select(Axis(0), &order);
    v.frames = order.iter().map(|&i| v.frames[i].clone()).collect();
    v.files = order.iter().map(|&i| v.files[i].clone()).collect();
    v.order = rule;
    Ok(v)
}
