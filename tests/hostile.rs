//! The hostile-input suite of issue 17 ("Targets and tests"): a table of bad inputs and faults
//! for every subcommand, generated at test time from a few valid files that `medsgm phantom` /
//! `medsgm simulate` / `medsgm train` write in a fixture step (truncated and corrupted copies,
//! edited JSON sidecars and TOML configs, random bytes with a fixed seed, wrong shapes and
//! dtypes, zero-size files, symlinks, odd path characters, folders where files belong, outputs
//! equal to inputs, …).
//!
//! Every case runs the release binary in its own folder with a wall-clock timeout, an
//! address-space cap and one rayon thread, and must hold the CLI's contract:
//! - it exits with a code, never a signal (no panic, allocation abort, segfault or hang);
//! - stderr holds no panic, backtrace, allocation failure or Rust debug text;
//! - the code is the expected class (0; 2 for bad input; 1 for a runtime failure);
//! - an error names the offending file or flag and changes nothing on disk (no output file or
//!   folder, no partial or temporary file), and no input file ever changes;
//! - a batch run's `summary.json` agrees with the files and the exit code;
//! - a successful run's NPY outputs are finite.
//!
//! All failures are collected into one report, so a single run shows every broken case (their
//! folders are kept under `target/tmp/medsgm-hostile-*/cases/NNN/` with the command's stdout and
//! stderr). `MEDSGM_HOSTILE_FILTER=text` runs only the cases whose name contains `text`;
//! `MEDSGM_HOSTILE_VERBOSE=1` prints every case's exit code and first error line.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dicom::core::VR;
use dicom::dictionary_std::tags;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Cases run at once (the CI machine has 2 cores).
const WORKERS: usize = 2;
/// Wall-clock limit of one case (seconds) unless the case sets its own.
const TIMEOUT_S: u64 = 20;
/// Address-space cap of one case: a request for a multi-GB buffer must be refused with a
/// message before the allocation, not abort.
const MEMORY_CAP: u64 = 4 << 30;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Exit0,
    Exit2,
    Exit1,
    /// Only where either class is right (e.g. an output path the OS refuses).
    Exit2Or1,
    /// Generated end-to-end cases whose outcome is not known in advance: any clean exit
    /// (0 with finite outputs, or 2 / 1 with a message and nothing left behind).
    Clean,
}

enum Content {
    Bytes(Vec<u8>),
    Dir,
    Symlink(String),
}

struct Case {
    name: String,
    args: Vec<String>,
    files: Vec<(String, Content)>,
    expect: Expect,
    /// Error cases: stderr contains each entry (an entry `a|b` is satisfied by either).
    mention: Vec<String>,
    /// Ok cases: paths that must exist afterwards; error cases: paths that must not.
    outputs: Vec<String>,
    /// Batch runs: the output folder (its summary is checked; files may appear only in it).
    batch: Option<String>,
    /// Batch runs refused up front: the output folder must not be created.
    no_batch_output: bool,
    /// Input paths (prefixes) a successful run may legitimately change (an overwritten
    /// earlier output, a resumed run).
    mutable: Vec<String>,
    /// Text that must not appear in stdout, stderr, new file names or new JSON/CSV files
    /// (input names under `--anonymize`).
    forbid: Vec<String>,
    timeout: u64,
}

fn case(name: &str, expect: Expect, args: &str) -> Case {
    Case {
        name: name.to_string(),
        args: args.split_whitespace().map(str::to_string).collect(),
        files: Vec::new(),
        expect,
        mention: Vec::new(),
        outputs: Vec::new(),
        batch: None,
        no_batch_output: false,
        mutable: Vec::new(),
        forbid: Vec::new(),
        timeout: TIMEOUT_S,
    }
}

impl Case {
    /// Appends arguments one by one (for arguments holding spaces).
    fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
    fn file(mut self, path: &str, bytes: Vec<u8>) -> Self {
        self.files.push((path.to_string(), Content::Bytes(bytes)));
        self
    }
    fn text(self, path: &str, text: &str) -> Self {
        self.file(path, text.as_bytes().to_vec())
    }
    fn dir(mut self, path: &str) -> Self {
        self.files.push((path.to_string(), Content::Dir));
        self
    }
    fn link(mut self, path: &str, target: &str) -> Self {
        self.files
            .push((path.to_string(), Content::Symlink(target.to_string())));
        self
    }
    /// Copies fixtures under their own names.
    fn fix(mut self, fx: &Fixtures, names: &[&str]) -> Self {
        for n in names {
            self = self.file(n, fx.get(n));
        }
        self
    }
    /// Copies fixture `name` to `dest`.
    fn fix_as(self, fx: &Fixtures, name: &str, dest: &str) -> Self {
        self.file(dest, fx.get(name))
    }
    fn mention(mut self, m: &str) -> Self {
        self.mention.push(m.to_string());
        self
    }
    fn out(mut self, p: &str) -> Self {
        self.outputs.push(p.to_string());
        self
    }
    fn batch(mut self, out: &str) -> Self {
        self.batch = Some(out.to_string());
        self
    }
    fn refused_up_front(mut self) -> Self {
        self.no_batch_output = true;
        self
    }
    fn mutable(mut self, prefix: &str) -> Self {
        self.mutable.push(prefix.to_string());
        self
    }
    fn forbid(mut self, text: &str) -> Self {
        self.forbid.push(text.to_string());
        self
    }
    fn timeout(mut self, s: u64) -> Self {
        self.timeout = s;
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures: valid files written by the binary once, kept in memory.

struct Fixtures {
    files: BTreeMap<String, Vec<u8>>,
}

impl Fixtures {
    fn get(&self, name: &str) -> Vec<u8> {
        self.files
            .get(name)
            .unwrap_or_else(|| panic!("no fixture {name}"))
            .clone()
    }
    fn text(&self, name: &str) -> String {
        String::from_utf8(self.get(name)).unwrap()
    }
    /// A fixture JSON file after `edit`.
    fn json(&self, name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(&self.get(name)).unwrap();
        edit(&mut v);
        serde_json::to_vec_pretty(&v).unwrap()
    }
    /// A fixture JSON file with the raw text `from` replaced by `to` (for values JSON cannot
    /// hold, such as NaN).
    fn json_raw(&self, name: &str, from: &str, to: &str) -> Vec<u8> {
        let t = String::from_utf8(self.json(name, |_| {})).unwrap();
        assert!(t.contains(from), "{name} has no {from}");
        t.replacen(from, to, 1).into_bytes()
    }
    /// The first `n` bytes of a fixture.
    fn head(&self, name: &str, n: usize) -> Vec<u8> {
        let b = self.get(name);
        b[..n.min(b.len())].to_vec()
    }
    /// A fixture with `count` bytes from `at` on overwritten by seeded random bytes.
    fn corrupt(&self, name: &str, at: usize, count: usize, seed: u64) -> Vec<u8> {
        let mut b = self.get(name);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for x in b.iter_mut().skip(at).take(count) {
            *x = rng.random();
        }
        b
    }
    /// The data bytes of an NPY fixture (after its header).
    fn npy_data(&self, name: &str) -> Vec<u8> {
        let b = self.get(name);
        let (hl, start) = if b[6] == 1 {
            (u16::from_le_bytes([b[8], b[9]]) as usize, 10)
        } else {
            (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
        };
        b[start + hl..].to_vec()
    }
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random()).collect()
}

/// An NPY (version 1) file with the header dictionary `dict` and the raw `data`.
fn npy_raw(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A little-endian float32 NPY file of `shape` with `values` (cycled).
fn npy_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let n: usize = shape.iter().product();
    let data: Vec<u8> = (0..n)
        .flat_map(|i| values[i % values.len()].to_le_bytes())
        .collect();
    npy_raw(
        &format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}",
            shape_text(shape)
        ),
        &data,
    )
}

/// A smooth 2-D test image in [0, 1] of `h` × `w` (values only).
fn smooth(h: usize, w: usize) -> Vec<f32> {
    (0..h * w)
        .map(|i| {
            let (y, x) = ((i / w) as f32, (i % w) as f32);
            0.5 + 0.4 * ((x * 0.3).sin() * (y * 0.2).cos())
        })
        .collect()
}

