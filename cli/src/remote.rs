//! The commands that talk to a running server: `call`, `subscribe`, `discover`.
//!
//! Exit codes: 0 success; 1 the server answered an error; 2 usage, connection or
//! description errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use wirecall::{client::Reconnect, Client, Error, RpcError};

use crate::args;
use crate::describe::{Description, MethodDesc};

/// Options every remote command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Connection {
    /// The server: ws://, wss://, http:// or https://.
    pub(crate) url: String,
    /// An HTTP header for the handshake and every POST (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// A bearer token (`Authorization: Bearer TOKEN`).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// How long to wait for the connection and for each answer, e.g. `500ms`, `10s`, `2m`.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Trust the CA certificates of this PEM file for wss:// and https:// (instead of the
    /// webpki roots).
    #[arg(long, value_name = "FILE.pem")]
    ca: Option<PathBuf>,
}

/// What `call` and `subscribe` take: the server, the method, its arguments, and how to
/// type them.
#[derive(Debug, clap::Args)]
pub(crate) struct Invoke {
    #[command(flatten)]
    conn: Connection,
    /// The method, e.g. `Calculator.add` (a stream for `subscribe`).
    method: String,
    /// The arguments: `name=value`…, values…, or one JSON value.
    args: Vec<String>,
    #[command(flatten)]
    typing: Typing,
}

/// How to type the arguments of a call.
#[derive(Debug, clap::Args)]
pub(crate) struct Typing {
    /// Type the arguments from this `.wire` file instead of asking the server
    /// (`rpc.discover`).
    #[arg(long, value_name = "FILE.wire")]
    idl: Option<PathBuf>,
}

/// A duration: a number with `ms`, `s`, `m` or `h` (a bare number is seconds).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 500ms, 10s, 2m)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{text}`: {e}"))
}

/// Usage, connection and description errors: exit 2.
fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

impl Connection {
    async fn connect(&self) -> Result<Client, String> {
        let mut builder = Client::builder()
            .reconnect(Reconnect::disabled())
            .handshake_timeout(self.timeout)
            .call_timeout(self.timeout);
        for header in &self.headers {
            let Some((name, value)) = header.split_once(':') else {
                return Err(format!("--header `{header}`: expected NAME:VALUE"));
            };
            builder = builder.header(name.trim(), value.trim());
        }
        if let Some(token) = &self.token {
            builder = builder.token(token.clone());
        }
        if let Some(ca) = &self.ca {
            builder = builder.tls_root_pem(ca).map_err(|e| e.to_string())?;
        }
        builder.connect(&self.url).await.map_err(|e| e.to_string())
    }
}

/// The description to type arguments with: from `--idl`, else from the server; `None` if
/// the server does not describe itself.
async fn describe(client: &Client, typing: &Typing) -> Result<Option<Description>, String> {
    if let Some(idl) = &typing.idl {
        return Description::from_idl(idl).map(Some);
    }
    match client.call::<Value>("rpc.discover", ()).await {
        Ok(doc) => Description::new(doc).map(Some),
        Err(Error::Rpc(e)) if e.code == wirecall::protocol::code::METHOD_NOT_FOUND => {
            eprintln!("warning: {NOT_DESCRIBED}; the arguments are sent untyped (`1` as a number, `x` as a string): pass --idl FILE.wire to type them");
            Ok(None)
        }
        Err(e) => Err(format!("rpc.discover failed: {e}")),
    }
}

/// What the server lacks when it does not answer `rpc.discover`, and how to give it.
const NOT_DESCRIBED: &str = "the server does not describe itself (no `rpc.discover`; a wirecall server serves its interface with `router.discover(OPENRPC_DOCUMENT)?`, the constant build.rs generates)";

/// Connect and find the method in the description (if any): the client, the description,
/// and the params built from the arguments.
async fn prepare(
    invoke: &Invoke,
    stream: bool,
) -> Result<(Client, Option<Description>, Value), ExitCode> {
    let (method, args) = (invoke.method.as_str(), invoke.args.as_slice());
    let client = invoke.conn.connect().await.map_err(usage)?;
    let desc = describe(&client, &invoke.typing).await.map_err(usage)?;
    let params = match &desc {
        Some(d) => {
            let Some(m) = d.method(method) else {
                let mut names: Vec<&str> = d
                    .methods()
                    .filter(|m| !m.is_to_client())
                    .map(|m| m.name())
                    .collect();
                names.sort_unstable();
                return Err(usage(format!(
                    "no method `{method}`; the server has: {}",
                    names.join(", ")
                )));
            };
            if m.is_to_client() {
                return Err(usage(format!(
                    "`{method}` is a method the server calls on its clients"
                )));
            }
            match (stream, m.stream_item().is_some()) {
                (false, true) => {
                    return Err(usage(format!(
                        "`{method}` is a stream: use `wirecall subscribe`"
                    )))
                }
                (true, false) => {
                    return Err(usage(format!(
                        "`{method}` is not a stream: use `wirecall call`"
                    )))
                }
                _ => {}
            }
            args::params(Some((d, &m)), args).map_err(usage)?
        }
        None => args::params(None, args).map_err(usage)?,
    };
    Ok((client, desc, params))
}

