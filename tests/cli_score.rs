//! End to end through the `medsgm` binary: `sample` and the score-based `recon` methods with
//! a tiny model trained in the test (`medsgm train`, seconds), and the bad-input contract (exit
//! code 2, a message naming the problem, no output file).

use medsgm::io::npy::{read_npy, NpyArray};
use medsgm_operators::{Fft2, LinearOperator, RealInput};
use ndarray::{ArrayD, Ix2};
use num_complex::Complex32;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;
use common::{fails_with_2, medsgm, run_ok as ok};

/// Trains the tiny configuration (16², random ellipses, identity normalisation), or a 32²
/// anatomical-CT variant (HU window [−1000, 1000]), into `dir/name/model.safetensors`.
fn tiny_model(dir: &Path, name: &str, anatomical: bool) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = std::fs::read_to_string(root.join("configs/test_tiny.toml")).unwrap();
    if anatomical {
        let at = config.find("[data]").unwrap();
        config.truncate(at);
        config = config.replace("image_size = 16", "image_size = 32");
        config.push_str("[data]\nkind = \"phantom-anatomical\"\n");
    }
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, config).unwrap();
    let out = dir.join(name);
    ok(
        &[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
        ],
        dir,
    );
    out.join("model.safetensors")
}

/// The two tiny models, trained once per test run: (16² ellipses, 32² anatomical CT).
fn models() -> &'static (String, String) {
    static MODELS: OnceLock<(String, String)> = OnceLock::new();
    MODELS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_score_models");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (ellipses, ct) = std::thread::scope(|s| {
            let e = s.spawn(|| tiny_model(&dir, "ellipses", false));
            let c = s.spawn(|| tiny_model(&dir, "ct", true));
            (e.join().unwrap(), c.join().unwrap())
        });
        (
            ellipses.to_str().unwrap().to_owned(),
            ct.to_str().unwrap().to_owned(),
        )
    })
}

/// An ellipse phantom of `size`² drawn with `seed` into `gt` and its 8-view CT measurement
/// into `ct`, both in `d`.
fn ellipse_ct(d: &Path, size: &str, seed: &str, gt: &str, ct: &str) {
    ok(
        &[
            "phantom", "--kind", "ellipses", "--size", size, "--seed", seed, "--out", gt,
        ],
        d,
    );
    ok(
        &["simulate", "ct", "-i", gt, "--views", "8", "--out", ct],
        d,
    );
}

fn read_f32(path: &Path) -> ArrayD<f32> {
    match read_npy(path).unwrap() {
        NpyArray::F32(a) => a,
        other => panic!("{}: {:?}", path.display(), other.dtype()),
    }
}

/// Any matrix size runs (the network is fully convolutional; sides that are no multiple of 8
/// are padded for the network): the 16² prior on a 32² CT and on a non-square 36 × 20 MRI
/// slice gives a finite, k-space-consistent image of the input's shape and warns that the
/// anatomy is at another scale than in training.
#[test]
fn score_methods_run_at_any_matrix_size_and_warn_about_the_scale() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = models().0.as_str();
    ellipse_ct(d, "32", "3", "gt.npy", "ct.npy");
    let args = [
        "recon",
        "ct",
        "-i",
        "ct.npy",
        "--method",
        "pc-projection",
        "--model",
        model,
        "--steps",
        "5",
        "--out",
        "ct_rec.npy",
    ];
    let o = medsgm(&args, d);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("another scale"), "{err}");
    let x = read_f32(&d.join("ct_rec.npy"));
    assert_eq!(x.shape(), &[32, 32]);
    assert!(x.iter().all(|v| v.is_finite()));

    // A non-square MRI slice whose sides are not multiples of 8.
    let (h, w) = (36usize, 20usize);
    let img = ndarray::Array2::from_shape_fn((h, w), |(r, c)| {
        if (8..28).contains(&r) && (5..15).contains(&c) {
            0.7f32
        } else {
            0.0
        }
    });
    medsgm::io::npy::write_npy(&d.join("mr.npy"), &img.view().into_dyn()).unwrap();
    ok(
        &[
            "simulate",
            "mri",
            "-i",
            "mr.npy",
            "--acceleration",
            "2",
            "--out",
            "k.npy",
        ],
        d,
    );
    ok(
        &[
            "recon",
            "mri",
            "-i",
            "k.npy",
            "--method",
            "pc-projection",
            "--model",
            model,
            "--steps",
            "5",
            "--units",
            "model",
            "--out",
            "mr_rec.npy",
        ],
        d,
    );
    let x = read_f32(&d.join("mr_rec.npy"))
        .into_dimensionality::<Ix2>()
        .unwrap();
    assert_eq!(x.dim(), (h, w));
    // Noiseless measurement + hard projection: the measured k-space lines are kept exactly.
    let fft = RealInput::new(Fft2::new(h, w).unwrap());
    let k_rec = fft
        .forward(&x.view().into_dyn())
        .into_dimensionality::<Ix2>()
        .unwrap();
    let k_true = fft
        .forward(&img.view().into_dyn())
        .into_dimensionality::<Ix2>()
        .unwrap();
    let centre = w / 2;
    for r in 0..h {
        let diff: Complex32 = k_rec[[r, centre]] - k_true[[r, centre]];
        assert!(diff.norm() < 1e-3, "row {r}: {diff}");
    }
}

