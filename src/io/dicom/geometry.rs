//! Slice geometry of DICOM images (PS3.3 C.7.6.2 Image Plane module and the Enhanced
//! multi-frame functional groups C.7.6.16) and the ordering of slices into a volume.
//!
//! Patient coordinates are DICOM's LPS system in mm. `ImagePositionPatient` is the centre of the
//! first transmitted pixel; `ImageOrientationPatient` holds the row direction (along a row, i.e.
//! increasing column index) then the column direction (increasing row index). The slice normal
//! is n = row × col, and slices are ordered by the projection d = n · position (the standard
//! approach, as in dcm2niix and ITK's GDCM series reader), falling back to InstanceNumber when
//! a slice lacks position or orientation.

use anyhow::{bail, Result};
use dicom::core::Tag;
use dicom::dictionary_std::tags;
use dicom::object::InMemDicomObject;

/// Where one frame (slice) lies in patient space.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FrameGeometry {
    /// ImagePositionPatient: centre of the first pixel (mm, LPS).
    pub position: Option<[f64; 3]>,
    /// ImageOrientationPatient: row direction cosines then column direction cosines.
    pub orientation: Option<[f64; 6]>,
    /// PixelSpacing: (distance between rows, distance between columns) in mm.
    pub pixel_spacing: Option<[f64; 2]>,
    /// SliceThickness in mm.
    pub slice_thickness: Option<f64>,
    /// InstanceNumber of the file the frame came from.
    pub instance_number: Option<i64>,
    /// Frame index within its file (0 for single-frame files).
    pub frame: u32,
}

impl FrameGeometry {
    /// The unit slice normal row × col, when the orientation is known and non-degenerate.
    pub fn normal(&self) -> Option<[f64; 3]> {
        let o = self.orientation?;
        let n = [
            o[1] * o[5] - o[2] * o[4],
            o[2] * o[3] - o[0] * o[5],
            o[0] * o[4] - o[1] * o[3],
        ];
        let len = n.iter().map(|v| v * v).sum::<f64>().sqrt();
        (len > 1e-6).then(|| n.map(|v| v / len))
    }
}

/// Finite floats of an element, when present and of the expected count.
fn floats<const N: usize>(obj: &InMemDicomObject, tag: Tag) -> Option<[f64; N]> {
    let v = obj.get(tag)?.to_multi_float64().ok()?;
    let arr: [f64; N] = v.try_into().ok()?;
    arr.iter().all(|x| x.is_finite()).then_some(arr)
}

/// The first item of sequence `seq` in `obj`.
fn first_item(obj: &InMemDicomObject, seq: Tag) -> Option<&InMemDicomObject> {
    obj.get(seq)?.items()?.first()
}

/// Looks `tag` up for frame `frame`: in the per-frame functional group item under `macro_seq`,
/// then in the shared functional groups, then at the top level.
fn lookup<const N: usize>(
    obj: &InMemDicomObject,
    frame: usize,
    macro_seq: Tag,
    tag: Tag,
) -> Option<[f64; N]> {
    let per_frame = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items()?.get(frame))
        .and_then(|item| first_item(item, macro_seq))
        .and_then(|m| floats(m, tag));
    let shared = || {
        first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)
            .and_then(|item| first_item(item, macro_seq))
            .and_then(|m| floats(m, tag))
    };
    per_frame.or_else(shared).or_else(|| floats(obj, tag))
}

/// The geometry of each of the `n_frames` frames of a (single- or multi-frame) data set.
pub fn frame_geometries(obj: &InMemDicomObject, n_frames: usize) -> Vec<FrameGeometry> {
    let instance_number = obj
        .get(tags::INSTANCE_NUMBER)
        .and_then(|e| e.to_int::<i64>().ok());
    (0..n_frames)
        .map(|f| FrameGeometry {
            position: lookup(
                obj,
                f,
                tags::PLANE_POSITION_SEQUENCE,
                tags::IMAGE_POSITION_PATIENT,
            ),
            orientation: lookup(
                obj,
                f,
                tags::PLANE_ORIENTATION_SEQUENCE,
                tags::IMAGE_ORIENTATION_PATIENT,
            ),
            pixel_spacing: lookup(obj, f, tags::PIXEL_MEASURES_SEQUENCE, tags::PIXEL_SPACING)
                .filter(|s: &[f64; 2]| s.iter().all(|&v| v > 0.0)),
            slice_thickness: lookup::<1>(
                obj,
                f,
                tags::PIXEL_MEASURES_SEQUENCE,
                tags::SLICE_THICKNESS,
            )
            .map(|[t]| t),
            instance_number,
            frame: u32::try_from(f).unwrap_or(u32::MAX),
        })
        .collect()
}

