//! Measurement files: the measured data as NPY plus a JSON sidecar that records everything needed
//! to reproduce and invert the measurement. The schema
//! is documented in `docs/measurement-format.md`.
//!
//! `meas.npy` holds a sinogram (float32 `[views, det]`) or k-space (complex64 `[H, W]`);
//! `meas.json` describes the kind (ct, mri, mar), the geometry, the mask Λ (kept view indices, a
//! full-sinogram mask in the companion file `meas.mask.npy`, or kept k-space columns), the noise
//! model with its parameters and seed, the units and the medsgm version that wrote it. A metal
//! mask for MAR lives in `meas.metal.npy`. Loading validates that the sidecar and the data agree
//! and names the offending file in every error.

use crate::io::ensure_finite;
use crate::io::npy::{read_npy, write_npy, DType, NpyArray};
use crate::task::Problem;
use anyhow::{anyhow, bail, ensure, Context, Result};
use medsgm_operators::radon::RadonGeometry;
use medsgm_operators::{DetectorKind, FanGeometry};
use ndarray::{Array2, Ix2};
use num_complex::Complex32;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Value of the sidecar's `format` field.
pub const FORMAT: &str = "medsgm-measurement";
/// Current sidecar schema version.
pub const FORMAT_VERSION: u32 = 1;

/// Largest k-space side h or w a sidecar may declare (8192: 256 MiB of complex64 at most).
pub const MAX_KSPACE_SIDE: usize = 8192;

/// Accepted μ_water per pixel (water is 0.0192/mm at 70 keV: 0.0192 for 1 mm pixels; the range
/// allows 0.5 µm to 50 cm pixels, and no HU conversion can blow up by 10⁻³⁰).
pub const MU_WATER_RANGE: (f32, f32) = (1e-5, 10.0);

/// Acquisition geometry of the full transform T.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Geometry {
    /// 2-D parallel beam on a `size`×`size` image with unit pixels (medsgm's Radon convention).
    ParallelBeam {
        /// Image side length in pixels.
        size: usize,
        /// Projection angles of the full view set, in degrees.
        angles_deg: Vec<f32>,
        /// Detector bins per view.
        n_det: usize,
        /// Detector bin width in pixels.
        det_spacing: f32,
    },
    /// 2-D fan beam (a point source and a curved or flat detector, as clinical scanners
    /// measure) on a `size`×`size` image with unit pixels; lengths in pixels.
    FanBeam {
        /// Image side length in pixels.
        size: usize,
        /// Source angles β of the full view set, in degrees.
        angles_deg: Vec<f32>,
        /// Detector bins per view.
        n_det: usize,
        /// Bin pitch along the detector surface at the source-to-detector distance, in pixels.
        det_spacing: f32,
        /// Source-to-isocentre distance R in pixels.
        source_distance: f32,
        /// Source-to-detector distance D (> R) in pixels.
        detector_distance: f32,
        /// `equiangular` (curved, third-generation scanners) or `flat`.
        detector: DetectorKind,
        /// Detector offset in bins (0.25: the quarter-detector shift).
        #[serde(default)]
        det_offset: f32,
    },
    /// Cartesian k-space of an `h`×`w` image (unitary centred FFT).
    Cartesian {
        /// Rows (read-out direction).
        h: usize,
        /// Columns (phase-encode direction).
        w: usize,
    },
}

