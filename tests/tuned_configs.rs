//! The shipped task configs record the images their FISTA-TV weight was tuned on, and that
//! record is what `medsgm tune` writes for the same data (`eval::testset::config_frame`):
//! `recon --config` converts the weight to a measurement's units with it
//! (`reconstruct::tv_weight`).

mod common;

use medsgm::checkpoint::Normalization;
use medsgm::eval::method::TaskConfig;
use medsgm::eval::testset::config_frame;
use medsgm::reconstruct::tv_weight::ImageFrame;
use medsgm::task::Method;
use std::path::Path;

fn recorded(tuned: &str) -> Option<ImageFrame> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = TaskConfig::load(&root.join(tuned), false).unwrap();
    ImageFrame::of_record(c.record(Method::FistaTv)).unwrap()
}

fn same(a: &ImageFrame, b: &ImageFrame) -> bool {
    let spacing = match (a.pixel_spacing_mm, b.pixel_spacing_mm) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-3 * y,
        (x, y) => x == y,
    };
    a.normalization == b.normalization && spacing
}

#[test]
fn real_data_tuned_configs_record_the_frame_of_their_validation_data() {
    common::fetched("cranium_ct.nii.gz");
    common::fetched("ch2.nii.gz");
    for (tuned, data) in [
        ("configs/tuned_ct_head.toml", "configs/ct_head.toml"),
        ("configs/tuned_ct_head_whole.toml", "configs/ct_head.toml"),
        ("configs/tuned_ct_head_fan.toml", "configs/ct_head.toml"),
        (
            "configs/tuned_ct_head_chest.toml",
            "configs/ct_head_chest.toml",
        ),
        (
            "configs/tuned_ct_head_chest_fan.toml",
            "configs/ct_head_chest.toml",
        ),
        ("configs/tuned_mri_t1.toml", "configs/mri_t1.toml"),
        ("configs/tuned_mri_t1_multi.toml", "configs/mri_t1.toml"),
    ] {
        let want = config_frame(Path::new(data)).unwrap();
        let got = recorded(tuned).unwrap_or_else(|| panic!("{tuned} records no image frame"));
        assert!(same(&got, &want), "{tuned}: {got:?}, {data} gives {want:?}");
    }
    // the CT frame: the head window at the head's 0.957 mm
    let head = config_frame(Path::new("configs/ct_head.toml")).unwrap();
    assert_eq!(
        head.normalization,
        Normalization::CtHuWindow {
            lo: -1000.0,
            hi: 1000.0
        }
    );
    assert!((head.pixel_spacing_mm.unwrap() - 0.957).abs() < 1e-3);
}

#[test]
fn phantom_tuned_configs_record_phantom_units_and_no_spacing() {
    for tuned in ["configs/tuned_ct.toml", "configs/tuned_ct_128.toml"] {
        let frame = recorded(tuned).unwrap();
        assert_eq!(frame.normalization, Normalization::Identity, "{tuned}");
        assert_eq!(frame.pixel_spacing_mm, None, "{tuned}");
    }
}
