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
