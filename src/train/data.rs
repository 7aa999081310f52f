//! Training data sources: images in [0, 1] of the model resolution, drawn reproducibly from
//! (seed, step, index) so that a resumed run sees exactly the same batches.

use anyhow::{bail, Context};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the training images come from (`[data]` table of the training TOML).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DataConfig {
    /// Random-ellipse phantoms generated on the fly (`medsgm_operators::phantom::random_ellipses`).
    PhantomEllipses {
        /// Ellipses per image.
        #[serde(default = "default_ellipses")]
        n_ellipses: usize,
    },
    /// Anatomical CT phantoms (`medsgm_operators::phantom::anatomical::anatomical_ct`), HU
    /// windowed to [0, 1].
    PhantomAnatomical {
        /// HU window lower end.
        #[serde(default = "default_hu_lo")]
        hu_lo: f32,
        /// HU window upper end.
        #[serde(default = "default_hu_hi")]
        hu_hi: f32,
    },
    /// A folder of PNG (8/16-bit grey) or NPY (2-D, f32/f64/u8/u16/i16) images, each divided by
    /// its type's maximum (PNG) or min–max scaled (NPY) to [0, 1] and resized (bilinear).
    Folder {
        /// Directory (not recursive).
        path: PathBuf,
        /// Random horizontal flips.
        #[serde(default)]
        flip: bool,
    },
    /// Slices of a NIfTI volume with a held-out block (see [`super::volume`]).
    NiftiSlices(super::volume::VolumeSlicing),
}

fn default_ellipses() -> usize {
    10
}
fn default_hu_lo() -> f32 {
    -1000.0
}
fn default_hu_hi() -> f32 {
    1000.0
}

/// A reproducible stream of training images.
pub trait DataSource: Send + Sync {
    /// Image `index` of the batch at `step`, a `size × size` array in [0, 1]; must depend only
    /// on (its construction, `step`, `index`) for resumable training.
    fn image(&self, step: u64, index: usize) -> anyhow::Result<Array2<f32>>;
    /// One-line description stored in the checkpoint.
    fn describe(&self) -> String;
}

impl DataConfig {
    /// Intensity normalisation of the images this source yields (recorded in checkpoints).
    pub fn normalization(&self) -> crate::checkpoint::Normalization {
        use crate::checkpoint::Normalization;
        match self {
            DataConfig::PhantomAnatomical { hu_lo, hu_hi } => Normalization::CtHuWindow {
                lo: *hu_lo,
                hi: *hu_hi,
            },
            _ => Normalization::Identity,
        }
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

/// Images loaded once from a folder; each draw picks a file (and a flip) at random.
pub struct FolderSource {
    images: Vec<Array2<f32>>,
    seed: u64,
    flip: bool,
    description: String,
}

impl FolderSource {
    /// Loads every `.png` / `.npy` file of `dir` (sorted by name), resized to `size²`.
    pub fn open(dir: &Path, size: usize, flip: bool, seed: u64) -> anyhow::Result<Self> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading data folder {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "npy")))
            .collect();
        paths.sort();
        if paths.is_empty() {
            bail!("data folder {} holds no .png or .npy images", dir.display())
        }
        let images = paths
            .iter()
            .map(|p| Ok(resize_bilinear(&read_image(p)?, size)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let description = format!(
            "folder {} ({} images, {size}², flip {flip})",
            dir.display(),
            images.len()
        );
        Ok(Self {
            images,
            seed,
            flip,
            description,
        })
    }
}

impl DataSource for FolderSource {
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

/// Reads a grey PNG (scaled by the type maximum) or a 2-D NPY (min–max scaled) into [0, 1].
pub fn read_image(path: &Path) -> anyhow::Result<Array2<f32>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if ext == "npy" {
        let a = read_npy(path)?;
        let (lo, hi) = a
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        return Ok(a.mapv(|v| (v - lo) / span));
    }
    let img = image::open(path)
        .with_context(|| format!("decoding {}", path.display()))?
        .into_luma16();
    let (w, h) = img.dimensions();
    let data: Vec<f32> = img
        .into_raw()
        .into_iter()
        .map(|v| v as f32 / 65535.0)
        .collect();
    Ok(Array2::from_shape_vec((h as usize, w as usize), data)?)
}

/// Minimal reader of 2-D little-endian C-order `.npy` arrays (f4, f8, u1, u2, i2).
fn read_npy(path: &Path) -> anyhow::Result<Array2<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("{} is not an .npy file", path.display())
    }
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(
        bytes
            .get(start..start + hlen)
            .context("truncated npy header")?,
    )?;
    let field = |key: &str| -> anyhow::Result<&str> {
        let i = header
            .find(key)
            .with_context(|| format!("{}: npy header lacks {key}", path.display()))?;
        Ok(header[i + key.len()..].trim_start_matches([':', ' ', '\'']))
    };
    if field("'fortran_order'")?.starts_with("True") {
        bail!("{}: Fortran-order .npy is not supported", path.display())
    }
    let descr = field("'descr'")?;
    let shape_str = field("'shape'")?;
    let dims: Vec<usize> = shape_str[1..shape_str.find(')').context("npy shape")?]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<usize>())
        .collect::<Result<_, _>>()?;
    let [h, w] = dims[..] else {
        bail!("{}: expected a 2-D array, shape {dims:?}", path.display())
    };
    let data = &bytes[start + hlen..];
    let n = h * w;
    let values: Vec<f32> = match &descr[..3] {
        "<f4" => data
            .chunks_exact(4)
            .take(n)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        "<f8" => data
            .chunks_exact(8)
            .take(n)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        "|u1" => data.iter().take(n).map(|&v| v as f32).collect(),
        "<u2" => data
            .chunks_exact(2)
            .take(n)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as f32)
            .collect(),
        "<i2" => data
            .chunks_exact(2)
            .take(n)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
            .collect(),
        other => bail!("{}: unsupported npy dtype {other}", path.display()),
    };
    if values.len() != n {
        bail!("{}: truncated npy data", path.display())
    }
    Ok(Array2::from_shape_vec((h, w), values)?)
}

