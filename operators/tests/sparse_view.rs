//! Sparse-view CT as A = P(Λ)R over a merged dense view set: the measured views are kept
//! exactly, A agrees with the Radon transform over the measured views, and A is a linear
//! operator with an exact adjoint.

use medsgm_operators::phantom::shepp_logan;
use medsgm_operators::radon::{Radon, RadonGeometry};
use medsgm_operators::sparse_view::SparseViewCt;
use medsgm_operators::LinearOperator;
use ndarray::Array2;

#[test]
fn measured_views_are_kept_exactly_inside_the_dense_grid() {
    // 23 does not divide 180: the measured views are not a subset of the 1° grid.
    let measured = RadonGeometry::equispaced(32, 23, 46);
    let ct = SparseViewCt::new(&measured, 180).unwrap();
    let g = ct.op.transform().geometry();
    for (i, &row) in ct.rows.iter().enumerate() {
        assert_eq!(g.angles[row], measured.angles[i], "view {i}");
    }
    assert_eq!(ct.op.num_measurements(), 23 * 46);
    // Sorted angles, no two closer than half a grid step: each measured view replaced the
    // grid angle(s) next to it rather than duplicating them.
    let half_step = std::f32::consts::PI / 360.0;
    for w in g.angles.windows(2) {
        assert!(w[1] - w[0] >= half_step * 0.999, "{:?}", w);
    }
    // Measured views at multiples of 180/23 degrees coincide with a grid angle only at 0°.
    assert_eq!(g.n_views(), 180 - 23 + 23);
}

#[test]
fn operator_matches_the_radon_transform_of_the_measured_views() {
    let measured = RadonGeometry::equispaced(32, 23, 46);
    let ct = SparseViewCt::new(&measured, 180).unwrap();
    let img = shepp_logan(32);
    let sino = Radon::new(measured)
        .unwrap()
        .forward(&img.view().into_dyn());
    let sino = sino.into_dimensionality::<ndarray::Ix2>().unwrap();
    let y = ct.measurement(&sino.view()).unwrap();
    let ax = ct.op.forward(&img.view().into_dyn());
    let err = y
        .iter()
        .zip(ax.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(err < 1e-4, "max |y − A x| = {err}");
}

#[test]
fn wrong_sinogram_shape_and_empty_view_set_are_errors() {
    let measured = RadonGeometry::equispaced(16, 5, 23);
    let ct = SparseViewCt::new(&measured, 180).unwrap();
    let err = ct.measurement(&Array2::zeros((6, 23)).view()).unwrap_err();
    assert!(err.to_string().contains("measured sinogram"), "{err}");
    let empty = RadonGeometry::from_degrees(16, &[], 23);
    assert!(SparseViewCt::new(&empty, 180).is_err());
}

/// `Transform::restricted`: the view mask's compact operator (Radon over the measured views)
/// is A itself — forward equals P(Λ)R, adjoint equals Rᴴ P⁻¹(Λ) — while a mask that cuts rows
/// (a metal trace) has no compact form.
#[test]
fn restricted_radon_is_the_decomposed_operator() {
    use medsgm_operators::{Subsampled, Transform};
    use ndarray::{ArrayD, IxDyn};
    let measured = RadonGeometry::equispaced(24, 9, 34);
    let ct = SparseViewCt::new(&measured, 60).unwrap();
    let compact = ct.op.transform().restricted(ct.op.mask()).unwrap();
    assert_eq!(compact.geometry().n_views(), 9);
    let img = shepp_logan(24).into_dyn();
    let full = ct.op.forward(&img.view());
    let short = compact.forward(&img.view());
    assert_eq!(short.len(), full.len());
    for (a, b) in full.iter().zip(short.iter()) {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
    }
    let back_full = ct.op.adjoint(&full.view());
    let back_short = compact.adjoint(&short.view().into_shape_with_order(IxDyn(&[9, 34])).unwrap());
    for (a, b) in back_full.iter().zip(back_short.iter()) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
    }
    let radon = Radon::new(RadonGeometry::equispaced(24, 12, 34)).unwrap();
    let trace = ArrayD::from_shape_fn(IxDyn(&[12, 34]), |i| i[1] != 17);
    assert!(radon.restricted(&trace).is_none());
    let op = Subsampled::new(radon, trace).unwrap();
    assert!(op.transform().restricted(op.mask()).is_none());
}
