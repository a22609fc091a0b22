//! Trace context across calls (feature `otel`, on in this crate): a request's
//! `"$traceparent"` (a POST's `traceparent` header) becomes the parent of the server's span
//! for the call; a call made inside a span carries that span's context, so a client →
//! server A → server B chain is one trace. A traceparent that is not valid W3C is ignored,
//! never an error. Checked with the OpenTelemetry SDK's in-memory exporter.

use std::sync::OnceLock;

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry::Value as OtelValue;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{json, Value};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use wirecall::raw::Router;
use wirecall::{Client, RpcError, Server};
use wirecall_tests::http::HttpConn;
use wirecall_tests::{wait_for, RawWs};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// The spans of every test of this binary: one subscriber for the process (the servers'
/// tasks run on any thread), recording every span through tracing-opentelemetry into an
/// in-memory exporter as it ends. Each test calls methods of its own names.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<(SdkTracerProvider, InMemorySpanExporter)> = OnceLock::new();
    &EXPORTER
        .get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("traces"));
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                .expect("the only subscriber");
            (provider, exporter)
        })
        .1
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| match &kv.value {
            OtelValue::String(s) => s.as_str().to_string(),
            other => other.to_string(),
        })
}

/// The server's span of the call `method` with request id `id` (JSON text), once it ended.
async fn call_span(method: &str, id: Option<&str>) -> SpanData {
    span_named("call", method, id).await
}

