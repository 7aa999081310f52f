//! Borrowing the f32 data of a CPU storage inside a custom op (the fused kernels of this
//! module work on contiguous buffers only).

use candle_core::{CpuStorage, Layout, Result};

/// The elements of a contiguous f32 `storage` under `layout`; an error names the op and the
/// argument (`"{op}: {what} must be contiguous"`) when the layout is strided.
pub(crate) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
    what: &str,
) -> Result<&'a [f32]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: {what} must be contiguous")))?;
    Ok(&storage.as_slice::<f32>()?[start..end])
}
