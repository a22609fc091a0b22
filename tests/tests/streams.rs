//! Streams end to end: order, unsubscribe, lagging consumers, fan-out, typed failures,
//! limits, the wire format, and a jsonrpsee client subscribing to a wirecall stream.

use std::time::Duration;

use futures_util::StreamExt;
use wirecall::{Client, Error, Server};
use wirecall_examples::calculator::{Calculator, CalculatorClient};
use wirecall_examples::chat::{Chat, ChatClient, ChatError, ChatServer};
use wirecall_examples::CalcServer;
use wirecall_tests::{wait_for, RawWs};

async fn calculator() -> (CalcServer, wirecall::server::ServerHandle) {
    let state = CalcServer::default();
    let server = Server::bind("127.0.0.1:0", state.clone().into_router())
        .await
        .unwrap();
    (state, server)
}

#[tokio::test]
async fn items_arrive_in_order_then_the_stream_ends() {
    let (_, server) = calculator().await;
    let calc = CalculatorClient::new(Client::connect(&server.url()).await.unwrap());
    let ticks = calc.ticks(500, 0).await.unwrap();
    let got: Vec<u64> = ticks.map(|t| t.unwrap()).collect().await;
    assert_eq!(got, (0..500).collect::<Vec<_>>());
    // An empty stream ends at once.
    let mut none = calc.ticks(0, 0).await.unwrap();
    assert!(none.next().await.is_none());
    assert!(
        none.next().await.is_none(),
        "a finished stream stays finished"
    );
}

#[tokio::test]
async fn dropping_the_subscription_stops_the_server_producer() {
    let (state, server) = calculator().await;
    let calc = CalculatorClient::new(Client::connect(&server.url()).await.unwrap());
    let mut ticks = calc.ticks(100_000, 10).await.unwrap();
    assert_eq!(ticks.next().await.unwrap().unwrap(), 0);
    assert_eq!(ticks.next().await.unwrap().unwrap(), 1);
    assert_eq!(state.active_ticks(), 1);
    drop(ticks);
    wait_for("the producer to stop", || state.active_ticks() == 0).await;
    // Calls carry on on the same connection.
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
}

#[tokio::test]
async fn disconnecting_stops_the_server_producer() {
    let (state, server) = calculator().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let calc = CalculatorClient::new(client.clone());
    let mut ticks = calc.ticks(100_000, 10).await.unwrap();
    assert!(ticks.next().await.unwrap().is_ok());
    client.close().await;
    wait_for("the producer to stop", || state.active_ticks() == 0).await;
    // The subscription reports the lost connection, then ends.
    let mut rest = Vec::new();
    while let Some(item) = ticks.next().await {
        rest.push(item);
    }
    assert!(
        matches!(rest.last(), Some(Err(Error::Disconnected(_)))),
        "{rest:?}"
    );
}

#[tokio::test]
async fn a_slow_subscriber_lags_while_a_fast_one_carries_on() {
    let (state, server) = calculator().await;
    let client = Client::builder()
        .subscription_buffer(16)
        .connect(&server.url())
        .await
        .unwrap();
    let calc = CalculatorClient::new(client);
    let mut slow = calc.ticks(2_000, 0).await.unwrap();
    let fast = calc.ticks(2_000, 0).await.unwrap();
    // Consume the fast one completely while the slow one is not read at all.
    let got: Vec<u64> = fast.map(|t| t.unwrap()).collect().await;
    assert_eq!(got.len(), 2_000);
    // The slow one yields what it buffered, then the lagged error, then ends.
    let mut buffered = 0;
    let error = loop {
        match slow.next().await {
            Some(Ok(_)) => buffered += 1,
            Some(Err(e)) => break e,
            None => panic!("ended without an error"),
        }
    };
    // At most the subscription's buffer (16), plus the reconnect forwarder's buffer (16)
    // and the one item it holds.
    assert!(buffered <= 33, "{buffered}");
    assert!(error.rpc().is_some_and(|e| e.is_lagged()), "{error}");
    assert!(slow.next().await.is_none());
    // The server stopped producing for it.
    wait_for("the lagging producer to stop", || state.active_ticks() == 0).await;
    assert_eq!(calc.add(2, 2).await.unwrap(), 4);
}

#[tokio::test]
async fn a_thousand_subscribers_of_one_room_receive_every_message() {
    let server = Server::bind("127.0.0.1:0", ChatServer::default().into_router())
        .await
        .unwrap();
    let mut subs = Vec::new();
    let mut clients = Vec::new();
    for c in 0..100 {
        let chat = ChatClient::new(Client::connect(&server.url()).await.unwrap());
        chat.join("big".into(), format!("member{c}")).await.unwrap();
        for _ in 0..10 {
            subs.push(chat.messages("big".into()).await.unwrap());
        }
        clients.push(chat);
    }
    assert_eq!(subs.len(), 1_000);
    for i in 0..20 {
        clients[i % clients.len()]
            .say("big".into(), format!("message {i}"))
            .await
            .unwrap();
    }
    let expected: Vec<String> = (0..20).map(|i| format!("message {i}")).collect();
    let receivers = subs.into_iter().map(|mut s| {
        let expected = expected.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < expected.len() {
                let m = tokio::time::timeout(Duration::from_secs(20), s.next())
                    .await
                    .expect("a message")
                    .expect("the stream is open")
                    .expect("a message, not an error");
                got.push(m.text);
            }
            got == expected
        })
    });
    for ok in futures_util::future::join_all(receivers).await {
        assert!(ok.unwrap(), "a subscriber missed or reordered messages");
    }
}