/// `medsgm calibrate` stores an out-of-distribution threshold in a new checkpoint (never over
/// its input), and a batch reconstruction with the calibrated prior reports each slice's
/// denoising residual and whether it was flagged.
#[test]
fn calibrated_priors_report_typicality() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ct_model = models().1.as_str();
    fails_with_2(
        &[
            "calibrate",
            "--model",
            ct_model,
            "--out",
            ct_model,
            "--n",
            "2",
        ],
        d,
        "inputs are never overwritten",
    );
    let text = ok(
        &[
            "calibrate",
            "--model",
            ct_model,
            "--out",
            "cal.safetensors",
            "--n",
            "3",
            "--check-phantoms",
            "2",
        ],
        d,
    );
    assert!(
        text.contains("threshold") && text.contains(" of 2 ("),
        "{text}"
    );
    let ck =
        medsgm::checkpoint::Checkpoint::load(&d.join("cal.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    let cal = ck.meta.typicality.expect("calibration stored");
    assert_eq!(cal.n, 3);
    assert!(
        cal.threshold > cal.max && cal.max >= cal.mean && cal.mean > 0.0,
        "{cal:?}"
    );

    // A batch reconstruction with the calibrated prior (32² anatomical phantom in HU).
    std::fs::create_dir(d.join("in")).unwrap();
    ok(
        &[
            "phantom",
            "--kind",
            "anatomical",
            "--size",
            "32",
            "--seed",
            "5",
            "--out",
            "gt.npy",
        ],
        d,
    );
    ok(
        &[
            "simulate", "ct", "-i", "gt.npy", "--views", "12", "--out", "in/m.npy",
        ],
        d,
    );
    ok(
        &[
            "recon",
            "ct",
            "--input",
            "in",
            "--output",
            "out",
            "--method",
            "pc-projection",
            "--model",
            "cal.safetensors",
            "--steps",
            "5",
            "--units",
            "hu",
        ],
        d,
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/summary.json")).unwrap())
            .unwrap();
    let file = &summary["files"][0];
    let r = file["typicality"][0]
        .as_f64()
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(r > 0.0);
    assert_eq!(
        file["ood_warning"].as_bool(),
        Some(r > cal.threshold),
        "{summary}"
    );

    // The same figures travel with DICOM and NIfTI outputs (K = 2, a fast sampler): the
    // series description and the NIfTI descrip summarise them, each DICOM slice's
    // ImageComments holds its own.
    std::fs::create_dir(d.join("vol")).unwrap();
    for name in ["vol/gt.dcm", "vol/gt.nii.gz"] {
        ok(
            &[
                "phantom",
                "--kind",
                "anatomical",
                "--size",
                "32",
                "--seed",
                "5",
                "--out",
                name,
            ],
            d,
        );
    }
    ok(
        &[
            "recon",
            "ct",
            "--input",
            "vol",
            "--output",
            "vout",
            "--method",
            "dds",
            "--model",
            "cal.safetensors",
            "--steps",
            "6",
            "--samples",
            "2",
            "--views",
            "12",
            "--units",
            "hu",
        ],
        d,
    );
    let dicom_dir = d.join("vout/gt");
    let slice = std::fs::read_dir(&dicom_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "dcm"))
        .unwrap_or_else(|| panic!("no DICOM slice in {}", dicom_dir.display()));
    let obj = dicom::object::open_file(&slice).unwrap();
    let text = |tag| obj.element(tag).unwrap().to_str().unwrap().to_string();
    let comments = text(dicom::dictionary_std::tags::IMAGE_COMMENTS);
    assert!(
        comments.contains("posterior SD") && comments.contains("typicality residual"),
        "{comments}"
    );
    let series = text(dicom::dictionary_std::tags::SERIES_DESCRIPTION);
    assert!(
        series.contains("SD ") && series.contains("OOD "),
        "{series}"
    );
    let nifti = medsgm::io::nifti_io::read_nifti(&d.join("vout/gt_2.nii.gz")).unwrap();
    let descrip = String::from_utf8_lossy(&nifti.meta.reference.unwrap().descrip).to_string();
    assert!(
        descrip.contains("dds SD ") && descrip.contains("OOD "),
        "{descrip}"
    );
}

#[test]
fn sample_writes_grid_npy_nifti_and_is_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = models().0.as_str();
    let run = |out: &str, seed: &str, extra: &[&str]| {
        let mut args = vec![
            "sample", "--model", model, "--n", "3", "--batch", "2", "--steps", "10", "--seed",
            seed, "--out", out,
        ];
        args.extend_from_slice(extra);
        ok(&args, d)
    };
    let text = run("a", "5", &["--nifti"]);
    // PC with N = 10, M = 1: N(M + 1) + 1 = 21 NFE per batch.
    assert!(text.contains("NFE 21, 21 per batch"), "{text}");
    for f in [
        "samples.png",
        "samples.npy",
        "samples.nii.gz",
        "samples.json",
    ] {
        assert!(d.join("a").join(f).is_file(), "{f} missing");
    }
    let a = read_f32(&d.join("a/samples.npy"));
    assert_eq!(a.shape(), &[3, 16, 16]);
    assert!(a.iter().all(|v| v.is_finite()));
    let grid = image::open(d.join("a/samples.png")).unwrap();
    // 2 columns of 16 px with 2 px gaps: 2·18 + 2 = 38 wide, 2 rows.
    assert_eq!((grid.width(), grid.height()), (38, 38));
    let nifti = medsgm::io::nifti_io::read_nifti(&d.join("a/samples.nii.gz")).unwrap();
    assert_eq!(nifti.data.shape(), &[16, 16, 3]);
    assert_eq!(nifti.data[[3, 4, 2]], a[[2, 3, 4]]);

    run("b", "5", &[]);
    run("c", "6", &[]);
    let (b, c) = (
        read_f32(&d.join("b/samples.npy")),
        read_f32(&d.join("c/samples.npy")),
    );
    assert_eq!(a, b, "same seed, different samples");
    assert_ne!(a, c, "different seeds, same samples");

    // Probability-flow ODE with Heun: 2 NFE per step plus the denoising step.
    let text = ok(
        &[
            "sample",
            "--model",
            model,
            "--n",
            "2",
            "--sampler",
            "ode",
            "--ode-solver",
            "heun",
            "--steps",
            "4",
            "--out",
            "ode",
        ],
        d,
    );
    assert!(text.contains("NFE 9 per batch"), "{text}");
    let o = read_f32(&d.join("ode/samples.npy"));
    assert!(o.iter().all(|v| v.is_finite()));
}

