//! The work list of a batch reconstruction: which inputs a
//! `--input <file|folder|manifest.csv>` names, in a deterministic order, their output names,
//! and the `--shard k/N` split.
//!
//! A folder contributes (non-recursively, sorted by path): measurement files `*.npy` that have a
//! `.json` sidecar, NIfTI volumes `*.nii`/`*.nii.gz`, DICOM files `*.dcm`/`*.dicom` and every
//! sub-folder (read as one DICOM series). Hidden entries (leading dot, e.g. unfinished temporary
//! outputs) are ignored. A manifest `.csv` lists one input per line (first comma-separated
//! field; relative paths are relative to the manifest's folder; empty lines, `#` comments and a
//! `path` header are ignored).
//!
//! With `--anonymize` the output names are pseudonyms, `case_0001`, `case_0002`, … by position
//! in the sorted list of input paths (before `--shard`, so shards and `--resume` agree), since
//! file and folder names are often patient names or record numbers.

use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// What an input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    /// A measurement `.npy` with its JSON sidecar.
    Measurement,
    /// A NIfTI-1 volume.
    Nifti,
    /// A DICOM file or series folder.
    Dicom,
    /// Not a recognised input (reported as invalid).
    Unknown,
}

impl InputKind {
    /// The kind a path names (by suffix, folder, or DICOM marker).
    pub fn of(path: &Path) -> InputKind {
        let name = path.to_string_lossy().to_ascii_lowercase();
        if path.is_dir() {
            InputKind::Dicom
        } else if name.ends_with(".nii") || name.ends_with(".nii.gz") {
            InputKind::Nifti
        } else if name.ends_with(".npy") {
            InputKind::Measurement
        } else if name.ends_with(".dcm")
            || name.ends_with(".dicom")
            || (path.is_file() && crate::io::dicom::is_dicom_file(path))
        {
            InputKind::Dicom
        } else {
            InputKind::Unknown
        }
    }
}

/// One input of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    /// The input file or folder.
    pub path: PathBuf,
    /// What it holds.
    pub kind: InputKind,
    /// Unique output base name (file name without its format suffix).
    pub name: String,
    /// A DICOM folder holding several series: which one this item is (its SeriesInstanceUID,
    /// and its position k of n among the folder's series for reports — UIDs are not printed).
    pub series: Option<(String, usize, usize)>,
    /// Whether `name` is a pseudonym: reports then name the item by it, never by its path.
    pub pseudonymous: bool,
}

impl WorkItem {
    /// The input as reports name it: the path, and for one series of a multi-series folder
    /// "(series k of n)"; a pseudonymous item only by its pseudonym.
    pub fn label(&self) -> String {
        match (&self.series, self.pseudonymous) {
            (_, true) => self.name.clone(),
            (Some((_, k, n)), false) => format!("{} (series {k} of {n})", self.path.display()),
            (None, false) => self.path.display().to_string(),
        }
    }
}

/// How output base names are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// The input's file name without its format suffix (`_2`, `_3`, … for repeats).
    Source,
    /// `case_NNNN` by position in the sorted input list (`--anonymize`).
    Pseudonymous,
}

/// A DICOM folder with several series becomes one item per series (named `<base>_s<k>`); any
/// other path, and a folder whose headers cannot be scanned (reported when it is read), stays
/// one item.
fn split_series(path: PathBuf, name: String) -> Vec<WorkItem> {
    let kind = InputKind::of(&path);
    if kind == InputKind::Dicom && path.is_dir() {
        if let Ok(series) = crate::io::dicom::scan_series(&path) {
            if series.len() > 1 {
                let n = series.len();
                return series
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| WorkItem {
                        path: path.clone(),
                        kind,
                        name: format!("{name}_s{}", i + 1),
                        series: Some((s.series_instance_uid, i + 1, n)),
                        pseudonymous: false,
                    })
                    .collect();
            }
        }
    }
    vec![WorkItem {
        kind,
        path,
        name,
        series: None,
        pseudonymous: false,
    }]
}

/// The file name of `path` without `.nii.gz`, `.nii`, `.npy`, `.dcm` or `.dicom`.
fn base_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".to_owned());
    let lower = name.to_ascii_lowercase();
    for suffix in [".nii.gz", ".nii", ".npy", ".dcm", ".dicom"] {
        if lower.ends_with(suffix) && lower.len() > suffix.len() {
            return name[..name.len() - suffix.len()].to_owned();
        }
    }
    name
}

/// Whether a folder entry is a batch input.
fn is_folder_input(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    if hidden {
        return false;
    }
    match InputKind::of(path) {
        InputKind::Measurement => path.with_extension("json").is_file(),
        InputKind::Unknown => false,
        _ => true,
    }
}

/// The inputs a manifest lists.
fn read_manifest(path: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the manifest {}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(text
        .lines()
        .map(|l| l.split(',').next().unwrap_or("").trim())
        .filter(|f| !f.is_empty() && !f.starts_with('#') && !f.eq_ignore_ascii_case("path"))
        .map(|f| dir.join(f))
        .collect())
}

