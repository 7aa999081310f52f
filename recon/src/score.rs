//! The score-model interface used by every sampler: s_θ(x, t) ≈ ∇ₓ log p_t(x).

use candle_core::Tensor;

/// A (batched) time-dependent score model s_θ(x, t) ≈ ∇ₓ log p_t(x) (thesis §7.3).
///
/// `x`: `[B, ...]` (any dtype the model supports), `t`: `[B]` f32 times in [ε, T]; returns a tensor
/// shaped like `x`. Implementations must be differentiable in `x` through candle ops when used
/// for likelihoods (the probability-flow divergence is taken with a backward pass).
pub trait ScoreModel: Send + Sync {
    /// Evaluates the score at (x, t).
    fn score(&self, x: &Tensor, t: &Tensor) -> candle_core::Result<Tensor>;
}

impl<S: ScoreModel + ?Sized> ScoreModel for &S {
    fn score(&self, x: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        (**self).score(x, t)
    }
}

impl<S: ScoreModel + ?Sized> ScoreModel for Box<S> {
    fn score(&self, x: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        (**self).score(x, t)
    }
}

impl<S: ScoreModel + ?Sized> ScoreModel for std::sync::Arc<S> {
    fn score(&self, x: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        (**self).score(x, t)
    }
}