/// `wirecall call`.
pub(crate) async fn call(invoke: Invoke, compact: bool) -> ExitCode {
    let method = invoke.method.as_str();
    let (client, desc, params) = match prepare(&invoke, false).await {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let notification = desc
        .as_ref()
        .and_then(|d| d.method(method))
        .is_some_and(|m| m.is_notification());
    if notification {
        let sent = client.notify(method, params).await;
        client.close().await;
        return match sent {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => usage(e),
        };
    }
    let answer = client.call::<Value>(method, params).await;
    client.close().await;
    match answer {
        Ok(result) => {
            println!("{}", render(&result, compact));
            ExitCode::SUCCESS
        }
        Err(e) => failed(e, desc.as_ref(), method),
    }
}

/// `wirecall subscribe`.
pub(crate) async fn subscribe(invoke: Invoke, count: Option<u64>) -> ExitCode {
    let method = invoke.method.as_str();
    let (client, desc, params) = match prepare(&invoke, true).await {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let mut items = match client.subscribe::<Value>(method, params).await {
        Ok(items) => items,
        Err(e) => return failed(e, desc.as_ref(), method),
    };
    let mut seen = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let code = loop {
        if count.is_some_and(|n| seen >= n) {
            break ExitCode::SUCCESS;
        }
        let item = tokio::select! {
            _ = &mut ctrl_c => break ExitCode::SUCCESS,
            item = items.next() => item,
        };
        match item {
            Some(Ok(value)) => {
                println!("{}", render(&value, true));
                seen += 1;
            }
            // A topic lost publications: say so (on stderr, so stdout stays the items)
            // and go on.
            Some(Err(Error::Gap(gap))) => eprintln!("gap: {gap}"),
            Some(Err(e)) => break failed(e, desc.as_ref(), method),
            None => break ExitCode::SUCCESS,
        }
    };
    // Unsubscribes.
    drop(items);
    client.close().await;
    code
}

/// `wirecall discover`.
pub(crate) async fn discover(conn: Connection, json: bool) -> ExitCode {
    let client = match conn.connect().await {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let doc = client.call::<Value>("rpc.discover", ()).await;
    client.close().await;
    let doc = match doc {
        Ok(doc) => doc,
        Err(Error::Rpc(e)) if e.code == wirecall::protocol::code::METHOD_NOT_FOUND => {
            return usage(format!(
                "{}: {NOT_DESCRIBED}; `wirecall check FILE.wire` or `wirecall gen openrpc FILE.wire` show an interface from its file",
                conn.url
            ))
        }
        Err(e) => return usage(format!("rpc.discover failed: {e}")),
    };
    if json {
        println!("{}", render(&doc, false));
        return ExitCode::SUCCESS;
    }
    match Description::new(doc) {
        Ok(desc) => {
            print!("{}", crate::discover::wire_text(&desc));
            ExitCode::SUCCESS
        }
        Err(e) => usage(e),
    }
}

fn render(value: &Value, compact: bool) -> String {
    let text = if compact {
        serde_json::to_string(value)
    } else {
        serde_json::to_string_pretty(value)
    };
    text.unwrap_or_default()
}

/// A call that did not succeed: the server's error (exit 1), or ours (exit 2).
fn failed(e: Error, desc: Option<&Description>, method: &str) -> ExitCode {
    match e {
        Error::Rpc(e) => {
            eprintln!("{}", describe_error(&e, desc, method));
            ExitCode::from(1)
        }
        Error::Cancelled => {
            eprintln!("error: the server cancelled the call");
            ExitCode::from(1)
        }
        other => usage(other),
    }
}

/// `error: CalcError.DivideByZero (1001)` (or `error: MESSAGE (CODE)`) and the data, if any.
fn describe_error(e: &RpcError, desc: Option<&Description>, method: &str) -> String {
    let typed = desc.and_then(|d| {
        let m: MethodDesc<'_> = d.method(method)?;
        d.error_name(&m, i64::from(e.code))
    });
    // One form, described or not: `error: WHAT (CODE)`, WHAT being the typed error's
    // `Type.Variant` when the description names it, else the error's message.
    let what = typed.unwrap_or_else(|| e.message.to_string());
    let mut out = format!("error: {what} ({})", e.code);
    if let Some(data) = &e.data {
        let data = serde_json::from_str::<Value>(data.get())
            .map(|v| render(&v, false))
            .unwrap_or_else(|_| data.get().to_string());
        out.push_str("\ndata: ");
        out.push_str(&data);
    }
    out
}
