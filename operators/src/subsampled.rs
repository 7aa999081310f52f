//! The decomposed measurement operator A = P(Λ) T of thesis Proposition 8.1 and the
//! data-consistency step of Theorem 8.1.
//!
//! T is a full transform (Radon over all views, unitary FFT), Λ = diag(m) a binary mask over the
//! full measurement domain, P(Λ) gathers the kept entries (in row-major order) and P⁻¹(Λ)
//! zero-fills them back. Sparse-view CT and metal-artifact removal share the Radon T; all MRI
//! accelerations share the FFT.

use crate::error::{OpError, Result};
use crate::linop::{randn, LinearOperator, Transform};
use crate::scalar::Scalar;
use ndarray::{Array1, ArrayD, ArrayView1, ArrayViewD, IxDyn, Zip};
use rand::Rng;

/// A = P(Λ) T: a full transform followed by a subsampling mask.
#[derive(Debug, Clone)]
pub struct Subsampled<T: Transform> {
    transform: T,
    mask: ArrayD<bool>,
    kept: Vec<usize>,
    /// ‖A‖², computed on first use ([`Subsampled::norm_squared`]).
    norm_squared: std::sync::OnceLock<f64>,
}

impl<T: Transform> Subsampled<T> {
    /// Builds A = P(Λ) T. `mask` must have T's range shape and keep at least one entry.
    pub fn new(transform: T, mask: ArrayD<bool>) -> Result<Self> {
        crate::linop::check_shape("mask", &transform.range_shape(), mask.shape())?;
        let kept: Vec<usize> = mask
            .iter()
            .enumerate()
            .filter_map(|(i, &m)| m.then_some(i))
            .collect();
        if kept.is_empty() {
            return Err(OpError::Param {
                name: "mask",
                reason: "keeps no measurement".into(),
            });
        }
        Ok(Self {
            transform,
            mask,
            kept,
            norm_squared: std::sync::OnceLock::new(),
        })
    }

    /// ‖A‖² by power iteration ([`crate::linop::operator_norm`], seed 0, relative tolerance
    /// 1e-4), on T's restricted form where it has one ([`Transform::restricted`]); computed
    /// once per operator, so solvers called batch after batch with one operator pay it once.
    pub fn norm_squared(&self) -> f64 {
        *self.norm_squared.get_or_init(|| {
            let norm = match self.transform.restricted(&self.mask) {
                Some(compact) => crate::linop::operator_norm(&compact, 100, 1e-4, 0),
                None => crate::linop::operator_norm(self, 100, 1e-4, 0),
            };
            norm * norm
        })
    }

    /// The full transform T.
    pub fn transform(&self) -> &T {
        &self.transform
    }

    /// The mask Λ over the full measurement domain (true = measured).
    pub fn mask(&self) -> &ArrayD<bool> {
        &self.mask
    }

    /// Number of measurements m = tr(Λ).
    pub fn num_measurements(&self) -> usize {
        self.kept.len()
    }

    /// P(Λ): gathers the kept entries of a full measurement (row-major order).
    pub fn gather(&self, full: &ArrayViewD<T::Out>) -> Array1<T::Out> {
        let flat: Vec<T::Out> = full.iter().copied().collect();
        self.kept.iter().map(|&i| flat[i]).collect()
    }

    /// P⁻¹(Λ): zero-fills measurements back into the full measurement domain.
    pub fn zero_fill(&self, y: &ArrayView1<T::Out>) -> ArrayD<T::Out> {
        let mut full = vec![T::Out::zero(); self.mask.len()];
        for (&i, &v) in self.kept.iter().zip(y.iter()) {
            full[i] = v;
        }
        ArrayD::from_shape_vec(IxDyn(self.mask.shape()), full)
            .expect("mask shape matches its length")
    }

    /// Theorem 8.1, in mask form:
    /// k(x, ŷ, λ) = T⁻¹[(1 − λ m) ⊙ T x + λ m ⊙ P⁻¹(Λ) ŷ],
    /// evaluated in the algebraically identical residual form
    /// k(x, ŷ, λ) = x + T⁻¹[λ m ⊙ (P⁻¹(Λ) ŷ − T x)].
    ///
    /// The two agree whenever T⁻¹T = I (the unitary FFT). For the Radon transform T⁻¹ is only
    /// approximate (FBP), and the residual form keeps the properties that matter inside a
    /// sampler: λ = 0 returns x exactly (no repeated FBP blur over thousands of steps) and the
    /// correction acts only through the measured entries. λ = 1 gives A k = ŷ exactly for an
    /// exact inverse and approximately for FBP (see the Radon tests for the bound).
    pub fn consistency(
        &self,
        x: &ArrayViewD<T::In>,
        y_hat: &ArrayView1<T::Out>,
        lambda: f32,
    ) -> ArrayD<T::In> {
        let mut residual = self.transform.forward(x);
        let filled = self.zero_fill(y_hat);
        Zip::from(&mut residual)
            .and(&filled)
            .and(&self.mask)
            .for_each(|r, &y, &m| {
                *r = if m {
                    (y - *r).scale(lambda)
                } else {
                    T::Out::zero()
                };
            });
        let mut out = self.transform.inverse(&residual.view());
        Zip::from(&mut out).and(x).for_each(|o, &xv| *o = xv + *o);
        out
    }

