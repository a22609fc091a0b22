//! Every example of §7 of the JSON-RPC 2.0 specification, sent by a plain WebSocket
//! client to a wirecall server, answered byte for byte as the specification shows (less
//! its insignificant whitespace; batch answers may come in any order).

use wirecall_tests::{compact, serve, spec_router, RawWs};

async fn client() -> (RawWs, wirecall::server::ServerHandle) {
    let server = serve(spec_router()).await;
    (RawWs::connect(&server.url()).await, server)
}

async fn exchange(ws: &mut RawWs, request: &str, response: &str) {
    assert_eq!(
        ws.roundtrip(request).await,
        compact(response),
        "request: {request}"
    );
}

/// Elements of a JSON array text, for order-independent comparison.
fn elements(batch: &str) -> Vec<String> {
    let mut items: Vec<String> = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(batch)
        .unwrap()
        .into_iter()
        .map(|r| r.get().to_string())
        .collect();
    items.sort();
    items
}

#[tokio::test]
async fn rpc_call_with_positional_parameters() {
    let (mut ws, _s) = client().await;
    exchange(
        &mut ws,
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#,
        r#"{"jsonrpc": "2.0", "result": 19, "id": 1}"#,
    )
    .await;
    exchange(
        &mut ws,
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#,
        r#"{"jsonrpc": "2.0", "result": -19, "id": 2}"#,
    )
    .await;
}

#[tokio::test]
async fn rpc_call_with_named_parameters() {
    let (mut ws, _s) = client().await;
    exchange(&mut ws, r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#, r#"{"jsonrpc": "2.0", "result": 19, "id": 3}"#).await;
    exchange(&mut ws, r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#, r#"{"jsonrpc": "2.0", "result": 19, "id": 4}"#).await;
}

#[tokio::test]
async fn a_notification() {
    let (mut ws, _s) = client().await;
    ws.send(r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#)
        .await;
    ws.send(r#"{"jsonrpc": "2.0", "method": "foobar"}"#).await;
    ws.assert_no_answer_pending().await;
}

#[tokio::test]
async fn rpc_call_of_non_existent_method() {
    let (mut ws, _s) = client().await;
    exchange(&mut ws, r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#, r#"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}"#).await;
}

#[tokio::test]
async fn rpc_call_with_invalid_json() {
    let (mut ws, _s) = client().await;
    exchange(
        &mut ws,
        r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
        r#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#,
    )
    .await;
}

#[tokio::test]
async fn rpc_call_with_invalid_request_object() {
    let (mut ws, _s) = client().await;
    exchange(&mut ws, r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#, r#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#).await;
}

#[tokio::test]
async fn rpc_call_batch_invalid_json() {
    let (mut ws, _s) = client().await;
    exchange(
        &mut ws,
        r#"[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]"#,
        r#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#,
    )
    .await;
}

#[tokio::test]
async fn rpc_call_with_an_empty_array() {
    let (mut ws, _s) = client().await;
    exchange(&mut ws, "[]", r#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#).await;
}

#[tokio::test]
async fn rpc_call_with_an_invalid_batch_but_not_empty() {
    let (mut ws, _s) = client().await;
    exchange(&mut ws, "[1]", r#"[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]"#).await;
}

#[tokio::test]
async fn rpc_call_with_invalid_batch() {
    let (mut ws, _s) = client().await;
    exchange(
        &mut ws,
        "[1,2,3]",
        r#"[
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
]"#,
    )
    .await;
}

#[tokio::test]
async fn rpc_call_batch() {
    let (mut ws, _s) = client().await;
    let got = ws
        .roundtrip(
            r#"[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]"#,
        )
        .await;
    let expected = compact(
        r#"[
        {"jsonrpc": "2.0", "result": 7, "id": "1"},
        {"jsonrpc": "2.0", "result": 19, "id": "2"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
        {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
    ]"#,
    );
    assert_eq!(elements(&got), elements(&expected), "{got}");
}

#[tokio::test]
async fn rpc_call_batch_all_notifications() {
    let (mut ws, _s) = client().await;
    ws.send(
        r#"[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]"#,
    )
    .await;
    ws.assert_no_answer_pending().await;
}
