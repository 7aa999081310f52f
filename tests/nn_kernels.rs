//! The fused CPU kernels (im2col + GEMM convolution, GroupNorm, the rescaled residual sum)
//! equal candle's reference ops (`conv2d` plus a bias, candle-nn `GroupNorm` with and without a
//! following `silu`, `(a + b) * s`) in value and gradients.

use candle_core::{Device, Tensor, Var};
use medsgm::nn::conv::{conv2d_same_banded, conv2d_same_im2col};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// `max |a − r| / max |r|`.
fn rel_diff(a: &Tensor, r: &Tensor) -> f32 {
    max_abs_diff(a, r) / max_abs_diff(r, &r.zeros_like().unwrap()).max(f32::MIN_POSITIVE)
}

/// `conv(x, w, bias)` on random inputs of shape `(b, c, co, h, w, k)` equals candle's
/// `conv2d` (padding k/2) plus the bias, in value and in the gradients of all three arguments
/// under a non-uniform upstream gradient (so that every output position matters): `err` below
/// 1e-4 for each.
fn assert_conv_matches_candle(
    (b, c, co, h, w, k): (usize, usize, usize, usize, usize, usize),
    conv: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor,
    err: fn(&Tensor, &Tensor) -> f32,
    case: &str,
) {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, c, h, w), &dev).unwrap()).unwrap();
    let wt = Var::from_tensor(&Tensor::randn(0f32, 1.0, (co, c, k, k), &dev).unwrap()).unwrap();
    let bias = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, co), &dev).unwrap()).unwrap();
    let probe = Tensor::randn(0f32, 1.0, (b, co, h, w), &dev).unwrap();
    let ours = conv(x.as_tensor(), wt.as_tensor(), bias.as_tensor());
    let reference = x
        .as_tensor()
        .conv2d(wt.as_tensor(), k / 2, 1, 1, 1)
        .unwrap()
        .broadcast_add(&bias.as_tensor().unsqueeze(2).unwrap().unsqueeze(3).unwrap())
        .unwrap();
    assert!(err(&ours, &reference) < 1e-4, "value mismatch for {case}");
    let grads = |y: Tensor| (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
    let (g1, g2) = (grads(ours), grads(reference));
    for v in [&x, &wt, &bias] {
        let (a, r) = (g1.get(v).unwrap(), g2.get(v).unwrap());
        assert!(
            err(a, r) < 1e-4,
            "gradient mismatch {} for {case}",
            err(a, r)
        );
    }
}

#[test]
fn im2col_conv_matches_candle_conv2d_values_and_gradients() {
    // Batches of 1 take the multi-threaded-GEMM path, larger ones the batch-split path;
    // 1×1 kernels skip the column buffer.
    for &dims in &[
        (2, 3, 5, 7, 9, 3),
        (1, 4, 2, 6, 5, 1),
        (3, 2, 3, 4, 4, 3),
        (1, 3, 4, 5, 6, 3),
        (5, 4, 3, 3, 5, 1),
        (4, 2, 3, 6, 6, 5),
        // Images narrower than the kernel reach: every shifted tap wraps a whole row.
        (1, 2, 3, 5, 1, 3),
        (2, 2, 2, 3, 2, 5),
    ] {
        let conv = |x: &Tensor, w: &Tensor, b: &Tensor| conv2d_same_im2col(x, w, b).unwrap();
        assert_conv_matches_candle(dims, conv, max_abs_diff, &format!("{dims:?}"));
    }
}

/// Images whose column matrix exceeds the 1 MiB band budget (8·3²·64² floats = 1.2 MB) are
/// convolved in several row bands; values and gradients still equal candle's `conv2d`
/// (relative to the largest reference entry: the weight gradient sums 2·64² products).
#[test]
fn banded_im2col_conv_matches_candle_conv2d_values_and_gradients() {
    for &(b, c, co, h, w) in &[(1, 8, 4, 64, 64), (2, 8, 3, 72, 64)] {
        let conv = |x: &Tensor, w: &Tensor, b: &Tensor| conv2d_same_im2col(x, w, b).unwrap();
        let dims = (b, c, co, h, w, 3);
        assert_conv_matches_candle(dims, conv, rel_diff, &format!("{dims:?}"));
    }
}

