//! NIfTI reader against nibabel-written fixtures (data-scripts/make_nifti_fixtures.py): voxel
//! values, scl_slope/inter, big-endian storage, qform (incl. qfac = −1) and sform affines; and
//! the write → read round trip that keeps the input's geometry.

use medsgm::io::nifti_io::{read_nifti, write_nifti};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nifti")
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
        .unwrap()
}

fn check_affine(got: &[[f64; 4]; 4], want: &serde_json::Value, what: &str) {
    for r in 0..4 {
        for c in 0..4 {
            let w = want[r][c].as_f64().unwrap();
            assert!(
                (got[r][c] - w).abs() < 1e-5,
                "{what}: affine[{r}][{c}] = {} vs nibabel {w}",
                got[r][c]
            );
        }
    }
}

#[test]
fn nibabel_fixtures_read_correctly() {
    let exp = expected();
    for (name, want) in exp.as_object().unwrap() {
        let v = read_nifti(&fixtures().join(name)).unwrap();
        assert_eq!(v.data.dim(), (5, 4, 3), "{name}");
        for ((i, j, k), &x) in v.data.indexed_iter() {
            let f = (100 * i + 10 * j + k) as f32 - 50.0;
            assert!((x - f).abs() < 1e-4, "{name}[{i},{j},{k}] = {x}, want {f}");
        }
        check_affine(&v.meta.affine, &want["affine"], name);
        for (a, z) in v.meta.pixdim.iter().zip(want["zooms"].as_array().unwrap()) {
            assert!(
                (*a as f64 - z.as_f64().unwrap()).abs() < 1e-6,
                "{name} zooms"
            );
        }
    }
}

#[test]
fn write_with_reference_keeps_geometry() {
    let exp = expected();
    let dir = tempfile::tempdir().unwrap();
    // With MEDSGM_NIFTI_OUT set the outputs are kept there for nibabel
    // (data-scripts/check_nifti_output.sh).
    let out_dir =
        std::env::var_os("MEDSGM_NIFTI_OUT").map_or(dir.path().to_path_buf(), PathBuf::from);
    for name in ["qform_flipped.nii", "sform.nii", "qform_only.nii.gz"] {
        let v = read_nifti(&fixtures().join(name)).unwrap();
        let out = out_dir.join(format!("out-{name}"));
        let doubled = v.data.mapv(|x| 2.0 * x);
        write_nifti(&out, &doubled.view().into_dyn(), &v.meta).unwrap();
        let back = read_nifti(&out).unwrap();
        assert_eq!(back.data, doubled);
        check_affine(&back.meta.affine, &exp[name]["affine"], name);
        assert_eq!(back.meta.xyzt_units, v.meta.xyzt_units);
    }
}

#[test]
fn corrupt_headers_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixtures().join("sform.nii")).unwrap();
    // dim[1..3] = 65535 each: far more voxels than the file holds.
    let mut huge = bytes.clone();
    for d in 1..4 {
        huge[40 + 2 * d..42 + 2 * d].copy_from_slice(&u16::MAX.to_le_bytes());
    }
    // dim[0] = 9: invalid dimensionality.
    let mut bad_ndim = bytes.clone();
    bad_ndim[40..42].copy_from_slice(&9u16.to_le_bytes());
    for (name, data) in [
        ("huge.nii", huge),
        ("ndim.nii", bad_ndim),
        ("short.nii", bytes[..200].to_vec()),
        ("empty.nii", Vec::new()),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        let e = format!("{:#}", read_nifti(&p).unwrap_err());
        assert!(e.contains(name), "{name}: {e}");
    }
}
