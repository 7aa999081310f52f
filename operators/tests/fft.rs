//! The unitary centred FFT and the MRI measurement operators built on it.

use medsgm_operators::fft::{Direction, Fft2, RealInput};
use medsgm_operators::kspace_mask;
use medsgm_operators::linop::{norm, randn};
use medsgm_operators::{LinearOperator, Subsampled, Transform};
use ndarray::{Array1, Array2, ArrayD, Ix2};
use num_complex::Complex32;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SIZES: [(usize, usize); 4] = [(32, 32), (17, 24), (20, 15), (9, 9)];

fn column_mask(h: usize, w: usize) -> ArrayD<bool> {
    kspace_mask::equispaced(h, w, 4.0, 0.08).unwrap().into_dyn()
}

#[test]
fn fft_is_unitary_and_inverse_is_exact() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (h, w) in SIZES {
        let fft = Fft2::new(h, w).unwrap();
        let x: ArrayD<Complex32> = randn(&[h, w], &mut rng);
        let k = fft.forward(&x.view());
        let (nx, nk) = (norm(&x.view()), norm(&k.view()));
        assert!(
            (nx - nk).abs() / nx < 1e-5,
            "[{h}, {w}]: ‖x‖ = {nx}, ‖Fx‖ = {nk}"
        );
        let back = fft.inverse(&k.view());
        let err = norm(&(&back - &x).view()) / nx;
        assert!(err < 1e-5, "[{h}, {w}]: inverse error {err}");
        // And the other order: F F⁻¹ = I.
        let again = fft.forward(&fft.inverse(&x.view()).view());
        assert!(norm(&(&again - &x).view()) / nx < 1e-5);
    }
}

#[test]
fn centred_convention_places_dc_and_origin_at_half_size() {
    for (h, w) in SIZES {
        let fft = Fft2::new(h, w).unwrap();
        let s = 1.0 / ((h * w) as f32).sqrt();
        // A delta at the image centre (H/2, W/2) has flat, real k-space 1/√(HW).
        let mut delta = Array2::from_elem((h, w), Complex32::new(0.0, 0.0));
        delta[[h / 2, w / 2]] = Complex32::new(1.0, 0.0);
        let k = fft.apply(&delta.view(), Direction::Forward);
        for v in k.iter() {
            assert!(
                (v - Complex32::new(s, 0.0)).norm() < 1e-6,
                "[{h}, {w}]: {v}"
            );
        }
        // A constant image puts all energy at the DC index (H/2, W/2): value √(HW).
        let ones = Array2::from_elem((h, w), Complex32::new(1.0, 0.0));
        let k = fft.apply(&ones.view(), Direction::Forward);
        for ((i, j), v) in k.indexed_iter() {
            let want = if (i, j) == (h / 2, w / 2) {
                1.0 / s
            } else {
                0.0
            };
            assert!(
                (v - Complex32::new(want, 0.0)).norm() < 1e-4,
                "[{h}, {w}] ({i}, {j}): {v}"
            );
        }
        // A plane wave exp(2πi(u·r/H + v·c/W)) maps to a delta at (H/2 + u, W/2 + v).
        let (u, v) = (1usize, 2usize);
        let wave = Array2::from_shape_fn((h, w), |(r, c)| {
            let phase = 2.0
                * std::f64::consts::PI
                * (u as f64 * (r as f64 - (h / 2) as f64) / h as f64
                    + v as f64 * (c as f64 - (w / 2) as f64) / w as f64);
            Complex32::new(phase.cos() as f32, phase.sin() as f32)
        });
        let k = fft.apply(&wave.view(), Direction::Forward);
        let peak = k[[(h / 2 + u) % h, (w / 2 + v) % w]];
        assert!(
            (peak.norm() - 1.0 / s).abs() < 1e-3 / s,
            "[{h}, {w}]: peak {peak}"
        );
        assert!(
            (peak.arg()).abs() < 1e-4,
            "[{h}, {w}]: phase {}",
            peak.arg()
        );
    }
}

#[test]
fn real_input_adapter_inverts_real_images() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let op = RealInput::new(Fft2::new(16, 12).unwrap());
    let x: ArrayD<f32> = randn(&[16, 12], &mut rng);
    let back = op.inverse(&op.forward(&x.view()).view());
    assert!(norm(&(&back - &x).view()) / norm(&x.view()) < 1e-5);
}

/// Theorem 8.1 with A = P(Λ) F: λ = 0 is the identity, λ = 1 gives exact k-space consistency
/// (A k = ŷ) and leaves the unmeasured k-space of x untouched.
#[test]
fn theorem_8_1_with_subsampled_fft() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (h, w) = (24, 20);
    let a = Subsampled::new(Fft2::new(h, w).unwrap(), column_mask(h, w)).unwrap();
    let x: ArrayD<Complex32> = randn(&[h, w], &mut rng);
    let y: Array1<Complex32> = randn::<Complex32, _>(&[a.num_measurements()], &mut rng)
        .into_dimensionality()
        .unwrap();
    let k0 = a.consistency(&x.view(), &y.view(), 0.0);
    assert!(norm(&(&k0 - &x).view()) / norm(&x.view()) < 1e-6);

    let k1 = a.consistency(&x.view(), &y.view(), 1.0);
    let ak = a.forward(&k1.view());
    let err = norm(&(&ak - &y.view().into_dyn()).view()) / norm(&y.view().into_dyn());
    assert!(err < 1e-5, "A k = ŷ violated: {err}");
    let (tx, tk) = (
        a.transform().forward(&x.view()),
        a.transform().forward(&k1.view()),
    );
    let unmeasured: f32 = tx
        .iter()
        .zip(tk.iter())
        .zip(a.mask().iter())
        .filter(|(_, &m)| !m)
        .map(|((p, q), _)| (p - q).norm())
        .fold(0.0, f32::max);
    assert!(
        unmeasured < 1e-5,
        "unmeasured k-space changed by {unmeasured}"
    );

    // λ = 1/2 sits halfway in k-space on the measured entries.
    let kh = a.consistency(&x.view(), &y.view(), 0.5);
    let mid = a.forward(&kh.view());
    let ax = a.forward(&x.view());
    let want = (&ax + &y.view().into_dyn()).mapv(|v| v * 0.5);
    assert!(norm(&(&mid - &want).view()) / norm(&want.view()) < 1e-5);
}

#[test]
fn apply_into_reuses_the_output_buffer() {
    let fft = Fft2::new(8, 6).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let x: Array2<Complex32> = randn::<Complex32, _>(&[8, 6], &mut rng)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let mut out = Array2::from_elem((8, 6), Complex32::new(9.0, 9.0));
    fft.apply_into(&x.view(), &mut out.view_mut(), Direction::Forward);
    assert_eq!(out, fft.apply(&x.view(), Direction::Forward));
    assert!(Fft2::new(0, 4).is_err());
}
