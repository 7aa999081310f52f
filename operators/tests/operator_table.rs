//! One table over every linear operator the crate exposes (in the manner of deepinv's physics
//! test table): parallel-beam Radon, fan beam (equiangular and flat detectors, offsets, short
//! and full scans, arbitrary angles), the CT projector of either beam, the unitary FFT and its
//! real-input restriction, and A = P(Λ)T for sparse-view CT (parallel and fan), k-space masks
//! (equispaced, random, variable density) and metal-artifact removal. Every entry runs the same
//! checks: shapes, the dot (adjointness) test, linearity and the power-iteration norm estimate;
//! entries that claim more also check it: an exact inverse (FFT), FBP as an approximate
//! inverse (CT), the restricted form of a view mask, and the data-consistency step of
//! Theorem 8.1 (`Subsampled::consistency`).

use medsgm_operators::fan::{DetectorKind, FanBeam, FanGeometry};
use medsgm_operators::fft::{Fft2, RealInput};
use medsgm_operators::kspace_mask;
use medsgm_operators::linop::{inner, norm, randn};
use medsgm_operators::metal::{dilate, mar_mask, metal_trace, TRACE_THRESHOLD};
use medsgm_operators::phantom::anatomical::{anatomical_ct, AnatomicalParams, MetalImplant};
use medsgm_operators::phantom::shepp_logan;
use medsgm_operators::radon::{Radon, RadonGeometry};
use medsgm_operators::sparse_view::SparseViewCt;
use medsgm_operators::{
    adjoint_test, operator_norm, CtProjector, LinearOperator, Scalar, Subsampled, Transform,
};
use ndarray::{Array2, ArrayD, Zip};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Largest scale-free dot-test error accepted (f32 rounding gives about 1e-7).
const DOT_TOL: f64 = 1e-5;
/// Largest relative deviation from linearity and from an exact inverse accepted.
const LINEAR_TOL: f64 = 1e-5;

/// What a checked operator claims beyond being linear with an exact adjoint.
type Claim<A> = Box<dyn Fn(&A, &mut ChaCha8Rng) -> Result<(), String>>;

/// One row of the table: a named operator and its extra claims.
struct Entry<A: LinearOperator> {
    name: String,
    op: A,
    claims: Vec<Claim<A>>,
}

/// A table row with its operator type erased, so that one list holds them all.
trait Row {
    fn name(&self) -> &str;
    /// Runs every check with randomness from `seed`; returns the failures.
    fn check(&self, seed: u64) -> Vec<String>;
}

/// Whether `v` < `bound` (false for NaN).
fn below(v: f64, bound: f64) -> bool {
    v < bound
}

/// αa + βb.
fn combine<S: Scalar>(alpha: f32, a: &ArrayD<S>, beta: f32, b: &ArrayD<S>) -> ArrayD<S> {
    Zip::from(a)
        .and(b)
        .map_collect(|&u, &v| u.scale(alpha) + v.scale(beta))
}

/// ‖a − b‖ / ‖b‖ (0 when both vanish).
fn rel_diff<S: Scalar>(a: &ArrayD<S>, b: &ArrayD<S>) -> f64 {
    let d = norm(&combine(1.0, a, -1.0, b).view());
    let r = norm(&b.view());
    if d == 0.0 {
        0.0
    } else {
        d / r
    }
}

