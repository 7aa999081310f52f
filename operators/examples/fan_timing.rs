//! Timing of the fan-beam projector, its adjoint and fan-beam FBP next to the parallel-beam
//! Radon transform at the same sizes (not a test; the ASTRA `line_fanflat` peer runs
//! separately).
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p medsgm-operators --example fan_timing`
//! prints the minimum and the median of 9 runs (after one warm-up) in milliseconds (the
//! minimum is the least disturbed by other processes on a shared machine) for 256²/360 views/512 bins
//! and 512²/720/1024, source 2N from the isocentre, detector 4N from the source (unit bins at
//! the isocentre), full scan.

use medsgm_operators::fan::{fan_fbp, DetectorKind, FanBeam, FanGeometry};
use medsgm_operators::fbp::{fbp, Filter};
use medsgm_operators::phantom::shepp_logan;
use medsgm_operators::radon::{Radon, RadonGeometry};
use std::time::Instant;

/// "min/median" of 9 timed calls of `f` after one warm-up, in milliseconds.
fn min_median_ms(mut f: impl FnMut()) -> String {
    f();
    let mut ms: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    format!("{:7.2}/{:7.2}", ms[0], ms[4])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("threads: {}", rayon::current_num_threads());
    for (n, views, bins) in [(256usize, 360usize, 512usize), (512, 720, 1024)] {
        let image = shepp_logan(n);
        let r = 2.0 * n as f32;
        for kind in [DetectorKind::Flat, DetectorKind::Equiangular] {
            let op = FanBeam::new(FanGeometry::full_scan(n, views, r, 2.0 * r, kind, bins))?;
            let sino = op.project(&image.view());
            let fp = min_median_ms(|| drop(op.project(&image.view())));
            let bp = min_median_ms(|| drop(op.backproject(&sino.view())));
            let rec = min_median_ms(|| drop(fan_fbp(&op, &sino.view(), Filter::RamLak)));
            println!(
                "fan {kind:?} {n}² {views} views {bins} bins: FP {fp} ms  BP {bp} ms  \
                 FBP {rec} ms"
            );
        }
        let radon = Radon::new(RadonGeometry::equispaced(n, views, bins))?;
        let sino = radon.project(&image.view());
        let fp = min_median_ms(|| drop(radon.project(&image.view())));
        let bp = min_median_ms(|| drop(radon.backproject(&sino.view())));
        let rec = min_median_ms(|| drop(fbp(&radon, &sino.view(), Filter::RamLak)));
        println!("parallel {n}² {views} views {bins} bins:   FP {fp} ms  BP {bp} ms  FBP {rec} ms");
    }
    Ok(())
}
