//! Training a learned noise schedule with the score network (Kingma et al., "Variational
//! diffusion models"; paper 002 App. A, method digest §9). With σ_t² = sigmoid(γ_η(t)) the
//! network minimises the continuous loss L_∞ = ½ E_{t~U(ε,1)}[γ'(t)‖σ_t s_θ(z_t) + ε‖²]
//! (likelihood-weighted DSM; σ_t s_θ = −ε̂), z_t = (α_t/α_0) x + σ_t ε. Between fixed endpoints
//! γ_min, γ_max the expectation of L_∞ does not depend on η, so η minimises the variance of its
//! Monte-Carlo estimate by descending ∇_η E(L²) = E(2L ∇_η L) (VDM §5.3).
//!
//! The η-gradient takes one extra backward pass through γ_η only: γ(t_i) and γ'(t_i) enter the
//! loss as leaf variables, the network's backward pass gives ∂ℓ_i/∂γ_i and ∂ℓ_i/∂γ'_i along
//! with the θ-gradient, and J(η) = Σ_i ℓ_i (∂ℓ_i/∂γ_i γ_η(t_i) + ∂ℓ_i/∂γ'_i γ_η'(t_i))/B
//! (coefficients held fixed) has ∇_η J = ½ ∇_η mean(ℓ²).

use anyhow::Context;
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use medsgm_recon::learned_schedule::{sigmoid, GammaNet, GammaWeights, LearnedSchedule};

/// γ_η with its weights as trainable variables (f64), the tensor twin of
/// [`GammaNet`]: γ̃(t) = |w₁| t + (1/H) Σ_j |w₃ⱼ| (2 sigmoid(|w₂ⱼ|(2t − 1) + b₂ⱼ) − 1),
/// γ(t) = γ_min + (γ_max − γ_min)(γ̃(t) − γ̃(0))/(γ̃(1) − γ̃(0)).
pub struct TrainableGamma {
    spec: LearnedSchedule,
    w1: Var,
    w2: Var,
    b2: Var,
    w3: Var,
}

/// Names of the schedule's variables in training-state files.
const NAMES: [&str; 4] = ["schedule.w1", "schedule.w2", "schedule.b2", "schedule.w3"];

fn tensor_sigmoid(x: &Tensor) -> candle_core::Result<Tensor> {
    (x.neg()?.exp()? + 1.0)?.recip()
}

impl TrainableGamma {
    /// The variables of a validated schedule (its weights, or the initial ones).
    pub fn new(spec: &LearnedSchedule, device: &Device) -> anyhow::Result<Self> {
        let w = GammaNet::new(spec)?.spec().weights_or_initial();
        let h = w.w2.len();
        let var = |v: Vec<f64>, n: usize| Var::from_tensor(&Tensor::from_vec(v, n, device)?);
        Ok(Self {
            spec: LearnedSchedule {
                weights: None,
                ..spec.clone()
            },
            w1: var(vec![w.w1], 1)?,
            w2: var(w.w2, h)?,
            b2: var(w.b2, h)?,
            w3: var(w.w3, h)?,
        })
    }

    /// The variables by name (for Adam and the state file).
    pub fn params(&self) -> Vec<(String, Var)> {
        NAMES
            .iter()
            .zip([&self.w1, &self.w2, &self.b2, &self.w3])
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect()
    }

    /// The schedule with the current weights.
    pub fn schedule(&self) -> anyhow::Result<LearnedSchedule> {
        let vec = |v: &Var| v.as_tensor().to_vec1::<f64>();
        Ok(LearnedSchedule {
            weights: Some(GammaWeights {
                w1: vec(&self.w1)?[0],
                w2: vec(&self.w2)?,
                b2: vec(&self.b2)?,
                w3: vec(&self.w3)?,
            }),
            ..self.spec.clone()
        })
    }

    /// (γ̃(t), dγ̃/dt) for `t: [N]` f64.
    fn raw(&self, t: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let h = self.w2.dim(0)? as f64;
        let (w2, w3) = (self.w2.abs()?.unsqueeze(0)?, self.w3.abs()?.unsqueeze(0)?);
        let u = t.affine(2.0, -1.0)?.unsqueeze(1)?;
        let s = tensor_sigmoid(
            &u.broadcast_mul(&w2)?
                .broadcast_add(&self.b2.unsqueeze(0)?)?,
        )?;
        let w1 = self.w1.abs()?;
        let value =
            (s.affine(2.0, -1.0)?.broadcast_mul(&w3)?.sum(1)? / h)?.add(&t.broadcast_mul(&w1)?)?;
        let ds = (&s * (1.0 - &s)?)?.broadcast_mul(&(w2 * 4.0)?)?;
        let slope = (ds.broadcast_mul(&w3)?.sum(1)? / h)?.broadcast_add(&w1)?;
        Ok((value, slope))
    }

