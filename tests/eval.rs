//! The evaluation harness (`medsgm bench recon`) and the tuner (`medsgm tune`): artefacts of a
//! tiny classical benchmark, the batched score-method hand-off, the Bayesian optimiser on
//! known test functions, and resuming from the log.

use medsgm::eval::bayes_opt::{Dim, OptLog};
use medsgm::eval::cases::{Case, CtBeam, ScoreSolver, Solved};
use medsgm::eval::method::MethodParams;
use medsgm::eval::recon_bench::{run_bench, MethodRun, Record};
use medsgm::eval::testset::{mri_slices, phantoms, EvalSplit, TEST_SEED};
use medsgm::task::{Method, Problem};

use medsgm_operators::{CtProjector, Fft2, RealInput, Subsampled, Transform};
use medsgm_recon::InverseMethod;
use ndarray::{Array1, Ix2};
use num_complex::Complex32;
use std::sync::Mutex;

mod common;

/// `medsgm <args>` in the package root (where cargo runs the tests).
fn medsgm(args: &[&str]) -> std::process::Output {
    common::medsgm(args, std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
}

#[test]
fn bench_recon_writes_csv_json_markdown_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let o = medsgm(&[
        "bench",
        "recon",
        "--task",
        "ct",
        "--views",
        "8,30",
        "--methods",
        "fbp,fista-tv",
        "--n",
        "2",
        "--size",
        "32",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("per_image.csv")).unwrap();
    // Header + 2 settings × 2 methods × 2 images.
    assert_eq!(csv.lines().count(), 1 + 8, "{csv}");
    let records: Vec<Record> =
        serde_json::from_str(&std::fs::read_to_string(out.join("per_image.json")).unwrap())
            .unwrap();
    assert_eq!(records.len(), 8);
    assert!(records.iter().all(|r| r.psnr.is_finite() && r.ssim <= 1.0));
    let mean = |method: &str, views: f64| {
        let v: Vec<f64> = records
            .iter()
            .filter(|r| r.method == method && r.x == views)
            .map(|r| r.psnr)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    // Independent expectations: more views help, TV beats FBP on piecewise-smooth phantoms.
    assert!(mean("fbp", 30.0) > mean("fbp", 8.0) + 3.0);
    assert!(mean("fista-tv", 8.0) > mean("fbp", 8.0) + 3.0);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| 8 views | fista-tv | 2 |"), "{md}");
    for png in ["curves.png", "panel.png"] {
        let img = image::open(out.join(png)).unwrap();
        assert!(img.width() > 300 && img.height() > 100, "{png}");
    }
}

/// `--split validation` benchmarks the validation images `tune` uses (never the test set's);
/// the default stays the test set.
#[test]
fn bench_recon_split_selects_validation_or_test_images() {
    use medsgm::eval::testset::{TEST_SEED, VALIDATION_SEED};
    let dir = tempfile::tempdir().unwrap();
    let ids = |split: Option<&str>| -> Vec<String> {
        let out = dir.path().join(split.unwrap_or("default"));
        let mut args = vec![
            "bench",
            "recon",
            "--task",
            "ct",
            "--views",
            "8",
            "--methods",
            "fbp",
            "--n",
            "2",
            "--size",
            "32",
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(s) = split {
            args.extend(["--split", s]);
        }
        let o = medsgm(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let csv = std::fs::read_to_string(out.join("per_image.csv")).unwrap();
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').nth(4).unwrap().to_owned())
            .collect()
    };
    let seeds = |first: u64| vec![first.to_string(), (first + 1).to_string()];
    assert_eq!(ids(Some("validation")), seeds(VALIDATION_SEED));
    assert_eq!(ids(None), seeds(TEST_SEED));
    assert_eq!(ids(Some("test")), seeds(TEST_SEED));
}

/// A stand-in score solver: least-squares via the transform's inverse of the zero-filled
/// measurements; counts its calls and batch sizes.
struct ZeroFillSolver {
    batches: Mutex<Vec<usize>>,
}

impl ZeroFillSolver {
    fn solve<T: Transform<In = f32>>(&self, op: &Subsampled<T>, ys: &[Array1<T::Out>]) -> Solved {
        self.batches.lock().unwrap().push(ys.len());
        let images = ys
            .iter()
            .map(|y| {
                let full = op.zero_fill(&y.view());
                op.transform()
                    .inverse(&full.view())
                    .into_dimensionality::<Ix2>()
                    .unwrap()
            })
            .collect();
        Solved { images, nfe: 7 }
    }
}

impl ScoreSolver for ZeroFillSolver {
    fn image_size(&self) -> usize {
        32
    }
    fn solve_ct(
        &self,
        op: &Subsampled<CtProjector>,
        ys: &[Array1<f32>],
        _: Method,
        _: &MethodParams,
    ) -> anyhow::Result<Solved> {
        Ok(self.solve(op, ys))
    }
    fn solve_fft(
        &self,
        op: &Subsampled<RealInput<Fft2>>,
        ys: &[Array1<Complex32>],
        _: Method,
        _: &MethodParams,
    ) -> anyhow::Result<Solved> {
        Ok(self.solve(op, ys))
    }
}

/// Fan-beam cases: 23 views of the 360-view scan; FISTA-TV beats FBP; the dose adds noise
/// (the noisy case's FBP is worse than the noise-free one's), reproducibly for a seed.
#[test]
fn fan_beam_cases_measure_with_noise_at_a_dose() {
    let images = phantoms(48, TEST_SEED, 2, false).unwrap();
    let params = MethodParams::defaults(Problem::Ct);
    let fbp_psnr = |case: &Case| {
        let x = case.classical(Method::Fbp, 0, &params).unwrap();
        medsgm_operators::metrics::psnr(&x.view(), &images[0].truth.view(), 1.0).unwrap()
    };
    let clean = Case::ct(&images, vec![0, 1], 23, CtBeam::Fan { dose: None }, 0).unwrap();
    let noisy = Case::ct(&images, vec![0, 1], 23, CtBeam::Fan { dose: Some(1e3) }, 0).unwrap();
    assert!(noisy.label.contains("fan 23/360"), "{}", noisy.label);
    let (c, n) = (fbp_psnr(&clean), fbp_psnr(&noisy));
    assert!(
        c > 15.0 && n < c - 0.5,
        "fan FBP clean {c} dB, noisy {n} dB"
    );
    let tv = clean.classical(Method::FistaTv, 0, &params).unwrap();
    let tv = medsgm_operators::metrics::psnr(&tv.view(), &images[0].truth.view(), 1.0).unwrap();
    assert!(tv > c, "fan FISTA-TV {tv} vs FBP {c}");
    let again = Case::ct(&images, vec![0, 1], 23, CtBeam::Fan { dose: Some(1e3) }, 0).unwrap();
    assert_eq!(fbp_psnr(&again), n, "the same seed, the same noise");
}

#[test]
fn score_methods_get_one_batch_per_case_and_their_nfe_is_recorded() {
    let images = phantoms(32, TEST_SEED, 3, false).unwrap();
    let cases = vec![
        Case::mri(&images, vec![0, 1, 2], 2.0).unwrap(),
        Case::mri(&images, vec![0, 1, 2], 1.0).unwrap(),
    ];
    let solver = ZeroFillSolver {
        batches: Mutex::new(Vec::new()),
    };
    let runs = [
        MethodRun {
            method: Method::Score(InverseMethod::PcProjection),
            params: MethodParams::defaults(Problem::Mri),
        },
        MethodRun {
            method: Method::ZeroFilled,
            params: MethodParams::defaults(Problem::Mri),
        },
    ];
    let out = run_bench(
        Problem::Mri,
        &images,
        &cases,
        &runs,
        Some(&solver),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(*solver.batches.lock().unwrap(), vec![3, 3]);
    assert_eq!(out.records.len(), 2 * 2 * 3);
    for r in &out.records {
        assert_eq!(r.nfe, if r.method == "pc-projection" { 7 } else { 0 });
    }
    // The stand-in equals the zero-filled baseline (real part of F⁻¹ of the zero-filled data).
    for (a, b) in out
        .records
        .iter()
        .filter(|r| r.method == "pc-projection")
        .zip(out.records.iter().filter(|r| r.method == "zero-filled"))
    {
        assert!((a.psnr - b.psnr).abs() < 1e-6 || (a.psnr.is_infinite() && b.psnr.is_infinite()));
    }
    // R = 1 keeps every column except the last (fastMRI convention) but the operator's exact
    // inverse on the measured data is close to the truth.
    let full = out.records.iter().find(|r| r.x == 1.0).unwrap();
    assert!(full.psnr > 25.0, "{}", full.psnr);
}

/// A smooth bowl in log coordinates with its maximum 0 at (0.05, 3).
fn log_bowl(p: &[f64]) -> f64 {
    -((p[0].log10() - 0.05f64.log10()).powi(2) + (p[1].log10() - 3f64.log10()).powi(2))
}

/// −Branin (three global maxima of −0.397887).
fn neg_branin(p: &[f64]) -> f64 {
    let (x, y) = (p[0], p[1]);
    let pi = std::f64::consts::PI;
    let b = 5.1 / (4.0 * pi * pi);
    let c = 5.0 / pi;
    -((y - b * x * x + c * x - 6.0).powi(2) + 10.0 * (1.0 - 1.0 / (8.0 * pi)) * x.cos() + 10.0)
}

#[test]
fn optimiser_finds_the_maximum_of_known_functions_within_budget() {
    let dims = vec![Dim::log("a", 1e-3, 1.0), Dim::log("b", 0.1, 100.0)];
    let mut log = OptLog::new(dims, 1, 6).unwrap();
    let best = log
        .maximize(
            20,
            |p| Ok((log_bowl(p), serde_json::Value::Null)),
            |_| Ok(()),
        )
        .unwrap();
    assert!(best.value > -0.02, "{best:?}");

    let dims = vec![
        Dim {
            name: "x".into(),
            lo: -5.0,
            hi: 10.0,
            log: false,
        },
        Dim {
            name: "y".into(),
            lo: 0.0,
            hi: 15.0,
            log: false,
        },
    ];
    let mut log = OptLog::new(dims, 3, 6).unwrap();
    let best = log
        .maximize(
            30,
            |p| Ok((neg_branin(p), serde_json::Value::Null)),
            |_| Ok(()),
        )
        .unwrap();
    assert!(best.value > -0.6, "{best:?}");
}

#[test]
fn resuming_from_the_log_continues_the_same_search() {
    let dims = vec![Dim::log("a", 1e-3, 1.0), Dim::log("b", 0.1, 100.0)];
    let f = |p: &[f64]| {
        Ok((
            log_bowl(p),
            serde_json::json!({ "twice": 2.0 * log_bowl(p) }),
        ))
    };
    let mut straight = OptLog::new(dims.clone(), 9, 4).unwrap();
    straight.maximize(10, f, |_| Ok(())).unwrap();

    let mut first = OptLog::new(dims, 9, 4).unwrap();
    let mut saved = String::new();
    first
        .maximize(6, f, |l| {
            saved = serde_json::to_string(l)?;
            Ok(())
        })
        .unwrap();
    let mut resumed: OptLog = serde_json::from_str(&saved).unwrap();
    assert_eq!(resumed.evaluations.len(), 6);
    resumed.maximize(10, f, |_| Ok(())).unwrap();
    assert_eq!(resumed, straight);
}

#[test]
fn tune_cli_resumes_and_writes_the_task_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tuned_ct.toml");
    let cfg_s = cfg.to_str().unwrap();
    let args = |budget: &'static str, resume: bool| {
        let mut a: Vec<&str> = vec![
            "tune", "--task", "ct", "--method", "fista-tv", "--n", "1", "--size", "32", "--views",
            "12", "--budget", budget, "--out", cfg_s,
        ];
        if resume {
            a.push("--resume");
        }
        a
    };
    let o = medsgm(&args("3", false));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log_path = dir.path().join("tuned_ct.fista-tv.log.json");
    let first: OptLog = serde_json::from_str(&std::fs::read_to_string(&log_path).unwrap()).unwrap();
    let o = medsgm(&args("5", true));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let second: OptLog =
        serde_json::from_str(&std::fs::read_to_string(&log_path).unwrap()).unwrap();
    assert_eq!(second.evaluations.len(), 5);
    assert_eq!(second.evaluations[..3], first.evaluations[..]);
    let best = second.best().unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    assert_eq!(
        doc["fista-tv"]["tv_weight"].as_float(),
        Some(best.params[0])
    );
    assert_eq!(
        doc["tuning"]["fista-tv"]["evaluations"].as_integer(),
        Some(5)
    );
    // phantoms: the weight is in the images' own units, at no physical spacing
    let images = &doc["tuning"]["fista-tv"]["images"];
    assert_eq!(images["normalization"]["kind"].as_str(), Some("identity"));
    assert!(images.get("pixel_spacing_mm").is_none());
    // The benchmark reads the written config.
    let out = dir.path().join("bench");
    let o = medsgm(&[
        "bench",
        "recon",
        "--task",
        "ct",
        "--views",
        "12",
        "--methods",
        "fista-tv",
        "--n",
        "1",
        "--size",
        "32",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `--data <training config>`: the test split is exactly the config's held-out block and the
/// validation split (for `tune`) never touches the block or its guard band.
#[test]
fn mri_slices_from_a_training_config_respect_the_held_out_block() {
    let nii = common::fetched("mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz");
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/mri_mni_64.toml"),
    )
    .unwrap();
    let mut cfg: toml::Table = shipped.parse().unwrap();
    let data = cfg["data"].as_table_mut().unwrap();
    data.insert("path".into(), nii.to_string_lossy().into_owned().into());
    let [lo, hi] = [95, 110];
    data.insert(
        "holdout".into(),
        toml::Value::Array(vec![lo.into(), hi.into()]),
    );
    data.insert("guard".into(), 3.into());
    let path = dir.path().join("mri.toml");
    std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    let index = |id: &str| id.trim_start_matches("slice").parse::<i64>().unwrap();

    let test = mri_slices(&path, 100, EvalSplit::Test).unwrap();
    let ids: Vec<i64> = test.iter().map(|t| index(&t.id)).collect();
    assert_eq!(ids, (lo..hi).collect::<Vec<_>>());
    assert!(test.iter().all(|t| t.truth.dim() == (64, 64)));
    let val = mri_slices(&path, 8, EvalSplit::Validation).unwrap();
    assert_eq!(val.len(), 8);
    for t in &val {
        let k = index(&t.id);
        assert!(
            k < lo - 3 || k >= hi + 3,
            "validation slice {k} inside the guarded block"
        );
        assert!(t.truth.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    // A config whose data source has no held-out block is refused.
    let phantom =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/ct_phantom_64.toml");
    let err = mri_slices(&phantom, 4, EvalSplit::Test).unwrap_err();
    assert!(format!("{err:#}").contains("not nifti-slices"), "{err:#}");
}

/// A solver that diverges for large snr (and is otherwise broken for a negative λ).
struct FragileSolver;

impl FragileSolver {
    fn check(params: &MethodParams) -> anyhow::Result<()> {
        if params.lambda < 0.0 {
            anyhow::bail!("not a divergence: a broken set-up");
        }
        if params.snr > 0.5 {
            return Err(medsgm::eval::score::Diverged("diverged".into()).into());
        }
        Ok(())
    }
}

impl ScoreSolver for FragileSolver {
    fn image_size(&self) -> usize {
        32
    }
    fn solve_ct(
        &self,
        _: &Subsampled<CtProjector>,
        _: &[Array1<f32>],
        _: Method,
        _: &MethodParams,
    ) -> anyhow::Result<Solved> {
        unreachable!("MRI only")
    }
    fn solve_fft(
        &self,
        op: &Subsampled<RealInput<Fft2>>,
        ys: &[Array1<Complex32>],
        _: Method,
        params: &MethodParams,
    ) -> anyhow::Result<Solved> {
        Self::check(params)?;
        let zf = ZeroFillSolver {
            batches: Mutex::new(Vec::new()),
        };
        Ok(zf.solve(op, ys))
    }
}

/// `tune`'s objective scores a diverged evaluation as a failure (PSNR 0) and goes on, but
/// still stops on any other error.
#[test]
fn tuning_objective_scores_divergence_as_a_failure() {
    use medsgm::eval::tune::{objective, Metric};
    let images = phantoms(32, TEST_SEED, 2, false).unwrap();
    let cases = vec![Case::mri(&images, vec![0, 1], 2.0).unwrap()];
    let run = |snr: f64, lambda: f64| MethodRun {
        method: Method::Score(InverseMethod::PcProjection),
        params: MethodParams {
            snr,
            lambda,
            ..MethodParams::defaults(Problem::Mri)
        },
    };
    let ok = objective(
        Problem::Mri,
        &images,
        &cases,
        &run(0.1, 1.0),
        Some(&FragileSolver),
        Metric::Psnr,
    )
    .unwrap();
    assert!(ok.0 > 5.0, "{ok:?}");
    let failed = objective(
        Problem::Mri,
        &images,
        &cases,
        &run(0.9, 1.0),
        Some(&FragileSolver),
        Metric::Psnr,
    )
    .unwrap();
    assert_eq!(failed.0, 0.0);
    assert!(failed.1["failed"].as_str().unwrap().contains("diverged"));
    assert!(objective(
        Problem::Mri,
        &images,
        &cases,
        &run(0.1, -1.0),
        Some(&FragileSolver),
        Metric::Psnr,
    )
    .is_err());
}