#[tokio::test]
async fn stream_errors_arrive_typed() {
    let server = Server::bind("127.0.0.1:0", ChatServer::default().into_router())
        .await
        .unwrap();
    let chat = ChatClient::new(Client::connect(&server.url()).await.unwrap());
    // A setup error answers the subscribe call.
    match chat.messages("nowhere".into()).await {
        Err(Error::App(ChatError::NotMember)) => {}
        other => panic!("expected NotMember, got {other:?}"),
    }
    // A failure of a running stream ends it with the typed error.
    chat.join("room".into(), "me".into()).await.unwrap();
    let mut messages = chat.messages("room".into()).await.unwrap();
    chat.say("room".into(), "one".into()).await.unwrap();
    assert_eq!(messages.next().await.unwrap().unwrap().text, "one");
    assert!(chat.close("room".into()).await.unwrap());
    match messages.next().await {
        Some(Err(Error::App(ChatError::RoomClosed { room }))) => assert_eq!(room, "room"),
        other => panic!("expected RoomClosed, got {other:?}"),
    }
    assert!(messages.next().await.is_none());
}

#[tokio::test]
async fn subscription_limit() {
    let server = Server::builder()
        .max_subscriptions(2)
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let calc = CalculatorClient::new(Client::connect(&server.url()).await.unwrap());
    let a = calc.ticks(1_000, 50).await.unwrap();
    let _b = calc.ticks(1_000, 50).await.unwrap();
    let err = calc.ticks(1_000, 50).await.unwrap_err();
    let rpc = err.rpc().expect("an error answer");
    assert_eq!(rpc.code, -32005);
    assert!(rpc.to_string().contains("too many subscriptions"), "{rpc}");
    // Ending one makes room again.
    drop(a);
    let mut c = None;
    for _ in 0..100 {
        if let Ok(s) = calc.ticks(1, 0).await {
            c = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        c.expect("room for a new subscription")
            .next()
            .await
            .unwrap()
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn wire_format_of_a_stream() {
    let (_, server) = calculator().await;
    let mut ws = RawWs::connect(&server.url()).await;
    assert_eq!(
        ws.roundtrip(r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":2,"every_ms":0},"id":"s"}"#)
            .await,
        r#"{"jsonrpc":"2.0","result":1,"id":"s"}"#
    );
    assert_eq!(
        ws.recv().await,
        r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"subscription":1,"result":0}}"#
    );
    assert_eq!(
        ws.recv().await,
        r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"subscription":1,"result":1}}"#
    );
    assert_eq!(
        ws.recv().await,
        r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"subscription":1,"error":null}}"#
    );
    // Unsubscribe: true while active (positional `[ID]`), false after.
    assert_eq!(
        ws.roundtrip(r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":[5,1000],"id":2}"#)
            .await,
        r#"{"jsonrpc":"2.0","result":2,"id":2}"#
    );
    assert_eq!(
        ws.recv().await,
        r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"subscription":2,"result":0}}"#
    );
    assert_eq!(
        ws.roundtrip(
            r#"{"jsonrpc":"2.0","method":"Calculator.ticks.unsubscribe","params":[2],"id":3}"#
        )
        .await,
        r#"{"jsonrpc":"2.0","result":true,"id":3}"#
    );
    assert_eq!(
        ws.roundtrip(
            r#"{"jsonrpc":"2.0","method":"Calculator.ticks.unsubscribe","params":[2],"id":4}"#
        )
        .await,
        r#"{"jsonrpc":"2.0","result":false,"id":4}"#
    );
    // Setup errors answer the call like any error.
    assert_eq!(
        ws.roundtrip(
            r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":1},"id":5}"#
        )
        .await,
        r#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"missing parameter `every_ms`"},"id":5}"#
    );
}

#[tokio::test]
async fn untyped_subscribe_through_the_client() {
    let (_, server) = calculator().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let sub = client
        .subscribe::<u64>(
            "Calculator.ticks",
            serde_json::json!({"count": 3, "every_ms": 0}),
        )
        .await
        .unwrap();
    let got: Vec<u64> = sub.map(|t| t.unwrap()).collect().await;
    assert_eq!(got, [0, 1, 2]);
}

#[tokio::test]
async fn jsonrpsee_client_subscribes_to_a_wirecall_stream() {
    use jsonrpsee::core::client::SubscriptionClientT;
    let (state, server) = calculator().await;
    let client = jsonrpsee::ws_client::WsClientBuilder::default()
        .build(server.url())
        .await
        .unwrap();
    let sub = client
        .subscribe::<u64, _>(
            "Calculator.ticks",
            jsonrpsee::rpc_params![5, 1],
            "Calculator.ticks.unsubscribe",
        )
        .await
        .unwrap();
    let got: Vec<u64> = sub.map(|t| t.unwrap()).collect().await;
    assert_eq!(got, [0, 1, 2, 3, 4], "the stream also ends for jsonrpsee");
    // jsonrpsee unsubscribes when its subscription is dropped.
    let mut long = client
        .subscribe::<u64, _>(
            "Calculator.ticks",
            jsonrpsee::rpc_params![100_000, 10],
            "Calculator.ticks.unsubscribe",
        )
        .await
        .unwrap();
    assert_eq!(long.next().await.unwrap().unwrap(), 0);
    drop(long);
    wait_for("the producer to stop", || state.active_ticks() == 0).await;
}
