//! Timing of the MRI operators and metrics at 256² (not a test; see data-scripts/peer_bench_mri.py
//! for the numpy/scipy/scikit-image side).
//!
//! `cargo run --release -p medsgm-operators --example bench_mri -- [repeats]`
//! prints, per workload, the minimum and median wall time in milliseconds.

use medsgm_operators::fft::{Direction, Fft2};
use medsgm_operators::kspace_mask::{equispaced, song_center_fraction};
use medsgm_operators::linop::randn;
use medsgm_operators::metrics::{ssim, SsimPreset};
use medsgm_operators::LinearOperator;
use ndarray::{Array2, Ix2};
use num_complex::Complex32;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn time(name: &str, repeats: usize, mut f: impl FnMut()) {
    for _ in 0..3 {
        f();
    }
    let mut ms: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "{name:<48} min {:>8.3} ms   median {:>8.3} ms",
        ms[0],
        ms[ms.len() / 2]
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repeats: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200);
    let n = 256;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let fft = Fft2::new(n, n)?;
    let x: Array2<Complex32> =
        randn::<Complex32, _>(&[n, n], &mut rng).into_dimensionality::<Ix2>()?;
    let mask = equispaced(n, n, 4.0, song_center_fraction(n, 4.0))?;
    let mut k = Array2::from_elem((n, n), Complex32::new(0.0, 0.0));
    let mut back = k.clone();

    time("fft2 256² (into buffer)", repeats, || {
        fft.apply_into(&x.view(), &mut k.view_mut(), Direction::Forward);
    });
    time(
        "fft2 -> mask -> ifft2 256² (into buffers)",
        repeats,
        || {
            fft.apply_into(&x.view(), &mut k.view_mut(), Direction::Forward);
            ndarray::Zip::from(&mut k).and(&mask).for_each(|v, &m| {
                if !m {
                    *v = Complex32::new(0.0, 0.0);
                }
            });
            fft.apply_into(&k.view(), &mut back.view_mut(), Direction::Inverse);
        },
    );
    let xd = x.view().into_dyn();
    time(
        "fft2 -> mask -> ifft2 256² (LinearOperator)",
        repeats,
        || {
            let mut kk = fft.forward(&xd);
            ndarray::Zip::from(&mut kk)
                .and(&mask.view().into_dyn())
                .for_each(|v, &m| {
                    if !m {
                        *v = Complex32::new(0.0, 0.0);
                    }
                });
            std::hint::black_box(fft.adjoint(&kk.view()));
        },
    );

    let reference = Array2::from_shape_fn((n, n), |(i, j)| ((i / 32 + j / 32) % 3) as f32 / 2.0);
    let noisy = &reference
        + &randn::<f32, _>(&[n, n], &mut rng)
            .into_dimensionality::<Ix2>()?
            .mapv(|v| 0.05 * v);
    for (preset, name) in [
        (
            SsimPreset::SkimageDefault,
            "SSIM 256² (skimage default, 7×7 uniform)",
        ),
        (SsimPreset::Gaussian, "SSIM 256² (Gaussian σ=1.5, 11×11)"),
    ] {
        let mut s = 0.0;
        time(name, repeats, || {
            s = ssim(&noisy.view(), &reference.view(), 1.0, preset).expect("valid input");
        });
        println!("    value {s:.6}");
    }
    Ok(())
}
