//! NIfTI-1 volumes in and out (`.nii`, `.nii.gz`) via the `nifti` crate.
//!
//! Index convention: the array index `[i, j, k]` is the NIfTI voxel index (i, j, k), i.e. the same
//! as nibabel's `img.get_fdata()[i, j, k]`; a 2-D image `[rows, cols]` is stored as a volume with
//! dim = (rows, cols, 1). The voxel-to-world affine is taken from the sform when `sform_code > 0`,
//! else from the qform (NIfTI-1 "method 2", quaternion + qfac), else diag(pixdim) ("method 1").
//! Writing from a reference header keeps its qform/sform fields, pixdim and units unchanged.
//!
//! The header is read and validated first (dimensionality, positive sizes, a bounded voxel
//! count that the file can actually hold) so a corrupt or hostile header produces an error before
//! any large allocation.

use crate::io::atomic::write_atomic_with_temp;
use crate::io::ensure_finite;
use anyhow::{anyhow, bail, Context, Result};
use ndarray::{Array2, Array3, ArrayViewD, Axis, Ix3};
use nifti::writer::WriterOptions;
use nifti::{IntoNdArray, NiftiHeader, NiftiObject, ReaderOptions};
use std::path::Path;

/// Largest volume accepted, in voxels (2³⁰ f32 voxels = 4 GiB).
pub const MAX_VOXELS: usize = 1 << 30;

/// Geometry and units of a NIfTI volume.
#[derive(Debug, Clone, PartialEq)]
pub struct NiftiMeta {
    /// Voxel (i, j, k, 1) → world (x, y, z, 1) in `units`.
    pub affine: [[f64; 4]; 4],
    /// Voxel sizes along i, j, k.
    pub pixdim: [f32; 3],
    /// NIfTI `xyzt_units` code (spatial unit in bits 0–2: 1 m, 2 mm, 3 µm).
    pub xyzt_units: u8,
    /// The header read from the file, reused as the template when writing derived volumes.
    pub reference: Option<NiftiHeader>,
    /// Text for the written header's `descrip` (cut to 79 bytes), after `medsgm <version>`;
    /// e.g. the method and the volume's uncertainty summary.
    pub description: Option<String>,
}

impl NiftiMeta {
    /// Metadata for a new volume with the given affine (spatial units: mm).
    pub fn from_affine(affine: [[f64; 4]; 4]) -> NiftiMeta {
        let col_norm = |c: usize| (0..3).map(|r| affine[r][c].powi(2)).sum::<f64>().sqrt() as f32;
        NiftiMeta {
            affine,
            pixdim: [col_norm(0), col_norm(1), col_norm(2)],
            xyzt_units: 2,
            reference: None,
            description: None,
        }
    }

    /// Identity affine, 1 mm voxels.
    pub fn identity() -> NiftiMeta {
        let mut a = [[0.0; 4]; 4];
        (0..4).for_each(|i| a[i][i] = 1.0);
        NiftiMeta::from_affine(a)
    }
}

/// A volume read from a NIfTI file.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Voxel values after the scl_slope/scl_inter rescale, indexed [i, j, k].
    pub data: Array3<f32>,
    /// Geometry.
    pub meta: NiftiMeta,
}

/// NIfTI-1 quaternion representation → 4×4 affine (NIfTI-1 standard, method 2).
fn qform_affine(h: &NiftiHeader) -> [[f64; 4]; 4] {
    let (mut b, mut c, mut d) = (
        f64::from(h.quatern_b),
        f64::from(h.quatern_c),
        f64::from(h.quatern_d),
    );
    let s = b * b + c * c + d * d;
    let a = if s >= 1.0 {
        let n = s.sqrt();
        (b, c, d) = (b / n, c / n, d / n);
        0.0
    } else {
        (1.0 - s).sqrt()
    };
    let r = [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ];
    let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    let zoom = [
        f64::from(h.pixdim[1]),
        f64::from(h.pixdim[2]),
        qfac * f64::from(h.pixdim[3]),
    ];
    let offset = [
        f64::from(h.quatern_x),
        f64::from(h.quatern_y),
        f64::from(h.quatern_z),
    ];
    let mut m = [[0.0; 4]; 4];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = r[i][j] * zoom[j];
        }
        m[i][3] = offset[i];
    }
    m[3][3] = 1.0;
    m
}

