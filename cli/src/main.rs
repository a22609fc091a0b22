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
    /// Generate code or documents from a `.wire` file.
    #[command(subcommand)]
    Gen(Gen),
}

#[derive(Debug, Subcommand)]
enum Gen {
    /// Rust code: the same as `wirecall_idl::configure().compile(…)` in build.rs.
    Rust {
        /// The `.wire` file.
        file: PathBuf,
        /// Where to write the code (default: standard output).
        #[arg(long, value_name = "FILE.rs")]
        out: Option<PathBuf>,
        /// Generate no client stubs.
        #[arg(long)]
        no_client: bool,
        /// Generate no server traits.
        #[arg(long)]
        no_server: bool,
    },
    /// A TypeScript client: `<stem>.ts` (types, client classes, callback interfaces, error
    /// classes) and the runtime `wirecall.ts` it imports, written to a directory.
    Ts {
        /// The `.wire` file.
        file: PathBuf,
        /// The directory to write to (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Write only the generated module, not the runtime `wirecall.ts`.
        #[arg(long)]
        no_runtime: bool,
    },
    /// An OpenRPC 1.3 document describing the interface.
    Openrpc {
        /// The `.wire` file.
        file: PathBuf,
        /// Where to write the document (default: standard output).
        #[arg(long, value_name = "FILE.json")]
        out: Option<PathBuf>,
        /// The API's version in the document's `info`.
        #[arg(long, default_value = "0.1.0")]
        api_version: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files, quiet } => check(&files, quiet),
        Command::Gen(Gen::Rust {
            file,
            out,
            no_client,
            no_server,
        }) => {
            let (code, _) = wirecall_idl::configure()
                .client(!no_client)
                .server(!no_server)
                .generate(&file);
            match code {
                Ok(code) => write_output(out.as_deref(), &code),
                Err(e) => fail(&e),
            }
        }
        Command::Gen(Gen::Ts {
            file,
            out,
            no_runtime,
        }) => gen_ts(&file, &out, no_runtime),
        Command::Gen(Gen::Openrpc {
            file,
            out,
            api_version,
        }) => match wirecall_idl::load(&file) {
            Ok(loaded) => {
                let title = file
                    .file_stem()
                    .map_or_else(|| "api".into(), |s| s.to_string_lossy().into_owned());
                let doc = wirecall_idl::openrpc::document(&loaded.schema, &title, &api_version);
                let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
                write_output(out.as_deref(), &text)
            }
            Err(d) => fail(&d),
        },
    }
}

fn gen_ts(file: &std::path::Path, out: &std::path::Path, no_runtime: bool) -> ExitCode {
    let loaded = match wirecall_idl::load(file) {
        Ok(loaded) => loaded,
        Err(d) => return fail(&d),
    };
    let name = file
        .file_name()
        .map_or_else(|| "api.wire".into(), |s| s.to_string_lossy().into_owned());
    let stem = file
        .file_stem()
        .map_or_else(|| "api".into(), |s| s.to_string_lossy().into_owned());
    if stem == "wirecall" {
        eprintln!(
            "error: `{}` would generate `wirecall.ts`, the runtime's file name; rename the .wire file",
            file.display()
        );
        return ExitCode::FAILURE;
    }
    let code = match wirecall_idl::typescript::generate(&loaded, &name) {
        Ok(code) => code,
        Err(d) => return fail(&d),
    };
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("error: cannot create `{}`: {e}", out.display());
        return ExitCode::FAILURE;
    }
    let mut files = vec![(format!("{stem}.ts"), code.as_str())];
    if !no_runtime {
        files.push((
            wirecall_idl::typescript::RUNTIME_FILE.into(),
            wirecall_idl::typescript::RUNTIME,
        ));
    }
    for (name, text) in files {
        let code = write_output(Some(&out.join(name)), text);
        if code != ExitCode::SUCCESS {
            return code;
        }
    }
    ExitCode::SUCCESS
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprint!("{e}");
    ExitCode::FAILURE
}

fn write_output(out: Option<&std::path::Path>, text: &str) -> ExitCode {
    match out {
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write `{}`: {e}", path.display());
                ExitCode::FAILURE
            }
        },
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
