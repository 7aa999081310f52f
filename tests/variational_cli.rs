//! End to end through the `medsgm` binary, with a tiny prior trained in the test: the
//! λ-family sampler, `likelihood` (ELBO and ODE bits/dim) and ScoreVAE (`train` of an encoder
//! against the frozen prior, `encode`, `decode`), with their bad-input contract (exit 2, a
//! message naming the problem, inputs untouched).

use medsgm::io::npy::{read_npy, write_npy};
use ndarray::Array2;
use std::path::{Path, PathBuf};

mod common;
use common::{fails_with_2, run_ok as ok};

/// The tiny configuration (16² random ellipses) trained into `dir/prior`.
fn tiny_prior(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = dir.join("tiny.toml");
    std::fs::copy(root.join("configs/test_tiny.toml"), &cfg).unwrap();
    ok(
        &["train", "--config", "tiny.toml", "--out-dir", "prior"],
        dir,
    );
    dir.join("prior/model.safetensors")
}

/// Two 16² test images in [0, 1] as `[2, 16, 16]` and as single files.
fn images(dir: &Path) -> (PathBuf, PathBuf) {
    let one = |k: usize| {
        Array2::from_shape_fn((16, 16), |(i, j)| {
            let (x, y) = (i as f32 - 7.5, j as f32 - 7.5 - k as f32);
            if x * x / 36.0 + y * y / 20.0 < 1.0 {
                0.8
            } else {
                0.1
            }
        })
    };
    let a = dir.join("a.npy");
    write_npy(&a, &one(0).view().into_dyn()).unwrap();
    let stack = ndarray::stack(ndarray::Axis(0), &[one(0).view(), one(1).view()]).unwrap();
    let s = dir.join("stack.npy");
    write_npy(&s, &stack.view().into_dyn()).unwrap();
    (a, s)
}

