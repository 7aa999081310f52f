//! Technique 6.1: σ_max = maximum pairwise distance, against a brute-force f64 double loop.

use candle_core::{DType, Device, Tensor};
use medsgm_recon::{propose_sigma_max, Noise};

fn brute_force(rows: &[Vec<f64>]) -> f64 {
    let mut best = 0.0f64;
    for (i, a) in rows.iter().enumerate() {
        for b in &rows[i + 1..] {
            best = best.max(
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).powi(2))
                    .sum::<f64>()
                    .sqrt(),
            );
        }
    }
    best
}

#[test]
fn max_pairwise_distance_matches_brute_force() {
    let mut noise = Noise::new(8);
    // 1500 "images" of 4×5 pixels (more than one block of rows)
    let x = noise
        .uniform(&[1500, 4, 5], 0.0, 1.0, DType::F32, &Device::Cpu)
        .unwrap();
    let rows: Vec<Vec<f64>> = x
        .reshape((1500, 20))
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec2()
        .unwrap();
    let want = brute_force(&rows);
    let got = propose_sigma_max(&x, 10_000, 0).unwrap();
    assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");

    // a subset gives a lower bound, reproducible for a seed
    let sub = propose_sigma_max(&x, 200, 3).unwrap();
    assert!(sub <= want + 1e-9 && sub > 0.5 * want);
    assert_eq!(sub, propose_sigma_max(&x, 200, 3).unwrap());
    assert!(propose_sigma_max(&x.narrow(0, 0, 1).unwrap(), 10, 0).is_err());

    // two planted far points dominate
    let far = Tensor::new(&[[0.0f32, 0.0], [3.0, 4.0], [0.5, 0.5]], &Device::Cpu).unwrap();
    assert!((propose_sigma_max(&far, 10, 0).unwrap() - 5.0).abs() < 1e-12);
}
