//! The calculator example.
//!
//! ```text
//! cargo run -p wirecall-examples --bin calculator                        # demo
//! cargo run -p wirecall-examples --bin calculator -- serve 127.0.0.1:9000  # server only
//! cargo run -p wirecall-examples --bin calculator -- serve 127.0.0.1:9000 \
//!     --allow-origin http://127.0.0.1:8000                                 # + browser page
//! cargo run -p wirecall-examples --bin calculator -- serve 127.0.0.1:9443 \
//!     --tls-cert cert.pem --tls-key key.pem --token s3cret \
//!     --metrics 127.0.0.1:9100                                             # deployed
//! ```
//!
//! With no arguments it starts a server on a free port and a typed client in the same
//! process, makes every kind of call and prints what happened. With `serve ADDR` it serves
//! the calculator until Ctrl-C; any JSON-RPC 2.0 client can call it, e.g.
//! `{"jsonrpc":"2.0","method":"Calculator.add","params":{"a":1,"b":2},"id":1}`.
//! Browsers send an `Origin` header; a page served from another origin (such as the
//! example page in `examples/web`, see its README) needs `--allow-origin ORIGIN`.
//!
//! `--tls-cert`/`--tls-key` serve every door over TLS (`wss://`, `https://`); `--token`
//! requires `Authorization: Bearer TOKEN` (or the `bearer.…` WebSocket subprotocol), and
//! `Calculator.stats` then shows the caller; `--metrics ADDR` serves Prometheus text there;
//! `--rate N` allows each caller N calls a second (in bursts of up to N): the token's holder,
//! or without `--token` each IP address; beyond, `-32029` with `retry_after_ms`.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use wirecall::{
    auth::{Identity, Refusal},
    Client, Context, Fault, Server,
};
use wirecall_examples::calculator::{CalcError, Calculator, CalculatorCallbacks, CalculatorClient};
use wirecall_examples::CalcServer;

/// The calculator: a demo of every kind of call, or a server.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the calculator until Ctrl-C.
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:9000.
    addr: String,
    /// Allow browsers from this origin (repeatable; `*` for any).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Serve over TLS with this certificate chain (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require this bearer token: `Authorization: Bearer TOKEN`, or the WebSocket
    /// subprotocol `bearer.BASE64URL(TOKEN)`.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// With `--token`: each connection's authentication lasts this many milliseconds, then
    /// the server closes it with code 4401 (clients reconnect with their token).
    #[arg(long, value_name = "MS", requires = "token")]
    token_ttl: Option<u64>,
    /// Serve Prometheus metrics (text format) at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// At most N calls a second per caller (the token's holder, else per IP address), in
    /// bursts of up to N; every batch entry and subscription counts.
    #[arg(long, value_name = "N")]
    rate: Option<NonZeroU32>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let done = match Args::parse().command {
        None => demo().await,
        Some(Command::Serve(args)) => serve(args).await,
    };
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("calculator: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(addr) = args.metrics {
        // Installed before the server starts: wirecall makes its metric handles on first use.
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()?;
        println!("metrics on http://{addr}/metrics");
    }
    let mut router = CalcServer::default().into_router();
    // `rpc.discover` answers the OpenRPC document of calculator.wire.
    router.discover(wirecall_examples::calculator::OPENRPC_DOCUMENT)?;
    let mut builder = Server::builder();
    for origin in args.allow_origins {
        builder = builder.allow_origin(origin);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        builder = builder.tls_pem(cert, key)?;
    }
    if let Some(token) = args.token {
        let ttl = args.token_ttl.map(Duration::from_millis);
        builder = builder.authenticate(move |handshake| {
            let expected = token.clone();
            async move {
                match handshake.bearer_token() {
                    None => Err(Refusal::unauthorized("a bearer token is required")),
                    Some(t) if t == expected => {
                        let who = Identity::new("token holder".to_string());
                        Ok(match ttl {
                            Some(ttl) => who.expires_in(ttl),
                            None => who,
                        })
                    }
                    Some(_) => Err(Refusal::forbidden("wrong token")),
                }
            }
        });
    }
    if let Some(n) = args.rate {
        // The identity is the `String` the token gives ("token holder"); without a
        // token, the caller's IP address.
        builder = builder.layer(wirecall::policy::RateLimitLayer::per_second(n));
    }
    let server = builder.bind(&args.addr, router).await?;
    println!("listening on {}", server.url());
    tokio::signal::ctrl_c().await?;
    println!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// The client side of `client { … }`: the server asks, we answer.
struct Confirmer;

impl CalculatorCallbacks for Confirmer {
    async fn confirm(&self, _ctx: Context, question: String) -> Result<bool, Fault> {
        let yes = question.contains("sure");
        println!("  (server asked {question:?}; answering {yes})");
        Ok(yes)
    }
}

async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::bind("127.0.0.1:0", CalcServer::default().into_router()).await?;
    println!("server listening on {}", server.url());

    let client = Client::builder()
        .router(Confirmer.into_router())
        .connect(&server.url())
        .await?;
    let calc = CalculatorClient::new(client.clone());

    println!("add(1, 2) = {}", calc.add(1, 2).await?);
    println!("subtract(42, 23) = {}", calc.subtract(42, 23).await?);
    println!("divide(1, 4) = {}", calc.divide(1.0, 4.0).await?);
    match calc.divide(1.0, 0.0).await {
        Err(wirecall::Error::App(CalcError::DivideByZero)) => {
            println!("divide(1, 0) failed: CalcError::DivideByZero")
        }
        other => println!("divide(1, 0) = {other:?} (unexpected)"),
    }
    println!("echo(\"hello\") = {:?}", calc.echo("hello".into()).await?);
    println!(
        "ask(\"are you sure?\") = {}",
        calc.ask("are you sure?".into()).await?
    );
    calc.log("hello from the demo".into()).await?;
    println!("log(\"hello from the demo\") sent (a notification: no answer)");
    // Give the notification a moment to be handled before reading the stats.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stats = calc.stats().await?;
    println!(
        "stats() = {{ calls: {}, last_message: {:?} }}",
        stats.calls, stats.last_message
    );
    match calc
        .with_timeout(Duration::from_millis(100))
        .sleep(1_000)
        .await
    {
        Err(e @ wirecall::Error::Timeout(_)) => println!("sleep(1000) with a 100 ms timeout: {e}"),
        other => println!("sleep(1000) = {other:?} (unexpected)"),
    }
    println!("sleep(10) = {}", calc.sleep(10).await?);
    let mut ticks = calc.ticks(5, 20).await?;
    print!("ticks(5, 20) =");
    while let Some(tick) = ticks.next().await {
        print!(" {}", tick?);
    }
    println!(" (stream ended)");

    client.close().await;
    server.shutdown().await;
    println!("done");
    Ok(())
}
