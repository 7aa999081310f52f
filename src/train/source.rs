//! The training-image stream every data source implements, and the two generic sources built
//! on it: images from a generator closure and a pool of prepared slices. Each image is drawn
//! reproducibly from (seed, step, index) so that a resumed run sees exactly the same batches.
//! A leaf module: the configured sources (`data`, `volume`, `patches`, `dicom_slices`) build
//! on it.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A reproducible stream of training images.
pub trait DataSource: Send + Sync {
    /// Image `index` of the batch at `step`, a `size × size` array in [0, 1]; must depend only
    /// on (its construction, `step`, `index`) for resumable training.
    fn image(&self, step: u64, index: usize) -> anyhow::Result<Array2<f32>>;
    /// [`Self::image`] with the offset (row, column, in pixels) of its centre from the centre
    /// of the whole image it was cut from — what a positional network
    /// ([`crate::nn::NcsnppConfig::positional`]) sees; whole images are at offset 0.
    fn image_at(&self, step: u64, index: usize) -> anyhow::Result<(Array2<f32>, [f32; 2])> {
        Ok((self.image(step, index)?, [0.0, 0.0]))
    }
    /// One-line description stored in the checkpoint.
    fn describe(&self) -> String;
    /// Pixel spacing (mm) of the images, when they are at a known physical scale (patch
    /// priors at the native spacing); recorded in the checkpoint.
    fn pixel_spacing_mm(&self) -> Option<f32> {
        None
    }
}

/// The per-image seed derived from the data seed, step and batch index (SplitMix64 mixing).
pub fn image_seed(seed: u64, step: u64, index: usize) -> u64 {
    let mut z = seed
        ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (index as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A data source from a generator closure `f(image_seed) -> image`.
pub struct FnSource<F> {
    seed: u64,
    f: F,
    description: String,
}

impl<F: Fn(u64) -> anyhow::Result<Array2<f32>> + Send + Sync> FnSource<F> {
    /// Images `f(image_seed(seed, step, index))`.
    pub fn new(seed: u64, description: impl Into<String>, f: F) -> Self {
        Self {
            seed,
            f,
            description: description.into(),
        }
    }
}

impl<F: Fn(u64) -> anyhow::Result<Array2<f32>> + Send + Sync> DataSource for FnSource<F> {
    fn image(&self, step: u64, index: usize) -> anyhow::Result<Array2<f32>> {
        (self.f)(image_seed(self.seed, step, index))
    }
    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// Images prepared once (a folder, the slices of volumes or series); each draw picks one (and
/// a left–right flip) at random from the per-image seed, so a run is resumable.
pub struct SlicePool {
    images: Vec<Array2<f32>>,
    seed: u64,
    flip: bool,
    description: String,
}

impl SlicePool {
    /// A pool of `images` (at least one), described by `description` in checkpoints.
    pub fn new(
        images: Vec<Array2<f32>>,
        seed: u64,
        flip: bool,
        description: String,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!images.is_empty(), "{description}: no training images");
        Ok(Self {
            images,
            seed,
            flip,
            description,
        })
    }
}

impl DataSource for SlicePool {
    fn image(&self, step: u64, index: usize) -> anyhow::Result<Array2<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(image_seed(self.seed, step, index));
        let img = &self.images[rng.random_range(0..self.images.len())];
        Ok(if self.flip && rng.random::<bool>() {
            img.slice(ndarray::s![.., ..;-1]).to_owned()
        } else {
            img.clone()
        })
    }
    fn describe(&self) -> String {
        self.description.clone()
    }
}
