//! Simulating a measurement from an image (`medsgm simulate {ct,mri,mar}`): the sparse-view CT
//! sinogram, the undersampled MRI k-space and the metal-corrupted MAR sinogram, written as NPY
//! with their JSON sidecar (see `docs/measurement-format.md`). The CLI converts its flags into
//! the plain values here ([`SimTarget`], [`CtViews`], [`FanSpec`], [`CtNoise`], [`MriScan`]).

use crate::error::{invalid, InputContext};
use crate::io::dicom::padding::AIR_HU;
use crate::io::dicom::DicomVolume;
use crate::io::guard::refuse_overwriting_inputs;
use crate::io::measurement::{
    companion_name, measurement_outputs, sidecar_path, MAX_KSPACE_SIDE, PIXEL_SPACING_RANGE_MM,
};
use crate::io::measurement::{
    save_measurement, Geometry, Mask, Measurement, MeasurementData, Noise, Provenance, Sidecar,
};
use crate::io::memory::{bytes_of, Budget, F32};
use crate::io::target::validate_output_path;
use crate::task::ct_scan::{Beam, CtNoise, CtScan, FanSpec};
use crate::task::mri_scan::MriScan;
use crate::task::Problem;
use anyhow::Result;
use clap::ValueEnum;
use medsgm_operators::mar_sim::{simulate_metal_artifacts, MarSimParams};
use medsgm_operators::metal::{
    dilate, mar_mask, metal_trace, segment_metal, METAL_THRESHOLD_HU, TRACE_THRESHOLD,
};
use medsgm_operators::phantom::anatomical::MetalMaterial;
use medsgm_operators::radon::RadonGeometry;
use ndarray::Array2;
use std::path::PathBuf;

/// Implant materials of the MAR simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Material {
    /// Titanium alloy.
    Titanium,
    /// Stainless steel / CoCr.
    Steel,
}

/// Input, output, seed and memory budget shared by all simulations.
#[derive(Debug, Clone)]
pub struct SimTarget {
    /// The image measured (named in messages and in the provenance record).
    pub input: PathBuf,
    /// Measurement output (.npy); the sidecar goes to the same name with .json.
    pub out: PathBuf,
    /// Seed of every random choice (noise, random masks).
    pub seed: u64,
    /// Memory budget (checked before the measurement is computed).
    pub budget: Budget,
    /// CT, MRI: the image's in-plane pixel spacing in mm (default: a DICOM input's).
    pub pixel_spacing: Option<f32>,
}

impl SimTarget {
    /// Checks the pixel spacing's range and every file the measurement writes (data, sidecar,
    /// companions) before any is written: an `.npy` name in an existing folder that is not the
    /// input (invalid input).
    pub fn validate(&self) -> Result<()> {
        if let Some(mm) = self.pixel_spacing {
            let (lo, hi) = PIXEL_SPACING_RANGE_MM;
            if !(mm.is_finite() && (lo..=hi).contains(&mm)) {
                return Err(invalid(format!(
                    "--pixel-spacing must be in [{lo}, {hi}] mm, got {mm}"
                )));
            }
        }
        if self.out.extension().is_none_or(|e| e != "npy") {
            return Err(invalid(format!(
                "measurement output {} must end in .npy",
                self.out.display()
            )));
        }
        for out in measurement_outputs(&self.out) {
            validate_output_path(&out, false)?;
        }
        refuse_overwriting_inputs(
            &measurement_outputs(&self.out),
            std::slice::from_ref(&self.input),
        )
        .map_err(invalid)
    }

    /// The line reporting the measurement `m` written to `out`.
    pub fn report(&self, m: &Measurement) -> String {
        format!(
            "wrote {} ({} {} {:?}) and {}",
            self.out.display(),
            m.sidecar.kind,
            m.sidecar.dtype,
            m.sidecar.shape,
            sidecar_path(&self.out).display()
        )
    }
}

/// What to simulate: the acquisition of each problem, as given (the fan-beam settings are
/// checked against the beam by [`Acquisition::validate`]).
#[derive(Debug, Clone)]
pub enum Acquisition {
    /// Sparse-view CT ([`simulate_ct`]).
    Ct {
        /// The measured views and detector.
        views: CtViews,
        /// Parallel or fan beam.
        beam: Beam,
        /// The fan-beam settings.
        fan: FanSpec,
        /// The sinogram noise.
        noise: CtNoise,
    },
    /// Undersampled Cartesian MRI ([`simulate_mri`]).
    Mri(MriScan),
    /// Metal artefacts in a full sinogram ([`simulate_mar`]).
    Mar {
        /// The views (all measured) and detector.
        views: CtViews,
        /// Parallel or fan beam.
        beam: Beam,
        /// The fan-beam settings.
        fan: FanSpec,
        /// Dose, field of view and metal.
        spec: MarSpec,
    },
}