impl<A: LinearOperator> Row for Entry<A> {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, seed: u64) -> Vec<String> {
        let op = &self.op;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut failures = Vec::new();
        let mut fail = |what: String| failures.push(format!("{}: {what}", self.name));
        let (dom, ran) = (op.domain_shape(), op.range_shape());
        let x: ArrayD<A::In> = randn(&dom, &mut rng);
        let z: ArrayD<A::In> = randn(&dom, &mut rng);
        let y: ArrayD<A::Out> = randn(&ran, &mut rng);
        let (ax, az, aty) = (
            op.forward(&x.view()),
            op.forward(&z.view()),
            op.adjoint(&y.view()),
        );
        // shapes
        if ax.shape() != ran.as_slice() {
            fail(format!("A x has shape {:?}, range is {ran:?}", ax.shape()));
        }
        if aty.shape() != dom.as_slice() {
            fail(format!(
                "Aᴴ y has shape {:?}, domain is {dom:?}",
                aty.shape()
            ));
        }
        // adjointness
        let dot = adjoint_test(op, seed);
        if !below(dot.rel_error, DOT_TOL) {
            fail(format!("dot test {dot:?}"));
        }
        // linearity: A(αx + βz) = αAx + βAz
        let (alpha, beta) = (0.7f32, -1.3f32);
        let lhs = op.forward(&combine(alpha, &x, beta, &z).view());
        let rhs = combine(alpha, &ax, beta, &az);
        let e = rel_diff(&lhs, &rhs);
        if !below(e, LINEAR_TOL) {
            fail(format!("linearity error {e:e}"));
        }
        // the norm estimate bounds ‖A x‖/‖x‖ and is attained by its own iterate
        let a_norm = operator_norm(op, 100, 1e-6, seed);
        let ratio = norm(&ax.view()) / norm(&x.view());
        if !(a_norm.is_finite() && a_norm > 0.0 && below(ratio, a_norm * (1.0 + 1e-3))) {
            fail(format!("‖A‖ estimate {a_norm} below ‖Ax‖/‖x‖ = {ratio}"));
        }
        let aha = op.adjoint(&ax.view());
        let rayleigh = inner(&x.view(), &aha.view()) / inner(&x.view(), &x.view());
        if !below(rayleigh, a_norm * a_norm * (1.0 + 1e-3)) {
            fail(format!(
                "xᴴAᴴAx/‖x‖² = {rayleigh} above ‖A‖² = {}",
                a_norm * a_norm
            ));
        }
        for claim in &self.claims {
            if let Err(e) = claim(op, &mut rng) {
                fail(e);
            }
        }
        failures
    }
}

/// A boxed row without extra claims.
fn plain<A: LinearOperator + 'static>(name: impl Into<String>, op: A) -> Box<dyn Row> {
    Box::new(Entry {
        name: name.into(),
        op,
        claims: vec![],
    })
}

/// A boxed row with claims.
fn claiming<A: LinearOperator + 'static>(
    name: impl Into<String>,
    op: A,
    claims: Vec<Claim<A>>,
) -> Box<dyn Row> {
    Box::new(Entry {
        name: name.into(),
        op,
        claims,
    })
}

/// T⁻¹ T x = x for random x (the unitary FFT; Re F⁻¹ F is a left inverse on real images).
fn exact_inverse<T: Transform + 'static>() -> Claim<T> {
    Box::new(|t: &T, rng: &mut ChaCha8Rng| {
        let x: ArrayD<T::In> = randn(&t.domain_shape(), rng);
        let e = rel_diff(&t.inverse(&t.forward(&x.view()).view()), &x);
        (e < LINEAR_TOL)
            .then_some(())
            .ok_or(format!("T⁻¹T x differs from x by {e:e}"))
    })
}

/// T⁻¹ = FBP is an approximate inverse on the modified Shepp–Logan phantom: the image error
/// ‖T⁻¹T x − x‖/‖x‖ and the consistency error ‖T T⁻¹ y − y‖/‖y‖ (y = T x) stay below the
/// bounds.
fn fbp_inverse<T: Transform<In = f32, Out = f32> + 'static>(
    image_bound: f64,
    data_bound: f64,
) -> Claim<T> {
    Box::new(move |t: &T, _: &mut ChaCha8Rng| {
        let n = t.domain_shape()[0];
        let x = shepp_logan(n).into_dyn();
        let y = t.forward(&x.view());
        let x_inv = t.inverse(&y.view());
        let (e_image, e_data) = (
            rel_diff(&x_inv, &x),
            rel_diff(&t.forward(&x_inv.view()), &y),
        );
        (e_image < image_bound && e_data < data_bound)
            .then_some(())
            .ok_or(format!(
                "FBP image error {e_image:.4} (bound {image_bound}), consistency error \
                 {e_data:.4} (bound {data_bound})"
            ))
    })
}

/// How well the data-consistency step at λ = 1 fits the measurements.
#[derive(Clone, Copy)]
enum Fit {
    /// A k = ŷ to [`LINEAR_TOL`] (T⁻¹ is exact).
    Exact,
    /// ‖A k − ŷ‖ ≤ ratio · ‖A x − ŷ‖ (T⁻¹ is approximate).
    Reduces(f64),
}

