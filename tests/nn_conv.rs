//! The im2col + GEMM convolution equals candle's `conv2d` in value and gradients.

use candle_core::{Device, Tensor, Var};
use medsgm::nn::conv::conv2d_same_im2col;

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

#[test]
fn im2col_conv_matches_candle_conv2d_values_and_gradients() {
    let dev = Device::Cpu;
    for &(b, c, co, h, w, k) in &[(2, 3, 5, 7, 9, 3), (1, 4, 2, 6, 5, 1), (3, 2, 3, 4, 4, 3)] {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, c, h, w), &dev).unwrap()).unwrap();
        let wt = Var::from_tensor(&Tensor::randn(0f32, 1.0, (co, c, k, k), &dev).unwrap()).unwrap();
        // A non-uniform upstream gradient so that every output position matters.
        let probe = Tensor::randn(0f32, 1.0, (b, co, h, w), &dev).unwrap();
        let ours = conv2d_same_im2col(x.as_tensor(), wt.as_tensor()).unwrap();
        let reference = x
            .as_tensor()
            .conv2d(wt.as_tensor(), k / 2, 1, 1, 1)
            .unwrap();
        assert!(max_abs_diff(&ours, &reference) < 1e-4);
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
        for v in [&x, &wt] {
            let (a, r) = (g1.get(v).unwrap(), g2.get(v).unwrap());
            assert!(
                max_abs_diff(a, r) < 1e-4,
                "gradient mismatch {}",
                max_abs_diff(a, r)
            );
        }
    }
}