/// How the slices of a volume were ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceOrder {
    /// By the projection of ImagePositionPatient on the slice normal (ascending).
    Position,
    /// By InstanceNumber, then frame index (position or orientation missing).
    InstanceNumber,
}

/// The permutation that sorts `frames` into a volume, and the rule used.
///
/// Position ordering needs every frame to have a position and all frames to share one
/// orientation (within 1e-4); two frames at the same position are an error (the series holds
/// several volumes, e.g. echoes or time points). Otherwise frames are ordered by
/// (InstanceNumber, frame index).
pub fn slice_order(frames: &[FrameGeometry]) -> Result<(Vec<usize>, SliceOrder)> {
    let mut idx: Vec<usize> = (0..frames.len()).collect();
    let normal = frames.first().and_then(FrameGeometry::normal);
    let same_orientation = |f: &FrameGeometry| match (f.orientation, frames[0].orientation) {
        (Some(a), Some(b)) => a.iter().zip(b.iter()).all(|(x, y)| (x - y).abs() < 1e-4),
        _ => false,
    };
    if let Some(n) = normal.filter(|_| frames.iter().all(same_orientation)) {
        let keys: Option<Vec<f64>> = frames
            .iter()
            .map(|f| f.position.map(|p| p[0] * n[0] + p[1] * n[1] + p[2] * n[2]))
            .collect();
        if let Some(keys) = keys {
            idx.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
            if let Some(w) = idx
                .windows(2)
                .find(|w| (keys[w[1]] - keys[w[0]]).abs() < 1e-4)
            {
                bail!(
                    "two slices lie at the same position ({:.3} mm along the normal): the series holds more than one volume (echoes, phases or time points); split it first",
                    keys[w[0]]
                );
            }
            return Ok((idx, SliceOrder::Position));
        }
    } else if frames.len() > 1 && frames.iter().all(|f| f.orientation.is_some()) {
        bail!("the slices do not share one ImageOrientationPatient: not a single volume");
    }
    idx.sort_by_key(|&i| {
        (
            frames[i].instance_number.unwrap_or(i64::MAX),
            frames[i].frame,
        )
    });
    Ok((idx, SliceOrder::InstanceNumber))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(z: f64, inst: i64) -> FrameGeometry {
        FrameGeometry {
            // Oblique orientation: rows along x, columns along (0, cos30, -sin30).
            orientation: Some([1.0, 0.0, 0.0, 0.0, 0.866_025_4, -0.5]),
            position: Some([0.0, 0.5 * z, 0.866_025_4 * z]),
            instance_number: Some(inst),
            ..FrameGeometry::default()
        }
    }

    #[test]
    fn position_order_beats_instance_number() {
        let frames = vec![frame(2.0, 1), frame(-1.0, 2), frame(0.5, 3)];
        let (order, rule) = slice_order(&frames).unwrap();
        assert_eq!(rule, SliceOrder::Position);
        assert_eq!(order, vec![1, 2, 0]);
    }

    #[test]
    fn missing_position_falls_back_to_instance_number() {
        let mut frames = vec![frame(2.0, 3), frame(-1.0, 1), frame(0.5, 2)];
        frames[2].position = None;
        let (order, rule) = slice_order(&frames).unwrap();
        assert_eq!(rule, SliceOrder::InstanceNumber);
        assert_eq!(order, vec![1, 2, 0]);
    }

    #[test]
    fn duplicate_positions_are_an_error() {
        let frames = vec![frame(1.0, 1), frame(1.0, 2)];
        assert!(format!("{:#}", slice_order(&frames).unwrap_err()).contains("same position"));
    }

    #[test]
    fn normal_is_row_cross_column() {
        let n = frame(0.0, 1).normal().unwrap();
        assert!(
            (n[0]).abs() < 1e-6 && (n[1] - 0.5).abs() < 1e-6 && (n[2] - 0.866_025_4).abs() < 1e-6
        );
    }
}