    /// γ(t) and γ'(t) for `t: [B]` (any float dtype), as f64 tensors differentiable in η.
    pub fn evaluate(&self, t: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let b = t.dim(0)?;
        let ends = Tensor::new(&[0f64, 1.0], t.device())?;
        let all = Tensor::cat(&[&t.to_dtype(DType::F64)?, &ends], 0)?;
        let (value, slope) = self.raw(&all)?;
        let (r0, r1) = (value.narrow(0, b, 1)?, value.narrow(0, b + 1, 1)?);
        let span = (r1 - &r0)?;
        let range = self.spec.gamma_max - self.spec.gamma_min;
        let gamma = value
            .narrow(0, 0, b)?
            .broadcast_sub(&r0)?
            .broadcast_div(&span)?
            .affine(range, self.spec.gamma_min)?;
        let gamma_prime = (slope.narrow(0, 0, b)?.broadcast_div(&span)? * range)?;
        Ok((gamma, gamma_prime))
    }
}

/// The pieces of one L_∞ evaluation that the η-gradient needs.
pub struct LearnedLoss {
    /// The batch mean of ℓ_i (differentiable in θ).
    pub loss: Tensor,
    per_sample: Tensor,
    gamma_leaf: Var,
    gamma_prime_leaf: Var,
    gamma: Tensor,
    gamma_prime: Tensor,
}

/// The per-sample losses ℓ_i = ½ γ'(t_i) ‖σ_i s(z_{t_i}, σ_i) + ε_i‖² of `x0: [B, ...]` at
/// times `t: [B]` with noise `z` (shaped like `x0`); `score(x_t, σ)` is the network with
/// σ: `[B]` (f32), as the trainer calls it.
pub fn learned_loss(
    gamma: &TrainableGamma,
    x0: &Tensor,
    t: &Tensor,
    z: &Tensor,
    score: &dyn Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
) -> anyhow::Result<LearnedLoss> {
    let b = x0.dim(0)?;
    let (g, gp) = gamma.evaluate(t)?;
    let gamma_leaf = Var::from_tensor(&g.detach())?;
    let gamma_prime_leaf = Var::from_tensor(&gp.detach())?;
    let alpha2_0 = sigmoid(-gamma.spec.gamma_min);
    let sigma = tensor_sigmoid(gamma_leaf.as_tensor())?.sqrt()?;
    let mean = (tensor_sigmoid(&gamma_leaf.neg()?)? / alpha2_0)?.sqrt()?;
    let dtype = x0.dtype();
    let mut shape = vec![1; x0.rank()];
    shape[0] = b;
    let col = |v: &Tensor| v.to_dtype(dtype)?.reshape(shape.as_slice());
    let sigma_x = sigma.to_dtype(dtype)?;
    let xt = (x0.broadcast_mul(&col(&mean)?)? + z.broadcast_mul(&col(&sigma)?)?)?;
    let s = score(&xt, &sigma_x)?;
    let residual = (s.broadcast_mul(&col(&sigma)?)? + z)?;
    let per_sample = (residual
        .sqr()?
        .flatten_from(1)?
        .sum(1)?
        .to_dtype(DType::F64)?
        * gamma_prime_leaf.as_tensor())?
    .affine(0.5, 0.0)?;
    Ok(LearnedLoss {
        loss: per_sample.mean_all()?,
        per_sample,
        gamma_leaf,
        gamma_prime_leaf,
        gamma: g,
        gamma_prime: gp,
    })
}

impl LearnedLoss {
    /// The loss value (f64).
    pub fn value(&self) -> anyhow::Result<f64> {
        Ok(self.loss.to_scalar::<f64>()?)
    }

