//! The `web` example's application: the browser page of `examples/web` at `/`, the
//! calculator at `/rpc` (WebSocket, JSON-RPC over HTTP POST, server-sent events), and a
//! route of the application's own, `/health`, beside them; with a Prometheus recorder
//! installed, its text at `/metrics`.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use wirecall::{server::RpcService, Server};

use crate::calculator::Calculator;
use crate::CalcServer;

const INDEX: &str = include_str!("../web/index.html");
const APP: &str = include_str!("../web/dist/app.js");
const GEN_CALCULATOR: &str = include_str!("../web/dist/gen/calculator.js");
const GEN_RUNTIME: &str = include_str!("../web/dist/gen/wirecall.js");

fn javascript(source: &'static str) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        source,
    )
}

/// The application, serving `calc`; also the mounted service, for a graceful shutdown.
/// With `metrics` (the handle of an installed Prometheus recorder), `/metrics` serves the
/// Prometheus text of wirecall's metrics.
pub fn app(calc: CalcServer, metrics: Option<PrometheusHandle>) -> (axum::Router, RpcService) {
    let mut calculator = calc.into_router();
    calculator
        .discover(crate::calculator::OPENRPC_DOCUMENT)
        .expect("the generated OpenRPC document is JSON");
    let rpc = Server::builder().into_service(calculator);
    let app = axum::Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/dist/app.js", get(|| async { javascript(APP) }))
        .route(
            "/dist/gen/calculator.js",
            get(|| async { javascript(GEN_CALCULATOR) }),
        )
        .route(
            "/dist/gen/wirecall.js",
            get(|| async { javascript(GEN_RUNTIME) }),
        )
        .route("/health", get(|| async { "ok\n" }))
        .route_service("/rpc", rpc.clone());
    let app = match metrics {
        Some(handle) => app.route(
            "/metrics",
            get(move || {
                let text = handle.render();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
            }),
        ),
        None => app,
    };
    (app, rpc)
}
