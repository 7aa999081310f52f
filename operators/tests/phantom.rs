//! Phantom checks against independent closed forms.

use medsgm_operators::phantom::ellipse::{
    analytic_sinogram, analytic_sinogram_with, rasterize, DetectorSampling, Ellipse,
};
use medsgm_operators::phantom::{random_ellipse_set, random_ellipses, shepp_logan};
use medsgm_operators::radon::RadonGeometry;

#[test]
fn shepp_logan_values_and_areas() {
    let img = shepp_logan(128);
    let (lo, hi) = img
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(lo >= 0.0 && hi <= 1.0, "range [{lo}, {hi}]");
    assert!(hi > 0.99, "skull reaches 1");
    // centre of the image lies in the brain (0.2) between the small ellipses
    assert!((img[[64, 64]] - 0.2).abs() < 1e-5, "{}", img[[64, 64]]);
    // total mass = Σ value·π·a·b·(N/2)² (area-weighted rasterisation)
    let exact: f64 = medsgm_operators::phantom::shepp_logan_ellipses()
        .iter()
        .map(|e| e.value as f64 * std::f64::consts::PI * (e.a * e.b) as f64 * 64.0 * 64.0)
        .sum();
    let mass: f64 = img.iter().map(|&v| v as f64).sum();
    assert!((mass - exact).abs() / exact < 2e-3, "{mass} vs {exact}");
}

#[test]
fn rasterized_disc_area_converges() {
    let disc = [Ellipse {
        value: 1.0,
        a: 0.5,
        b: 0.5,
        x0: 0.1,
        y0: -0.2,
        phi_deg: 0.0,
    }];
    let exact = std::f64::consts::PI * 16.0 * 16.0; // radius 0.5·32 px
    let err = |ss| {
        let m: f64 = rasterize(&disc, 64, ss).iter().map(|&v| v as f64).sum();
        (m - exact).abs() / exact
    };
    assert!(err(16) < 2e-3);
    assert!(err(16) < err(1) + 1e-12);
}

#[test]
fn analytic_sinogram_matches_raster_column_sums() {
    // θ = 0: the ray x = t sums one image column; θ = 90°: one row (t = y).
    let ellipses = random_ellipse_set(3, 5);
    let n = 96;
    let img = rasterize(&ellipses, n, 16);
    let g = RadonGeometry::from_degrees(n, &[0.0, 90.0], n);
    let sino = analytic_sinogram_with(&ellipses, &g, DetectorSampling::BinAveraged);
    let mut err = 0.0f64;
    let mut nrm = 0.0f64;
    for k in 0..n {
        let col: f64 = img.column(k).iter().map(|&v| v as f64).sum();
        let row: f64 = img.row(n - 1 - k).iter().map(|&v| v as f64).sum();
        err += (col - sino[[0, k]] as f64).powi(2) + (row - sino[[1, k]] as f64).powi(2);
        nrm += (col.powi(2) + row.powi(2)) as f64;
    }
    let rel = (err / nrm).sqrt();
    assert!(rel < 5e-3, "relative error {rel}");
    // point sampling differs from bin averaging only at the edges
    let point = analytic_sinogram(&ellipses, &g);
    assert!(point
        .iter()
        .zip(sino.iter())
        .any(|(a, b)| (a - b).abs() > 1e-3));
}

#[test]
fn random_phantoms_are_seeded() {
    let a = random_ellipses(32, 7, 6);
    let b = random_ellipses(32, 7, 6);
    let c = random_ellipses(32, 8, 6);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.iter().all(|&v| (0.0..=1.0).contains(&v)));
}
