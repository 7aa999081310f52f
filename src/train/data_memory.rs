//! The memory a training data source takes when it is built, estimated from file headers
//! before any image is decoded, so that `medsgm train --max-memory` refuses data that cannot
//! fit (exit 2) instead of running out of memory while loading it. Generous counts of the
//! large buffers, in the conventions of `recon`'s estimates ([`crate::io::memory`]):
//!
//! - NIfTI volume: the decoder's raw and converted copies and the f32 volume
//!   (8 + 3 × 4 bytes per voxel of the header's dimensions), then the pool of training slices
//!   (every slice along the axis at the model size, or at the native size for patch priors);
//! - NIfTI volume set: each volume as above, twice (its slices resampled to the common spacing);
//! - DICOM series: the largest series read at once (per-file frames, their concatenation and
//!   the raw pixel data, 2 × 4 + 2 bytes per declared pixel, and a percentile copy) and the
//!   pool of all declared frames at the model size;
//! - image folder: the largest image read at once (its file bytes and 16 bytes per pixel of
//!   its header's dimensions) and the pool of all images at the model size;
//! - phantoms: generated per draw, nothing held.

use super::data::{folder_images, DataConfig};
use crate::io::memory::{bytes_of, F32};
use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;

impl DataConfig {
    /// The file or folder the images are read from (None for generated phantoms).
    pub fn path(&self) -> Option<&Path> {
        match self {
            DataConfig::Folder { path, .. } => Some(path),
            DataConfig::NiftiSlices(v) => Some(&v.path),
            DataConfig::DicomSeries(d) => Some(&d.path),
            DataConfig::NiftiVolumes(set) => set.volumes.first().map(|v| v.path.as_path()),
            DataConfig::PhantomEllipses { .. } | DataConfig::PhantomAnatomical { .. } => None,
        }
    }

    /// Estimated peak memory (bytes) of building this source for `size²` images and holding
    /// its images, from the files' headers (no image is decoded); an error names a file whose
    /// header cannot be read.
    pub fn memory_bytes(&self, size: usize) -> Result<u64> {
        let image = (size as u64).saturating_mul(size as u64);
        match self {
            DataConfig::PhantomEllipses { .. } | DataConfig::PhantomAnatomical { .. } => Ok(0),
            DataConfig::NiftiSlices(v) => {
                let shape = crate::io::nifti_io::read_nifti_shape(&v.path)?;
                let voxels = shape.iter().map(|&d| d as u64).fold(1, u64::saturating_mul);
                let pool = match (&v.patches, shape.get(v.axis)) {
                    (Some(_), _) => voxels,
                    (None, Some(&n)) => (n as u64).saturating_mul(image),
                    // an axis out of range is refused when the source is built
                    (None, None) => 0,
                };
                Ok(bytes_of(&[(voxels, 8 + 3 * F32), (pool, F32)]))
            }
            // Each volume as a patch source (its resampled slices are at most its voxels again).
            DataConfig::NiftiVolumes(set) => set.volumes.iter().try_fold(0u64, |sum, v| {
                let one = DataConfig::NiftiSlices(v.clone()).memory_bytes(size)?;
                Ok(sum.saturating_add(one.saturating_mul(2)))
            }),
            DataConfig::DicomSeries(d) => {
                let series = crate::io::dicom::scan_series(&d.path)
                    .with_context(|| format!("dicom-series: scanning {}", d.path.display()))?;
                let largest = series.iter().map(|s| s.pixels).max().unwrap_or(0);
                let frames = series.iter().map(|s| s.frames).fold(0, u64::saturating_add);
                Ok(bytes_of(&[
                    (largest, 3 * F32 + 2),
                    (frames.saturating_mul(image), F32),
                ]))
            }
            DataConfig::Folder { path, .. } => {
                let files = folder_images(path)?;
                let mut largest = 0u64;
                for file in &files {
                    largest = largest.max(image_read_bytes(file)?);
                }
                Ok(bytes_of(&[
                    (largest, 1),
                    ((files.len() as u64).saturating_mul(image), F32),
                ]))
            }
        }
    }
}

/// The memory of reading one `.png` / `.npy` training image: its file bytes and 16 bytes per
/// pixel its header declares (decoded samples, f32 copy, scaled copy).
fn image_read_bytes(path: &Path) -> Result<u64> {
    let file_bytes = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let pixels = match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => npy_elements(path)?,
        _ => {
            let (w, h) = image::image_dimensions(path)
                .with_context(|| format!("cannot read the PNG header of {}", path.display()))?;
            u64::from(w) * u64::from(h)
        }
    };
    Ok(bytes_of(&[(file_bytes, 1), (pixels, 16)]))
}

/// The element count an NPY file's header declares, reading the header only.
fn npy_elements(path: &Path) -> Result<u64> {
    use crate::io::npy::{parse_header, MAX_HEADER_LEN};
    let mut prefix = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(12 + MAX_HEADER_LEN as u64).read_to_end(&mut prefix))
        .with_context(|| format!("reading {}", path.display()))?;
    let (header, _) = parse_header(&prefix)
        .with_context(|| format!("cannot read the NPY header of {}", path.display()))?;
    Ok(header
        .shape
        .iter()
        .map(|&d| d as u64)
        .fold(1, u64::saturating_mul))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phantoms_hold_nothing_and_have_no_path() {
        let c = DataConfig::PhantomEllipses { n_ellipses: 3 };
        assert_eq!(c.memory_bytes(64).unwrap(), 0);
        assert!(c.path().is_none());
    }

    #[test]
    fn a_folder_counts_its_largest_image_and_the_pool_from_headers() {
        let dir = tempfile::tempdir().unwrap();
        let big = ndarray::Array2::<f32>::zeros((100, 50)).into_dyn();
        crate::io::npy::write_npy(&dir.path().join("a.npy"), &big.view()).unwrap();
        let small = ndarray::Array2::<f32>::zeros((4, 4)).into_dyn();
        crate::io::npy::write_npy(&dir.path().join("b.npy"), &small.view()).unwrap();
        let c = DataConfig::Folder {
            path: dir.path().to_owned(),
            flip: false,
        };
        let file = std::fs::metadata(dir.path().join("a.npy")).unwrap().len();
        assert_eq!(
            c.memory_bytes(8).unwrap(),
            file + 5000 * 16 + 2 * 64 * 4,
            "the largest file and its pixels, then two 8² images"
        );
    }

    #[test]
    fn an_unreadable_header_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.npy"), b"not an npy file").unwrap();
        let c = DataConfig::Folder {
            path: dir.path().to_owned(),
            flip: false,
        };
        let e = format!("{:#}", c.memory_bytes(8).unwrap_err());
        assert!(e.contains("bad.npy"), "{e}");
    }
}