/// Forced small bands (one row, and three rows with a shorter last band; a 1×1 kernel stays
/// one band, see the unit test of `BandPlan`) give candle's `conv2d` value and gradients in all
/// three arguments, on the parallel-unit path (batch 1 split into bands, batch 3) and the
/// in-turn one.
#[test]
fn forced_band_sizes_match_candle_conv2d_values_and_gradients() {
    for &(b, c, co, h, w, k, band_rows) in &[
        (1, 3, 4, 11, 7, 3, 1),
        (3, 2, 5, 10, 6, 5, 3),
        (2, 4, 3, 9, 8, 3, 2),
        (1, 3, 2, 6, 5, 1, 1),
    ] {
        let band_bytes = c * k * k * w * std::mem::size_of::<f32>() * band_rows;
        let conv = |x: &Tensor, wt: &Tensor, bias: &Tensor| {
            conv2d_same_banded(x, wt, bias, band_bytes).unwrap()
        };
        let case = format!("{:?}", (b, c, co, h, w, k, band_rows));
        assert_conv_matches_candle((b, c, co, h, w, k), conv, rel_diff, &case);
    }
}

#[test]
fn fused_group_norm_matches_candle_nn_values_and_gradients() {
    use candle_nn::Module;
    let dev = Device::Cpu;
    // The last case has 5120 values per group: the vectorised sums run over several
    // 1024-value blocks of 16 lanes.
    for &(b, c, h, w, groups) in &[
        (2, 8, 5, 3, 2),
        (3, 6, 4, 4, 3),
        (1, 4, 7, 2, 1),
        (2, 16, 32, 40, 4),
    ] {
        let x = Var::from_tensor(
            &(Tensor::randn(0f32, 2.0, (b, c, h, w), &dev).unwrap() + 0.7).unwrap(),
        )
        .unwrap();
        let gamma = Var::from_tensor(&Tensor::randn(1f32, 0.5, c, &dev).unwrap()).unwrap();
        let beta = Var::from_tensor(&Tensor::randn(0f32, 0.5, c, &dev).unwrap()).unwrap();
        let mut ts = std::collections::HashMap::new();
        ts.insert("weight".to_string(), gamma.as_tensor().clone());
        ts.insert("bias".to_string(), beta.as_tensor().clone());
        let vb = candle_nn::VarBuilder::from_tensors(ts, candle_core::DType::F32, &dev);
        let ours = medsgm::nn::group_norm::GroupNorm::new(groups, c, 1e-6, vb.clone()).unwrap();
        let reference = candle_nn::group_norm(groups, c, 1e-6, vb).unwrap();
        let probe = Tensor::randn(0f32, 1.0, (b, c, h, w), &dev).unwrap();
        // The plain norm, and the norm with the SiLU fused in against candle's `silu`.
        for silu in [false, true] {
            let (y1, y2) = if silu {
                (
                    ours.forward_silu(x.as_tensor()).unwrap(),
                    reference.forward(x.as_tensor()).unwrap().silu().unwrap(),
                )
            } else {
                (
                    ours.forward(x.as_tensor()).unwrap(),
                    reference.forward(x.as_tensor()).unwrap(),
                )
            };
            assert!(
                max_abs_diff(&y1, &y2) < 1e-4,
                "value {}",
                max_abs_diff(&y1, &y2)
            );
            let g1 = (y1 * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g2 = (y2 * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &gamma, &beta] {
                // Relative to the largest entry: ∂γ and ∂β sum B·H·W/G terms in f32 (in
                // candle's reference too), so their absolute error grows with the image.
                let (a, r) = (g1.get(v).unwrap(), g2.get(v).unwrap());
                assert!(
                    rel_diff(a, r) < 1e-5,
                    "gradient mismatch {} (silu {silu})",
                    rel_diff(a, r)
                );
            }
        }
    }
}

#[test]
fn fused_scaled_sum_matches_candle_values_and_gradients() {
    let dev = Device::Cpu;
    // 2·3·100·120 = 72 000 values: several parallel chunks and a ragged last one.
    let shape = (2, 3, 100, 120);
    let a = Var::from_tensor(&Tensor::randn(0f32, 1.0, shape, &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, shape, &dev).unwrap()).unwrap();
    let probe = Tensor::randn(0f32, 1.0, shape, &dev).unwrap();
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let ours = medsgm::nn::residual::scaled_sum(a.as_tensor(), b.as_tensor(), s).unwrap();
    let reference = ((a.as_tensor() + b.as_tensor()).unwrap() * s).unwrap();
    assert!(max_abs_diff(&ours, &reference) < 1e-6);
    let g1 = (ours * &probe)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g2 = (reference * &probe)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for v in [&a, &b] {
        assert!(max_abs_diff(g1.get(v).unwrap(), g2.get(v).unwrap()) < 1e-6);
    }
}
