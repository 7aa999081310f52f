//! The batch's work list and outputs, planned before any work: the inputs (expanded and
//! sharded), where each one's outputs go, that no output overwrites an input or another
//! input's output, and the pseudonym map of an anonymised run.

use crate::error::{invalid, InputContext};
use crate::io::atomic::write_bytes_atomic;
use crate::io::guard::{refuse_nested_output, refuse_overwriting_inputs, resolved};
use crate::reconstruct::batch::worklist::{self, InputKind, Naming, WorkItem};
use crate::reconstruct::batch::BatchJob;
use crate::reconstruct::std_path;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The work list of the batch's input: expanded (pseudonymous names when anonymising), then
/// this shard's items (invalid input when the input holds none).
pub fn work_list(batch: &BatchJob) -> Result<Vec<WorkItem>> {
    let naming = if batch.anonymize {
        Naming::Pseudonymous
    } else {
        Naming::Source
    };
    let items = worklist::expand(&batch.input, naming).invalid_input()?;
    if items.is_empty() {
        return Err(invalid(format!(
            "{} holds no input (no measurement, NIfTI or DICOM file)",
            batch.input.display()
        )));
    }
    Ok(match batch.shard {
        Some(shard) => shard.select(items),
        None => items,
    })
}

/// Checks the batch's outputs before any work: the output folder is not nested with the input
/// folder, no output (main or `_std` map) is an input, and no two inputs share an output name
/// (e.g. `a.npy`'s std map `a_std.npy` and the input `a_std.npy`).
pub(super) fn plan_outputs(input: &Path, items: &[WorkItem], out_dir: &Path) -> Result<()> {
    refuse_nested_output(input, out_dir)?;
    let mut seen: std::collections::HashMap<PathBuf, &Path> = Default::default();
    let inputs: Vec<PathBuf> = items.iter().map(|i| i.path.clone()).collect();
    for item in items {
        let main = output_path(out_dir, item);
        let outputs = [std_path(&main), main];
        refuse_overwriting_inputs(&outputs, &inputs)?;
        for o in outputs {
            if let Some(other) = seen.insert(resolved(&o), &item.path) {
                anyhow::bail!(
                    "the inputs {} and {} would both write {}: rename one of them",
                    other.display(),
                    item.path.display(),
                    o.display()
                );
            }
        }
    }
    Ok(())
}

/// The main output path of an item.
pub fn output_path(dir: &Path, item: &WorkItem) -> PathBuf {
    match item.kind {
        InputKind::Nifti => dir.join(format!("{}.nii.gz", item.name)),
        InputKind::Dicom => dir.join(&item.name),
        _ => dir.join(format!("{}.npy", item.name)),
    }
}

/// Writes the `--anonymize-map` CSV (pseudonym, input) atomically, never over an input.
pub(super) fn write_pseudonym_map(map: &Path, items: &[WorkItem]) -> Result<()> {
    let inputs: Vec<PathBuf> = items.iter().map(|i| i.path.clone()).collect();
    refuse_overwriting_inputs(&[map.to_path_buf()], &inputs).map_err(invalid)?;
    let mut csv = String::from("pseudonym,input\n");
    for item in items {
        let input = match &item.series {
            Some((_, k, n)) => format!("{} (series {k} of {n})", item.path.display()),
            None => item.path.display().to_string(),
        };
        csv.push_str(&format!(
            "{},\"{}\"\n",
            item.name,
            input.replace('"', "\"\"")
        ));
    }
    write_bytes_atomic(map, csv.as_bytes())
        .with_context(|| format!("cannot write the pseudonym map {}", map.display()))
}
