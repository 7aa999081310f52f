//! `medsgm train`'s run folder: `config.toml` and a step-0 training state are written before
//! the first step, so a run killed in its first step resumes to the result of an
//! uninterrupted run; `--force` leaves no file of the earlier run behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_medsgm")
}

/// The tiny training configuration (16², `steps` steps, one checkpoint at the end, no sample
/// grids).
fn config(dir: &Path, steps: u64) -> std::path::PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/test_tiny.toml"),
    )
    .unwrap()
    .replace("steps = 20", &format!("steps = {steps}"))
    .replace("ckpt_every = 10", "ckpt_every = 1000")
    .replace("sample_every = 20", "sample_every = 0");
    let p = dir.join("c.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn train(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(bin())
        .arg("train")
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap()
}

#[test]
fn a_run_killed_in_its_first_step_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d, 3);
    let full = train(&["--config", "c.toml", "--out-dir", "full"], d);
    assert!(
        full.status.success(),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );

    // the second run is killed as soon as its state file appears (before its first checkpoint)
    let mut child = Command::new(bin())
        .args(["train", "--config", "c.toml", "--out-dir", "cut"])
        .current_dir(d)
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = d.join("cut/train_state.safetensors");
    let started = Instant::now();
    while !state.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no state file within 120 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(d.join("cut/config.toml").is_file());
    assert!(
        !d.join("cut/model.safetensors").exists(),
        "the run finished before it was killed: the test proves nothing"
    );
    // a new run into the folder is refused; --resume finishes it
    let again = train(&["--config", "c.toml", "--out-dir", "cut"], d);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    let resumed = train(&["--config", "c.toml", "--out-dir", "cut", "--resume"], d);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    for file in ["train_log.csv", "model.safetensors", "config.toml"] {
        assert_eq!(
            std::fs::read(d.join("full").join(file)).unwrap(),
            std::fs::read(d.join("cut").join(file)).unwrap(),
            "{file} differs from the uninterrupted run's"
        );
    }
}

#[test]
fn force_starts_over_without_the_earlier_run_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d, 1);
    let first = train(&["--config", "c.toml", "--out-dir", "run"], d);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // a sample grid of the earlier run (this configuration writes none)
    std::fs::write(d.join("run/samples_0000500.png"), b"earlier run").unwrap();
    std::fs::write(d.join("run/notes.txt"), b"the user's").unwrap();
    let forced = train(&["--config", "c.toml", "--out-dir", "run", "--force"], d);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert!(!d.join("run/samples_0000500.png").exists());
    assert!(
        d.join("run/notes.txt").exists(),
        "a file that is not the run's was removed"
    );
    assert!(d.join("run/model.safetensors").exists());
}

/// A second `medsgm train` into a folder another process is training into is refused (exit 2,
/// naming the folder) and writes nothing there; the folder is free again once the lock goes.
#[test]
fn a_second_run_into_a_locked_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d, 1);
    let run = d.join("run");
    std::fs::create_dir(&run).unwrap();
    let holder = std::fs::File::open(&run).unwrap();
    holder.try_lock().unwrap();
    let second = train(&["--config", "c.toml", "--out-dir", "run"], d);
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("another medsgm run is training into"), "{err}");
    assert_eq!(
        std::fs::read_dir(&run).unwrap().count(),
        0,
        "it wrote into the folder"
    );
    drop(holder);
    let third = train(&["--config", "c.toml", "--out-dir", "run"], d);
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
}
