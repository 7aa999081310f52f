//! The inverse problems medsgm solves with one unconditional prior and A = P(Λ)T (Song et al.,
//! thesis Ch. 8): its spelling on the command line (`recon ct`, `bench recon --task ct`), in task
//! configs and in measurement sidecars (`"kind": "ct"`) is the same.

use serde::{Deserialize, Serialize};

/// An inverse problem.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Problem {
    /// Sparse-view CT: a subset Λ of the views of a dense parallel-beam sinogram (the paper's 180
    /// equispaced views over [0°, 180°)).
    Ct,
    /// Undersampled single-coil MRI: Cartesian k-space with a column mask Λ (unitary 2-D FFT).
    Mri,
    /// Metal-artefact removal: a full sinogram whose metal trace Λᶜ is discarded.
    Mar,
}

impl Problem {
    /// Every problem, in declaration order.
    pub const ALL: [Problem; 3] = [Problem::Ct, Problem::Mri, Problem::Mar];

    /// The spelling on the command line, in configs and in sidecars.
    pub fn name(self) -> &'static str {
        match self {
            Problem::Ct => "ct",
            Problem::Mri => "mri",
            Problem::Mar => "mar",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn one_spelling_everywhere() {
        for p in Problem::ALL {
            let cli = p.to_possible_value().unwrap();
            assert_eq!(cli.get_name(), p.name());
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name()));
            assert_eq!(serde_json::from_str::<Problem>(&json).unwrap(), p);
        }
    }
}