/// How a k-space column mask was generated (for provenance; the kept columns are authoritative).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskGenerator {
    /// `equispaced`, `random` or `variable-density`.
    pub pattern: String,
    /// Acceleration factor R.
    pub acceleration: f32,
    /// Fraction of fully sampled low-frequency columns.
    pub center_fraction: f32,
    /// Seed of random patterns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// The mask Λ selecting the measured part of the full transform's range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Mask {
    /// CT: the data rows are the views `kept` (strictly increasing indices into `angles_deg`).
    Views {
        /// Indices of the measured views.
        kept: Vec<usize>,
    },
    /// A full-sinogram mask `[views, det]` stored as uint8 0/1 in the companion NPY `file`
    /// (same directory); the data hold all views and entries outside Λ are not to be trusted.
    Sinogram {
        /// Companion file name (no directories).
        file: String,
    },
    /// MRI: the data are the full `[h, w]` grid; only the columns `kept` were measured (the others
    /// are zero).
    Columns {
        /// Indices of the measured columns, strictly increasing.
        kept: Vec<usize>,
        /// How they were chosen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        generator: Option<MaskGenerator>,
    },
}

/// The noise added to the ideal measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Noise {
    /// Noise-free.
    None,
    /// CT transmission noise on the physical line integrals s·p of the stored sinogram p:
    /// counts N ~ Poisson(i0 · exp(−s·p)), stored p̂ = −ln(max(N, 1) / i0) / s.
    PoissonTransmission {
        /// Incident photons per detector bin.
        i0: f64,
        /// s: attenuation (per pixel length) of image value 1.
        attenuation_scale: f32,
        /// Electronic (readout) noise: standard deviation in counts, added before the log.
        #[serde(default, skip_serializing_if = "is_zero")]
        electronic_sigma: f64,
        /// RNG seed.
        seed: u64,
    },
    /// Additive white Gaussian noise of standard deviation `sigma`.
    Gaussian {
        /// Standard deviation.
        sigma: f32,
        /// RNG seed.
        seed: u64,
    },
    /// The metal-artifact simulator of `medsgm_operators::mar_sim`: polychromatic spectrum with
    /// beam hardening of water, bone and metal, Poisson counts with `i0` incident photons per
    /// bin, water precorrection, on an image square `fov_mm` wide.
    PolychromaticMetal {
        /// Incident photons per bin.
        i0: f64,
        /// Width of the image square in mm.
        fov_mm: f32,
        /// `titanium` or `steel`.
        metal_material: String,
        /// RNG seed.
        seed: u64,
    },
    /// Circular complex Gaussian noise, `sigma` per real and imaginary part.
    ComplexGaussian {
        /// Standard deviation per component.
        sigma: f32,
        /// RNG seed.
        seed: u64,
    },
}

/// Where a measurement came from (informational).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The image the measurement was simulated from.
    pub source: String,
    /// The command line that produced it.
    pub command: String,
}

/// Pixel spacings (mm) a sidecar may record.
pub const PIXEL_SPACING_RANGE_MM: (f32, f32) = (0.001, 100.0);

/// The JSON sidecar `<name>.json` of a measurement `<name>.npy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    /// Always [`FORMAT`].
    pub format: String,
    /// Schema version, [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Version of medsgm that wrote the file.
    pub medsgm_version: String,
    /// Problem kind.
    pub kind: Problem,
    /// NumPy dtype name of the data: `float32` (sinograms) or `complex64` (k-space).
    pub dtype: String,
    /// Shape of the data array.
    pub shape: Vec<usize>,
    /// Full-transform geometry.
    pub geometry: Geometry,
    /// Measured subset Λ.
    pub mask: Mask,
    /// Noise model.
    pub noise: Noise,
    /// Physical meaning of the values, e.g. `line integral of attenuation per pixel`.
    pub units: String,
    /// Attenuation of water per pixel length when the sinogram holds physical line integrals
    /// (reconstructions convert to HU = 1000 (μ/μ_water − 1)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mu_water_per_pixel: Option<f32>,
    /// In-plane pixel spacing (mm) of the image grid the geometry is measured in (from the
    /// simulated image's DICOM header or `simulate --pixel-spacing`); score methods reconstruct
    /// on their prior's spacing when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_spacing_mm: Option<f32>,
    /// MAR: companion NPY (uint8 0/1, `[size, size]`) marking the metal pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metal_mask: Option<String>,
    /// Informational provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// The measured array.
