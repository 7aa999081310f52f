//! The patched backward pass of candle-core (third_party/candle-core: the first gradient of a
//! node is stored as it is, later ones are added; nearest-neighbour upsampling is
//! differentiated by block sums) against gradients worked out by hand.

use candle_core::{Device, Tensor, Var};

fn close(a: &Tensor, b: &Tensor) -> bool {
    let d = (a - b).unwrap().abs().unwrap().flatten_all().unwrap();
    d.max(0).unwrap().to_scalar::<f32>().unwrap() < 1e-5
}

#[test]
fn fan_in_gradients_are_summed_and_views_are_stored_safely() {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 4), &dev).unwrap()).unwrap();
    let bias = Var::from_tensor(&Tensor::randn(0f32, 1.0, (1, 4), &dev).unwrap()).unwrap();
    let t = x.as_tensor();
    // f = Σ (x ⊙ x + x + xᵀᵀ + (x + bias)): x reaches f along four paths, bias by broadcast.
    let f = ((t * t).unwrap() + t).unwrap();
    let f = (f + t.t().unwrap().t().unwrap()).unwrap();
    let f = (f + t.broadcast_add(bias.as_tensor()).unwrap()).unwrap();
    let g = f.sum_all().unwrap().backward().unwrap();
    let want_x = ((t * 2.0).unwrap() + 3.0).unwrap();
    assert!(close(g.get(t).unwrap(), &want_x));
    let want_bias = Tensor::full(3f32, (1, 4), &dev).unwrap();
    assert!(close(g.get(bias.as_tensor()).unwrap(), &want_bias));
}

#[test]
fn upsample_nearest_backward_sums_each_block() {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 4, 5), &dev).unwrap()).unwrap();
    let probe = Tensor::randn(0f32, 1.0, (2, 3, 8, 10), &dev).unwrap();
    let up = x.as_tensor().upsample_nearest2d(8, 10).unwrap();
    let g = (up * &probe)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    // ∂x[b, c, i, j] = Σ over the 2×2 block (2i.., 2j..) of the probe.
    let want = probe
        .reshape((2, 3, 4, 2, 5, 2))
        .unwrap()
        .sum(5)
        .unwrap()
        .sum(3)
        .unwrap();
    assert!(close(g.get(x.as_tensor()).unwrap(), &want));
}
