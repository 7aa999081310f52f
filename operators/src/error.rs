//! Errors raised by operator construction and shape checks.

/// Errors of the physics layer. Operators validate their configuration at construction; the
/// `forward`/`adjoint` methods themselves assume correctly shaped input (see
/// [`crate::linop::check_shape`]).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// An array does not have the shape an operator expects.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// Which array.
        what: &'static str,
        /// The shape the operator expects.
        expected: Vec<usize>,
        /// The shape it got.
        got: Vec<usize>,
    },
    /// A parameter is out of its valid range.
    #[error("invalid parameter {name}: {reason}")]
    Param {
        /// The parameter.
        name: &'static str,
        /// Why its value is refused.
        reason: String,
    },
    /// Non-finite values (NaN/Inf) in an input array.
    #[error("{what} contains non-finite values (NaN or Inf)")]
    NonFinite {
        /// Which array.
        what: &'static str,
    },
}

/// Result alias of the physics layer.
pub type Result<T> = std::result::Result<T, OpError>;