/// Relative residual ‖P(Λ) F x − y‖ / ‖y‖ of a real image against zero-filled k-space `k`
/// (Λ = the non-zero columns).
fn kspace_residual(x: &ArrayD<f32>, k: &ArrayD<Complex32>) -> f32 {
    let (h, w) = (x.shape()[0], x.shape()[1]);
    let fx = RealInput::new(Fft2::new(h, w).unwrap()).forward(&x.view());
    let (mut num, mut den) = (0f32, 0f32);
    for j in 0..w {
        if (0..h).any(|i| k[[i, j]].norm() > 0.0) {
            for i in 0..h {
                num += (fx[[i, j]] - k[[i, j]]).norm_sqr();
                den += k[[i, j]].norm_sqr();
            }
        }
    }
    (num / den).sqrt()
}

#[test]
fn recon_ct_and_mri_with_a_score_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = models().0.as_str();
    ellipse_ct(d, "16", "3", "gt.npy", "ct.npy");
    let text = ok(
        &[
            "recon",
            "ct",
            "-i",
            "ct.npy",
            "--method",
            "pc-projection",
            "--model",
            model,
            "--steps",
            "20",
            "--samples",
            "2",
            "--seed",
            "1",
            "--out",
            "rec.npy",
        ],
        d,
    );
    assert!(text.contains("NFE"), "{text}");
    let rec = read_f32(&d.join("rec.npy"));
    let std = read_f32(&d.join("rec_std.npy"));
    assert_eq!(rec.shape(), &[16, 16]);
    assert!(std.iter().all(|&s| s.is_finite() && s >= 0.0));
    assert!(
        std.iter().any(|&s| s > 0.0),
        "two samples cannot agree everywhere"
    );

    ok(
        &[
            "simulate",
            "mri",
            "-i",
            "gt.npy",
            "--acceleration",
            "2",
            "--out",
            "mri.npy",
        ],
        d,
    );
    ok(
        &[
            "recon",
            "mri",
            "-i",
            "mri.npy",
            "--method",
            "pc-projection",
            "--model",
            model,
            "--steps",
            "10",
            "--t-start",
            "0.5",
            "--out",
            "mri_rec.nii.gz",
        ],
        d,
    );
    assert!(
        !d.join("mri_rec_std.nii.gz").exists(),
        "K = 1 writes no std map"
    );
    // With the exact inverse FFT the final hard projection makes the image consistent with
    // the measured k-space (a zero image has residual 1), whatever the prior (here warm-started
    // from the zero-filled image at t0 = 0.5).
    let rec = medsgm::io::nifti_io::read_nifti(&d.join("mri_rec.nii.gz"))
        .unwrap()
        .data
        .index_axis_move(ndarray::Axis(2), 0)
        .into_dyn();
    let k = match read_npy(&d.join("mri.npy")).unwrap() {
        NpyArray::C64(k) => k,
        other => panic!("k-space dtype {:?}", other.dtype()),
    };
    let r = kspace_residual(&rec, &k);
    assert!(r < 0.05, "relative k-space residual {r}");
}