/// A single-file NIfTI-1 volume (float32, x fastest) with dims `dim` as written into the
/// header (so negative or inconsistent values can be written) and `data` appended.
fn nifti(dim: [i16; 4], data: &[f32]) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    let mut dims = [1i16; 8];
    dims[..4].copy_from_slice(&dim);
    for (k, d) in dims.iter().enumerate() {
        h[40 + 2 * k..42 + 2 * k].copy_from_slice(&d.to_le_bytes());
    }
    h[70..72].copy_from_slice(&16i16.to_le_bytes()); // float32
    h[72..74].copy_from_slice(&32i16.to_le_bytes());
    for k in 0..8 {
        h[76 + 4 * k..80 + 4 * k].copy_from_slice(&1f32.to_le_bytes());
    }
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[112..116].copy_from_slice(&1f32.to_le_bytes());
    h[123] = 2; // mm
    h[254..256].copy_from_slice(&1i16.to_le_bytes()); // sform
    for (row, at) in [280usize, 296, 312].into_iter().enumerate() {
        for c in 0..4 {
            let v = if c == row { 1f32 } else { 0f32 };
            h[at + 4 * c..at + 4 * c + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    for v in data {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h
}

/// A DICOM file with one element replaced (`value` parsed for the VR: US as a number).
fn dicom_edit(bytes: &[u8], tag: dicom::core::Tag, vr: VR, value: &str) -> Vec<u8> {
    use dicom::core::value::PrimitiveValue;
    use dicom::core::DataElement;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.dcm");
    std::fs::write(&p, bytes).unwrap();
    let mut obj = dicom::object::open_file(&p).unwrap();
    let v = if vr == VR::US {
        PrimitiveValue::from(value.parse::<u16>().unwrap())
    } else {
        PrimitiveValue::from(value)
    };
    obj.put(DataElement::new(tag, vr, v));
    obj.write_to_file(&p).unwrap();
    std::fs::read(&p).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_medsgm")
}

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

fn fixture_run(args: &[&str], cwd: &Path) {
    let o = Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("cannot run medsgm");
    assert!(
        o.status.success(),
        "fixture step medsgm {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The tiny training configuration of the suite (16², 2 steps).
fn tiny_config() -> String {
    std::fs::read_to_string(repo("configs/test_tiny.toml"))
        .unwrap()
        .replace("steps = 20", "steps = 2")
        .replace("ckpt_every = 10", "ckpt_every = 1")
        .replace("sample_every = 20", "sample_every = 2")
        .replace("sample_steps = 10", "sample_steps = 2")
}

fn make_fixtures(dir: &Path) -> Fixtures {
    let run = |a: &str| fixture_run(&a.split_whitespace().collect::<Vec<_>>(), dir);
    run("phantom --kind ellipses --size 32 --seed 0 --out g32.npy");
    run("phantom --kind ellipses --size 32 --seed 5 --out g32b.npy");
    run("phantom --kind ellipses --size 16 --seed 1 --out g16.npy");
    run("phantom --kind shepp-logan --size 64 --out s64.npy");
    run("phantom --kind ellipses --size 32 --bit-depth 8 --out g32.png");
    run("phantom --kind ellipses --size 32 --out g32.nii.gz");
    run("phantom --kind anatomical --size 32 --units hu --seed 2 --out hu32.npy");
    run("phantom --kind anatomical --size 32 --units hu --metal hip-rods --seed 3 --out met32.npy");
    run("simulate ct -i g32.npy -o ct32.npy");
    run("simulate ct -i s64.npy --views 23 -o ct64.npy");
    run("simulate mri -i g32.npy -o mri32.npy");
    run("simulate ct -i g32.npy --geometry fan --views 23 --full-views 360 -o fan32.npy");
    run("simulate mar -i met32.npy -o mar32.npy");
    std::fs::write(dir.join("tt.toml"), tiny_config()).unwrap();
    run("train --config tt.toml --out-dir run");

    let mut files = BTreeMap::new();
    for entry in walk(dir) {
        let p = dir.join(&entry);
        if p.is_file() {
            files.insert(entry, std::fs::read(&p).unwrap());
        }
    }
    for (name, rel) in [
        ("ct.dcm", "tests/fixtures/dicom/ct_un_rescale.dcm"),
        ("sr.dcm", "tests/fixtures/dicom/sr.dcm"),
        ("s0.dcm", "tests/fixtures/dicom/series/f00.dcm"),
        ("s1.dcm", "tests/fixtures/dicom/series/f27.dcm"),
        ("s2.dcm", "tests/fixtures/dicom/series/f54.dcm"),
    ] {
        files.insert(name.to_string(), std::fs::read(repo(rel)).unwrap());
    }
    // A 3-slice volume of the 32² phantom, as NPY [3, 32, 32] and NIfTI [32, 32, 3].
    let g = Fixtures {
        files: files.clone(),
    }
    .npy_data("g32.npy");
    let g: Vec<f32> = g
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let vol: Vec<f32> = (0..3).flat_map(|_| g.iter().copied()).collect();
    files.insert("vol.npy".into(), npy_f32(&[3, 32, 32], &vol));
    files.insert("vol.nii".into(), nifti([3, 32, 32, 3], &vol));
    files.insert("vol.nii.gz".into(), gzip(&nifti([3, 32, 32, 3], &vol)));
    Fixtures { files }
}

// ---------------------------------------------------------------------------------------------
// Running and checking one case.

/// Every entry under `root` (relative paths, `/`-separated; symlinks listed, not followed).
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            let s = r.to_string_lossy().into_owned();
            if let Ok(ft) = e.file_type() {
                if ft.is_dir() {
                    stack.push(r);
                }
            }
            out.push(s);
        }
    }
    out.sort();
    out
}

/// Content hashes (FNV-1a) of the regular files under `root`.
fn snapshot(root: &Path) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for rel in walk(root) {
        let p = root.join(&rel);
        if std::fs::symlink_metadata(&p)
            .map(|m| m.is_file())
            .unwrap_or(false)
        {
            let bytes = std::fs::read(&p).unwrap_or_default();
            let mut h: u64 = 0xcbf29ce484222325;
            for b in bytes {
                h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
            }
            m.insert(rel, h);
        }
    }
    m
}

fn setup(work: &Path, c: &Case) {
    std::fs::create_dir_all(work).unwrap();
    for (rel, content) in &c.files {
        let p = work.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        match content {
            Content::Bytes(b) => std::fs::write(&p, b).unwrap(),
            Content::Dir => std::fs::create_dir_all(&p).unwrap(),
            Content::Symlink(t) => std::os::unix::fs::symlink(t, &p).unwrap(),
        }
    }
}

struct Outcome {
    stdout: String,
    code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    stderr: String,
    seconds: f64,
}

fn execute(c: &Case, work: &Path, logs: &Path) -> Outcome {
    let out_path = logs.join("stdout");
    let err_path = logs.join("stderr");
    let mut cmd = Command::new(bin());
    cmd.args(&c.args)
        .current_dir(work)
        .env("RAYON_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: MEMORY_CAP as libc::rlim_t,
                rlim_max: MEMORY_CAP as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // No core files from crashing cases.
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("cannot start medsgm");
    let deadline = start + Duration::from_secs(c.timeout);
    let (status, timed_out) = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break (s, false);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break (child.wait().unwrap(), true);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    if let Ok(mut f) = std::fs::File::open(&err_path) {
        let mut b = Vec::new();
        let _ = f.read_to_end(&mut b);
        stderr = String::from_utf8_lossy(&b).into_owned();
    }
    Outcome {
        stdout: String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default()).into_owned(),
        code: status.code(),
        signal: status.signal(),
        timed_out,
        stderr,
        seconds: start.elapsed().as_secs_f64(),
    }
}

const BANNED: &[&str] = &[
    "panicked at",
    "RUST_BACKTRACE",
    "stack backtrace",
    "memory allocation of",
    "Segmentation",
    "Io(Kind(",
    "Os { code",
    "Custom { kind",
];

fn is_temporary(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.contains(".medsgm-tmp") || base.starts_with(".tmp") || base.ends_with(".tmp")
}

/// NPY outputs of a successful run must hold finite values.
fn check_finite(path: &Path, problems: &mut Vec<String>) {
    use medsgm::io::npy::{read_npy, NpyArray};
    match read_npy(path) {
        Ok(NpyArray::F32(a)) => {
            if a.iter().any(|v| !v.is_finite()) {
                problems.push(format!("{} holds non-finite values", path.display()));
            }
        }
        Ok(NpyArray::F64(a)) => {
            if a.iter().any(|v| !v.is_finite()) {
                problems.push(format!("{} holds non-finite values", path.display()));
            }
        }
        Ok(NpyArray::C64(a)) => {
            if a.iter().any(|v| !v.re.is_finite() || !v.im.is_finite()) {
                problems.push(format!("{} holds non-finite values", path.display()));
            }
        }
        Ok(_) => {}
        Err(e) => problems.push(format!("output {} does not read: {e:#}", path.display())),
    }
}

/// A batch run's summary must exist once the output folder holds anything new, agree with
/// the files and the exit code, and list no output that is missing or leave one unlisted.
/// Entries that existed before the run (and did not change) are the user's, not the run's.
fn check_summary(
    _c: &Case,
    work: &Path,
    out: &str,
    code: Option<i32>,
    before: &BTreeMap<String, u64>,
    before_entries: &BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let dir = work.join(out);
    let after = snapshot(work);
    let fresh = |name: &str| {
        let rel = format!("{out}/{name}");
        !before_entries.contains(&rel) || before.get(&rel) != after.get(&rel)
    };
    let entries: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let new: Vec<&String> = entries.iter().filter(|e| fresh(e)).collect();
    let summaries: Vec<&String> = new
        .iter()
        .copied()
        .filter(|n| n.starts_with("summary") && n.ends_with(".json"))
        .collect();
    if summaries.is_empty() {
        if !new.is_empty() {
            problems.push(format!("batch output {out}/ gained {new:?} but no summary"));
        }
        return;
    }
    let mut listed = BTreeSet::new();
    let (mut worst, mut any) = (0, false);
    for s in summaries {
        let text = std::fs::read_to_string(dir.join(s)).unwrap_or_default();
        let v: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{out}/{s} is not JSON: {e}"));
                continue;
            }
        };
        let Some(files) = v["files"].as_array() else {
            problems.push(format!("{out}/{s} has no files list"));
            continue;
        };
        let count = |st: &str| files.iter().filter(|f| f["status"] == st).count() as u64;
        for st in ["ok", "failed", "skipped"] {
            if v[st].as_u64() != Some(count(st)) {
                problems.push(format!(
                    "{out}/{s}: \"{st}\" is {} but {} records say so",
                    v[st],
                    count(st)
                ));
            }
        }
        for f in files {
            any = true;
            let input = f["input"].as_str().unwrap_or("?");
            let outputs: Vec<&str> = f["outputs"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for o in &outputs {
                listed.insert(
                    Path::new(o)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
            }
            match f["status"].as_str() {
                Some("ok") => {
                    if outputs.is_empty() {
                        problems.push(format!("{out}/{s}: {input} ok without outputs"));
                    }
                    for o in &outputs {
                        if !work.join(o).exists() {
                            problems.push(format!("{out}/{s}: {input} lists missing {o}"));
                        }
                    }
                    if let Some(m) = f["metrics"].as_object() {
                        for (k, x) in m {
                            if let Some(x) = x.as_f64() {
                                if !x.is_finite()
                                    || (k.contains("psnr") && !(-50.0..=300.0).contains(&x))
                                {
                                    problems.push(format!(
                                        "{out}/{s}: {input} has an implausible metric {k} = {x}"
                                    ));
                                }
                            }
                        }
                    }
                }
                Some("failed") => {
                    let ec = f["error_code"].as_i64().unwrap_or(-1);
                    if ec != 1 && ec != 2 {
                        problems.push(format!("{out}/{s}: {input} failed with error_code {ec}"));
                    }
                    worst = worst.max(if ec == 2 { 2 } else { 1 });
                    for o in &outputs {
                        if work.join(o).exists() {
                            problems.push(format!("{out}/{s}: failed {input} left its output {o}"));
                        }
                    }
                }
                Some("skipped") => {}
                other => problems.push(format!("{out}/{s}: {input} has status {other:?}")),
            }
        }
    }
    let _ = any;
    for e in &new {
        let summary_file = e.starts_with("summary") && e.ends_with(".json");
        if !summary_file && !listed.contains(*e) {
            problems.push(format!("{out}/{e} is in no summary record"));
        }
    }
    let want = match worst {
        2 => 2,
        1 => 1,
        _ => 0,
    };
    if code != Some(want) && code.is_some() {
        problems.push(format!(
            "exit code {code:?} disagrees with the summary (worst failure class {want})"
        ));
    }
}

fn run_case(c: &Case, root: &Path, index: usize) -> (Vec<String>, f64) {
    let base = root.join(format!("{index:03}"));
    let work = base.join("w");
    setup(&work, c);
    let before_entries: BTreeSet<String> = walk(&work).into_iter().collect();
    let before = snapshot(&work);
    let o = execute(c, &work, &base);
    let mut problems = Vec::new();
    if o.timed_out {
        problems.push(format!("hang: killed after {} s", c.timeout));
    } else if let Some(sig) = o.signal {
        problems.push(format!("killed by signal {sig} (crash or abort)"));
    }
    for b in BANNED {
        if o.stderr.contains(b) {
            problems.push(format!("stderr contains {b:?}"));
        }
    }
    let class_ok = matches!(
        (c.expect, o.code),
        (Expect::Exit0, Some(0))
            | (Expect::Exit2, Some(2))
            | (Expect::Exit1, Some(1))
            | (Expect::Exit2Or1, Some(1 | 2))
            | (Expect::Clean, Some(0..=2))
    );
    if !o.timed_out && o.signal.is_none() && !class_ok {
        problems.push(format!(
            "expected {:?}, got exit code {:?}",
            c.expect, o.code
        ));
    }
    let failed_run = o.code != Some(0);
    if failed_run && o.code.is_some() {
        if o.stderr.trim().len() < 12 {
            problems.push("error without a message".into());
        }
        for m in &c.mention {
            if !m.split('|').any(|alt| o.stderr.contains(alt)) {
                problems.push(format!("error does not mention {m:?}"));
            }
        }
    }
    // inputs never change
    let after = snapshot(&work);
    for (rel, h) in &before {
        if c.mutable.iter().any(|m| rel.starts_with(m.as_str())) {
            continue;
        }
        match after.get(rel) {
            None => problems.push(format!("input {rel} was removed")),
            Some(a) if a != h => problems.push(format!("input {rel} was changed")),
            _ => {}
        }
    }
    let new_entries: Vec<String> = walk(&work)
        .into_iter()
        .filter(|e| !before_entries.contains(e))
        .collect();
    for e in &new_entries {
        if is_temporary(e) {
            problems.push(format!("temporary file {e} left behind"));
        }
    }
    for f in &c.forbid {
        if o.stdout.contains(f.as_str()) || o.stderr.contains(f.as_str()) {
            problems.push(format!("{f:?} appears in the output text"));
        }
        for e in &new_entries {
            if e.contains(f.as_str()) {
                problems.push(format!("{f:?} appears in the new path {e}"));
            }
            if e.ends_with(".json") || e.ends_with(".csv") {
                let text = std::fs::read_to_string(work.join(e)).unwrap_or_default();
                if text.contains(f.as_str()) {
                    problems.push(format!("{f:?} appears in {e}"));
                }
            }
        }
    }
    if let Some(out) = &c.batch {
        let outside: Vec<&String> = new_entries
            .iter()
            .filter(|e| !(*e == out || e.starts_with(&format!("{out}/"))))
            .filter(|e| !c.outputs.contains(e))
            .collect();
        if !outside.is_empty() && failed_run {
            problems.push(format!("error left files outside {out}/: {outside:?}"));
        }
        if c.no_batch_output && new_entries.iter().any(|e| e == out) {
            problems.push(format!("refused batch created its output folder {out}/"));
        }
        if !o.timed_out && o.signal.is_none() {
            check_summary(
                c,
                &work,
                out,
                o.code,
                &before,
                &before_entries,
                &mut problems,
            );
        } else if !new_entries.is_empty() {
            problems.push(format!("crashed batch left {new_entries:?}"));
        }
    } else if failed_run && !new_entries.is_empty() {
        problems.push(format!("error left output behind: {new_entries:?}"));
    }
    if matches!(c.expect, Expect::Exit0 | Expect::Clean) && o.code == Some(0) {
        for p in &c.outputs {
            if std::fs::symlink_metadata(work.join(p)).is_err() {
                problems.push(format!("expected output {p} missing"));
            }
        }
        for e in &new_entries {
            if e.ends_with(".npy") {
                check_finite(&work.join(e), &mut problems);
            }
        }
    } else if c.expect != Expect::Exit0 && failed_run {
        for p in &c.outputs {
            if !before_entries.contains(p) && std::fs::symlink_metadata(work.join(p)).is_ok() {
                problems.push(format!("error wrote {p}"));
            }
        }
    }
    if std::env::var_os("MEDSGM_HOSTILE_VERBOSE").is_some() {
        let first = o.stderr.lines().find(|l| l.contains("error")).unwrap_or("");
        eprintln!("[{index:03}] {} -> {:?}: {first}", c.name, o.code);
    }
    if !problems.is_empty() {
        let tail: String = {
            let t = o.stderr.trim();
            let start = t.len().saturating_sub(600);
            let start = (start..=t.len())
                .find(|&i| t.is_char_boundary(i))
                .unwrap_or(t.len());
            t[start..].to_string()
        };
        problems.push(format!("stderr: {tail}"));
    } else {
        let _ = std::fs::remove_dir_all(&base);
    }
    (problems, o.seconds)
}

// ---------------------------------------------------------------------------------------------
// The cases.

use Expect::{Exit0, Exit1, Exit2, Exit2Or1};

fn phantom_cases(v: &mut Vec<Case>) {
    let p = "phantom --kind shepp-logan";
    v.push(
        case(
            "phantom size 0",
            Exit2,
            &format!("{p} --size 0 --out x.npy"),
        )
        .mention("--size"),
    );
    v.push(
        case(
            "phantom size 1e6",
            Exit2,
            &format!("{p} --size 1000000 --out x.npy"),
        )
        .mention("--size"),
    );
    v.push(
        case(
            "phantom size 70000 (4096² bound)",
            Exit2,
            &format!("{p} --size 70000 --out x.npy"),
        )
        .mention("--size"),
    );
    v.push(
        case(
            "phantom size negative",
            Exit2,
            &format!("{p} --size=-5 --out x.npy"),
        )
        .mention("--size"),
    );
    v.push(
        case(
            "phantom size not a number",
            Exit2,
            &format!("{p} --size 3e --out x.npy"),
        )
        .mention("--size"),
    );
    v.push(
        case(
            "phantom size u64 overflow",
            Exit2,
            &format!("{p} --size 99999999999999999999999 --out x.npy"),
        )
        .mention("--size"),
    );
    v.push(
        case(
            "phantom unknown kind",
            Exit2,
            "phantom --kind banana --out x.npy",
        )
        .mention("banana"),
    );
    v.push(
        case(
            "phantom seed negative",
            Exit2,
            "phantom --kind ellipses --seed=-1 --size 16 --out x.npy",
        )
        .mention("--seed"),
    );
    v.push(
        case(
            "phantom seed u64 max",
            Exit0,
            "phantom --kind ellipses --seed 18446744073709551615 --size 16 --out x.npy",
        )
        .out("x.npy"),
    );
    v.push(
        case(
            "phantom n-ellipses huge",
            Exit2,
            "phantom --kind ellipses --n-ellipses 1000000000 --size 16 --out x.npy",
        )
        .mention("--n-ellipses"),
    );
    v.push(
        case(
            "phantom n-ellipses with shepp-logan",
            Exit2,
            "phantom --kind shepp-logan --n-ellipses 3 --size 16 --out x.npy",
        )
        .mention("--n-ellipses"),
    );
    v.push(
        case(
            "phantom metal with ellipses",
            Exit2,
            "phantom --kind ellipses --metal hip-rods --size 16 --out x.npy",
        )
        .mention("--metal"),
    );
    v.push(
        case(
            "phantom unknown suffix",
            Exit2,
            &format!("{p} --size 16 --out x.tiff"),
        )
        .mention("x.tiff"),
    );
    v.push(
        case(
            "phantom no suffix",
            Exit2,
            &format!("{p} --size 16 --out x"),
        )
        .mention("x"),
    );
    v.push(
        case(
            "phantom missing parent folder",
            Exit2,
            &format!("{p} --size 16 --out nope/x.npy"),
        )
        .mention("nope"),
    );
    v.push(
        case(
            "phantom out is a folder",
            Exit2Or1,
            &format!("{p} --size 16 --out d.npy"),
        )
        .dir("d.npy")
        .mention("d.npy"),
    );
    v.push(
        case(
            "phantom out parent is a file",
            Exit2Or1,
            &format!("{p} --size 16 --out f/x.npy"),
        )
        .text("f", "x")
        .mention("f/x.npy|f"),
    );
    v.push(
        case(
            "phantom output cannot be written (/proc)",
            Exit1,
            &format!("{p} --size 16 --out /proc/medsgm-hostile.npy"),
        )
        .mention("/proc/medsgm-hostile.npy"),
    );
    v.push(
        case(
            "phantom odd path characters",
            Exit0,
            &format!("{p} --size 16 --out"),
        )
        .arg("dir with space/ü ñ #%&'.npy")
        .dir("dir with space")
        .out("dir with space/ü ñ #%&'.npy"),
    );
    v.push(
        case(
            "phantom path starting with a dash",
            Exit0,
            &format!("{p} --size 16 --out=-x.npy"),
        )
        .out("-x.npy"),
    );
    v.push(
        case(
            "phantom overwrites an earlier output",
            Exit0,
            &format!("{p} --size 16 --out x.npy"),
        )
        .text("x.npy", "old")
        .mutable("x.npy")
        .out("x.npy"),
    );
    v.push(
        case(
            "phantom png inverted window",
            Exit2,
            &format!("{p} --size 16 --window 1,0 --out x.png"),
        )
        .mention("--window"),
    );
    v.push(
        case(
            "phantom png NaN window",
            Exit2,
            &format!("{p} --size 16 --window nan,1 --out x.png"),
        )
        .mention("--window"),
    );
    v.push(
        case(
            "phantom window on npy output",
            Exit2,
            &format!("{p} --size 16 --window 0,1 --out x.npy"),
        )
        .mention("--window"),
    );
    v.push(
        case(
            "phantom bit depth 12",
            Exit2,
            &format!("{p} --size 16 --bit-depth 12 --out x.png"),
        )
        .mention("--bit-depth|12"),
    );
    v.push(
        case(
            "phantom hu units on shepp-logan",
            Exit2,
            &format!("{p} --size 16 --units hu --out x.npy"),
        )
        .mention("--units"),
    );
    v.push(
        case(
            "phantom size 1",
            Exit2,
            &format!("{p} --size 1 --out x.nii.gz"),
        )
        .mention("--size"),
    );
    v.push(
        case(
            "phantom replaces a dangling symlink",
            Exit0,
            &format!("{p} --size 16 --out l.npy"),
        )
        .link("l.npy", "nowhere/x.npy")
        .out("l.npy"),
    );
}

fn simulate_cases(v: &mut Vec<Case>, fx: &Fixtures) {
    let ct = |name: &str, e: Expect, extra: &str| {
        case(name, e, &format!("simulate ct -i g32.npy -o m.npy {extra}"))
            .fix(fx, &["g32.npy"])
            .out("m.npy")
            .out("m.json")
    };
    v.push(ct("simulate ct valid", Exit0, ""));
    v.push(
        ct(
            "simulate ct det-spacing 1e-30",
            Exit2,
            "--det-spacing 1e-30",
        )
        .mention("--det-spacing|det_spacing"),
    );
    v.push(
        ct("simulate ct det-spacing 1e-6", Exit2, "--det-spacing 1e-6")
            .mention("--det-spacing|det_spacing"),
    );
    v.push(
        ct("simulate ct det-spacing 0", Exit2, "--det-spacing 0")
            .mention("--det-spacing|det_spacing"),
    );
    v.push(
        ct(
            "simulate ct det-spacing negative",
            Exit2,
            "--det-spacing=-1",
        )
        .mention("--det-spacing|det_spacing"),
    );
    v.push(
        ct("simulate ct det-spacing NaN", Exit2, "--det-spacing NaN")
            .mention("--det-spacing|det_spacing"),
    );
    v.push(
        ct("simulate ct det-spacing inf", Exit2, "--det-spacing inf")
            .mention("--det-spacing|det_spacing"),
    );
    v.push(
        ct("simulate ct det-spacing 1e30", Exit2, "--det-spacing 1e30")
            .mention("--det-spacing|det_spacing"),
    );
    v.push(ct("simulate ct n-det 1e11", Exit2, "--n-det 100000000000").mention("--n-det|n_det"));
    v.push(ct("simulate ct n-det 0", Exit2, "--n-det 0").mention("--n-det|n_det"));
    v.push(ct("simulate ct n-det 1e5", Exit2, "--n-det 100000").mention("--n-det|n_det"));
    v.push(ct("simulate ct views 0", Exit2, "--views 0").mention("--views"));
    v.push(ct("simulate ct views 1e7", Exit2, "--views 10000000").mention("--views"));
    v.push(
        ct(
            "simulate ct views above full-views",
            Exit2,
            "--views 50 --full-views 10",
        )
        .mention("--views|--full-views"),
    );
    v.push(
        ct(
            "simulate ct full-views 0",
            Exit2,
            "--views 5 --full-views 0",
        )
        .mention("--full-views"),
    );
    v.push(ct("simulate ct angles NaN", Exit2, "--angles 0,nan,90").mention("--angles"));
    v.push(ct("simulate ct angles empty", Exit2, "--angles=").mention("--angles"));
    v.push(ct("simulate ct angles garbage", Exit2, "--angles 0,x").mention("--angles"));
    v.push(ct("simulate ct angles inf", Exit2, "--angles 0,inf").mention("--angles"));
    v.push(
        ct(
            "simulate ct angles and views",
            Exit2,
            "--angles 0,90 --views 2",
        )
        .mention("--angles|--views"),
    );
    v.push(ct("simulate ct i0 0", Exit2, "--i0 0").mention("--i0"));
    v.push(ct("simulate ct i0 negative", Exit2, "--i0=-5").mention("--i0"));
    v.push(ct("simulate ct i0 NaN", Exit2, "--i0 nan").mention("--i0"));
    v.push(ct("simulate ct sigma negative", Exit2, "--sigma=-1").mention("--sigma"));
    v.push(ct("simulate ct sigma NaN", Exit2, "--sigma nan").mention("--sigma"));
    v.push(
        ct(
            "simulate ct attenuation-scale without i0",
            Exit2,
            "--attenuation-scale 0.1",
        )
        .mention("--attenuation-scale"),
    );
    v.push(
        ct(
            "simulate ct attenuation-scale inf",
            Exit2,
            "--i0 1000 --attenuation-scale inf",
        )
        .mention("--attenuation-scale"),
    );
    v.push(ct("simulate ct slice on a 2-D image", Exit2, "--slice 0,0").mention("--slice"));
    v.push(ct("simulate ct in-window on npy", Exit2, "--in-window 0,1000").mention("--in-window"));
    v.push(
        case(
            "simulate ct out equals input",
            Exit2,
            "simulate ct -i g32.npy -o g32.npy",
        )
        .fix(fx, &["g32.npy"])
        .mention("g32.npy"),
    );
    v.push(
        case(
            "simulate ct out is a symlink to the input",
            Exit2,
            "simulate ct -i g32.npy -o l.npy",
        )
        .fix(fx, &["g32.npy"])
        .link("l.npy", "g32.npy")
        .mention("l.npy|g32.npy"),
    );
    v.push(
        case(
            "simulate ct sidecar would overwrite the input",
            Exit2,
            "simulate ct -i m.json -o m.npy",
        )
        .file("m.json", fx.get("g32.npy"))
        .mention("m.json"),
    );
    v.push(
        case(
            "simulate ct out .txt",
            Exit2,
            "simulate ct -i g32.npy -o m.txt",
        )
        .fix(fx, &["g32.npy"])
        .mention("m.txt"),
    );
    v.push(
        case(
            "simulate ct input missing",
            Exit2,
            "simulate ct -i nope.npy -o m.npy",
        )
        .mention("nope.npy"),
    );
    v.push(
        case(
            "simulate ct input zero bytes",
            Exit2,
            "simulate ct -i e.npy -o m.npy",
        )
        .file("e.npy", vec![])
        .mention("e.npy"),
    );
    v.push(
        case(
            "simulate ct input random bytes",
            Exit2,
            "simulate ct -i r.npy -o m.npy",
        )
        .file("r.npy", random_bytes(4096, 1))
        .mention("r.npy"),
    );
    v.push(
        case(
            "simulate ct input truncated",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", fx.head("g32.npy", 2000))
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct input header only",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", fx.head("g32.npy", 128))
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy string dtype",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file(
            "t.npy",
            npy_raw(
                "{'descr': '<U4', 'fortran_order': False, 'shape': (4, 4), }",
                &[0u8; 256],
            ),
        )
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy object dtype",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file(
            "t.npy",
            npy_raw(
                "{'descr': '|O', 'fortran_order': False, 'shape': (4, 4), }",
                &[0u8; 128],
            ),
        )
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy shape 0x32",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", npy_f32(&[0, 32], &[0.0]))
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy 1-D",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", npy_f32(&[32], &[0.5]))
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy 4-D",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", npy_f32(&[1, 2, 8, 8], &[0.5]))
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy 1x1",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", npy_f32(&[1, 1], &[0.5]))
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy non-square",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", npy_f32(&[8, 40], &smooth(8, 40)))
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy NaN",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", npy_f32(&[16, 16], &[0.5, f32::NAN, 0.2]))
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy inf",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", npy_f32(&[16, 16], &[0.5, f32::INFINITY]))
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy f32 max values",
            Exit2Or1,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", npy_f32(&[16, 16], &[f32::MAX]))
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy claims 1e6 x 1e6",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file(
            "t.npy",
            npy_raw(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }",
                &[0u8; 64],
            ),
        )
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy shape overflow",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file(
            "t.npy",
            npy_raw(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 2), }",
                &[0u8; 64],
            ),
        )
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy header length past the end",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", {
            let mut b = fx.head("g32.npy", 200);
            b[8] = 0xff;
            b[9] = 0xff;
            b
        })
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy version 9",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", {
            let mut b = fx.get("g32.npy");
            b[6] = 9;
            b
        })
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy corrupted header",
            Exit2,
            "simulate ct -i t.npy -o m.npy",
        )
        .file("t.npy", fx.corrupt("g32.npy", 12, 40, 7))
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate ct npy big-endian f8 valid",
            Exit0,
            "simulate ct -i t.npy -o m.npy",
        )
        .file(
            "t.npy",
            npy_raw(
                "{'descr': '>f8', 'fortran_order': False, 'shape': (16, 16), }",
                &smooth(16, 16)
                    .iter()
                    .flat_map(|v| f64::from(*v).to_be_bytes())
                    .collect::<Vec<u8>>(),
            ),
        )
        .out("m.npy"),
    );
    v.push(
        case(
            "simulate ct npy fortran order valid",
            Exit0,
            "simulate ct -i t.npy -o m.npy",
        )
        .file(
            "t.npy",
            npy_raw(
                "{'descr': '<f4', 'fortran_order': True, 'shape': (16, 16), }",
                &smooth(16, 16)
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
        )
        .out("m.npy"),
    );
    v.push(
        case(
            "simulate ct input is a folder",
            Exit2,
            "simulate ct -i d.npy -o m.npy",
        )
        .dir("d.npy")
        .mention("d.npy"),
    );
    v.push(
        case(
            "simulate ct input dangling symlink",
            Exit2,
            "simulate ct -i l.npy -o m.npy",
        )
        .link("l.npy", "gone.npy")
        .mention("l.npy"),
    );
    v.push(
        case(
            "simulate ct symlink loop",
            Exit2,
            "simulate ct -i a.npy -o m.npy",
        )
        .link("a.npy", "b.npy")
        .link("b.npy", "a.npy")
        .mention("a.npy"),
    );
    v.push(
        case(
            "simulate ct png corrupt",
            Exit2,
            "simulate ct -i x.png -o m.npy",
        )
        .file("x.png", {
            let mut b = fx.head("g32.png", 60);
            b.extend(random_bytes(200, 3));
            b
        })
        .mention("x.png"),
    );
    v.push(
        case(
            "simulate ct png inverted in-window",
            Exit2,
            "simulate ct -i g32.png --in-window 1,0 -o m.npy",
        )
        .fix(fx, &["g32.png"])
        .mention("--in-window"),
    );
    v.push(
        case(
            "simulate ct png valid",
            Exit0,
            "simulate ct -i g32.png -o m.npy",
        )
        .fix(fx, &["g32.png"])
        .out("m.npy"),
    );
    v.push(
        case(
            "simulate ct nifti slice out of range",
            Exit2,
            "simulate ct -i vol.nii --slice 2,99 -o m.npy",
        )
        .fix(fx, &["vol.nii"])
        .mention("--slice|slice index"),
    );
    v.push(
        case(
            "simulate ct nifti bad slice axis",
            Exit2,
            "simulate ct -i vol.nii --slice 7,0 -o m.npy",
        )
        .fix(fx, &["vol.nii"])
        .mention("--slice"),
    );
    v.push(
        case(
            "simulate ct 3-D npy without slice",
            Exit2,
            "simulate ct -i vol.npy -o m.npy",
        )
        .fix(fx, &["vol.npy"])
        .mention("vol.npy"),
    );
    v.push(
        case(
            "simulate ct 3-D npy slice valid",
            Exit0,
            "simulate ct -i vol.npy --slice 0,1 -o m.npy",
        )
        .fix(fx, &["vol.npy"])
        .out("m.npy"),
    );
    v.push(
        case(
            "simulate ct sidecar of the output is a folder",
            Exit2Or1,
            "simulate ct -i g32.npy -o m.npy",
        )
        .fix(fx, &["g32.npy"])
        .dir("m.json")
        .mention("m.json"),
    );

    let mri = |name: &str, e: Expect, extra: &str| {
        case(
            name,
            e,
            &format!("simulate mri -i g32.npy -o k.npy {extra}"),
        )
        .fix(fx, &["g32.npy"])
        .out("k.npy")
    };
    v.push(mri(
        "simulate mri valid random mask",
        Exit0,
        "--mask random --seed 3",
    ));
    v.push(mri("simulate mri acceleration 0", Exit2, "--acceleration 0").mention("--acceleration"));
    v.push(
        mri("simulate mri acceleration NaN", Exit2, "--acceleration nan").mention("--acceleration"),
    );
    v.push(
        mri("simulate mri acceleration 0.5", Exit2, "--acceleration 0.5").mention("--acceleration"),
    );
    v.push(
        mri("simulate mri acceleration inf", Exit2, "--acceleration inf").mention("--acceleration"),
    );
    v.push(
        mri(
            "simulate mri acceleration negative",
            Exit2,
            "--acceleration=-4",
        )
        .mention("--acceleration"),
    );
    v.push(
        mri(
            "simulate mri center-fraction 2",
            Exit2,
            "--center-fraction 2",
        )
        .mention("--center-fraction"),
    );
    v.push(
        mri(
            "simulate mri center-fraction negative",
            Exit2,
            "--center-fraction=-0.1",
        )
        .mention("--center-fraction"),
    );
    v.push(
        mri(
            "simulate mri center-fraction NaN",
            Exit2,
            "--center-fraction nan",
        )
        .mention("--center-fraction"),
    );
    v.push(mri("simulate mri sigma negative", Exit2, "--sigma=-0.1").mention("--sigma"));
    v.push(mri("simulate mri unknown mask", Exit2, "--mask banana").mention("banana"));
    v.push(
        mri(
            "simulate mri views flag does not apply",
            Exit2,
            "--views 10",
        )
        .mention("--views"),
    );
    v.push(
        case(
            "simulate mri complex input",
            Exit2,
            "simulate mri -i mri32.npy -o k.npy",
        )
        .fix(fx, &["mri32.npy", "mri32.json"])
        .mention("mri32.npy"),
    );
    v.push(
        case(
            "simulate mri 1x1 input",
            Exit2,
            "simulate mri -i t.npy -o k.npy",
        )
        .file("t.npy", npy_f32(&[1, 1], &[0.5]))
        .mention("t.npy"),
    );
    v.push(
        case(
            "simulate mri 16x10000 input",
            Exit2,
            "simulate mri -i t.npy -o k.npy",
        )
        .file("t.npy", npy_f32(&[16, 10000], &[0.5]))
        .mention("t.npy")
        .timeout(30),
    );

    let mar = |name: &str, e: Expect, extra: &str| {
        case(
            name,
            e,
            &format!("simulate mar -i met32.npy -o a.npy {extra}"),
        )
        .fix(fx, &["met32.npy"])
        .out("a.npy")
    };
    v.push(mar("simulate mar valid", Exit0, "").out("a.mask.npy"));
    v.push(
        case(
            "simulate mar image without metal",
            Exit2,
            "simulate mar -i g32.npy -o a.npy",
        )
        .fix(fx, &["g32.npy"])
        .mention("g32.npy"),
    );
    v.push(mar("simulate mar fov 0", Exit2, "--fov-mm 0").mention("--fov-mm"));
    v.push(mar("simulate mar fov negative", Exit2, "--fov-mm=-400").mention("--fov-mm"));
    v.push(mar("simulate mar fov NaN", Exit2, "--fov-mm nan").mention("--fov-mm"));
    v.push(mar("simulate mar i0 0", Exit2, "--i0 0").mention("--i0"));
    v.push(
        mar(
            "simulate mar det-spacing 1e-30",
            Exit2,
            "--det-spacing 1e-30",
        )
        .mention("--det-spacing|det_spacing"),
    );
    v.push(
        mar(
            "simulate mar unknown material",
            Exit2,
            "--metal-material gold",
        )
        .mention("gold"),
    );
    v.push(mar("simulate mar views 1e7", Exit2, "--views 10000000").mention("--views"));
    v.push(
        case(
            "simulate mar out equals input",
            Exit2,
            "simulate mar -i met32.npy -o met32.npy",
        )
        .fix(fx, &["met32.npy"])
        .mention("met32.npy"),
    );
    v.push(
        case(
            "simulate mar companion would overwrite the input",
            Exit2,
            "simulate mar -i a.mask.npy -o a.npy",
        )
        .fix_as(fx, "met32.npy", "a.mask.npy")
        .mention("a.mask.npy"),
    );
}

