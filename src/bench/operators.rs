//! `medsgm bench operators` (Radon and fan-beam parts): Radon forward, adjoint and FBP timings at
//! the sizes of the benchmark table; the scikit-image side is
//! data-scripts/peer_bench_operators.py (same phantom, angles and sizes). Fan-beam forward,
//! adjoint and FBP for both detector kinds ([`run_fan`]); the ASTRA side (flat detector only) is
//! data-scripts/peer_bench_fan.py (same geometry).
//!
//! Two detector widths per size: n_det = ⌈√2·N⌉ (medsgm's default, covers the whole square,
//! like scikit-image's `radon(circle=False)`), and n_det = N (the inscribed circle only, like
//! `radon(circle=True)`, which scikit-image reference timings usually use).

use super::BenchRow;
use medsgm_operators::fan::{fan_fbp, DetectorKind, FanBeam, FanGeometry};
use medsgm_operators::fbp::{fbp, Filter};
use medsgm_operators::phantom::shepp_logan;
use medsgm_operators::radon::{Radon, RadonGeometry};
use std::time::Instant;

/// (image size, views) pairs timed by [`run`].
pub const CASES: [(usize, usize); 3] = [(256, 180), (256, 23), (512, 180)];

/// (image size N, views, detector bins) of the fan-beam cases timed by [`run_fan`].
pub const FAN_CASES: [(usize, usize, usize); 2] = [(256, 360, 512), (512, 720, 1024)];

/// (min, median) wall time in milliseconds of `repeats` calls of `f` after two warm-up calls.
fn min_median_ms(repeats: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    f();
    let mut ms: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[0], ms[ms.len() / 2])
}

/// Times Radon forward, adjoint (exact transpose) and ram-lak FBP on the modified Shepp–Logan
/// phantom for every case of [`CASES`] and both detector widths, `repeats` runs each. The
/// minimum is in each row's `note` (with the detector choice and the thread count).
pub fn run(repeats: usize) -> anyhow::Result<Vec<BenchRow>> {
    let threads = rayon::current_num_threads();
    let mut rows = Vec::new();
    for (n, views) in CASES {
        let image = shepp_logan(n);
        for (n_det, which) in [
            (RadonGeometry::default_n_det(n), "⌈√2·N⌉ bins, whole square"),
            (n, "N bins, inscribed circle as skimage circle=True"),
        ] {
            let radon = Radon::new(RadonGeometry::equispaced(n, views, n_det))?;
            let sino = radon.project(&image.view());
            let mut push = |what: &str, (min, median): (f64, f64)| {
                rows.push(BenchRow {
                    group: "operators".into(),
                    case: format!("{what} {n}² {views} views {n_det} det"),
                    median_ms: median,
                    note: format!("min {min:.3} ms; {which}; {threads} threads"),
                });
            };
            push(
                "radon forward",
                min_median_ms(repeats, || {
                    std::hint::black_box(radon.project(&image.view()));
                }),
            );
            push(
                "radon adjoint",
                min_median_ms(repeats, || {
                    std::hint::black_box(radon.backproject(&sino.view()));
                }),
            );
            push(
                "fbp ram-lak",
                min_median_ms(repeats, || {
                    std::hint::black_box(fbp(&radon, &sino.view(), Filter::RamLak));
                }),
            );
        }
    }
    Ok(rows)
}

/// Times the fan-beam projector, its adjoint (exact transpose) and ram-lak fan-beam FBP on the
/// modified Shepp–Logan phantom for every case of [`FAN_CASES`] and both detector kinds: full
/// scan, source R = 2N from the isocentre, detector D = 4N from the source, bins of unit width at
/// the isocentre ([`FanGeometry::full_scan`]); `repeats` runs each, the minimum in the note.
pub fn run_fan(repeats: usize) -> anyhow::Result<Vec<BenchRow>> {
    let threads = rayon::current_num_threads();
    let mut rows = Vec::new();
    for (n, views, bins) in FAN_CASES {
        let image = shepp_logan(n);
        let r = 2.0 * n as f32;
        for (kind, name) in [
            (DetectorKind::Flat, "flat"),
            (DetectorKind::Equiangular, "equiangular"),
        ] {
            let op = FanBeam::new(FanGeometry::full_scan(n, views, r, 2.0 * r, kind, bins))?;
            let sino = op.project(&image.view());
            let mut push = |what: &str, (min, median): (f64, f64)| {
                rows.push(BenchRow {
                    group: "operators".into(),
                    case: format!("fan {name} {what} {n}² {views} views {bins} det"),
                    median_ms: median,
                    note: format!("min {min:.3} ms; R = 2N, D = 4N; {threads} threads"),
                });
            };
            push(
                "forward",
                min_median_ms(repeats, || {
                    std::hint::black_box(op.project(&image.view()));
                }),
            );
            push(
                "adjoint",
                min_median_ms(repeats, || {
                    std::hint::black_box(op.backproject(&sino.view()));
                }),
            );
            push(
                "fbp ram-lak",
                min_median_ms(repeats, || {
                    std::hint::black_box(fan_fbp(&op, &sino.view(), Filter::RamLak));
                }),
            );
        }
    }
    Ok(rows)
}