/// The decomposed samplers through the CLI: N network evaluations (no corrector, no final
/// Tweedie step), parameters from the task config with flags winning, an MRI result
/// consistent with the measured k-space (CG data step at a large γ), bad values exit 2.
#[test]
fn recon_with_the_fast_decomposed_samplers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = models().0.as_str();
    ellipse_ct(d, "16", "5", "gt.npy", "ct.npy");
    std::fs::write(
        d.join("task.toml"),
        "[dds]\nsteps = 9\neta = 0.5\ngamma = 100.0\ncg_iterations = 3\n",
    )
    .unwrap();
    // dds takes N = 9 from its table, diffpir (no table) N from the flag
    for (method, steps, nfe) in [
        ("dds", None, 9),
        ("dds", Some("4"), 4),
        ("diffpir", Some("6"), 6),
    ] {
        let mut args = vec![
            "recon",
            "ct",
            "-i",
            "ct.npy",
            "--method",
            method,
            "--model",
            model,
            "--config",
            "task.toml",
            "--samples",
            "2",
            "--out",
            "rec.npy",
        ];
        if let Some(n) = steps {
            args.extend_from_slice(&["--steps", n]);
        }
        let text = ok(&args, d);
        assert!(
            text.contains(&format!("NFE {nfe} per sample")),
            "{method}: {text}"
        );
        let rec = read_f32(&d.join("rec.npy"));
        assert!(rec.iter().all(|v| v.is_finite()));
        assert!(read_f32(&d.join("rec_std.npy")).iter().any(|&s| s > 0.0));
    }
    ok(
        &[
            "simulate",
            "mri",
            "-i",
            "gt.npy",
            "--acceleration",
            "2",
            "--out",
            "mri.npy",
        ],
        d,
    );
    ok(
        &[
            "recon",
            "mri",
            "-i",
            "mri.npy",
            "--method",
            "diffpir",
            "--model",
            model,
            "--steps",
            "12",
            "--gamma",
            "1e9",
            "--out",
            "mri_rec.npy",
        ],
        d,
    );
    let rec = read_f32(&d.join("mri_rec.npy"));
    let k = match read_npy(&d.join("mri.npy")).unwrap() {
        NpyArray::C64(k) => k,
        other => panic!("k-space dtype {:?}", other.dtype()),
    };
    let r = kspace_residual(&rec, &k);
    assert!(r < 0.01, "relative k-space residual {r}");
    for (flag, expected) in [
        ("--eta=1.5", "--eta"),
        ("--gamma=-1", "--gamma"),
        ("--gamma=NaN", "--gamma"),
    ] {
        fails_with_2(
            &[
                "recon", "ct", "-i", "ct.npy", "--method", "dds", "--model", model, flag, "--out",
                "bad.npy",
            ],
            d,
            expected,
        );
        assert!(!d.join("bad.npy").exists());
    }
}

