//! Adam with linear warm-up and global-norm gradient clipping, and the EMA of the weights
//! (method digest §2: Adam β1 0.9, β2 0.999, eps 1e-8, lr 2e-4, warm-up 5000, clip 1.0; EMA m).

use candle_core::{backprop::GradStore, Result, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Optimiser hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// First-moment decay β1.
    pub beta1: f64,
    /// Second-moment decay β2.
    pub beta2: f64,
    /// Denominator guard ε.
    pub eps: f64,
    /// Linear warm-up length in steps: lr_k = lr · min(k / warmup, 1) (0 disables).
    pub warmup: u64,
    /// Maximal global gradient norm (clipping; ≤ 0 disables).
    pub grad_clip: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 2e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            warmup: 5000,
            grad_clip: 1.0,
        }
    }
}

impl AdamConfig {
    /// Learning rate of (1-based) step `k`.
    pub fn lr_at(&self, k: u64) -> f64 {
        if self.warmup == 0 {
            self.lr
        } else {
            self.lr * (k as f64 / self.warmup as f64).min(1.0)
        }
    }
}

/// Adam moments of named parameters (Kingma & Ba 2015, bias-corrected).
#[derive(Clone, Debug)]
pub struct Adam {
    config: AdamConfig,
    /// First moments by parameter name.
    pub m: BTreeMap<String, Tensor>,
    /// Second moments by parameter name.
    pub v: BTreeMap<String, Tensor>,
    /// Steps taken.
    pub t: u64,
}

/// Global L2 norm √(Σ_p ‖g_p‖²) of the gradients of `params` (missing gradients count as 0).
pub fn global_grad_norm(params: &[(String, Var)], grads: &GradStore) -> Result<f64> {
    let mut sq = 0f64;
    for (_, p) in params {
        if let Some(g) = grads.get(p.as_tensor()) {
            sq += g
                .sqr()?
                .sum_all()?
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?;
        }
    }
    Ok(sq.sqrt())
}

impl Adam {
    /// Zero moments for the named parameters.
    pub fn new(config: AdamConfig, params: &[(String, Var)]) -> Result<Self> {
        let zeros = |p: &Var| p.as_tensor().zeros_like();
        let m = params
            .iter()
            .map(|(n, p)| Ok((n.clone(), zeros(p)?)))
            .collect::<Result<_>>()?;
        let v = params
            .iter()
            .map(|(n, p)| Ok((n.clone(), zeros(p)?)))
            .collect::<Result<_>>()?;
        Ok(Self { config, m, v, t: 0 })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// The moments as named tensors `{prefix}.m.{name}` and `{prefix}.v.{name}` (for a
    /// resumable state file).
    pub fn state_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let named = |kind: &str, store: &BTreeMap<String, Tensor>| {
            store
                .iter()
                .map(|(n, t)| (format!("{prefix}.{kind}.{n}"), t.clone()))
                .collect::<Vec<_>>()
        };
        let mut out = named("m", &self.m);
        out.extend(named("v", &self.v));
        out
    }

    /// Restores the moments written by [`Adam::state_tensors`] (`get` looks a tensor up by
    /// name) and the step count `t` (it sets the bias correction and the warm-up position).
    pub fn restore(
        &mut self,
        prefix: &str,
        t: u64,
        get: &dyn Fn(&str) -> anyhow::Result<Tensor>,
    ) -> anyhow::Result<()> {
        let names: Vec<String> = self.m.keys().cloned().collect();
        for name in names {
            self.m
                .insert(name.clone(), get(&format!("{prefix}.m.{name}"))?);
            self.v
                .insert(name.clone(), get(&format!("{prefix}.v.{name}"))?);
        }
        self.t = t;
        Ok(())
    }

    /// One update of `params` from `grads`: clip to the global norm, then
    /// m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g², θ ← θ − lr_t m̂/(√v̂ + ε).
    /// Returns the gradient norm before clipping.
    pub fn step(&mut self, params: &[(String, Var)], grads: &GradStore) -> Result<f64> {
        let c = &self.config;
        let norm = global_grad_norm(params, grads)?;
        let clip = if c.grad_clip > 0.0 && norm > c.grad_clip {
            c.grad_clip / (norm + 1e-6)
        } else {
            1.0
        };
        self.t += 1;
        let lr = c.lr_at(self.t);
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        for (name, p) in params {
            let Some(g) = grads.get(p.as_tensor()) else {
                continue;
            };
            // A gradient that a backward pass built from a variable (e.g. the gradient of a
            // product with a weight, as the ScoreVAE encoder's closed-form input gradient has)
            // records that op: detached, the moments never hold the previous steps' graphs.
            let g = (g.detach() * clip)?;
            let (m, v) = match (self.m.get(name), self.v.get(name)) {
                (Some(m), Some(v)) => (m, v),
                _ => candle_core::bail!("Adam: no moments for parameter {name}"),
            };
            let m = ((m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + c.eps)?)?;
            p.set(&(p.as_tensor() - (update * lr)?)?)?;
            self.m.insert(name.clone(), m);
            self.v.insert(name.clone(), v);
        }
        Ok(norm)
    }
}

