//! `medsgm bench operators` (MRI part): the unitary centred FFT round trip
//! fft2 → mask → ifft2 and SSIM at 256², plus one FISTA-TV reconstruction. Compare with
//! data-scripts/peer_bench_mri.py (numpy/scipy `norm="ortho"` FFTs, scikit-image SSIM).

use super::{median_ms, BenchRow};
use medsgm_operators::fft::{Direction, Fft2, RealInput};
use medsgm_operators::kspace_mask::{equispaced, song_center_fraction};
use medsgm_operators::linop::randn;
use medsgm_operators::metrics::{ssim, SsimPreset};
use medsgm_operators::solvers::{fista_tv, FistaTvParams};
use medsgm_operators::{LinearOperator, Subsampled};
use ndarray::{Array2, Ix2, Zip};
use num_complex::Complex32;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Times the MRI operators at 256² (median of `repeats`; FISTA-TV with at most 3 repeats).
pub fn run(repeats: usize) -> anyhow::Result<Vec<BenchRow>> {
    let n = 256;
    let threads = rayon::current_num_threads();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let fft = Fft2::new(n, n)?;
    let x: Array2<Complex32> =
        randn::<Complex32, _>(&[n, n], &mut rng).into_dimensionality::<Ix2>()?;
    let mask = equispaced(n, n, 4.0, song_center_fraction(n, 4.0))?;
    let mut k = Array2::from_elem((n, n), Complex32::new(0.0, 0.0));
    let mut back = k.clone();
    let mut rows = Vec::new();
    let mut push = |case: &str, ms: f64, note: String| {
        rows.push(BenchRow {
            group: "mri".into(),
            case: case.into(),
            median_ms: ms,
            note,
        })
    };

    let ms = median_ms(repeats, || {
        fft.apply_into(&x.view(), &mut k.view_mut(), Direction::Forward);
        Ok(())
    })?;
    push(
        "fft2 256² complex64 (centred, unitary)",
        ms,
        format!("{threads} threads"),
    );
    let ms = median_ms(repeats, || {
        fft.apply_into(&x.view(), &mut k.view_mut(), Direction::Forward);
        Zip::from(&mut k).and(&mask).for_each(|v, &m| {
            if !m {
                *v = Complex32::new(0.0, 0.0);
            }
        });
        fft.apply_into(&k.view(), &mut back.view_mut(), Direction::Inverse);
        Ok(())
    })?;
    push(
        "fft2 -> mask -> ifft2 256² (preallocated)",
        ms,
        format!("{threads} threads; numpy ortho 0.52 ms, scipy 0.49 ms (reference figure, not this run)"),
    );
    let xd = x.view().into_dyn();
    let mask_d = mask.view().into_dyn();
    let ms = median_ms(repeats, || {
        let mut kk = fft.forward(&xd);
        Zip::from(&mut kk).and(&mask_d).for_each(|v, &m| {
            if !m {
                *v = Complex32::new(0.0, 0.0);
            }
        });
        std::hint::black_box(fft.adjoint(&kk.view()));
        Ok(())
    })?;
    push(
        "fft2 -> mask -> ifft2 256² (LinearOperator, allocating)",
        ms,
        format!("{threads} threads"),
    );

    let reference = Array2::from_shape_fn((n, n), |(i, j)| ((i / 32 + j / 32) % 3) as f32 / 2.0);
    let noise = randn::<f32, _>(&[n, n], &mut rng).into_dimensionality::<Ix2>()?;
    let noisy = &reference + &noise.mapv(|v| 0.05 * v);
    for (preset, peer) in [
        (SsimPreset::SkimageDefault, "3.3"),
        (SsimPreset::Gaussian, "4.3"),
    ] {
        let ms = median_ms(repeats, || {
            std::hint::black_box(ssim(&noisy.view(), &reference.view(), 1.0, preset)?);
            Ok(())
        })?;
        push(
            &format!("SSIM 256² ({preset})"),
            ms,
            format!("{threads} threads; scikit-image {peer} ms (reference figure, not this run)"),
        );
    }

    let a = Subsampled::new(RealInput::new(fft.clone()), mask.clone().into_dyn())?;
    let y = a.forward(&reference.view().into_dyn());
    let params = FistaTvParams {
        weight: 2e-3,
        iterations: 300,
        inner_iterations: 20,
        nonnegative: true,
        lipschitz: Some(1.0),
    };
    let ms = median_ms(repeats.clamp(1, 3), || {
        std::hint::black_box(fista_tv(&a, &y.view(), &params, None, |_, _| {})?);
        Ok(())
    })?;
    push(
        "FISTA-TV 256² MRI R = 4 (300 × 20 FGP)",
        ms,
        format!("{threads} threads"),
    );
    Ok(rows)
}