impl Acquisition {
    /// Checks the target and the acquisition's settings before the image is read (invalid
    /// input naming the flag).
    pub fn validate(&self, t: &SimTarget) -> Result<()> {
        t.validate()?;
        match self {
            Acquisition::Ct {
                views,
                beam,
                fan,
                noise,
            } => {
                views.validate(23)?;
                fan.for_beam(*beam)?;
                noise.validate()
            }
            Acquisition::Mri(scan) => scan.validate(),
            Acquisition::Mar {
                views,
                beam,
                fan,
                spec,
            } => {
                fan.for_beam(*beam)?;
                if t.pixel_spacing.is_some() {
                    return Err(invalid(
                        "--pixel-spacing applies to ct (mar takes the field of view, --fov-mm)",
                    ));
                }
                views.validate(180)?;
                spec.validate()
            }
        }
    }

    /// Simulates the measurement of `image` (with its DICOM source, if any) and writes it to
    /// `t.out`.
    pub fn simulate(
        &self,
        t: &SimTarget,
        image: (Array2<f32>, Option<DicomVolume>),
    ) -> Result<Measurement> {
        match self {
            Acquisition::Ct {
                views,
                beam,
                fan,
                noise,
            } => {
                let image = square_image(t, image)?;
                simulate_ct(t, image, views, fan.for_beam(*beam)?.as_ref(), *noise)
            }
            Acquisition::Mri(scan) => simulate_mri(t, image, scan),
            Acquisition::Mar {
                views,
                beam,
                fan,
                spec,
            } => {
                let hu = square_image(t, image)?.image;
                if views.full_views.is_some() {
                    return Err(invalid(
                        "--full-views does not apply to mar (all views are measured)",
                    ));
                }
                simulate_mar(t, hu, views, fan.for_beam(*beam)?.as_ref(), *spec)
            }
        }
    }
}

/// The view set and detector of a CT simulation (lengths in pixels of the image).
#[derive(Debug, Clone, Default)]
pub struct CtViews {
    /// Number of measured views, equispaced over [0°, 180°) (default: per problem).
    pub views: Option<usize>,
    /// Explicit measured view angles in degrees.
    pub angles: Option<Vec<f32>>,
    /// Size of the full view set (equispaced); the measured views are the nearest subset of
    /// it. Default: the measured views are the full set.
    pub full_views: Option<usize>,
    /// Detector bins (default ⌈√2·N⌉).
    pub n_det: Option<usize>,
    /// Detector bin width in pixels (default 1; fan beam: D/R).
    pub det_spacing: Option<f32>,
}

impl CtViews {
    /// Checks the view set and detector (invalid input naming the flag): angles finite and
    /// not empty, views in 1..=100000, the full set at least the measured views (`views`
    /// defaulting to `default_views`), positive bins and bin width.
    pub fn validate(&self, default_views: usize) -> Result<()> {
        if let Some(angles) = &self.angles {
            if angles.is_empty() || angles.iter().any(|a| !a.is_finite()) {
                return Err(invalid(
                    "--angles must be a non-empty list of finite degrees",
                ));
            }
        } else if self.views.is_some_and(|v| !(1..=100_000).contains(&v)) {
            return Err(invalid("--views must be in 1..=100000"));
        }
        if let Some(f) = self.full_views {
            let v = self.views.unwrap_or(default_views);
            if !(v..=100_000).contains(&f) {
                return Err(invalid(format!(
                    "--full-views {f} must be in --views ({v})..=100000"
                )));
            }
        }
        if self.n_det == Some(0) {
            return Err(invalid("--n-det must be positive"));
        }
        if self
            .det_spacing
            .is_some_and(|s| !(s.is_finite() && s > 0.0))
        {
            return Err(invalid("--det-spacing must be positive"));
        }
        Ok(())
    }

    /// The parallel-beam bin width (default 1 pixel).
    fn parallel_det_spacing(&self) -> f32 {
        self.det_spacing.unwrap_or(1.0)
    }