#[test]
fn lambda_sampler_likelihood_and_scorevae_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let prior = tiny_prior(dir);
    let p = prior.to_str().unwrap();
    let (a, _) = images(dir);

    // λ-family sampler; its flag belongs to it only
    let out = ok(
        &[
            "sample",
            "--model",
            p,
            "--sampler",
            "sde-lambda",
            "--lambda-ode",
            "0.5",
            "--steps",
            "5",
            "--n",
            "2",
            "--out",
            "s",
        ],
        dir,
    );
    assert!(out.contains("λ-family"), "{out}");
    let s = read_npy(&dir.join("s/samples.npy"))
        .unwrap()
        .into_f32()
        .unwrap();
    assert_eq!(s.shape(), &[2, 16, 16]);
    assert!(s.iter().all(|v| v.is_finite()));
    fails_with_2(
        &["sample", "--model", p, "--lambda-ode", "0.5", "--out", "s2"],
        dir,
        "--lambda-ode does not apply to --sampler pc",
    );
    fails_with_2(
        &[
            "sample",
            "--model",
            p,
            "--sampler",
            "sde-lambda",
            "--lambda-ode",
            "1.5",
            "--out",
            "s3",
        ],
        dir,
        "λ <= 1",
    );

    // likelihood: ELBO and ODE bits/dim with standard errors; the bound sits above the ODE
    ok(
        &[
            "likelihood",
            "--model",
            p,
            "--input",
            "a.npy",
            "--draws",
            "8",
            "--ode-probes",
            "2",
            "--json",
            "ll.json",
        ],
        dir,
    );
    let ll: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ll.json")).unwrap()).unwrap();
    let img = &ll["images"][0];
    for key in ["elbo", "ode"] {
        assert!(
            img[key]["bits_per_dim"].as_f64().unwrap().is_finite(),
            "{ll}"
        );
        assert!(img[key]["std_error"].as_f64().unwrap() >= 0.0, "{ll}");
    }
    fails_with_2(
        &[
            "likelihood",
            "--model",
            p,
            "--input",
            "a.npy",
            "--json",
            "a.npy",
        ],
        dir,
        "inputs are never overwritten",
    );
    fails_with_2(&["likelihood", "--model", p], dir, "nothing to evaluate");

    // ScoreVAE: an encoder against the frozen prior, then encode and decode
    let cfg = format!(
        "prior = \"{p}\"\nsteps = 6\nbatch_size = 2\nlr = 1e-3\nbeta = 0.01\nckpt_every = 3\n\n\
         [encoder]\nimage_size = 16\nlatent = 8\nhidden = 16\n\n\
         [data]\nkind = \"phantom-ellipses\"\nn_ellipses = 3\n"
    );
    std::fs::write(dir.join("svae.toml"), &cfg).unwrap();
    ok(
        &["train", "--config", "svae.toml", "--out-dir", "svae"],
        dir,
    );
    let log = std::fs::read_to_string(dir.join("svae/train_log.csv")).unwrap();
    assert_eq!(log.lines().count(), 7, "{log}");
    let enc = dir.join("svae/encoder.safetensors");
    let e = enc.to_str().unwrap();
    let before = std::fs::read(&a).unwrap();
    ok(
        &["encode", "--model", e, "--input", "a.npy", "--out", "z.npy"],
        dir,
    );
    assert_eq!(std::fs::read(&a).unwrap(), before, "the input changed");
    let z = read_npy(&dir.join("z.npy")).unwrap().into_f32().unwrap();
    assert_eq!(z.shape(), &[1, 8]);
    let out = ok(
        &[
            "decode",
            "--model",
            e,
            "--codes",
            "z.npy",
            "--steps",
            "4",
            "--reference",
            "z.images.npy",
            "--out",
            "d.npy",
        ],
        dir,
    );
    assert!(out.contains("ScoreVAE"), "{out}");
    let d = read_npy(&dir.join("d.npy")).unwrap().into_f32().unwrap();
    assert_eq!(d.shape(), &[1, 16, 16]);
    // resuming with another architecture is refused; a longer run resumes
    std::fs::write(
        dir.join("svae2.toml"),
        cfg.replace("latent = 8", "latent = 9"),
    )
    .unwrap();
    fails_with_2(
        &[
            "train",
            "--config",
            "svae2.toml",
            "--out-dir",
            "svae",
            "--resume",
        ],
        dir,
        "only steps may change",
    );
    ok(
        &[
            "train",
            "--config",
            "svae.toml",
            "--out-dir",
            "svae",
            "--resume",
            "--steps",
            "8",
        ],
        dir,
    );
    let log = std::fs::read_to_string(dir.join("svae/train_log.csv")).unwrap();
    assert_eq!(log.lines().last().unwrap().split(',').next(), Some("8"));
    // measurement-consistent decoding: the prior conditioned on the code through every score
    // method of `recon`; the same seed without the code gives another slice
    ok(
        &[
            "simulate", "ct", "-i", "a.npy", "--views", "8", "--out", "m.npy",
        ],
        dir,
    );
    let recon = |extra: &[&str], out: &str| {
        let mut args = vec![
            "recon",
            "ct",
            "-i",
            "m.npy",
            "--method",
            "pc-projection",
            "--model",
            p,
            "--steps",
            "4",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        ok(&args, dir);
        read_npy(&dir.join(out)).unwrap().into_f32().unwrap()
    };
    let plain = recon(&[], "x0.npy");
    let decoded = recon(&["--encoder", e, "--code", "z.npy"], "x1.npy");
    assert_eq!(plain.shape(), decoded.shape());
    assert!(decoded.iter().all(|v| v.is_finite()));
    assert_ne!(plain, decoded, "the code had no effect");
    fails_with_2(
        &[
            "recon",
            "ct",
            "-i",
            "m.npy",
            "--method",
            "pc-projection",
            "--model",
            p,
            "--encoder",
            e,
            "--code",
            "z.npy",
            "--out",
            "z.npy",
        ],
        dir,
        "inputs are never overwritten",
    );
    fails_with_2(
        &[
            "recon",
            "ct",
            "-i",
            "m.npy",
            "--method",
            "pc-projection",
            "--model",
            p,
            "--encoder",
            e,
            "--code",
            "z.npy",
            "--output",
            "outdir",
        ],
        dir,
        "--code conditions one slice",
    );
    fails_with_2(
        &[
            "recon",
            "ct",
            "-i",
            "m.npy",
            "--method",
            "pc-projection",
            "--model",
            p,
            "--code",
            "z.npy",
            "--out",
            "x2.npy",
        ],
        dir,
        "--encoder",
    );

    // codes of the wrong length, and an output that is an input
    write_npy(
        &dir.join("bad.npy"),
        &Array2::<f32>::zeros((1, 5)).view().into_dyn(),
    )
    .unwrap();
    fails_with_2(
        &[
            "decode", "--model", e, "--codes", "bad.npy", "--out", "d2.npy",
        ],
        dir,
        "codes must hold 8",
    );
    fails_with_2(
        &[
            "recon",
            "ct",
            "-i",
            "m.npy",
            "--method",
            "pc-projection",
            "--model",
            p,
            "--encoder",
            e,
            "--code",
            "bad.npy",
            "--out",
            "x3.npy",
        ],
        dir,
        "must hold one code of 8 values",
    );
    fails_with_2(
        &["decode", "--model", e, "--codes", "z.npy", "--out", "z.npy"],
        dir,
        "inputs are never overwritten",
    );
}