/// The voxel-to-world affine a header defines (sform, else qform, else diag(pixdim)).
pub fn header_affine(h: &NiftiHeader) -> [[f64; 4]; 4] {
    if h.sform_code > 0 {
        let row = |r: [f32; 4]| r.map(f64::from);
        [
            row(h.srow_x),
            row(h.srow_y),
            row(h.srow_z),
            [0.0, 0.0, 0.0, 1.0],
        ]
    } else if h.qform_code > 0 {
        qform_affine(h)
    } else {
        let mut m = [[0.0; 4]; 4];
        (0..3).for_each(|i| m[i][i] = f64::from(h.pixdim[i + 1]));
        m[3][3] = 1.0;
        m
    }
}

/// A readable error for the nifti crate's: its I/O errors carry no message of their own (they
/// printed as `Io(Custom { kind: UnexpectedEof, .. })`).
fn nifti_error(e: nifti::NiftiError) -> anyhow::Error {
    match e {
        nifti::NiftiError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            anyhow!("the file ends early, it is truncated ({io})")
        }
        nifti::NiftiError::Io(io) => anyhow!("{io}"),
        other => anyhow!("{other}"),
    }
}

/// Checks the header's dimensions before the data are read; returns (i, j, k) sizes. The
/// crate stores the signed `dim` as u16: values above `i16::MAX` were negative in the file.
fn validate_header(h: &NiftiHeader, path: &Path) -> Result<[usize; 3]> {
    let negative = |i: usize| -> Result<()> {
        if h.dim[i] > i16::MAX as u16 {
            bail!(
                "dim[{i}] is {} in the header: dimensions must be positive",
                h.dim[i] as i16
            );
        }
        Ok(())
    };
    negative(0)?;
    let ndim = usize::from(h.dim[0]);
    (1..=ndim.min(7)).try_for_each(negative)?;
    if !(1..=7).contains(&ndim) {
        bail!("dim[0] = {ndim} is not a valid dimensionality (1..7)");
    }
    let dims: Vec<usize> = h.dim[1..=ndim].iter().map(|&d| usize::from(d)).collect();
    if dims.contains(&0) {
        bail!("volume has a zero-sized dimension: {dims:?}");
    }
    if dims.iter().skip(3).any(|&d| d != 1) {
        bail!(
            "volume has {ndim} dimensions {dims:?}; only 2-D and 3-D volumes (extra dimensions of size 1) are supported"
        );
    }
    let voxels = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_VOXELS)
        .ok_or_else(|| anyhow!("volume {dims:?} exceeds the limit of {MAX_VOXELS} voxels"))?;
    // NIfTI-1 datatype codes (nifti1.h) medsgm reads, with their bits per voxel; the decoder
    // sizes the data by bitpix and converts by datatype, so the two must agree.
    let bits = match h.datatype {
        2 | 256 => 8,         // uint8, int8
        4 | 512 => 16,        // int16, uint16
        8 | 16 | 768 => 32,   // int32, float32, uint32
        64 | 1024 | 1280 => 64, // float64, int64, uint64
        other => bail!(
            "datatype {other} is not supported (integers, float32 and float64 only; complex and RGB volumes are not images medsgm reconstructs)"
        ),
    };
    if i32::from(h.bitpix) != bits {
        bail!(
            "bitpix {} disagrees with datatype {} ({bits} bits per voxel): the header is corrupt",
            h.bitpix,
            h.datatype
        );
    }
    let bytes_per_voxel = bits as usize / 8;
    if !path.to_string_lossy().ends_with(".gz") {
        let file_len = std::fs::metadata(path)?.len();
        let need = (h.vox_offset.max(0.0) as u64)
            .saturating_add((voxels as u64).saturating_mul(bytes_per_voxel as u64));
        if need > file_len {
            bail!(
                "header declares {dims:?} voxels needing {need} bytes, but the file has {file_len}"
            );
        }
    }
    let get = |i: usize| dims.get(i).copied().unwrap_or(1);
    Ok([get(0), get(1), get(2)])
}

