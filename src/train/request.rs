//! One `medsgm train` run as asked for ([`TrainRequest`]): the run folder claimed (see
//! [`RunFolder`]), the configuration's estimated memory checked, then denoising score-matching
//! training of the score network ([`crate::train::trainer`]), LSGM training for a configuration
//! with a `[vae]` table ([`crate::lsgm`]) or ScoreVAE encoder training for one with an
//! `[encoder]` table ([`crate::scorevae`]), new or resumed.

use crate::error::{invalid, InputContext};
use crate::io::memory::Budget;
use crate::lsgm::{LsgmConfig, LsgmTrainer};
use crate::model::device;
use crate::train::config::MAX_STEPS;
use crate::train::data::{build_source, DataConfig};
use crate::train::run_folder::{config_table, write_config, RunFolder};
use crate::train::trainer::{Trainer, STATE_FILE};
use crate::train::TrainConfig;
use anyhow::{Context, Result};

/// A training run as asked for.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// The configuration, the output folder and how an earlier run in it is treated.
    pub folder: RunFolder,
    /// With `resume`: restart the EMA of the weights at the current weights.
    pub reset_ema: bool,
    /// Overrides the configuration's total steps (LSGM: of stage 2).
    pub steps: Option<u64>,
    /// The budget the configuration's estimated training memory is checked against.
    pub budget: Budget,
}

impl TrainRequest {
    /// Refuses (invalid input) a run over the budget (see
    /// [`crate::train::run_folder::check_memory`]).
    fn check_memory(&self, networks: u64, data: &DataConfig, size: usize) -> Result<()> {
        crate::train::run_folder::check_memory(
            &self.folder.config,
            &self.budget,
            networks,
            data,
            size,
        )
    }

    /// Trains: a score model, an LSGM (`[vae]` configurations) or a ScoreVAE encoder
    /// (`[encoder]` configurations), into the run folder.
    pub fn run(&self) -> Result<()> {
        if let Some(steps) = self.steps.filter(|s| !(1..=MAX_STEPS).contains(s)) {
            return Err(invalid(format!(
                "--steps {steps} must be in 1..={MAX_STEPS}"
            )));
        }
        let doc = config_table(&self.folder.config)?;
        if doc.contains_key("vae") {
            return self.run_lsgm();
        }
        if crate::scorevae::ScoreVaeConfig::is_scorevae(&doc) {
            return self.run_scorevae();
        }
        let mut config = TrainConfig::from_toml_file(&self.folder.config).invalid_input()?;
        if let Some(steps) = self.steps {
            config.steps = steps;
        }
        let lock = self.folder.claim()?;
        let size = config.model.image_size;
        self.check_memory(config.memory_bytes(), &config.data, size)?;
        let device = device()?;
        let mut trainer = if self.folder.resume {
            let data = build_source(&config.data, size, config.seed).invalid_input()?;
            let mut t =
                Trainer::resume(&self.folder.resume_state()?, data, &device).invalid_input()?;
            t.continue_with(&config)
                .with_context(|| format!("--resume with {}", self.folder.config.display()))
                .invalid_input()?;
            if self.reset_ema {
                t.reset_ema()?;
            }
            t
        } else {
            let data = build_source(&config.data, size, config.seed).invalid_input()?;
            Trainer::new(config, data, &device)?
        };
        let n_params: usize = trainer.parameters().values().map(|t| t.elem_count()).sum();
        eprintln!(
            "training {} parameters on {} ({}), step {} of {}",
            n_params,
            trainer.describe_data(),
            if device.is_cpu() { "cpu" } else { "cuda" },
            trainer.step(),
            trainer.config().steps
        );
        let _lock = self.folder.start(lock)?;
        write_config(&self.folder.out_dir, trainer.config())?;
        if !self.folder.resume {
            // the step-0 state: a run killed in its first steps is resumable
            trainer.save_state(&self.folder.out_dir.join(STATE_FILE))?;
        }
        trainer.run(&self.folder.out_dir)
    }

    /// ScoreVAE encoder training against its frozen prior (`[encoder]` configurations,
    /// [`crate::scorevae::trainer`]).
    fn run_scorevae(&self) -> Result<()> {
        use crate::scorevae::trainer::ScoreVaeTrainer;
        let mut config =
            crate::scorevae::ScoreVaeConfig::from_toml_file(&self.folder.config).invalid_input()?;
        if let Some(steps) = self.steps {
            config.steps = steps;
        }
        if self.reset_ema {
            return Err(invalid(
                "--reset-ema does not apply to a ScoreVAE encoder (it keeps no EMA)",
            ));
        }
        let lock = self.folder.claim()?;
        self.check_memory(
            config.memory_bytes(),
            &config.data,
            config.encoder.image_size,
        )?;
        let device = device()?;
        let mut trainer = if self.folder.resume {
            ScoreVaeTrainer::resume(config, &self.folder.resume_state()?, &device)
                .with_context(|| format!("--resume with {}", self.folder.config.display()))
                .invalid_input()?
        } else {
            ScoreVaeTrainer::new(config, &device).invalid_input()?
        };
        let what = match &trainer.config().encoder_from {
            Some(from) => format!(
                "ScoreVAE+ correction parameters (encoder {} frozen)",
                from.display()
            ),
            None => "encoder parameters".to_owned(),
        };
        eprintln!(
            "ScoreVAE: training {} {what} against the frozen prior {}, step {} of {}",
            trainer.parameters(),
            trainer.config().prior.display(),
            trainer.step(),
            trainer.config().steps
        );
        let _lock = self.folder.start(lock)?;
        write_config(&self.folder.out_dir, trainer.config())?;
        if !self.folder.resume {
            trainer.save(&self.folder.out_dir)?;
        }
        trainer.run(&self.folder.out_dir)
    }

    /// LSGM training (`[vae]` configurations).
    fn run_lsgm(&self) -> Result<()> {
        let mut config = LsgmConfig::from_toml_file(&self.folder.config).invalid_input()?;
        if let Some(steps) = self.steps {
            config.prior_steps = steps;
        }
        let lock = self.folder.claim()?;
        self.check_memory(config.memory_bytes(), &config.data, config.vae.image_size)?;
        let device = device()?;
        let data =
            build_source(&config.data, config.vae.image_size, config.seed).invalid_input()?;
        let (mut trainer, recorded) = if self.folder.resume {
            let mut t =
                LsgmTrainer::resume(&self.folder.resume_state()?, data, &device).invalid_input()?;
            let resumed = t
                .config()
                .resumed_with(&config)
                .with_context(|| format!("--resume with {}", self.folder.config.display()))
                .invalid_input()?;
            t.set_prior_steps(resumed.prior_steps);
            if self.reset_ema {
                t.reset_ema()?;
            }
            (t, resumed)
        } else {
            (LsgmTrainer::new(config.clone(), data, &device)?, config)
        };
        eprintln!(
        "LSGM: training {} parameters on {} ({}), VAE step {} of {}, {:?} stage-2 step {} of {}",
        trainer.num_parameters(),
        trainer.describe_data(),
        if device.is_cpu() { "cpu" } else { "cuda" },
        trainer.vae_step(),
        trainer.config().vae_steps,
        trainer.config().stage2,
        trainer.prior_step(),
        trainer.config().prior_steps
    );
        let _lock = self.folder.start(lock)?;
        // the resumed run's configuration with the new data source it trains on
        write_config(&self.folder.out_dir, &recorded)?;
        if !self.folder.resume {
            trainer.save_state(&self.folder.out_dir.join(STATE_FILE))?;
        }
        trainer.run(&self.folder.out_dir)
    }
}
