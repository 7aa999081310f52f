//! The `medsgm` binary: parses the command line and maps the outcome to an exit code
//! (0 success, 1 runtime failure, 2 usage error or invalid input; see `medsgm --help`).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    medsgm::nn::cpu_runtime::configure();
    let cli = medsgm::cli::Cli::parse();
    match medsgm::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(medsgm::cli::exit_code(&e))
        }
    }
}
