//! `[data] kind = "nifti-volumes"`: several patients' volumes at different pixel spacings as one
//! patch prior's training data — every volume's slices resampled to the set's spacing, each
//! volume's test and validation slabs kept out of training and returned by evaluation, and
//! inconsistent sets refused when the configuration is read, before any image is.

use medsgm::eval::testset::{config_slices, EvalSplit};
use medsgm::io::nifti_io::{write_nifti, NiftiMeta};
use medsgm::train::data::build_source;
use medsgm::train::volume::{set_slices, Split};
use medsgm::train::{DataConfig, TrainConfig};
use ndarray::Array3;
use std::path::Path;

mod common;
use common::tiny_config_with;

/// A `side × side × slices` volume in HU at `mm` per pixel in-plane whose slice k holds the
/// value 100·k inside a centred square (air outside), so every slice is non-empty and tells
/// which slice it came from.
fn write_volume(path: &Path, side: usize, slices: usize, mm: f64) {
    let vol = Array3::from_shape_fn((side, side, slices), |(i, j, k)| {
        let inside = (side / 4..3 * side / 4).contains(&i) && (side / 4..3 * side / 4).contains(&j);
        if inside {
            100.0 * k as f32
        } else {
            -1000.0
        }
    });
    let affine = [
        [mm, 0.0, 0.0, 0.0],
        [0.0, mm, 0.0, 0.0],
        [0.0, 0.0, 2.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    write_nifti(
        path,
        &vol.into_dyn().view(),
        &NiftiMeta::from_affine(affine),
    )
    .unwrap();
}

/// One `[[data.volumes]]` table.
fn volume_table(path: &Path, holdout: [usize; 2], validation: [usize; 2], hu_hi: f32) -> String {
    format!(
        "[[data.volumes]]\npath = \"{}\"\naxis = 2\nholdout = [{}, {}]\nvalidation = [{}, {}]\n\
         guard = 1\nhu_window = [-1000.0, {hu_hi}]\nmin_fill = 0.05\nflip = true\n\
         patches = {{ rotate_deg = 5.0, scale = 0.0, intensity = 0.0, min_fill = 0.0 }}\n\n",
        path.display(),
        holdout[0],
        holdout[1],
        validation[0],
        validation[1]
    )
}

/// Two volumes: 40² at 0.5 mm (12 slices) and 20² at 1 mm (10 slices), in a set at 1 mm.
fn two_volume_config(dir: &Path, hu_hi_second: f32) -> std::path::PathBuf {
    let (a, b) = (dir.join("a.nii"), dir.join("b.nii"));
    write_volume(&a, 40, 12, 0.5);
    write_volume(&b, 20, 10, 1.0);
    let data = format!(
        "[data]\nkind = \"nifti-volumes\"\nspacing_mm = 1.0\n\n{}{}",
        volume_table(&a, [8, 10], [3, 5], 1000.0),
        volume_table(&b, [6, 8], [1, 3], hu_hi_second)
    );
    tiny_config_with(dir, &data)
}

fn set_of(config: &Path) -> medsgm::train::volume::VolumeSet {
    match TrainConfig::from_toml_file(config).unwrap().data {
        DataConfig::NiftiVolumes(set) => set,
        other => panic!("not a volume set: {other:?}"),
    }
}

#[test]
fn slices_of_every_volume_come_at_the_sets_spacing_and_slabs_stay_out_of_training() {
    let dir = tempfile::tempdir().unwrap();
    let set = set_of(&two_volume_config(dir.path(), 1000.0));
    let train = set_slices(&set, Split::Train).unwrap();
    // a: 12 slices minus test [8, 10) and validation [3, 5), each with a 1-slice guard
    // (2..=5 and 7..=10 removed) = 0, 1, 6, 11; b: 10 minus 0..=3 and 5..=8 = 4, 9.
    let names: Vec<&str> = train.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "a.nii slice0",
            "a.nii slice1",
            "a.nii slice6",
            "a.nii slice11",
            "b.nii slice4",
            "b.nii slice9"
        ]
    );
    // Both at 1 mm: the 0.5 mm volume's 40² slices become 20², like the 1 mm volume's.
    assert!(train.iter().all(|(_, s)| s.dim() == (20, 20)), "shapes");
    // HU window [-1000, 1000]: slice 6 holds 600 HU inside, (600 + 1000) / 2000 = 0.8.
    let centre = train[2].1[[10, 10]];
    assert!((centre - 0.8).abs() < 1e-5, "{centre}");
    let test = set_slices(&set, Split::HeldOut).unwrap();
    let names: Vec<&str> = test.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "a.nii slice8",
            "a.nii slice9",
            "b.nii slice6",
            "b.nii slice7"
        ]
    );
}

