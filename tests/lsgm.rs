//! LSGM stack (issue 6): VAE and prior shapes, a tiny two-stage run lowers the NELBO, and the
//! checkpoint round trip.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use medsgm::lsgm::{
    sample, EncoderTime, LatentPrior, LsgmCheckpoint, LsgmConfig, LsgmTrainer, Stage2, Vae,
    VaeConfig,
};
use medsgm::nn::init::seeded_var_builder;
use medsgm::nn::NcsnppConfig;
use medsgm::train::data::FnSource;
use medsgm::train::DataConfig;
use medsgm_recon::lsgm::{EpsModel, LatentSchedule, TimeProposal, TimeSampler, Weighting};
use medsgm_recon::ode_sampler::{OdeConfig, OdeMethod};
use medsgm_recon::{Noise, ScoreModel, SdeConfig};

/// A CPU-sized configuration. Stage 1 uses β_KL = 0.1 (KL annealing, LSGM §7.6) so that the
/// latents differ visibly from N(0, I), and α starts at sigmoid(−2) ≈ 0.12 so that a few prior
/// steps can move the mixed score.
fn tiny_config() -> LsgmConfig {
    LsgmConfig {
        vae: VaeConfig {
            image_size: 64,
            latent_channels: 4,
            nf: 8,
            num_res_blocks: 1,
            log_sigma_init: -2.0,
        },
        prior: NcsnppConfig {
            nf: 8,
            ch_mult: vec![1, 2],
            num_res_blocks: 1,
            attn_resolutions: vec![],
            dropout: 0.0,
            fourier_scale: 16.0,
            image_size: 16,
            channels: 4,
            scale_by_sigma: false,
            positional: false,
        },
        sde: SdeConfig::geometric_vp(),
        prior_weighting: Weighting::Likelihood,
        time_proposal: TimeProposal::Importance,
        t_min: 0.0,
        mixing_logit_init: -2.0,
        data: DataConfig::PhantomEllipses { n_ellipses: 5 },
        batch_size: 4,
        vae_steps: 20,
        prior_steps: 20,
        stage2: Stage2::Disjoint,
        encoder_time: EncoderTime::Reweight,
        vae_lr: 2e-3,
        prior_lr: 5e-3,
        warmup: 0,
        grad_clip: 1.0,
        kl_weight: 0.1,
        ema: 0.99,
        ckpt_every: 1000,
        sample_every: 0,
        sample_n: 4,
        seed: 3,
    }
}

fn ellipses() -> Box<FnSource<impl Fn(u64) -> anyhow::Result<ndarray::Array2<f32>> + Send + Sync>> {
    Box::new(FnSource::new(11, "ellipses 64²", |s| {
        Ok(medsgm_operators::phantom::random_ellipses(64, s, 5))
    }))
}

#[test]
fn vae_and_prior_shapes() {
    let cfg = tiny_config();
    let dev = Device::Cpu;
    let map = VarMap::new();
    let vae = Vae::new(&cfg.vae, seeded_var_builder(&map, 0, &dev)).unwrap();
    let x = Tensor::zeros((2, 1, 64, 64), DType::F32, &dev).unwrap();
    let q = vae.encode(&x).unwrap();
    assert_eq!(q.mean.dims(), [2, 4, 16, 16]);
    assert_eq!(q.log_var.dims(), [2, 4, 16, 16]);
    let z = q.sample(&mut Noise::new(0)).unwrap();
    assert_eq!(vae.decode(&z).unwrap().dims(), [2, 1, 64, 64]);
    assert_eq!(vae.reconstruction_nll(&x, &z).unwrap().dims(), [2]);
    assert_eq!(q.entropy().unwrap().dims(), [2]);
    assert_eq!(q.kl_standard_normal().unwrap().dims(), [2]);

    let pmap = VarMap::new();
    let prior = LatentPrior::new(&cfg, seeded_var_builder(&pmap, 1, &dev)).unwrap();
    let sde = cfg.sde.build().unwrap();
    let model = prior.mixed(LatentSchedule::new(&cfg.sde).unwrap(), sde.as_ref(), false);
    let t = Tensor::new(&[0.3f32, 0.7], &dev).unwrap();
    assert_eq!(model.eps(&z, &t).unwrap().dims(), [2, 4, 16, 16]);
    assert_eq!(model.score(&z, &t).unwrap().dims(), [2, 4, 16, 16]);
    assert_eq!(prior.logit().dims(), [4]);
}