/// Exponential moving average θ' ← m θ' + (1 − m) θ of named parameters (thesis §6.5).
#[derive(Clone, Debug)]
pub struct Ema {
    /// Decay m (0.999 VE, 0.9999 VP in the thesis).
    pub decay: f64,
    /// Averaged values by parameter name.
    pub shadow: BTreeMap<String, Tensor>,
}

impl Ema {
    /// Starts the average at the current parameter values.
    pub fn new(decay: f64, params: &[(String, Var)]) -> Result<Self> {
        let shadow = params
            .iter()
            .map(|(n, p)| Ok((n.clone(), p.as_tensor().detach().copy()?)))
            .collect::<Result<_>>()?;
        Ok(Self { decay, shadow })
    }

    /// The decay used for update number `k` (0-based): min(m, (1 + k)/(10 + k)). The warm-up
    /// keeps the average from being dominated by the random initialisation in short runs (with
    /// a constant m = 0.999, 0.999^k of the initial weights would remain after k updates).
    pub fn decay_at(&self, k: u64) -> f64 {
        self.decay.min((1.0 + k as f64) / (10.0 + k as f64))
    }

    /// Update number `k` (0-based, i.e. the optimiser step just taken minus one):
    /// shadow ← d shadow + (1 − d) θ with d = [`Ema::decay_at`]`(k)`.
    pub fn update(&mut self, params: &[(String, Var)], k: u64) -> Result<()> {
        let d = self.decay_at(k);
        for (name, p) in params {
            if let Some(s) = self.shadow.get_mut(name) {
                // θ detached: through the `Var` the new shadow would record the op and keep
                // every previous shadow alive (memory grew by one model per step).
                *s = ((&*s * d)? + (p.as_tensor().detach() * (1.0 - d))?)?;
            }
        }
        Ok(())
    }

    /// Restarts the average at the current parameter values.
    pub fn reset(&mut self, params: &[(String, Var)]) -> Result<()> {
        *self = Self::new(self.decay, params)?;
        Ok(())
    }
}

#[cfg(test)]
mod ema_tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn warm_up_forgets_the_initialisation_and_reaches_the_configured_decay() {
        let p = vec![("w".to_string(), Var::new(&[0f32], &Device::Cpu).unwrap())];
        let mut ema = Ema::new(0.999, &p).unwrap();
        assert!((ema.decay_at(0) - 0.1).abs() < 1e-12);
        assert_eq!(ema.decay_at(1_000_000), 0.999);
        // Weights jump from 0 to 1 and stay: after 300 updates a constant 0.999 would keep
        // 0.999^300 ≈ 74 % of the initial 0; the warm-up keeps Π (1+k)/(10+k) < 1e-3 of it.
        p[0].1
            .set(&Tensor::new(&[1f32], &Device::Cpu).unwrap())
            .unwrap();
        for k in 0..300 {
            ema.update(&p, k).unwrap();
        }
        let v = ema.shadow["w"].to_vec1::<f32>().unwrap()[0];
        let kept: f64 = (0..300).map(|k| ema.decay_at(k)).product();
        assert!((f64::from(1.0 - v) - kept).abs() < 1e-5, "{v} vs {kept}");
        assert!(v > 0.5, "{v}");
    }

    #[test]
    fn the_average_records_no_ops_of_the_trained_vars() {
        // A shadow that recorded `θ · (1 − d)` would chain every update's graph (a leak of one
        // model per step) and make networks built from it record every forward op.
        let p = vec![(
            "w".to_string(),
            Var::new(&[0f32, 1.0], &Device::Cpu).unwrap(),
        )];
        let mut ema = Ema::new(0.9, &p).unwrap();
        for k in 0..3 {
            ema.update(&p, k).unwrap();
        }
        assert!(!ema.shadow["w"].track_op());
        assert!(!ema.shadow["w"].is_variable());
    }
}

#[cfg(test)]
mod adam_tests {
    use super::*;
    use candle_core::Device;

    /// The gradient of w in ⟨w v, 1⟩ is built from the variable v, so the backward pass records
    /// an op for it; the moments must still hold plain values (no graph of earlier steps).
    #[test]
    fn moments_never_record_the_backward_graph() {
        let dev = Device::Cpu;
        let params = vec![
            (
                "v".to_string(),
                Var::new(&[[1f32, 2.0], [3.0, 4.0]], &dev).unwrap(),
            ),
            ("w".to_string(), Var::new(&[[0.5f32, -1.0]], &dev).unwrap()),
        ];
        let mut adam = Adam::new(AdamConfig::default(), &params).unwrap();
        for _ in 0..3 {
            let loss = params[1]
                .1
                .as_tensor()
                .matmul(params[0].1.as_tensor())
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            adam.step(&params, &grads).unwrap();
        }
        for (name, m) in adam.m.iter().chain(adam.v.iter()) {
            assert!(!m.track_op(), "moment of {name} records an op");
        }
    }
}