    /// The full and the measured view sets: (full angles in degrees, indices of the measured
    /// views in it).
    fn view_sets(&self, default_views: usize) -> (Vec<f32>, Vec<usize>) {
        if let Some(angles) = &self.angles {
            return (angles.clone(), (0..angles.len()).collect());
        }
        let views = self.views.unwrap_or(default_views);
        let full = self.full_views.unwrap_or(views);
        let angles = (0..full).map(|k| k as f32 * 180.0 / full as f32).collect();
        // The measured views: the equispaced subset nearest to k·full/views (all distinct
        // since full ≥ views).
        let kept = (0..views)
            .map(|k| ((k * full) as f64 / views as f64).round() as usize)
            .collect();
        (angles, kept)
    }

    /// Detector bins: `n_det` or ⌈√2·N⌉.
    fn detector_bins(&self, size: usize) -> usize {
        self.n_det
            .unwrap_or_else(|| RadonGeometry::default_n_det(size))
    }

    /// The fan geometry over all source angles of `view_count` views (see
    /// [`FanSpec::geometry`]).
    fn fan_geometry(
        &self,
        fan: &FanSpec,
        size: usize,
        view_count: usize,
    ) -> Result<medsgm_operators::FanGeometry> {
        fan.geometry(
            size,
            self.n_det,
            self.det_spacing,
            self.angles.as_deref(),
            view_count,
        )
    }
}

/// An image to simulate a CT measurement of: square, whether it is in HU (a DICOM CT slice)
/// and its pixel spacing.
pub struct CtImage {
    /// The image (DICOM padding replaced by air).
    pub image: Array2<f32>,
    /// Whether the image is in HU.
    pub hu: bool,
    /// The in-plane pixel spacing in mm, if known.
    pub spacing: Option<f32>,
}

/// The image, checked to be square (parallel-beam CT reconstructs N×N images), whether it is
/// in HU (a DICOM CT slice) and its pixel spacing (`t.pixel_spacing`, else the DICOM
/// header's). DICOM padding (Pixel Padding Value: outside the field of view) becomes air, μ = 0.
pub fn square_image(
    t: &SimTarget,
    (mut image, source): (Array2<f32>, Option<DicomVolume>),
) -> Result<CtImage> {
    let spacing = t
        .pixel_spacing
        .or_else(|| source.as_ref().and_then(|s| s.in_plane_spacing_mm()));
    let hu = source.as_ref().is_some_and(|s| s.is_hu());
    if let Some(p) = source.as_ref().filter(|_| hu).and_then(|s| s.padding()) {
        image.mapv_inplace(|v| if p.contains(v) { AIR_HU } else { v });
    }
    check_image_size(t, &image, MAX_CT_SIZE)?;
    if image.nrows() != image.ncols() {
        return Err(invalid(format!(
            "{} is {}x{}; CT needs a square image",
            t.input.display(),
            image.nrows(),
            image.ncols()
        )));
    }
    Ok(CtImage { image, hu, spacing })
}

/// Bytes of `planes` f32 sinograms of `views` × `bins`.
fn sinogram_bytes(views: usize, bins: usize, planes: u64) -> u64 {
    bytes_of(&[(
        (views as u64)
            .saturating_mul(bins as u64)
            .saturating_mul(planes),
        F32,
    )])
}

/// Fails naming the input and the scan (invalid input) when simulating a `size`² CT image
/// with `views` × `bins` and `sinogram_bytes` of sinogram buffers exceeds the memory budget
/// (the image planes: the image, its HU/attenuation copies and the projector's padded row and
/// column copies).
fn check_memory(
    t: &SimTarget,
    (size, views, bins): (usize, usize, usize),
    sinogram_bytes: u64,
) -> Result<()> {
    let image = bytes_of(&[(
        (size as u64 + 3)
            .saturating_mul(size as u64)
            .saturating_mul(8),
        F32,
    )]);
    t.budget.check(
        &format!("{} ({views} views × {bins} bins)", t.input.display()),
        image.saturating_add(sinogram_bytes),
    )
}

/// Largest CT image side (the Radon operator's bound).
const MAX_CT_SIZE: usize = 4096;

/// Fails naming the input when the image has a side below 2 or above `max`.
fn check_image_size(t: &SimTarget, image: &Array2<f32>, max: usize) -> Result<()> {
    let (h, w) = image.dim();
    if h < 2 || w < 2 || h > max || w > max {
        return Err(invalid(format!(
            "{} is {h}x{w}; a simulated measurement needs sides of 2 to {max} pixels",
            t.input.display()
        )));
    }
    Ok(())
}

