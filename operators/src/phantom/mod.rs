//! Phantoms: the anatomical thoracic CT phantom and the rasterisation helpers it uses.

pub mod anatomical;
pub(crate) mod raster;
pub(crate) mod texture;