/// Whether `input` is a plain folder of inputs (not itself one DICOM series: a folder whose
/// files are DICOM with no sub-folders is read as one series).
fn is_folder_of_inputs(input: &Path) -> Result<bool> {
    let mut any_dicom_file = false;
    for entry in std::fs::read_dir(input)
        .with_context(|| format!("cannot list the input folder {}", input.display()))?
    {
        let p = entry?.path();
        if p.is_dir() || !matches!(InputKind::of(&p), InputKind::Dicom | InputKind::Unknown) {
            return Ok(true);
        }
        any_dicom_file |= InputKind::of(&p) == InputKind::Dicom;
    }
    Ok(!any_dicom_file)
}

/// The sorted work list of `input` with unique output names chosen by `naming` (a repeated
/// base name gets the suffix `_2`, `_3`, … in path order).
pub fn expand(input: &Path, naming: Naming) -> Result<Vec<WorkItem>> {
    let mut paths = if input.is_dir() && is_folder_of_inputs(input)? {
        let mut v = Vec::new();
        for entry in std::fs::read_dir(input)
            .with_context(|| format!("cannot list the input folder {}", input.display()))?
        {
            let p = entry?.path();
            if is_folder_input(&p) {
                v.push(p);
            }
        }
        v
    } else if input.is_file()
        && input
            .to_string_lossy()
            .to_ascii_lowercase()
            .ends_with(".csv")
    {
        read_manifest(input)?
    } else if input.exists() {
        vec![input.to_path_buf()]
    } else {
        bail!("the input {} does not exist", input.display());
    };
    paths.sort();
    paths.dedup();
    let mut used = HashSet::new();
    Ok(paths
        .into_iter()
        .enumerate()
        .flat_map(|(index, path)| {
            let base = match naming {
                Naming::Source => base_name(&path),
                Naming::Pseudonymous => format!("case_{:04}", index + 1),
            };
            let mut name = base.clone();
            let mut k = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}_{k}");
                k += 1;
            }
            let mut items = split_series(path, name);
            for item in &mut items {
                item.pseudonymous = naming == Naming::Pseudonymous;
            }
            items
        })
        .collect())
}

/// `--shard k/N`: job k (0-based) of N takes the items whose index in the sorted work list is
/// ≡ k (mod N), so the N shards are disjoint and cover the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This job's index k ∈ [0, N).
    pub index: usize,
    /// Number of jobs N ≥ 1.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected K/N, got {s:?}"))?;
        let index: usize = k.trim().parse().map_err(|e| format!("shard index: {e}"))?;
        let count: usize = n.trim().parse().map_err(|e| format!("shard count: {e}"))?;
        if count == 0 || index >= count {
            return Err(format!("need 0 <= K < N, got {index}/{count}"));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// This shard's items.
    pub fn select<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index)
            .map(|(_, x)| x)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_cover() {
        let items: Vec<usize> = (0..23).collect();
        for n in 1..6 {
            let mut all: Vec<usize> = (0..n)
                .flat_map(|k| Shard { index: k, count: n }.select(items.clone()))
                .collect();
            all.sort();
            assert_eq!(all, items, "N = {n}");
        }
        assert!("2/2".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
    }

    #[test]
    fn names_are_unique_and_stripped() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "a.nii.gz",
            "a.npy",
            "a.json",
            "b.dcm",
            ".hidden.nii",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("series1")).unwrap();
        let items = expand(dir.path(), Naming::Source).unwrap();
        let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a", "a_2", "b", "series1"]);
        assert_eq!(items[0].kind, InputKind::Nifti);
        assert_eq!(items[1].kind, InputKind::Measurement);
        assert_eq!(items[3].kind, InputKind::Dicom);
    }

    #[test]
    fn manifest_lists_relative_paths_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("list.csv"),
            "path,comment\n# skipped\n\nz/b.nii.gz,second\na.npy\nz/b.nii.gz\n",
        )
        .unwrap();
        let items = expand(&dir.path().join("list.csv"), Naming::Source).unwrap();
        let paths: Vec<PathBuf> = items.iter().map(|i| i.path.clone()).collect();
        assert_eq!(
            paths,
            [dir.path().join("a.npy"), dir.path().join("z/b.nii.gz")]
        );
        assert_eq!(items[1].name, "b");
        assert!(expand(&dir.path().join("missing"), Naming::Source).is_err());
    }

    #[test]
    fn pseudonyms_hide_the_input_names_and_are_stable() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["DOE_JOHN_123.nii.gz", "SMITH^ANN.npy", "SMITH^ANN.json"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let items = expand(dir.path(), Naming::Pseudonymous).unwrap();
        let labels: Vec<String> = items.iter().map(WorkItem::label).collect();
        assert_eq!(labels, ["case_0001", "case_0002"]);
        assert!(items.iter().all(|i| i.pseudonymous));
        // a shard keeps the global numbering
        let second = Shard { index: 1, count: 2 }.select(items);
        assert_eq!(second[0].name, "case_0002");
    }
}
