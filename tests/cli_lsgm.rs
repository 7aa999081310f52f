//! `medsgm train` with an LSGM configuration, `medsgm sample` of the LSGM checkpoint and
//! `medsgm bench recon` with the latent prior (issue 6), on a 16² toy run.

use std::path::Path;
use std::process::Output;

mod common;
use common::ok;

fn medsgm(args: &[&str], cwd: &Path) -> Output {
    common::command(args, cwd)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("cannot run medsgm")
}

const CONFIG: &str = r#"
batch_size = 2
vae_steps = 2
prior_steps = 2
stage2 = "joint"
ckpt_every = 2
sample_every = 2
sample_n = 2
time_proposal = "importance"
t_min = 0.01
mixing_logit_init = -2.0
seed = 5

[vae]
image_size = 16
latent_channels = 2
nf = 4

[prior]
nf = 4
ch_mult = [1]
num_res_blocks = 1
attn_resolutions = []
image_size = 4
channels = 2
scale_by_sigma = false

[sde]
kind = "vp"
beta_min = 0.1
beta_max = 20.0

[data]
kind = "phantom-ellipses"
n_ellipses = 3
"#;

#[test]
fn lsgm_train_resume_sample_and_bench() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("lsgm.toml"), CONFIG).unwrap();
    ok(&medsgm(
        &["train", "--config", "lsgm.toml", "--out-dir", "run"],
        d,
    ));
    for f in [
        "lsgm.safetensors",
        "train_state.safetensors",
        "train_log.csv",
        "loss.png",
        "config.toml",
        "samples_0000002.png",
    ] {
        assert!(d.join("run").join(f).is_file(), "{f} missing");
    }
    // Extend stage 2 by one step.
    ok(&medsgm(
        &[
            "train",
            "--config",
            "lsgm.toml",
            "--out-dir",
            "run",
            "--resume",
            "--steps",
            "3",
        ],
        d,
    ));
    let log = std::fs::read_to_string(d.join("run/train_log.csv")).unwrap();
    assert!(log.lines().last().unwrap().starts_with("prior,3,"), "{log}");

    for sampler in [
        &["--sampler", "ode"][..],
        &["--sampler", "pc", "--steps", "4"],
    ] {
        let mut args = vec![
            "sample",
            "--model",
            "run/lsgm.safetensors",
            "--n",
            "3",
            "--batch",
            "2",
            "--out",
            "samples",
        ];
        args.extend_from_slice(sampler);
        let o = medsgm(&args, d);
        ok(&o);
        let json = std::fs::read_to_string(d.join("samples/samples.json")).unwrap();
        assert!(json.contains("LSGM"), "{json}");
        let npy = std::fs::read(d.join("samples/samples.npy")).unwrap();
        // Header then 3 × 16 × 16 float32 decoded images.
        let header = String::from_utf8_lossy(&npy[..128]);
        assert!(header.contains("(3, 16, 16)"), "{header}");
    }

    // latent-dds and latent-diffpir with a warm start (t₀ = 0.5: the encoded measured-data
    // estimate, diffused).
    std::fs::write(
        d.join("task.toml"),
        "[latent-dds]\nt_start = 0.5\n[latent-diffpir]\nt_start = 0.5\n",
    )
    .unwrap();
    let o = medsgm(
        &[
            "bench",
            "--out",
            "bench",
            "recon",
            "--task",
            "ct",
            "--methods",
            "fbp,latent-projection,latent-dds,latent-diffpir",
            "--latent-model",
            "run/lsgm.safetensors",
            "--latent-steps",
            "3",
            "--steps",
            "4",
            "--config",
            "task.toml",
            "--views",
            "8",
            "--n",
            "2",
        ],
        d,
    );
    ok(&o);
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(summary.contains("| 8 views | latent-dc | 2 |"), "{summary}");
    for method in ["latent-dds", "latent-diffpir"] {
        let row = summary
            .lines()
            .find(|l| l.contains(&format!("| {method} | 2 |")))
            .unwrap_or_else(|| panic!("{summary}"));
        // PSNR finite, NFE = the 4 latent network evaluations.
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let psnr: f64 = cells[4].split(' ').next().unwrap().parse().unwrap();
        assert!(psnr.is_finite() && psnr > 0.0, "{row}");
        assert_eq!(cells[6], "4", "{row}");
    }
    // `tune` searches latent-dc's step size ζ and records it in the task config.
    ok(&medsgm(
        &[
            "tune",
            "--task",
            "ct",
            "--method",
            "latent-dc",
            "--latent-model",
            "run/lsgm.safetensors",
            "--views",
            "8",
            "--n",
            "1",
            "--steps",
            "2",
            "--budget",
            "3",
            "--init",
            "2",
            "--out",
            "tuned.toml",
        ],
        d,
    ));
    let tuned: toml::Table = std::fs::read_to_string(d.join("tuned.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let zeta = tuned["latent-dc"]["latent_step_size"].as_float().unwrap();
    assert!((0.05..=20.0).contains(&zeta), "ζ = {zeta}");
    assert_eq!(
        tuned["tuning"]["latent-dc"]["evaluations"].as_integer(),
        Some(3)
    );
    // `likelihood` reports the LSGM's bound per image, with both estimators.
    let o = medsgm(
        &[
            "likelihood",
            "--model",
            "run/lsgm.safetensors",
            "--phantoms",
            "2",
            "--draws",
            "3",
            "--ode-probes",
            "1",
            "--tol",
            "1e-3",
            "--json",
            "ll.json",
        ],
        d,
    );
    ok(&o);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("ll.json")).unwrap()).unwrap();
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for im in images {
        let elbo = im["elbo"]["bits_per_dim"].as_f64().unwrap();
        let ode = im["ode"]["bits_per_dim"].as_f64().unwrap();
        assert!(elbo.is_finite() && ode.is_finite(), "{im}");
        assert!(im["elbo"]["std_error"].as_f64().unwrap() > 0.0, "{im}");
    }
    assert!(report["model_description"]
        .as_str()
        .unwrap()
        .contains("LSGM"));
    // Real images need the intensity window a score-model checkpoint records.
    let o = medsgm(
        &[
            "likelihood",
            "--model",
            "run/lsgm.safetensors",
            "--input",
            "ll.json",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--input needs a score-model"));
    // latent-dc without the LSGM is a usage error.
    let o = medsgm(
        &[
            "bench",
            "--out",
            "bench2",
            "recon",
            "--task",
            "ct",
            "--methods",
            "latent-dc",
        ],
        d,
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