/// The span `name` (`call` or `subscribe`) of `method` (and request id `id`), once it ended.
async fn span_named(name: &str, method: &str, id: Option<&str>) -> SpanData {
    let mut found = None;
    wait_for(&format!("the span of {method} {id:?}"), || {
        found = exporter()
            .get_finished_spans()
            .expect("spans")
            .into_iter()
            .find(|s| {
                s.name == name
                    && attribute(s, "method").as_deref() == Some(method)
                    && id.is_none_or(|id| attribute(s, "id").as_deref() == Some(id))
            });
        found.is_some()
    })
    .await;
    found.expect("found")
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn a_chain_client_to_a_to_b_is_one_trace() {
    exporter();
    // B answers the `traceparent` header its POST came with.
    let mut router = Router::new();
    router.method("B.leaf", |ctx, _params| async move {
        let header = ctx
            .headers()
            .get("traceparent")
            .map(|v| v.to_str().unwrap().to_string());
        Ok::<_, RpcError>(header)
    });
    let b = Server::bind("127.0.0.1:0", router).await.unwrap();
    // A calls B through a wirecall client over HTTP (so the body's `"$traceparent"` and the
    // header both travel).
    let to_b = Client::connect(&format!("http://{}", b.local_addr()))
        .await
        .unwrap();
    let mut router = Router::new();
    router.method("A.relay", move |_ctx, _params| {
        let to_b = to_b.clone();
        async move {
            let header: Option<String> = to_b
                .call("B.leaf", json!({}))
                .await
                .map_err(|e| RpcError::internal(format!("B: {e}")))?;
            Ok::<_, RpcError>(header)
        }
    });
    let a = Server::bind("127.0.0.1:0", router).await.unwrap();
    let client = Client::connect(&a.url()).await.unwrap();

    let root = tracing::info_span!("root");
    let root_sc = root.context().span().span_context().clone();
    assert!(root_sc.is_valid(), "the subscriber records spans");
    let header: Option<String> = client
        .call("A.relay", json!({}))
        .instrument(root.clone())
        .await
        .unwrap();
    drop(root);

    let a_span = call_span("A.relay", None).await;
    let b_span = call_span("B.leaf", None).await;
    let trace = root_sc.trace_id();
    assert_eq!(
        a_span.span_context.trace_id(),
        trace,
        "A continues the client's trace"
    );
    assert_eq!(
        a_span.parent_span_id,
        root_sc.span_id(),
        "A's parent: the client's span"
    );
    assert!(a_span.parent_span_is_remote);
    assert_eq!(b_span.span_context.trace_id(), trace, "B continues it too");
    assert_eq!(
        b_span.parent_span_id,
        a_span.span_context.span_id(),
        "B's parent: A's call span, in which A's handler called B"
    );
    assert!(b_span.parent_span_is_remote);
    // The HTTP client sent the standard header as well.
    assert_eq!(
        header,
        Some(format!("00-{trace}-{}-01", a_span.span_context.span_id()))
    );
}

#[tokio::test]
async fn a_server_to_client_call_continues_the_handlers_trace() {
    exporter();
    let mut router = Router::new();
    router.method("P.ask", |ctx, _params| async move {
        let yes: bool = ctx
            .peer()
            .call("P.confirm", json!({}))
            .await
            .map_err(|e| RpcError::internal(e.to_string()))?;
        Ok::<_, RpcError>(yes)
    });
    let server = Server::bind("127.0.0.1:0", router).await.unwrap();
    let mut on_client = Router::new();
    on_client.method("P.confirm", |_ctx, _params| async move {
        Ok::<_, RpcError>(true)
    });
    let client = Client::builder()
        .router(on_client)
        .connect(&server.url())
        .await
        .unwrap();
    let yes: bool = client
        .call("P.ask", json!({}))
        .instrument(tracing::info_span!("root"))
        .await
        .unwrap();
    assert!(yes);
    let ask = call_span("P.ask", None).await;
    let confirm = call_span("P.confirm", None).await;
    assert_eq!(confirm.span_context.trace_id(), ask.span_context.trace_id());
    assert_eq!(confirm.parent_span_id, ask.span_context.span_id());
}

/// A server whose `method` answers 1.
async fn one(method: &'static str) -> wirecall::server::ServerHandle {
    let mut router = Router::new();
    router.method(method, |_ctx, _params| async move { Ok::<_, RpcError>(1) });
    Server::bind("127.0.0.1:0", router).await.unwrap()
}

fn continues(span: &SpanData, trace: &str, parent: &str) -> bool {
    span.span_context.trace_id() == TraceId::from_hex(trace).unwrap()
        && span.parent_span_id == SpanId::from_hex(parent).unwrap()
}

#[tokio::test]
async fn a_traceparent_member_is_the_parent_of_the_call_span_and_a_malformed_one_is_ignored() {
    exporter();
    let server = one("W.one").await;
    let mut ws = RawWs::connect(&server.url()).await;
    let call = |id: u32, member: &str| {
        format!(r#"{{"jsonrpc":"2.0","method":"W.one","id":{id}{member}}}"#)
    };
    let answer = parse(
        &ws.roundtrip(&call(
            1,
            &format!(r#","$traceparent":"00-{TRACE}-{PARENT}-01""#),
        ))
        .await,
    );
    assert_eq!(answer["result"], 1, "{answer}");
    let span = call_span("W.one", Some("1")).await;
    assert!(continues(&span, TRACE, PARENT), "{span:?}");
    assert!(span.parent_span_is_remote);
    assert!(span.span_context.is_sampled());

    // Not valid W3C: the call is served as if it had none (never an error).
    let upper = format!("00-{}-{}-01", TRACE.to_uppercase(), PARENT.to_uppercase());
    let malformed = [
        format!(r#","$traceparent":"{upper}""#),
        format!(r#","$traceparent":"ff-{TRACE}-{PARENT}-01""#),
        format!(r#","$traceparent":"00-{TRACE}-{PARENT}""#),
        format!(r#","$traceparent":"00-{TRACE}-0000000000000000-01""#),
        r#","$traceparent":"zz""#.to_string(),
        r#","$traceparent":5"#.to_string(),
        r#","$traceparent":null"#.to_string(),
        format!(
            r#","$traceparent":"00-{TRACE}-{PARENT}-01","$traceparent":"00-{TRACE}-{PARENT}-01""#
        ),
    ];
    for (i, member) in malformed.iter().enumerate() {
        let id = 10 + i as u32;
        let answer = parse(&ws.roundtrip(&call(id, member)).await);
        assert_eq!(answer["result"], 1, "{member}: {answer}");
        let span = call_span("W.one", Some(&id.to_string())).await;
        assert_ne!(
            span.span_context.trace_id(),
            TraceId::from_hex(TRACE).unwrap(),
            "{member}"
        );
        assert!(!span.parent_span_is_remote, "{member}");
    }
}

#[tokio::test]
async fn a_post_takes_the_traceparent_header() {
    exporter();
    let server = one("H.one").await;
    let mut conn = HttpConn::connect(server.local_addr()).await;
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let headers = [
        ("content-type", "application/json"),
        ("traceparent", traceparent.as_str()),
    ];
    // The header is the parent of every call in the body without its own.
    let body = r#"[{"jsonrpc":"2.0","method":"H.one","id":1},{"jsonrpc":"2.0","method":"H.one","id":2,"$traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}]"#;
    let a = conn.send("POST", &headers, body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(continues(
        &call_span("H.one", Some("1")).await,
        TRACE,
        PARENT
    ));
    // The member wins over the header.
    assert!(continues(
        &call_span("H.one", Some("2")).await,
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331"
    ));
    // A malformed header is ignored: the call is answered, in a trace of its own.
    let bad = [
        ("content-type", "application/json"),
        ("traceparent", "00-nonsense"),
    ];
    let a = conn
        .send("POST", &bad, r#"{"jsonrpc":"2.0","method":"H.one","id":3}"#)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(parse(&a.body)["result"], 1);
    let span = call_span("H.one", Some("3")).await;
    assert!(!span.parent_span_is_remote, "{span:?}");
    assert_ne!(
        span.span_context.trace_id(),
        TraceId::from_hex(TRACE).unwrap()
    );
}

#[tokio::test]
async fn a_subscription_continues_the_callers_trace() {
    exporter();
    let mut router = Router::new();
    router.subscription("S.one", |_ctx, _params| async move {
        Ok::<_, RpcError>(futures_util::stream::iter([Ok::<_, RpcError>(1)]))
    });
    let server = Server::bind("127.0.0.1:0", router).await.unwrap();
    let mut ws = RawWs::connect(&server.url()).await;
    ws.send(&format!(
        r#"{{"jsonrpc":"2.0","method":"S.one","id":1,"$traceparent":"00-{TRACE}-{PARENT}-01"}}"#
    ))
    .await;
    // The subscription id, the item, the end.
    for _ in 0..3 {
        ws.recv().await;
    }
    let span = span_named("subscribe", "S.one", Some("1")).await;
    assert!(continues(&span, TRACE, PARENT), "{span:?}");
}
