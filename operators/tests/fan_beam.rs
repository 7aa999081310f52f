//! Fan-beam CT: exact adjoint, accuracy against exact line integrals (measured against the
//! parallel projector's accuracy at matching sampling), FBP for full and short scans, Parker
//! weights, rebinning to parallel beam, geometry validation and serialisation.

mod common;
use common::rel_l2;
use medsgm_operators::fan::{
    analytic_fan_sinogram, fan_fbp, parker_weight, parker_weights, rebin_to_parallel, DetectorKind,
    FanBeam, FanGeometry,
};
use medsgm_operators::fbp::{fbp, Filter};
use medsgm_operators::phantom::ellipse::analytic_sinogram;
use medsgm_operators::phantom::{shepp_logan, shepp_logan_ellipses};
use medsgm_operators::radon::{Radon, RadonGeometry};
use medsgm_operators::ramp::{filter_sinogram, RampFilter};
use medsgm_operators::{adjoint_test, Subsampled, Transform};
use ndarray::{Array2, ArrayD};

const KINDS: [DetectorKind; 2] = [DetectorKind::Equiangular, DetectorKind::Flat];

/// RMSE over the disc inscribed in the image (the reconstructed field of view).
fn rmse_in_disc(x: &Array2<f32>, reference: &Array2<f32>) -> f64 {
    let n = x.nrows();
    let c = (n as f64 - 1.0) / 2.0;
    let (mut sum, mut count) = (0.0f64, 0usize);
    for ((i, j), &v) in x.indexed_iter() {
        if (i as f64 - c).powi(2) + (j as f64 - c).powi(2) <= (n as f64 / 2.0 - 1.0).powi(2) {
            sum += (v as f64 - reference[[i, j]] as f64).powi(2);
            count += 1;
        }
    }
    (sum / count as f64).sqrt()
}

/// A 256² scanner-like geometry: source 2.5 image widths from the isocentre, magnification 2,
/// unit bins at the isocentre covering the image diagonal.
fn scanner(kind: DetectorKind, n_views: usize) -> FanGeometry {
    let (n, r) = (256usize, 640.0f32);
    FanGeometry::full_scan(
        n,
        n_views,
        r,
        2.0 * r,
        kind,
        FanGeometry::default_n_det(n, r, kind),
    )
}

#[test]
fn projection_matches_analytic_fan_sinogram_as_well_as_parallel_does() {
    let n = 256;
    let image = shepp_logan(n);
    let ellipses = shepp_logan_ellipses();
    let pg = RadonGeometry::equispaced(n, 180, RadonGeometry::default_n_det(n));
    let parallel = rel_l2(
        &Radon::new(pg.clone()).unwrap().project(&image.view()),
        &analytic_sinogram(&ellipses, &pg),
    );
    for kind in KINDS {
        let g = scanner(kind, 360).with_det_offset(0.25);
        let fan = rel_l2(
            &FanBeam::new(g.clone()).unwrap().project(&image.view()),
            &analytic_fan_sinogram(&ellipses, &g),
        );
        println!("{kind:?}: fan {fan:.5}, parallel {parallel:.5}");
        assert!(
            fan <= parallel,
            "{kind:?}: fan {fan} vs parallel {parallel}"
        );
    }
}

