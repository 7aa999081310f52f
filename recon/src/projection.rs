//! The measurement side of score-based inverse-problem solving (thesis Ch. 8, §8.3):
//! noisy measurement draws ŷ_t = α(t) y + β(t) A z, the proximal data-consistency step
//! k(x, ŷ, λ) of Theorem 8.1 applied to a batch of images held in a candle tensor, and the
//! likelihood gradient Aᴴ(ŷ − A x)/σ² used by the "Score SDE" and "Langevin" baselines.
//!
//! Operators run on ndarray (rustfft/rayon) in the image domain; the score network runs in
//! candle. This module is the boundary: a batch tensor [B, …, H, W] is split into B images,
//! each processed in parallel with its own seeded random stream, and reassembled.

use candle_core::{Device, Tensor};
use medsgm_operators::solvers::proximal_cg;
use medsgm_operators::{LinearOperator, Scalar, Subsampled, Transform};
use ndarray::{Array1, ArrayD, IxDyn, Zip};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Errors at the tensor ↔ operator boundary.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// Tensor conversion failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The batch does not match the operator or the measurements.
    #[error("batch mismatch: {0}")]
    Batch(String),
}

/// A batch of measured images: one operator A = P(Λ)T shared by the batch (borrowed) and one
/// measurement vector y per image, each image with its own seeded random stream (so results do
/// not depend on thread scheduling).
pub struct MeasuredBatch<'a, T: Transform<In = f32>> {
    op: &'a Subsampled<T>,
    /// A as a transform of its own where cheaper ([`Transform::restricted`]: the Radon
    /// transform over the measured views), used by the CG data step.
    compact: Option<T>,
    y: Vec<Array1<T::Out>>,
    rngs: Vec<ChaCha8Rng>,
}

impl<'a, T: Transform<In = f32>> MeasuredBatch<'a, T> {
    /// Binds measurements to an operator. `seed` determines every noise draw; image `i` uses
    /// the stream `seed`·2⁶⁴ + `i` of ChaCha8.
    pub fn new(
        op: &'a Subsampled<T>,
        y: Vec<Array1<T::Out>>,
        seed: u64,
    ) -> Result<Self, ProjectionError> {
        let m = op.num_measurements();
        if let Some((i, bad)) = y.iter().enumerate().find(|(_, v)| v.len() != m) {
            return Err(ProjectionError::Batch(format!(
                "measurement {i} has {} entries, the operator keeps {m}",
                bad.len()
            )));
        }
        let rngs = (0..y.len())
            .map(|i| {
                let mut r = ChaCha8Rng::seed_from_u64(seed);
                r.set_stream(i as u64);
                r
            })
            .collect();
        let compact = op.transform().restricted(op.mask());
        Ok(Self {
            op,
            compact,
            y,
            rngs,
        })
    }