/// `--config` supplies the method's table of a task config; flags win over it. Observed
/// through the reported NFE (2N + 1) and the number of samples of the std map.
#[test]
fn recon_takes_parameters_from_a_task_config_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = models().0.as_str();
    ellipse_ct(d, "16", "4", "gt.npy", "ct.npy");
    std::fs::write(
        d.join("task.toml"),
        "[pc-projection]\nsteps = 7\nsamples = 2\nt_start = 0.5\nsnr = 0.2\n\n\
         [ald-projection]\nsteps = 3\n",
    )
    .unwrap();
    let recon = |extra: &[&str]| {
        let mut v = vec![
            "recon",
            "ct",
            "-i",
            "ct.npy",
            "--method",
            "pc-projection",
            "--model",
            model,
            "--config",
            "task.toml",
            "--out",
            "rec.npy",
        ];
        v.extend_from_slice(extra);
        ok(&v, d)
    };
    let from_config = recon(&[]);
    assert!(from_config.contains("NFE 15 per sample"), "{from_config}");
    assert!(
        from_config.contains("std map of 2 samples"),
        "{from_config}"
    );
    let flags_win = recon(&["--steps", "5", "--samples", "1"]);
    assert!(flags_win.contains("NFE 11 per sample"), "{flags_win}");
    assert!(!flags_win.contains("std map"), "{flags_win}");
    std::fs::write(d.join("bad.toml"), "[pc-projection]\nt_start = 2.0\n").unwrap();
    std::fs::write(d.join("typo.toml"), "[pc-projection]\nsnrr = 0.2\n").unwrap();
    for (config, expected) in [
        (
            "bad.toml",
            "bad.toml: in the [pc-projection] table: t_start must be in (0, 1]",
        ),
        ("typo.toml", "typo.toml"),
        ("missing.toml", "missing.toml"),
    ] {
        fails_with_2(
            &[
                "recon",
                "ct",
                "-i",
                "ct.npy",
                "--method",
                "pc-projection",
                "--model",
                model,
                "--config",
                config,
                "--out",
                "bad.npy",
            ],
            d,
            expected,
        );
        assert!(!d.join("bad.npy").exists());
    }
}