#[derive(Debug, Clone, PartialEq)]
pub enum MeasurementData {
    /// CT/MAR sinogram `[views, det]`.
    Sinogram(Array2<f32>),
    /// MRI k-space `[h, w]`.
    KSpace(Array2<Complex32>),
}

impl MeasurementData {
    fn dtype(&self) -> DType {
        match self {
            MeasurementData::Sinogram(_) => DType::F32,
            MeasurementData::KSpace(_) => DType::C64,
        }
    }
    fn shape(&self) -> &[usize] {
        match self {
            MeasurementData::Sinogram(a) => a.shape(),
            MeasurementData::KSpace(a) => a.shape(),
        }
    }
}

/// A measurement with its description and companion arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The sidecar.
    pub sidecar: Sidecar,
    /// The data.
    pub data: MeasurementData,
    /// The full-sinogram mask when `sidecar.mask` is [`Mask::Sinogram`] (true = measured).
    pub sinogram_mask: Option<Array2<bool>>,
    /// The metal mask when `sidecar.metal_mask` is set.
    pub metal_mask: Option<Array2<bool>>,
}

impl Sidecar {
    /// A sidecar for `data` with the current format and version; `shape`/`dtype` are filled in.
    pub fn new(
        kind: Problem,
        data: &MeasurementData,
        geometry: Geometry,
        mask: Mask,
        noise: Noise,
        units: &str,
    ) -> Sidecar {
        Sidecar {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            medsgm_version: env!("CARGO_PKG_VERSION").into(),
            kind,
            dtype: data.dtype().name().into(),
            shape: data.shape().to_vec(),
            geometry,
            mask,
            noise,
            units: units.into(),
            mu_water_per_pixel: None,
            pixel_spacing_mm: None,
            metal_mask: None,
            provenance: None,
        }
    }