/// Fails naming the input when the simulated data overflow (non-finite values); otherwise
/// writes the measurement.
fn check_and_save(t: &SimTarget, meas: &Measurement) -> Result<()> {
    let finite = match &meas.data {
        MeasurementData::Sinogram(s) => s.iter().all(|v| v.is_finite()),
        MeasurementData::KSpace(k) => k.iter().all(|v| v.re.is_finite() && v.im.is_finite()),
    };
    if !finite {
        return Err(invalid(format!(
            "{}: its simulated measurement overflows (values too large for float32)",
            t.input.display()
        )));
    }
    save_measurement(&t.out, meas)
}

/// The provenance record of a simulation.
fn provenance(t: &SimTarget) -> Provenance {
    Provenance {
        source: t.input.display().to_string(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    }
}

/// Sparse-view sinogram y = P(Λ) T x of a parallel-beam T, or of a fan-beam T with `fan`
/// (+ pre-log Poisson and electronic noise, or Gaussian noise); written to `t.out`.
pub fn simulate_ct(
    t: &SimTarget,
    img: CtImage,
    v: &CtViews,
    fan: Option<&FanSpec>,
    noise: CtNoise,
) -> Result<Measurement> {
    let size = img.image.nrows();
    let (angles, kept) = v.view_sets(23);
    // The f32 sinogram planes held at once: the clean sinogram and the written data, and with
    // noise the physical, noisy and rescaled copies.
    let planes = if matches!(noise, CtNoise::None) { 2 } else { 5 };
    let geometry = match fan {
        None => {
            let n_det = v.detector_bins(size);
            let views = angles.len();
            let g = Geometry::ParallelBeam {
                size,
                angles_deg: angles,
                n_det,
                det_spacing: v.parallel_det_spacing(),
            };
            g.validate_ct().invalid_input()?;
            let sino = sinogram_bytes(views, n_det, planes);
            check_memory(t, (size, views, n_det), sino)?;
            g
        }
        Some(fan) => {
            let fan = v.fan_geometry(fan, size, angles.len())?;
            // the sinogram planes and the three per-ray tables of the measured views
            let sino = sinogram_bytes(fan.n_views(), fan.n_det, planes)
                .saturating_add(sinogram_bytes(kept.len(), fan.n_det, 3));
            check_memory(t, (size, fan.n_views(), fan.n_det), sino)?;
            Geometry::fan_beam(&fan)
        }
    };
    let scan = CtScan {
        geometry,
        kept,
        noise,
    };
    let mut meas = scan.simulate(&img.image, t.seed, img.hu).invalid_input()?;
    meas.sidecar.provenance = Some(provenance(t));
    meas.sidecar.pixel_spacing_mm = img.spacing;
    check_and_save(t, &meas)?;
    Ok(meas)
}

/// The metal-artifact simulation's physical settings.
#[derive(Debug, Clone, Copy)]
pub struct MarSpec {
    /// Incident photons per bin of the Poisson noise.
    pub i0: f64,
    /// Physical width of the image square in mm.
    pub fov_mm: f32,
    /// Implant material (energy dependence of the metal).
    pub metal_material: Material,
}

impl MarSpec {
    /// Checks the dose and field of view (invalid input naming the flag).
    pub fn validate(&self) -> Result<()> {
        if !(self.i0.is_finite() && self.i0 > 0.0) {
            return Err(invalid("--i0 (--dose) must be a positive photon count"));
        }
        if !(self.fov_mm.is_finite() && self.fov_mm > 0.0) {
            return Err(invalid("--fov-mm must be positive"));
        }
        Ok(())
    }
}

/// Full-view metal-corrupted sinogram of an HU image, Λ = complement of the metal trace;
/// written to `t.out` with its mask and metal companions.
pub fn simulate_mar(
    t: &SimTarget,
    hu: Array2<f32>,
    v: &CtViews,
    fan: Option<&FanSpec>,
    m: MarSpec,
) -> Result<Measurement> {
    let size = hu.nrows();
    let metal = segment_metal(&hu.view(), METAL_THRESHOLD_HU, 0).invalid_input()?;
    if !metal.iter().any(|&v| v) {
        return Err(invalid(format!(
            "{} has no metal: no pixel above {METAL_THRESHOLD_HU} HU (mar needs an HU image; for PNG pass --in-window LOW,HIGH)",
            t.input.display()
        )));
    }
    let (angles, _) = v.view_sets(180);
    let geometry = match fan {
        None => Geometry::ParallelBeam {
            size,
            n_det: v.detector_bins(size),
            angles_deg: angles,
            det_spacing: v.parallel_det_spacing(),
        },
        Some(fan) => {
            let views = angles.len();
            Geometry::fan_beam(&v.fan_geometry(fan, size, views)?)
        }
    };
    geometry.validate_ct().invalid_input()?;
    let (views, n_det) = match &geometry {
        Geometry::ParallelBeam {
            angles_deg, n_det, ..
        }
        | Geometry::FanBeam {
            angles_deg, n_det, ..
        } => (angles_deg.len(), *n_det),
        Geometry::Cartesian { .. } => return Err(invalid("mar needs a CT geometry")),
    };
    // the metal simulation's sinogram planes over the sub-binned detector, and the parallel
    // adjoint's padded views
    let reach = size as f64 * std::f64::consts::FRAC_1_SQRT_2 / f64::from(v.parallel_det_spacing());
    let padded = n_det.saturating_add(2 * (reach.min(1e12) as usize).saturating_add(16));
    let fine = n_det.saturating_mul(MarSimParams::default().detector_oversampling);
    check_memory(
        t,
        (size, views, n_det),
        sinogram_bytes(views, padded.max(fine), 12),
    )?;
    let projector = crate::task::ct_scan::projector(&geometry, None).invalid_input()?;
    let params = MarSimParams {
        fov_mm: m.fov_mm,
        i0: m.i0,
        metal_material: match m.metal_material {
            Material::Titanium => MetalMaterial::Titanium,
            Material::Steel => MetalMaterial::Steel,
        },
        ..MarSimParams::default()
    };
    // A user image carries the metal at full pixel coverage: c = 1 on the mask, and the
    // tissue value under it is irrelevant (weight 1 − c = 0).
    let metal_fraction = metal.mapv(|v| if v { 1.0f32 } else { 0.0 });
    let sim = simulate_metal_artifacts(
        &projector,
        &hu.view(),
        &metal_fraction.view(),
        &params,
        t.seed,
    )
    .invalid_input()?;
    // The trace of the metal dilated by one pixel (the 3×3 max-pool of the reference code).
    let trace = metal_trace(
        &projector,
        &dilate(&metal.view(), 1).view(),
        TRACE_THRESHOLD,
    )?;
    let data = MeasurementData::Sinogram(sim.sinogram);
    let mut sidecar = Sidecar::new(
        Problem::Mar,
        &data,
        geometry,
        Mask::Sinogram {
            file: companion_name(&t.out, "mask"),
        },
        Noise::PolychromaticMetal {
            i0: m.i0,
            fov_mm: m.fov_mm,
            metal_material: m
                .metal_material
                .to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default(),
            seed: t.seed,
        },
        "line integral of linear attenuation (mu per pixel length)",
    );
    sidecar.mu_water_per_pixel = Some(sim.mu_water_per_pixel);
    sidecar.metal_mask = Some(companion_name(&t.out, "metal"));
    sidecar.provenance = Some(provenance(t));
    let meas = Measurement {
        sidecar,
        data,
        sinogram_mask: Some(mar_mask(&trace.view())),
        metal_mask: Some(metal),
    };
    check_and_save(t, &meas)?;
    Ok(meas)
}

/// k-space y = P(Λ) F x (+ complex Gaussian noise), stored zero-filled on the full grid;
/// `t.pixel_spacing` (else the DICOM header's) is recorded in the sidecar; written to `t.out`.
pub fn simulate_mri(
    t: &SimTarget,
    (image, source): (Array2<f32>, Option<DicomVolume>),
    scan: &MriScan,
) -> Result<Measurement> {
    let spacing = t
        .pixel_spacing
        .or_else(|| source.as_ref().and_then(|s| s.in_plane_spacing_mm()));
    check_image_size(t, &image, MAX_KSPACE_SIDE)?;
    let (h, w) = image.dim();
    // complex k-space planes: full, noisy, masked, the FFT's buffers
    t.budget.check(
        &t.input.display().to_string(),
        bytes_of(&[
            ((h as u64).saturating_mul(w as u64).saturating_mul(6), 8),
            ((h as u64).saturating_mul(w as u64).saturating_mul(3), F32),
        ]),
    )?;
    let mut meas = scan.simulate(&image, t.seed).invalid_input()?;
    meas.sidecar.provenance = Some(provenance(t));
    meas.sidecar.pixel_spacing_mm = spacing;
    check_and_save(t, &meas)?;
    Ok(meas)
}