/// Bilinear resize (pixel-centre aligned) of a 2-D image to `size × size`.
pub fn resize_bilinear(img: &Array2<f32>, size: usize) -> Array2<f32> {
    let (h, w) = img.dim();
    if h == size && w == size {
        return img.clone();
    }
    let coord = |i: usize, n: usize| -> (usize, usize, f32) {
        let x = ((i as f32 + 0.5) * n as f32 / size as f32 - 0.5).clamp(0.0, (n - 1) as f32);
        let x0 = x.floor() as usize;
        (x0, (x0 + 1).min(n - 1), x - x0 as f32)
    };
    Array2::from_shape_fn((size, size), |(r, c)| {
        let (r0, r1, fr) = coord(r, h);
        let (c0, c1, fc) = coord(c, w);
        let top = img[[r0, c0]] * (1.0 - fc) + img[[r0, c1]] * fc;
        let bot = img[[r1, c0]] * (1.0 - fc) + img[[r1, c1]] * fc;
        top * (1.0 - fr) + bot * fr
    })
}

/// Builds the configured source for `size × size` images.
pub fn build_source(
    config: &DataConfig,
    size: usize,
    seed: u64,
) -> anyhow::Result<Box<dyn DataSource>> {
    match config {
        DataConfig::Folder { path, flip } => {
            Ok(Box::new(FolderSource::open(path, size, *flip, seed)?))
        }
        DataConfig::NiftiSlices(cfg) => Ok(Box::new(super::volume::VolumeSource::open(
            cfg, size, seed,
        )?)),
        DataConfig::PhantomEllipses { n_ellipses } => {
            let n = *n_ellipses;
            Ok(Box::new(FnSource::new(
                seed,
                format!("random-ellipse phantoms ({n} ellipses, {size}²)"),
                move |s| Ok(medsgm_operators::phantom::random_ellipses(size, s, n)),
            )))
        }
        DataConfig::PhantomAnatomical { hu_lo, hu_hi } => {
            let window = medsgm_operators::hu::HuWindow {
                lo: *hu_lo,
                hi: *hu_hi,
            };
            if !(window.hi > window.lo) {
                bail!("phantom-anatomical: hu_hi ({hu_hi}) must exceed hu_lo ({hu_lo})")
            }
            let params = medsgm_operators::phantom::anatomical::AnatomicalParams::default();
            Ok(Box::new(FnSource::new(
                seed,
                format!("anatomical CT phantoms ({size}², HU window [{hu_lo}, {hu_hi}] → [0, 1])"),
                move |s| {
                    let slice =
                        medsgm_operators::phantom::anatomical::anatomical_ct(size, s, &params)?;
                    Ok(medsgm_operators::hu::hu_to_unit(&slice.hu.view(), window))
                },
            )))
        }
    }
}
