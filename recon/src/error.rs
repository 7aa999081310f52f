//! Error type of the SDE / sampler layer.

/// Errors raised by SDE construction, samplers, likelihood and loss computations.
#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    /// A tensor operation failed (shape, dtype, device, backend).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A parameter is out of its valid range.
    #[error("invalid parameter {name}: {reason}")]
    Param {
        /// The parameter.
        name: &'static str,
        /// Why its value is refused.
        reason: String,
    },
    /// A predictor / corrector / method name that no registry knows.
    #[error("unknown {what} {name:?}; known: {known}")]
    UnknownName {
        /// What kind of name (predictor, corrector, method).
        what: &'static str,
        /// The name given.
        name: String,
        /// The names the registry knows.
        known: &'static str,
    },
    /// A numerical procedure failed (non-finite values, step size underflow, ...).
    #[error("numerical failure in {what}: {reason}")]
    Numerical {
        /// The procedure that failed.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// An error raised by a user-supplied step hook (e.g. a data-consistency projection).
    #[error("step hook failed: {0}")]
    Hook(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias of the recon crate's SDE / sampler layer.
pub type Result<T> = std::result::Result<T, ReconError>;

/// Returns a [`ReconError::Param`] unless `ok`.
pub(crate) fn ensure(ok: bool, name: &'static str, reason: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(ReconError::Param {
            name,
            reason: reason(),
        })
    }
}
