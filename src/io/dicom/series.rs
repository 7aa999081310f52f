//! DICOM series folders: grouping files by SeriesInstanceUID and stacking them into a volume.
//!
//! A folder (searched recursively) may hold several series and unrelated files. Files without a
//! `DICM` marker, DICOMDIRs and non-image objects (no Rows: reports, structure sets) are
//! skipped; every other file must parse. The files of the chosen series are
//! read (multi-frame files contribute all their frames) and the slices ordered by
//! [`super::geometry::slice_order`]: along the slice normal, else by InstanceNumber.

use super::read::{element_string, open_checked, read_file_unordered, sort_volume, DicomVolume};
use anyhow::{anyhow, bail, Context, Result};
use dicom::dictionary_std::tags;
use ndarray::{concatenate, Axis};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files of one series found in a folder.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesEntry {
    /// SeriesInstanceUID.
    pub series_instance_uid: String,
    /// Modality of the first file.
    pub modality: String,
    /// The files, sorted by path.
    pub files: Vec<PathBuf>,
    /// Pixels the files declare in their headers (Σ rows × columns × frames): what reading
    /// the series will decode, known before any pixel data is read.
    pub pixels: u64,
    /// Frames the files declare in their headers (Σ frames, one per single-frame file): the
    /// slices reading the series will give.
    pub frames: u64,
}

/// Whether `path` starts like a DICOM Part 10 file (`DICM` at byte 128).
pub fn is_dicom_file(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(128))?;
            f.read_exact(&mut magic)
        })
        .is_ok()
        && &magic == b"DICM"
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if is_dicom_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Groups the DICOM image files under `dir` by SeriesInstanceUID (reading headers only), in the
/// order of the UIDs.
pub fn scan_series(dir: &Path) -> Result<Vec<SeriesEntry>> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut groups: BTreeMap<String, SeriesEntry> = BTreeMap::new();
    for path in files {
        let (obj, _) = open_checked(&path, true)
            .with_context(|| format!("cannot read DICOM file {}", path.display()))?;
        let is_dicomdir = obj
            .meta()
            .media_storage_sop_class_uid()
            .trim_end_matches('\0')
            == "1.2.840.10008.1.3.10";
        if is_dicomdir || obj.get(tags::ROWS).is_none() {
            continue; // a DICOMDIR or a non-image object (report, structure set, ...)
        }
        let uid = element_string(&obj, tags::SERIES_INSTANCE_UID)
            .ok_or_else(|| anyhow!("{} has no SeriesInstanceUID", path.display()))?;
        let (pixels, frames) = (declared_pixels(&obj), declared_frames(&obj));
        let entry = groups.entry(uid.clone()).or_insert_with(|| SeriesEntry {
            series_instance_uid: uid,
            modality: element_string(&obj, tags::MODALITY).unwrap_or_default(),
            files: Vec::new(),
            pixels: 0,
            frames: 0,
        });
        entry.files.push(path);
        entry.pixels = entry.pixels.saturating_add(pixels);
        entry.frames = entry.frames.saturating_add(frames);
    }
    Ok(groups.into_values().collect())
}

/// Rows × columns × frames an image header declares (0 where absent or not a number).
fn declared_pixels(obj: &dicom::object::InMemDicomObject) -> u64 {
    let int = |tag| {
        obj.get(tag)
            .and_then(|e| e.to_int::<u64>().ok())
            .unwrap_or(0)
    };
    int(tags::ROWS)
        .saturating_mul(int(tags::COLUMNS))
        .saturating_mul(declared_frames(obj))
}

/// The NumberOfFrames a header declares (1 when absent or unreadable).
fn declared_frames(obj: &dicom::object::InMemDicomObject) -> u64 {
    obj.get(tags::NUMBER_OF_FRAMES)
        .and_then(|e| e.to_int::<u64>().ok())
        .unwrap_or(1)
}

/// The series of a folder: the one with `series_uid`, or the only series there.
fn select_series(dir: &Path, series_uid: Option<&str>) -> Result<SeriesEntry> {
    let series = scan_series(dir)?;
    match series_uid {
        Some(uid) => series
            .into_iter()
            .find(|s| s.series_instance_uid == uid)
            .ok_or_else(|| anyhow!("no series with SeriesInstanceUID {uid}")),
        None if series.len() > 1 => Err(anyhow!(
            "{} series found; choose one by SeriesInstanceUID: {}",
            series.len(),
            series
                .iter()
                .map(|s| format!(
                    "{} ({}, {} files)",
                    s.series_instance_uid,
                    s.modality,
                    s.files.len()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => series
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("no DICOM files found")),
    }
}

/// Reads a series from a folder: the one with `series_uid`, or the only series there.
pub fn read_dicom_series(dir: &Path, series_uid: Option<&str>) -> Result<DicomVolume> {
    let ctx = || format!("cannot read DICOM series in {}", dir.display());
    let entry = select_series(dir, series_uid).with_context(ctx)?;
    stack_files(&entry.files).with_context(ctx)
}

/// The pixels a DICOM input declares in its headers — a file, or the series `series_uid` (or
/// the only one) of a folder — read without decoding any pixel data, so the memory of a read
/// can be checked before it happens.
pub fn declared_input_pixels(path: &Path, series_uid: Option<&str>) -> Result<u64> {
    if path.is_dir() {
        Ok(select_series(path, series_uid)
            .with_context(|| format!("cannot read DICOM series in {}", path.display()))?
            .pixels)
    } else {
        let (obj, _) = open_checked(path, true)
            .with_context(|| format!("cannot read DICOM file {}", path.display()))?;
        Ok(declared_pixels(&obj))
    }
}

/// Reads the given files of one series and stacks their frames into an ordered volume.
pub fn stack_files(files: &[PathBuf]) -> Result<DicomVolume> {
    let mut parts = Vec::with_capacity(files.len());
    for path in files {
        let v = read_file_unordered(path)
            .with_context(|| format!("cannot read DICOM file {}", path.display()))?;
        if let Some(first) = parts.first() {
            let first: &DicomVolume = first;
            if first.data.shape()[1..] != v.data.shape()[1..] {
                bail!(
                    "{} has slices of {:?} pixels, {} has {:?}",
                    path.display(),
                    &v.data.shape()[1..],
                    first.files[0].display(),
                    &first.data.shape()[1..]
                );
            }
            if first.inverted != v.inverted {
                bail!("the series mixes MONOCHROME1 and MONOCHROME2 images");
            }
        }
        parts.push(v);
    }
    let mut parts = parts.into_iter();
    let mut volume = parts
        .next()
        .ok_or_else(|| anyhow!("the series has no files"))?;
    let rest: Vec<DicomVolume> = parts.collect();
    if !rest.is_empty() {
        let views: Vec<_> = std::iter::once(volume.data.view())
            .chain(rest.iter().map(|v| v.data.view()))
            .collect();
        volume.data = concatenate(Axis(0), &views)?;
        for v in rest {
            volume.frames.extend(v.frames);
            volume.files.extend(v.files);
        }
    }
    let volume = sort_volume(volume)?;
    Ok(volume)
}
