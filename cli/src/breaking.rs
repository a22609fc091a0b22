//! `wirecall breaking`: is a new version of a `.wire` file compatible with the old one?

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use serde_json::json;
use wirecall_idl::breaking::{self, Breaks, Change, Flow, Options, RuleSet};
use wirecall_idl::{Loaded, Loader};

/// Where the old version comes from.
pub(crate) enum Old {
    /// A file on disk.
    File(PathBuf),
    /// The same path at a git revision (imports resolved at that revision too).
    Git(String),
}

/// Run the check; exit 0 compatible, 1 breaking, 2 usage or parse errors.
pub(crate) fn run(old: Old, new: &Path, options: Options, json: bool) -> ExitCode {
    let new_loaded = match wirecall_idl::load(new) {
        Ok(l) => l,
        Err(d) => {
            eprint!("{d}");
            return ExitCode::from(2);
        }
    };
    let (old_loaded, label) = match &old {
        Old::File(path) => match wirecall_idl::load(path) {
            Ok(l) => (l, None),
            Err(d) => {
                eprint!("{d}");
                return ExitCode::from(2);
            }
        },
        Old::Git(rev) => match at_revision(rev, new) {
            Ok(l) => (l, Some(rev.as_str())),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let changes = breaking::check(&old_loaded.schema, &new_loaded.schema, options);
    if json {
        let items: Vec<_> = changes
            .iter()
            .map(|c| change_json(c, &old_loaded, &new_loaded, label))
            .collect();
        let doc = json!({ "compatible": changes.is_empty(), "changes": items });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for c in &changes {
            let mut text = c.render(&old_loaded.sources, &new_loaded.sources);
            if let (true, Some(rev)) = (c.in_old, label) {
                // The old side's locations are at the revision: say so.
                text = format!("{rev}:{text}");
            }
            println!("{text}");
        }
        let n = changes.len();
        if n == 0 {
            println!("compatible: no breaking changes");
        } else {
            println!(
                "{n} breaking change{} (rules: docs/EVOLUTION.md)",
                if n == 1 { "" } else { "s" }
            );
        }
    }
    if changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn change_json(c: &Change, old: &Loaded, new: &Loaded, rev: Option<&str>) -> serde_json::Value {
    let sources = if c.in_old { &old.sources } else { &new.sources };
    let mut location = json!(null);
    if let wirecall_idl::model::Span::File { file, start, .. } = c.span {
        let f = sources.get(file);
        let (line, column) = f.line_col(start);
        let mut path = f.path.display().to_string();
        if let (true, Some(rev)) = (c.in_old, rev) {
            path = format!("{rev}:{path}");
        }
        location = json!({ "file": path, "line": line, "column": column });
    }
    json!({
        "rule": c.rule,
        "breaks": match c.breaks {
            Breaks::OldClients => "old-clients",
            Breaks::OldServers => "old-servers",
            Breaks::Source => "source",
        },
        "flow": match c.flow {
            Flow::ClientToServer => "client-to-server",
            Flow::ServerToClient => "server-to-client",
            Flow::Call => "call",
        },
        "message": c.message,
        "location": location,
        "in_old": c.in_old,
    })
}

/// `NEW`'s path as it was at `rev`, with every `.wire` file of that revision available to
/// its imports (and nothing from the working tree).
fn at_revision(rev: &str, new: &Path) -> Result<Loaded, String> {
    let git = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("git")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // Paths in the revision are relative to the repository's top; ours to the current
    // directory, which `--show-cdup` leads back from.
    let cdup = git(&["rev-parse", "--show-cdup"])?.trim().to_string();
    let prefix = git(&["rev-parse", "--show-prefix"])?.trim().to_string();
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?.trim());
    let here = |file: &str| match file.strip_prefix(&prefix) {
        Some(rest) if !prefix.is_empty() => PathBuf::from(rest),
        _ => Path::new(&cdup).join(file),
    };
    // NEW as the repository names it, however it was written (absolute, `./`, `..`).
    let absolute =
        std::fs::canonicalize(new).map_err(|e| format!("cannot read `{}`: {e}", new.display()))?;
    let top = std::fs::canonicalize(&top).unwrap_or(top);
    let in_repo = absolute.strip_prefix(&top).map_err(|_| {
        format!(
            "`{}` is outside the git repository of the current directory ({})",
            new.display(),
            top.display()
        )
    })?;
    let in_repo = in_repo.to_string_lossy().replace('\\', "/");
    let files = git(&["ls-tree", "-r", "--full-tree", "--name-only", rev])?;
    if !files.lines().any(|f| f == in_repo) {
        return Err(format!("`{in_repo}` does not exist at {rev}"));
    }
    let mut loader = Loader::new().sources_only();
    for file in files.lines().filter(|f| f.ends_with(".wire")) {
        let text = git(&["show", &format!("{rev}:{file}")])?;
        loader = loader.with_source(here(file), text);
    }
    loader
        .load(here(&in_repo))
        .map_err(|d| format!("`{}` at {rev} does not load:\n{d}", new.display()))
}

/// The rule set named on the command line.
pub(crate) fn rules(name: &str) -> Result<RuleSet, String> {
    match name {
        "wire-json" => Ok(RuleSet::WireJson),
        "strict" => Ok(RuleSet::Strict),
        other => Err(format!(
            "unknown rule set `{other}`; expected `wire-json` or `strict`"
        )),
    }
}
