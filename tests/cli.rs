//! The `medsgm` binary: exit codes and error messages for bad input.

use std::process::Output;

mod common;
use common::medsgm;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_documents_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let o = medsgm(&["--help"], dir.path());
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Exit codes") && text.contains("2  usage error"),
        "{text}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["frobnicate"],
        vec!["phantom", "--kind", "banana", "--out", "x.png"],
        vec![
            "phantom",
            "--kind",
            "shepp-logan",
            "--size",
            "3",
            "--out",
            "x.png",
        ],
        vec!["phantom", "--kind", "shepp-logan", "--out", "x.tiff"],
        vec![
            "phantom",
            "--kind",
            "shepp-logan",
            "--out",
            "no/such/dir/x.png",
        ],
        vec![
            "phantom",
            "--kind",
            "shepp-logan",
            "--units",
            "hu",
            "--out",
            "x.png",
        ],
        vec!["simulate", "ct", "--input", "a.png", "--out", "m.txt"],
        vec![
            "simulate", "ct", "--input", "a.png", "--out", "m.npy", "--views", "10", "--angles",
            "1,2",
        ],
        vec![
            "metrics",
            "--input",
            "a.png",
            "--reference",
            "b.png",
            "--data-range",
            "-1",
        ],
    ] {
        let o = medsgm(&args, dir.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty());
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no output on error"
    );
}

#[test]
fn bad_input_files_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("garbage.npy"),
        b"\x93NUMPY\x01\x00\xff\x00{'descr'",
    )
    .unwrap();
    std::fs::write(dir.path().join("fake.png"), b"not a png").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "metrics",
                "-i",
                "missing.png",
                "-r",
                "missing.png",
                "--data-range",
                "1",
            ],
            "missing.png",
        ),
        (
            vec![
                "metrics",
                "-i",
                "garbage.npy",
                "-r",
                "garbage.npy",
                "--data-range",
                "1",
            ],
            "garbage.npy",
        ),
        (
            vec![
                "metrics",
                "-i",
                "fake.png",
                "-r",
                "fake.png",
                "--data-range",
                "1",
            ],
            "fake.png",
        ),
        (
            vec!["simulate", "ct", "-i", "garbage.npy", "-o", "m.npy"],
            "garbage.npy",
        ),
        (
            vec![
                "recon",
                "ct",
                "-i",
                "garbage.npy",
                "--method",
                "fbp",
                "-o",
                "r.png",
            ],
            "garbage.json",
        ),
    ];
    for (args, name) in cases {
        let o = medsgm(&args, dir.path());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(name),
            "{args:?}: message does not name {name}: {err}"
        );
    }
}

#[test]
fn nan_inputs_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = ndarray::Array2::<f32>::zeros((8, 8));
    a[[3, 4]] = f32::NAN;
    medsgm::io::npy::write_npy(&dir.path().join("nan.npy"), &a.into_dyn().view()).unwrap();
    let o = medsgm(
        &[
            "metrics",
            "-i",
            "nan.npy",
            "-r",
            "nan.npy",
            "--data-range",
            "1",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("nan.npy") && err.contains("NaN"), "{err}");
}