#[test]
fn an_off_centre_point_projects_onto_its_fan_ray() {
    // a small disc at (X, Y): in view β its shadow's centroid lies at the bin whose ray passes
    // through (X, Y), i.e. γ with tan γ = l/d (to a few hundredths of a bin)
    let n = 64;
    let (x0, y0) = (12.8f64, -8.0f64);
    let disc = |i: usize, j: usize| {
        let (x, y) = (j as f64 - 31.5, 31.5 - i as f64);
        ((x - x0).powi(2) + (y - y0).powi(2) <= 4.0) as u8 as f32
    };
    let image = Array2::from_shape_fn((n, n), |(i, j)| disc(i, j));
    for kind in KINDS {
        let g = FanGeometry::full_scan(n, 12, 100.0, 180.0, kind, 181).with_det_offset(0.25);
        let sino = FanBeam::new(g.clone()).unwrap().project(&image.view());
        for (v, row) in sino.outer_iter().enumerate() {
            let beta = g.angles[v] as f64;
            let (sx, sy) = (-100.0 * beta.sin(), 100.0 * beta.cos());
            let (rx, ry) = (x0 - sx, y0 - sy);
            let d = rx * beta.sin() - ry * beta.cos();
            let l = rx * beta.cos() + ry * beta.sin();
            let expected = g.bin_of(g.det_position_of((l / d).atan()));
            let mass: f64 = row.iter().map(|&p| p as f64).sum();
            let centroid: f64 = row
                .iter()
                .enumerate()
                .map(|(k, &p)| k as f64 * p as f64)
                .sum::<f64>()
                / mass;
            assert!(
                (centroid - expected).abs() < 0.05,
                "{kind:?} view {v}: centroid {centroid} vs {expected}"
            );
        }
    }
}

#[test]
fn fbp_full_and_short_scan_match_parallel_fbp_accuracy() {
    let n = 256;
    let image = shepp_logan(n);
    let ellipses = shepp_logan_ellipses();
    // parallel: 180 views over π and unit bins ≙ fan: 360 views over 2π, unit bins at the
    // isocentre; all from exact line integrals
    let pg = RadonGeometry::equispaced(n, 180, RadonGeometry::default_n_det(n));
    let radon = Radon::new(pg.clone()).unwrap();
    let parallel = rmse_in_disc(
        &fbp(
            &radon,
            &analytic_sinogram(&ellipses, &pg).view(),
            Filter::RamLak,
        ),
        &image,
    );
    for kind in KINDS {
        let full = scanner(kind, 360).with_det_offset(0.25);
        // the short scan with the full scan's angular step
        let arc = full.short_scan_range();
        let short = full
            .clone()
            .with_short_scan((360.0 * arc / std::f64::consts::TAU).round() as usize);
        for g in [full, short] {
            let op = FanBeam::new(g.clone()).unwrap();
            let sino = analytic_fan_sinogram(&ellipses, &g);
            let rmse = rmse_in_disc(&fan_fbp(&op, &sino.view(), Filter::RamLak), &image);
            println!(
                "{kind:?} {} views: fan {rmse:.5}, parallel {parallel:.5}",
                g.n_views()
            );
            assert!(
                rmse <= 1.2 * parallel,
                "{kind:?}, {} views: fan-beam FBP RMSE {rmse} vs parallel {parallel}",
                g.n_views()
            );
        }
    }
}

#[test]
fn transform_inverse_is_fan_fbp_and_windows_keep_the_dc_level() {
    let n = 64;
    let disc = Array2::from_shape_fn((n, n), |(i, j)| {
        let (x, y) = (j as f32 - 31.5, 31.5 - i as f32);
        (x * x + y * y <= 400.0) as u8 as f32
    });
    for kind in KINDS {
        let op = FanBeam::new(FanGeometry::full_scan(n, 180, 150.0, 300.0, kind, 151)).unwrap();
        let sino = op.project(&disc.view());
        let inv = op.inverse(&sino.view().into_dyn());
        let ramlak = fan_fbp(&op, &sino.view(), Filter::RamLak);
        assert_eq!(inv, ramlak.into_dyn());
        for filter in Filter::ALL {
            let x = fan_fbp(&op, &sino.view(), filter);
            let centre = x[[32, 32]];
            assert!((centre - 1.0).abs() < 0.03, "{kind:?} {filter}: {centre}");
        }
    }
}

