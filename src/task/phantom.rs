//! The built-in phantom families of `medsgm phantom` and `medsgm demo`.

use clap::ValueEnum;

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