    /// The operator A.
    pub fn operator(&self) -> &'a Subsampled<T> {
        self.op
    }

    /// Number of images in the batch.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True when the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The measurements.
    pub fn measurements(&self) -> &[Array1<T::Out>] {
        &self.y
    }

    /// One PC-with-projection data-consistency step for the whole batch: draws a fresh
    /// ŷ_t = α y + β A z per image and returns k(x, ŷ_t, λ) (thesis Alg. 8.2 lines 3–4).
    pub fn project_noisy(
        &mut self,
        x: &Tensor,
        alpha: f32,
        beta: f32,
        lambda: f32,
    ) -> Result<Tensor, ProjectionError> {
        let op = self.op;
        map_images(op, &self.y, &mut self.rngs, x, |img, y, rng| {
            let y_hat = op.noisy_measurement(&y.view(), alpha, beta, rng);
            op.consistency(&img.view(), &y_hat.view(), lambda)
        })
    }

    /// The final hard projection k(x, y, 1) onto {A x = y} with the clean measurements.
    pub fn project_exact(&mut self, x: &Tensor) -> Result<Tensor, ProjectionError> {
        let op = self.op;
        map_images(op, &self.y, &mut self.rngs, x, |img, y, _| {
            op.consistency(&img.view(), &y.view(), 1.0)
        })
    }

    /// `f(image, y)` for every image of the batch `x` with its measurement, in parallel (the
    /// read-only counterpart of [`map_images`]: no random stream, fallible).
    fn each_image<R, F>(&self, x: &Tensor, f: F) -> Result<Vec<R>, ProjectionError>
    where
        R: Send,
        F: Fn(&ArrayD<f32>, &Array1<T::Out>) -> Result<R, ProjectionError> + Sync,
    {
        let data = images(self.op, self.y.len(), x)?;
        let shape = self.op.domain_shape();
        let per_image: usize = shape.iter().product();
        data.par_chunks(per_image)
            .zip(self.y.par_iter())
            .map(|(src, y)| {
                let img = ArrayD::from_shape_vec(IxDyn(&shape), src.to_vec())
                    .map_err(|e| ProjectionError::Batch(e.to_string()))?;
                f(&img, y)
            })
            .collect()
    }

    /// The proximal data step of the decomposed samplers (DDS, DiffPIR) for every image:
    /// `iterations` CG iterations on (I + γ AᴴA) x = x₀ + γ Aᴴy started at x₀
    /// ([`medsgm_operators::solvers::proximal_cg`]), with the clean measurements y.
    pub fn proximal(
        &self,
        x0: &Tensor,
        gamma: f64,
        iterations: usize,
    ) -> Result<Tensor, ProjectionError> {
        let solved = self.each_image(x0, |img, y| {
            match &self.compact {
                Some(c) => {
                    let y = y
                        .view()
                        .into_shape_with_order(IxDyn(&c.range_shape()))
                        .map_err(|e| ProjectionError::Batch(e.to_string()))?;
                    proximal_cg(c, &y, &img.view(), gamma, iterations)
                }
                None => proximal_cg(
                    self.op,
                    &y.view().into_dyn(),
                    &img.view(),
                    gamma,
                    iterations,
                ),
            }
            .map_err(|e| ProjectionError::Batch(e.to_string()))
        })?;
        stack(solved, x0)
    }

    /// The DPS guidance direction of every image: Aᴴ(A x − y)/‖A x − y‖ = ∇ₓ‖A x − y‖ (zero
    /// where the residual vanishes), with the clean measurements y.
    pub fn residual_direction(&self, x: &Tensor) -> Result<Tensor, ProjectionError> {
        let directions = self.each_image(x, |img, y| {
            let mut r = self.op.forward(&img.view());
            Zip::from(&mut r)
                .and(&y.view().into_dyn())
                .for_each(|a, &b| *a = *a - b);
            let norm = r.iter().map(|v| v.abs2()).sum::<f64>().sqrt();
            let mut g = self.op.adjoint(&r.view());
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            g.mapv_inplace(|v| (v as f64 * scale) as f32);
            Ok(g)
        })?;
        stack(directions, x)
    }

    /// The relative data residual ‖A x − y‖ / ‖y‖ of every image (‖A x‖ when y = 0).
    pub fn relative_residuals(&self, x: &Tensor) -> Result<Vec<f64>, ProjectionError> {
        self.each_image(x, |img, y| {
            let ax = self.op.forward(&img.view());
            let (mut num, mut den) = (0f64, 0f64);
            for (&a, &b) in ax.iter().zip(y.iter()) {
                num += (a - b).abs2();
                den += b.abs2();
            }
            Ok(if den > 0.0 {
                (num / den).sqrt()
            } else {
                num.sqrt()
            })
        })
    }

    /// ∇ₓ log N(ŷ; A x, σ² I) = Aᴴ(ŷ − A x)/σ² per image, with ŷ = α y + β A z freshly drawn
    /// when `beta > 0` (the "Score SDE" baseline, thesis B.36) or ŷ = y when `beta == 0`
    /// (the "Langevin" baseline of Jalal et al.).
    pub fn likelihood_grad(
        &mut self,
        x: &Tensor,
        alpha: f32,
        beta: f32,
        sigma: f32,
    ) -> Result<Tensor, ProjectionError> {
        let op = self.op;
        let inv_var = 1.0 / (sigma * sigma);
        map_images(op, &self.y, &mut self.rngs, x, |img, y, rng| {
            let y_hat = if beta > 0.0 {
                op.noisy_measurement(&y.view(), alpha, beta, rng)
            } else {
                y.mapv(|v| medsgm_operators::Scalar::scale(v, alpha))
            };
            let ax = op.forward(&img.view());
            let r: ArrayD<T::Out> = ArrayD::from_shape_fn(IxDyn(&[y_hat.len()]), |i| {
                medsgm_operators::Scalar::scale(y_hat[i[0]] - ax[[i[0]]], inv_var)
            });
            op.adjoint(&r.view())
        })
    }
}