    /// Checks internal consistency (independent of the data).
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.format == FORMAT,
            "format is {:?}, expected {FORMAT:?}",
            self.format
        );
        ensure!(
            self.format_version == FORMAT_VERSION,
            "format_version {} is not supported (this medsgm reads version {FORMAT_VERSION})",
            self.format_version
        );
        let strictly_increasing = |v: &[usize], bound: usize, what: &str| -> Result<()> {
            ensure!(!v.is_empty(), "{what} is empty");
            ensure!(
                v.windows(2).all(|w| w[0] < w[1]),
                "{what} must be strictly increasing"
            );
            ensure!(
                v[v.len() - 1] < bound,
                "{what} contains index {} but there are only {bound}",
                v[v.len() - 1]
            );
            Ok(())
        };
        let expected_shape = match (&self.kind, &self.geometry, &self.mask) {
            (
                Problem::Ct | Problem::Mar,
                g @ (Geometry::ParallelBeam { .. } | Geometry::FanBeam { .. }),
                mask,
            ) => {
                let (n_views, n_det) = g
                    .ct_views_and_bins()
                    .ok_or_else(|| anyhow!("not a CT geometry"))?;
                // the operator's own bounds (size, views, bins, spacing, distances), checked
                // before any allocation the sidecar could request
                g.validate_ct()?;
                ensure!(
                    self.dtype == DType::F32.name(),
                    "a {} sinogram must be float32, the sidecar says {}",
                    self.kind,
                    self.dtype
                );
                match mask {
                    Mask::Views { kept } => {
                        ensure!(
                            self.kind == Problem::Ct,
                            "mar measurements need a sinogram mask"
                        );
                        strictly_increasing(kept, n_views, "mask.kept (views)")?;
                        vec![kept.len(), n_det]
                    }
                    Mask::Sinogram { file } => {
                        check_companion_name(file)?;
                        vec![n_views, n_det]
                    }
                    Mask::Columns { .. } => bail!("a column mask is only valid for mri"),
                }
            }
            (Problem::Mri, Geometry::Cartesian { h, w }, Mask::Columns { kept, .. }) => {
                ensure!(*h >= 2 && *w >= 2, "geometry h and w must be at least 2");
                ensure!(
                    *h <= MAX_KSPACE_SIDE && *w <= MAX_KSPACE_SIDE,
                    "geometry {h}×{w} exceeds the largest k-space side {MAX_KSPACE_SIDE}"
                );
                ensure!(
                    self.dtype == DType::C64.name(),
                    "mri k-space must be complex64, the sidecar says {}",
                    self.dtype
                );
                strictly_increasing(kept, *w, "mask.kept (columns)")?;
                vec![*h, *w]
            }
            (Problem::Mri, Geometry::Cartesian { .. }, _) => bail!("mri needs a column mask"),
            (kind, g, _) => bail!("geometry {} does not fit kind {kind}", geometry_name(g)),
        };
        ensure!(
            self.shape == expected_shape,
            "shape {:?} disagrees with the geometry and mask, which imply {expected_shape:?}",
            self.shape
        );
        match &self.noise {
            Noise::None => {}
            Noise::PoissonTransmission {
                i0,
                attenuation_scale,
                electronic_sigma,
                ..
            } => ensure!(
                i0.is_finite()
                    && *i0 > 0.0
                    && attenuation_scale.is_finite()
                    && *attenuation_scale > 0.0
                    && electronic_sigma.is_finite()
                    && *electronic_sigma >= 0.0,
                "noise.i0 and noise.attenuation_scale must be positive, noise.electronic_sigma non-negative"
            ),
            Noise::PolychromaticMetal {
                i0,
                fov_mm,
                metal_material,
                ..
            } => {
                ensure!(
                    i0.is_finite() && *i0 > 0.0 && fov_mm.is_finite() && *fov_mm > 0.0,
                    "noise.i0 and noise.fov_mm must be positive"
                );
                ensure!(
                    ["titanium", "steel"].contains(&metal_material.as_str()),
                    "noise.metal_material must be titanium or steel"
                );
            }
            Noise::Gaussian { sigma, .. } | Noise::ComplexGaussian { sigma, .. } => ensure!(
                sigma.is_finite() && *sigma >= 0.0,
                "noise.sigma must be non-negative"
            ),
        }
        if let Some(mu) = self.mu_water_per_pixel {
            ensure!(
                mu.is_finite() && (MU_WATER_RANGE.0..=MU_WATER_RANGE.1).contains(&mu),
                "mu_water_per_pixel must lie in [{}, {}] (water: 0.0192/mm times the pixel size), got {mu}",
                MU_WATER_RANGE.0,
                MU_WATER_RANGE.1
            );
        }
        if let Some(mm) = self.pixel_spacing_mm {
            ensure!(
                mm.is_finite()
                    && (PIXEL_SPACING_RANGE_MM.0..=PIXEL_SPACING_RANGE_MM.1).contains(&mm),
                "pixel_spacing_mm must lie in [{}, {}] mm, got {mm}",
                PIXEL_SPACING_RANGE_MM.0,
                PIXEL_SPACING_RANGE_MM.1
            );
        }
        if let Some(f) = &self.metal_mask {
            check_companion_name(f)?;
            ensure!(
                self.kind == Problem::Mar,
                "metal_mask is only valid for mar measurements"
            );
        }
        Ok(())
    }

    /// Image side length (`size` for CT/MAR, (h, w) for MRI).
    pub fn image_shape(&self) -> (usize, usize) {
        match &self.geometry {
            Geometry::ParallelBeam { size, .. } | Geometry::FanBeam { size, .. } => (*size, *size),
            Geometry::Cartesian { h, w } => (*h, *w),
        }
    }
}

impl Geometry {
    /// A CT geometry's full view count and detector bins (None for k-space).
    pub fn ct_views_and_bins(&self) -> Option<(usize, usize)> {
        match self {
            Geometry::ParallelBeam {
                angles_deg, n_det, ..
            }
            | Geometry::FanBeam {
                angles_deg, n_det, ..
            } => Some((angles_deg.len(), *n_det)),
            Geometry::Cartesian { .. } => None,
        }
    }

