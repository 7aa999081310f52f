//! Timing of the fan-beam projector, its adjoint and fan-beam FBP next to the parallel-beam
//! Radon transform at the same sizes (not a test; the ASTRA `line_fanflat` peer runs
//! separately).
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p medsgm-operators --example fan_timing`
//! prints the median of 5 runs (after one warm-up) in milliseconds for 256²/360 views/512 bins
//! and 512²/720/1024, source 2N from the isocentre, detector 4N from the source (unit bins at
//! the isocentre), full scan.

use medsgm_operators::fan::{fan_fbp, DetectorKind, FanBeam, FanGeometry};
use medsgm_operators::fbp::{fbp, Filter};
use medsgm_operators::phantom::shepp_logan;
use medsgm_operators::radon::{Radon, RadonGeometry};
use std::time::Instant;

fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut ms: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("threads: {}", rayon::current_num_threads());
    for (n, views, bins) in [(256usize, 360usize, 512usize), (512, 720, 1024)] {
        let image = shepp_logan(n);
        let r = 2.0 * n as f32;
        for kind in [DetectorKind::Flat, DetectorKind::Equiangular] {
            let op = FanBeam::new(FanGeometry::full_scan(n, views, r, 2.0 * r, kind, bins))?;
            let sino = op.project(&image.view());
            let fp = median_ms(|| drop(op.project(&image.view())));
            let bp = median_ms(|| drop(op.backproject(&sino.view())));
            let rec = median_ms(|| drop(fan_fbp(&op, &sino.view(), Filter::RamLak)));
            println!(
                "fan {kind:?} {n}² {views} views {bins} bins: FP {fp:8.2} ms  BP {bp:8.2} ms  \
                 FBP {rec:8.2} ms"
            );
        }
        let radon = Radon::new(RadonGeometry::equispaced(n, views, bins))?;
        let sino = radon.project(&image.view());
        let fp = median_ms(|| drop(radon.project(&image.view())));
        let bp = median_ms(|| drop(radon.backproject(&sino.view())));
        let rec = median_ms(|| drop(fbp(&radon, &sino.view(), Filter::RamLak)));
        println!(
            "parallel {n}² {views} views {bins} bins:   FP {fp:8.2} ms  BP {bp:8.2} ms  FBP {rec:8.2} ms"
        );
    }
    Ok(())
}