    /// A draw of the noisy measurement process ŷ_t = α(t) y + β(t) A z with z ~ N(0, I) on the
    /// image domain (thesis §8.3.2; for VE α = 1, β = σ(t)). Note the noise is A z, not
    /// i.i.d. noise in measurement space.
    pub fn noisy_measurement<R: Rng + ?Sized>(
        &self,
        y: &ArrayView1<T::Out>,
        alpha: f32,
        beta: f32,
        rng: &mut R,
    ) -> Array1<T::Out> {
        let z: ArrayD<T::In> = randn(&self.transform.domain_shape(), rng);
        let az = self.gather(&self.transform.forward(&z.view()).view());
        Zip::from(y)
            .and(&az)
            .map_collect(|&yv, &n| yv.scale(alpha) + n.scale(beta))
    }
}

impl<T: Transform> LinearOperator for Subsampled<T> {
    type In = T::In;
    type Out = T::Out;

    fn domain_shape(&self) -> Vec<usize> {
        self.transform.domain_shape()
    }

    fn range_shape(&self) -> Vec<usize> {
        vec![self.kept.len()]
    }

    fn forward(&self, x: &ArrayViewD<T::In>) -> ArrayD<T::Out> {
        self.gather(&self.transform.forward(x).view()).into_dyn()
    }