#[test]
fn parker_weights_sum_to_one_over_conjugate_rays() {
    let pi = std::f64::consts::PI;
    for gamma_m in [0.1f64, 0.35, 0.6] {
        for i in 0..=40 {
            let gamma = gamma_m * (i as f64 / 20.0 - 1.0);
            for s in 0..=200 {
                // every β of the scan whose conjugate is in the scan too
                let beta = s as f64 / 200.0 * (pi + 2.0 * gamma_m);
                let conj = beta + pi + 2.0 * gamma;
                let (w, wc) = (
                    parker_weight(beta, gamma, gamma_m),
                    parker_weight(conj, -gamma, gamma_m),
                );
                let w_prev = parker_weight(beta - pi + 2.0 * gamma, -gamma, gamma_m);
                // each line is measured at (β, γ) and at one of its two conjugates
                let total = w + if conj <= pi + 2.0 * gamma_m {
                    wc
                } else {
                    w_prev
                };
                assert!(
                    (total - 1.0).abs() < 1e-12,
                    "γm {gamma_m} γ {gamma} β {beta}: {total}"
                );
                assert!((0.0..=1.0).contains(&w));
            }
        }
    }
    // the weights of a short-scan geometry vanish at the ends of the scan
    let g = scanner(DetectorKind::Equiangular, 360).with_short_scan(200);
    let w = parker_weights(&g);
    assert_eq!(w.dim(), (200, g.n_det));
    assert!(w.row(0).iter().all(|&v| v < 0.01));
    assert!(w.row(100).iter().all(|&v| v == 1.0));
}

#[test]
fn rebinning_then_parallel_fbp_is_close_to_fan_fbp() {
    let n = 256;
    let image = shepp_logan(n);
    let ellipses = shepp_logan_ellipses();
    let pg = RadonGeometry::equispaced(n, 180, RadonGeometry::default_n_det(n));
    let radon = Radon::new(pg.clone()).unwrap();
    let exact = analytic_sinogram(&ellipses, &pg);
    let parallel = rmse_in_disc(&fbp(&radon, &exact.view(), Filter::RamLak), &image);
    for kind in KINDS {
        let full = scanner(kind, 360).with_det_offset(0.25);
        let arc = full.short_scan_range();
        let short = full
            .clone()
            .with_short_scan((360.0 * arc / std::f64::consts::TAU).round() as usize);
        for g in [full, short] {
            let op = FanBeam::new(g.clone()).unwrap();
            let sino = analytic_fan_sinogram(&ellipses, &g);
            let fan = fan_fbp(&op, &sino.view(), Filter::RamLak);
            let rebinned = rebin_to_parallel(&g, &sino.view(), &pg).unwrap();
            let sino_err = rel_l2(&rebinned, &exact);
            let par = fbp(&radon, &rebinned.view(), Filter::RamLak);
            let (e_fan, e_par) = (rmse_in_disc(&fan, &image), rmse_in_disc(&par, &image));
            let gap = rmse_in_disc(&par, &fan);
            println!(
                "{kind:?} {} views: rebinned sinogram {sino_err:.4}; RMSE fan FBP {e_fan:.4}, \
                 rebinned + parallel FBP {e_par:.4} (exact parallel {parallel:.4}), between \
                 them {gap:.4}",
                g.n_views()
            );
            // rebinning costs about an interpolation: the sinogram stays within the Joseph
            // projector's own error of the exact one, the image as good as parallel FBP of
            // exact data, and it differs from fan-beam FBP by about parallel FBP's own error
            assert!(
                sino_err < 0.015,
                "{kind:?}: rebinned sinogram error {sino_err}"
            );
            assert!(
                e_par < 1.05 * parallel,
                "{kind:?}: rebinned {e_par} vs {parallel}"
            );
            assert!(gap < 1.2 * parallel, "{kind:?}: {gap} vs {parallel}");
        }
    }
    let g = scanner(DetectorKind::Flat, 360);
    assert!(rebin_to_parallel(&g, &Array2::zeros((3, 3)).view(), &pg).is_err());
}

