//! `medsgm recon` end to end on a single measurement, in process: the path of `recon::run`
//! for `--out FILE` (argument checks and resolution, `load_checked`, the memory estimate
//! against a budget, `reconstruct`) without writing the output. The input is a selector byte followed by up to
//! four files separated by `medsgm_fuzz::SEPARATOR`: sidecar JSON, data NPY, `meas.mask.npy`,
//! `meas.metal.npy`. The selector picks the method among those of the sidecar's problem (CT:
//! fbp, fista-tv, a score method; MRI: zero-filled, fista-tv, a score method; MAR: fbp, li,
//! fista-tv, a score method), the FBP filter, FISTA-TV's iteration count and the score method
//! (dds, dps or pc-projection, two steps) run with a tiny randomly initialised network.
//!
//! The budget (`--max-memory`, [`BUDGET`]) is the CLI's own validation: every size a file can
//! request must be bounded by it, so an allocation over libFuzzer's limit, a panic or an input
//! running past the timeout is a finding. On success the image must be finite and of the
//! sidecar's image shape.
#![no_main]
use clap::Parser;
use libfuzzer_sys::fuzz_target;
use medsgm::cli::recon::{self, ReconArgs};
use medsgm::cli::{Cli, Command};
use medsgm::model::LoadedModel;
use medsgm::reconstruct::{self, ReconOutput, ReconSize};
use medsgm::task::Problem;

/// The memory budget of every run: tiny inputs only, so an input stays well inside
/// libFuzzer's limits and its timeout unless a size escapes the estimate.
const BUDGET: &str = "64M";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some(path) = medsgm_fuzz::scratch_measurement(rest) else {
        return;
    };
    // the problem comes from the sidecar, so that the selector picks a method that applies
    let Ok(m) = medsgm::io::measurement::load_measurement(&path) else {
        return;
    };
    let args = arguments(selector, m.sidecar.kind, &path);
    let Ok(Command::Recon(a)) = Cli::try_parse_from(&args).map(|c| c.command) else {
        panic!("the fuzz target built invalid arguments {args:?}");
    };
    let result = run(&a);
    if std::env::var_os("MEDSGM_FUZZ_VERBOSE").is_some() {
        eprintln!("{args:?}: {:?}", result.as_ref().map(|o| o.image.dim()));
    }
    if let Ok(ReconOutput { image, .. }) = result {
        medsgm_fuzz::assert_finite(image.iter());
        assert_eq!(image.dim(), m.sidecar.image_shape(), "output shape");
    }
});

/// The command line of the selector's method for a measurement of `problem` at `path`.
fn arguments(selector: u8, problem: Problem, path: &std::path::Path) -> Vec<String> {
    let classical: &[&str] = match problem {
        Problem::Ct => &["fbp", "fista-tv"],
        Problem::Mri => &["zero-filled", "fista-tv"],
        Problem::Mar => &["fbp", "li", "fista-tv"],
    };
    let pick = usize::from(selector & 0x0f) % (classical.len() + 1);
    let method = classical.get(pick).copied().unwrap_or("score");
    let mut args: Vec<String> = ["medsgm", "recon", problem.name(), "--input"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(path.display().to_string());
    args.extend(["--out".into(), "unused.npy".into()]);
    args.extend(["--max-memory".into(), BUDGET.into()]);
    let high = usize::from(selector >> 4);
    const FILTERS: [&str; 5] = ["ram-lak", "shepp-logan", "cosine", "hamming", "hann"];
    match method {
        "fbp" => args.extend(["--filter".into(), FILTERS[high % 5].into()]),
        "fista-tv" => {
            args.extend(["--iterations".into(), (1 + high % 4).to_string()]);
            if high & 8 != 0 {
                args.push("--nonnegative".into());
            }
        }
        "score" => {
            let score = ["dds", "dps", "pc-projection"][high % 3];
            args.extend([
                "--method".into(),
                score.into(),
                "--steps".into(),
                "2".into(),
            ]);
            args.extend(["--model".into(), model_path().display().to_string()]);
            if problem != Problem::Mar {
                args.extend(["--units".into(), "model".into()]);
            }
            return args;
        }
        _ => {}
    }
    args.extend(["--method".into(), method.into()]);
    args
}

/// The single-measurement path of `recon::run` up to the image, without writing it.
fn run(a: &ReconArgs) -> anyhow::Result<ReconOutput> {
    let job = recon::resolve(a)?;
    let m = reconstruct::load_checked(job.problem, &a.input)?;
    let model = match a.method.inverse_method() {
        Some(_) => Some(LoadedModel::load(model_path())?),
        None => None,
    };
    job.memory.check(
        &a.input.display().to_string(),
        reconstruct::recon_bytes(&job, ReconSize::of(&m.sidecar.geometry), 1, model.as_ref()),
    )?;
    reconstruct::reconstruct(&job, &m, model.as_ref())
}

/// A tiny randomly initialised score model (NCSN++ with 8 features, two levels, VE SDE, CT HU
/// window [−1000, 1000] so that MAR accepts it), written once per process.
fn model_path() -> &'static std::path::Path {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        use candle_core::Device;
        use medsgm::checkpoint::{Checkpoint, CheckpointMeta, Normalization};
        use medsgm::nn::{Ncsnpp, NcsnppConfig};
        let config = NcsnppConfig {
            nf: 8,
            ch_mult: vec![1, 2],
            num_res_blocks: 1,
            attn_resolutions: vec![8],
            image_size: 16,
            ..NcsnppConfig::default()
        };
        let map = candle_nn::VarMap::new();
        Ncsnpp::init(&config, &map, 0, &Device::Cpu).expect("the tiny network");
        let weights: std::collections::HashMap<_, _> = map
            .data()
            .lock()
            .expect("the variables")
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
            .collect();
        let meta = CheckpointMeta::new(
            config,
            medsgm_recon::SdeConfig::Ve {
                sigma_min: 0.01,
                sigma_max: 8.0,
            },
            Normalization::CtHuWindow {
                lo: -1000.0,
                hi: 1000.0,
            },
            0,
            0,
            "untrained (fuzz target)",
        );
        let checkpoint = Checkpoint {
            meta,
            ema: weights.clone(),
            weights,
        };
        let path = medsgm_fuzz::scratch_file("model.safetensors", b"");
        checkpoint.save(&path).expect("the tiny checkpoint");
        path
    })
}