#[test]
fn the_source_draws_patches_at_the_sets_spacing_and_evaluation_reads_every_slab() {
    let dir = tempfile::tempdir().unwrap();
    let config = two_volume_config(dir.path(), 1000.0);
    let set = set_of(&config);
    let source = build_source(&DataConfig::NiftiVolumes(set), 16, 3).unwrap();
    assert_eq!(source.pixel_spacing_mm(), Some(1.0));
    let patch = source.image(0, 0).unwrap();
    assert_eq!(patch.dim(), (16, 16));
    assert!(patch.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(source.describe().contains("2 volumes (a.nii, b.nii"));
    let val = config_slices(&config, 10, EvalSplit::Validation).unwrap();
    let names: Vec<&str> = val.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "a.nii slice3",
            "a.nii slice4",
            "b.nii slice1",
            "b.nii slice2"
        ]
    );
    // At most n, evenly spaced over all volumes' slabs.
    assert_eq!(config_slices(&config, 2, EvalSplit::Test).unwrap().len(), 2);
}

#[test]
fn inconsistent_sets_are_refused_when_the_configuration_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = two_volume_config(dir.path(), 500.0);
    let msg = format!("{:#}", TrainConfig::from_toml_file(&config).unwrap_err());
    assert!(msg.contains("hu_window"), "{msg}");
    for (data, want) in [
        ("[data]\nkind = \"nifti-volumes\"\nspacing_mm = 1.0\nvolumes = []\n", "0 volumes"),
        (
            "[data]\nkind = \"nifti-volumes\"\nspacing_mm = 0.0\n\n[[data.volumes]]\npath = \"x.nii\"\nholdout = [0, 1]\npatches = { rotate_deg = 0.0, scale = 0.0, intensity = 0.0, min_fill = 0.0 }\n",
            "spacing_mm",
        ),
        (
            "[data]\nkind = \"nifti-volumes\"\nspacing_mm = 1.0\n\n[[data.volumes]]\npath = \"x.nii\"\nholdout = [0, 1]\n",
            "no [patches] table",
        ),
    ] {
        let config = tiny_config_with(dir.path(), data);
        let msg = format!("{:#}", TrainConfig::from_toml_file(&config).unwrap_err());
        assert!(msg.contains(want), "{want}: {msg}");
    }
}

#[test]
fn the_head_and_chest_config_parses_as_three_patients_at_the_head_priors_spacing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = TrainConfig::from_toml_file(&root.join("configs/ct_head_chest.toml")).unwrap();
    let head = TrainConfig::from_toml_file(&root.join("configs/ct_head.toml")).unwrap();
    let set = match config.data {
        DataConfig::NiftiVolumes(set) => set,
        other => panic!("not a volume set: {other:?}"),
    };
    assert_eq!(set.volumes.len(), 3);
    assert_eq!(set.spacing_mm, 0.957);
    // The head volume keeps ct_head's slabs, so the head test slab stays unseen.
    let DataConfig::NiftiSlices(h) = head.data else {
        panic!("ct_head is nifti-slices")
    };
    assert_eq!(
        (set.volumes[0].holdout, set.volumes[0].validation),
        (h.holdout, h.validation)
    );
    assert!(set.volumes.iter().all(|v| v.validation.is_some()));
}

/// `hu_ceiling`: HU between the window's top and the ceiling stay as values above 1 in the
/// training slices and in the patches drawn from them; higher HU are clipped at the ceiling;
/// a ceiling below the window's top is refused. (Slice k holds 100·k HU; window
/// [−1000, 500] → [0, 1], ceiling 1000 HU → 2000 / 1500.)
#[test]
fn values_above_the_window_are_kept_up_to_the_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.nii"), dir.path().join("b.nii"));
    write_volume(&a, 20, 14, 1.0);
    write_volume(&b, 20, 14, 1.0);
    // Both volumes with window [−1000, 500] and one ceiling.
    let config_with = |ceiling: f32| {
        let table = |path: &Path| {
            volume_table(path, [2, 3], [4, 5], 500.0).replace(
                "flip = true\n",
                &format!("flip = true\nhu_ceiling = {ceiling:?}\n"),
            )
        };
        tiny_config_with(
            dir.path(),
            &format!(
                "[data]\nkind = \"nifti-volumes\"\nspacing_mm = 1.0\n\n{}{}",
                table(&a),
                table(&b)
            ),
        )
    };
    let config = config_with(1000.0);
    let set = set_of(&config);
    let train = set_slices(&set, Split::Train).unwrap();
    let value = |name: &str| {
        train
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name}"))
            .1[[10, 10]]
    };
    // 0 HU → 2/3 (inside the window), 800 HU → 1.2 (above it), 1300 HU → the ceiling.
    assert!((value("a.nii slice0") - 1000.0 / 1500.0).abs() < 1e-5);
    assert!((value("a.nii slice8") - 1800.0 / 1500.0).abs() < 1e-5);
    assert!((value("a.nii slice13") - 2000.0 / 1500.0).abs() < 1e-5);
    let source = build_source(&DataConfig::NiftiVolumes(set), 16, 3).unwrap();
    let most = (0..20)
        .map(|i| source.image(0, i).unwrap().fold(0f32, |m, &v| m.max(v)))
        .fold(0f32, f32::max);
    assert!(most > 1.01 && most <= 2000.0 / 1500.0 + 1e-5, "{most}");
    let low = config_with(400.0);
    let err = build_source(&TrainConfig::from_toml_file(&low).unwrap().data, 16, 3)
        .err()
        .expect("a ceiling below the window's top is refused");
    assert!(format!("{err:#}").contains("hu_ceiling"), "{err:#}");
}