/// The [i, j, k] sizes a NIfTI-1 file's header declares, checked as [`read_nifti`] checks
/// them, without reading the voxels (for a memory estimate before the read).
pub fn read_nifti_shape(path: &Path) -> Result<[usize; 3]> {
    Ok(read_nifti_grid(path)?.0)
}

/// The [i, j, k] sizes (checked as [`read_nifti_shape`]) and voxel spacings pixdim[1..=3] of
/// a NIfTI-1 file, from its header alone.
pub fn read_nifti_grid(path: &Path) -> Result<([usize; 3], [f32; 3])> {
    let ctx = || format!("cannot read NIfTI file {}", path.display());
    let header = NiftiHeader::from_file(path)
        .map_err(nifti_error)
        .with_context(ctx)?;
    let shape = validate_header(&header, path).with_context(ctx)?;
    Ok((shape, voxel_spacing(&header)))
}

/// pixdim[1..=3]: the voxel spacings along i, j, k.
fn voxel_spacing(h: &NiftiHeader) -> [f32; 3] {
    [h.pixdim[1], h.pixdim[2], h.pixdim[3]]
}

/// Reads a NIfTI-1 volume as f32 [i, j, k] plus its geometry; 2-D files give k = 1.
pub fn read_nifti(path: &Path) -> Result<Volume> {
    let ctx = || format!("cannot read NIfTI file {}", path.display());
    let header = NiftiHeader::from_file(path)
        .map_err(nifti_error)
        .with_context(ctx)?;
    let shape = validate_header(&header, path).with_context(ctx)?;
    // The nifti crate has internal `expect`s; a panic there must not take the process down.
    let data = std::panic::catch_unwind(|| -> Result<_> {
        let obj = ReaderOptions::new().read_file(path).map_err(nifti_error)?;
        obj.into_volume()
            .into_ndarray::<f32>()
            .map_err(|e| anyhow!("{e}"))
    })
    .map_err(|_| anyhow!("the NIfTI decoder failed on malformed data"))
    .and_then(|r| r)
    .with_context(ctx)?;
    let data = data
        .into_shape_clone(shape.to_vec())
        .map_err(|e| anyhow!("voxel data do not match the header dimensions: {e}"))
        .and_then(|a| a.into_dimensionality::<Ix3>().map_err(|e| anyhow!("{e}")))
        .with_context(ctx)?
        .as_standard_layout()
        .into_owned();
    ensure_finite(&path.display().to_string(), data.iter().copied())?;
    let meta = NiftiMeta {
        affine: header_affine(&header),
        pixdim: voxel_spacing(&header),
        xyzt_units: header.xyzt_units,
        reference: Some(header),
        description: None,
    };
    Ok(Volume { data, meta })
}

/// The 2-D slice `index` of a volume along `axis` (0 = i, 1 = j, 2 = k).
pub fn slice_volume(data: &Array3<f32>, axis: usize, index: usize) -> Result<Array2<f32>> {
    if axis > 2 {
        bail!("slice axis {axis} does not exist (use 0, 1 or 2)");
    }
    let n = data.len_of(Axis(axis));
    if index >= n {
        bail!("slice index {index} is out of range: axis {axis} has {n} slices");
    }
    Ok(data.index_axis(Axis(axis), index).to_owned())
}