/// The claims of A = P(Λ)T: the range has one entry per kept mask entry; the data-consistency
/// step k(x, ŷ, λ) is the identity at λ = 0 and fits the data at λ = 1 as `fit` says (from x
/// a random perturbation of the true image); a view mask's restricted form (if `restricts`)
/// is A itself, and no other mask has one.
fn subsampled_claims<T>(fit: Fit, restricts: bool) -> Vec<Claim<Subsampled<T>>>
where
    T: Transform + 'static,
{
    vec![
        Box::new(|a: &Subsampled<T>, _: &mut ChaCha8Rng| {
            let kept = a.mask().iter().filter(|&&m| m).count();
            (a.range_shape() == vec![kept] && a.num_measurements() == kept)
                .then_some(())
                .ok_or(format!(
                    "range {:?} for {kept} kept entries",
                    a.range_shape()
                ))
        }),
        Box::new(move |a: &Subsampled<T>, rng: &mut ChaCha8Rng| {
            let dom = a.domain_shape();
            let truth: ArrayD<T::In> = randn(&dom, rng);
            let noise: ArrayD<T::In> = randn(&dom, rng);
            let x = combine(1.0, &truth, 0.3, &noise);
            let y_hat = a
                .forward(&truth.view())
                .into_dimensionality::<ndarray::Ix1>()
                .expect("A's range is 1-D");
            let k0 = a.consistency(&x.view(), &y_hat.view(), 0.0);
            if k0 != x {
                return Err("the consistency step at λ = 0 is not the identity".into());
            }
            let k1 = a.consistency(&x.view(), &y_hat.view(), 1.0);
            let y_hat = y_hat.into_dyn();
            let before = norm(&combine(1.0, &a.forward(&x.view()), -1.0, &y_hat).view());
            let after = norm(&combine(1.0, &a.forward(&k1.view()), -1.0, &y_hat).view());
            let ok = match fit {
                Fit::Exact => after <= LINEAR_TOL * norm(&y_hat.view()),
                Fit::Reduces(ratio) => after <= ratio * before,
            };
            ok.then_some(()).ok_or(format!(
                "data residual {before:.4e} -> {after:.4e} after the consistency step at λ = 1"
            ))
        }),
        Box::new(move |a: &Subsampled<T>, rng: &mut ChaCha8Rng| {
            match (a.transform().restricted(a.mask()), restricts) {
                (None, false) => Ok(()),
                (Some(_), false) => {
                    Err("a mask that is no view mask gave a restricted form".into())
                }
                (None, true) => Err("a view mask gave no restricted form".into()),
                (Some(compact), true) => {
                    let x: ArrayD<T::In> = randn(&a.domain_shape(), rng);
                    let ax = a.forward(&x.view());
                    let cx = compact.forward(&x.view());
                    let cx = cx.to_shape(ax.len()).expect("same size").into_owned();
                    let e = rel_diff(&cx.into_dyn(), &ax);
                    let y: ArrayD<T::Out> = randn(&a.range_shape(), rng);
                    let y_full = y
                        .to_shape(compact.range_shape())
                        .expect("one entry per kept view bin")
                        .into_owned();
                    let e_adj = rel_diff(&compact.adjoint(&y_full.view()), &a.adjoint(&y.view()));
                    (e < LINEAR_TOL && e_adj < LINEAR_TOL)
                        .then_some(())
                        .ok_or(format!(
                            "restricted form differs from A: forward {e:e}, adjoint {e_adj:e}"
                        ))
                }
            }
        }),
    ]
}

/// A view mask keeping every `step`-th view (from `first`) of a [views, bins] range.
fn view_mask(views: usize, bins: usize, first: usize, step: usize) -> ArrayD<bool> {
    Array2::from_shape_fn((views, bins), |(v, _)| v % step == first).into_dyn()
}

/// The MAR mask Λ (complement of the metal trace) of an anatomical slice with hip rods.
fn mar_lambda<T: LinearOperator<In = f32, Out = f32>>(op: &T, n: usize) -> ArrayD<bool> {
    let p = AnatomicalParams {
        slice_position: [0.5, 0.5],
        metal: MetalImplant::HipRods,
        ..AnatomicalParams::default()
    };
    let slice = anatomical_ct(n, 4, &p).expect("valid phantom parameters");
    let metal = dilate(&slice.metal_mask.view(), 1);
    let trace = metal_trace(op, &metal.view(), TRACE_THRESHOLD).expect("a 2-D projector");
    mar_mask(&trace.view()).into_dyn()
}

fn radon(g: RadonGeometry) -> Radon {
    Radon::new(g).expect("valid parallel geometry")
}

fn fan(g: FanGeometry) -> FanBeam {
    FanBeam::new(g).expect("valid fan geometry")
}

