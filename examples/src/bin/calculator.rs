//! The calculator example.
//!
//! ```text
//! cargo run -p wirecall-examples --bin calculator                        # demo
//! cargo run -p wirecall-examples --bin calculator -- serve 127.0.0.1:9000  # server only
//! cargo run -p wirecall-examples --bin calculator -- serve 127.0.0.1:9000 \
//!     --allow-origin http://127.0.0.1:8000                                 # + browser page
//! ```
//!
//! With no arguments it starts a server on a free port and a typed client in the same
//! process, makes every kind of call and prints what happened. With `serve ADDR` it serves
//! the calculator until Ctrl-C; any JSON-RPC 2.0 client can call it, e.g.
//! `{"jsonrpc":"2.0","method":"Calculator.add","params":{"a":1,"b":2},"id":1}`.
//! Browsers send an `Origin` header; a page served from another origin (such as the
//! example page in `examples/web`, see its README) needs `--allow-origin ORIGIN`.

use std::time::Duration;

use wirecall::{Client, Context, Fault, Server};
use wirecall_examples::calculator::{CalcError, Calculator, CalculatorCallbacks, CalculatorClient};
use wirecall_examples::CalcServer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => demo().await,
        ["serve", addr, rest @ ..] if rest.len() % 2 == 0 => {
            let mut origins = Vec::new();
            for pair in rest.chunks(2) {
                match pair {
                    ["--allow-origin", origin] => origins.push(origin.to_string()),
                    _ => usage(),
                }
            }
            serve(addr, origins).await
        }
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: calculator [serve ADDR [--allow-origin ORIGIN]...]");
    std::process::exit(2);
}

async fn serve(addr: &str, origins: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let mut router = CalcServer::default().into_router();
    // `rpc.discover` answers the OpenRPC document of calculator.wire.
    router.discover(wirecall_examples::calculator::OPENRPC_DOCUMENT)?;
    let mut builder = Server::builder();
    for origin in origins {
        builder = builder.allow_origin(origin);
    }
    let server = builder.bind(addr, router).await?;
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
