//! The `wirecall` command: tools for `.wire` interface files, and for calling a running
//! server by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod breaking;
mod describe;
mod discover;
mod remote;

/// wirecall: check and generate from `.wire` interface files; call, subscribe to and
/// describe a running JSON-RPC 2.0 server.
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
    /// Rewrite `.wire` files in the canonical layout.
    ///
    /// 4-space indentation, one member per line, comments and doc comments kept in place,
    /// one blank line between top-level items (docs/IDL.md has the rules). Formatting never
    /// changes meaning. With `--check`, nothing is written: exits 1 and
    /// names the files that would change.
    Fmt {
        /// The `.wire` files to format.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Only check: exit 1 if a file is not formatted.
        #[arg(long)]
        check: bool,
    },
    /// Call a method of a running server and print its result as JSON.
    ///
    /// ARGS are `name=value` pairs (`a=1 b=2`), positional values (`1 2`), or one JSON
    /// object or array. Values are typed from the server's description (`rpc.discover`)
    /// or from `--idl`: `a=1` is a number where the method wants one, `text=1` a string,
    /// `tags=[1,2]` a list; a wrong type or an unknown parameter is reported before
    /// anything is sent. Without a description, values are JSON where they parse and
    /// strings otherwise.
    ///
    /// Exit codes: 0 success; 1 the server answered an error (on stderr, with its code,
    /// message, data, and its IDL name when known); 2 usage, connection or description
    /// errors.
    #[command(
        after_help = "Examples:\n  wirecall call ws://127.0.0.1:9000 Calculator.add a=1 b=2\n  wirecall call http://127.0.0.1:9000 Calculator.add 1 2\n  wirecall call wss://api.example.com Calculator.add '{\"a\":1,\"b\":2}' --token s3cret"
    )]
    Call {
        #[command(flatten)]
        invoke: remote::Invoke,
        /// Print the result on one line.
        #[arg(long)]
        compact: bool,
    },
    /// Subscribe to a stream and print each item as one JSON line.
    ///
    /// Runs until the stream ends, `--count` items have arrived, or Ctrl-C (which
    /// unsubscribes). Arguments and exit codes as for `call`.
    #[command(
        after_help = "Example:\n  wirecall subscribe ws://127.0.0.1:9000 Calculator.ticks count=3 every_ms=100"
    )]
    Subscribe {
        #[command(flatten)]
        invoke: remote::Invoke,
        /// Stop after this many items.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Is a new version of a `.wire` file compatible with the old one?
    ///
    /// The question (docs/EVOLUTION.md lists every rule): can a server built from NEW serve
    /// every client built from OLD, and can those clients understand everything it sends
    /// (results, items, errors, and the calls of `client { }`, where the roles reverse)?
    /// `--both` also checks new clients against old servers. Prints each breaking change
    /// as `file:line:col: breaking: [RULE] (flow) message` with the line and a caret.
    /// Exit codes: 0 compatible, 1 breaking, 2 usage or parse errors.
    #[command(after_help = "Examples:
  wirecall breaking idl/calculator.v1.wire idl/calculator.wire
  wirecall breaking idl/calculator.wire --against origin/main
  wirecall breaking idl/calculator.wire --against v1.2.0 --both --json")]
    Breaking {
        /// OLD.wire NEW.wire, or NEW.wire alone with `--against`.
        #[arg(required = true, num_args = 1..=2, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Compare with the same path at this git revision (imports resolved there too).
        #[arg(long, value_name = "GIT_REF")]
        against: Option<String>,
        /// Also check new clients against old servers.
        #[arg(long)]
        both: bool,
        /// `wire-json` (what breaks on the wire; default) or `strict` (also renames and
        /// removals that only source code notices).
        #[arg(long, default_value = "wire-json", value_name = "RULES")]
        rules: String,
        /// Print the result as JSON (for CI bots).
        #[arg(long)]
        json: bool,
    },
    /// Print a server's services as `.wire` text.
    ///
    /// Reconstructed from its OpenRPC document (`rpc.discover`): types (fields in their
    /// declared order), errors, methods with their attributes, and their doc comments.
    Discover {
        #[command(flatten)]
        conn: remote::Connection,
        /// Print the OpenRPC document itself.
        #[arg(long)]
        json: bool,
    },
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
        /// Import the runtime from this module (e.g. the npm package `@wirecall/client`
        /// of clients/typescript) instead of a copy next to the generated file; implies
        /// `--no-runtime`.
        #[arg(long, value_name = "MODULE")]
        runtime_import: Option<String>,
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
    let remote = |future: std::pin::Pin<Box<dyn std::future::Future<Output = ExitCode>>>| {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(future),
            Err(e) => {
                eprintln!("error: cannot start the runtime: {e}");
                ExitCode::from(2)
            }
        }
    };
    match cli.command {
        Command::Call { invoke, compact } => remote(Box::pin(remote::call(invoke, compact))),
        Command::Subscribe { invoke, count } => remote(Box::pin(remote::subscribe(invoke, count))),
        Command::Discover { conn, json } => remote(Box::pin(remote::discover(conn, json))),
        Command::Fmt { files, check } => fmt(&files, check),
        Command::Breaking {
            files,
            against,
            both,
            rules,
            json,
        } => {
            let rules = match breaking::rules(&rules) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let options = wirecall_idl::breaking::Options { rules, both };
            match (files.as_slice(), against) {
                ([new], Some(rev)) => breaking::run(breaking::Old::Git(rev), new, options, json),
                ([old, new], None) => {
                    breaking::run(breaking::Old::File(old.clone()), new, options, json)
                }
                _ => {
                    eprintln!("error: give OLD.wire NEW.wire, or NEW.wire --against GIT_REF");
                    ExitCode::from(2)
                }
            }
        }
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
            runtime_import,
        }) => gen_ts(&file, &out, no_runtime, runtime_import.as_deref()),
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

fn gen_ts(
    file: &std::path::Path,
    out: &std::path::Path,
    no_runtime: bool,
    runtime_import: Option<&str>,
) -> ExitCode {
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
    let runtime = runtime_import.unwrap_or("./wirecall.js");
    let code = match wirecall_idl::typescript::generate_importing(&loaded, &name, runtime) {
        Ok(code) => code,
        Err(d) => return fail(&d),
    };
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("error: cannot create `{}`: {e}", out.display());
        return ExitCode::FAILURE;
    }
    let mut files = vec![(format!("{stem}.ts"), code.as_str())];
    if !no_runtime && runtime_import.is_none() {
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

fn fmt(files: &[PathBuf], check: bool) -> ExitCode {
    let mut unformatted = Vec::new();
    let mut failed = false;
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", file.display());
                failed = true;
                continue;
            }
        };
        let formatted = match wirecall_idl::fmt::format(&file.display().to_string(), &text) {
            Ok(formatted) => formatted,
            Err(diagnostic) => {
                eprint!("{diagnostic}");
                failed = true;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        if check {
            unformatted.push(file);
        } else if let Err(e) = std::fs::write(file, formatted) {
            eprintln!("error: cannot write `{}`: {e}", file.display());
            failed = true;
        }
    }
    for file in &unformatted {
        println!("would reformat: {}", file.display());
    }
    if failed || !unformatted.is_empty() {
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