#[test]
fn tiny_runs_lower_the_nelbo_disjoint_and_joint() {
    let dev = Device::Cpu;
    let mut trainer = LsgmTrainer::new(tiny_config(), ellipses(), &dev).unwrap();
    let x = trainer.batch(10_000).unwrap(); // held-out images
    let (draws, seed) = (8, 99);
    let clock = std::time::Instant::now();
    let start = trainer.nelbo(&x, draws, seed).unwrap();
    for _ in 0..trainer.config().vae_steps {
        trainer.vae_step_once().unwrap();
    }
    let vae = trainer.nelbo(&x, draws, seed).unwrap();
    assert!(vae.vae() < start.vae(), "stage 1 did not lower the NELBO");
    // LSGM Fig. 2 on the VAE's latents: linear VPSDE, w_ll, cutoff 0.01, uniform vs IS t.
    let moments = |proposal| {
        let s = TimeSampler::new(&SdeConfig::vp(), Weighting::Likelihood, proposal, 0.01).unwrap();
        trainer.objective_moments(&x, &s, 16, 5).unwrap()
    };
    let (m_un, v_un) = moments(TimeProposal::Uniform);
    let (m_is, v_is) = moments(TimeProposal::Importance);
    println!(
        "VP w_ll objective on VAE latents: uniform {m_un:.1} (var {v_un:.1}), \
         IS {m_is:.1} (var {v_is:.1}), var ratio {:.1}",
        v_un / v_is
    );
    assert!(
        v_is < v_un,
        "IS did not reduce the variance on the VAE latents"
    );
    // Stage 2 twice from the same pretrained VAE: disjoint here, joint on a resumed copy.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train_state.safetensors");
    trainer.save_state(&path).unwrap();
    let mut joint = LsgmTrainer::resume(&path, ellipses(), &dev).unwrap();
    for _ in 0..trainer.config().prior_steps {
        trainer.prior_step_once().unwrap();
        joint.joint_step_once().unwrap();
    }
    let lsgm = trainer.nelbo(&x, draws, seed).unwrap();
    let end2end = joint.nelbo(&x, draws, seed).unwrap();
    let d = vae.dims as f64;
    println!(
        "{:.1} s; VAE NELBO (N(0,I) prior): {:.1} → {:.1} nats ({:.3} nats/dim); \
         LSGM NELBO before stage 2 {:.1} ± {:.1}, disjoint {:.1} ± {:.1} ({:.3} nats/dim), \
         joint {:.1} ± {:.1} ({:.3} nats/dim)",
        clock.elapsed().as_secs_f64(),
        start.vae(),
        vae.vae(),
        vae.vae() / d,
        vae.lsgm(),
        vae.cross_entropy_se,
        lsgm.lsgm(),
        lsgm.cross_entropy_se,
        lsgm.lsgm() / d,
        end2end.lsgm(),
        end2end.cross_entropy_se,
        end2end.lsgm() / d
    );
    assert_eq!(
        lsgm.vae(),
        vae.vae(),
        "disjoint stage 2 must not touch the VAE"
    );
    // Same seed ⇒ the same posterior, time and noise draws: a paired comparison.
    assert!(
        lsgm.lsgm() < vae.lsgm(),
        "disjoint stage 2 did not lower the NELBO"
    );
    assert!(
        end2end.lsgm() < vae.lsgm(),
        "joint stage 2 did not lower the NELBO"
    );

    let ode = OdeConfig {
        method: OdeMethod::Heun { steps: 6 },
        ..OdeConfig::default()
    };
    let cfg = trainer.config();
    let s = sample(trainer.vae(), trainer.prior(), cfg, 2, &ode, &dev).unwrap();
    assert_eq!(s.images.dims(), [2, 1, 64, 64]);
    assert_eq!(s.latents.dims(), [2, 4, 16, 16]);
    let values = s.images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(values.iter().all(|v| v.is_finite()));
    assert_eq!(
        s.nfe,
        2 * 6 + 1,
        "Heun: two evaluations per step, one Tweedie step"
    );
}

