//! `medsgm recon … --input <file|folder|manifest.csv> --output <folder>`: the flags of batch
//! reconstruction of volumes and folders ([`BatchArgs`]), checked and resolved with the rest of
//! the run by [`crate::reconstruct::request`].
//!
//! What the inputs may be, how volumes are measured, what goes into the output folder and the
//! run's exit code: see [`crate::reconstruct::batch`].

use crate::cli::simulate::FanArgs;
use crate::reconstruct::batch::worklist::Shard;
use crate::reconstruct::request::{BatchRequest, VolumeRequest};
use clap::Args;
use std::path::PathBuf;

/// Options of batch processing.
#[derive(Debug, Clone, Args)]
pub struct BatchArgs {
    /// Batch mode: output folder (created) for every input of --input.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Process only shard K of N (0-based) of the sorted work list: inputs i with i mod N = K.
    #[arg(long, requires = "output")]
    pub shard: Option<Shard>,
    /// Skip inputs whose output already exists (outputs are renamed into place when complete).
    #[arg(long, requires = "output")]
    pub resume: bool,
    /// Folder of ground-truth images named like the inputs (`<name>.npy`, `.nii`, `.nii.gz`
    /// or a DICOM series folder `<name>/`): PSNR and SSIM go to the summary.
    #[arg(long, requires = "output")]
    pub reference: Option<PathBuf>,
    /// De-identify: DICOM outputs after the PS3.15 basic profile (one new StudyInstanceUID per
    /// source study), pseudonymous output names `case_NNNN` (by position in the sorted input
    /// list), and no input names, UIDs or quoted header values in the summary or progress lines.
    #[arg(long, requires = "output")]
    pub anonymize: bool,
    /// With --anonymize: also write the pseudonym → input mapping (CSV) to this file. It
    /// identifies the inputs: keep it apart from the shared outputs.
    #[arg(long, requires = "anonymize")]
    pub anonymize_map: Option<PathBuf>,
    /// Volumes: the slice axis (default: 2 for NIfTI, 0 for DICOM; DICOM output needs 0).
    #[arg(long, requires = "output")]
    pub axis: Option<usize>,
    /// Volumes, CT: number of simulated equispaced views over [0°, 180°) (fan beam: over the
    /// scan) [default: 23].
    #[arg(long)]
    pub views: Option<usize>,
    /// Volumes, CT: the simulated beam (`--geometry fan` and its options, as for
    /// `simulate ct`).
    #[command(flatten)]
    pub fan: FanArgs,
    /// Volumes, MRI: simulated acceleration (equispaced columns, 8 % fully sampled centre)
    /// [default: 4].
    #[arg(long)]
    pub acceleration: Option<f64>,
    /// Volumes: slices sampled together in one batch by the score-based methods (B·K images
    /// per score evaluation). The random draws depend on it: reproduce a run with the same
    /// --seed and --batch [default: 8].
    #[arg(long = "batch", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub batch_size: Option<u16>,
}

impl BatchArgs {
    /// The batch settings as given.
    pub fn request(&self) -> BatchRequest {
        BatchRequest {
            output: self.output.clone(),
            shard: self.shard,
            resume: self.resume,
            reference: self.reference.clone(),
            anonymize: self.anonymize,
            anonymize_map: self.anonymize_map.clone(),
            volume: VolumeRequest {
                views: self.views,
                beam: self.fan.beam,
                fan: self.fan.spec(),
                acceleration: self.acceleration,
                batch_size: self.batch_size,
                axis: self.axis,
            },
        }
    }
}