/// Full scans of 4k views take the projector's quarter-turn path (each group of four views
/// traced once through the four rotations of the image); it reproduces, forward and adjoint,
/// the per-view path, which single-view geometries take: both detectors, centred and offset
/// detectors, even and odd sizes, random data.
#[test]
fn quarter_turn_groups_project_as_their_views_do_one_by_one() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(19);
    for kind in KINDS {
        for (n, offset) in [(40usize, 0.25f32), (41, -1.3), (40, 0.0)] {
            let r = 2.0 * n as f32;
            let k = FanGeometry::default_n_det(n, r, kind) + 6;
            let g = FanGeometry::full_scan(n, 44, r, 2.0 * r, kind, k).with_det_offset(offset);
            let op = FanBeam::new(g.clone()).unwrap();
            let x = Array2::from_shape_simple_fn((n, n), || rng.random_range(-1.0f32..1.0));
            let y = Array2::from_shape_simple_fn((44, k), || rng.random_range(-1.0f32..1.0));
            let (fx, fty) = (op.project(&x.view()), op.backproject(&y.view()));
            let mut per_view_fx = Array2::<f32>::zeros(fx.dim());
            let mut per_view_fty = Array2::<f32>::zeros((n, n));
            for (v, &beta) in g.angles.iter().enumerate() {
                let one = FanBeam::new(g.clone().with_angles(vec![beta])).unwrap();
                per_view_fx
                    .row_mut(v)
                    .assign(&one.project(&x.view()).row(0));
                per_view_fty += &one.backproject(&y.slice(ndarray::s![v..v + 1, ..]));
            }
            let (fwd, adj) = (rel_l2(&fx, &per_view_fx), rel_l2(&fty, &per_view_fty));
            assert!(fwd < 1e-5 && adj < 1e-5, "{kind:?} {n}: {fwd} {adj}");
        }
    }
}

#[test]
fn view_mask_restricts_to_the_kept_views() {
    let g =
        FanGeometry::full_scan(48, 36, 90.0, 160.0, DetectorKind::Flat, 99).with_det_offset(0.25);
    let op = FanBeam::new(g.clone()).unwrap();
    let keep: Vec<bool> = (0..36).map(|v| v % 5 == 1).collect();
    let mask = ArrayD::from_shape_fn(vec![36, 99], |ix| keep[ix[0]]);
    let sub = op.restricted(&mask).expect("a view mask restricts");
    let image = shepp_logan(48);
    let full = op.project(&image.view());
    let part = sub.project(&image.view());
    let rows: Vec<usize> = (0..36).filter(|&v| keep[v]).collect();
    assert_eq!(part.nrows(), rows.len());
    // the full scan (36 views in quarter-turn groups) traces each group's first view's rays
    // rotated, the restriction its own views' rays: equal to rounding of the f32 angles
    let scale = full.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (r, &v) in rows.iter().enumerate() {
        for (a, b) in part.row(r).iter().zip(full.row(v)) {
            assert!((a - b).abs() <= 1e-5 * scale, "view {v}: {a} vs {b}");
        }
    }
    // A = P(Λ)F for sparse-view fan-beam CT passes the dot test and uses the compact form
    let a = Subsampled::new(op.clone(), mask.clone()).unwrap();
    assert!(adjoint_test(&a, 3).rel_error < 1e-5);
    assert!(a.norm_squared() > 0.0);
    let mut ragged = mask.clone();
    ragged[[0, 0]] = !ragged[[0, 0]];
    assert!(op.restricted(&ragged).is_none());
}

