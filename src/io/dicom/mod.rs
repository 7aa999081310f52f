//! DICOM input and output with dicom-rs.
//!
//! - [`read`]: single-frame and multi-frame (Enhanced CT/MR) files → modality values (HU for CT),
//!   with the modality LUT (incl. functional groups), MONOCHROME1, VR UN re-reading and a clear
//!   error naming any transfer syntax the pure-Rust codecs cannot decode.
//! - [`series`]: folders grouped by SeriesInstanceUID, slices ordered along the slice normal.
//! - [`mod@write`]: derived series (new UIDs, DERIVED\\SECONDARY, HU-preserving rescale), with
//!   optional de-identification ([`deid`]).
//! - [`padding`]: Pixel Padding Value / Range Limit (outside the field of view: air, no metric).
//! - [`geometry`]: per-frame position/orientation/spacing and the slice ordering rule.
//!
//! - [`prescan`]: bounds check of declared value lengths before parsing; [`vr_un`]: UN
//!   elements re-read with their dictionary VR; [`uid`]: `2.25` UUID-derived UIDs.
//!
//! Decodable transfer syntaxes (pure Rust): implicit/explicit VR little endian, explicit big
//! endian, deflate, RLE Lossless, JPEG baseline/extended 8-bit/lossless, JPEG 2000 (HTJ2K is
//! registered but untested). Not decodable (clear error naming the syntax): JPEG-LS, 12-bit
//! lossy JPEG, JPEG XL, MPEG/HEVC video. Colour images, float
//! pixel data and non-image objects are rejected. Patient identifiers are never written to logs
//! or error messages: errors name files, tags, series UIDs and the transfer syntax only, and the
//! `Debug` form of a header shows modality, SOP class and transfer syntax only.

pub mod deid;
pub mod geometry;
pub mod padding;
pub mod prescan;
pub mod read;
pub mod series;
pub mod uid;
pub mod vr_un;
pub mod write;

pub use geometry::{FrameGeometry, SliceOrder};
pub use padding::Padding;
pub use read::{read_dicom_file, DicomHeader, DicomVolume, MAX_PIXELS};
pub use series::{
    declared_input_pixels, is_dicom_file, read_dicom_series, scan_series, SeriesEntry,
};
pub use write::{write_derived_file, write_derived_series, DerivedSeriesOptions, WrittenSeries};

use anyhow::Result;
use std::path::Path;

/// Reads a DICOM file, or the single series in a folder.
pub fn read_dicom(path: &Path) -> Result<DicomVolume> {
    if path.is_dir() {
        read_dicom_series(path, None)
    } else {
        read_dicom_file(path)
    }
}