    /// The sidecar record of an operators-crate fan-beam geometry (angles in degrees).
    pub fn fan_beam(fan: &FanGeometry) -> Geometry {
        Geometry::FanBeam {
            size: fan.size,
            angles_deg: fan.angles.iter().map(|a| a.to_degrees()).collect(),
            n_det: fan.n_det,
            det_spacing: fan.det_spacing,
            source_distance: fan.source_distance,
            detector_distance: fan.detector_distance,
            detector: fan.detector,
            det_offset: fan.det_offset,
        }
    }

    /// The fan-beam geometry of the operators crate (angles in radians), over the full view
    /// set or the `views` it lists; None for other geometries.
    pub fn fan_geometry(&self, views: Option<&[usize]>) -> Option<FanGeometry> {
        let Geometry::FanBeam {
            size,
            angles_deg,
            n_det,
            det_spacing,
            source_distance,
            detector_distance,
            detector,
            det_offset,
        } = self
        else {
            return None;
        };
        let angles = select_views(angles_deg, views)
            .iter()
            .map(|a| a.to_radians())
            .collect();
        Some(FanGeometry {
            size: *size,
            angles,
            source_distance: *source_distance,
            detector_distance: *detector_distance,
            detector: *detector,
            n_det: *n_det,
            det_spacing: *det_spacing,
            det_offset: *det_offset,
        })
    }

    /// The parallel-beam geometry of the operators crate over the full view set or the
    /// `views` it lists; None for other geometries.
    pub fn radon_geometry(&self, views: Option<&[usize]>) -> Option<RadonGeometry> {
        let Geometry::ParallelBeam {
            size,
            angles_deg,
            n_det,
            det_spacing,
        } = self
        else {
            return None;
        };
        Some(
            RadonGeometry::from_degrees(*size, &select_views(angles_deg, views), *n_det)
                .with_det_spacing(*det_spacing),
        )
    }

    /// Checks a CT geometry against the operators' bounds (sizes, views, bins, spacing and,
    /// for fan beam, the source and detector placement).
    pub fn validate_ct(&self) -> Result<()> {
        if let Some((angles_deg, size)) = match self {
            Geometry::ParallelBeam {
                angles_deg, size, ..
            }
            | Geometry::FanBeam {
                angles_deg, size, ..
            } => Some((angles_deg, size)),
            Geometry::Cartesian { .. } => None,
        } {
            ensure!(*size >= 2, "geometry.size must be at least 2");
            ensure!(!angles_deg.is_empty(), "geometry.angles_deg is empty");
            ensure_finite("geometry.angles_deg", angles_deg.iter().copied())?;
        }
        if let Geometry::FanBeam {
            det_offset, n_det, ..
        } = self
        {
            ensure!(
                det_offset.is_finite() && det_offset.abs() <= *n_det as f32,
                "geometry.det_offset must lie within ±n_det ({n_det}) bins, got {det_offset}"
            );
        }
        let checked = match (self.radon_geometry(None), self.fan_geometry(None)) {
            (Some(r), _) => r.validate(),
            (_, Some(f)) => f.validate(),
            _ => bail!("not a CT geometry"),
        };
        checked.map_err(|e| anyhow!("geometry: {e}"))
    }
}

/// Serde: omit a zero electronic-noise level.
fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// `angles` at the indices `views` (all of them when None).
fn select_views(angles: &[f32], views: Option<&[usize]>) -> Vec<f32> {
    match views {
        Some(kept) => kept.iter().map(|&k| angles[k]).collect(),
        None => angles.to_vec(),
    }
}

fn geometry_name(g: &Geometry) -> &'static str {
    match g {
        Geometry::ParallelBeam { .. } => "parallel-beam",
        Geometry::FanBeam { .. } => "fan-beam",
        Geometry::Cartesian { .. } => "cartesian",
    }
}