/// Recon of the 32² CT fixture with its sidecar replaced by `sidecar` (and data by `data`).
fn recon_ct(
    fx: &Fixtures,
    name: &str,
    e: Expect,
    sidecar: Vec<u8>,
    data: Option<Vec<u8>>,
    method: &str,
) -> Case {
    case(
        name,
        e,
        &format!("recon ct -i m.npy --method {method} -o r.npy"),
    )
    .file("m.npy", data.unwrap_or_else(|| fx.get("ct32.npy")))
    .file("m.json", sidecar)
    .out("r.npy")
}

fn recon_cases(v: &mut Vec<Case>, fx: &Fixtures) {
    let sc = "m.json|m.npy";
    let j = |edit: fn(&mut Value)| fx.json("ct32.json", edit);
    v.push(recon_ct(
        fx,
        "recon ct fbp valid",
        Exit0,
        fx.get("ct32.json"),
        None,
        "fbp",
    ));
    v.push(recon_ct(
        fx,
        "recon ct fista-tv valid",
        Exit0,
        fx.get("ct32.json"),
        None,
        "fista-tv --iterations 5",
    ));
    v.push(
        case(
            "recon sidecar missing",
            Exit2,
            "recon ct -i m.npy --method fbp -o r.npy",
        )
        .fix_as(fx, "ct32.npy", "m.npy")
        .mention("m.json"),
    );
    v.push(
        case(
            "recon measurement missing (sidecar present)",
            Exit2,
            "recon ct -i m.npy --method fbp -o r.npy",
        )
        .fix_as(fx, "ct32.json", "m.json")
        .mention("m.npy"),
    );
    v.push(recon_ct(fx, "recon sidecar empty", Exit2, vec![], None, "fbp").mention("m.json"));
    v.push(
        recon_ct(
            fx,
            "recon sidecar not JSON",
            Exit2,
            b"{\"format\": ".to_vec(),
            None,
            "fbp",
        )
        .mention("m.json"),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar random bytes",
            Exit2,
            random_bytes(300, 5),
            None,
            "fbp",
        )
        .mention("m.json"),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar is a JSON array",
            Exit2,
            b"[1, 2, 3]".to_vec(),
            None,
            "fbp",
        )
        .mention("m.json"),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar kind mri for ct",
            Exit2,
            fx.get("mri32.json"),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar wrong format",
            Exit2,
            j(|v| v["format"] = json!("numpy")),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar format_version 99",
            Exit2,
            j(|v| v["format_version"] = json!(99)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar shape disagrees",
            Exit2,
            j(|v| v["shape"] = json!([46, 23])),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar dtype complex64",
            Exit2,
            j(|v| v["dtype"] = json!("complex64")),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar size 1e6",
            Exit2,
            j(|v| v["geometry"]["size"] = json!(1_000_000)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar size 20000",
            Exit2,
            j(|v| v["geometry"]["size"] = json!(20_000)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar size 1e6 fista-tv",
            Exit2,
            j(|v| v["geometry"]["size"] = json!(1_000_000)),
            None,
            "fista-tv --iterations 2",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar size 0",
            Exit2,
            j(|v| v["geometry"]["size"] = json!(0)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar size negative",
            Exit2,
            j(|v| v["geometry"]["size"] = json!(-32)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar size fractional",
            Exit2,
            j(|v| v["geometry"]["size"] = json!(32.5)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar size is a string",
            Exit2,
            j(|v| v["geometry"]["size"] = json!("32")),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar size u64 overflow",
            Exit2,
            fx.json_raw("ct32.json", "\"size\": 32", "\"size\": 1e400"),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar n_det 0",
            Exit2,
            j(|v| v["geometry"]["n_det"] = json!(0)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar n_det disagrees",
            Exit2,
            j(|v| v["geometry"]["n_det"] = json!(47)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar det_spacing 1e-30 fbp",
            Exit2,
            j(|v| v["geometry"]["det_spacing"] = json!(1e-30)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar det_spacing 1e-30 fista-tv",
            Exit2,
            j(|v| v["geometry"]["det_spacing"] = json!(1e-30)),
            None,
            "fista-tv --iterations 5",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar det_spacing 1e-7",
            Exit2,
            j(|v| v["geometry"]["det_spacing"] = json!(1e-7)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar det_spacing 1e-4 fista-tv",
            Exit2,
            j(|v| v["geometry"]["det_spacing"] = json!(1e-4)),
            None,
            "fista-tv --iterations 5",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar det_spacing 0",
            Exit2,
            j(|v| v["geometry"]["det_spacing"] = json!(0.0)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar det_spacing negative",
            Exit2,
            j(|v| v["geometry"]["det_spacing"] = json!(-1.0)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar det_spacing NaN",
            Exit2,
            fx.json_raw("ct32.json", "\"det_spacing\": 1.0", "\"det_spacing\": NaN"),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar det_spacing null",
            Exit2,
            j(|v| v["geometry"]["det_spacing"] = Value::Null),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar det_spacing 1e30",
            Exit2,
            j(|v| v["geometry"]["det_spacing"] = json!(1e30)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar angle null",
            Exit2,
            j(|v| v["geometry"]["angles_deg"][3] = Value::Null),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar angle 1e39 (f32 inf)",
            Exit2,
            j(|v| v["geometry"]["angles_deg"][3] = json!(1e39)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar too few angles",
            Exit2,
            j(|v| {
                v["geometry"]["angles_deg"].as_array_mut().unwrap().pop();
            }),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar no angles",
            Exit2,
            j(|v| v["geometry"]["angles_deg"] = json!([])),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar geometry fan-beam",
            Exit2,
            j(|v| v["geometry"]["type"] = json!("cone-beam")),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar geometry missing",
            Exit2,
            j(|v| {
                v.as_object_mut().unwrap().remove("geometry");
            }),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar mask index out of range",
            Exit2,
            j(|v| v["mask"]["kept"][22] = json!(99)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar mask negative index",
            Exit2,
            j(|v| v["mask"]["kept"][0] = json!(-1)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar mask duplicate index",
            Exit2,
            j(|v| v["mask"]["kept"][1] = json!(0)),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar mask empty",
            Exit2,
            j(|v| v["mask"]["kept"] = json!([])),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar mask unknown type",
            Exit2,
            j(|v| v["mask"]["type"] = json!("columns")),
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar deeply nested",
            Exit2,
            {
                let mut s = "[".repeat(100_000);
                s.push_str(&"]".repeat(100_000));
                s.into_bytes()
            },
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon sidecar 20 MB string",
            Exit2Or1,
            {
                let mut s = b"{\"format\": \"".to_vec();
                s.extend(std::iter::repeat_n(b'a', 20 << 20));
                s.extend(b"\"}");
                s
            },
            None,
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon data NaN",
            Exit2,
            fx.get("ct32.json"),
            Some(npy_f32(&[23, 46], &[1.0, f32::NAN])),
            "fbp",
        )
        .mention("m.npy"),
    );
    v.push(
        recon_ct(
            fx,
            "recon data inf",
            Exit2,
            fx.get("ct32.json"),
            Some(npy_f32(&[23, 46], &[1.0, f32::NEG_INFINITY])),
            "fista-tv --iterations 3",
        )
        .mention("m.npy"),
    );
    v.push(
        recon_ct(
            fx,
            "recon data i2 while sidecar says float32",
            Exit2,
            fx.get("ct32.json"),
            Some(npy_raw(
                "{'descr': '<i2', 'fortran_order': False, 'shape': (23, 46), }",
                &[0u8; 23 * 46 * 2],
            )),
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon data truncated",
            Exit2,
            fx.get("ct32.json"),
            Some(fx.head("ct32.npy", 1000)),
            "fbp",
        )
        .mention("m.npy"),
    );
    v.push(
        recon_ct(
            fx,
            "recon data zero bytes",
            Exit2,
            fx.get("ct32.json"),
            Some(vec![]),
            "fbp",
        )
        .mention("m.npy"),
    );
    v.push(
        recon_ct(
            fx,
            "recon data 3-D",
            Exit2,
            fx.get("ct32.json"),
            Some(npy_f32(&[1, 23, 46], &[1.0])),
            "fbp",
        )
        .mention(sc),
    );
    v.push(
        recon_ct(
            fx,
            "recon data huge values (overflow)",
            Exit2Or1,
            fx.get("ct32.json"),
            Some(npy_f32(&[23, 46], &[3e38, -3e38])),
            "fista-tv --iterations 5",
        )
        .mention("m.npy|r.npy"),
    );
    v.push(
        recon_ct(
            fx,
            "recon ct with zero-filled",
            Exit2,
            fx.get("ct32.json"),
            None,
            "zero-filled",
        )
        .mention("zero-filled"),
    );
    v.push(
        recon_ct(
            fx,
            "recon ct with li",
            Exit2,
            fx.get("ct32.json"),
            None,
            "li",
        )
        .mention("li"),
    );
    v.push(
        recon_ct(
            fx,
            "recon ct with latent-dc",
            Exit2,
            fx.get("ct32.json"),
            None,
            "latent-dc",
        )
        .mention("latent-dc"),
    );
    v.push(
        recon_ct(
            fx,
            "recon iterations 0",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fista-tv --iterations 0",
        )
        .mention("--iterations"),
    );
    v.push(
        recon_ct(
            fx,
            "recon iterations 1e9",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fista-tv --iterations 1000000000",
        )
        .mention("--iterations"),
    );
    v.push(
        recon_ct(
            fx,
            "recon tv-weight negative",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fista-tv --tv-weight=-1",
        )
        .mention("--tv-weight"),
    );
    v.push(
        recon_ct(
            fx,
            "recon tv-weight NaN",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fista-tv --tv-weight nan",
        )
        .mention("--tv-weight"),
    );
    v.push(
        recon_ct(
            fx,
            "recon iterations with fbp",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fbp --iterations 5",
        )
        .mention("--iterations"),
    );
    v.push(
        recon_ct(
            fx,
            "recon filter with fista-tv",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fista-tv --iterations 2 --filter hann",
        )
        .mention("--filter"),
    );
    v.push(
        recon_ct(
            fx,
            "recon shard with --out",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fbp --shard 0/2",
        )
        .mention("--shard"),
    );
    v.push(
        recon_ct(
            fx,
            "recon reference with --out",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fbp --reference ref",
        )
        .mention("--reference"),
    );
    v.push(
        recon_ct(
            fx,
            "recon axis with --out",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fbp --axis 0",
        )
        .mention("--axis"),
    );
    v.push(
        recon_ct(
            fx,
            "recon views with --out",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fbp --views 10",
        )
        .mention("--views"),
    );
    v.push(
        recon_ct(
            fx,
            "recon resume with --out",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fbp --resume",
        )
        .mention("--resume"),
    );
    v.push(
        recon_ct(
            fx,
            "recon slice on a 2-D measurement",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fbp --slice 0,0",
        )
        .mention("--slice"),
    );
    v.push(
        recon_ct(
            fx,
            "recon --out and --output",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fbp --output o",
        )
        .mention("--out"),
    );
    v.push(
        recon_ct(
            fx,
            "recon window inverted",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fbp --window 5,1",
        )
        .mention("--window"),
    );
    v.push(
        recon_ct(
            fx,
            "recon model for fbp",
            Exit2,
            fx.get("ct32.json"),
            None,
            "fbp --model nope.safetensors",
        )
        .mention("--model"),
    );
    v.push(
        case(
            "recon out equals input",
            Exit2,
            "recon ct -i m.npy --method fbp -o m.npy",
        )
        .fix_as(fx, "ct32.npy", "m.npy")
        .fix_as(fx, "ct32.json", "m.json")
        .mention("m.npy"),
    );
    v.push(
        case(
            "recon out is a symlink to the input",
            Exit2,
            "recon ct -i m.npy --method fbp -o l.npy",
        )
        .fix_as(fx, "ct32.npy", "m.npy")
        .fix_as(fx, "ct32.json", "m.json")
        .link("l.npy", "m.npy")
        .mention("l.npy|m.npy"),
    );
    v.push(
        case(
            "recon out via another path to the input",
            Exit2,
            "recon ct -i m.npy --method fbp -o ./d/../m.npy",
        )
        .fix_as(fx, "ct32.npy", "m.npy")
        .fix_as(fx, "ct32.json", "m.json")
        .dir("d")
        .mention("m.npy"),
    );
    v.push(case("recon std output would overwrite the input", Exit2, "recon ct -i r_std.npy --method pc-projection --steps 2 --samples 2 --units model --model MODEL -o r.npy").fix_as(fx, "ct64.npy", "r_std.npy").fix_as(fx, "ct64.json", "r_std.json").mention("r_std.npy"));
    v.push(
        case(
            "recon out nii.gz valid",
            Exit0,
            "recon ct -i m.npy --method fbp -o r.nii.gz",
        )
        .fix_as(fx, "ct32.npy", "m.npy")
        .fix_as(fx, "ct32.json", "m.json")
        .out("r.nii.gz"),
    );
    v.push(
        case(
            "recon out png valid",
            Exit0,
            "recon ct -i m.npy --method fbp -o r.png",
        )
        .fix_as(fx, "ct32.npy", "m.npy")
        .fix_as(fx, "ct32.json", "m.json")
        .out("r.png"),
    );
    v.push(
        case(
            "recon input is a folder without --output",
            Exit2,
            "recon ct -i d --method fbp -o r.npy",
        )
        .dir("d")
        .mention("d"),
    );
    v.push(
        case(
            "recon DICOM without --output",
            Exit2,
            "recon ct -i ct.dcm --method fbp -o r.npy",
        )
        .fix(fx, &["ct.dcm"])
        .mention("ct.dcm"),
    );
    v.push(
        case(
            "recon config missing",
            Exit2,
            "recon ct -i m.npy --method fista-tv --iterations 2 --config nope.toml -o r.npy",
        )
        .fix_as(fx, "ct32.npy", "m.npy")
        .fix_as(fx, "ct32.json", "m.json")
        .mention("nope.toml"),
    );
    v.push(
        case(
            "recon config not TOML",
            Exit2,
            "recon ct -i m.npy --method fista-tv --iterations 2 --config c.toml -o r.npy",
        )
        .fix_as(fx, "ct32.npy", "m.npy")
        .fix_as(fx, "ct32.json", "m.json")
        .text("c.toml", "[method\nx = ")
        .mention("c.toml"),
    );
    v.push(
        case(
            "recon config tv_weight negative is applied",
            Exit2,
            "recon ct -i m.npy --method fista-tv --iterations 2 --config c.toml -o r.npy",
        )
        .fix_as(fx, "ct32.npy", "m.npy")
        .fix_as(fx, "ct32.json", "m.json")
        .text("c.toml", "[fista-tv]\ntv_weight = -1.0\n")
        .mention("c.toml|tv_weight"),
    );
    v.push(
        case(
            "recon config wrong types",
            Exit2,
            "recon ct -i m.npy --method fista-tv --iterations 2 --config c.toml -o r.npy",
        )
        .fix_as(fx, "ct32.npy", "m.npy")
        .fix_as(fx, "ct32.json", "m.json")
        .text("c.toml", "[fista-tv]\ntv_weight = \"heavy\"\n")
        .mention("c.toml"),
    );

    // score methods with the shipped 64² CT prior, 2 steps
    let model = repo("models/ct_phantom_64/model.safetensors");
    let score = |name: &str, e: Expect, method_args: &str, model_path: &str| {
        case(name, e, &format!("recon ct -i m.npy --units model --steps 2 -o r.npy --method {method_args} --model {model_path}"))
            .fix_as(fx, "ct64.npy", "m.npy")
            .fix_as(fx, "ct64.json", "m.json")
            .out("r.npy")
    };
    for m in [
        "pc-projection",
        "dds",
        "diffpir",
        "dps",
        "ald-projection",
        "score-sde",
        "langevin",
    ] {
        v.push(score(&format!("recon {m} valid"), Exit0, m, &model));
    }
    v.push(
        score(
            "recon samples 2 writes std",
            Exit0,
            "dds --samples 2",
            &model,
        )
        .out("r_std.npy"),
    );
    v.push(score("recon steps 0", Exit2, "pc-projection --steps 0", &model).mention("--steps"));
    v.push(score("recon steps 1e9", Exit2, "dds --steps 1000000000", &model).mention("--steps"));
    v.push(score("recon samples 0", Exit2, "dds --samples 0", &model).mention("--samples"));
    v.push(
        score(
            "recon samples 1e9",
            Exit2,
            "dds --samples 1000000000",
            &model,
        )
        .mention("--samples"),
    );
    v.push(score("recon lambda 2", Exit2, "pc-projection --lambda 2", &model).mention("--lambda"));
    v.push(
        score(
            "recon lambda NaN",
            Exit2,
            "pc-projection --lambda nan",
            &model,
        )
        .mention("--lambda"),
    );
    v.push(
        score(
            "recon config zeta nan",
            Exit2,
            "dps --config c.toml",
            &model,
        )
        .text("c.toml", "[dps]\nzeta = nan\n")
        .mention("zeta"),
    );
    v.push(
        score(
            "recon t-start 0",
            Exit2,
            "pc-projection --t-start 0",
            &model,
        )
        .mention("--t-start"),
    );
    v.push(
        score(
            "recon snr negative",
            Exit2,
            "pc-projection --snr=-1",
            &model,
        )
        .mention("--snr"),
    );
    v.push(score("recon snr inf", Exit2, "pc-projection --snr inf", &model).mention("--snr"));
    v.push(
        score(
            "recon corrector-steps 1e9",
            Exit2,
            "pc-projection --corrector-steps 1000000000",
            &model,
        )
        .mention("--corrector-steps"),
    );
    v.push(score("recon eta 2", Exit2, "dds --eta 2", &model).mention("--eta"));
    v.push(score("recon gamma negative", Exit2, "dds --gamma=-1", &model).mention("--gamma"));
    v.push(
        score(
            "recon cg-iterations 0",
            Exit2,
            "dds --cg-iterations 0",
            &model,
        )
        .mention("--cg-iterations"),
    );
    v.push(score("recon zeta NaN", Exit2, "dps --zeta nan", &model).mention("--zeta"));
    v.push(score("recon rho negative", Exit2, "score-sde --rho=-1", &model).mention("--rho"));
    v.push(
        score(
            "recon eta with fista-tv",
            Exit2,
            "fista-tv --iterations 2 --eta 0.5",
            &model,
        )
        .mention("--eta|--model|--steps"),
    );
    v.push(
        case(
            "recon score method without a model",
            Exit2,
            "recon ct -i m.npy --method pc-projection -o r.npy",
        )
        .fix_as(fx, "ct64.npy", "m.npy")
        .fix_as(fx, "ct64.json", "m.json")
        .mention("--model"),
    );
    v.push(
        score("recon model missing", Exit2, "dds", "nope.safetensors").mention("nope.safetensors"),
    );
    v.push(
        score(
            "recon model is an LSGM checkpoint",
            Exit2,
            "dds",
            &repo("models/lsgm_ct_64/lsgm.safetensors"),
        )
        .mention("lsgm.safetensors"),
    );
    v.push(
        score("recon model is a folder", Exit2, "dds", "mdir")
            .dir("mdir")
            .mention("mdir"),
    );
    v.push(
        score("recon model truncated", Exit2, "dds", "t.safetensors")
            .file(
                "t.safetensors",
                std::fs::read(&model).unwrap()[..100_000].to_vec(),
            )
            .mention("t.safetensors"),
    );
    v.push(
        score("recon model is text", Exit2, "dds", "t.safetensors")
            .text("t.safetensors", "this is not a model\n")
            .mention("t.safetensors"),
    );
    v.push(
        score("recon model zero bytes", Exit2, "dds", "t.safetensors")
            .file("t.safetensors", vec![])
            .mention("t.safetensors"),
    );
    v.push(
        score(
            "recon model header length huge",
            Exit2,
            "dds",
            "t.safetensors",
        )
        .file("t.safetensors", {
            let mut b = vec![0xff; 8];
            b.extend(b"{}");
            b
        })
        .mention("t.safetensors"),
    );
    v.push(score("recon model header claims huge tensor", Exit2, "dds", "t.safetensors").file("t.safetensors", { let h = br#"{"w":{"dtype":"F32","shape":[1000000000,1000],"data_offsets":[0,4000000000000]}}"#; let mut b = (h.len() as u64).to_le_bytes().to_vec(); b.extend_from_slice(h); b.extend([0u8; 16]); b }).mention("t.safetensors"));
    v.push(
        score(
            "recon model is a training state",
            Exit2,
            "dds",
            "run/train_state.safetensors",
        )
        .fix_as(
            fx,
            "run/train_state.safetensors",
            "run/train_state.safetensors",
        )
        .mention("train_state.safetensors"),
    );
    v.push(case("recon model image size differs (16² model, 64² data)", Exit0, "recon ct -i m.npy --units model --steps 2 -o r.npy --method dds --model run/model.safetensors").fix_as(fx, "ct64.npy", "m.npy").fix_as(fx, "ct64.json", "m.json").fix(fx, &["run/model.safetensors"]).out("r.npy"));
    // fix up the MODEL placeholder of the _std case
    for c in v.iter_mut() {
        for a in c.args.iter_mut() {
            if a == "MODEL" {
                *a = model.clone();
            }
        }
    }

    // MRI
    let mri = |name: &str, e: Expect, sidecar: Vec<u8>, data: Option<Vec<u8>>, method: &str| {
        case(
            name,
            e,
            &format!("recon mri -i k.npy --method {method} -o r.npy"),
        )
        .file("k.npy", data.unwrap_or_else(|| fx.get("mri32.npy")))
        .file("k.json", sidecar)
        .out("r.npy")
    };
    let k = |edit: fn(&mut Value)| fx.json("mri32.json", edit);
    let ks = "k.json|k.npy";
    v.push(mri(
        "recon mri zero-filled valid",
        Exit0,
        fx.get("mri32.json"),
        None,
        "zero-filled",
    ));
    v.push(mri(
        "recon mri fista-tv valid",
        Exit0,
        fx.get("mri32.json"),
        None,
        "fista-tv --iterations 3",
    ));
    v.push(
        mri(
            "recon mri ct sidecar",
            Exit2,
            fx.get("ct32.json"),
            None,
            "zero-filled",
        )
        .mention(ks),
    );
    v.push(
        mri(
            "recon mri with fbp",
            Exit2,
            fx.get("mri32.json"),
            None,
            "fbp",
        )
        .mention("fbp"),
    );
    v.push(
        mri(
            "recon mri mask column out of range",
            Exit2,
            k(|v| v["mask"]["kept"][6] = json!(32)),
            None,
            "zero-filled",
        )
        .mention(ks),
    );
    v.push(
        mri(
            "recon mri mask empty",
            Exit2,
            k(|v| v["mask"]["kept"] = json!([])),
            None,
            "zero-filled",
        )
        .mention(ks),
    );
    v.push(
        mri(
            "recon mri h disagrees",
            Exit2,
            k(|v| v["geometry"]["h"] = json!(31)),
            None,
            "zero-filled",
        )
        .mention(ks),
    );
    v.push(
        mri(
            "recon mri side 1e6",
            Exit2,
            k(|v| {
                v["geometry"]["h"] = json!(1_000_000);
                v["shape"] = json!([1_000_000, 32]);
            }),
            None,
            "zero-filled",
        )
        .mention(ks),
    );
    v.push(
        mri(
            "recon mri float data",
            Exit2,
            fx.get("mri32.json"),
            Some(npy_f32(&[32, 32], &[0.1])),
            "zero-filled",
        )
        .mention(ks),
    );
    v.push(
        mri(
            "recon mri NaN k-space",
            Exit2,
            fx.get("mri32.json"),
            Some(npy_raw(
                "{'descr': '<c8', 'fortran_order': False, 'shape': (32, 32), }",
                &(0..1024)
                    .flat_map(|i| {
                        let re = if i == 7 { f32::NAN } else { 0.1 };
                        [re.to_le_bytes(), 0f32.to_le_bytes()].concat()
                    })
                    .collect::<Vec<u8>>(),
            )),
            "zero-filled",
        )
        .mention("k.npy"),
    );
    v.push(
        mri(
            "recon mri 1x1 k-space",
            Exit2,
            k(|v| {
                v["geometry"]["h"] = json!(1);
                v["geometry"]["w"] = json!(1);
                v["shape"] = json!([1, 1]);
                v["mask"]["kept"] = json!([0]);
            }),
            Some(npy_raw(
                "{'descr': '<c8', 'fortran_order': False, 'shape': (1, 1), }",
                &[0u8; 8],
            )),
            "fista-tv --iterations 3",
        )
        .mention(ks),
    );

    // MAR
    let mar = |name: &str, e: Expect, edit: fn(&mut Value), method: &str| {
        case(
            name,
            e,
            &format!("recon mar -i mar32.npy --method {method} -o r.npy"),
        )
        .fix(fx, &["mar32.npy", "mar32.mask.npy", "mar32.metal.npy"])
        .file("mar32.json", fx.json("mar32.json", edit))
        .out("r.npy")
    };
    let ms = "mar32.json|mar32.npy";
    v.push(mar("recon mar li valid", Exit0, |_| {}, "li"));
    v.push(
        mar(
            "recon mar mu_water 1e-30",
            Exit2,
            |v| v["mu_water_per_pixel"] = json!(1e-30),
            "li",
        )
        .mention(ms),
    );
    v.push(
        mar(
            "recon mar mu_water 0",
            Exit2,
            |v| v["mu_water_per_pixel"] = json!(0.0),
            "li",
        )
        .mention(ms),
    );
    v.push(
        mar(
            "recon mar mu_water negative",
            Exit2,
            |v| v["mu_water_per_pixel"] = json!(-0.2),
            "li",
        )
        .mention(ms),
    );
    v.push(
        mar(
            "recon mar mu_water 1e30",
            Exit2,
            |v| v["mu_water_per_pixel"] = json!(1e30),
            "li",
        )
        .mention(ms),
    );
    v.push(
        mar(
            "recon mar mask path traversal",
            Exit2,
            |v| v["mask"]["file"] = json!("../../../../etc/passwd"),
            "li",
        )
        .mention(ms),
    );
    v.push(
        mar(
            "recon mar mask absolute path",
            Exit2,
            |v| v["mask"]["file"] = json!("/etc/passwd"),
            "li",
        )
        .mention(ms),
    );
    v.push(
        mar(
            "recon mar mask missing",
            Exit2,
            |v| v["mask"]["file"] = json!("gone.mask.npy"),
            "li",
        )
        .mention("gone.mask.npy"),
    );
    v.push(
        mar(
            "recon mar metal file is the measurement",
            Exit2,
            |v| v["metal_mask"] = json!("mar32.npy"),
            "li",
        )
        .mention(ms),
    );
    v.push(
        case(
            "recon mar mask wrong shape",
            Exit2,
            "recon mar -i mar32.npy --method li -o r.npy",
        )
        .fix(fx, &["mar32.npy", "mar32.json", "mar32.metal.npy"])
        .file(
            "mar32.mask.npy",
            npy_raw(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (10, 46), }",
                &[1u8; 460],
            ),
        )
        .mention("mar32.mask.npy"),
    );
    v.push(
        case(
            "recon mar mask all discarded",
            Exit2,
            "recon mar -i mar32.npy --method li -o r.npy",
        )
        .fix(fx, &["mar32.npy", "mar32.json", "mar32.metal.npy"])
        .file(
            "mar32.mask.npy",
            npy_raw(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (180, 46), }",
                &[0u8; 180 * 46],
            ),
        )
        .mention("mar32.mask.npy|mar32"),
    );
    v.push(
        case(
            "recon mar metal file missing",
            Exit2,
            "recon mar -i mar32.npy --method li -o r.npy",
        )
        .fix(fx, &["mar32.npy", "mar32.json", "mar32.mask.npy"])
        .mention("mar32.metal.npy"),
    );
}

fn batch_cases(v: &mut Vec<Case>, fx: &Fixtures) {
    let b = |name: &str, e: Expect, extra: &str| {
        case(
            name,
            e,
            &format!("recon ct --method fbp --input in --output out {extra}"),
        )
        .batch("out")
    };
    let vb = |name: &str, e: Expect, input: &str, extra: &str| {
        case(
            name,
            e,
            &format!("recon ct --method fbp --input {input} --output out {extra}"),
        )
        .batch("out")
    };
    let good = |c: Case| {
        c.fix_as(fx, "ct32.npy", "in/a.npy")
            .fix_as(fx, "ct32.json", "in/a.json")
    };
    v.push(good(b("batch valid", Exit0, "")).out("out/a.npy"));
    v.push(
        b("batch empty folder", Exit2, "")
            .dir("in")
            .mention("in")
            .refused_up_front(),
    );
    v.push(
        b("batch folder of non-inputs", Exit2, "")
            .text("in/readme.txt", "hello")
            .mention("in")
            .refused_up_front(),
    );
    v.push(
        case(
            "batch empty manifest",
            Exit2,
            "recon ct --method fbp --input m.csv --output out",
        )
        .batch("out")
        .text("m.csv", "")
        .mention("m.csv")
        .refused_up_front(),
    );
    v.push(
        case(
            "batch manifest with a header only",
            Exit2,
            "recon ct --method fbp --input m.csv --output out",
        )
        .batch("out")
        .text("m.csv", "path\n")
        .mention("m.csv")
        .refused_up_front(),
    );
    v.push(
        good(
            case(
                "batch manifest naming a missing file",
                Exit2,
                "recon ct --method fbp --input m.csv --output out",
            )
            .batch("out")
            .text("m.csv", "in/a.npy\nin/gone.npy\n"),
        )
        .mention("gone"),
    );
    v.push(
        good(
            case(
                "batch manifest lists itself",
                Exit2,
                "recon ct --method fbp --input m.csv --output out",
            )
            .batch("out")
            .text("m.csv", "in/a.npy\nm.csv\n"),
        )
        .mention("m.csv"),
    );
    v.push(
        case(
            "batch manifest: same base name twice",
            Exit0,
            "recon ct --method fbp --input m.csv --output out",
        )
        .batch("out")
        .text("m.csv", "x/a.npy\ny/a.npy\n")
        .fix_as(fx, "ct32.npy", "x/a.npy")
        .fix_as(fx, "ct32.json", "x/a.json")
        .fix_as(fx, "ct32.npy", "y/a.npy")
        .fix_as(fx, "ct32.json", "y/a.json"),
    );
    v.push(
        case(
            "batch manifest random bytes",
            Exit2,
            "recon ct --method fbp --input m.csv --output out",
        )
        .batch("out")
        .file("m.csv", random_bytes(500, 9))
        .mention("m.csv"),
    );
    v.push(
        good(b("batch one corrupt one good", Exit2, ""))
            .file("in/b.npy", fx.head("ct32.npy", 500))
            .fix_as(fx, "ct32.json", "in/b.json")
            .mention("b"),
    );
    v.push(
        good(b(
            "batch sidecar size 1e6 does not stop the batch",
            Exit2,
            "",
        ))
        .fix_as(fx, "ct32.npy", "in/b.npy")
        .file(
            "in/b.json",
            fx.json("ct32.json", |v| v["geometry"]["size"] = json!(1_000_000)),
        )
        .mention("b"),
    );
    v.push(
        good(b(
            "batch det_spacing 1e-30 does not stop the batch",
            Exit2,
            "--method fista-tv --iterations 3",
        ))
        .fix_as(fx, "ct32.npy", "in/b.npy")
        .file(
            "in/b.json",
            fx.json("ct32.json", |v| v["geometry"]["det_spacing"] = json!(1e-30)),
        )
        .mention("b"),
    );
    v.push(
        good(b("batch output equals input", Exit2, ""))
            .refused_up_front()
            .mention("in|out"),
    );
    v.last_mut().unwrap().args = "recon ct --method fbp --input in --output in"
        .split(' ')
        .map(String::from)
        .collect();
    v.last_mut().unwrap().batch = Some("in".into());
    v.push(
        good(
            case(
                "batch output inside the input",
                Exit2,
                "recon ct --method fbp --input in --output in/out",
            )
            .batch("in/out"),
        )
        .refused_up_front()
        .mention("in/out|in"),
    );
    v.push(
        good(
            case(
                "batch input inside the output",
                Exit2,
                "recon ct --method fbp --input o/in --output o",
            )
            .batch("o"),
        )
        .refused_up_front()
        .mention("o"),
    );
    v.last_mut().unwrap().files = vec![
        ("o/in/a.npy".into(), Content::Bytes(fx.get("ct32.npy"))),
        ("o/in/a.json".into(), Content::Bytes(fx.get("ct32.json"))),
    ];
    v.push(
        good(case(
            "batch output is a file",
            Exit2Or1,
            "recon ct --method fbp --input in --output f",
        ))
        .text("f", "x")
        .mention("f"),
    );
    v.push(
        good(
            case(
                "batch nested new output folder",
                Exit0,
                "recon ct --method fbp --input in --output a/b/c",
            )
            .batch("a/b/c"),
        )
        .out("a/b/c/a.npy"),
    );
    v.push(
        good(b("batch shard 2/2", Exit2, "--shard 2/2"))
            .refused_up_front()
            .mention("--shard"),
    );
    v.push(
        good(b("batch shard 0/0", Exit2, "--shard 0/0"))
            .refused_up_front()
            .mention("--shard"),
    );
    v.push(
        good(b("batch shard garbage", Exit2, "--shard x"))
            .refused_up_front()
            .mention("--shard"),
    );
    v.push(
        good(b(
            "batch empty shard writes an empty summary",
            Exit0,
            "--shard 3/5",
        ))
        .out("out/summary_shard_3_of_5.json"),
    );
    v.push(good(b("batch resume into a fresh folder", Exit0, "--resume")).out("out/a.npy"));
    v.push(good(b("batch resume keeps a good output", Exit0, "--resume")).file("out/a.npy", fx.get("g32.npy")).file("out/summary.json", serde_json::to_vec(&json!({"medsgm_version": "0.1.0", "problem": "ct", "method": "fbp", "shard": null, "ok": 1, "failed": 0, "skipped": 0, "files": [{"input": "in/a.npy", "kind": "measurement", "status": "ok", "outputs": ["out/a.npy"], "error": null, "error_code": null, "slices": 1, "seconds": 0.0, "metrics": null, "posterior_sd": null, "typicality": null, "ood_warning": false}]})).unwrap()).mutable("out/summary.json"));
    v.push(
        good(b("batch resume with a corrupt summary", Exit0, "--resume"))
            .text("out/summary.json", "{not json")
            .mutable("out/summary.json")
            .out("out/a.npy"),
    );
    v.push(
        good(b(
            "batch reference folder missing",
            Exit2,
            "--reference nope",
        ))
        .refused_up_front()
        .mention("nope"),
    );
    v.push(
        good(b("batch reference wrong shape", Exit2, "--reference ref"))
            .fix_as(fx, "g16.npy", "ref/a.npy")
            .mention("a"),
    );
    v.push(
        good(b("batch reference NaN", Exit2, "--reference ref"))
            .file("ref/a.npy", npy_f32(&[32, 32], &[0.5, f32::NAN]))
            .mention("a"),
    );
    v.push(
        good(b("batch reference constant", Exit0, "--reference ref"))
            .file("ref/a.npy", npy_f32(&[32, 32], &[0.0])),
    );
    v.push(
        good(b("batch reference valid", Exit0, "--reference ref")).fix_as(
            fx,
            "g32.npy",
            "ref/a.npy",
        ),
    );
    v.push(
        good(b(
            "batch anonymize-map without anonymize",
            Exit2,
            "--anonymize-map map.csv",
        ))
        .refused_up_front()
        .mention("--anonymize-map"),
    );
    v.push(
        good(b(
            "batch anonymize-map over an input",
            Exit2,
            "--anonymize --anonymize-map in/a.npy",
        ))
        .refused_up_front()
        .mention("--anonymize-map|in/a.npy"),
    );
    v.push(
        good(b(
            "batch anonymize-map inside the output",
            Exit2Or1,
            "--anonymize --anonymize-map out/map.csv",
        ))
        .refused_up_front()
        .mention("--anonymize-map|out/map.csv"),
    );
    v.push(
        b("batch anonymize hides input names", Exit2, "--anonymize")
            .fix_as(fx, "ct32.npy", "in/DOE_JOHN_123.npy")
            .fix_as(fx, "ct32.json", "in/DOE_JOHN_123.json")
            .fix_as(fx, "ct32.npy", "in/ROE_JANE.npy")
            .file(
                "in/ROE_JANE.json",
                fx.json("ct32.json", |v| v["geometry"]["size"] = json!(1_000_000)),
            )
            .forbid("DOE_JOHN")
            .forbid("ROE_JANE"),
    );
    v.push(
        vb(
            "batch anonymize hides DICOM folder names",
            Exit0,
            "SMITH_ANNA",
            "--anonymize",
        )
        .fix_as(fx, "s0.dcm", "SMITH_ANNA/s0.dcm")
        .fix_as(fx, "s1.dcm", "SMITH_ANNA/s1.dcm")
        .forbid("SMITH_ANNA"),
    );
    v.push(
        good(b(
            "batch rerun over an earlier run's NPY outputs",
            Exit0,
            "",
        ))
        .fix_as(fx, "g32.npy", "out/a.npy")
        .text("out/summary.json", "{}")
        .mutable("out/"),
    );
    v.push(
        vb(
            "batch rerun over an earlier run's DICOM outputs",
            Exit0,
            "ct.dcm",
            "",
        )
        .fix(fx, &["ct.dcm"])
        .fix_as(fx, "ct.dcm", "out/ct/slice_0001.dcm")
        .text("out/summary.json", "{}")
        .mutable("out/"),
    );
    for (name, tag, vr, value) in [
        ("RescaleSlope NaN", tags::RESCALE_SLOPE, VR::DS, "NaN"),
        ("RescaleSlope 0", tags::RESCALE_SLOPE, VR::DS, "0"),
        (
            "RescaleIntercept inf",
            tags::RESCALE_INTERCEPT,
            VR::DS,
            "inf",
        ),
        ("PixelSpacing 0,-1", tags::PIXEL_SPACING, VR::DS, "0\\-1"),
        ("Rows 65535", tags::ROWS, VR::US, "65535"),
        ("BitsAllocated 7", tags::BITS_ALLOCATED, VR::US, "7"),
    ] {
        v.push(
            vb(&format!("batch dicom {name}"), Exit2, "t.dcm", "")
                .file("t.dcm", dicom_edit(&fx.get("ct.dcm"), tag, vr, value))
                .mention("t.dcm"),
        );
    }
    v.push(
        good(b("batch out flag in batch mode", Exit2, "-o r.npy"))
            .refused_up_front()
            .mention("--out"),
    );
    v.push(
        good(b("batch symlink loop in the folder", Exit2, ""))
            .link("in/loop", ".")
            .mention("loop"),
    );
    v.push(
        good(b("batch dangling symlink in the folder", Exit2, ""))
            .link("in/z.npy", "gone.npy")
            .fix_as(fx, "ct32.json", "in/z.json")
            .mention("z"),
    );
    v.push(
        good(b("batch input names with odd characters", Exit0, ""))
            .fix_as(fx, "ct32.npy", "in/ü b#%.npy")
            .fix_as(fx, "ct32.json", "in/ü b#%.json"),
    );
    v.push(case("batch name collision with a std map", Exit2, "recon ct --input in --output out --method dds --steps 2 --samples 2 --units model --model MODEL").batch("out").fix_as(fx, "ct64.npy", "in/a_std.npy").fix_as(fx, "ct64.json", "in/a_std.json").fix_as(fx, "ct64.npy", "in/a.npy").fix_as(fx, "ct64.json", "in/a.json").refused_up_front().mention("a_std"));
    v.push(
        good(b(
            "batch a DICOM series and a measurement named alike",
            Exit0,
            "",
        ))
        .fix_as(fx, "s0.dcm", "in/a_/s0.dcm")
        .fix_as(fx, "s1.dcm", "in/a_/s1.dcm"),
    );
    // volumes
    v.push(vb("batch nifti volume valid", Exit0, "vol.nii", "--views 10").fix(fx, &["vol.nii"]));
    v.push(
        vb(
            "batch nifti.gz volume valid",
            Exit0,
            "vol.nii.gz",
            "--views 10",
        )
        .fix(fx, &["vol.nii.gz"]),
    );
    v.push(
        vb("batch volume views 0", Exit2, "vol.nii", "--views 0")
            .fix(fx, &["vol.nii"])
            .refused_up_front()
            .mention("--views"),
    );
    v.push(
        vb(
            "batch volume views 1e7",
            Exit2,
            "vol.nii",
            "--views 10000000",
        )
        .fix(fx, &["vol.nii"])
        .refused_up_front()
        .mention("--views|views"),
    );
    v.push(
        vb("batch volume axis 5", Exit2, "vol.nii", "--axis 5")
            .fix(fx, &["vol.nii"])
            .refused_up_front()
            .mention("--axis"),
    );
    v.push(
        vb("batch nifti truncated", Exit2, "t.nii", "")
            .file("t.nii", fx.head("vol.nii", 2000))
            .mention("t.nii"),
    );
    v.push(
        vb("batch nifti.gz truncated", Exit2, "t.nii.gz", "")
            .file("t.nii.gz", fx.head("vol.nii.gz", 300))
            .mention("t.nii.gz"),
    );
    v.push(
        vb("batch nifti.gz not gzip", Exit2, "t.nii.gz", "")
            .text("t.nii.gz", "not a nifti file")
            .mention("t.nii.gz"),
    );
    v.push(
        vb("batch nifti dim -5", Exit2, "t.nii", "")
            .file("t.nii", nifti([3, 32, -5, 3], &[0.5; 32 * 32 * 3]))
            .mention("t.nii")
            .mention("-5"),
    );
    v.push(
        vb("batch nifti dim 0 slices", Exit2, "t.nii", "")
            .file("t.nii", nifti([3, 32, 32, 0], &[]))
            .mention("t.nii"),
    );
    v.push(
        vb("batch nifti claims 30000³", Exit2, "t.nii", "")
            .file("t.nii", nifti([3, 30000, 30000, 30000], &[0.5; 64]))
            .mention("t.nii"),
    );
    v.push(
        vb("batch nifti NaN voxels", Exit2, "t.nii", "")
            .file("t.nii", nifti([3, 32, 32, 2], &[0.5, f32::NAN]))
            .mention("t.nii"),
    );
    v.push(
        good(vb(
            "batch measurement with NaN among good ones",
            Exit2,
            "in",
            "",
        ))
        .file("in/v.npy", npy_f32(&[23, 46], &[0.5, f32::NAN]))
        .fix_as(fx, "ct32.json", "in/v.json")
        .mention("v"),
    );
    v.push(
        case(
            "batch mri volume acceleration 0",
            Exit2,
            "recon mri --method zero-filled --input vol.nii --output out --acceleration 0",
        )
        .batch("out")
        .fix(fx, &["vol.nii"])
        .refused_up_front()
        .mention("--acceleration|acceleration"),
    );
    v.push(
        case(
            "batch mri volume acceleration NaN",
            Exit2,
            "recon mri --method zero-filled --input vol.nii --output out --acceleration nan",
        )
        .batch("out")
        .fix(fx, &["vol.nii"])
        .refused_up_front()
        .mention("--acceleration|acceleration"),
    );
    v.push(
        case(
            "batch mri volume valid",
            Exit0,
            "recon mri --method zero-filled --input vol.nii --output out",
        )
        .batch("out")
        .fix(fx, &["vol.nii"]),
    );
    v.push(
        vb(
            "batch views with measurement inputs",
            Exit2,
            "in",
            "--views 10",
        )
        .fix_as(fx, "ct32.npy", "in/a.npy")
        .fix_as(fx, "ct32.json", "in/a.json")
        .mention("--views")
        .refused_up_front(),
    );
    // DICOM
    v.push(vb("batch dicom file valid", Exit0, "ct.dcm", "").fix(fx, &["ct.dcm"]));
    v.push(
        vb("batch dicom series valid", Exit0, "ser", "")
            .fix_as(fx, "s0.dcm", "ser/s0.dcm")
            .fix_as(fx, "s1.dcm", "ser/s1.dcm")
            .fix_as(fx, "s2.dcm", "ser/s2.dcm"),
    );
    v.push(
        vb("batch dicom truncated", Exit2, "t.dcm", "")
            .file("t.dcm", fx.head("ct.dcm", 400))
            .mention("t.dcm"),
    );
    v.push(
        vb("batch dicom random bytes", Exit2, "t.dcm", "")
            .file("t.dcm", random_bytes(3000, 11))
            .mention("t.dcm"),
    );
    v.push(
        vb(
            "batch dicom with DICM magic then garbage",
            Exit2,
            "t.dcm",
            "",
        )
        .file("t.dcm", {
            let mut b = vec![0u8; 128];
            b.extend(b"DICM");
            b.extend(random_bytes(2000, 12));
            b
        })
        .mention("t.dcm"),
    );
    v.push(
        vb("batch dicom corrupted pixel region", Exit2Or1, "t.dcm", "")
            .file("t.dcm", fx.corrupt("ct.dcm", 300, 64, 13))
            .mention("t.dcm"),
    );
    v.push(
        vb(
            "batch dicom structured report (no pixels)",
            Exit2,
            "sr.dcm",
            "",
        )
        .fix(fx, &["sr.dcm"])
        .mention("sr.dcm"),
    );
    v.push(
        vb(
            "batch dicom series with a truncated slice",
            Exit2,
            "ser",
            "",
        )
        .fix_as(fx, "s0.dcm", "ser/s0.dcm")
        .fix_as(fx, "s1.dcm", "ser/s1.dcm")
        .file("ser/s2.dcm", fx.head("s2.dcm", 600))
        .mention("s2.dcm|ser"),
    );
    v.push(
        vb("batch dicom zero bytes", Exit2, "t.dcm", "")
            .file("t.dcm", vec![])
            .mention("t.dcm"),
    );
    // the placeholder model
    let model = repo("models/ct_phantom_64/model.safetensors");
    for c in v.iter_mut() {
        for a in c.args.iter_mut() {
            if a == "MODEL" {
                *a = model.clone();
            }
        }
    }
}

fn metrics_cases(v: &mut Vec<Case>, fx: &Fixtures) {
    let m = |name: &str, e: Expect, a: &str, r: &str, extra: &str| {
        case(name, e, &format!("metrics -i {a} -r {r} {extra}"))
    };
    v.push(
        m(
            "metrics valid",
            Exit0,
            "g32.npy",
            "g32b.npy",
            "--data-range 1",
        )
        .fix(fx, &["g32.npy", "g32b.npy"]),
    );
    v.push(
        m(
            "metrics identical images",
            Exit0,
            "g32.npy",
            "g32.npy",
            "--data-range 1",
        )
        .fix(fx, &["g32.npy"]),
    );
    v.push(
        m(
            "metrics shape mismatch",
            Exit2,
            "g32.npy",
            "g16.npy",
            "--data-range 1",
        )
        .fix(fx, &["g32.npy", "g16.npy"])
        .mention("g16.npy|g32.npy"),
    );
    v.push(
        m(
            "metrics NaN input",
            Exit2,
            "n.npy",
            "g32.npy",
            "--data-range 1",
        )
        .fix(fx, &["g32.npy"])
        .file("n.npy", npy_f32(&[32, 32], &[0.5, f32::NAN]))
        .mention("n.npy"),
    );
    v.push(
        m(
            "metrics inf reference",
            Exit2,
            "g32.npy",
            "n.npy",
            "--data-range 1",
        )
        .fix(fx, &["g32.npy"])
        .file("n.npy", npy_f32(&[32, 32], &[f32::INFINITY, 0.5]))
        .mention("n.npy"),
    );
    v.push(
        m(
            "metrics constant images",
            Exit0,
            "c.npy",
            "d.npy",
            "--data-range 1",
        )
        .file("c.npy", npy_f32(&[32, 32], &[0.5]))
        .file("d.npy", npy_f32(&[32, 32], &[0.25])),
    );
    v.push(
        m(
            "metrics data-range 0",
            Exit2,
            "g32.npy",
            "g32b.npy",
            "--data-range 0",
        )
        .fix(fx, &["g32.npy", "g32b.npy"])
        .mention("--data-range"),
    );
    v.push(
        m(
            "metrics data-range negative",
            Exit2,
            "g32.npy",
            "g32b.npy",
            "--data-range=-1",
        )
        .fix(fx, &["g32.npy", "g32b.npy"])
        .mention("--data-range"),
    );
    v.push(
        m(
            "metrics data-range NaN",
            Exit2,
            "g32.npy",
            "g32b.npy",
            "--data-range nan",
        )
        .fix(fx, &["g32.npy", "g32b.npy"])
        .mention("--data-range"),
    );
    v.push(
        m(
            "metrics data-range inf",
            Exit2,
            "g32.npy",
            "g32b.npy",
            "--data-range inf",
        )
        .fix(fx, &["g32.npy", "g32b.npy"])
        .mention("--data-range"),
    );
    v.push(
        m(
            "metrics data-range 1e-300",
            Exit0,
            "g32.npy",
            "g32b.npy",
            "--data-range 1e-300",
        )
        .fix(fx, &["g32.npy", "g32b.npy"]),
    );
    v.push(
        m(
            "metrics data-range 1e300",
            Exit2,
            "g32.npy",
            "g32b.npy",
            "--data-range 1e300",
        )
        .fix(fx, &["g32.npy", "g32b.npy"])
        .mention("--data-range"),
    );
    v.push(
        m(
            "metrics slice on 2-D",
            Exit2,
            "g32.npy",
            "g32b.npy",
            "--data-range 1 --slice 0,0",
        )
        .fix(fx, &["g32.npy", "g32b.npy"])
        .mention("--slice"),
    );
    v.push(
        m(
            "metrics slice out of range",
            Exit2,
            "vol.npy",
            "vol.npy",
            "--data-range 1 --slice 0,9",
        )
        .fix(fx, &["vol.npy"])
        .mention("--slice|slice index"),
    );
    v.push(
        m(
            "metrics volume without slice",
            Exit2,
            "vol.npy",
            "vol.npy",
            "--data-range 1",
        )
        .fix(fx, &["vol.npy"])
        .mention("vol.npy|--slice"),
    );
    v.push(
        m(
            "metrics in-window inverted",
            Exit2,
            "g32.png",
            "g32.png",
            "--data-range 1 --in-window 1,0",
        )
        .fix(fx, &["g32.png"])
        .mention("--in-window"),
    );
    v.push(
        m(
            "metrics input is a folder",
            Exit2,
            "d",
            "g32.npy",
            "--data-range 1",
        )
        .fix(fx, &["g32.npy"])
        .dir("d")
        .mention("d"),
    );
    v.push(
        m(
            "metrics complex input",
            Exit2,
            "mri32.npy",
            "g32.npy",
            "--data-range 1",
        )
        .fix(fx, &["mri32.npy", "g32.npy"])
        .mention("mri32.npy"),
    );
    v.push(
        m(
            "metrics 1x1 images",
            Exit2,
            "o.npy",
            "o.npy",
            "--data-range 1",
        )
        .file("o.npy", npy_f32(&[1, 1], &[0.5]))
        .mention("o.npy"),
    );
    v.push(
        m(
            "metrics 0x0 images",
            Exit2,
            "o.npy",
            "o.npy",
            "--data-range 1",
        )
        .file("o.npy", npy_f32(&[0, 0], &[0.5]))
        .mention("o.npy"),
    );
    v.push(
        m(
            "metrics 4x4 images with fov",
            Exit0,
            "a.npy",
            "b.npy",
            "--data-range 1 --fov --ssim-preset skimage",
        )
        .file("a.npy", npy_f32(&[8, 8], &smooth(8, 8)))
        .file("b.npy", npy_f32(&[8, 8], &[0.5])),
    );
    v.push(
        m(
            "metrics missing reference",
            Exit2,
            "g32.npy",
            "nope.npy",
            "--data-range 1",
        )
        .fix(fx, &["g32.npy"])
        .mention("nope.npy"),
    );
    v.push(
        m(
            "metrics missing data-range",
            Exit2,
            "g32.npy",
            "g32b.npy",
            "",
        )
        .fix(fx, &["g32.npy", "g32b.npy"])
        .mention("--data-range"),
    );
    v.push(
        m(
            "metrics nifti vs npy",
            Exit0,
            "g32.nii.gz",
            "g32.npy",
            "--data-range 1",
        )
        .fix(fx, &["g32.nii.gz", "g32.npy"]),
    );
}

fn train_cases(v: &mut Vec<Case>, fx: &Fixtures) {
    let cfg = fx.text("tt.toml");
    let t = |name: &str, e: Expect, config: String, extra: &str| {
        case(
            name,
            e,
            &format!("train --config c.toml --out-dir run {extra}"),
        )
        .text("c.toml", &config)
    };
    let edit = |from: &str, to: &str| {
        assert!(cfg.contains(from), "tt.toml has no {from}");
        cfg.replacen(from, to, 1)
    };
    let run_files = |mut c: Case| {
        for (name, _) in fx.files.iter().filter(|(n, _)| n.starts_with("run/")) {
            c = c.fix(fx, &[name.as_str()]);
        }
        c
    };
    v.push(
        t("train valid", Exit0, cfg.clone(), "")
            .out("run/model.safetensors")
            .timeout(60),
    );
    v.push(
        case(
            "train config missing",
            Exit2,
            "train --config nope.toml --out-dir run",
        )
        .mention("nope.toml"),
    );
    v.push(t("train config not TOML", Exit2, "steps = [\n".into(), "").mention("c.toml"));
    v.push(
        t(
            "train config random bytes",
            Exit2,
            String::from_utf8_lossy(&random_bytes(300, 21)).into_owned(),
            "",
        )
        .mention("c.toml"),
    );
    v.push(t("train steps 0", Exit2, edit("steps = 2", "steps = 0"), "").mention("steps"));
    v.push(
        t(
            "train steps negative",
            Exit2,
            edit("steps = 2", "steps = -3"),
            "",
        )
        .mention("steps"),
    );
    v.push(
        t(
            "train steps is a string",
            Exit2,
            edit("steps = 2", "steps = \"two\""),
            "",
        )
        .mention("steps"),
    );
    v.push(
        t(
            "train steps 1e12",
            Exit2,
            edit("steps = 2", "steps = 1000000000000"),
            "",
        )
        .mention("steps"),
    );
    v.push(t("train lr NaN", Exit2, edit("lr = 2e-3", "lr = nan"), "").mention("lr"));
    v.push(
        t(
            "train lr negative",
            Exit2,
            edit("lr = 2e-3", "lr = -1.0"),
            "",
        )
        .mention("lr"),
    );
    v.push(
        t(
            "train batch_size 0",
            Exit2,
            edit("batch_size = 4", "batch_size = 0"),
            "",
        )
        .mention("batch_size"),
    );
    v.push(
        t(
            "train batch_size 1e9",
            Exit2,
            edit("batch_size = 4", "batch_size = 1000000000"),
            "",
        )
        .mention("batch_size"),
    );
    v.push(t("train ema 2", Exit2, edit("ema = 0.9", "ema = 2.0"), "").mention("ema"));
    v.push(
        t(
            "train image_size 0",
            Exit2,
            edit("image_size = 16", "image_size = 0"),
            "",
        )
        .mention("image_size"),
    );
    v.push(
        t(
            "train image_size 100000",
            Exit2,
            edit("image_size = 16", "image_size = 100000"),
            "",
        )
        .mention("image_size"),
    );
    v.push(t("train nf 0", Exit2, edit("nf = 8", "nf = 0"), "").mention("nf"));
    v.push(
        t(
            "train ch_mult empty",
            Exit2,
            edit("ch_mult = [1, 2]", "ch_mult = []"),
            "",
        )
        .mention("ch_mult"),
    );
    v.push(
        t(
            "train sigma_max below sigma_min",
            Exit2,
            edit("sigma_max = 8.0", "sigma_max = 0.001"),
            "",
        )
        .mention("sigma"),
    );
    v.push(
        t(
            "train unknown sde",
            Exit2,
            edit("kind = \"ve\"", "kind = \"banana\""),
            "",
        )
        .mention("banana"),
    );
    v.push(
        t(
            "train unknown data kind",
            Exit2,
            edit("kind = \"phantom-ellipses\"", "kind = \"banana\""),
            "",
        )
        .mention("banana"),
    );
    v.push(
        t(
            "train unknown key",
            Exit2,
            format!("typo_key = 1\n{cfg}"),
            "",
        )
        .mention("typo_key"),
    );
    v.push(
        t(
            "train data folder missing",
            Exit2,
            edit(
                "kind = \"phantom-ellipses\"\nn_ellipses = 3",
                "kind = \"folder\"\npath = \"nope\"",
            ),
            "",
        )
        .mention("nope"),
    );
    v.push(
        t(
            "train data folder empty",
            Exit2,
            edit(
                "kind = \"phantom-ellipses\"\nn_ellipses = 3",
                "kind = \"folder\"\npath = \"imgs\"",
            ),
            "",
        )
        .dir("imgs")
        .mention("imgs"),
    );
    v.push(
        t(
            "train data folder of corrupt images",
            Exit2,
            edit(
                "kind = \"phantom-ellipses\"\nn_ellipses = 3",
                "kind = \"folder\"\npath = \"imgs\"",
            ),
            "",
        )
        .file("imgs/a.npy", random_bytes(100, 4))
        .file("imgs/b.png", random_bytes(100, 5))
        .mention("imgs"),
    );
    v.push(t("train --steps 0", Exit2, cfg.clone(), "--steps 0").mention("--steps"));
    v.push(
        t(
            "train --reset-ema without --resume",
            Exit2,
            cfg.clone(),
            "--reset-ema",
        )
        .mention("--reset-ema"),
    );
    v.push(
        t(
            "train --resume without a run",
            Exit2,
            cfg.clone(),
            "--resume",
        )
        .mention("run|train_state"),
    );
    v.push(run_files(t("train into an existing run", Exit2, cfg.clone(), "")).mention("--resume"));
    v.push(
        run_files(t(
            "train resume with a changed architecture",
            Exit2,
            edit("nf = 8", "nf = 16"),
            "--resume",
        ))
        .mention("nf"),
    );
    v.push(
        run_files(t(
            "train resume with a corrupt state",
            Exit2,
            cfg.clone(),
            "--resume --steps 4",
        ))
        .file(
            "run/train_state.safetensors",
            fx.head("run/train_state.safetensors", 5000),
        )
        .mention("train_state.safetensors"),
    );
    v.push(
        run_files(t(
            "train resume valid",
            Exit0,
            cfg.clone(),
            "--resume --steps 4",
        ))
        .mutable("run/")
        .timeout(60),
    );
    v.push(
        run_files(t("train force valid", Exit0, cfg.clone(), "--force"))
            .mutable("run/")
            .timeout(60),
    );
    v.push(
        t("train out-dir is a file", Exit2Or1, cfg.clone(), "")
            .text("run", "x")
            .mention("run"),
    );
    v.push(
        t(
            "train lsgm config with broken vae",
            Exit2,
            std::fs::read_to_string(repo("configs/lsgm_tiny.toml"))
                .unwrap()
                .replace("latent_channels = 4", "latent_channels = 0"),
            "",
        )
        .mention("latent_channels"),
    );
}

fn model_cases(v: &mut Vec<Case>, fx: &Fixtures) {
    let model = repo("models/ct_phantom_64/model.safetensors");
    let lsgm = repo("models/lsgm_ct_64/lsgm.safetensors");
    let s = |name: &str, e: Expect, m: &str, extra: &str| {
        case(name, e, &format!("sample --model {m} --out smp {extra}")).out("smp")
    };
    v.push(s(
        "sample valid pc",
        Exit0,
        &model,
        "--n 1 --batch 1 --steps 2",
    ));
    v.push(s(
        "sample valid ode euler",
        Exit0,
        &model,
        "--n 1 --batch 1 --steps 2 --sampler ode --ode-solver euler",
    ));
    v.push(
        s(
            "sample model missing",
            Exit2,
            "nope.safetensors",
            "--n 1 --steps 2",
        )
        .mention("nope.safetensors"),
    );
    v.push(
        s("sample model is a folder", Exit2, "mdir", "--n 1 --steps 2")
            .dir("mdir")
            .mention("mdir"),
    );
    v.push(s(
        "sample an LSGM checkpoint",
        Exit0,
        &lsgm,
        "--n 1 --steps 2",
    ));
    v.push(
        s(
            "sample model is text",
            Exit2,
            "t.safetensors",
            "--n 1 --steps 2",
        )
        .text("t.safetensors", "hello")
        .mention("t.safetensors"),
    );
    v.push(
        s(
            "sample model truncated",
            Exit2,
            "t.safetensors",
            "--n 1 --steps 2",
        )
        .file("t.safetensors", fx.head("run/model.safetensors", 3000))
        .mention("t.safetensors"),
    );
    v.push(s("sample n 0", Exit2, &model, "--n 0 --steps 2").mention("--n"));
    v.push(s("sample n 1e9", Exit2, &model, "--n 1000000000 --steps 2").mention("--n"));
    v.push(s("sample batch 0", Exit2, &model, "--n 1 --batch 0 --steps 2").mention("--batch"));
    v.push(
        s(
            "sample batch 1e6",
            Exit2,
            &model,
            "--n 1000000 --batch 1000000 --steps 2",
        )
        .mention("--batch|--n"),
    );
    v.push(s("sample steps 0", Exit2, &model, "--n 1 --steps 0").mention("--steps"));
    v.push(s("sample snr NaN", Exit2, &model, "--n 1 --steps 2 --snr nan").mention("--snr"));
    v.push(s("sample tol 0", Exit2, &model, "--n 1 --sampler ode --tol 0").mention("--tol"));
    v.push(
        s(
            "sample tol NaN",
            Exit2,
            &model,
            "--n 1 --sampler ode --tol nan",
        )
        .mention("--tol"),
    );
    v.push(
        s(
            "sample unknown predictor",
            Exit2,
            &model,
            "--n 1 --steps 2 --predictor banana",
        )
        .mention("banana"),
    );
    v.push(
        s(
            "sample unknown corrector",
            Exit2,
            &model,
            "--n 1 --steps 2 --corrector banana",
        )
        .mention("banana"),
    );
    v.push(
        s(
            "sample ode-solver with pc",
            Exit2,
            &model,
            "--n 1 --steps 2 --ode-solver heun",
        )
        .mention("--ode-solver"),
    );
    v.push(
        s("sample out is a file", Exit2, &model, "--n 1 --steps 2")
            .text("smp", "x")
            .mention("smp"),
    );

    let c = |name: &str, e: Expect, m: &str, extra: &str| {
        case(
            name,
            e,
            &format!("calibrate --model {m} --out cal.safetensors {extra}"),
        )
        .out("cal.safetensors")
    };
    v.push(c("calibrate valid", Exit0, &model, "--n 2"));
    v.push(
        c(
            "calibrate model missing",
            Exit2,
            "nope.safetensors",
            "--n 2",
        )
        .mention("nope.safetensors"),
    );
    v.push(c("calibrate model is LSGM", Exit2, &lsgm, "--n 2").mention("lsgm.safetensors"));
    v.push(
        c("calibrate model is a folder", Exit2, "mdir", "--n 2")
            .dir("mdir")
            .mention("mdir"),
    );
    v.push(
        case(
            "calibrate out equals model",
            Exit2,
            "calibrate --model m.safetensors --out m.safetensors --n 2",
        )
        .file("m.safetensors", std::fs::read(&model).unwrap())
        .mention("--out|m.safetensors"),
    );
    v.push(
        case(
            "calibrate out is a symlink to the model",
            Exit2,
            "calibrate --model m.safetensors --out l.safetensors --n 2",
        )
        .file("m.safetensors", std::fs::read(&model).unwrap())
        .link("l.safetensors", "m.safetensors")
        .mention("--out|l.safetensors|m.safetensors"),
    );
    v.push(c("calibrate n 0", Exit2, &model, "--n 0").mention("--n"));
    v.push(c("calibrate n 1e9", Exit2, &model, "--n 1000000000").mention("--n"));
    v.push(
        c(
            "calibrate data missing",
            Exit2,
            &model,
            "--n 2 --data nope.toml",
        )
        .mention("nope.toml"),
    );
    v.push(
        c(
            "calibrate data not TOML",
            Exit2,
            &model,
            "--n 2 --data d.toml",
        )
        .text("d.toml", "[[[")
        .mention("d.toml"),
    );
    v.push(
        c(
            "calibrate check missing",
            Exit2,
            &model,
            "--n 2 --check nope.npy",
        )
        .mention("nope.npy"),
    );
    v.push(
        c(
            "calibrate check corrupt",
            Exit2,
            &model,
            "--n 2 --check x.npy",
        )
        .file("x.npy", random_bytes(100, 31))
        .mention("x.npy"),
    );
    v.push(
        c(
            "calibrate check-phantoms 1e9",
            Exit2,
            &model,
            "--n 2 --check-phantoms 1000000000",
        )
        .mention("--check-phantoms"),
    );

    let tn = |name: &str, e: Expect, extra: &str| {
        case(
            name,
            e,
            &format!("tune --task ct --n 1 --budget 2 --init 1 --size 32 --out t.toml {extra}"),
        )
        .out("t.toml")
    };
    v.push(tn("tune valid", Exit0, "--method fista-tv").timeout(40));
    v.push(tn("tune n 0", Exit2, "--method fista-tv --n 0").mention("--n"));
    v.push(tn("tune budget 0", Exit2, "--method fista-tv --budget 0").mention("--budget"));
    v.push(
        tn(
            "tune budget 1e9",
            Exit2,
            "--method fista-tv --budget 1000000000",
        )
        .mention("--budget"),
    );
    v.push(tn("tune views 0", Exit2, "--method fista-tv --views 0").mention("--views|views"));
    v.push(
        tn(
            "tune views 1e7",
            Exit2,
            "--method fista-tv --views 10000000",
        )
        .mention("--views|views"),
    );
    v.push(tn("tune size 0", Exit2, "--method fista-tv --size 0").mention("--size"));
    v.push(tn("tune size 1e6", Exit2, "--method fista-tv --size 1000000").mention("--size"));
    v.push(
        tn(
            "tune fix unknown parameter",
            Exit2,
            "--method fista-tv --fix banana=1",
        )
        .mention("banana"),
    );
    v.push(
        tn(
            "tune fix NaN",
            Exit2,
            "--method fista-tv --fix tv_weight=nan",
        )
        .mention("tv_weight"),
    );
    v.push(
        tn(
            "tune fix without value",
            Exit2,
            "--method fista-tv --fix tv_weight",
        )
        .mention("--fix|tv_weight"),
    );
    v.push(tn("tune nothing to tune (fbp)", Exit2, "--method fbp").mention("fbp"));
    v.push(tn("tune score method without model", Exit2, "--method dds").mention("--model"));
    v.push(
        tn(
            "tune latent-dc without latent model",
            Exit2,
            "--method latent-dc",
        )
        .mention("--latent-model"),
    );
    v.push(
        tn(
            "tune resume without a log",
            Exit2,
            "--method fista-tv --resume",
        )
        .mention("log"),
    );
    v.push(
        tn(
            "tune resume with a corrupt log",
            Exit2,
            "--method fista-tv --resume --log l.json",
        )
        .text("l.json", "{\"evaluations\": [")
        .mention("l.json"),
    );
    v.push(
        tn(
            "tune out equals the log",
            Exit2,
            "--method fista-tv --log t.toml",
        )
        .mention("t.toml|--log"),
    );
    v.push(
        tn(
            "tune out is an existing broken config",
            Exit2,
            "--method fista-tv",
        )
        .text("t.toml", "[[[ broken")
        .mention("t.toml"),
    );
    v.push(case("tune mri data missing", Exit2, "tune --task mri --method fista-tv --n 1 --budget 2 --init 1 --data nope.npy --out t.toml").mention("nope.npy"));
    v.push(case("tune mri accel 0", Exit2, "tune --task mri --method fista-tv --n 1 --budget 2 --init 1 --accel 0 --data vol.npy --out t.toml").fix(fx, &["vol.npy"]).mention("--accel|acceleration"));

    let br = |name: &str, e: Expect, extra: &str| {
        case(
            name,
            e,
            &format!("bench recon --n 1 --repeats 1 --size 32 --out br {extra}"),
        )
        .out("br")
    };
    v.push(br(
        "bench recon valid",
        Exit0,
        "--task ct --methods fbp --views 10",
    ));
    v.push(
        br(
            "bench recon unknown method",
            Exit2,
            "--task ct --methods fbp,banana --views 10",
        )
        .mention("banana"),
    );
    v.push(
        br(
            "bench recon empty method list",
            Exit2,
            "--task ct --methods= --views 10",
        )
        .mention("--methods"),
    );
    v.push(
        br(
            "bench recon views 0",
            Exit2,
            "--task ct --methods fbp --views 0",
        )
        .mention("--views"),
    );
    v.push(
        br(
            "bench recon views 181",
            Exit2,
            "--task ct --methods fbp --views 181",
        )
        .mention("--views"),
    );
    v.push(
        br(
            "bench recon views garbage",
            Exit2,
            "--task ct --methods fbp --views 10,x",
        )
        .mention("--views"),
    );
    v.push(
        br(
            "bench recon n 0",
            Exit2,
            "--task ct --methods fbp --views 10 --n 0",
        )
        .mention("--n"),
    );
    v.push(
        br(
            "bench recon repeats 0",
            Exit2,
            "--task ct --methods fbp --views 10 --repeats 0",
        )
        .mention("--repeats"),
    );
    v.push(
        br(
            "bench recon size 1e6",
            Exit2,
            "--task ct --methods fbp --views 10 --size 1000000",
        )
        .mention("--size"),
    );
    v.push(
        br(
            "bench recon score method without model",
            Exit2,
            "--task ct --methods pc-projection --views 10",
        )
        .mention("--model"),
    );
    v.push(
        br(
            "bench recon mri accel 0",
            Exit2,
            "--task mri --methods zero-filled --accel 0 --data vol.npy",
        )
        .fix(fx, &["vol.npy"])
        .mention("--accel"),
    );
    v.push(
        br(
            "bench recon mri data corrupt",
            Exit2,
            "--task mri --methods zero-filled --accel 4 --data v.npy",
        )
        .file("v.npy", random_bytes(200, 41))
        .mention("v.npy"),
    );
    v.push(
        br(
            "bench recon zero-filled for ct",
            Exit2,
            "--task ct --methods zero-filled --views 10",
        )
        .mention("zero-filled"),
    );
    v.push(
        br(
            "bench recon out is a file",
            Exit2Or1,
            "--task ct --methods fbp --views 10",
        )
        .text("br", "x")
        .mention("br"),
    );
    v.push(
        case(
            "bench operators repeats 0",
            Exit2,
            "bench --repeats 0 operators",
        )
        .mention("--repeats"),
    );

    let d = |name: &str, e: Expect, extra: &str| {
        case(name, e, &format!("demo --out-dir dd {extra}")).out("dd")
    };
    v.push(d("demo classical only", Exit0, "--classical-only").timeout(60));
    v.push(d("demo views 0", Exit2, "--views 0").mention("--views"));
    v.push(d("demo views 1e7", Exit2, "--views 10000000").mention("--views"));
    v.push(d("demo steps 0", Exit2, "--steps 0").mention("--steps"));
    v.push(d("demo samples 0", Exit2, "--samples 0").mention("--samples"));
    v.push(d("demo sigma negative", Exit2, "--sigma=-1").mention("--sigma"));
    v.push(d("demo sigma NaN", Exit2, "--sigma nan").mention("--sigma"));
    v.push(d("demo dense-views 0", Exit2, "--dense-views 0").mention("--dense-views"));
    v.push(d("demo t-start 2", Exit2, "--t-start 2").mention("--t-start"));
    v.push(
        d("demo model is text", Exit2, "--model t.safetensors")
            .text("t.safetensors", "x")
            .mention("t.safetensors"),
    );
    v.push(
        d("demo out-dir is a file", Exit2Or1, "--classical-only")
            .text("dd", "x")
            .mention("dd"),
    );
    v.push(
        d(
            "demo held-out config missing",
            Exit2,
            "--held-out nope.toml",
        )
        .mention("nope.toml"),
    );
}

/// Fan-beam CT (`simulate ct --geometry fan`) and its sidecar, plus odds and ends.
fn fan_and_misc_cases(v: &mut Vec<Case>, fx: &Fixtures) {
    let sim = |name: &str, e: Expect, extra: &str| {
        case(
            name,
            e,
            &format!("simulate ct -i g32.npy -o m.npy --geometry fan {extra}"),
        )
        .fix(fx, &["g32.npy"])
        .out("m.npy")
    };
    v.push(sim(
        "simulate fan valid short scan",
        Exit0,
        "--short-scan --detector flat",
    ));
    v.push(
        sim(
            "simulate fan source-distance 0",
            Exit2,
            "--source-distance 0",
        )
        .mention("--source-distance|source"),
    );
    v.push(
        sim(
            "simulate fan source-distance NaN",
            Exit2,
            "--source-distance nan",
        )
        .mention("--source-distance|source"),
    );
    v.push(
        sim(
            "simulate fan source-distance 1e30",
            Exit2,
            "--source-distance 1e30",
        )
        .mention("--source-distance|source"),
    );
    v.push(
        sim(
            "simulate fan detector-distance inf",
            Exit2,
            "--detector-distance inf",
        )
        .mention("--detector-distance|detector"),
    );
    v.push(
        sim("simulate fan det-offset NaN", Exit2, "--det-offset nan")
            .mention("--det-offset|det_offset"),
    );
    v.push(
        sim(
            "simulate fan det-offset 1e9",
            Exit2,
            "--det-offset 1000000000",
        )
        .mention("--det-offset|det_offset"),
    );
    v.push(sim("simulate fan n-det 1e9", Exit2, "--n-det 1000000000").mention("--n-det|n_det"));
    v.push(
        sim(
            "simulate fan det-spacing 1e-30",
            Exit2,
            "--det-spacing 1e-30",
        )
        .mention("--det-spacing|det_spacing"),
    );
    v.push(
        case(
            "simulate fan options without --geometry fan",
            Exit2,
            "simulate ct -i g32.npy -o m.npy --detector-distance 100",
        )
        .fix(fx, &["g32.npy"])
        .mention("--geometry"),
    );
    let fan = |name: &str, e: Expect, sidecar: Vec<u8>, method: &str| {
        case(
            name,
            e,
            &format!("recon ct -i f.npy --method {method} -o r.npy"),
        )
        .fix_as(fx, "fan32.npy", "f.npy")
        .file("f.json", sidecar)
        .out("r.npy")
    };
    let j = |edit: fn(&mut Value)| fx.json("fan32.json", edit);
    let fs = "f.json|f.npy";
    v.push(fan(
        "recon fan fbp valid",
        Exit0,
        fx.get("fan32.json"),
        "fbp",
    ));
    v.push(fan(
        "recon fan fista-tv valid",
        Exit0,
        fx.get("fan32.json"),
        "fista-tv --iterations 3",
    ));
    v.push(
        fan(
            "recon fan source_distance 1e-30",
            Exit2,
            j(|v| v["geometry"]["source_distance"] = json!(1e-30)),
            "fbp",
        )
        .mention(fs),
    );
    v.push(
        fan(
            "recon fan source_distance 1e30",
            Exit2,
            j(|v| v["geometry"]["source_distance"] = json!(1e30)),
            "fista-tv --iterations 3",
        )
        .mention(fs),
    );
    v.push(
        fan(
            "recon fan detector_distance below source",
            Exit2,
            j(|v| v["geometry"]["detector_distance"] = json!(1.0)),
            "fbp",
        )
        .mention(fs),
    );
    v.push(
        fan(
            "recon fan detector_distance null",
            Exit2,
            j(|v| v["geometry"]["detector_distance"] = Value::Null),
            "fbp",
        )
        .mention(fs),
    );
    v.push(
        fan(
            "recon fan det_offset 1e30",
            Exit2,
            j(|v| v["geometry"]["det_offset"] = json!(1e30)),
            "fbp",
        )
        .mention(fs),
    );
    v.push(
        fan(
            "recon fan unknown detector",
            Exit2,
            j(|v| v["geometry"]["detector"] = json!("banana")),
            "fbp",
        )
        .mention(fs),
    );
    v.push(
        fan(
            "recon fan size 1e6",
            Exit2,
            j(|v| v["geometry"]["size"] = json!(1_000_000)),
            "fbp",
        )
        .mention(fs),
    );
    v.push(
        fan(
            "recon fan det_spacing 1e-30",
            Exit2,
            j(|v| v["geometry"]["det_spacing"] = json!(1e-30)),
            "fista-tv --iterations 3",
        )
        .mention(fs),
    );
    v.push(
        fan(
            "recon fan n_det 1e9",
            Exit2,
            j(|v| v["geometry"]["n_det"] = json!(1_000_000_000u64)),
            "fbp",
        )
        .mention(fs),
    );
    v.push(
        fan(
            "recon fan as mri",
            Exit2,
            fx.get("fan32.json"),
            "zero-filled",
        )
        .mention("f.npy"),
    );
    v.last_mut().unwrap().args[1] = "mri".into();

    // odds and ends
    v.push(
        case(
            "recon single-file DICOM output",
            Exit0,
            "recon ct -i m.npy --method fbp -o r.dcm",
        )
        .fix_as(fx, "ct32.npy", "m.npy")
        .fix_as(fx, "ct32.json", "m.json")
        .out("r.dcm"),
    );
    v.push(
        case(
            "recon batch --batch 0 on a volume",
            Exit2,
            "recon ct --method fbp --input vol.nii --output out --batch 0",
        )
        .batch("out")
        .fix(fx, &["vol.nii"])
        .refused_up_front()
        .mention("--batch"),
    );
    v.push(
        case(
            "metrics in-window on npy",
            Exit2,
            "metrics -i g32.npy -r g32b.npy --data-range 1 --in-window 0,1000",
        )
        .fix(fx, &["g32.npy", "g32b.npy"])
        .mention("--in-window"),
    );
    v.push(
        case(
            "metrics 16-bit png valid",
            Exit0,
            "metrics -i g32.png -r g32.npy --data-range 1",
        )
        .fix(fx, &["g32.png", "g32.npy"]),
    );
    v.push(
        case(
            "batch nifti scl_slope NaN",
            Exit2,
            "recon ct --method fbp --input t.nii --output out",
        )
        .batch("out")
        .file("t.nii", {
            let mut b = fx.get("vol.nii");
            b[112..116].copy_from_slice(&f32::NAN.to_le_bytes());
            b
        })
        .mention("t.nii"),
    );
    v.push(
        case(
            "batch nifti vox_offset past the end",
            Exit2,
            "recon ct --method fbp --input t.nii --output out",
        )
        .batch("out")
        .file("t.nii", {
            let mut b = fx.get("vol.nii");
            b[108..112].copy_from_slice(&1.0e9f32.to_le_bytes());
            b
        })
        .mention("t.nii"),
    );
    v.push(
        case(
            "batch nifti unknown datatype",
            Exit2,
            "recon ct --method fbp --input t.nii --output out",
        )
        .batch("out")
        .file("t.nii", {
            let mut b = fx.get("vol.nii");
            b[70..72].copy_from_slice(&2048i16.to_le_bytes());
            b
        })
        .mention("t.nii"),
    );
    v.push(
        case(
            "batch nifti bad magic",
            Exit2,
            "recon ct --method fbp --input t.nii --output out",
        )
        .batch("out")
        .file("t.nii", {
            let mut b = fx.get("vol.nii");
            b[344..348].copy_from_slice(b"xyz\0");
            b
        })
        .mention("t.nii"),
    );
    v.push(
        case(
            "batch manifest with CRLF and comments",
            Exit0,
            "recon ct --method fbp --input m.csv --output out",
        )
        .batch("out")
        .text("m.csv", "# list\r\npath,label\r\nin/a.npy,x\r\n\r\n")
        .fix_as(fx, "ct32.npy", "in/a.npy")
        .fix_as(fx, "ct32.json", "in/a.json")
        .out("out/a.npy"),
    );
    v.push(
        case(
            "train data folder with a NaN image",
            Exit2,
            "train --config c.toml --out-dir run",
        )
        .text(
            "c.toml",
            &fx.text("tt.toml").replacen(
                "kind = \"phantom-ellipses\"\nn_ellipses = 3",
                "kind = \"folder\"\npath = \"imgs\"",
                1,
            ),
        )
        .fix_as(fx, "g16.npy", "imgs/a.npy")
        .file("imgs/b.npy", npy_f32(&[16, 16], &[0.5, f32::NAN]))
        .mention("imgs/b.npy|b.npy"),
    );
    v.push(
        case(
            "calibrate check folder with a NaN image",
            Exit2,
            &format!(
                "calibrate --model {} --out cal.safetensors --n 2 --check chk",
                repo("models/ct_phantom_64/model.safetensors")
            ),
        )
        .file("chk/a.npy", npy_f32(&[64, 64], &[0.5, f32::NAN]))
        .mention("a.npy|chk"),
    );
    // task-config values outside their ranges are bad input wherever a config is read
    v.push(case("bench recon config t_start -1", Exit2, &format!("bench recon --task ct --methods dds --views 10 --n 1 --repeats 1 --steps 2 --out br --model {} --config c.toml", repo("models/ct_phantom_64/model.safetensors"))).text("c.toml", "[dds]\nt_start = -1.0\n").mention("t_start").out("br"));
    v.push(case("bench recon config tv_weight -1", Exit2, "bench recon --task ct --methods fista-tv --views 10 --n 1 --repeats 1 --size 32 --out br --config c.toml").text("c.toml", "[fista-tv]\ntv_weight = -1.0\n").mention("tv_weight").out("br"));
    v.push(
        case(
            "tune config eta 2",
            Exit2,
            &format!(
                "tune --task ct --method dds --n 1 --budget 2 --init 1 --model {} --out c.toml",
                repo("models/ct_phantom_64/model.safetensors")
            ),
        )
        .text("c.toml", "[dds]\neta = 2.0\n")
        .mention("eta"),
    );
    v.push(case("bench recon nfe-sweep 0", Exit2, "bench recon --task ct --methods fbp --views 10 --n 1 --repeats 1 --size 32 --out br --nfe-sweep 0").mention("--nfe-sweep"));
    v.push(case("bench recon samples 0", Exit2, "bench recon --task ct --methods fbp --views 10 --n 1 --repeats 1 --size 32 --out br --samples 0").mention("--samples"));
    v.push(case("bench recon latent-dc with a text model", Exit2, "bench recon --task ct --methods latent-dc --views 10 --n 1 --repeats 1 --size 32 --out br --latent-model l.safetensors").text("l.safetensors", "nope").mention("l.safetensors"));
    v.push(case("bench recon latent-dc with a score model", Exit2, &format!("bench recon --task ct --methods latent-dc --views 10 --n 1 --repeats 1 --out br --latent-model {}", repo("models/ct_phantom_64/model.safetensors"))).mention("model.safetensors|--latent-model"));
    v.push(
        case(
            "sample nifti valid",
            Exit0,
            &format!(
                "sample --model {} --n 2 --batch 2 --steps 2 --nifti --out smp",
                repo("models/ct_phantom_64/model.safetensors")
            ),
        )
        .out("smp/samples.nii.gz"),
    );
}

fn global_cases(v: &mut Vec<Case>) {
    v.push(case("no arguments", Exit2, ""));
    v.push(case("unknown subcommand", Exit2, "frobnicate").mention("frobnicate"));
    v.push(case("version", Exit0, "--version"));
}

/// The case templates put the flag under test after their defaults (`--steps 2 … --steps 0`):
/// keep the last `--flag value` of each flag so that clap does not refuse the repetition
/// (which would pass the case for the wrong reason). `--fix` and `--check` repeat.
fn last_flag_wins(args: &[String]) -> Vec<String> {
    let mut items: Vec<Vec<String>> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let takes_value = a.starts_with("--")
            && !a.contains('=')
            && i + 1 < args.len()
            && !args[i + 1].starts_with("--");
        let item = if takes_value {
            vec![a.clone(), args[i + 1].clone()]
        } else {
            vec![a.clone()]
        };
        i += item.len();
        if a.starts_with("--") && !matches!(a.as_str(), "--fix" | "--check") {
            let flag = a.split('=').next().unwrap().to_string();
            items.retain(|it| it[0].split('=').next().unwrap() != flag);
        }
        items.push(item);
    }
    items.concat()
}

/// The memory budget (`--max-memory`, and its default under the suite's address-space cap),
/// PNG-only options on other formats, the LSGM configuration's values and `train`'s run folder.
fn budget_cases(v: &mut Vec<Case>, fx: &Fixtures) {
    let mm = "--max-memory";
    v.push(
        case(
            "phantom over --max-memory",
            Exit2,
            "phantom --kind shepp-logan --size 4096 --max-memory 1M --out x.npy",
        )
        .mention(mm)
        .mention("--size")
        .out("x.npy"),
    );
    v.push(
        case(
            "phantom --max-memory 0",
            Exit2,
            "phantom --kind shepp-logan --size 16 --max-memory 0 --out x.npy",
        )
        .mention(mm)
        .out("x.npy"),
    );
    v.push(
        case(
            "phantom --max-memory unit",
            Exit2,
            "phantom --kind shepp-logan --size 16 --max-memory 5X --out x.npy",
        )
        .mention(mm)
        .out("x.npy"),
    );
    v.push(
        case(
            "phantom --max-memory with unit valid",
            Exit0,
            "phantom --kind shepp-logan --size 16 --max-memory 64MiB --out x.npy",
        )
        .out("x.npy"),
    );
    v.push(
        case(
            "phantom bit depth on npy output",
            Exit2,
            "phantom --kind shepp-logan --size 16 --bit-depth 8 --out x.npy",
        )
        .mention("--bit-depth")
        .mention("x.npy")
        .out("x.npy"),
    );
    v.push(
        case(
            "phantom bit depth on nifti output",
            Exit2,
            "phantom --kind shepp-logan --size 16 --bit-depth 16 --out x.nii.gz",
        )
        .mention("--bit-depth")
        .out("x.nii.gz"),
    );
    v.push(
        case(
            "phantom bit depth 16 on png valid",
            Exit0,
            "phantom --kind shepp-logan --size 16 --bit-depth 16 --out x.png",
        )
        .out("x.png"),
    );
    v.push(
        case(
            "simulate ct over --max-memory",
            Exit2,
            "simulate ct -i g32.npy --max-memory 40K -o m.npy",
        )
        .fix(fx, &["g32.npy"])
        .mention(mm)
        .mention("g32.npy")
        .out("m.npy"),
    );
    v.push(
        case(
            "simulate mri over --max-memory",
            Exit2,
            "simulate mri -i g32.npy --max-memory 10K -o m.npy",
        )
        .fix(fx, &["g32.npy"])
        .mention(mm)
        .mention("g32.npy")
        .out("m.npy"),
    );
    v.push(
        case(
            "simulate mar over --max-memory",
            Exit2,
            "simulate mar -i met32.npy --max-memory 100K -o m.npy",
        )
        .fix(fx, &["met32.npy"])
        .mention(mm)
        .mention("met32.npy")
        .out("m.npy"),
    );
    // 100 000 views × 1340 bins of a noisy fan-beam scan: ~4.3 GB of sinogram planes and ray
    // tables, over the default budget under the suite's 4 GiB address-space cap
    v.push(
        case(
            "simulate fan over the default memory budget",
            Exit2,
            "simulate ct -i g32.npy --geometry fan --detector flat --views 100000 --n-det 1340 --dose 1e4 -o m.npy",
        )
        .fix(fx, &["g32.npy"])
        .mention(mm)
        .mention("g32.npy")
        .out("m.npy"),
    );
    v.push(
        case(
            "recon over --max-memory",
            Exit2,
            "recon ct -i ct32.npy --method fista-tv --iterations 3 --max-memory 64K -o r.npy",
        )
        .fix(fx, &["ct32.npy", "ct32.json"])
        .mention(mm)
        .mention("ct32.npy")
        .out("r.npy"),
    );
    v.push(
        case(
            "recon mri over --max-memory",
            Exit2,
            "recon mri -i mri32.npy --method zero-filled --max-memory 20K -o r.npy",
        )
        .fix(fx, &["mri32.npy", "mri32.json"])
        .mention(mm)
        .mention("mri32.npy")
        .out("r.npy"),
    );
    v.push(case("recon score method over --max-memory", Exit2, "recon ct -i ct64.npy --method dds --steps 2 --samples 8 --units model --model run/model.safetensors --max-memory 4M -o r.npy").fix(fx, &["ct64.npy", "ct64.json", "run/model.safetensors"]).mention(mm).mention("ct64.npy").out("r.npy"));
    v.push(
        case(
            "recon --max-memory valid",
            Exit0,
            "recon ct -i ct32.npy --method fbp --max-memory 1G -o r.npy",
        )
        .fix(fx, &["ct32.npy", "ct32.json"])
        .out("r.npy"),
    );
    v.push(
        case(
            "recon bit depth on npy output",
            Exit2,
            "recon ct -i ct32.npy --method fbp --bit-depth 8 -o r.npy",
        )
        .fix(fx, &["ct32.npy", "ct32.json"])
        .mention("--bit-depth")
        .out("r.npy"),
    );
    v.push(
        case(
            "recon batch bit depth",
            Exit2,
            "recon ct -i in --method fbp --bit-depth 8 --output out",
        )
        .batch("out")
        .refused_up_front()
        .fix_as(fx, "ct32.npy", "in/a.npy")
        .fix_as(fx, "ct32.json", "in/a.json")
        .mention("--bit-depth"),
    );
    v.push(
        case(
            "recon batch window",
            Exit2,
            "recon ct -i in --method fbp --window 0,1 --output out",
        )
        .batch("out")
        .refused_up_front()
        .fix_as(fx, "ct32.npy", "in/a.npy")
        .fix_as(fx, "ct32.json", "in/a.json")
        .mention("--window"),
    );
    v.push(
        case(
            "recon batch over --max-memory",
            Exit2,
            "recon ct -i in --method fbp --max-memory 64K --output out",
        )
        .batch("out")
        .fix_as(fx, "ct32.npy", "in/a.npy")
        .fix_as(fx, "ct32.json", "in/a.json")
        .mention(mm),
    );
    v.push(
        case(
            "recon batch volume over --max-memory",
            Exit2,
            "recon ct -i vol.nii.gz --method fbp --max-memory 64K --output out",
        )
        .batch("out")
        .fix(fx, &["vol.nii.gz"])
        .mention(mm)
        .mention("vol.nii.gz"),
    );
    let cfg = fx.text("tt.toml");
    v.push(
        case(
            "train over --max-memory",
            Exit2,
            "train --config c.toml --out-dir run --max-memory 1K",
        )
        .text("c.toml", &cfg)
        .mention(mm)
        .mention("c.toml")
        .out("run"),
    );
    v.push(
        case(
            "train into a folder holding a run's config only",
            Exit2,
            "train --config c.toml --out-dir run",
        )
        .text("c.toml", &cfg)
        .text("run/config.toml", &cfg)
        .mention("--resume")
        .mention("run/config.toml"),
    );
    v.push(
        case(
            "train --force deleting its own config",
            Exit2,
            "train --config run/config.toml --out-dir run --force",
        )
        .text("run/config.toml", &cfg)
        .mention("run/config.toml"),
    );
    let lsgm = std::fs::read_to_string(repo("configs/lsgm_tiny.toml")).unwrap();
    for (name, from, to, field) in [
        (
            "image size huge",
            "image_size = 64",
            "image_size = 100000",
            "vae.image_size",
        ),
        (
            "prior steps 0",
            "prior_steps = 300",
            "prior_steps = 0",
            "prior_steps",
        ),
        (
            "batch huge",
            "batch_size = 8",
            "batch_size = 100000000",
            "batch_size",
        ),
        ("vae lr inf", "vae_lr = 2e-3", "vae_lr = inf", "vae_lr"),
        (
            "kl weight NaN",
            "kl_weight = 1.0",
            "kl_weight = nan",
            "kl_weight",
        ),
        ("t_min 2", "t_min = 0.01", "t_min = 2.0", "t_min"),
        (
            "n_ellipses huge",
            "n_ellipses = 5",
            "n_ellipses = 1000000000",
            "n_ellipses",
        ),
        (
            "mixing logit inf",
            "mixing_logit_init = -2.0",
            "mixing_logit_init = -inf",
            "mixing_logit_init",
        ),
        (
            "log sigma NaN",
            "num_res_blocks = 1\n\n[prior]",
            "num_res_blocks = 1\nlog_sigma_init = nan\n\n[prior]",
            "log_sigma_init",
        ),
    ] {
        assert!(lsgm.contains(from), "lsgm_tiny.toml has no {from}");
        v.push(
            case(
                &format!("train lsgm {name}"),
                Exit2,
                "train --config l.toml --out-dir run",
            )
            .text("l.toml", &lsgm.replacen(from, to, 1))
            .mention(field)
            .mention("l.toml")
            .out("run"),
        );
    }
    v.push(
        case(
            "train lsgm over --max-memory",
            Exit2,
            "train --config l.toml --out-dir run --max-memory 1M",
        )
        .text("l.toml", &lsgm)
        .mention(mm)
        .out("run"),
    );
}

/// `recon` end to end on seeded tiny inputs: for every method of every problem, measurements
/// derived from the fixtures with random value scales (down to underflow, up to overflow),
/// random noise in place of the data, random subsets of the measured views or columns and
/// random detector pitches. The outcome is not known in advance; the contract is (exit 0 with
/// finite outputs, or a clean 2 / 1 leaving nothing behind, within the timeout).
fn recon_fuzz_cases(v: &mut Vec<Case>, fx: &Fixtures) {
    const SCORE: [&str; 7] = [
        "pc-projection",
        "ald-projection",
        "score-sde",
        "langevin",
        "dds",
        "diffpir",
        "dps",
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x17);
    let plans: [(&str, &str, Vec<&str>); 4] = [
        (
            "ct",
            "ct32",
            [&["fbp", "fista-tv"][..], &SCORE[..]].concat(),
        ),
        ("ct", "fan32", vec!["fbp", "fista-tv", "dds", "dps"]),
        (
            "mri",
            "mri32",
            [&["zero-filled", "fista-tv"][..], &SCORE[..]].concat(),
        ),
        ("mar", "mar32", vec!["fbp", "li", "fista-tv", "dds"]),
    ];
    for (problem, base, methods) in plans {
        let npy = format!("{base}.npy");
        let json = format!("{base}.json");
        let bytes = fx.get(&npy);
        let data = fx.npy_data(&npy);
        let header = bytes[..bytes.len() - data.len()].to_vec();
        let floats: Vec<f32> = data
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let sidecar: Value = serde_json::from_slice(&fx.get(&json)).unwrap();
        let with_data = |values: &[f32]| {
            let mut b = header.clone();
            b.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            b
        };
        for (m, method) in methods.iter().enumerate() {
            for k in 0..3 {
                let mutation = (m + k) % 4;
                let (what, data, sc): (String, Vec<u8>, Value) = match mutation {
                    0 => {
                        let e: i32 = rng.random_range(-40..=40);
                        let s = 10f32.powi(e);
                        let scaled: Vec<f32> = floats.iter().map(|v| v * s).collect();
                        // an overflow to ±inf is the reader's to reject; keep the file finite
                        let scaled: Vec<f32> = scaled
                            .iter()
                            .map(|v| if v.is_finite() { *v } else { f32::MAX })
                            .collect();
                        (format!("scaled 1e{e}"), with_data(&scaled), sidecar.clone())
                    }
                    1 => {
                        let a = 10f32.powi(rng.random_range(-3..=6));
                        let noise: Vec<f32> =
                            floats.iter().map(|_| rng.random_range(-a..=a)).collect();
                        (format!("noise ±{a:e}"), with_data(&noise), sidecar.clone())
                    }
                    2 => {
                        // a random subset of the measured views (CT rows) or columns (MRI)
                        let mut sc = sidecar.clone();
                        let mask = sc["mask"].clone();
                        match mask["kept"].as_array() {
                            Some(kept) if !kept.is_empty() => {
                                let keep: Vec<usize> =
                                    (0..kept.len()).filter(|_| rng.random_bool(0.5)).collect();
                                let keep = if keep.is_empty() { vec![0] } else { keep };
                                sc["mask"]["kept"] = Value::from(
                                    keep.iter().map(|&i| kept[i].clone()).collect::<Vec<_>>(),
                                );
                                if problem == "ct" {
                                    let cols = sc["shape"][1].as_u64().unwrap() as usize;
                                    let rows: Vec<f32> = keep
                                        .iter()
                                        .flat_map(|&r| {
                                            floats[r * cols..(r + 1) * cols].iter().copied()
                                        })
                                        .collect();
                                    sc["shape"][0] = Value::from(keep.len());
                                    (
                                        format!("{} of {} views", keep.len(), kept.len()),
                                        npy_f32(&[keep.len(), cols], &rows),
                                        sc,
                                    )
                                } else {
                                    (
                                        format!("{} of {} columns", keep.len(), kept.len()),
                                        bytes.clone(),
                                        sc,
                                    )
                                }
                            }
                            _ => ("unchanged".into(), bytes.clone(), sc),
                        }
                    }
                    _ => {
                        let mut sc = sidecar.clone();
                        let pitch = 10f64.powf(rng.random_range(-2.0..2.0));
                        if sc["geometry"].get("det_spacing").is_some() {
                            sc["geometry"]["det_spacing"] = Value::from(pitch);
                        }
                        (format!("detector pitch {pitch:.3}"), bytes.clone(), sc)
                    }
                };
                let score = SCORE.contains(method);
                let extra = match *method {
                    "fista-tv" => " --iterations 3".to_string(),
                    _ if score => {
                        " --steps 2 --units model --model run/model.safetensors".to_string()
                    }
                    _ => String::new(),
                };
                let mut c = case(
                    &format!("recon e2e {problem} {base} {method} {k}: {what}"),
                    Expect::Clean,
                    &format!("recon {problem} -i {npy} --method {method}{extra} -o r.npy"),
                )
                .file(&npy, data)
                .file(&json, serde_json::to_vec_pretty(&sc).unwrap())
                .out("r.npy");
                if problem == "mar" {
                    c = c.fix(fx, &["mar32.mask.npy", "mar32.metal.npy"]);
                }
                if score {
                    c = c.fix(fx, &["run/model.safetensors"]);
                }
                v.push(c);
            }
        }
    }
}

fn all_cases(fx: &Fixtures) -> Vec<Case> {
    let mut v = Vec::new();
    global_cases(&mut v);
    phantom_cases(&mut v);
    simulate_cases(&mut v, fx);
    recon_cases(&mut v, fx);
    batch_cases(&mut v, fx);
    metrics_cases(&mut v, fx);
    train_cases(&mut v, fx);
    model_cases(&mut v, fx);
    fan_and_misc_cases(&mut v, fx);
    budget_cases(&mut v, fx);
    recon_fuzz_cases(&mut v, fx);
    for c in &mut v {
        c.args = last_flag_wins(&c.args);
    }
    v
}

fn subcommand(c: &Case) -> String {
    let first = c.args.first().map(String::as_str).unwrap_or("(none)");
    match first {
        "recon" if c.batch.is_some() => "recon (batch)".into(),
        "phantom" | "simulate" | "recon" | "metrics" | "train" | "sample" | "tune"
        | "calibrate" | "bench" | "demo" => first.into(),
        _ => "(global)".into(),
    }
}

#[test]
fn hostile_inputs_hold_the_cli_contract() {
    let root = tempfile::Builder::new()
        .prefix("medsgm-hostile-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let started = Instant::now();
    let fx_dir = root.path().join("fixtures");
    std::fs::create_dir_all(&fx_dir).unwrap();
    let fx = make_fixtures(&fx_dir);
    let cases = all_cases(&fx);
    let mut names = BTreeSet::new();
    for c in &cases {
        assert!(
            names.insert(c.name.clone()),
            "duplicate case name {}",
            c.name
        );
    }
    // Optional filter for reruns: MEDSGM_HOSTILE_FILTER=substring
    let filter = std::env::var("MEDSGM_HOSTILE_FILTER").ok();
    let selected: Vec<usize> = (0..cases.len())
        .filter(|&i| {
            filter
                .as_ref()
                .is_none_or(|f| cases[i].name.contains(f.as_str()))
        })
        .collect();
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for &i in &selected {
        *per.entry(subcommand(&cases[i])).or_default() += 1;
    }
    eprintln!(
        "{} hostile cases ({}): {per:?}",
        selected.len(),
        cases.len()
    );
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Vec<String>, f64)>> = Mutex::new(Vec::new());
    let cases_dir = root.path().join("cases");
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = selected.get(k) else { break };
                let (problems, secs) = run_case(&cases[i], &cases_dir, i);
                results.lock().unwrap().push((i, problems, secs));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    let mut slow: Vec<(f64, &str)> = results
        .iter()
        .map(|(i, _, s)| (*s, cases[*i].name.as_str()))
        .collect();
    slow.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!(
        "ran in {:.1} s; slowest: {:?}",
        started.elapsed().as_secs_f64(),
        &slow[..slow.len().min(5)]
    );
    let mut report = String::new();
    let mut failed = 0;
    for (i, problems, _) in &results {
        if problems.is_empty() {
            continue;
        }
        failed += 1;
        let c = &cases[*i];
        report.push_str(&format!(
            "\n[{i:03}] {} (expected {:?})\n    $ medsgm {}\n",
            c.name,
            c.expect,
            c.args
                .iter()
                .map(|a| if a.contains(' ') || a.is_empty() {
                    format!("'{a}'")
                } else {
                    a.clone()
                })
                .collect::<Vec<_>>()
                .join(" ")
        ));
        for p in problems {
            report.push_str(&format!("    - {p}\n"));
        }
    }
    if failed > 0 {
        // keep the failing cases' folders for inspection
        let kept = root.keep();
        panic!(
            "{failed} of {} hostile cases broke the CLI contract (folders kept under {}):{report}",
            results.len(),
            kept.join("cases").display()
        );
    }
}
