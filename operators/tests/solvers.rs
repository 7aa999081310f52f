//! TV operators, the FGP prox, FISTA-TV and zero-filled reconstruction on undersampled MRI.

mod common;

use medsgm_operators::fft::{Fft2, RealInput};
use medsgm_operators::kspace_mask::{self, song_center_fraction};
use medsgm_operators::linop::{inner, randn};
use medsgm_operators::metrics::psnr;
use medsgm_operators::solvers::tv::{divergence, gradient, tv_norm, tv_prox, Field};
use medsgm_operators::solvers::{fista_tv, zero_filled, ComplexPart, FistaTvParams};
use medsgm_operators::{LinearOperator, Subsampled};
use ndarray::{Array1, Array2, ArrayD, Ix1, Ix2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rand2(h: usize, w: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
    randn::<f32, _>(&[h, w], rng)
        .into_dimensionality::<Ix2>()
        .unwrap()
}

#[test]
fn gradient_and_divergence_are_a_matched_pair() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (h, w) in [(7, 9), (16, 16), (1, 5)] {
        let x = rand2(h, w, &mut rng);
        let p = Field {
            rows: rand2(h, w, &mut rng),
            cols: rand2(h, w, &mut rng),
        };
        let g = gradient(&x.view());
        let lhs = inner(&g.rows.view().into_dyn(), &p.rows.view().into_dyn())
            + inner(&g.cols.view().into_dyn(), &p.cols.view().into_dyn());
        let rhs = -inner(&x.view().into_dyn(), &divergence(&p).view().into_dyn());
        assert!(
            (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
            "[{h}, {w}]: {lhs} vs {rhs}"
        );
    }
    // Isotropic TV of a unit step across a 10-pixel edge is 10.
    let step = Array2::from_shape_fn((10, 12), |(_, j)| if j < 6 { 0.0 } else { 1.0 });
    assert!((tv_norm(&step.view()) - 10.0).abs() < 1e-12);
}

fn prox_objective(x: &Array2<f32>, b: &Array2<f32>, alpha: f32) -> f64 {
    let d = x - b;
    0.5 * inner(&d.view().into_dyn(), &d.view().into_dyn()) + alpha as f64 * tv_norm(&x.view())
}

#[test]
fn fgp_prox_minimises_its_objective() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let b = common::piecewise_phantom(24) + rand2(24, 24, &mut rng).mapv(|v| 0.1 * v);
    for nonnegative in [false, true] {
        let alpha = 0.15;
        let x = tv_prox(
            &b.view(),
            alpha,
            300,
            nonnegative,
            &mut Field::zeros(24, 24),
        );
        if nonnegative {
            assert!(x.iter().all(|&v| v >= 0.0));
        }
        let f = prox_objective(&x, &b, alpha);
        assert!(
            f < prox_objective(
                &b.mapv(|v| if nonnegative { v.max(0.0) } else { v }),
                &b,
                alpha
            )
        );
        for _ in 0..30 {
            let mut z = &x + &rand2(24, 24, &mut rng).mapv(|v| 1e-2 * v);
            if nonnegative {
                z.mapv_inplace(|v| v.max(0.0));
            }
            let fz = prox_objective(&z, &b, alpha);
            assert!(
                fz >= f - 1e-4 * f,
                "perturbation lowered the objective: {fz} < {f}"
            );
        }
    }
}

fn mri_problem(
    n: usize,
    acceleration: f64,
) -> (
    Subsampled<RealInput<Fft2>>,
    Array2<f32>,
    Array1<num_complex::Complex32>,
) {
    let x = common::piecewise_phantom(n);
    let mask =
        kspace_mask::equispaced(n, n, acceleration, song_center_fraction(n, acceleration)).unwrap();
    let a = Subsampled::new(RealInput::new(Fft2::new(n, n).unwrap()), mask.into_dyn()).unwrap();
    let y = a
        .forward(&x.view().into_dyn())
        .into_dimensionality::<Ix1>()
        .unwrap();
    (a, x, y)
}

