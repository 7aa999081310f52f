//! The step loop shared by pixel-space and LSGM training: a progress bar (loss, it/s, ETA) on
//! stderr, checkpoints every `ckpt_every` steps and at the end (with a plain line of the mean
//! loss since the previous checkpoint, visible in logs where the bar is hidden), sample grids
//! every `sample_every` steps; and the CSV loss log written beside the checkpoint.

use anyhow::Context;

/// When a stage checkpoints and samples.
#[derive(Clone, Debug)]
pub struct StepSchedule {
    /// Stage name shown in the log lines ("" for single-stage runs).
    pub label: String,
    /// Steps of this stage in total.
    pub total: u64,
    /// Checkpoint every this many steps (and at `total`).
    pub ckpt_every: u64,
    /// Sample grid every this many steps (0 = never).
    pub sample_every: u64,
}

/// Runs `step` on `state` until `position(state) == schedule.total`; `step` returns the
/// batch loss of the step just taken, `save` writes the checkpoint, `sample` the grid.
pub fn drive<S>(
    state: &mut S,
    schedule: &StepSchedule,
    position: &dyn Fn(&S) -> u64,
    step: &mut dyn FnMut(&mut S) -> anyhow::Result<f64>,
    save: &dyn Fn(&S) -> anyhow::Result<()>,
    sample: &dyn Fn(&S) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let total = schedule.total;
    if position(state) >= total {
        return Ok(());
    }
    let bar = indicatif::ProgressBar::new(total).with_position(position(state));
    let prefix = if schedule.label.is_empty() {
        String::new()
    } else {
        format!("{} ", schedule.label)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{prefix}{{bar:30}} {{pos}}/{{len}} loss {{msg}} {{per_sec}} ETA {{eta}}"
        ))
        .context("progress template")?,
    );
    let mut recent = Vec::new();
    while position(state) < total {
        let loss = step(state)?;
        recent.push(loss);
        bar.set_message(format!("{loss:.4}"));
        bar.inc(1);
        let k = position(state);
        if k.is_multiple_of(schedule.ckpt_every) || k == total {
            // Read before `suspend`: it holds the bar's lock, so `bar.elapsed()` inside the
            // closure would deadlock.
            let elapsed = bar.elapsed().as_secs_f64();
            bar.suspend(|| -> anyhow::Result<()> {
                save(state)?;
                let mean = recent.iter().sum::<f64>() / recent.len() as f64;
                eprintln!("{prefix}step {k}/{total}  mean loss {mean:.4}  {elapsed:.0} s elapsed");
                Ok(())
            })?;
            recent.clear();
        }
        if schedule.sample_every > 0 && k.is_multiple_of(schedule.sample_every) {
            bar.suspend(|| sample(state))?;
        }
    }
    bar.finish();
    Ok(())
}

/// The training log as CSV: `step,loss` for one unnamed stage, else `stage,step,loss` rows
/// of every named stage in order.
pub fn loss_log_csv(stages: &[(&str, &[(u64, f64)])]) -> String {
    let single = stages.len() == 1 && stages[0].0.is_empty();
    let mut out = String::from(if single {
        "step,loss\n"
    } else {
        "stage,step,loss\n"
    });
    for (name, losses) in stages {
        for (step, loss) in losses.iter() {
            if single {
                out += &format!("{step},{loss}\n");
            } else {
                out += &format!("{name},{step},{loss}\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_checkpoints_on_schedule_and_log_formats() {
        let schedule = StepSchedule {
            label: "t".into(),
            total: 7,
            ckpt_every: 3,
            sample_every: 2,
        };
        let saves = std::cell::RefCell::new(Vec::new());
        let samples = std::cell::RefCell::new(Vec::new());
        let mut k = 1u64; // resumed after one step
        drive(
            &mut k,
            &schedule,
            &|k| *k,
            &mut |k| {
                *k += 1;
                Ok(*k as f64)
            },
            &|k| {
                saves.borrow_mut().push(*k);
                Ok(())
            },
            &|k| {
                samples.borrow_mut().push(*k);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(k, 7);
        assert_eq!(*saves.borrow(), vec![3, 6, 7]);
        assert_eq!(*samples.borrow(), vec![2, 4, 6]);
        assert_eq!(loss_log_csv(&[("", &[(1, 0.5)])]), "step,loss\n1,0.5\n");
        assert_eq!(
            loss_log_csv(&[("vae", &[(1, 2.0)]), ("prior", &[(1, 3.0)])]),
            "stage,step,loss\nvae,1,2\nprior,1,3\n"
        );
    }
}