/// Per-image results restacked into a tensor shaped like `like`.
fn stack(parts: Vec<ArrayD<f32>>, like: &Tensor) -> Result<Tensor, ProjectionError> {
    let data: Vec<f32> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    Ok(Tensor::from_vec(data, like.dims(), like.device())?)
}

/// The host copy of `x` after checking that it holds `n` images of the operator's domain shape.
fn images<T: Transform<In = f32>>(
    op: &Subsampled<T>,
    n: usize,
    x: &Tensor,
) -> Result<Vec<f32>, ProjectionError> {
    let shape = op.domain_shape();
    let per_image: usize = shape.iter().product();
    let data = x
        .to_device(&Device::Cpu)?
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    if data.len() != per_image * n {
        return Err(ProjectionError::Batch(format!(
            "tensor {:?} does not hold {n} images of shape {shape:?}",
            x.dims()
        )));
    }
    Ok(data)
}

/// Splits `x` into per-image arrays of the operator's domain shape, applies `f` in parallel with
/// each image's measurement and random stream, and restacks into a tensor shaped like `x`.
fn map_images<T, F>(
    op: &Subsampled<T>,
    ys: &[Array1<T::Out>],
    rngs: &mut [ChaCha8Rng],
    x: &Tensor,
    f: F,
) -> Result<Tensor, ProjectionError>
where
    T: Transform<In = f32>,
    F: Fn(&ArrayD<f32>, &Array1<T::Out>, &mut ChaCha8Rng) -> ArrayD<f32> + Sync,
{
    let shape = op.domain_shape();
    let per_image: usize = shape.iter().product();
    let data = images(op, ys.len(), x)?;
    let mut out = vec![0f32; data.len()];
    out.par_chunks_mut(per_image)
        .zip(data.par_chunks(per_image))
        .zip(ys.par_iter())
        .zip(rngs.par_iter_mut())
        .for_each(|(((dst, src), y), rng)| {
            let img = ArrayD::from_shape_vec(IxDyn(&shape), src.to_vec())
                .expect("chunk has the domain size");
            let res = f(&img, y, rng);
            for (d, s) in dst.iter_mut().zip(res.iter()) {
                *d = *s;
            }
        });
    Ok(Tensor::from_vec(out, x.dims(), x.device())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayViewD;

    /// T = I: Theorem 8.1 reduces to imputation (thesis §7.5) — measured pixels are replaced.
    struct Identity(usize);

    impl LinearOperator for Identity {
        type In = f32;
        type Out = f32;
        fn domain_shape(&self) -> Vec<usize> {
            vec![self.0, self.0]
        }
        fn range_shape(&self) -> Vec<usize> {
            vec![self.0, self.0]
        }
        fn forward(&self, x: &ArrayViewD<f32>) -> ArrayD<f32> {
            x.to_owned()
        }
        fn adjoint(&self, y: &ArrayViewD<f32>) -> ArrayD<f32> {
            y.to_owned()
        }
    }

    impl Transform for Identity {
        fn inverse(&self, y: &ArrayViewD<f32>) -> ArrayD<f32> {
            y.to_owned()
        }
    }

    fn operator() -> Subsampled<Identity> {
        let n = 4;
        let mask = ArrayD::from_shape_fn(IxDyn(&[n, n]), |i| (i[0] + i[1]) % 2 == 0);
        Subsampled::new(Identity(n), mask).unwrap()
    }

    fn batch(op: &Subsampled<Identity>, seed: u64) -> (MeasuredBatch<'_, Identity>, Tensor) {
        let n = 4;
        let m = op.num_measurements();
        let y = (0..3)
            .map(|b| Array1::from_shape_fn(m, |i| (b * 100 + i) as f32))
            .collect();
        let x = Tensor::arange(0f32, (3 * n * n) as f32, &Device::Cpu)
            .unwrap()
            .reshape((3, 1, n, n))
            .unwrap();
        (MeasuredBatch::new(op, y, seed).unwrap(), x)
    }

    #[test]
    fn exact_projection_imputes_measurements_and_keeps_the_rest() {
        let op = operator();
        let (mut mb, x) = batch(&op, 1);
        let out = mb.project_exact(&x).unwrap().reshape((3, 16)).unwrap();
        let out = out.to_vec2::<f32>().unwrap();
        let xin = x.reshape((3, 16)).unwrap().to_vec2::<f32>().unwrap();
        for b in 0..3 {
            let mut k = 0;
            for p in 0..16 {
                let (i, j) = (p / 4, p % 4);
                if (i + j) % 2 == 0 {
                    assert_eq!(out[b][p], (b * 100 + k) as f32);
                    k += 1;
                } else {
                    assert_eq!(out[b][p], xin[b][p]);
                }
            }
        }
    }

    #[test]
    fn lambda_zero_is_identity_and_seeds_reproduce() {
        let op = operator();
        let (mut mb, x) = batch(&op, 2);
        let same = mb.project_noisy(&x, 1.0, 3.0, 0.0).unwrap();
        let d = (same - &x).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
        let (mut a, _) = batch(&op, 7);
        let (mut b, _) = batch(&op, 7);
        let (mut c, _) = batch(&op, 8);
        let pa = a
            .project_noisy(&x, 1.0, 3.0, 0.5)
            .unwrap()
            .flatten_all()
            .unwrap();
        let pb = b
            .project_noisy(&x, 1.0, 3.0, 0.5)
            .unwrap()
            .flatten_all()
            .unwrap();
        let pc = c
            .project_noisy(&x, 1.0, 3.0, 0.5)
            .unwrap()
            .flatten_all()
            .unwrap();
        assert_eq!(pa.to_vec1::<f32>().unwrap(), pb.to_vec1::<f32>().unwrap());
        assert_ne!(pa.to_vec1::<f32>().unwrap(), pc.to_vec1::<f32>().unwrap());
    }

    #[test]
    fn likelihood_gradient_is_masked_residual_over_variance() {
        let op = operator();
        let (mut mb, x) = batch(&op, 3);
        let g = mb.likelihood_grad(&x, 1.0, 0.0, 2.0).unwrap();
        let g = g.reshape((3, 16)).unwrap().to_vec2::<f32>().unwrap();
        let xin = x.reshape((3, 16)).unwrap().to_vec2::<f32>().unwrap();
        for b in 0..3 {
            let mut k = 0;
            for p in 0..16 {
                if ((p / 4) + (p % 4)) % 2 == 0 {
                    let want = ((b * 100 + k) as f32 - xin[b][p]) / 4.0;
                    assert!((g[b][p] - want).abs() < 1e-5);
                    k += 1;
                } else {
                    assert_eq!(g[b][p], 0.0);
                }
            }
        }
    }

    #[test]
    fn relative_residuals_vanish_after_exact_projection() {
        let op = operator();
        let (mut mb, x) = batch(&op, 5);
        let before = mb.relative_residuals(&x).unwrap();
        // image b: measured pixels hold 16 b + p, y holds 100 b + k
        for (b, r) in before.iter().enumerate() {
            let (mut num, mut den) = (0f64, 0f64);
            let mut k = 0;
            for p in 0..16 {
                if ((p / 4) + (p % 4)) % 2 == 0 {
                    let y = (b * 100 + k) as f64;
                    num += (y - (16 * b + p) as f64).powi(2);
                    den += y * y;
                    k += 1;
                }
            }
            assert!((r - (num / den).sqrt()).abs() < 1e-6, "{r}");
        }
        let projected = mb.project_exact(&x).unwrap();
        let after = mb.relative_residuals(&projected).unwrap();
        assert!(after.iter().all(|&r| r == 0.0), "{after:?}");
    }

    #[test]
    fn mismatched_batches_are_errors() {
        let op = operator();
        let (mut mb, _) = batch(&op, 4);
        let wrong = Tensor::zeros((2, 1, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(mb.project_exact(&wrong).is_err());
    }
}
