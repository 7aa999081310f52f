//! `medsgm recon {ct,mri,mar}`: reconstruct an image from a measurement file.

use crate::cli::args::{not_available, progress, ImageOutput};
use crate::cli::{invalid, InputContext};
use crate::io::image_io::Window;
use crate::io::measurement::{
    load_measurement, Geometry, Kind, Mask, Measurement, MeasurementData,
};
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use medsgm_operators::solvers::{fista_tv, zero_filled, ComplexPart, FistaTvParams};
use medsgm_operators::{Fft2, LinearOperator, RealInput, Subsampled};
use ndarray::{Array2, ArrayViewD};
use std::path::PathBuf;

/// The problem a measurement belongs to (must match its sidecar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Problem {
    /// Sparse-view CT.
    Ct,
    /// Undersampled MRI.
    Mri,
    /// Metal-artifact removal.
    Mar,
}

/// Reconstruction methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Filtered back-projection (CT, MAR).
    Fbp,
    /// FISTA with isotropic total variation (CT, MRI).
    FistaTv,
    /// Zero-filled inverse FFT (MRI).
    ZeroFilled,
    /// Linear interpolation across the metal trace, then FBP (MAR).
    Li,
}

/// FBP filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FilterChoice {
    /// Ramp.
    RamLak,
    /// Ramp × sinc.
    SheppLogan,
    /// Ramp × cosine.
    Cosine,
    /// Ramp × Hamming window.
    Hamming,
    /// Ramp × Hann window.
    Hann,
}

/// Arguments of `medsgm recon`.
#[derive(Debug, Clone, Args)]
pub struct ReconArgs {
    /// The inverse problem.
    #[arg(value_enum)]
    pub problem: Problem,
    /// Measurement file (.npy with its .json sidecar).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Reconstruction method.
    #[arg(long, value_enum)]
    pub method: Method,
    /// FBP filter.
    #[arg(long, value_enum, default_value = "ram-lak")]
    pub filter: FilterChoice,
    /// FISTA-TV iterations.
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// FISTA-TV regularisation weight λ in ½‖Ax − y‖² + λ TV(x).
    #[arg(long, default_value_t = 0.005)]
    pub tv_weight: f32,
    /// FISTA-TV: project onto x ≥ 0 after each step.
    #[arg(long)]
    pub nonnegative: bool,
    /// Output image.
    #[command(flatten)]
    pub output: ImageOutput,
}

impl Problem {
    fn kind(self) -> Kind {
        match self {
            Problem::Ct => Kind::Ct,
            Problem::Mri => Kind::Mri,
            Problem::Mar => Kind::Mar,
        }
    }
    fn methods(self) -> &'static [Method] {
        match self {
            Problem::Ct => &[Method::Fbp, Method::FistaTv],
            Problem::Mri => &[Method::ZeroFilled, Method::FistaTv],
            Problem::Mar => &[Method::Li, Method::Fbp],
        }
    }
}

/// Loads the measurement and checks it against the requested problem and method.
fn load_checked(a: &ReconArgs) -> Result<Measurement> {
    if !a.problem.methods().contains(&a.method) {
        return Err(invalid(format!(
            "method {:?} does not apply to {}; choose one of {:?}",
            a.method,
            a.problem.kind(),
            a.problem.methods()
        )));
    }
    if a.method == Method::FistaTv {
        if !(1..=100_000).contains(&a.iterations) {
            return Err(invalid("--iterations must be in 1..=100000"));
        }
        if !(a.tv_weight.is_finite() && a.tv_weight >= 0.0) {
            return Err(invalid("--tv-weight must be non-negative"));
        }
    }
    a.output.validate()?;
    let m = load_measurement(&a.input).invalid_input()?;
    if m.sidecar.kind != a.problem.kind() {
        return Err(invalid(format!(
            "{} is a {} measurement, not {}",
            a.input.display(),
            m.sidecar.kind,
            a.problem.kind()
        )));
    }
    Ok(m)
}

/// FISTA-TV on any real-image operator, with a progress bar.
pub fn run_fista_tv<A: LinearOperator<In = f32>>(
    op: &A,
    y: &ArrayViewD<A::Out>,
    iterations: usize,
    weight: f32,
    nonnegative: bool,
) -> Result<Array2<f32>> {
    let params = FistaTvParams {
        weight,
        iterations,
        nonnegative,
        ..FistaTvParams::default()
    };
    let bar = progress(iterations as u64, "FISTA-TV");
    let x = fista_tv(op, y, &params, None, |_, _| bar.inc(1))?;
    bar.finish_and_clear();
    Ok(x)
}

/// MRI: A = P(Λ) F on real images, Λ = the measured columns.
fn recon_mri(a: &ReconArgs, m: &Measurement) -> Result<Array2<f32>> {
    let (Geometry::Cartesian { h, w }, Mask::Columns { kept, .. }, MeasurementData::KSpace(k)) =
        (&m.sidecar.geometry, &m.sidecar.mask, &m.data)
    else {
        bail!("an mri measurement must hold cartesian k-space with a column mask");
    };
    let mask = Array2::from_shape_fn((*h, *w), |(_, j)| kept.binary_search(&j).is_ok());
    let op = Subsampled::new(RealInput::new(Fft2::new(*h, *w)?), mask.into_dyn())?;
    let y = op.gather(&k.view().into_dyn());
    Ok(match a.method {
        Method::ZeroFilled => zero_filled(&op, &y.view(), ComplexPart::Real)?,
        _ => run_fista_tv(
            &op,
            &y.view().into_dyn(),
            a.iterations,
            a.tv_weight,
            a.nonnegative,
        )?,
    })
}

/// Runs `medsgm recon`.
pub fn run(a: &ReconArgs) -> Result<()> {
    let m = load_checked(a)?;
    let image = match a.problem {
        Problem::Mri => recon_mri(a, &m)?,
        Problem::Ct | Problem::Mar => return Err(not_available("CT reconstruction")),
    };
    a.output.write(&image.view(), Window::UNIT)?;
    println!(
        "wrote {} ({}x{}, {:?})",
        a.output.out.display(),
        image.nrows(),
        image.ncols(),
        a.method
    );
    Ok(())
}
