//! DPS through the shipped 64² CT network: the guidance gradient that `medsgm_recon::dps`
//! computes by back-propagation through the network (custom conv, group-norm and residual
//! kernels included) equals the finite-difference derivative of ‖A x̂₀(x) − y‖.

use candle_core::{Device, Tensor};
use medsgm::checkpoint::Checkpoint;
use medsgm::nn::score::NetScore;
use medsgm_operators::phantom::shepp_logan;
use medsgm_operators::radon::RadonGeometry;
use medsgm_operators::sparse_view::SparseViewCt;
use medsgm_operators::LinearOperator;
use medsgm_recon::denoise::tweedie_denoise;
use medsgm_recon::dps::guidance;
use medsgm_recon::projection::MeasuredBatch;
use ndarray::Array1;
use std::path::Path;

#[test]
fn guidance_matches_finite_differences_through_the_network() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dev = Device::Cpu;
    let ck = Checkpoint::load(&root.join("models/ct_phantom_64/model.safetensors"), &dev).unwrap();
    let net = ck.network(true, &dev).unwrap();
    let sde = ck.meta.sde.build().unwrap();
    let score = NetScore {
        net: &net,
        sde: sde.as_ref(),
    };
    let n = 64;
    let measured_geometry = RadonGeometry::equispaced(n, 23, RadonGeometry::default_n_det(n));
    let op = SparseViewCt::new(&measured_geometry, 180).unwrap().op;
    let y: Array1<f32> = op
        .forward(&shepp_logan(n).into_dyn().view())
        .into_dimensionality()
        .unwrap();
    let measured = MeasuredBatch::new(&op, vec![y], 0).unwrap();
    let t = 0.3;
    let x = (Tensor::new(
        &shepp_logan(n).iter().copied().collect::<Vec<f32>>()[..],
        &dev,
    )
    .unwrap()
    .reshape((1, 1, n, n))
    .unwrap()
        + Tensor::randn(0f32, sde.std(t) as f32, (1, 1, n, n), &dev).unwrap())
    .unwrap();
    let (grad, _) = guidance(sde.as_ref(), &score, &measured, &x, t).unwrap();
    let f = |x: &Tensor| -> f64 {
        let x0 = tweedie_denoise(sde.as_ref(), &score, x, t).unwrap();
        let v = x0.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let img = ndarray::ArrayD::from_shape_vec(vec![n, n], v).unwrap();
        let ax = op.forward(&img.view());
        let yv = measured.measurements()[0].clone();
        ax.iter()
            .zip(yv.iter())
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    // Tolerance: measured, back-propagation and central differences (stable from ε = 0.03 to
    // 0.001) differ by 0.006–0.009 in absolute terms, 2–14 % of these directional derivatives
    // — a small discrepancy not yet traced (the kernels' own gradient tests against candle
    // pass); a wrong factor (1/m, s²) or sign would be far outside the tolerance.
    for seed in 0..3u64 {
        let d = Tensor::randn(0f32, 1.0, (1, 1, n, n), &dev).unwrap();
        let norm = d.sqr().unwrap().sum_all().unwrap().sqrt().unwrap();
        let d = d.broadcast_div(&norm).unwrap();
        let eps = 1e-2;
        let plus = f(&(&x + d.affine(eps, 0.0).unwrap()).unwrap());
        let minus = f(&(&x - d.affine(eps, 0.0).unwrap()).unwrap());
        let fd = (plus - minus) / (2.0 * eps);
        let ad = (&grad * &d)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        assert!(
            (fd - ad).abs() <= 0.05 * fd.abs().max(ad.abs()) + 0.015,
            "direction {seed}: finite difference {fd}, back-propagation {ad}"
        );
    }
}
