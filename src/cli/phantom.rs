//! `medsgm phantom`: write a phantom image.

use crate::cli::args::{ImageOutput, MemoryArgs};
use crate::task::phantom::{Metal, PhantomKind, PhantomSpec, PhantomUnits};
use anyhow::Result;
use clap::Args;

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
    pub units: PhantomUnits,
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

/// Runs `medsgm phantom`.
pub fn run(a: &PhantomArgs) -> Result<()> {
    let spec = PhantomSpec {
        kind: a.kind,
        size: a.size,
        seed: a.seed,
        n_ellipses: a.n_ellipses,
        units: a.units,
        metal: a.metal,
    };
    spec.validate()?;
    let target = a.output.target();
    target.validate()?;
    a.memory
        .budget()
        .check(&format!("--size {}", a.size), spec.bytes())?;
    let (image, window) = spec.generate()?;
    target.write(&image.view(), window)?;
    println!(
        "wrote {} ({}x{}, values in [{:.3}, {:.3}])",
        target.out.display(),
        a.size,
        a.size,
        image.fold(f32::INFINITY, |m, &v| m.min(v)),
        image.fold(f32::NEG_INFINITY, |m, &v| m.max(v))
    );
    Ok(())
}