#[test]
fn checkpoint_round_trip() {
    let dev = Device::Cpu;
    let mut cfg = tiny_config();
    cfg.vae_steps = 1;
    cfg.prior_steps = 1;
    // Joint stage 2 with a w_un prior and a separate encoder t-draw (Alg. 2).
    cfg.stage2 = Stage2::Joint;
    cfg.encoder_time = EncoderTime::Separate;
    cfg.prior_weighting = Weighting::Unweighted;
    let mut trainer = LsgmTrainer::new(cfg, ellipses(), &dev).unwrap();
    let dir = tempfile::tempdir().unwrap();
    trainer.run(dir.path()).unwrap();
    let path = dir.path().join("lsgm.safetensors");
    let ck = LsgmCheckpoint::load(&path, &dev).unwrap();
    assert_eq!((ck.meta.vae_step, ck.meta.prior_step), (1, 1));
    let x = trainer.batch(5).unwrap();
    let a = trainer.vae().encode(&x).unwrap().mean;
    let b = ck.vae(&dev).unwrap().encode(&x).unwrap().mean;
    let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
    assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
    let prior = ck.prior(false, &dev).unwrap();
    let logit_diff = (prior.logit() - trainer.prior().logit())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert_eq!(logit_diff.to_scalar::<f32>().unwrap(), 0.0);
    ck.prior(true, &dev).unwrap();
    let state = dir.path().join("train_state.safetensors");
    let resumed = LsgmTrainer::resume(&state, ellipses(), &dev).unwrap();
    assert_eq!((resumed.vae_step(), resumed.prior_step()), (1, 1));
    assert!(
        LsgmTrainer::resume(&path, ellipses(), &dev).is_err(),
        "a model checkpoint is not a training state"
    );
    for file in [
        "train_log.csv",
        "loss.png",
        "loss_vae.png",
        "loss_prior.png",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    let log = std::fs::read_to_string(dir.path().join("train_log.csv")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(log.starts_with("stage,step,loss\nvae,1,"), "{log}");
}

/// All tensors of the checkpoint at `path` by name.
fn tensors(path: &std::path::Path) -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

#[test]
fn resume_continues_bit_for_bit() {
    // Interrupt in stage 1 and in (joint) stage 2: weights, EMA and Adam moments of both
    // optimisers must continue exactly as in the uninterrupted run.
    let dev = Device::Cpu;
    let mut cfg = tiny_config();
    cfg.vae_steps = 3;
    cfg.prior_steps = 3;
    cfg.stage2 = Stage2::Joint;
    cfg.ckpt_every = 2;
    cfg.warmup = 2;
    cfg.vae.image_size = 32;
    cfg.prior.image_size = 8;
    let ellipses = || {
        Box::new(FnSource::new(11, "ellipses 32²", |s| {
            Ok(medsgm_operators::phantom::random_ellipses(32, s, 5))
        }))
    };
    let full = tempfile::tempdir().unwrap();
    LsgmTrainer::new(cfg.clone(), ellipses(), &dev)
        .unwrap()
        .run(full.path())
        .unwrap();
    let part = tempfile::tempdir().unwrap();
    let mut first = cfg.clone();
    first.prior_steps = 1;
    let mut t = LsgmTrainer::new(first, ellipses(), &dev).unwrap();
    t.vae_step_once().unwrap();
    t.save_state(&part.path().join("train_state.safetensors"))
        .unwrap();
    let state = part.path().join("train_state.safetensors");
    // Resume in stage 1, stop after one stage-2 step, resume again and extend stage 2.
    LsgmTrainer::resume(&state, ellipses(), &dev)
        .unwrap()
        .run(part.path())
        .unwrap();
    let mut t = LsgmTrainer::resume(&state, ellipses(), &dev).unwrap();
    assert_eq!((t.vae_step(), t.prior_step()), (3, 1));
    t.set_prior_steps(3);
    t.run(part.path()).unwrap();
    let (a, b) = (
        tensors(&full.path().join("train_state.safetensors")),
        tensors(&part.path().join("train_state.safetensors")),
    );
    assert_eq!(a.len(), b.len());
    assert!(a.keys().any(|k| k.starts_with("adam.vae.m.")));
    assert!(a.keys().any(|k| k.starts_with("adam.prior.v.")));
    for (name, ta) in &a {
        let (va, vb) = (
            ta.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b[name].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert!(
            va.iter().zip(&vb).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name} differs after resuming"
        );
    }
    let log = |d: &tempfile::TempDir| std::fs::read_to_string(d.path().join("train_log.csv"));
    assert_eq!(log(&full).unwrap(), log(&part).unwrap());
}

#[test]
fn shipped_configs_parse_and_validate() {
    for name in ["lsgm_ct_64.toml", "lsgm_tiny.toml", "lsgm_mri_64.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join(name);
        LsgmConfig::from_toml_file(&path).unwrap();
    }
    let mut cfg = tiny_config();
    cfg.prior.channels = 3;
    assert!(
        cfg.validate().is_err(),
        "prior/latent channel mismatch accepted"
    );
    let mut cfg = tiny_config();
    cfg.sde = SdeConfig::sub_vp();
    assert!(cfg.validate().is_err(), "sub-VP has no LSGM schedule");
}

/// ‖A x − y‖ summed over two random-ellipse images at `size²` for the latent sampler without
/// (ζ = 0) and with (ζ = 1) data consistency through the decoder of a VAE pretrained for 10
/// steps: DC must lower the residual by at least 10 %.
fn assert_latent_dc_lowers_residual<T: medsgm_operators::Transform<In = f32>>(
    size: usize,
    op: &medsgm_operators::Subsampled<T>,
    steps: usize,
) {
    use medsgm::lsgm::{latent_solve, LatentDcConfig};
    use medsgm_operators::{LinearOperator, Scalar};
    let dev = Device::Cpu;
    let mut cfg = tiny_config();
    cfg.vae_steps = 10;
    cfg.vae.image_size = size;
    cfg.prior.image_size = size / 4;
    let data = Box::new(FnSource::new(11, "ellipses", move |s| {
        Ok(medsgm_operators::phantom::random_ellipses(size, s, 5))
    }));
    let mut trainer = LsgmTrainer::new(cfg.clone(), data, &dev).unwrap();
    for _ in 0..cfg.vae_steps {
        trainer.vae_step_once().unwrap();
    }
    let truth: Vec<_> = (0..2)
        .map(|i| medsgm_operators::phantom::random_ellipses(size, 500 + i, 5))
        .collect();
    let y: Vec<ndarray::Array1<T::Out>> = truth
        .iter()
        .map(|x| {
            op.forward(&x.clone().into_dyn().view())
                .into_dimensionality()
                .unwrap()
        })
        .collect();
    let residual = |step_size: f64| {
        let dc = LatentDcConfig {
            steps,
            step_size,
            seed: 4,
        };
        let rec = latent_solve(trainer.vae(), trainer.prior(), &cfg, op, &y, &dc, &dev).unwrap();
        let r: f64 = rec
            .images
            .iter()
            .zip(&y)
            .map(|(x, yi)| {
                let ax = op.forward(&x.clone().into_dyn().view());
                ax.iter()
                    .zip(yi)
                    .map(|(a, b)| (*a + b.scale(-1.0)).abs2())
                    .sum::<f64>()
            })
            .sum();
        (r.sqrt(), rec.nfe)
    };
    let (free, nfe_free) = residual(0.0);
    let (dc, nfe_dc) = residual(1.0);
    println!(
        "{size}²: ‖A x − y‖: unconditional {free:.3} ({nfe_free} NFE), latent DC {dc:.3} ({nfe_dc} NFE)"
    );
    assert!(
        dc < 0.9 * free,
        "data consistency did not lower the residual"
    );
}

#[test]
fn latent_data_consistency_lowers_the_measurement_residual_mri() {
    use medsgm_operators::{kspace_mask, Fft2, RealInput, Subsampled};
    let mask = kspace_mask::equispaced(64, 64, 4.0, 0.08)
        .unwrap()
        .into_dyn();
    let op = Subsampled::new(RealInput::new(Fft2::new(64, 64).unwrap()), mask).unwrap();
    assert_latent_dc_lowers_residual(64, &op, 20);
}

#[test]
fn latent_data_consistency_lowers_the_measurement_residual_sparse_view_ct() {
    use medsgm_operators::radon::{Radon, RadonGeometry};
    use medsgm_operators::Subsampled;
    // 32² images, 8 of 60 equispaced views over [0°, 180°) measured.
    let size = 32;
    let n_det = (std::f64::consts::SQRT_2 * size as f64).ceil() as usize;
    let radon = Radon::new(RadonGeometry::equispaced(size, 60, n_det)).unwrap();
    let mask = ndarray::Array2::from_shape_fn((60, n_det), |(v, _)| v % 8 == 0).into_dyn();
    let op = Subsampled::new(radon, mask).unwrap();
    assert_latent_dc_lowers_residual(size, &op, 10);
}

#[test]
fn ode_prior_likelihood_of_the_normal_mixture_is_the_normal_density() {
    // α = sigmoid(−30) ≈ 0: the prior is N(0, I), so log p(z₀) from the probability-flow ODE
    // must match log N(z₀; 0, I) up to the Hutchinson and ODE errors.
    let dev = Device::Cpu;
    let mut cfg = tiny_config();
    cfg.mixing_logit_init = -30.0;
    let trainer = LsgmTrainer::new(cfg, ellipses(), &dev).unwrap();
    let x = trainer.batch(0).unwrap().narrow(0, 0, 2).unwrap();
    let seed = 21;
    let (nelbos, log_priors, nfe) = trainer.nelbo_ode(&x, seed).unwrap();
    let nelbo = nelbos.iter().sum::<f64>() / nelbos.len() as f64;
    let log_prior = log_priors.iter().sum::<f64>() / log_priors.len() as f64;
    // The same posterior draw (first draw of the same stream) under N(0, I).
    let q = trainer.vae().encode(&x).unwrap();
    let z = q.sample(&mut Noise::new(seed)).unwrap();
    let d = z.dims()[1..].iter().product::<usize>() as f64;
    let sq: Vec<f32> = z
        .sqr()
        .unwrap()
        .flatten_from(1)
        .unwrap()
        .sum(1)
        .unwrap()
        .to_vec1()
        .unwrap();
    let normal = sq
        .iter()
        .map(|s| -0.5 * d * (2.0 * std::f64::consts::PI).ln() - 0.5 * *s as f64)
        .sum::<f64>()
        / sq.len() as f64;
    println!(
        "ODE log p(z₀) {log_prior:.2} vs log N(z₀; 0, I) {normal:.2} ({nfe} NFE); NELBO {nelbo:.1}"
    );
    assert!(
        (log_prior - normal).abs() < 0.01 * d,
        "{log_prior} vs {normal}"
    );
}