#[test]
fn recon_mar_pastes_the_metal_back_in_hu() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = models().1.as_str();
    ok(
        &[
            "phantom",
            "--kind",
            "anatomical",
            "--size",
            "32",
            "--units",
            "hu",
            "--metal",
            "hip-rods",
            "--out",
            "hu.npy",
        ],
        d,
    );
    ok(&["simulate", "mar", "-i", "hu.npy", "--out", "mar.npy"], d);
    ok(
        &[
            "recon",
            "mar",
            "-i",
            "mar.npy",
            "--method",
            "pc-projection",
            "--model",
            model,
            "--steps",
            "10",
            "--out",
            "mar_rec.npy",
        ],
        d,
    );
    let rec = read_f32(&d.join("mar_rec.npy"))
        .into_dimensionality::<Ix2>()
        .unwrap();
    let metal = match read_npy(&d.join("mar.metal.npy")).unwrap() {
        NpyArray::U8(m) => m.into_dimensionality::<Ix2>().unwrap(),
        _ => panic!("metal mask"),
    };
    assert!(metal.iter().any(|&m| m == 1));
    // Metal pixels carry the metal's HU (far above any tissue), the rest lies in the body's
    // range.
    for ((i, j), &m) in metal.indexed_iter() {
        let v = rec[[i, j]];
        if m == 1 {
            assert!(v > 1500.0, "metal pixel ({i},{j}) = {v} HU");
        } else {
            assert!((-1500.0..=2500.0).contains(&v), "pixel ({i},{j}) = {v} HU");
        }
    }
}

#[test]
fn bad_models_and_sizes_exit_2_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = models().0.as_str();
    let ct_model = models().1.as_str();
    std::fs::write(
        d.join("corrupt.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json",
    )
    .unwrap();
    ellipse_ct(d, "32", "0", "gt32.npy", "ct32.npy");
    let recon = |model: &str, extra: &[&str]| {
        let mut v = vec![
            "recon",
            "ct",
            "-i",
            "ct32.npy",
            "--method",
            "pc-projection",
            "--model",
            model,
            "--steps",
            "5",
            "--out",
            "out.npy",
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (recon("missing.safetensors", &[]), "does not exist"),
        (recon("corrupt.safetensors", &[]), "corrupt.safetensors"),
        (recon(ct_model, &[]), "--units"),
        (recon(model, &["--samples", "0"]), "--samples"),
        (recon(model, &["--lambda", "2"]), "--lambda"),
        (recon(model, &["--t-start", "0"]), "--t-start"),
        (recon(model, &["--t-start", "1.5"]), "--t-start"),
    ];
    for (args, expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with_2(&args, d, expected);
        assert!(!d.join("out.npy").exists(), "{args:?} wrote an output");
        assert!(!d.join("out_std.npy").exists());
    }
    let no_model = [
        "recon",
        "ct",
        "-i",
        "ct32.npy",
        "--method",
        "pc-projection",
        "--out",
        "out.npy",
    ];
    fails_with_2(&no_model, d, "--model");
    for bad in ["missing.safetensors", "corrupt.safetensors"] {
        fails_with_2(&["sample", "--model", bad, "--out", "smp"], d, bad);
        assert!(
            !d.join("smp").exists(),
            "sample created its output directory"
        );
    }
    fails_with_2(
        &[
            "sample",
            "--model",
            model,
            "--predictor",
            "banana",
            "--out",
            "smp",
        ],
        d,
        "banana",
    );
    assert!(!d.join("smp").exists());
    fails_with_2(
        &[
            "demo",
            "--model",
            "corrupt.safetensors",
            "--out-dir",
            "demo",
        ],
        d,
        "corrupt",
    );
    assert!(!d.join("demo").exists());
}

/// `medsgm demo` with the embedded CT prior (models/ct_phantom_64) on its held-out anatomical
/// phantom, 23 views, K = 2: the default DDS (50 NFE per sample) and the paper's PC +
/// projection one flag away (a short run, 50 steps: N(M + 1) + 1 = 101 NFE) both beat FBP and
/// write the posterior SD map.
#[test]
fn demo_with_the_embedded_model_beats_fbp() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (flags, out, nfe) in [
        (vec![], "dds", 50.0),
        (
            vec!["--method", "pc-projection", "--steps", "50"],
            "pc",
            101.0,
        ),
    ] {
        let mut args = vec!["demo", "--samples", "2", "--out-dir", out];
        args.extend(flags);
        ok(&args, d);
        assert!(d.join(out).join("comparison.png").is_file());
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.join(out).join("summary.json")).unwrap(),
        )
        .unwrap();
        let score = |method: &str, key: &str| {
            summary
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["method"] == method)
                .unwrap_or_else(|| panic!("{method} missing in {summary}"))[key]
                .as_f64()
                .unwrap()
        };
        let (fbp, medsgm) = (score("FBP", "psnr"), score("medsgm", "psnr"));
        assert!(
            medsgm > fbp + 1.0,
            "{out}: PSNR medsgm {medsgm} vs FBP {fbp}"
        );
        assert!(score("medsgm", "ssim") > score("FBP", "ssim"), "{out}");
        assert_eq!(score("medsgm", "nfe"), nfe, "{out}");
        assert!(d.join(out).join("medsgm_std.npy").is_file(), "{out}");
    }
}

