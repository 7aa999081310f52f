//! Error classification for exit codes, shared by the domain modules and the CLI.
//!
//! Anything marked with [`InvalidInput`] (bad arguments, unreadable, malformed or non-finite
//! input files, a measurement whose sidecar disagrees with its data) exits with 2, like clap's
//! own usage errors; every other failure (writing outputs, numerical failures) exits with 1
//! ([`exit_code`]).

use anyhow::Result;

/// Marks an error as the user's input being invalid (exit code 2).
#[derive(Debug, Clone, Copy)]
pub struct InvalidInput;

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid input")
    }
}

/// An invalid-input error with a message (exit code 2).
pub fn invalid(
    msg: impl std::fmt::Display + std::fmt::Debug + Send + Sync + 'static,
) -> anyhow::Error {
    anyhow::Error::msg(msg).context(InvalidInput)
}

/// Marks the errors of input reading and argument validation as invalid input.
pub trait InputContext<T> {
    /// Tags the error with [`InvalidInput`].
    fn invalid_input(self) -> Result<T>;
}

impl<T, E: Into<anyhow::Error>> InputContext<T> for std::result::Result<T, E> {
    fn invalid_input(self) -> Result<T> {
        self.map_err(|e| e.into().context(InvalidInput))
    }
}

/// The process exit code for an error: 2 for invalid input, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<InvalidInput>().is_some() {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn invalid_input_survives_further_context() {
        let e: Result<()> = Err(anyhow::anyhow!("bad header")).invalid_input();
        let e = e.context("reading x.npy").unwrap_err();
        assert_eq!(exit_code(&e), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("disk full")), 1);
        assert_eq!(exit_code(&invalid("--size must be positive")), 2);
    }
}