    fn adjoint(&self, y: &ArrayViewD<T::Out>) -> ArrayD<T::In> {
        let y1 = y
            .view()
            .into_dimensionality::<ndarray::Ix1>()
            .expect("Subsampled::adjoint expects a 1-D measurement vector");
        self.transform.adjoint(&self.zero_fill(&y1).view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linop::{adjoint_test, inner};
    use ndarray::Array2;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A small dense invertible T for testing the algebra (orthogonal rotation-like matrix).
    #[derive(Clone)]
    struct Dense {
        a: Array2<f64>,
        a_inv: Array2<f64>,
    }

    impl LinearOperator for Dense {
        type In = f32;
        type Out = f32;
        fn domain_shape(&self) -> Vec<usize> {
            vec![self.a.ncols()]
        }
        fn range_shape(&self) -> Vec<usize> {
            vec![self.a.nrows()]
        }
        fn forward(&self, x: &ArrayViewD<f32>) -> ArrayD<f32> {
            let x: Array1<f64> = x.iter().map(|&v| v as f64).collect();
            self.a.dot(&x).mapv(|v| v as f32).into_dyn()
        }
        fn adjoint(&self, y: &ArrayViewD<f32>) -> ArrayD<f32> {
            let y: Array1<f64> = y.iter().map(|&v| v as f64).collect();
            self.a.t().dot(&y).mapv(|v| v as f32).into_dyn()
        }
    }

    impl Transform for Dense {
        fn inverse(&self, y: &ArrayViewD<f32>) -> ArrayD<f32> {
            let y: Array1<f64> = y.iter().map(|&v| v as f64).collect();
            self.a_inv.dot(&y).mapv(|v| v as f32).into_dyn()
        }
    }

    /// Upper-triangular T with unit diagonal: invertible by back substitution.
    fn dense(n: usize, seed: u64) -> Dense {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut a = Array2::<f64>::eye(n);
        for i in 0..n {
            for j in i + 1..n {
                a[[i, j]] = rng.random_range(-0.5..0.5);
            }
        }
        let mut a_inv = Array2::<f64>::eye(n);
        for col in 0..n {
            for i in (0..n).rev() {
                let mut s = if i == col { 1.0 } else { 0.0 };
                for j in i + 1..n {
                    s -= a[[i, j]] * a_inv[[j, col]];
                }
                a_inv[[i, col]] = s;
            }
        }
        Dense { a, a_inv }
    }

    fn mask(n: usize) -> ArrayD<bool> {
        ArrayD::from_shape_fn(IxDyn(&[n]), |i| i[0] % 3 != 1)
    }

    #[test]
    fn gather_then_zero_fill_is_identity_on_measurements() {
        let op = Subsampled::new(dense(9, 1), mask(9)).unwrap();
        let y: Array1<f32> = (0..op.num_measurements()).map(|i| i as f32 + 1.0).collect();
        let back = op.gather(&op.zero_fill(&y.view()).view());
        assert_eq!(back, y);
    }

    #[test]
    fn subsampled_operator_passes_dot_test() {
        let op = Subsampled::new(dense(12, 2), mask(12)).unwrap();
        let r = adjoint_test(&op, 7);
        assert!(r.rel_error < 1e-5, "{r:?}");
    }

    #[test]
    fn consistency_lambda_zero_is_identity_and_one_is_exact() {
        let op = Subsampled::new(dense(10, 3), mask(10)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x: ArrayD<f32> = randn(&[10], &mut rng);
        let y: Array1<f32> = randn::<f32, _>(&[op.num_measurements()], &mut rng)
            .into_dimensionality()
            .unwrap();
        let k0 = op.consistency(&x.view(), &y.view(), 0.0);
        let diff0: f32 = (&k0 - &x).iter().map(|v| v.abs()).fold(0.0, f32::max);
        assert!(diff0 < 1e-5, "λ = 0 must return x, max diff {diff0}");
        let k1 = op.consistency(&x.view(), &y.view(), 1.0);
        let ak = op.forward(&k1.view());
        let diff1: f32 = ak
            .iter()
            .zip(y.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff1 < 1e-4, "λ = 1 must give A k = ŷ, max diff {diff1}");
    }

    /// Theorem 8.1: the closed form minimises (1−λ)‖z − x‖²_T + λ min_{Au=ŷ} ‖z − u‖²_T.
    /// For a feasible z the inner minimum is attained at u with T u = Tz on unmeasured entries,
    /// so the objective is (1−λ)‖T(z − x)‖² + λ‖Λ(Tz) − P⁻¹ŷ‖²; random perturbations of the
    /// closed form must not decrease it.
    #[test]
    fn consistency_minimises_the_proximal_objective() {
        let op = Subsampled::new(dense(8, 4), mask(8)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let x: ArrayD<f32> = randn(&[8], &mut rng);
        let y: Array1<f32> = randn::<f32, _>(&[op.num_measurements()], &mut rng)
            .into_dimensionality()
            .unwrap();
        let lambda = 0.37f32;
        let objective = |z: &ArrayD<f32>| -> f64 {
            let tz = op.transform().forward(&z.view());
            let tx = op.transform().forward(&x.view());
            let d = &tz - &tx;
            let dm = &op.gather(&tz.view()) - &y;
            (1.0 - lambda as f64) * inner(&d.view(), &d.view())
                + lambda as f64 * inner(&dm.view().into_dyn(), &dm.view().into_dyn())
        };
        let best = op.consistency(&x.view(), &y.view(), lambda);
        let f_best = objective(&best);
        for _ in 0..50 {
            let p: ArrayD<f32> = randn(&[8], &mut rng);
            let z = &best + &p.mapv(|v| v * 1e-2);
            assert!(objective(&z) >= f_best - 1e-6);
        }
    }

    #[test]
    fn noisy_measurement_statistics() {
        let op = Subsampled::new(dense(6, 6), mask(6)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let y = Array1::from_elem(op.num_measurements(), 2.0f32);
        let n = 20000;
        let (alpha, beta) = (0.5f32, 1.5f32);
        let m = op.num_measurements();
        let mut mean = Array1::<f64>::zeros(m);
        let mut cov = Array2::<f64>::zeros((m, m));
        for _ in 0..n {
            let s = op.noisy_measurement(&y.view(), alpha, beta, &mut rng);
            let d: Array1<f64> = s.iter().map(|&v| v as f64 - 1.0).collect();
            mean += &d;
            for i in 0..m {
                for j in 0..m {
                    cov[[i, j]] += d[i] * d[j];
                }
            }
        }
        mean /= n as f64;
        cov /= n as f64;
        // Expected: mean α y = 1 (subtracted), covariance β² A Aᵀ.
        let mut a = Array2::<f64>::zeros((m, 6));
        for (r, &k) in op.kept.iter().enumerate() {
            a.row_mut(r).assign(&op.transform().a.row(k));
        }
        let expected = a.dot(&a.t()) * (beta as f64).powi(2);
        for i in 0..m {
            assert!(mean[i].abs() < 0.05, "mean {mean}");
            for j in 0..m {
                assert!(
                    (cov[[i, j]] - expected[[i, j]]).abs() < 0.12,
                    "cov {cov} vs {expected}"
                );
            }
        }
    }
}
