//! Training: resume equals an uninterrupted run bit for bit; a tiny run lowers the DSM loss.

use candle_core::{Device, Tensor};
use medsgm::nn::NcsnppConfig;
use medsgm::train::data::build_source;
use medsgm::train::{DataConfig, DataSource, TrainConfig, Trainer, Weighting};
use medsgm_recon::learned_schedule::{GammaNet, LearnedSchedule};
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

/// A learned schedule over the SNR range of the default VP between t = 1e-5 and 1.
fn learned() -> SdeConfig {
    let (gamma_min, gamma_max) = LearnedSchedule::vp_range(0.1, 20.0, 1e-5);
    SdeConfig::Learned(LearnedSchedule {
        gamma_min,
        gamma_max,
        features: 16,
        weights: None,
    })
}

fn flat(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    t.parameters()
        .into_iter()
        .map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

/// `init_from` starts a run from a checkpoint's EMA weights (fine-tuning), with a different
/// seed and data; a checkpoint whose layers have other shapes is refused; a positional network
/// starts from a plain one as that network (zero weights on the positional channels).
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
    cfg.init_from = Some(ckpt.clone());
    let mut positional = cfg.clone();
    positional.model.positional = true;
    let pos = Trainer::new(positional, phantoms(5), &dev).unwrap();
    let x = Tensor::rand(0f32, 1.0, (2, 1, 16, 16), &dev).unwrap();
    let sigma = Tensor::new(&[0.5f32, 3.0], &dev).unwrap();
    let centres = Tensor::new(&[[5f32, -3.0], [0.0, 7.0]], &dev).unwrap();
    let plain = tuned.net().forward(&x, &sigma, false).unwrap();
    let max_abs = |t: &Tensor| {
        t.abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let scale = max_abs(&plain);
    let with_pos = pos
        .net()
        .forward_at(&x, Some(&centres), &sigma, false)
        .unwrap();
    let diff = max_abs(&(plain - with_pos).unwrap());
    assert!(diff <= 1e-5 * scale, "{diff} vs {scale}");
    cfg.model.nf = 16;
    let err = Trainer::new(cfg, phantoms(5), &dev)
        .err()
        .expect("shape mismatch");
    assert!(format!("{err:#}").contains("shape"), "{err:#}");
}

/// Interrupted and resumed runs equal an uninterrupted one bit for bit, for a fixed SDE and for
/// a learned schedule (whose weights and Adam moments are in the state file too).
#[test]
fn resume_continues_bit_for_bit() {
    let dev = Device::Cpu;
    for cfg in [
        tiny(4, SdeConfig::ve(8.0), Weighting::SigmaSquared),
        tiny(4, learned(), Weighting::Likelihood),
    ] {
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
        assert_eq!(ca.meta.sde, cb.meta.sde);
        for (n, t) in &ca.ema {
            assert_eq!(
                t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                cb.ema[n].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                "ema {n}"
            );
        }
    }
}

/// With `[sde] kind = "learned"` the schedule's weights move during training, γ stays
/// monotone between the fixed endpoints, and the checkpoint carries the trained schedule, which
/// the samplers use (the sample grid); other weightings are refused.
#[test]
fn learned_schedule_trains_and_is_saved_in_the_checkpoint() {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(12, learned(), Weighting::Likelihood);
    cfg.sample_every = 12;
    let mut t = Trainer::new(cfg.clone(), phantoms(3), &dev).unwrap();
    t.run(dir.path()).unwrap();
    assert!(dir.path().join("samples_0000012.png").is_file());
    let ck =
        medsgm::checkpoint::Checkpoint::load(&dir.path().join("model.safetensors"), &dev).unwrap();
    let SdeConfig::Learned(trained) = &ck.meta.sde else {
        panic!("checkpoint SDE {:?}", ck.meta.sde)
    };
    let initial = learned().build().unwrap().config();
    assert_ne!(ck.meta.sde, initial, "the schedule did not move");
    let net = GammaNet::new(trained).unwrap();
    let (lo, hi) = LearnedSchedule::vp_range(0.1, 20.0, 1e-5);
    assert!((net.gamma(0.0) - lo).abs() < 1e-9 && (net.gamma(1.0) - hi).abs() < 1e-9);
    assert!((0..100).all(|i| net.gamma_prime(i as f64 / 99.0) > 0.0));
    cfg.weighting = Weighting::SigmaSquared;
    let err = Trainer::new(cfg, phantoms(3), &dev).err().expect("refused");
    assert!(format!("{err:#}").contains("likelihood"), "{err:#}");
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
                    let batch = t.batch(1_000_000 + k).unwrap();
                    let mut rng = ChaCha8Rng::seed_from_u64(k);
                    t.dsm_loss(&batch, &mut rng, false)
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
    let runs: Vec<TrainConfig> = ["learned", "vp", "vp_sigma2"]
        .iter()
        .map(|v| {
            TrainConfig::from_toml_file(&root.join(format!("schedule_ct_32_{v}.toml"))).unwrap()
        })
        .collect();
    assert!(matches!(runs[0].sde, SdeConfig::Learned(_)));
    for r in &runs[1..] {
        assert_eq!(
            (&r.model, r.steps, r.seed),
            (&runs[0].model, runs[0].steps, runs[0].seed)
        );
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
