//! Batch reconstruction (`medsgm recon … --input <folder> --output <folder>`): summary and exit
//! codes with corrupt inputs, sharding, resume, DICOM series and NIfTI volumes in and out.

use dicom::dictionary_std::tags;
use medsgm::io::dicom::{read_dicom, read_dicom_file, write_derived_series};
use medsgm::io::nifti_io::{read_nifti, write_nifti, NiftiMeta};
use ndarray::{Array3, Axis};
use serde_json::Value;
use std::path::{Path, PathBuf};

mod common;
use common::{medsgm, ok};

fn real(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/real")
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} is missing (run data-scripts/fetch_test_data.sh)",
            p.display()
        );
        None
    }
}

/// Writes `n` sparse-view CT measurements `m{i}.npy` (+ sidecar) of 32² phantoms into `dir`.
fn measurements(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let gt = dir.join(format!(".gt{i}.npy"));
        let gt = gt.to_str().unwrap();
        ok(&medsgm(
            &[
                "phantom",
                "--kind",
                "ellipses",
                "--size",
                "32",
                "--seed",
                &i.to_string(),
                "--out",
                gt,
            ],
            dir,
        ));
        ok(&medsgm(
            &[
                "simulate",
                "ct",
                "--input",
                gt,
                "--out",
                &format!("m{i}.npy"),
            ],
            dir,
        ));
        std::fs::remove_file(gt).unwrap();
    }
}