/// Writes a 2-D or 3-D f32 array as NIfTI-1 (`.nii` or `.nii.gz`, chosen by the name),
/// atomically. With `meta.reference` set, its header (qform, sform, units, description) is the
/// template; otherwise the affine is stored as the sform (code 2, aligned) and pixdim taken from
/// it.
pub fn write_nifti(path: &Path, data: &ArrayViewD<f32>, meta: &NiftiMeta) -> Result<()> {
    let name = path.to_string_lossy();
    if !(name.ends_with(".nii") || name.ends_with(".nii.gz")) {
        bail!(
            "NIfTI output {} must end in .nii or .nii.gz",
            path.display()
        );
    }
    if !(2..=3).contains(&data.ndim()) {
        bail!(
            "NIfTI output needs a 2-D or 3-D array, got shape {:?}",
            data.shape()
        );
    }
    if data.shape().iter().any(|&d| d > usize::from(u16::MAX)) {
        bail!("dimension too large for NIfTI-1: {:?}", data.shape());
    }
    ensure_finite("volume to write", data.iter().copied())?;
    let mut header = match &meta.reference {
        Some(h) => h.clone(),
        None => {
            let mut h = NiftiHeader {
                qform_code: 0,
                sform_code: 2,
                xyzt_units: meta.xyzt_units,
                ..NiftiHeader::default()
            };
            let row = |r: usize| meta.affine[r].map(|v| v as f32);
            (h.srow_x, h.srow_y, h.srow_z) = (row(0), row(1), row(2));
            h.pixdim[0] = 1.0;
            h.pixdim[1..4].copy_from_slice(&meta.pixdim);
            h
        }
    };
    // free text of the source header (it may name the patient or the scan) is not carried
    // into a derived volume
    header.aux_file = [0; 24];
    header.intent_name = [0; 16];
    header.db_name = [0; 18];
    header.data_type = [0; 10];
    header.scl_slope = 1.0;
    header.scl_inter = 0.0;
    header.cal_min = 0.0;
    header.cal_max = 0.0;
    let mut descrip = format!("medsgm {}", env!("CARGO_PKG_VERSION"));
    if let Some(d) = &meta.description {
        descrip = format!("{descrip} {d}");
    }
    let descrip: String = descrip.chars().filter(char::is_ascii).take(79).collect();
    let _ = header.set_description_str(descrip);
    write_atomic_with_temp(path, |tmp| {
        WriterOptions::new(tmp)
            .reference_header(&header)
            .write_nifti(data)
            .map_err(|e| anyhow!("{e}"))
    })
    .with_context(|| format!("cannot write NIfTI file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_data_and_affine() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["v.nii", "v.nii.gz"] {
            let p = dir.path().join(name);
            let data = Array3::from_shape_fn((4, 5, 3), |(i, j, k)| (i * 100 + j * 10 + k) as f32);
            let affine = [
                [0.0, -0.8, 0.0, 12.5],
                [0.9, 0.0, 0.0, -3.0],
                [0.0, 0.0, 2.5, 7.0],
                [0.0, 0.0, 0.0, 1.0],
            ];
            let meta = NiftiMeta::from_affine(affine);
            write_nifti(&p, &data.view().into_dyn(), &meta).unwrap();
            let v = read_nifti(&p).unwrap();
            assert_eq!(v.data, data);
            for (got, want) in v.meta.affine.iter().flatten().zip(affine.iter().flatten()) {
                assert!((got - want).abs() < 1e-6);
            }
            assert!((v.meta.pixdim[0] - 0.9).abs() < 1e-6);
            assert!((v.meta.pixdim[2] - 2.5).abs() < 1e-6);
            assert_eq!(slice_volume(&v.data, 1, 2).unwrap()[[3, 1]], 321.0);
            assert!(slice_volume(&v.data, 2, 3).is_err());
        }
    }

    #[test]
    fn identity_quaternion_gives_scaled_identity() {
        let h = NiftiHeader {
            qform_code: 1,
            sform_code: 0,
            quatern_b: 0.0,
            quatern_c: 0.0,
            quatern_d: 0.0,
            quatern_x: 1.0,
            pixdim: [-1.0, 2.0, 3.0, 4.0, 1.0, 1.0, 1.0, 1.0],
            ..NiftiHeader::default()
        };
        let a = header_affine(&h);
        assert_eq!(a[0], [2.0, 0.0, 0.0, 1.0]);
        assert_eq!(a[1], [0.0, 3.0, 0.0, 0.0]);
        assert_eq!(a[2], [0.0, 0.0, -4.0, 0.0]);
    }

    #[test]
    fn truncated_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.nii");
        let data = Array3::<f32>::zeros((8, 8, 8));
        write_nifti(&p, &data.view().into_dyn(), &NiftiMeta::identity()).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
        let e = read_nifti(&p).unwrap_err();
        assert!(format!("{e:#}").contains("v.nii"), "{e:#}");
    }
}