#[test]
fn impossible_geometries_are_rejected() {
    let ok = FanGeometry::full_scan(64, 90, 100.0, 200.0, DetectorKind::Equiangular, 131);
    ok.validate().unwrap();
    let cases = [
        (
            "source inside the object",
            ok.clone().with_angles(ok.angles.clone()),
            40.0,
            200.0,
        ),
        ("source touching the object", ok.clone(), 45.5, 200.0),
        ("detector before the isocentre", ok.clone(), 100.0, 100.0),
        ("non-finite distance", ok.clone(), f32::NAN, 200.0),
        (
            "infinite detector distance",
            ok.clone(),
            100.0,
            f32::INFINITY,
        ),
    ];
    for (what, g, r, d) in cases {
        let g = FanGeometry {
            source_distance: r,
            detector_distance: d,
            ..g
        };
        let err = FanBeam::new(g).expect_err(what).to_string();
        println!("{what}: {err}");
    }
    let narrow = FanGeometry {
        n_det: 41,
        ..ok.clone()
    };
    let err = narrow.validate().expect_err("narrow detector").to_string();
    assert!(err.contains("field of view"), "{err}");
    let inside = FanGeometry {
        source_distance: 40.0,
        ..ok.clone()
    };
    assert!(inside
        .validate()
        .unwrap_err()
        .to_string()
        .contains("inside"));
    for bad in [
        FanGeometry {
            size: 0,
            ..ok.clone()
        },
        FanGeometry {
            size: 5000,
            ..ok.clone()
        },
        ok.clone().with_angles(vec![]),
        ok.clone().with_angles(vec![0.0, f32::NAN]),
        FanGeometry {
            n_det: 0,
            ..ok.clone()
        },
        FanGeometry {
            n_det: 20_000,
            ..ok.clone()
        },
        ok.clone().with_det_spacing(0.0),
        ok.clone().with_det_spacing(f32::NAN),
        ok.clone().with_det_offset(f32::INFINITY),
        ok.clone().with_angles(vec![0.0; 100_001]),
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

#[test]
fn geometry_round_trips_through_json() {
    let g = FanGeometry::full_scan(128, 10, 300.0, 550.0, DetectorKind::Flat, 255)
        .with_det_offset(0.25)
        .with_det_spacing(1.7);
    let text = serde_json::to_string(&g).unwrap();
    assert!(text.contains("\"flat\""), "{text}");
    let back: FanGeometry = serde_json::from_str(&text).unwrap();
    assert_eq!(back, g);
}

#[test]
fn a_planned_ramp_filter_equals_per_call_filtering() {
    let sino = Array2::from_shape_fn((7, 45), |(v, k)| ((v * 13 + k * 7) % 11) as f32 - 5.0);
    for filter in Filter::ALL {
        let planned = RampFilter::new(filter, 45, 0.8, 2);
        // the same plan applied twice, and the per-call function, agree exactly
        assert_eq!(planned.apply(&sino.view()), planned.apply(&sino.view()));
        assert_eq!(
            planned.apply(&sino.view()),
            filter_sinogram(&sino.view(), filter, 0.8, 2)
        );
    }
}

/// Sub-divided detector bins (the MAR simulator's aperture): averaging the sinogram over the
/// `os` sub-bins of each bin reproduces the original sinogram of a smooth image, for parallel
/// and fan beam (with a quarter-bin detector offset), so bin centres are preserved.
#[test]
fn subdivided_bins_average_back_to_the_original_bins() {
    let n = 256;
    let image = shepp_logan(n);
    let fan = scanner(DetectorKind::Equiangular, 90).with_det_offset(0.25);
    let projectors = [
        medsgm_operators::CtProjector::from(
            Radon::new(RadonGeometry::equispaced(
                n,
                45,
                RadonGeometry::default_n_det(n),
            ))
            .unwrap(),
        ),
        medsgm_operators::CtProjector::from(FanBeam::new(fan).unwrap()),
    ];
    for p in projectors {
        let coarse = p.project(&image.view()).unwrap();
        for os in [2usize, 4] {
            let fine = p
                .with_subdivided_bins(os)
                .unwrap()
                .project(&image.view())
                .unwrap();
            let (views, bins) = p.sinogram_shape();
            let averaged = Array2::from_shape_fn((views, bins), |(v, k)| {
                (0..os).map(|q| fine[[v, os * k + q]]).sum::<f32>() / os as f32
            });
            let err = rel_l2(&averaged, &coarse);
            assert!(err < 0.02, "os {os}: relative difference {err}");
        }
    }
}
