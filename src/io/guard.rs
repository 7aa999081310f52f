//! Input protection, checked before any work is done:
//! no output file may be an input file (or an input's sidecar and companions), and a batch
//! output folder may neither be, nor lie inside, nor contain its input folder — otherwise the
//! next run would read its own outputs as inputs. Paths are compared after resolving `..`,
//! symbolic links and the current directory, so `./a.npy`, `dir/../a.npy` and a link to it are
//! one file.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The canonical form of `p` whether or not it exists: the canonical path of its nearest
/// existing ancestor joined with the remaining components.
pub fn resolved(p: &Path) -> PathBuf {
    let absolute = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut tail = Vec::new();
    let mut head = absolute.as_path();
    loop {
        if let Ok(c) = head.canonicalize() {
            return tail.iter().rev().fold(c, |acc, part| acc.join(part));
        }
        match (head.parent(), head.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                head = parent;
            }
            _ => return absolute,
        }
    }
}

/// Fails (naming both) when any of `outputs` is one of `inputs`.
pub fn refuse_overwriting_inputs(outputs: &[PathBuf], inputs: &[PathBuf]) -> Result<()> {
    let inputs: Vec<(PathBuf, &PathBuf)> = inputs.iter().map(|p| (resolved(p), p)).collect();
    for out in outputs {
        let r = resolved(out);
        if let Some((_, input)) = inputs.iter().find(|(i, _)| *i == r) {
            bail!(
                "the output {} is the input {}: choose another output name (inputs are never overwritten)",
                out.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// Fails when the one output file `out` of a command is one of its `inputs` (as
/// [`refuse_overwriting_inputs`]) or an existing folder.
pub fn refuse_output_file(out: &Path, inputs: &[&Path]) -> Result<()> {
    let inputs: Vec<PathBuf> = inputs.iter().map(|p| p.to_path_buf()).collect();
    refuse_overwriting_inputs(&[out.to_path_buf()], &inputs)?;
    if out.is_dir() {
        bail!("the output {} is a folder, not a file", out.display());
    }
    Ok(())
}

/// Fails when the batch output folder `out_dir` is the input folder `input`, lies inside it or
/// contains it (for a file input: contains the file's folder is allowed, only equality with
/// an output is refused per item by [`refuse_overwriting_inputs`]).
pub fn refuse_nested_output(input: &Path, out_dir: &Path) -> Result<()> {
    if !input.is_dir() {
        return Ok(());
    }
    let (i, o) = (resolved(input), resolved(out_dir));
    if o == i {
        bail!(
            "the output folder {} is the input folder: choose a folder outside it",
            out_dir.display()
        );
    }
    if o.starts_with(&i) {
        bail!(
            "the output folder {} lies inside the input folder {}: a later run would read its outputs as inputs; choose a folder outside it",
            out_dir.display(),
            input.display()
        );
    }
    if i.starts_with(&o) {
        bail!(
            "the input folder {} lies inside the output folder {}: choose an output folder that does not contain the inputs",
            input.display(),
            out_dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_under_different_spellings_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("a.npy"), b"x").unwrap();
        let inputs = vec![d.join("a.npy")];
        for out in [d.join("a.npy"), d.join("sub/../a.npy"), d.join("./a.npy")] {
            assert!(refuse_overwriting_inputs(&[out], &inputs).is_err());
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d.join("a.npy"), d.join("link.npy")).unwrap();
            assert!(refuse_overwriting_inputs(&[d.join("link.npy")], &inputs).is_err());
        }
        assert!(refuse_overwriting_inputs(&[d.join("b.npy")], &inputs).is_ok());
        assert!(refuse_overwriting_inputs(&[d.join("new/x/b.npy")], &inputs).is_ok());
    }

    #[test]
    fn nested_batch_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("in")).unwrap();
        assert!(refuse_nested_output(&d.join("in"), &d.join("in")).is_err());
        assert!(refuse_nested_output(&d.join("in"), &d.join("in/out")).is_err());
        assert!(refuse_nested_output(&d.join("in"), d).is_err());
        assert!(refuse_nested_output(&d.join("in"), &d.join("out")).is_ok());
        assert!(refuse_nested_output(&d.join("in"), &d.join("input2")).is_ok());
    }
}