/// Issue 17, items 1–6: inputs are never written over (same file under another spelling, the
/// sidecar, a batch folder nested in its input, two inputs claiming one output name) and no
/// geometry from a flag or a sidecar can request an unbounded allocation. Each case exits 2,
/// names the problem, and leaves the inputs byte-identical and no output behind.
#[test]
fn inputs_are_never_written_over_and_geometry_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| medsgm(args, d);
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    ok(&[
        "phantom",
        "--kind",
        "shepp-logan",
        "--size",
        "32",
        "--out",
        "p.npy",
    ]);
    std::fs::create_dir(d.join("in")).unwrap();
    ok(&[
        "simulate", "ct", "-i", "p.npy", "--views", "8", "-o", "in/a.npy",
    ]);
    std::fs::copy(d.join("in/a.npy"), d.join("in/a_std.npy")).unwrap();
    std::fs::copy(d.join("in/a.json"), d.join("in/a_std.json")).unwrap();
    let sidecar = std::fs::read_to_string(d.join("in/a.json")).unwrap();
    let edited = |key: &str, value: &str| {
        let mut j: serde_json::Value = serde_json::from_str(&sidecar).unwrap();
        j["geometry"][key] = serde_json::from_str(value).unwrap();
        j.to_string()
    };
    std::fs::create_dir(d.join("hostile")).unwrap();
    for (name, key, value) in [
        ("huge", "size", "1000000"),
        ("fine", "det_spacing", "1e-30"),
        ("wide", "n_det", "100000000000"),
    ] {
        std::fs::copy(d.join("in/a.npy"), d.join(format!("hostile/{name}.npy"))).unwrap();
        std::fs::write(d.join(format!("hostile/{name}.json")), edited(key, value)).unwrap();
    }
    let snapshot = |p: &str| std::fs::read(d.join(p)).unwrap();
    let before: Vec<Vec<u8>> = ["p.npy", "in/a.npy", "in/a.json"].map(snapshot).to_vec();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "recon", "ct", "-i", "in/a.npy", "--method", "fbp", "--out", "in/a.npy",
            ],
            "is the input",
        ),
        (
            vec![
                "recon",
                "ct",
                "-i",
                "in/a.npy",
                "--method",
                "fbp",
                "--out",
                "in/../in/a.npy",
            ],
            "is the input",
        ),
        (
            vec!["simulate", "ct", "-i", "p.npy", "-o", "./p.npy"],
            "is the input",
        ),
        (
            vec!["simulate", "ct", "-i", "in/a.npy", "-o", "in/a.npy"],
            "is the input",
        ),
        (
            vec![
                "recon", "ct", "-i", "in", "--method", "fbp", "--output", "in",
            ],
            "input folder",
        ),
        (
            vec![
                "recon", "ct", "-i", "in", "--method", "fbp", "--output", "in/out",
            ],
            "inside the input folder",
        ),
        (
            vec![
                "recon", "ct", "-i", "in", "--method", "fbp", "--output", "out",
            ],
            "would both write",
        ),
        (
            vec![
                "recon",
                "ct",
                "-i",
                "hostile/huge.npy",
                "--method",
                "fbp",
                "--out",
                "h.npy",
            ],
            "4096",
        ),
        (
            vec![
                "recon",
                "ct",
                "-i",
                "hostile/fine.npy",
                "--method",
                "fista-tv",
                "--out",
                "h.npy",
            ],
            "det_spacing",
        ),
        (
            vec![
                "recon",
                "ct",
                "-i",
                "hostile/wide.npy",
                "--method",
                "fbp",
                "--out",
                "h.npy",
            ],
            "n_det",
        ),
        (
            vec![
                "simulate",
                "ct",
                "-i",
                "p.npy",
                "--det-spacing",
                "1e-30",
                "-o",
                "h.npy",
            ],
            "det_spacing",
        ),
        (
            vec![
                "simulate",
                "ct",
                "-i",
                "p.npy",
                "--n-det",
                "100000000000",
                "-o",
                "h.npy",
            ],
            "n_det",
        ),
    ];
    for (args, expected) in cases {
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let after: Vec<Vec<u8>> = ["p.npy", "in/a.npy", "in/a.json"].map(snapshot).to_vec();
    assert!(before == after, "an input changed");
    for leftover in ["h.npy", "h.json", "out", "in/out", "in/summary.json"] {
        assert!(!d.join(leftover).exists(), "{leftover} was written");
    }
}

