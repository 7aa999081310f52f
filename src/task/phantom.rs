//! The built-in phantom families of `medsgm phantom` and `medsgm demo`, and one phantom image
//! as asked for ([`PhantomSpec`]: checked, its memory estimated, generated).

use crate::error::{invalid, InputContext};
use crate::io::image_io::Window;
use crate::io::memory::{bytes_of, F32};
use anyhow::Result;
use clap::ValueEnum;
use medsgm_operators::hu::{hu_to_unit, HuWindow};
use medsgm_operators::phantom;
use medsgm_operators::phantom::anatomical::{anatomical_ct, AnatomicalParams, MetalImplant};
use ndarray::Array2;

/// Phantom families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhantomKind {
    /// Modified Shepp–Logan head phantom, values in [0, 1].
    SheppLogan,
    /// Seeded random ellipses, values in [0, 1].
    Ellipses,
    /// Seeded anatomical thoracic CT slice (HU or normalised, see --units).
    Anatomical,
}

impl PhantomKind {
    /// The family's name in reports.
    pub fn label(self) -> &'static str {
        match self {
            PhantomKind::SheppLogan => "Shepp-Logan",
            PhantomKind::Anatomical => "anatomical",
            PhantomKind::Ellipses => "ellipses",
        }
    }
}

/// Intensity units of anatomical phantoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhantomUnits {
    /// Hounsfield units.
    Hu,
    /// Normalised to [0, 1] through the training window.
    Unit,
}

/// Metal implants of anatomical phantoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Metal {
    /// No metal.
    None,
    /// Bilateral hip-prosthesis-like rods.
    HipRods,
    /// Dental-filling-like cluster.
    Dental,
    /// Transpedicular screws and rods.
    SpinalScrews,
    /// One of the above, drawn from the seed.
    Random,
}

impl Metal {
    fn implant(self) -> MetalImplant {
        match self {
            Metal::None => MetalImplant::None,
            Metal::HipRods => MetalImplant::HipRods,
            Metal::Dental => MetalImplant::Dental,
            Metal::SpinalScrews => MetalImplant::SpinalScrews,
            Metal::Random => MetalImplant::Random,
        }
    }
}

/// One phantom image as asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhantomSpec {
    /// The family.
    pub kind: PhantomKind,
    /// Side length in pixels.
    pub size: usize,
    /// Seed (ellipses, anatomical).
    pub seed: u64,
    /// Number of ellipses (ellipses only; default 10).
    pub n_ellipses: Option<usize>,
    /// Units of anatomical phantoms.
    pub units: PhantomUnits,
    /// Metal implant of anatomical phantoms.
    pub metal: Metal,
}

impl PhantomSpec {
    /// Checks the size and that the family's options are given for their family only (invalid
    /// input naming the flag).
    pub fn validate(&self) -> Result<()> {
        if !(8..=4096).contains(&self.size) {
            return Err(invalid(format!("--size {} must be in 8..=4096", self.size)));
        }
        if self.units == PhantomUnits::Hu && self.kind != PhantomKind::Anatomical {
            return Err(invalid("--units hu applies to --kind anatomical only"));
        }
        if self.metal != Metal::None && self.kind != PhantomKind::Anatomical {
            return Err(invalid("--metal applies to --kind anatomical only"));
        }
        if self.kind != PhantomKind::Ellipses && self.n_ellipses.is_some() {
            return Err(invalid("--n-ellipses applies to --kind ellipses only"));
        }
        let n = self.ellipses();
        if self.kind == PhantomKind::Ellipses && !(1..=1000).contains(&n) {
            return Err(invalid(format!("--n-ellipses {n} must be in 1..=1000")));
        }
        Ok(())
    }

    /// Number of ellipses of an ellipses phantom.
    fn ellipses(&self) -> usize {
        self.n_ellipses.unwrap_or(10)
    }

    /// Estimated peak memory: the image, the anatomical phantom's label and material maps and
    /// the HU/unit copies, and the writer's encoded copy (eight `size`² f32 planes in all).
    pub fn bytes(&self) -> u64 {
        let size = self.size as u64;
        bytes_of(&[(size.saturating_mul(size).saturating_mul(8), F32)])
    }

    /// The image and the PNG window its values are shown in.
    pub fn generate(&self) -> Result<(Array2<f32>, Window)> {
        Ok(match self.kind {
            PhantomKind::SheppLogan => (phantom::shepp_logan(self.size), Window::UNIT),
            PhantomKind::Ellipses => (
                phantom::random_ellipses(self.size, self.seed, self.ellipses()),
                Window::UNIT,
            ),
            PhantomKind::Anatomical => {
                let params = AnatomicalParams {
                    metal: self.metal.implant(),
                    ..AnatomicalParams::default()
                };
                let hu = anatomical_ct(self.size, self.seed, &params)
                    .invalid_input()?
                    .hu;
                match self.units {
                    PhantomUnits::Hu => (hu, Window::hu()),
                    PhantomUnits::Unit => {
                        (hu_to_unit(&hu.view(), HuWindow::default()), Window::UNIT)
                    }
                }
            }
        })
    }
}
