//! Training: resume equals an uninterrupted run bit for bit; a tiny run lowers the DSM loss.

use candle_core::Device;
use medsgm::nn::NcsnppConfig;
use medsgm::train::data::build_source;
use medsgm::train::{DataConfig, DataSource, TrainConfig, Trainer, Weighting};
use medsgm_recon::SdeConfig;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Random-ellipse phantoms at 16² (the configured data source).
fn phantoms(seed: u64) -> Box<dyn DataSource> {
    build_source(&DataConfig::PhantomEllipses { n_ellipses: 3 }, 16, seed).unwrap()
}

fn tiny(steps: u64, sde: SdeConfig, weighting: Weighting) -> TrainConfig {
    TrainConfig {
        model: NcsnppConfig {
            nf: 8,
            ch_mult: vec![1, 2],
            num_res_blocks: 1,
            attn_resolutions: vec![8],
            image_size: 16,
            dropout: 0.1,
            ..Default::default()
        },
        sde,
        data: DataConfig::PhantomEllipses { n_ellipses: 3 },
        batch_size: 4,
        steps,
        lr: 2e-3,
        warmup: 5,
        grad_clip: 1.0,
        ema: 0.9,
        weighting,
        ckpt_every: 1000,
        sample_every: 0,
        sample_n: 4,
        sample_steps: 10,
        seed: 11,
        init_from: None,
    }
}

fn flat(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    t.parameters()
        .into_iter()
        .map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

/// `init_from` starts a run from a checkpoint's EMA weights (fine-tuning), with a different
/// seed and data; a checkpoint of another architecture is refused.
#[test]
fn init_from_starts_at_the_checkpoint_weights() {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("m.safetensors");
    let mut base = Trainer::new(
        tiny(2, SdeConfig::ve(8.0), Weighting::SigmaSquared),
        phantoms(1),
        &dev,
    )
    .unwrap();
    base.train_step().unwrap();
    base.train_step().unwrap();
    let ck = base.checkpoint().unwrap();
    ck.save(&ckpt).unwrap();
    let mut cfg = tiny(2, SdeConfig::ve(8.0), Weighting::SigmaSquared);
    cfg.seed = 99;
    cfg.init_from = Some(ckpt.clone());
    let tuned = Trainer::new(cfg.clone(), phantoms(5), &dev).unwrap();
    for (name, value) in flat(&tuned) {
        let want = ck.ema[&name]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(value, want, "{name}");
    }
    // A fresh run with that seed starts elsewhere.
    cfg.init_from = None;
    assert_ne!(
        flat(&Trainer::new(cfg.clone(), phantoms(5), &dev).unwrap()),
        flat(&tuned)
    );
    cfg.model.nf = 16;
    cfg.init_from = Some(ckpt);
    let err = Trainer::new(cfg, phantoms(5), &dev)
        .err()
        .expect("architecture mismatch");
    assert!(format!("{err:#}").contains("architecture"), "{err:#}");
}

#[test]
fn resume_continues_bit_for_bit() {
    let dev = Device::Cpu;
    let cfg = tiny(4, SdeConfig::ve(8.0), Weighting::SigmaSquared);
    let mut full = Trainer::new(cfg.clone(), phantoms(1), &dev).unwrap();
    let full_losses: Vec<f64> = (0..4).map(|_| full.train_step().unwrap()).collect();

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.safetensors");
    let mut first = Trainer::new(cfg, phantoms(1), &dev).unwrap();
    first.train_step().unwrap();
    first.train_step().unwrap();
    first.save_state(&state).unwrap();
    drop(first);
    let mut resumed = Trainer::resume(&state, phantoms(1), &dev).unwrap();
    assert_eq!(resumed.step(), 2);
    resumed.train_step().unwrap();
    resumed.train_step().unwrap();

    assert_eq!(flat(&full), flat(&resumed));
    let l: Vec<f64> = resumed.losses().iter().map(|p| p.1).collect();
    assert_eq!(l, full_losses);
    let (ca, cb) = (full.checkpoint().unwrap(), resumed.checkpoint().unwrap());
    for (n, t) in &ca.ema {
        assert_eq!(
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            cb.ema[n].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            "ema {n}"
        );
    }
}

#[test]
fn tiny_training_run_lowers_the_loss() {
    let dev = Device::Cpu;
    for (sde, weighting) in [
        (SdeConfig::ve(8.0), Weighting::SigmaSquared),
        (SdeConfig::vp(), Weighting::Likelihood),
    ] {
        let mut cfg = tiny(60, sde, weighting);
        cfg.model.dropout = 0.0;
        let mut t = Trainer::new(cfg, phantoms(2), &dev).unwrap();
        // Fixed evaluation batch and noise: 4 batches from steps far beyond the run.
        let eval = |t: &Trainer| -> f64 {
            (0..4u64)
                .map(|k| {
                    let x0 = t.batch(1_000_000 + k).unwrap();
                    let mut rng = ChaCha8Rng::seed_from_u64(k);
                    t.dsm_loss(&x0, &mut rng, false)
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap() as f64
                })
                .sum::<f64>()
                / 4.0
        };
        let before = eval(&t);
        for _ in 0..60 {
            t.train_step().unwrap();
        }
        let after = eval(&t);
        let l = t.losses();
        let first: f64 = l[..10].iter().map(|p| p.1).sum::<f64>() / 10.0;
        let last: f64 = l[50..].iter().map(|p| p.1).sum::<f64>() / 10.0;
        assert!(
            after < 0.7 * before,
            "{weighting:?}: eval loss {before} -> {after}"
        );
        assert!(
            last < first,
            "{weighting:?}: training loss {first} -> {last}"
        );
    }
}

#[test]
fn shipped_configs_parse_and_the_tiny_one_trains_with_artefacts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    for name in ["ct_phantom_128.toml", "ct_phantom_128_nf32.toml"] {
        let big = TrainConfig::from_toml_file(&root.join(name)).unwrap();
        assert_eq!(big.model.image_size, 128, "{name}");
    }
    let cfg = TrainConfig::from_toml_file(&root.join("test_tiny.toml")).unwrap();
    let data = build_source(&cfg.data, cfg.model.image_size, cfg.seed).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(cfg, data, &Device::Cpu).unwrap();
    t.run(dir.path()).unwrap();
    assert_eq!(t.step(), 20);
    for f in [
        "model.safetensors",
        "train_state.safetensors",
        "loss.png",
        "samples_0000020.png",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let ck =
        medsgm::checkpoint::Checkpoint::load(&dir.path().join("model.safetensors"), &Device::Cpu)
            .unwrap();
    assert_eq!(ck.meta.step, 20);
}
