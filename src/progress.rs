//! Progress bars on stderr (indicatif), shared by the domain modules and the CLI.

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar on stderr (hidden automatically when stderr is not a terminal).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} [{bar:32}] {pos}/{len} ({elapsed}, ETA {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}