/// Companion files must sit next to the sidecar: a plain file name.
fn check_companion_name(name: &str) -> Result<()> {
    let p = Path::new(name);
    ensure!(
        !name.is_empty()
            && p.file_name().map(|f| f == p.as_os_str()).unwrap_or(false)
            && name.ends_with(".npy"),
        "companion file {name:?} must be a plain .npy file name in the sidecar's directory"
    );
    Ok(())
}

/// `dir/meas.npy` → `dir/meas.json`.
pub fn sidecar_path(data_path: &Path) -> PathBuf {
    data_path.with_extension("json")
}

/// Every file of the measurement at `data_path`: the data, the sidecar and the companions it
/// names (the files a writer must never write over).
pub fn measurement_files(data_path: &Path, sidecar: &Sidecar) -> Vec<PathBuf> {
    let dir = dir_of(data_path);
    let mut files = vec![data_path.to_path_buf(), sidecar_path(data_path)];
    if let Mask::Sinogram { file } = &sidecar.mask {
        files.push(dir.join(file));
    }
    if let Some(f) = &sidecar.metal_mask {
        files.push(dir.join(f));
    }
    files
}

/// Every file a measurement written to `data_path` may occupy: the data, the sidecar and the
/// `mask` and `metal` companions.
pub fn measurement_outputs(data_path: &Path) -> Vec<PathBuf> {
    let dir = dir_of(data_path);
    vec![
        data_path.to_path_buf(),
        sidecar_path(data_path),
        dir.join(companion_name(data_path, "mask")),
        dir.join(companion_name(data_path, "metal")),
    ]
}