    /// ½ ∇_η mean(ℓ²) from the gradients `grads` of [`LearnedLoss::loss`] (see the module
    /// docs): a backward pass through γ_η alone.
    pub fn schedule_gradient(&self, grads: &GradStore) -> anyhow::Result<GradStore> {
        let leaf = |v: &Var| {
            grads
                .get(v.as_tensor())
                .cloned()
                .context("the loss does not depend on the schedule")
        };
        let coef = |g: Tensor| -> candle_core::Result<Tensor> {
            &self.per_sample.detach() * g.detach().to_dtype(DType::F64)?
        };
        let j = ((coef(leaf(&self.gamma_leaf)?)? * &self.gamma)?
            + (coef(leaf(&self.gamma_prime_leaf)?)? * &self.gamma_prime)?)?
            .sum_all()?;
        Ok(j.backward()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LearnedSchedule {
        let (lo, hi) = LearnedSchedule::vp_range(0.1, 20.0, 1e-3);
        let mut w = GammaWeights::initial(16);
        w.w3.iter_mut()
            .enumerate()
            .for_each(|(j, v)| *v = 0.3 + 0.1 * j as f64);
        LearnedSchedule {
            gamma_min: lo,
            gamma_max: hi,
            features: 16,
            weights: Some(w),
        }
    }

    #[test]
    fn tensor_schedule_equals_the_f64_schedule() -> anyhow::Result<()> {
        let spec = spec();
        let net = GammaNet::new(&spec)?;
        let g = TrainableGamma::new(&spec, &Device::Cpu)?;
        let ts = [0.0, 1e-5, 0.1, 0.37, 0.5, 0.93, 1.0];
        let (gamma, gp) = g.evaluate(&Tensor::new(&ts, &Device::Cpu)?)?;
        let (gamma, gp) = (gamma.to_vec1::<f64>()?, gp.to_vec1::<f64>()?);
        for (i, &t) in ts.iter().enumerate() {
            assert!((gamma[i] - net.gamma(t)).abs() < 1e-12, "γ({t})");
            assert!((gp[i] - net.gamma_prime(t)).abs() < 1e-10, "γ'({t})");
        }
        assert!((gamma[0] - spec.gamma_min).abs() < 1e-12);
        assert!((gamma[6] - spec.gamma_max).abs() < 1e-12);
        assert_eq!(g.schedule()?, LearnedSchedule { ..spec });
        Ok(())
    }

    /// The η-gradient of the two-pass construction equals central finite differences of
    /// ½ mean(ℓ²) in every weight, for a smooth stand-in for the network (f64 throughout).
    #[test]
    fn schedule_gradient_is_half_the_gradient_of_the_mean_square_loss() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let spec = spec();
        let x0 = Tensor::new(&[[0.2f64, 0.9, -0.4], [1.3, 0.1, 0.5]], &dev)?;
        let z = Tensor::new(&[[0.3f64, -1.1, 0.7], [-0.2, 0.8, 1.5]], &dev)?;
        let t = Tensor::new(&[0.21f64, 0.64], &dev)?;
        // s(x, σ) = −x/(σ² + 0.5) + 0.1 x² σ: depends on x and σ, like a network.
        let score = |x: &Tensor, sigma: &Tensor| -> candle_core::Result<Tensor> {
            let s2 = sigma.sqr()?.unsqueeze(1)?;
            let lin = x.neg()?.broadcast_div(&(s2 + 0.5)?)?;
            lin + x.sqr()?.broadcast_mul(&sigma.unsqueeze(1)?)? * 0.1
        };
        let g = TrainableGamma::new(&spec, &dev)?;
        let parts = learned_loss(&g, &x0, &t, &z, &score)?;
        let grads = parts.schedule_gradient(&parts.loss.backward()?)?;
        let half_mean_square = |s: &LearnedSchedule| -> anyhow::Result<f64> {
            let g = TrainableGamma::new(s, &dev)?;
            let p = learned_loss(&g, &x0, &t, &z, &score)?;
            Ok(0.5 * p.per_sample.sqr()?.mean_all()?.to_scalar::<f64>()?)
        };
        let w = spec.weights_or_initial();
        let perturbed = |field: usize, j: usize, h: f64| {
            let mut w = w.clone();
            match field {
                0 => w.w1 += h,
                1 => w.w2[j] += h,
                2 => w.b2[j] += h,
                _ => w.w3[j] += h,
            }
            LearnedSchedule {
                weights: Some(w),
                ..spec.clone()
            }
        };
        for (field, (_, var)) in g.params().iter().enumerate() {
            let analytic = grads.get(var.as_tensor()).context("no gradient")?;
            let analytic = analytic.to_vec1::<f64>()?;
            for j in [0, 5, 15].into_iter().filter(|&j| j < analytic.len()) {
                let h = 1e-5;
                let fd = (half_mean_square(&perturbed(field, j, h))?
                    - half_mean_square(&perturbed(field, j, -h))?)
                    / (2.0 * h);
                let tol = 1e-6 + 1e-5 * fd.abs();
                assert!(
                    (analytic[j] - fd).abs() < tol,
                    "{field}[{j}]: analytic {} vs finite difference {fd}",
                    analytic[j]
                );
            }
        }
        Ok(())
    }
}
