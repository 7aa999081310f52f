//! Errors raised by operator construction and shape checks.

/// Errors of the physics layer. Operators validate their configuration at construction; the
/// `forward`/`adjoint` methods themselves assume correctly shaped input (see
/// [`crate::linop::check_shape`]).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// An array does not have the shape an operator expects.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        what: &'static str,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// A parameter is out of its valid range.
    #[error("invalid parameter {name}: {reason}")]
    Param { name: &'static str, reason: String },
    /// Non-finite values (NaN/Inf) in an input array.
    #[error("{what} contains non-finite values (NaN or Inf)")]
    NonFinite { what: &'static str },
}

/// Result alias of the physics layer.
pub type Result<T> = std::result::Result<T, OpError>;
