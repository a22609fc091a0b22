//! The calculator inside an axum application: the browser page of `examples/web` at `/`,
//! the calculator at `/rpc` (WebSocket, JSON-RPC over HTTP POST, server-sent events), and
//! a route of the application's own, `/health`, beside them, and wirecall's metrics as
//! Prometheus text at `/metrics` (see `src/web.rs`).
//!
//! ```text
//! cargo run -p wirecall-examples --bin web -- 127.0.0.1:8080
//! curl -d '{"jsonrpc":"2.0","method":"Calculator.add","params":[1,2],"id":1}' \
//!      -H 'content-type: application/json' http://127.0.0.1:8080/rpc
//! ```
//!
//! The page and `/rpc` share an origin, so no `--allow-origin` is needed.

use clap::Parser;
use wirecall_examples::CalcServer;

/// Serve the calculator and its browser page over HTTP, in an axum application.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(default_value = "127.0.0.1:8080")]
    addr: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // Install the recorder before serving: wirecall makes its metric handles on first use.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let (app, rpc) = wirecall_examples::web::app(CalcServer::default(), Some(metrics));
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    rpc.shutdown(std::time::Duration::from_secs(5)).await;
    Ok(())
}