/// A measurement simulated at 1.914 mm per pixel (`simulate --pixel-spacing`, recorded in the
/// sidecar) is reconstructed by a score method on the shipped head prior's 0.957 mm grid
/// (256², twice as fine) and resampled back to its own 128² grid; likewise an MRI measurement
/// at 1.5 mm through the 1 mm T1 prior; `--pixel-spacing` is refused for MAR (its spacing is
/// the field of view over the size).
#[test]
fn score_methods_reconstruct_on_the_prior_spacing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let head = ndarray::Array2::from_shape_fn((128, 128), |(i, j)| {
        let r = (i as f32 - 63.5).hypot(j as f32 - 63.5);
        if r < 50.0 {
            40.0
        } else if r < 56.0 {
            1000.0
        } else {
            -1000.0
        }
    });
    medsgm::io::npy::write_npy(&d.join("head.npy"), &head.view().into_dyn()).unwrap();
    ok(
        &[
            "simulate",
            "ct",
            "-i",
            "head.npy",
            "--views",
            "23",
            "--pixel-spacing",
            "1.914",
            "--out",
            "m.npy",
        ],
        d,
    );
    let sidecar = std::fs::read_to_string(d.join("m.json")).unwrap();
    assert!(sidecar.contains("\"pixel_spacing_mm\": 1.914"), "{sidecar}");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ct_head/model.safetensors");
    let o = medsgm(
        &[
            "recon",
            "ct",
            "-i",
            "m.npy",
            "--method",
            "dds",
            "--model",
            model.to_str().unwrap(),
            "--steps",
            "2",
            "--units",
            "hu",
            "--out",
            "r.npy",
        ],
        d,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("reconstructed on the prior's 0.957 mm grid (256x256)"),
        "{err}"
    );
    let r = read_f32(&d.join("r.npy"));
    assert_eq!(r.shape(), &[128, 128]);
    assert!(r.iter().all(|v| v.is_finite()));
    fails_with_2(
        &[
            "simulate",
            "mar",
            "-i",
            "head.npy",
            "--pixel-spacing",
            "1",
            "--out",
            "k.npy",
        ],
        d,
        "--pixel-spacing applies to ct",
    );
    // MRI: a 128² slice at 1.5 mm through the 1 mm T1 prior, on its 192² grid
    let mr = head.mapv(|v: f32| ((v + 1000.0) / 2000.0).clamp(0.0, 1.0));
    medsgm::io::npy::write_npy(&d.join("mr.npy"), &mr.view().into_dyn()).unwrap();
    ok(
        &[
            "simulate",
            "mri",
            "-i",
            "mr.npy",
            "--pixel-spacing",
            "1.5",
            "--out",
            "k.npy",
        ],
        d,
    );
    let t1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/mri_t1/model.safetensors");
    let o = medsgm(
        &[
            "recon",
            "mri",
            "-i",
            "k.npy",
            "--method",
            "dds",
            "--model",
            t1.to_str().unwrap(),
            "--steps",
            "2",
            "--units",
            "model",
            "--out",
            "rm.npy",
        ],
        d,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("grid (192x192)"), "{err}");
    let rm = read_f32(&d.join("rm.npy"));
    assert_eq!(rm.shape(), &[128, 128]);
    assert!(rm.iter().all(|v| v.is_finite()));
}