/// Issue 17 item 12: `train` never replaces a run by accident and never trains nothing.
/// `steps = 0` is invalid; an --out-dir holding a run needs --resume (or --force to start
/// over); --resume may extend the steps and change the data (recorded in config.toml) but not
/// the architecture.
#[test]
fn train_protects_existing_runs_and_checks_resumed_configs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::fs::read_to_string(root.join("configs/test_tiny.toml")).unwrap();
    let write = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();
    write("tiny.toml", &base.replace("steps = 20", "steps = 4"));
    write("zero.toml", &base.replace("steps = 20", "steps = 0"));
    write(
        "more.toml",
        &base
            .replace("steps = 20", "steps = 6")
            .replace("n_ellipses = 3", "n_ellipses = 4"),
    );
    write(
        "wider.toml",
        &base
            .replace("steps = 20", "steps = 6")
            .replace("nf = 8", "nf = 16"),
    );
    let train = |args: &[&str]| {
        let mut v = vec!["train", "--out-dir", "run"];
        v.extend_from_slice(args);
        medsgm(&v, d)
    };
    let expect_2 = |o: Output, what: &str| {
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(what), "{what}: {err}");
    };
    expect_2(train(&["--config", "zero.toml"]), "steps must be in");
    assert!(!d.join("run").exists());
    let first = train(&["--config", "tiny.toml"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let model = std::fs::read(d.join("run/model.safetensors")).unwrap();
    expect_2(
        train(&["--config", "tiny.toml"]),
        "already holds a training run",
    );
    assert_eq!(
        std::fs::read(d.join("run/model.safetensors")).unwrap(),
        model
    );
    expect_2(train(&["--config", "wider.toml", "--resume"]), "model");
    let more = train(&["--config", "more.toml", "--resume"]);
    assert!(more.status.success(), "{}", stderr(&more));
    let recorded = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    assert!(
        recorded.contains("steps = 6") && recorded.contains("n_ellipses = 4"),
        "{recorded}"
    );
    let forced = train(&["--config", "tiny.toml", "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
}

/// Issue 17 item 18: a --model that is not a score-model checkpoint says what it is.
#[test]
fn wrong_kinds_of_model_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    shepp_logan_16(d, true);
    for (model, expected) in [
        ("models/lsgm_ct_64/lsgm.safetensors", "LSGM"),
        ("models/ct_phantom_64", "is a folder"),
        ("models/ct_head/train_state.safetensors", "training state"),
    ] {
        let path = root.join(model);
        assert!(path.exists(), "{model} is missing");
        let o = medsgm(
            &[
                "recon",
                "ct",
                "-i",
                "s.npy",
                "--method",
                "dds",
                "--model",
                path.to_str().unwrap(),
                "--out",
                "r.npy",
            ],
            d,
        );
        assert_eq!(o.status.code(), Some(2), "{model}");
        assert!(stderr(&o).contains(expected), "{model}: {}", stderr(&o));
        assert!(!d.join("r.npy").exists());
    }
}

/// Issue 17 items 14–15: NIfTI read errors are sentences (a truncated gzip, a negative
/// dimension shown as negative), and a DICOM or missing file given to single-file recon says
/// what it is instead of asking for a sidecar.
#[test]
fn unclear_errors_are_sentences() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = medsgm(
        &[
            "phantom",
            "--kind",
            "shepp-logan",
            "--size",
            "16",
            "--out",
            "p.nii.gz",
        ],
        d,
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    let gz = std::fs::read(d.join("p.nii.gz")).unwrap();
    std::fs::write(d.join("cut.nii.gz"), &gz[..gz.len() / 2]).unwrap();
    let ok = medsgm(
        &[
            "phantom",
            "--kind",
            "shepp-logan",
            "--size",
            "16",
            "--out",
            "p.nii",
        ],
        d,
    );
    assert!(ok.status.success());
    let mut raw = std::fs::read(d.join("p.nii")).unwrap();
    raw[42..44].copy_from_slice(&(-5i16).to_le_bytes()); // dim[1]
    std::fs::write(d.join("neg.nii"), &raw).unwrap();
    std::fs::copy(d.join("p.nii"), d.join("scan.dcm")).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "recon",
                "mri",
                "-i",
                "cut.nii.gz",
                "--method",
                "zero-filled",
                "--output",
                "o1",
            ],
            "truncated",
        ),
        (
            vec![
                "recon",
                "mri",
                "-i",
                "neg.nii",
                "--method",
                "zero-filled",
                "--output",
                "o2",
            ],
            "dim[1] is -5",
        ),
        (
            vec![
                "recon",
                "mri",
                "-i",
                "scan.dcm",
                "--method",
                "zero-filled",
                "--out",
                "r.npy",
            ],
            "batch mode",
        ),
        (
            vec![
                "recon",
                "mri",
                "-i",
                "none.npy",
                "--method",
                "zero-filled",
                "--out",
                "r.npy",
            ],
            "does not exist",
        ),
    ];
    shepp_logan_16(d, false);
    let mut cases = cases;
    // issue 17 item 13: --slice on a 2-D image is an error, not ignored
    cases.push((
        vec![
            "simulate", "ct", "-i", "p.npy", "--slice", "2,3", "-o", "s.npy",
        ],
        "applies to volumes only",
    ));
    for (args, expected) in cases {
        let o = medsgm(&args, d);
        let text = stderr(&o) + &String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.contains(expected) && !text.contains("Io("),
            "{args:?}: {text}"
        );
    }
}

/// Issue 17 item 19: a method that diverges (FISTA-TV on a sinogram scaled to 1e37) is a
/// runtime failure naming the method and the input, and writes nothing.
#[test]
fn diverging_methods_name_the_input_and_write_nothing() {
    use medsgm::io::npy::{read_npy, write_npy, NpyArray};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shepp_logan_16(d, true);
    let NpyArray::F32(sino) = read_npy(&d.join("s.npy")).unwrap() else {
        panic!("float sinogram expected");
    };
    write_npy(&d.join("s.npy"), &sino.mapv(|v| v * 1e37).view()).unwrap();
    let o = medsgm(
        &[
            "recon", "ct", "-i", "s.npy", "--method", "fista-tv", "--out", "r.npy",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("fista-tv diverged on s.npy"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("r.npy").exists());
}

/// Writes the 16² Shepp–Logan phantom `p.npy` into `d` and, with `sinogram`, its 8-view CT
/// measurement `s.npy` (+ sidecar).
fn shepp_logan_16(d: &std::path::Path, sinogram: bool) {
    let o = medsgm(
        &[
            "phantom",
            "--kind",
            "shepp-logan",
            "--size",
            "16",
            "--out",
            "p.npy",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    if sinogram {
        let o = medsgm(
            &[
                "simulate", "ct", "-i", "p.npy", "--views", "8", "-o", "s.npy",
            ],
            d,
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
}
