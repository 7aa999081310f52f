//! The latent-prior methods of the benchmark: an LSGM checkpoint driving
//! [`crate::lsgm::latent_solve`] (latent-dc: reverse diffusion in latent space with a
//! data-consistency step through the decoder) or [`crate::lsgm::latent_decomposed_solve`]
//! (latent-dds, latent-diffpir), and [`SolverSet`], which routes each score method to the pixel or the latent
//! solver so that both priors run in one `medsgm bench recon`.

use crate::eval::cases::{ScoreSolver, Solved};
use crate::eval::method::MethodParams;
use crate::lsgm::{
    latent_decomposed_solve, latent_solve, LatentDcConfig, LatentPrior, LsgmCheckpoint, LsgmConfig,
    Vae,
};
use crate::task::Method;
use anyhow::{bail, Context, Result};
use candle_core::Device;
use medsgm_recon::decomposed::{DecomposedConfig, Variant};

use medsgm_operators::{CtProjector, Fft2, RealInput, Subsampled, Transform};
use ndarray::Array1;
use num_complex::Complex32;
use std::path::Path;

/// An LSGM checkpoint (VAE + EMA prior) as a [`ScoreSolver`] for the latent methods
/// ([`Method::LatentDc`], [`Method::LatentDds`], [`Method::LatentDiffPir`]; CPU, batches of `batch` images).
pub struct LatentSolver {
    vae: Vae,
    prior: LatentPrior,
    config: LsgmConfig,
    batch: usize,
    device: Device,
}

impl LatentSolver {
    /// Loads the LSGM checkpoint at `path`.
    pub fn load(path: &Path, batch: usize) -> Result<Self> {
        let device = crate::model::device()?;
        let ck = LsgmCheckpoint::load(path, &device)?;
        Ok(Self {
            vae: ck.vae(&device)?,
            prior: ck.prior(true, &device)?,
            config: ck.meta.config,
            batch: batch.max(1),
            device,
        })
    }

    fn run<T: Transform<In = f32>>(
        &self,
        op: &Subsampled<T>,
        ys: &[Array1<T::Out>],
        method: Method,
        params: &MethodParams,
    ) -> Result<Solved> {
        if !method.is_latent() {
            bail!("the LSGM checkpoint runs the latent methods, not {method}");
        }
        let mut out = Solved {
            images: Vec::with_capacity(ys.len()),
            nfe: 0,
        };
        for (b, chunk) in ys.chunks(self.batch).enumerate() {
            let seed = medsgm_recon::batch_seed(params.seed, b);
            let variant = match method {
                Method::LatentDds => Some(Variant::Dds),
                Method::LatentDiffPir => Some(Variant::DiffPir),
                _ => None,
            };
            let r = if let Some(variant) = variant {
                let dds = DecomposedConfig {
                    variant,
                    steps: params.steps,
                    eta: params.eta,
                    gamma: params.gamma,
                    cg_iterations: params.cg_iterations,
                    lipschitz: op.norm_squared(),
                };
                latent_decomposed_solve(
                    &self.vae,
                    &self.prior,
                    &self.config,
                    op,
                    chunk,
                    &dds,
                    params.t_start,
                    seed,
                    &self.device,
                )?
            } else {
                let dc = LatentDcConfig {
                    steps: params.steps,
                    step_size: params.latent_step_size,
                    seed,
                };
                latent_solve(
                    &self.vae,
                    &self.prior,
                    &self.config,
                    op,
                    chunk,
                    &dc,
                    &self.device,
                )?
            };
            if r.images.iter().any(|m| m.iter().any(|v| !v.is_finite())) {
                bail!("{method} diverged (non-finite output); try a smaller latent_step_size or gamma");
            }
            out.images.extend(r.images);
            out.nfe = r.nfe;
        }
        Ok(out)
    }
}

impl ScoreSolver for LatentSolver {
    fn image_size(&self) -> usize {
        self.config.vae.image_size
    }

    fn solve_ct(
        &self,
        op: &Subsampled<CtProjector>,
        ys: &[Array1<f32>],
        method: Method,
        params: &MethodParams,
    ) -> Result<Solved> {
        self.run(op, ys, method, params)
    }

    fn solve_fft(
        &self,
        op: &Subsampled<RealInput<Fft2>>,
        ys: &[Array1<Complex32>],
        method: Method,
        params: &MethodParams,
    ) -> Result<Solved> {
        self.run(op, ys, method, params)
    }
}

/// A pixel-space and a latent solver behind one [`ScoreSolver`]: the latent methods go to the
/// latent one, every other score method to the pixel one.
pub struct SolverSet {
    pixel: Option<Box<dyn ScoreSolver>>,
    latent: Option<Box<dyn ScoreSolver>>,
}

impl SolverSet {
    /// Combines the solvers (at least one; both must model images of one size).
    pub fn new(
        pixel: Option<Box<dyn ScoreSolver>>,
        latent: Option<Box<dyn ScoreSolver>>,
    ) -> Result<Self> {
        match (&pixel, &latent) {
            (None, None) => bail!("no score model given"),
            (Some(p), Some(l)) if p.image_size() != l.image_size() => bail!(
                "the pixel model is {0}x{0} but the LSGM is {1}x{1}",
                p.image_size(),
                l.image_size()
            ),
            _ => Ok(Self { pixel, latent }),
        }
    }

    fn pick(&self, method: Method) -> Result<&dyn ScoreSolver> {
        let (solver, flag) = if method.is_latent() {
            (&self.latent, "--latent-model")
        } else {
            (&self.pixel, "--model")
        };
        solver
            .as_deref()
            .with_context(|| format!("{method} needs {flag}"))
    }
}

impl ScoreSolver for SolverSet {
    fn image_size(&self) -> usize {
        self.pixel
            .as_ref()
            .or(self.latent.as_ref())
            .map(|s| s.image_size())
            .unwrap_or(0)
    }

    fn solve_ct(
        &self,
        op: &Subsampled<CtProjector>,
        ys: &[Array1<f32>],
        method: Method,
        params: &MethodParams,
    ) -> Result<Solved> {
        self.pick(method)?.solve_ct(op, ys, method, params)
    }

    fn solve_fft(
        &self,
        op: &Subsampled<RealInput<Fft2>>,
        ys: &[Array1<Complex32>],
        method: Method,
        params: &MethodParams,
    ) -> Result<Solved> {
        self.pick(method)?.solve_fft(op, ys, method, params)
    }
}