/// `dir/meas.npy` → `dir/meas.<tag>.npy` (companion file name only).
pub fn companion_name(data_path: &Path, tag: &str) -> String {
    let stem = data_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{stem}.{tag}.npy")
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn bool_to_u8(m: &Array2<bool>) -> ndarray::ArrayD<u8> {
    m.mapv(u8::from).into_dyn()
}

fn read_bool_mask(path: &Path, shape: &[usize]) -> Result<Array2<bool>> {
    let arr = match read_npy(path)? {
        NpyArray::U8(a) => a,
        other => bail!(
            "{}: a mask must be uint8 0/1, found {}",
            path.display(),
            other.dtype()
        ),
    };
    ensure!(
        arr.shape() == shape,
        "{}: mask shape {:?} does not match the expected {shape:?}",
        path.display(),
        arr.shape()
    );
    ensure!(
        arr.iter().all(|&v| v <= 1),
        "{}: mask values must be 0 or 1",
        path.display()
    );
    Ok(arr.into_dimensionality::<Ix2>()?.mapv(|v| v == 1))
}

/// Writes `meas.npy`, companion masks and finally the sidecar `meas.json` (each atomically; the
/// sidecar, written last, marks a complete measurement).
pub fn save_measurement(data_path: &Path, m: &Measurement) -> Result<()> {
    let json = sidecar_path(data_path);
    ensure!(
        data_path.extension().is_some_and(|e| e == "npy"),
        "measurement output {} must end in .npy",
        data_path.display()
    );
    m.sidecar
        .validate()
        .context("refusing to write an inconsistent measurement")?;
    ensure!(
        m.data.shape() == m.sidecar.shape.as_slice() && m.data.dtype().name() == m.sidecar.dtype,
        "data {:?} {} disagree with the sidecar {:?} {}",
        m.data.shape(),
        m.data.dtype(),
        m.sidecar.shape,
        m.sidecar.dtype
    );
    let dir = dir_of(data_path);
    match (&m.sidecar.mask, &m.sinogram_mask) {
        (Mask::Sinogram { file }, Some(mask)) => {
            write_npy(&dir.join(file), &bool_to_u8(mask).view())?
        }
        (Mask::Sinogram { .. }, None) => bail!("sinogram mask array missing"),
        _ => {}
    }
    match (&m.sidecar.metal_mask, &m.metal_mask) {
        (Some(file), Some(mask)) => write_npy(&dir.join(file), &bool_to_u8(mask).view())?,
        (Some(_), None) => bail!("metal mask array missing"),
        _ => {}
    }
    match &m.data {
        MeasurementData::Sinogram(a) => {
            ensure_finite("sinogram", a.iter().copied())?;
            write_npy(data_path, &a.view().into_dyn())?
        }
        MeasurementData::KSpace(a) => {
            ensure_finite("k-space", a.iter().flat_map(|c| [c.re, c.im]))?;
            write_npy(data_path, &a.view().into_dyn())?
        }
    }
    let text = serde_json::to_string_pretty(&m.sidecar)? + "\n";
    crate::io::atomic::write_bytes_atomic(&json, text.as_bytes())
        .with_context(|| format!("cannot write sidecar {}", json.display()))
}

/// Reads the sidecar next to `data_path`.
pub fn read_sidecar(data_path: &Path) -> Result<Sidecar> {
    let json = sidecar_path(data_path);
    let text = std::fs::read_to_string(&json).with_context(|| {
        format!(
            "cannot read the sidecar {} of measurement {} (every measurement .npy needs its .json)",
            json.display(),
            data_path.display()
        )
    })?;
    let sidecar: Sidecar = serde_json::from_str(&text)
        .with_context(|| format!("invalid measurement sidecar {}", json.display()))?;
    sidecar
        .validate()
        .with_context(|| format!("invalid measurement sidecar {}", json.display()))?;
    Ok(sidecar)
}

/// Loads and cross-checks a measurement: sidecar, data, companion masks.
pub fn load_measurement(data_path: &Path) -> Result<Measurement> {
    if data_path.extension().is_none_or(|e| e != "npy") {
        bail!(
            "{} is not a measurement (an .npy file with its .json sidecar): images and volumes \
             (DICOM, NIfTI) are measured and reconstructed in batch mode, --output FOLDER",
            data_path.display()
        );
    }
    if !data_path.is_file() {
        bail!("the measurement {} does not exist", data_path.display());
    }
    let sidecar = read_sidecar(data_path)?;
    let json = sidecar_path(data_path);
    let raw = read_npy(data_path)?;
    let mismatch = || {
        anyhow!(
            "{} holds {} {:?} but its sidecar {} says {} {:?}",
            data_path.display(),
            raw.dtype(),
            raw.shape(),
            json.display(),
            sidecar.dtype,
            sidecar.shape
        )
    };
    if raw.shape() != sidecar.shape.as_slice() || raw.dtype().name() != sidecar.dtype {
        return Err(mismatch());
    }
    let data = match raw.clone() {
        NpyArray::F32(a) => MeasurementData::Sinogram(a.into_dimensionality::<Ix2>()?),
        NpyArray::C64(a) => MeasurementData::KSpace(a.into_dimensionality::<Ix2>()?),
        _ => return Err(mismatch()),
    };
    let what = data_path.display().to_string();
    match &data {
        MeasurementData::Sinogram(a) => ensure_finite(&what, a.iter().copied())?,
        MeasurementData::KSpace(a) => ensure_finite(&what, a.iter().flat_map(|c| [c.re, c.im]))?,
    }
    let dir = dir_of(data_path);
    let sinogram_mask = match &sidecar.mask {
        Mask::Sinogram { file } => Some(read_bool_mask(&dir.join(file), &sidecar.shape)?),
        _ => None,
    };
    let metal_mask = match &sidecar.metal_mask {
        Some(file) => {
            let (h, w) = sidecar.image_shape();
            Some(read_bool_mask(&dir.join(file), &[h, w])?)
        }
        None => None,
    };
    Ok(Measurement {
        sidecar,
        data,
        sinogram_mask,
        metal_mask,
    })
}
