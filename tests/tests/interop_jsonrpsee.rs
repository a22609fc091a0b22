//! Interoperability with jsonrpsee, a widely used independent JSON-RPC 2.0 implementation:
//! its WebSocket and HTTP clients call a wirecall server, and a wirecall client calls its
//! server.

use jsonrpsee::core::client::ClientT;
use jsonrpsee::rpc_params;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::json;
use wirecall::Client;
use wirecall_tests::{serve, spec_router};

#[tokio::test]
async fn jsonrpsee_http_client_calls_the_calculator_over_post() {
    use jsonrpsee::http_client::HttpClientBuilder;
    let calc = wirecall_examples::CalcServer::default();
    let server = serve(wirecall_examples::calculator::Calculator::into_router(calc)).await;
    let client = HttpClientBuilder::default()
        .build(server.http_url())
        .unwrap();
    let r: i64 = client
        .request("Calculator.add", rpc_params![1, 2])
        .await
        .unwrap();
    assert_eq!(r, 3);
    let mut named = jsonrpsee::core::params::ObjectParams::new();
    named.insert("minuend", 42).unwrap();
    named.insert("subtrahend", 23).unwrap();
    let r: i64 = client.request("Calculator.subtract", named).await.unwrap();
    assert_eq!(r, 19);
    // The typed error, as a JSON-RPC error object.
    match client
        .request::<f64, _>("Calculator.divide", rpc_params![1.0, 0.0])
        .await
        .unwrap_err()
    {
        jsonrpsee::core::client::Error::Call(e) => {
            assert_eq!((e.code(), e.message()), (1001, "DivideByZero"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // A notification (204), then a batch.
    client
        .notification("Calculator.log", rpc_params!["from jsonrpsee"])
        .await
        .unwrap();
    let mut batch = jsonrpsee::core::params::BatchRequestBuilder::new();
    batch.insert("Calculator.add", rpc_params![10, 3]).unwrap();
    batch
        .insert("Calculator.subtract", rpc_params![10, 3])
        .unwrap();
    batch.insert("Calculator.sleep", rpc_params![5]).unwrap();
    let responses = client.batch_request::<i64>(batch).await.unwrap();
    let results: Vec<i64> = responses.into_ok().unwrap().collect();
    assert_eq!(results, vec![13, 7, 5]);
}

#[tokio::test]
async fn jsonrpsee_client_calls_a_wirecall_server() {
    let server = serve(spec_router()).await;
    let client = WsClientBuilder::default()
        .build(server.url())
        .await
        .unwrap();

    // Positional params (jsonrpsee's `rpc_params!`).
    let r: i64 = client
        .request("subtract", rpc_params![42, 23])
        .await
        .unwrap();
    assert_eq!(r, 19);
    let r: i64 = client.request("sum", rpc_params![1, 2, 4]).await.unwrap();
    assert_eq!(r, 7);

    // Named params.
    let mut named = jsonrpsee::core::params::ObjectParams::new();
    named.insert("subtrahend", 23).unwrap();
    named.insert("minuend", 42).unwrap();
    let r: i64 = client.request("subtract", named).await.unwrap();
    assert_eq!(r, 19);

    // Errors arrive as proper JSON-RPC error objects.
    let err = client
        .request::<i64, _>("nope", rpc_params![])
        .await
        .unwrap_err();
    match err {
        jsonrpsee::core::client::Error::Call(e) => {
            assert_eq!(e.code(), -32601);
            assert_eq!(e.message(), "Method not found");
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = client
        .request::<i64, _>("subtract", rpc_params![1])
        .await
        .unwrap_err();
    match err {
        jsonrpsee::core::client::Error::Call(e) => {
            assert_eq!(e.code(), -32602);
            assert_eq!(e.message(), "missing parameter `subtrahend`");
        }
        other => panic!("unexpected {other:?}"),
    }

    // Notifications and batches.
    client
        .notification("update", rpc_params![1, 2])
        .await
        .unwrap();
    let mut batch = jsonrpsee::core::params::BatchRequestBuilder::new();
    batch.insert("subtract", rpc_params![10, 3]).unwrap();
    batch.insert("sum", rpc_params![1, 1]).unwrap();
    let responses = client.batch_request::<i64>(batch).await.unwrap();
    let values: Vec<i64> = responses.into_ok().unwrap().collect();
    assert_eq!(values, [7, 2]);
}

#[tokio::test]
async fn wirecall_client_calls_a_jsonrpsee_server() {
    let server = jsonrpsee::server::Server::builder()
        .build("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let mut module = jsonrpsee::RpcModule::new(());
    module
        .register_method("subtract", |params, _, _| {
            #[derive(serde::Deserialize)]
            struct P {
                minuend: i64,
                subtrahend: i64,
            }
            let p: P = params.parse()?;
            Ok::<_, ErrorObjectOwned>(p.minuend - p.subtrahend)
        })
        .unwrap();
    module
        .register_method("fail", |_, _, _| {
            Err::<(), _>(ErrorObjectOwned::owned(
                1234,
                "nope",
                Some(json!({"why": "because"})),
            ))
        })
        .unwrap();
    let handle = server.start(module);

    let client = Client::connect(&format!("ws://{addr}")).await.unwrap();
    let r: i64 = client
        .call("subtract", json!({"minuend": 42, "subtrahend": 23}))
        .await
        .unwrap();
    assert_eq!(r, 19);
    let err = client.call::<()>("fail", ()).await.unwrap_err();
    let rpc = err.rpc().unwrap();
    assert_eq!((rpc.code, &*rpc.message), (1234, "nope"));
    assert_eq!(
        rpc.data::<serde_json::Value>(),
        Some(json!({"why": "because"}))
    );
    let err = client.call::<()>("missing", ()).await.unwrap_err();
    assert_eq!(err.rpc().unwrap().code, -32601);
    // Many calls in flight at once are matched to their answers.
    let calls = (0..200i64).map(|i| {
        let c = client.clone();
        async move {
            c.call::<i64>("subtract", json!({"minuend": i, "subtrahend": 1}))
                .await
                .unwrap()
        }
    });
    let got = futures_util::future::join_all(calls).await;
    assert_eq!(got, (0..200).map(|i| i - 1).collect::<Vec<_>>());
    handle.stop().unwrap();
}
