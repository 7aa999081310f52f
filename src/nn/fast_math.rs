//! Vectorisable f32 arithmetic for the fused CPU kernels of the network (GroupNorm + SiLU and
//! their backward passes).
//!
//! libm's `expf` is a scalar call, so a loop that applies SiLU runs one element at a time, and
//! a sum with one accumulator is bound by the latency of the additions. The functions here are
//! branch-free f32 arithmetic that LLVM turns into SIMD code, inlined into kernels that are
//! compiled twice with `multiversion` (baseline x86-64, which the release build targets, and
//! AVX2 + FMA, chosen at run time): [`sum`] here, the GroupNorm kernels in `group_norm.rs`.

/// `e^x` in f32 without a libm call (Cephes `expf`: x = n ln 2 + r with |r| ≤ ln 2 / 2, a
/// degree-5 minimax polynomial for `(e^r − 1 − r)/r²`, times 2ⁿ built in the exponent bits).
/// Relative error below 2·10⁻⁷ on the clamped range [−87.3, 88.3]; arguments outside it are
/// clamped (e^x then saturates at ≈ 2·10⁻³⁸ / 2·10³⁸ instead of 0 / ∞); NaN stays NaN.
// the coefficients as Cephes publishes them; f32 rounds their last digit
#[allow(clippy::excessive_precision)]
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.3);
    let shifted = x * std::f32::consts::LOG2_E + MAGIC;
    let n = shifted - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let er = p * (r * r) + r + 1.0;
    let n_int = shifted.to_bits() as i32 - MAGIC.to_bits() as i32;
    er * f32::from_bits(((n_int + 127) << 23) as u32)
}

/// `(silu(y), σ(y))` = `(y/(1 + e^{−y}), 1/(1 + e^{−y}))`, the logistic σ as candle's SiLU
/// derivative uses it.
#[inline(always)]
pub fn silu_sigmoid(y: f32) -> (f32, f32) {
    let s = 1.0 / (1.0 + exp(-y));
    (y * s, s)
}

/// Lanes of the partial sums in [`sum_pairs`]: enough independent accumulators for the adder
/// pipelines of an AVX2 core (two 8-wide registers).
const LANES: usize = 16;
/// Elements summed in f32 before a block's lanes are added into the f64 total (each lane sums
/// `BLOCK / LANES` = 64 terms in f32).
const BLOCK: usize = 1024;

/// `Σ_i f(a_i, b_i)` over equally long slices, in f32 lanes per block of 1024 terms and f64
/// across blocks: vectorisable; the rounding error is at most 64 ε_f32 Σ|f(a_i, b_i)|
/// (each lane adds 64 terms in f32), independent of the length.
#[inline(always)]
pub fn sum_pairs(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut total = 0f64;
    for (ab, bb) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        let mut acc = [0f32; LANES];
        let (mut ia, mut ib) = (ab.chunks_exact(LANES), bb.chunks_exact(LANES));
        for (ca, cb) in (&mut ia).zip(&mut ib) {
            for l in 0..LANES {
                acc[l] += f(ca[l], cb[l]);
            }
        }
        let tail: f32 = ia
            .remainder()
            .iter()
            .zip(ib.remainder())
            .map(|(&x, &y)| f(x, y))
            .sum();
        total += acc.iter().map(|&v| v as f64).sum::<f64>() + tail as f64;
    }
    total
}

/// `Σ x_i` ([`sum_pairs`] with AVX2 + FMA when the CPU has them).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
pub fn sum(x: &[f32]) -> f64 {
    sum_pairs(x, x, |v, _| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_to_two_ulp_over_the_range() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-1000.0) < 1e-37 && exp(1000.0) > 1e38 && exp(1000.0).is_finite());
    }

    #[test]
    fn silu_is_finite_and_exact_at_the_extremes() {
        assert_eq!(silu_sigmoid(0.0), (0.0, 0.5));
        let (z, s) = silu_sigmoid(-200.0);
        assert!(z.abs() < 1e-30 && s < 1e-30);
        assert_eq!(silu_sigmoid(200.0), (200.0, 1.0));
    }

    #[test]
    fn lane_sums_match_f64_sums_on_long_and_ragged_inputs() {
        for n in [0usize, 1, 15, 17, 1024, 5000] {
            let a: Vec<f32> = (0..n)
                .map(|i| ((i * 37) % 101) as f32 * 0.01 + 1e3)
                .collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 13) % 7) as f32 - 3.0).collect();
            let want: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
            let magnitude: f64 = a.iter().zip(&b).map(|(&x, &y)| (x * y).abs() as f64).sum();
            let got = sum_pairs(&a, &b, |x, y| x * y);
            // Each lane adds 64 terms in f32: error ≤ 64 ε Σ|terms|.
            let tol = 64.0 * f32::EPSILON as f64 * magnitude + 1e-12;
            assert!(
                (got - want).abs() <= tol,
                "{n}: {got} vs {want} (tolerance {tol})"
            );
            let (plain, fast) = (a.iter().map(|&v| v as f64).sum::<f64>(), sum(&a));
            assert!((plain - fast).abs() <= 64.0 * f32::EPSILON as f64 * plain.abs() + 1e-12);
        }
    }
}
