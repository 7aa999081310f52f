//! `medsgm phantom`: write a phantom image.

use crate::cli::args::{ImageOutput, MemoryArgs};
use crate::cli::{invalid, InputContext};
use crate::io::image_io::Window;
use crate::io::memory::{bytes_of, F32};
pub use crate::task::phantom::PhantomKind;
use anyhow::Result;
use clap::{Args, ValueEnum};
use medsgm_operators::hu::{hu_to_unit, HuWindow};
use medsgm_operators::phantom;
use medsgm_operators::phantom::anatomical::{anatomical_ct, AnatomicalParams, MetalImplant};

/// Intensity units of anatomical phantoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Units {
    /// Hounsfield units.
    Hu,
    /// Normalised to [0, 1] through the training window.
    Unit,
}

/// Metal implants of anatomical phantoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Metal {
    /// No metal.
    None,
    /// Bilateral hip-prosthesis-like rods.
    HipRods,
    /// Dental-filling-like cluster.
    Dental,
    /// Transpedicular screws and rods.
    SpinalScrews,
    /// One of the above, drawn from the seed.
    Random,
}

impl Metal {
    fn implant(self) -> MetalImplant {
        match self {
            Metal::None => MetalImplant::None,
            Metal::HipRods => MetalImplant::HipRods,
            Metal::Dental => MetalImplant::Dental,
            Metal::SpinalScrews => MetalImplant::SpinalScrews,
            Metal::Random => MetalImplant::Random,
        }
    }
}

/// Arguments of `medsgm phantom`.
#[derive(Debug, Clone, Args)]
pub struct PhantomArgs {
    /// Phantom family.
    #[arg(long, value_enum)]
    pub kind: PhantomKind,
    /// Image side length in pixels.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Random seed (ellipses, anatomical).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of ellipses (--kind ellipses only; default 10).
    #[arg(long)]
    pub n_ellipses: Option<usize>,
    /// Units of anatomical phantoms: HU, or [0, 1] through the window [−1024, 3072] HU.
    #[arg(long, value_enum, default_value = "unit")]
    pub units: Units,
    /// Metal implant of anatomical phantoms.
    #[arg(long, value_enum, default_value = "none")]
    pub metal: Metal,
    /// Where to write it.
    #[command(flatten)]
    pub output: ImageOutput,
    /// Memory budget.
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// Estimated peak memory of a `size`² phantom: the image, the anatomical phantom's label and
/// material maps and the HU/unit copies, and the writer's encoded copy (eight `size`² f32
/// planes in all).
fn phantom_bytes(size: u64) -> u64 {
    bytes_of(&[(size.saturating_mul(size).saturating_mul(8), F32)])
}

/// Runs `medsgm phantom`.
pub fn run(a: &PhantomArgs) -> Result<()> {
    if !(8..=4096).contains(&a.size) {
        return Err(invalid(format!("--size {} must be in 8..=4096", a.size)));
    }
    if a.units == Units::Hu && a.kind != PhantomKind::Anatomical {
        return Err(invalid("--units hu applies to --kind anatomical only"));
    }
    if a.metal != Metal::None && a.kind != PhantomKind::Anatomical {
        return Err(invalid("--metal applies to --kind anatomical only"));
    }
    let n_ellipses = match (a.kind, a.n_ellipses) {
        (PhantomKind::Ellipses, n) => n.unwrap_or(10),
        (_, Some(_)) => return Err(invalid("--n-ellipses applies to --kind ellipses only")),
        (_, None) => 0,
    };
    if a.kind == PhantomKind::Ellipses && !(1..=1000).contains(&n_ellipses) {
        return Err(invalid(format!(
            "--n-ellipses {n_ellipses} must be in 1..=1000"
        )));
    }
    a.output.validate()?;
    a.memory
        .check(&format!("--size {}", a.size), phantom_bytes(a.size as u64))?;
    let (image, window) = match a.kind {
        PhantomKind::SheppLogan => (phantom::shepp_logan(a.size), Window::UNIT),
        PhantomKind::Ellipses => (
            phantom::random_ellipses(a.size, a.seed, n_ellipses),
            Window::UNIT,
        ),
        PhantomKind::Anatomical => {
            let params = AnatomicalParams {
                metal: a.metal.implant(),
                ..AnatomicalParams::default()
            };
            let hu = anatomical_ct(a.size, a.seed, &params).invalid_input()?.hu;
            match a.units {
                Units::Hu => (hu, Window::hu()),
                Units::Unit => (hu_to_unit(&hu.view(), HuWindow::default()), Window::UNIT),
            }
        }
    };
    a.output.write(&image.view(), window)?;
    println!(
        "wrote {} ({}x{}, values in [{:.3}, {:.3}])",
        a.output.out.display(),
        a.size,
        a.size,
        image.fold(f32::INFINITY, |m, &v| m.min(v)),
        image.fold(f32::NEG_INFINITY, |m, &v| m.max(v))
    );
    Ok(())
}