fn summary(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn statuses(s: &Value) -> Vec<(String, String)> {
    s["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["input"].as_str().unwrap().to_owned(),
                f["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn corrupt_inputs_are_reported_and_the_rest_processed() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    measurements(&input, 2);
    // A truncated measurement and a NIfTI file that is not one.
    let data = std::fs::read(input.join("m1.npy")).unwrap();
    std::fs::write(input.join("m1.npy"), &data[..data.len() / 2]).unwrap();
    std::fs::write(input.join("vol.nii.gz"), b"not a nifti file").unwrap();
    let o = medsgm(
        &[
            "recon", "ct", "--method", "fbp", "--input", "in", "--output", "out",
        ],
        tmp.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = summary(&tmp.path().join("out/summary.json"));
    let st = statuses(&s);
    assert_eq!(st.len(), 3);
    assert_eq!(st[0].1, "ok");
    assert_eq!(st[1].1, "failed");
    assert_eq!(st[2].1, "failed");
    assert!(s["files"][1]["error"].as_str().unwrap().contains("m1"));
    assert_eq!(s["files"][1]["error_code"], 2);
    assert_eq!((s["ok"].as_u64(), s["failed"].as_u64()), (Some(1), Some(2)));
    // Only the good output and the summary: no partial or temporary files.
    assert_eq!(names(&tmp.path().join("out")), ["m0.npy", "summary.json"]);
}

/// A failure that is not the input's fault (the output cannot be written: a folder is in the
/// way) is a runtime failure: the rest is processed and the run exits 1, the entry has
/// error_code 1, and no temporary file is left behind.
#[test]
fn an_unwritable_output_is_a_runtime_failure() {
    let tmp = tempfile::tempdir().unwrap();
    measurements(&tmp.path().join("in"), 2);
    std::fs::create_dir_all(tmp.path().join("out/m0.npy")).unwrap();
    let o = medsgm(
        &[
            "recon", "ct", "--method", "fbp", "--input", "in", "--output", "out",
        ],
        tmp.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = summary(&tmp.path().join("out/summary.json"));
    let st: Vec<String> = statuses(&s).into_iter().map(|(_, v)| v).collect();
    assert_eq!(st, ["failed", "ok"]);
    assert_eq!(s["files"][0]["error_code"], 1);
    assert_eq!(
        names(&tmp.path().join("out")),
        ["m0.npy", "m1.npy", "summary.json"]
    );
    assert!(tmp.path().join("out/m0.npy").is_dir());
}

#[test]
fn shards_partition_the_work_and_resume_skips_done_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    measurements(&tmp.path().join("in"), 5);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "recon", "ct", "--method", "fbp", "--input", "in", "--output", "out",
        ];
        args.extend_from_slice(extra);
        medsgm(&args, tmp.path())
    };
    ok(&run(&["--shard", "0/2"]));
    ok(&run(&["--shard", "1/2"]));
    let a = statuses(&summary(&tmp.path().join("out/summary_shard_0_of_2.json")));
    let b = statuses(&summary(&tmp.path().join("out/summary_shard_1_of_2.json")));
    assert_eq!((a.len(), b.len()), (3, 2));
    let mut all: Vec<&String> = a.iter().chain(&b).map(|(p, _)| p).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 5, "shards are disjoint and cover the 5 inputs");
    assert!(a.iter().chain(&b).all(|(_, s)| s == "ok"));
    for i in 0..5 {
        assert!(tmp.path().join(format!("out/m{i}.npy")).is_file());
    }
    // Resume: everything is done; after removing one output only that one is redone.
    std::fs::remove_file(tmp.path().join("out/m3.npy")).unwrap();
    ok(&run(&["--resume"]));
    let s = summary(&tmp.path().join("out/summary.json"));
    let st = statuses(&s);
    let done: Vec<&str> = st.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(done, ["skipped", "skipped", "skipped", "ok", "skipped"]);
    assert!(tmp.path().join("out/m3.npy").is_file());
    assert!(
        medsgm(
            &[
                "recon", "ct", "--method", "fbp", "--input", "in", "--output", "o", "--shard",
                "2/2"
            ],
            tmp.path()
        )
        .status
        .code()
            == Some(2)
    );
}

/// Mean absolute difference inside the inscribed circle of every slice (FBP is only
/// accurate there).
fn fov_mean_abs_diff(a: &Array3<f32>, b: &Array3<f32>) -> f32 {
    let (_, h, w) = a.dim();
    let (cy, cx, r) = (
        (h as f32 - 1.0) / 2.0,
        (w as f32 - 1.0) / 2.0,
        h as f32 * 0.45,
    );
    let (mut sum, mut n) = (0.0, 0usize);
    for ((k, i, j), &x) in a.indexed_iter() {
        if (i as f32 - cy).hypot(j as f32 - cx) < r {
            sum += (x - b[[k, i, j]]).abs();
            n += 1;
        }
    }
    sum / n as f32
}

#[test]
fn dicom_series_in_gives_a_derived_series_out() {
    let Some(ct) = real("CT_small.dcm") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = read_dicom_file(&ct).unwrap();
    let patient = src.header.string(tags::PATIENT_NAME).unwrap();
    // A three-slice series of this patient written by medsgm itself.
    let data = ndarray::concatenate(
        Axis(0),
        &[src.data.view(), src.data.view(), src.data.view()],
    )
    .unwrap();
    let mut vol = src.clone();
    vol.frames = vec![src.frames[0].clone(); 3];
    for (k, f) in vol.frames.iter_mut().enumerate() {
        if let Some(p) = f.position.as_mut() {
            p[2] += k as f64 * 5.0;
        }
    }
    vol.data = data.clone();
    std::fs::create_dir(tmp.path().join("in")).unwrap();
    let series_in = tmp.path().join("in/series1");
    write_derived_series(&series_in, &data.view(), Some(&vol), &Default::default()).unwrap();
    let input = read_dicom(&series_in).unwrap();
    for anonymize in [false, true] {
        let out = if anonymize { "anon" } else { "plain" };
        let mut args = vec![
            "recon", "ct", "--method", "fbp", "--views", "180", "--input", "in", "--output", out,
        ];
        if anonymize {
            args.push("--anonymize");
        }
        let o = medsgm(&args, tmp.path());
        ok(&o);
        let printed = format!(
            "{}{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(tmp.path().join(out).join("summary.json")).unwrap()
        );
        assert!(!printed.contains(&patient), "patient name printed");
        // --anonymize names outputs by pseudonym, not by the input's folder name
        let name = if anonymize { "case_0001" } else { "series1" };
        let back = read_dicom(&tmp.path().join(out).join(name)).unwrap();
        assert_eq!(back.data.dim(), input.data.dim());
        // HU in, HU out: 180-view FBP of the 128² slice is close to the input.
        let err = fov_mean_abs_diff(&back.data, &input.data);
        assert!(err < 60.0, "mean |HU error| {err}");
        let (h, s) = (&back.header, &input.header);
        assert_ne!(
            h.string(tags::SERIES_INSTANCE_UID),
            s.string(tags::SERIES_INSTANCE_UID)
        );
        assert!(h
            .string(tags::SERIES_DESCRIPTION)
            .unwrap()
            .contains("medsgm fbp"));
        let name = h.string(tags::PATIENT_NAME);
        if anonymize {
            assert_ne!(name.as_deref(), Some(patient.as_str()));
            assert!(name.unwrap_or_default().is_empty());
        } else {
            assert_eq!(name.as_deref(), Some(patient.as_str()));
        }
    }
}

/// The memory of a DICOM series is checked from its headers before any pixel data is decoded:
/// the declared pixels are rows × columns × frames summed over the files, and a batch over a
/// series that does not fit `--max-memory` is refused (exit 2) with no output.
#[test]
fn dicom_series_memory_is_checked_from_the_headers() {
    let Some(ct) = real("CT_small.dcm") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = read_dicom_file(&ct).unwrap();
    let (_, h, w) = src.data.dim();
    assert_eq!(
        medsgm::io::dicom::declared_input_pixels(&ct, None).unwrap(),
        (h * w) as u64
    );
    let data = ndarray::concatenate(Axis(0), &[src.data.view(); 4]).unwrap();
    let mut vol = src.clone();
    vol.frames = vec![src.frames[0].clone(); 4];
    for (k, f) in vol.frames.iter_mut().enumerate() {
        if let Some(p) = f.position.as_mut() {
            p[2] += k as f64 * 5.0;
        }
    }
    vol.data = data.clone();
    std::fs::create_dir(tmp.path().join("in")).unwrap();
    let series = tmp.path().join("in/s");
    write_derived_series(&series, &data.view(), Some(&vol), &Default::default()).unwrap();
    assert_eq!(
        medsgm::io::dicom::declared_input_pixels(&series, None).unwrap(),
        (4 * h * w) as u64
    );
    let o = medsgm(
        &[
            "recon",
            "ct",
            "--method",
            "fbp",
            "--input",
            "in",
            "--output",
            "out",
            "--max-memory",
            "200K",
        ],
        tmp.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let summary = std::fs::read_to_string(tmp.path().join("out/summary.json")).unwrap_or_default();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        format!("{err}{summary}").contains("needs an estimated"),
        "{err}{summary}"
    );
    assert!(!tmp.path().join("out/s").exists());
}

/// `--anonymize`: pseudonymous output names, no input names, UIDs or quoted values in the
/// summary and progress lines (also in a failed input's error), the mapping only when asked,
/// and the two series of one study still one (new) study.
#[test]
fn anonymize_hides_names_and_keeps_one_study() {
    let Some(ct) = real("CT_small.dcm") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = read_dicom_file(&ct).unwrap();
    let source_study = src.header.string(tags::STUDY_INSTANCE_UID).unwrap();
    let input = tmp.path().join("DOE^JOHN_4711");
    std::fs::create_dir(&input).unwrap();
    for series in ["SMITH_head", "SMITH_neck"] {
        write_derived_series(
            &input.join(series),
            &src.data.view(),
            Some(&src),
            &Default::default(),
        )
        .unwrap();
    }
    // a corrupt volume whose reader error names the file
    std::fs::write(input.join("SMITH_ANN.nii.gz"), b"not a volume").unwrap();
    let o = medsgm(
        &[
            "recon",
            "ct",
            "--method",
            "fbp",
            "--views",
            "90",
            "--input",
            "DOE^JOHN_4711",
            "--output",
            "out",
            "--anonymize",
            "--anonymize-map",
            "map.csv",
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "one input is invalid");
    let summary = std::fs::read_to_string(tmp.path().join("out/summary.json")).unwrap();
    let printed = format!(
        "{}{}{summary}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    for secret in ["SMITH", "DOE", "4711", source_study.as_str()] {
        assert!(!printed.contains(secret), "{secret:?} printed: {printed}");
    }
    let json: Value = serde_json::from_str(&summary).unwrap();
    let inputs: Vec<&str> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["input"].as_str().unwrap())
        .collect();
    assert_eq!(inputs, ["case_0001", "case_0002", "case_0003"]);
    assert_eq!(json["failed"], 1);
    assert!(json["files"][0]["error"]
        .as_str()
        .unwrap()
        .contains("case_0001"));
    // the mapping, only in the file asked for
    let map = std::fs::read_to_string(tmp.path().join("map.csv")).unwrap();
    assert!(
        map.contains("case_0002,") && map.contains("SMITH_head"),
        "{map}"
    );
    let studies: Vec<String> = ["case_0002", "case_0003"]
        .iter()
        .map(|n| {
            let back = read_dicom(&tmp.path().join("out").join(n)).unwrap();
            back.header.string(tags::STUDY_INSTANCE_UID).unwrap()
        })
        .collect();
    assert_eq!(studies[0], studies[1], "one source study, one new study");
    assert_ne!(studies[0], source_study);
    // without --anonymize-map no mapping is written anywhere
    let o = medsgm(
        &[
            "recon",
            "ct",
            "--method",
            "fbp",
            "--views",
            "90",
            "--input",
            "DOE^JOHN_4711/SMITH_head",
            "--output",
            "out2",
            "--anonymize",
        ],
        tmp.path(),
    );
    ok(&o);
    let names: Vec<String> = std::fs::read_dir(tmp.path().join("out2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains("SMITH") && !n.ends_with(".csv")),
        "{names:?}"
    );
}

#[test]
fn nifti_in_gives_nifti_out_with_the_same_affine() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("in")).unwrap();
    let vol = Array3::from_shape_fn((32, 32, 3), |(i, j, k)| {
        let (x, y) = (i as f32 - 15.5, j as f32 - 15.5);
        if x.hypot(y) < 10.0 {
            1.0 + 0.2 * k as f32
        } else {
            0.0
        }
    });
    let affine = [
        [0.0, -0.8, 0.0, 12.5],
        [0.9, 0.0, 0.0, -40.0],
        [0.0, 0.0, 2.5, 7.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    write_nifti(
        &tmp.path().join("in/brain.nii.gz"),
        &vol.view().into_dyn(),
        &NiftiMeta::from_affine(affine),
    )
    .unwrap();
    let reference = tmp.path().join("ref");
    std::fs::create_dir(&reference).unwrap();
    std::fs::copy(
        tmp.path().join("in/brain.nii.gz"),
        reference.join("brain.nii.gz"),
    )
    .unwrap();
    ok(&medsgm(
        &[
            "recon",
            "mri",
            "--method",
            "zero-filled",
            "--input",
            "in",
            "--output",
            "out",
            "--reference",
            "ref",
            "--acceleration",
            "2",
        ],
        tmp.path(),
    ));
    let input = read_nifti(&tmp.path().join("in/brain.nii.gz")).unwrap();
    let out = read_nifti(&tmp.path().join("out/brain.nii.gz")).unwrap();
    assert_eq!(out.data.dim(), vol.dim());
    assert_eq!(out.meta.affine, input.meta.affine);
    assert_eq!(out.meta.pixdim, input.meta.pixdim);
    assert_eq!(out.meta.xyzt_units, input.meta.xyzt_units);
    assert_ne!(out.data, vol, "the zero-filled reconstruction is not exact");
    let s = summary(&tmp.path().join("out/summary.json"));
    assert_eq!(s["files"][0]["slices"], 3);
    let p = s["files"][0]["metrics"]["psnr"].as_f64().unwrap();
    assert!(p > 10.0 && p < 100.0, "psnr {p}");
}

/// CT volumes can be simulated fan beam (`--geometry fan`, as `simulate ct`): FBP of 360
/// fan-beam views of each slice of a NIfTI volume is close to the slice (PSNR in the summary),
/// as close as the parallel-beam default; fan options are refused without `--geometry fan` and
/// fan beam is refused for MRI.
#[test]
fn ct_volumes_are_simulated_fan_beam_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("in")).unwrap();
    let vol = Array3::from_shape_fn((48, 48, 2), |(i, j, k)| {
        let (x, y) = (i as f32 - 23.5, j as f32 - 23.5);
        let body = if x.hypot(y) < 18.0 { 0.5 } else { 0.0 };
        let insert = if (x - 5.0).hypot(y + 3.0 * k as f32) < 5.0 {
            0.4
        } else {
            0.0
        };
        body + insert
    });
    let affine = [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 2.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    write_nifti(
        &tmp.path().join("in/v.nii.gz"),
        &vol.view().into_dyn(),
        &NiftiMeta::from_affine(affine),
    )
    .unwrap();
    let reference = tmp.path().join("ref");
    std::fs::create_dir(&reference).unwrap();
    std::fs::copy(tmp.path().join("in/v.nii.gz"), reference.join("v.nii.gz")).unwrap();
    let psnr = |extra: &[&str], out: &str| {
        let mut args = vec![
            "recon",
            "ct",
            "--method",
            "fbp",
            "--views",
            "360",
            "--input",
            "in",
            "--output",
            out,
            "--reference",
            "ref",
        ];
        args.extend_from_slice(extra);
        ok(&medsgm(&args, tmp.path()));
        let s = summary(&tmp.path().join(out).join("summary.json"));
        s["files"][0]["metrics"]["psnr"].as_f64().unwrap()
    };
    let parallel = psnr(&[], "par");
    let fan = psnr(&["--geometry", "fan"], "fan");
    let flat = psnr(
        &["--geometry", "fan", "--detector", "flat", "--short-scan"],
        "flat",
    );
    assert!(
        fan > 25.0 && fan > parallel - 3.0,
        "fan {fan} vs parallel {parallel}"
    );
    assert!(flat > 22.0, "flat short scan {flat}");
    assert_ne!(fan, parallel, "--geometry fan had no effect");
    for (args, msg) in [
        (
            vec![
                "recon",
                "ct",
                "--method",
                "fbp",
                "--input",
                "in",
                "--output",
                "x",
                "--short-scan",
            ],
            "--short-scan needs --geometry fan",
        ),
        (
            vec![
                "recon",
                "mri",
                "--method",
                "zero-filled",
                "--input",
                "in",
                "--output",
                "y",
                "--geometry",
                "fan",
            ],
            "--geometry fan applies to ct volumes",
        ),
        (
            vec![
                "recon",
                "ct",
                "--method",
                "fbp",
                "--input",
                "m.npy",
                "--out",
                "z.npy",
                "--geometry",
                "fan",
            ],
            "--geometry fan sets the simulated measurement of volumes",
        ),
    ] {
        let o = medsgm(&args, tmp.path());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(msg), "{err}");
    }
}