/// Every operator of the crate, at small sizes.
fn table() -> Vec<Box<dyn Row>> {
    let mut rows: Vec<Box<dyn Row>> = Vec::new();
    // parallel-beam Radon: varied geometries (odd sizes, explicit angles, narrow and wide
    // bins, a detector narrower than the image, degenerate sizes)
    for g in [
        RadonGeometry::equispaced(64, 30, RadonGeometry::default_n_det(64)),
        RadonGeometry::equispaced(33, 17, 47),
        RadonGeometry::from_degrees(40, &[0.0, 13.7, 45.0, 90.0, 91.0, 135.0, 179.5, 200.0], 57),
        RadonGeometry::equispaced(31, 11, 60).with_det_spacing(0.7),
        RadonGeometry::equispaced(48, 9, 30).with_det_spacing(1.6),
        RadonGeometry::equispaced(50, 7, 20),
        RadonGeometry::equispaced(1, 3, 3),
        RadonGeometry::from_degrees(2, &[10.0, 80.0], 1).with_det_spacing(0.3),
    ] {
        rows.push(plain(
            format!("Radon {}² {} views {} bins", g.size, g.n_views(), g.n_det),
            radon(g),
        ));
    }
    let full_radon = radon(RadonGeometry::equispaced(
        48,
        72,
        RadonGeometry::default_n_det(48),
    ));
    rows.push(claiming(
        "Radon 48² 72 views (FBP inverse)",
        full_radon.clone(),
        vec![fbp_inverse(0.3, 0.04)],
    ));
    // fan beam: both detectors, offsets, short and full scans, wide fans, explicit angles
    for kind in [DetectorKind::Equiangular, DetectorKind::Flat] {
        let base = FanGeometry::full_scan(64, 90, 120.0, 250.0, kind, 131).with_det_offset(0.25);
        for (what, g) in [
            ("full scan, quarter offset", base.clone()),
            ("short scan", base.clone().with_short_scan(61)),
            (
                "wide fan, fine bins, offset −1.3",
                FanGeometry::full_scan(33, 37, 25.0, 40.0, kind, 201)
                    .with_det_spacing(0.6)
                    .with_det_offset(-1.3),
            ),
            (
                "wide fan, 36 views in quarter-turn groups, offset −1.3",
                FanGeometry::full_scan(33, 36, 25.0, 40.0, kind, 201)
                    .with_det_spacing(0.6)
                    .with_det_offset(-1.3),
            ),
            (
                "full scan, 92 views in quarter-turn groups, quarter offset",
                FanGeometry::full_scan(64, 92, 120.0, 250.0, kind, 131).with_det_offset(0.25),
            ),
            (
                "wide fan, short scan",
                FanGeometry::full_scan(33, 23, 25.0, 40.0, kind, 201)
                    .with_det_spacing(0.6)
                    .with_short_scan(23),
            ),
            (
                "explicit angles",
                base.clone()
                    .with_angles(vec![0.0, 0.78, 1.0, 2.36, 3.9, -1.2]),
            ),
        ] {
            rows.push(plain(format!("FanBeam {kind:?} {what}"), fan(g)));
        }
        let n_det = FanGeometry::default_n_det(48, 96.0, kind) + 4;
        let full = FanGeometry::full_scan(48, 72, 96.0, 192.0, kind, n_det).with_det_offset(0.25);
        rows.push(claiming(
            format!("FanBeam {kind:?} 48² 72 views (FBP inverse)"),
            fan(full.clone()),
            vec![fbp_inverse(0.3, 0.04)],
        ));
        rows.push(claiming(
            format!("FanBeam {kind:?} 48² short scan (FBP + Parker inverse)"),
            fan(full.with_short_scan(48)),
            vec![fbp_inverse(0.3, 0.04)],
        ));
    }
    // the CT projector of either beam
    let fan_full = fan(FanGeometry::full_scan(
        48,
        72,
        96.0,
        192.0,
        DetectorKind::Equiangular,
        FanGeometry::default_n_det(48, 96.0, DetectorKind::Equiangular),
    ));
    for (what, ct) in [
        ("parallel", CtProjector::from(full_radon.clone())),
        ("fan", CtProjector::from(fan_full.clone())),
    ] {
        rows.push(claiming(
            format!("CtProjector {what} 48² 72 views"),
            ct,
            vec![fbp_inverse(0.3, 0.04)],
        ));
    }
    // A = P(Λ)T for CT: sparse views (parallel, fan, either through CtProjector), MAR masks
    let sparse = |views: usize, bins: usize| view_mask(views, bins, 1, 6);
    let n_det = full_radon.geometry().n_det;
    rows.push(claiming(
        "Subsampled<Radon> 12 of 72 views",
        Subsampled::new(full_radon.clone(), sparse(72, n_det)).expect("valid mask"),
        subsampled_claims(Fit::Reduces(0.8), true),
    ));
    let fan_bins = fan_full.geometry().n_det;
    rows.push(claiming(
        "Subsampled<FanBeam> 12 of 72 views",
        Subsampled::new(fan_full.clone(), sparse(72, fan_bins)).expect("valid mask"),
        subsampled_claims(Fit::Reduces(0.8), true),
    ));
    rows.push(claiming(
        "Subsampled<CtProjector> fan, 12 of 72 views",
        Subsampled::new(CtProjector::from(fan_full.clone()), sparse(72, fan_bins))
            .expect("valid mask"),
        subsampled_claims(Fit::Reduces(0.8), true),
    ));
    let measured = RadonGeometry::from_degrees(24, &[3.0, 50.5, 91.0, 140.25], 34);
    rows.push(claiming(
        "SparseViewCt 4 measured of 60 views",
        SparseViewCt::new(&measured, 60).expect("valid views").op,
        subsampled_claims(Fit::Reduces(0.9), true),
    ));
    let mar_radon = radon(RadonGeometry::equispaced(
        64,
        60,
        RadonGeometry::default_n_det(64),
    ));
    let lambda = mar_lambda(&mar_radon, 64);
    rows.push(claiming(
        "Subsampled<Radon> MAR mask",
        Subsampled::new(mar_radon, lambda).expect("valid mask"),
        subsampled_claims(Fit::Reduces(0.4), false),
    ));
    let lambda = mar_lambda(&fan_full, 48);
    rows.push(claiming(
        "Subsampled<FanBeam> MAR mask",
        Subsampled::new(fan_full, lambda).expect("valid mask"),
        subsampled_claims(Fit::Reduces(0.4), false),
    ));
    // MRI: the unitary FFT, its real-input restriction and A = P(Λ)F with every mask kind
    for (h, w) in [(32, 32), (17, 24), (20, 15), (9, 9)] {
        let fft = Fft2::new(h, w).expect("valid size");
        rows.push(claiming(
            format!("Fft2 {h}×{w}"),
            fft.clone(),
            vec![exact_inverse()],
        ));
        rows.push(claiming(
            format!("RealInput<Fft2> {h}×{w}"),
            RealInput::new(fft.clone()),
            vec![exact_inverse()],
        ));
        let equispaced = kspace_mask::equispaced(h, w, 4.0, 0.08)
            .expect("valid mask")
            .into_dyn();
        rows.push(claiming(
            format!("Subsampled<Fft2> {h}×{w} equispaced 4×"),
            Subsampled::new(fft.clone(), equispaced.clone()).expect("valid mask"),
            subsampled_claims(Fit::Exact, false),
        ));
        rows.push(claiming(
            format!("Subsampled<RealInput<Fft2>> {h}×{w} equispaced 4×"),
            Subsampled::new(RealInput::new(fft.clone()), equispaced).expect("valid mask"),
            subsampled_claims(Fit::Reduces(0.5), false),
        ));
    }
    let fft = Fft2::new(32, 24).expect("valid size");
    for (what, mask) in [
        ("random", kspace_mask::random(32, 24, 4.0, 0.08, 3)),
        (
            "variable density",
            kspace_mask::variable_density(32, 24, 8.0, 0.08, 5),
        ),
        (
            "equispaced offset 1",
            kspace_mask::equispaced_with_offset(32, 24, 4.0, 0.08, 1),
        ),
    ] {
        let mask = mask.expect("valid mask").into_dyn();
        rows.push(claiming(
            format!("Subsampled<Fft2> 32×24 {what}"),
            Subsampled::new(fft.clone(), mask.clone()).expect("valid mask"),
            subsampled_claims(Fit::Exact, false),
        ));
        rows.push(claiming(
            format!("Subsampled<RealInput<Fft2>> 32×24 {what}"),
            Subsampled::new(RealInput::new(fft.clone()), mask).expect("valid mask"),
            subsampled_claims(Fit::Reduces(0.5), false),
        ));
    }
    rows
}

#[test]
fn every_operator_passes_the_common_checks() {
    let rows = table();
    let mut names: Vec<&str> = rows.iter().map(|r| r.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), rows.len(), "table names are unique");
    let failures: Vec<String> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, row)| row.check(i as u64))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
