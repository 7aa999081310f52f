//! `medsgm train --max-memory` counts the training data as well as the networks: a budget the
//! tiny network fits but its data do not is refused with exit code 2 and a message naming the
//! data, from the files' headers, before any image is decoded.

use medsgm::io::nifti_io::{write_nifti, NiftiMeta};
use medsgm::train::TrainConfig;
use ndarray::Array3;
use std::path::Path;

mod common;
use common::{fails_with_2, run_ok, tiny_config_with};

/// The tiny training configuration with `data` as its `[data]` table, written to
/// `dir/c.toml`; returns the networks' memory estimate.
fn config_with(dir: &Path, data: &str) -> u64 {
    TrainConfig::from_toml_file(&tiny_config_with(dir, data))
        .unwrap()
        .memory_bytes()
}

/// `medsgm train` of `dir/c.toml` into `dir/run` with a budget of `networks + 1 KiB`: the
/// networks fit, the data must not.
fn refused_for_its_data(dir: &Path, networks: u64, names: &str) {
    let budget = (networks + 1024).to_string();
    let args = [
        "train",
        "--config",
        "c.toml",
        "--out-dir",
        "run",
        "--max-memory",
        &budget,
    ];
    fails_with_2(&args, dir, "the training data");
    fails_with_2(&args, dir, names);
    assert!(!dir.join("run/model.safetensors").exists());
}

#[test]
fn a_nifti_volume_over_the_budget_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let volume = Array3::from_shape_fn((32, 32, 32), |(i, j, k)| (1 + i + j + k) as f32);
    write_nifti(
        &dir.path().join("v.nii"),
        &volume.into_dyn().view(),
        &NiftiMeta::identity(),
    )
    .unwrap();
    let networks = config_with(
        dir.path(),
        "[data]\nkind = \"nifti-slices\"\npath = \"v.nii\"\nholdout = [0, 4]\n",
    );
    refused_for_its_data(dir.path(), networks, "v.nii");
    // the budget the data need lets the run start
    run_ok(
        &[
            "train",
            "--config",
            "c.toml",
            "--out-dir",
            "run",
            "--steps",
            "1",
        ],
        dir.path(),
    );
    assert!(dir.path().join("run/model.safetensors").exists());
}

#[test]
fn a_folder_image_declaring_a_huge_shape_is_refused_from_its_header() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("images")).unwrap();
    // an NPY header declaring 20000 × 20000 float32 (1.6 GB) with no data behind it
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (20000, 20000), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16 + 1).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.push(b'\n');
    std::fs::write(dir.path().join("images/big.npy"), bytes).unwrap();
    let networks = config_with(dir.path(), "[data]\nkind = \"folder\"\npath = \"images\"\n");
    refused_for_its_data(dir.path(), networks, "images");
}

#[test]
fn a_dicom_series_over_the_budget_is_refused_from_its_headers() {
    let dir = tempfile::tempdir().unwrap();
    let series = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom/series");
    let networks = config_with(
        dir.path(),
        &format!("[data]\nkind = \"dicom-series\"\npath = {:?}\n", series),
    );
    refused_for_its_data(dir.path(), networks, "fixtures/dicom/series");
}