/// Writes `vol` as a NIfTI volume with 1 mm voxels and the identity affine.
fn write_unit_nifti(path: &Path, vol: &Array3<f32>) {
    let identity = [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    write_nifti(
        path,
        &vol.view().into_dyn(),
        &NiftiMeta::from_affine(identity),
    )
    .unwrap();
}

/// Three different 64² slices of a NIfTI volume through the score sampler as one batch
/// (`--batch 3`, the shipped MRI prior): every slice lands in its own place (closest to its
/// own reference slice), and the batched reconstruction beats zero-filling.
#[test]
fn volume_slices_are_sampled_as_one_batch() {
    let model =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/mri_mni_64/model.safetensors");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("in")).unwrap();
    let vol = Array3::from_shape_fn((64, 64, 3), |(i, j, k)| {
        let (x, y) = (i as f32 - 31.5, j as f32 - 31.5);
        let head = (x / (24.0 - 3.0 * k as f32)).powi(2) + (y / 20.0).powi(2) < 1.0;
        let lesion = (x - 8.0 * k as f32 + 8.0).hypot(y + 6.0 - 5.0 * k as f32) < 5.0;
        f32::from(head) * (0.5 + 0.15 * k as f32) + f32::from(head && lesion) * 0.4
    });
    write_unit_nifti(&tmp.path().join("in/head.nii.gz"), &vol);
    std::fs::create_dir(tmp.path().join("ref")).unwrap();
    std::fs::copy(
        tmp.path().join("in/head.nii.gz"),
        tmp.path().join("ref/head.nii.gz"),
    )
    .unwrap();
    let run = |method: &str, out: &str| {
        let mut args = vec![
            "recon",
            "mri",
            "--method",
            method,
            "--input",
            "in",
            "--output",
            out,
            "--reference",
            "ref",
            "--acceleration",
            "4",
            "--batch",
            "3",
        ];
        // score-method flags are errors with a classical method
        if method != "zero-filled" {
            args.extend([
                "--steps",
                "30",
                "--model",
                model.to_str().unwrap(),
                "--units",
                "model",
            ]);
        }
        ok(&medsgm(&args, tmp.path()));
        let s = summary(&tmp.path().join(out).join("summary.json"));
        s["files"][0]["metrics"]["psnr"].as_f64().unwrap()
    };
    let zero_filled = run("zero-filled", "zf");
    let score = run("pc-projection", "pc");
    // Classical methods and one posterior sample report no posterior spread.
    for out in ["zf", "pc"] {
        let s = summary(&tmp.path().join(out).join("summary.json"));
        assert!(s["files"][0]["posterior_sd"].is_null(), "{out}: {s}");
    }
    // K = 2 samples: one spread figure per slice, positive and small against the [0, 1] range.
    ok(&medsgm(
        &[
            "recon",
            "mri",
            "--method",
            "pc-projection",
            "--input",
            "in",
            "--output",
            "k2",
            "--acceleration",
            "4",
            "--batch",
            "3",
            "--steps",
            "30",
            "--samples",
            "2",
            "--model",
            model.to_str().unwrap(),
            "--units",
            "model",
        ],
        tmp.path(),
    ));
    let s = summary(&tmp.path().join("k2/summary.json"));
    let sd: Vec<f64> = s["files"][0]["posterior_sd"]
        .as_array()
        .unwrap_or_else(|| panic!("no posterior_sd: {s}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(sd.len(), 3, "{s}");
    assert!(sd.iter().all(|&v| v > 0.0 && v < 0.3), "{sd:?}");
    assert!(
        score > zero_filled + 1.0,
        "batched PC + projection {score:.2} dB vs zero-filled {zero_filled:.2} dB"
    );
    let out = read_nifti(&tmp.path().join("pc/head.nii.gz")).unwrap().data;
    assert_eq!(out.dim(), vol.dim());
    for k in 0..3 {
        let err = |r: usize| {
            (&out.index_axis(Axis(2), k) - &vol.index_axis(Axis(2), r))
                .mapv(|v| v * v)
                .sum()
        };
        let nearest = (0..3).min_by(|&a, &b| err(a).total_cmp(&err(b))).unwrap();
        assert_eq!(
            nearest, k,
            "output slice {k} is closest to reference slice {nearest}"
        );
    }
}

/// The seeding rule of batched volumes (`medsgm_recon::batch_seed`): two identical slices in
/// two batches of one (`--batch 1`) get their own sampler draws, so their reconstructions
/// differ, and a rerun with the same seed and batch size reproduces both exactly.
#[test]
fn each_batch_of_a_volume_draws_its_own_noise() {
    let model =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/mri_mni_64/model.safetensors");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("in")).unwrap();
    let vol = Array3::from_shape_fn((64, 64, 2), |(i, j, _)| {
        let (x, y) = (i as f32 - 31.5, j as f32 - 31.5);
        f32::from((x / 24.0).powi(2) + (y / 20.0).powi(2) < 1.0) * 0.6
    });
    write_unit_nifti(&tmp.path().join("in/twins.nii.gz"), &vol);
    let run = |out: &str| {
        ok(&medsgm(
            &[
                "recon",
                "mri",
                "--method",
                "dds",
                "--input",
                "in",
                "--output",
                out,
                "--acceleration",
                "4",
                "--batch",
                "1",
                "--steps",
                "5",
                "--model",
                model.to_str().unwrap(),
                "--units",
                "model",
            ],
            tmp.path(),
        ));
        read_nifti(&tmp.path().join(out).join("twins.nii.gz"))
            .unwrap()
            .data
    };
    let (a, b) = (run("a"), run("b"));
    assert_eq!(a, b, "the same seed and batch size reproduce the volume");
    let diff = (&a.index_axis(Axis(2), 0) - &a.index_axis(Axis(2), 1))
        .mapv(f32::abs)
        .sum();
    assert!(diff > 0.0, "two batches drew the same noise");
}

/// Spacing handling: a prior that records its pixel spacing (2 mm here) reconstructs a slice
/// of another spacing on its own grid and resamples back, so the same anatomy at 1 mm (2×
/// finer, 128²) and at 2 mm (64²) gives the same reconstruction up to the resampling: the 1 mm
/// result is the 2 mm result interpolated to 128².
#[test]
fn a_finer_input_is_reconstructed_at_the_prior_spacing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut ck = medsgm::checkpoint::Checkpoint::load(
        &root.join("models/mri_mni_64/model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    ck.meta.pixel_spacing_mm = Some(2.0);
    ck.save(&d.join("prior_2mm.safetensors")).unwrap();

    let fine = Array3::from_shape_fn((128, 128, 1), |(i, j, _)| {
        let (x, y) = (i as f32 - 63.5, j as f32 - 63.5);
        let head = (x / 50.0).powi(2) + (y / 40.0).powi(2) < 1.0;
        let lesion = (x - 10.0).hypot(y + 8.0) < 9.0;
        f32::from(head) * 0.6 + f32::from(head && lesion) * 0.3
    });
    let coarse_slice =
        medsgm_operators::resample::resample(&fine.index_axis(Axis(2), 0).to_owned(), (64, 64));
    let coarse = coarse_slice.clone().insert_axis(Axis(2));
    let affine = |mm: f64| {
        [
            [mm, 0.0, 0.0, 0.0],
            [0.0, mm, 0.0, 0.0],
            [0.0, 0.0, mm, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    };
    for (name, vol, mm) in [("fine", &fine, 1.0), ("coarse", &coarse, 2.0)] {
        std::fs::create_dir_all(d.join(name)).unwrap();
        write_nifti(
            &d.join(name).join("head.nii.gz"),
            &vol.view().into_dyn(),
            &NiftiMeta::from_affine(affine(mm)),
        )
        .unwrap();
        let o = medsgm(
            &[
                "recon",
                "mri",
                "--method",
                "pc-projection",
                "--input",
                name,
                "--output",
                &format!("{name}_out"),
                "--acceleration",
                "4",
                "--steps",
                "30",
                "--model",
                "prior_2mm.safetensors",
                "--units",
                "model",
            ],
            d,
        );
        ok(&o);
        if name == "fine" {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("prior's 2.000 mm grid (64x64)"), "{err}");
        }
    }
    let fine_out = read_nifti(&d.join("fine_out/head.nii.gz")).unwrap().data;
    let coarse_out = read_nifti(&d.join("coarse_out/head.nii.gz")).unwrap().data;
    assert_eq!(fine_out.dim(), (128, 128, 1));
    let coarse_at_1mm = medsgm_operators::resample::resample(
        &coarse_out.index_axis(Axis(2), 0).to_owned(),
        (128, 128),
    );
    let diff = (&coarse_at_1mm - &fine_out.index_axis(Axis(2), 0))
        .mapv(f32::abs)
        .fold(0.0f32, |m, &v| m.max(v));
    assert!(diff < 1e-4, "max difference {diff}");
    // And the reconstruction is a reconstruction: close to the anatomy.
    let mse = (&coarse_out.index_axis(Axis(2), 0) - &coarse_slice)
        .mapv(|v| v * v)
        .mean()
        .unwrap();
    assert!(mse < 0.01, "mse {mse}");
}

/// Issue 17 items 8–10: `--resume` redoes an input whose output exists but whose record is
/// not ok (here: written, then failed against a reference of the wrong shape); an empty input
/// folder is invalid input with nothing written; batch-only flags with `--out` are errors.
#[test]
fn resume_redoes_failed_inputs_and_empty_batches_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    measurements(&d.join("in"), 2);
    std::fs::create_dir_all(d.join("ref")).unwrap();
    let reference = |seed: &str, size: &str| {
        let out = format!("ref/m{seed}.npy");
        ok(&medsgm(
            &[
                "phantom", "--kind", "ellipses", "--size", size, "--seed", seed, "--out", &out,
            ],
            d,
        ));
    };
    reference("0", "32");
    reference("1", "16"); // the wrong shape
    let run = |extra: &[&str]| {
        let mut args = vec![
            "recon",
            "ct",
            "--method",
            "fbp",
            "--input",
            "in",
            "--output",
            "out",
            "--reference",
            "ref",
        ];
        args.extend_from_slice(extra);
        medsgm(&args, d)
    };
    let first = run(&[]);
    assert_eq!(
        first.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let st: Vec<String> = statuses(&summary(&d.join("out/summary.json")))
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(st, ["ok", "failed"]);
    // fix the reference: --resume skips the ok input and redoes the failed one
    reference("1", "32");
    ok(&run(&["--resume"]));
    let st: Vec<String> = statuses(&summary(&d.join("out/summary.json")))
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(st, ["skipped", "ok"]);

    std::fs::create_dir(d.join("empty")).unwrap();
    let o = medsgm(
        &[
            "recon", "ct", "--method", "fbp", "--input", "empty", "--output", "eout",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no input"));
    assert!(!d.join("eout").exists());
    for flag in ["--resume", "--anonymize"] {
        let o = medsgm(
            &[
                "recon",
                "ct",
                "--method",
                "fbp",
                "--input",
                "in/m0.npy",
                "--out",
                "r.npy",
                flag,
            ],
            d,
        );
        assert_eq!(o.status.code(), Some(2), "{flag}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("batch mode only"));
        assert!(!d.join("r.npy").exists());
    }
}

/// Issue 17 items 7 and 20: a second run into an output folder that a run holds is refused
/// (nothing written), and temporary series folders a killed run left are removed.
#[cfg(unix)]
#[test]
fn output_folders_are_locked_and_leftovers_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    measurements(&d.join("in"), 1);
    std::fs::create_dir_all(d.join("out/.medsgm-tmp-series-x1y2")).unwrap();
    std::fs::write(
        d.join("out/.medsgm-tmp-series-x1y2/slice_0001.dcm"),
        b"partial",
    )
    .unwrap();
    let run = || {
        medsgm(
            &[
                "recon", "ct", "--method", "fbp", "--input", "in", "--output", "out",
            ],
            d,
        )
    };
    {
        let held = std::fs::File::open(d.join("out")).unwrap();
        held.lock().unwrap();
        let o = run();
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("another medsgm run"));
        assert!(!d.join("out/m0.npy").exists() && !d.join("out/summary.json").exists());
    }
    ok(&run());
    assert_eq!(names(&d.join("out")), ["m0.npy", "summary.json"]);
}

/// Issue 17 item 17: a DICOM folder holding several series is one input per series (outputs
/// `<folder>_s<k>`, reported as "(series k of n)" without printing UIDs), not an error asking
/// for a SeriesInstanceUID no flag can give.
#[test]
fn a_folder_of_several_series_gives_one_input_per_series() {
    let (Some(ct), Some(mr)) = (real("CT_small.dcm"), real("MR_small.dcm")) else {
        panic!("data/real is missing: run data-scripts/fetch_test_data.sh");
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir(d.join("mixed")).unwrap();
    std::fs::copy(ct, d.join("mixed/a.dcm")).unwrap();
    std::fs::copy(mr, d.join("mixed/b.dcm")).unwrap();
    ok(&medsgm(
        &[
            "recon", "ct", "--method", "fbp", "--input", "mixed", "--output", "out",
        ],
        d,
    ));
    let s = summary(&d.join("out/summary.json"));
    let inputs: Vec<String> = statuses(&s).into_iter().map(|(p, _)| p).collect();
    assert_eq!(inputs.len(), 2, "{s}");
    assert!(inputs[0].ends_with("(series 1 of 2)") && inputs[1].ends_with("(series 2 of 2)"));
    assert_eq!(
        names(&d.join("out")),
        ["mixed_s1", "mixed_s2", "summary.json"]
    );
}
