//! The shipped MRI prior (models/mri_mni_64, trained by `medsgm train` on MNI152 slices) on
//! its held-out block: a short score-based 4× reconstruction beats zero-filling by a wide
//! margin (issue 4: "a short end-to-end ... MRI recon with the shipped models beats
//! zero-filled"). The CT prior's counterpart is the embedded demo test in tests/cli_score.rs.

use std::path::Path;
use std::process::Command;

#[test]
fn shipped_mri_prior_beats_zero_filling_at_4x_on_held_out_slices() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let nii = root.join("data/real/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz");
    assert!(
        nii.is_file(),
        "{} is missing: run data-scripts/fetch_test_data.sh",
        nii.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let o = Command::new(env!("CARGO_BIN_EXE_medsgm"))
        .current_dir(root)
        .args([
            "bench",
            "recon",
            "--task",
            "mri",
            "--data",
            "configs/mri_mni_64.toml",
            "--model",
            "models/mri_mni_64/model.safetensors",
            "--methods",
            "zero-filled,pc-projection",
            "--accel",
            "4",
            "--n",
            "2",
            "--steps",
            "30",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let rows = summary.as_array().unwrap();
    let psnr = |m: &str| {
        rows.iter()
            .find(|r| r["method"] == m)
            .unwrap_or_else(|| panic!("{m} missing in {summary}"))["psnr_mean"]
            .as_f64()
            .unwrap()
    };
    let (zf, score) = (psnr("zero-filled"), psnr("pc-projection"));
    assert!(
        score > zf + 6.0,
        "pc-projection {score} dB vs zero-filled {zf} dB"
    );
}
