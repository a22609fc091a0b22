//! The `wirecall` command: tools for `.wire` interface files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tools for wirecall `.wire` interface files.
#[derive(Debug, Parser)]
#[command(name = "wirecall", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and validate `.wire` files (and the files they import).
    ///
    /// Exits 0 when every file is valid. Otherwise prints every error as
    /// `file:line:col: error: message` with the source line and a caret, and exits 1.
    Check {
        /// The `.wire` files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print nothing on success.
        #[arg(short, long)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files, quiet } => check(&files, quiet),
    }
}

fn check(files: &[PathBuf], quiet: bool) -> ExitCode {
    let mut failed = false;
    for file in files {
        match wirecall_idl::load(file) {
            Ok(loaded) => {
                if !quiet {
                    let services = loaded.schema.services.len();
                    let types = loaded.schema.types.len();
                    println!(
                        "ok: {} ({services} service{}, {types} type{})",
                        file.display(),
                        plural(services),
                        plural(types)
                    );
                }
            }
            Err(diagnostics) => {
                failed = true;
                eprint!("{diagnostics}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