/// A convolutional ScoreVAE encoder trains against the frozen prior and encodes the held-out
/// block of a training configuration (`encode --held-out`), as training prepared its slices.
#[test]
fn conv_scorevae_encodes_a_configs_held_out_slices() {
    use medsgm::io::nifti_io::{write_nifti, NiftiMeta};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let prior = tiny_prior(dir);
    let p = prior.to_str().unwrap();
    std::fs::write(
        dir.join("conv.toml"),
        format!(
            "prior = \"{p}\"\nsteps = 3\nbatch_size = 2\nlr = 1e-3\nbeta = 0.01\nckpt_every = 3\n\n\
             [encoder]\nimage_size = 16\nlatent = 8\nhidden = 1\n\n\
             [encoder.conv]\nchannels = 4\nlayers = 2\n\n\
             [data]\nkind = \"phantom-ellipses\"\nn_ellipses = 3\n"
        ),
    )
    .unwrap();
    ok(
        &["train", "--config", "conv.toml", "--out-dir", "conv"],
        dir,
    );
    let e = dir.join("conv/encoder.safetensors");
    let e = e.to_str().unwrap();
    // a 16 × 16 × 12 volume, slices 8..11 held out
    let vol = ndarray::Array3::from_shape_fn((16, 16, 12), |(i, j, k)| {
        let (x, y) = (i as f32 - 7.5, j as f32 - 7.5);
        if x * x + y * y < 30.0 + k as f32 {
            100.0 + k as f32
        } else {
            0.0
        }
    });
    write_nifti(
        &dir.join("vol.nii.gz"),
        &vol.view().into_dyn(),
        &NiftiMeta::identity(),
    )
    .unwrap();
    let config = common::tiny_config_with(
        dir,
        "[data]\nkind = \"nifti-slices\"\npath = \"vol.nii.gz\"\naxis = 2\nholdout = [8, 11]\n\
         guard = 1\npercentile = 99.5\nmin_fill = 0.0\n",
    );
    let c = config.to_str().unwrap();
    ok(
        &[
            "encode",
            "--model",
            e,
            "--held-out",
            c,
            "--n",
            "2",
            "--out",
            "z.npy",
        ],
        dir,
    );
    let z = read_npy(&dir.join("z.npy")).unwrap().into_f32().unwrap();
    assert_eq!(z.shape(), &[2, 8]);
    assert!(z.iter().all(|v| v.is_finite()));
    let images = read_npy(&dir.join("z.images.npy"))
        .unwrap()
        .into_f32()
        .unwrap();
    assert_eq!(images.shape(), &[2, 16, 16]);
    fails_with_2(
        &[
            "encode",
            "--model",
            e,
            "--held-out",
            c,
            "--phantoms",
            "2",
            "--out",
            "z2.npy",
        ],
        dir,
        "exactly one of",
    );

    // ScoreVAE+: a correction trained with the conv encoder frozen
    let plus_cfg = std::fs::read_to_string(dir.join("conv.toml"))
        .unwrap()
        .replace(
        "[encoder]",
        "encoder_from = \"conv/encoder.safetensors\"\n\n[correction]\nchannels = 2\n\n[encoder]",
    );
    std::fs::write(dir.join("plus.toml"), plus_cfg).unwrap();
    ok(
        &["train", "--config", "plus.toml", "--out-dir", "plus"],
        dir,
    );
    let read = |p: &str| {
        safetensors::SafeTensors::deserialize(&std::fs::read(dir.join(p)).unwrap())
            .unwrap()
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.data().to_vec()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (base, plus) = (
        read("conv/encoder.safetensors"),
        read("plus/encoder.safetensors"),
    );
    for (name, data) in &base {
        assert_eq!(plus.get(name), Some(data), "encoder tensor {name} changed");
    }
    let out_weight = &plus["correction.out.weight"];
    assert!(
        out_weight.iter().any(|&b| b != 0),
        "the correction did not train"
    );
    let pe = dir.join("plus/encoder.safetensors");
    let decode = |model: &str, out: &str| {
        ok(
            &[
                "decode", "--model", model, "--codes", "z.npy", "--steps", "3", "--out", out,
            ],
            dir,
        );
        read_npy(&dir.join(out)).unwrap().into_f32().unwrap()
    };
    let plain = decode(e, "d0.npy");
    let corrected = decode(pe.to_str().unwrap(), "d1.npy");
    assert!(corrected.iter().all(|v| v.is_finite()));
    assert_ne!(plain, corrected, "the correction had no effect on decoding");
    // a correction without the encoder it corrects is refused
    std::fs::write(
        dir.join("bad.toml"),
        std::fs::read_to_string(dir.join("conv.toml"))
            .unwrap()
            .replace("[encoder]", "[correction]\nchannels = 2\n\n[encoder]"),
    )
    .unwrap();
    fails_with_2(
        &["train", "--config", "bad.toml", "--out-dir", "bad"],
        dir,
        "encoder_from",
    );
}