#[test]
fn zero_filled_inverts_full_sampling_and_matches_the_adjoint() {
    let n = 20;
    let x = common::piecewise_phantom(n);
    let full = ArrayD::from_elem(vec![n, n], true);
    let a = Subsampled::new(RealInput::new(Fft2::new(n, n).unwrap()), full).unwrap();
    let y = a
        .forward(&x.view().into_dyn())
        .into_dimensionality::<Ix1>()
        .unwrap();
    for part in [ComplexPart::Real, ComplexPart::Magnitude] {
        let rec = zero_filled(&a, &y.view(), part).unwrap();
        let err = (&rec - &x).iter().map(|v| v.abs()).fold(0.0, f32::max);
        assert!(err < 1e-5, "{part:?}: {err}");
    }
    // Undersampled: the real zero-filled image is Aᴴ y for the real-input operator.
    let (a, _, y) = mri_problem(32, 4.0);
    let zf = zero_filled(&a, &y.view(), ComplexPart::Real).unwrap();
    let adj = a
        .adjoint(&y.view().into_dyn())
        .into_dimensionality::<Ix2>()
        .unwrap();
    assert!((&zf - &adj).iter().all(|v| v.abs() < 1e-6));
    assert!(zero_filled(&a, &y.slice(ndarray::s![1..]), ComplexPart::Real).is_err());
}

#[test]
fn fista_tv_beats_zero_filled_on_undersampled_mri() {
    let (a, x, y) = mri_problem(64, 4.0);
    let zf = zero_filled(&a, &y.view(), ComplexPart::Magnitude).unwrap();
    let params = FistaTvParams {
        weight: 2e-3,
        iterations: 150,
        inner_iterations: 10,
        nonnegative: true,
        lipschitz: None,
    };
    let mut calls = 0;
    let rec = fista_tv(&a, &y.view().into_dyn(), &params, None, |k, _| {
        assert_eq!(k, calls);
        calls += 1;
    })
    .unwrap();
    assert_eq!(calls, 150);
    let p_zf = psnr(&zf.view(), &x.view(), 1.0).unwrap();
    let p_tv = psnr(&rec.view(), &x.view(), 1.0).unwrap();
    eprintln!("R = 4, 64²: zero-filled {p_zf:.2} dB, FISTA-TV {p_tv:.2} dB");
    assert!(
        p_tv > p_zf + 5.0,
        "FISTA-TV {p_tv:.2} dB vs zero-filled {p_zf:.2} dB"
    );

    // The minimiser's objective is at most the objective of the (feasible) ground truth.
    let objective = |z: &Array2<f32>| {
        let r = &a.forward(&z.view().into_dyn()) - &y.view().into_dyn();
        0.5 * inner(&r.view(), &r.view()) + params.weight as f64 * tv_norm(&z.view())
    };
    assert!(
        objective(&rec) <= objective(&x) * 1.001,
        "{} > {}",
        objective(&rec),
        objective(&x)
    );
}

#[test]
fn fista_without_regularisation_solves_a_well_posed_problem() {
    // A = F on real images (L = 1): one gradient step from 0 is exact.
    let n = 12;
    let x = common::piecewise_phantom(n);
    let full = ArrayD::from_elem(vec![n, n], true);
    let a = Subsampled::new(RealInput::new(Fft2::new(n, n).unwrap()), full).unwrap();
    let y = a.forward(&x.view().into_dyn());
    let params = FistaTvParams {
        weight: 0.0,
        iterations: 5,
        lipschitz: Some(1.0),
        ..FistaTvParams::default()
    };
    let rec = fista_tv(&a, &y.view(), &params, None, |_, _| {}).unwrap();
    assert!((&rec - &x).iter().all(|v| v.abs() < 1e-5));
    let bad = ArrayD::<num_complex::Complex32>::zeros(vec![3]);
    assert!(fista_tv(&a, &bad.view(), &params, None, |_, _| {}).is_err());
}
