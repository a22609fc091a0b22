//! The shipped rate-limit layer (`policy::RateLimitLayer`, feature `rate-limit`): per
//! identity when there is one, else per IP; every batch entry, every subscription and every
//! WAMP publication counts; over the limit -32029 with `retry_after_ms` (WAMP `wirecall.error.rate_limited`);
//! the Rust client's typed error, and `@idempotent` calls that wait and retry once.

use std::num::NonZeroU32;

use serde_json::{json, Value};
use wirecall::auth::{Identity, Refusal};
use wirecall::policy::{Quota, RateLimitLayer};
use wirecall::server::ServerHandle;
use wirecall::{Client, Error, Server};
use wirecall_examples::calculator::{Calculator, CalculatorClient};
use wirecall_examples::chat::{Chat, ChatServer};
use wirecall_examples::CalcServer;
use wirecall_tests::RawWs;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The calculator, 5 calls a minute per caller (nothing comes back within a test), callers
/// known by their bearer token when they give one.
async fn server(quota: Quota) -> ServerHandle {
    Server::builder()
        .authenticate(|handshake| {
            let token = handshake.bearer_token().map(str::to_string);
            async move {
                Ok::<_, Refusal>(match token {
                    Some(t) => Identity::new(t),
                    None => Identity::new(()),
                })
            }
        })
        .layer(RateLimitLayer::new(quota))
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap()
}

fn five_a_minute() -> Quota {
    Quota::per_minute(NonZeroU32::new(5).unwrap())
}

fn echo(id: usize) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","method":"Calculator.echo","params":{{"text":"e{id}"}},"id":{id}}}"#
    )
}

fn rate_limited(answer: &Value) -> u64 {
    assert_eq!(answer["error"]["code"], -32029, "{answer}");
    let ms = answer["error"]["data"]["retry_after_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("retry_after_ms: {answer}"));
    assert!(ms > 0 && ms <= 60_000, "{answer}");
    ms
}

#[tokio::test]
async fn a_batch_of_n_plus_10_answers_the_extra_entries_rate_limited() {
    let server = server(five_a_minute()).await;
    let mut ws = RawWs::connect(&server.url()).await;
    let batch: Vec<String> = (1..=15).map(echo).collect();
    let answers = parse(&ws.roundtrip(&format!("[{}]", batch.join(","))).await);
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 15);
    let ok = answers.iter().filter(|a| a.get("result").is_some()).count();
    assert_eq!(ok, 5, "{answers:?}");
    for a in answers.iter().filter(|a| a.get("error").is_some()) {
        rate_limited(a);
    }
    // Subscriptions count too, and the same IP shares the budget on another connection.
    let mut other = RawWs::connect(&server.url()).await;
    let sub = parse(&other.roundtrip(r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":1,"every_ms":1},"id":1}"#).await);
    rate_limited(&sub);
    // Over WAMP: the error URI with the same data.
    let (mut wamp, _) =
        RawWs::connect_with(&server.url(), &[("sec-websocket-protocol", "wamp.2.json")])
            .await
            .unwrap();
    wamp.send(r#"[1,"realm1",{"roles":{"caller":{}}}]"#).await;
    assert_eq!(parse(&wamp.recv().await)[0], 2);
    let error = parse(&wamp.roundtrip(r#"[48,1,{},"Calculator.echo",["x"]]"#).await);
    assert_eq!(
        (error[0].clone(), error[4].clone()),
        (json!(8), json!("wirecall.error.rate_limited")),
        "{error}"
    );
    assert!(error[6]["retry_after_ms"].as_u64().unwrap() > 0, "{error}");
}

/// A WAMP `PUBLISH` counts like a call (else a client under `chat serve --rate N` would
/// publish into its rooms as fast as its socket allows): over the limit it is refused with
/// the error URI and reaches nobody.
#[tokio::test]
async fn a_wamp_publication_counts_and_over_the_limit_reaches_nobody() {
    let server = Server::builder()
        .layer(RateLimitLayer::new(Quota::per_minute(
            NonZeroU32::new(3).unwrap(),
        )))
        .bind("127.0.0.1:0", ChatServer::default().into_router())
        .await
        .unwrap();
    // A subscriber (the first of the address's three), then two publications pass.
    let mut subscriber = RawWs::connect(&server.url()).await;
    let subscribed = parse(
        &subscriber
            .roundtrip(r#"{"jsonrpc":"2.0","method":"Chat.room","params":["lobby"],"id":1}"#)
            .await,
    );
    assert!(subscribed["result"].as_u64().is_some(), "{subscribed}");
    let (mut wamp, _) =
        RawWs::connect_with(&server.url(), &[("sec-websocket-protocol", "wamp.2.json")])
            .await
            .unwrap();
    wamp.send(r#"[1,"realm1",{"roles":{"publisher":{}}}]"#)
        .await;
    assert_eq!(parse(&wamp.recv().await)[0], 2);
    let publish = |request: u64| {
        format!(
            r#"[16,{request},{{"acknowledge":true}},"Chat.room.lobby",[{{"room":"lobby","from":"a","text":"t{request}"}}]]"#
        )
    };
    for request in 1..=2 {
        let published = parse(&wamp.roundtrip(&publish(request)).await);
        assert_eq!(published[0], 17, "{published}");
    }
    let error = parse(&wamp.roundtrip(&publish(3)).await);
    assert_eq!(
        (error[0].clone(), error[1].clone(), error[4].clone()),
        (json!(8), json!(16), json!("wirecall.error.rate_limited")),
        "{error}"
    );
    assert!(error[6]["retry_after_ms"].as_u64().unwrap() > 0, "{error}");
    // The subscriber hears the two, and not the third.
    let mut heard = Vec::new();
    while heard.len() < 2 {
        let v = parse(&subscriber.recv().await);
        if let Some(text) = v["params"]["result"]["text"].as_str() {
            heard.push(text.to_string());
        }
    }
    assert_eq!(heard, ["t1", "t2"]);
    let more = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        subscriber.next_text(),
    )
    .await;
    assert!(more.is_err(), "{more:?}");
}

#[tokio::test]
async fn each_identity_has_its_own_budget_and_the_client_gets_a_typed_error() {
    let server = server(five_a_minute()).await;
    let client = |token: &'static str| {
        let url = server.url();
        async move { CalculatorClient::new(Client::builder().token(token).connect(&url).await.unwrap()) }
    };
    let alice = client("alice").await;
    let bob = client("bob").await;
    for _ in 0..5 {
        alice.echo("a".into()).await.unwrap();
    }
    let err = alice.echo("a".into()).await.unwrap_err();
    match err {
        Error::RateLimited { retry_after } => assert!(!retry_after.is_zero()),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    // Bob, on the same address, has his own.
    assert_eq!(bob.echo("b".into()).await.unwrap(), "b");
}

#[tokio::test]
async fn an_idempotent_call_waits_and_tries_once_more() {
    // Two calls, then one a second.
    let quota = Quota::with_period(std::time::Duration::from_secs(1))
        .unwrap()
        .allow_burst(NonZeroU32::new(2).unwrap());
    let server = server(quota).await;
    let calc = CalculatorClient::new(Client::connect(&server.url()).await.unwrap());
    calc.echo("1".into()).await.unwrap();
    calc.echo("2".into()).await.unwrap();
    // `stats` is @idempotent: refused, it waits retry_after_ms and succeeds.
    calc.stats().await.unwrap();
    // `echo` is not: the budget is spent again, and it fails at once.
    let err = calc.echo("3".into()).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
}

#[tokio::test]
async fn an_idempotent_call_does_not_wait_past_its_timeout() {
    // The budget comes back in 12 s; the call has 2 s.
    let server = server(five_a_minute()).await;
    let calc = CalculatorClient::new(Client::connect(&server.url()).await.unwrap());
    for i in 0..5 {
        calc.echo(i.to_string()).await.unwrap();
    }
    // Refused at once, not retried: waiting would have ended in a timeout.
    let err = calc
        .with_timeout(std::time::Duration::from_secs(2))
        .stats()
        .await
        .unwrap_err();
    match err {
        Error::RateLimited { retry_after } => {
            assert!(
                retry_after > std::time::Duration::from_secs(2),
                "{retry_after:?}"
            )
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

/// Through a real server, many distinct callers — here each call is its own caller, keyed
/// by its params — never make the limiter hold more than its bound, and it goes on
/// limiting afterwards. (The unit test in `rate_limit.rs` passes a million keys straight
/// to the limiter.)
#[tokio::test]
async fn memory_stays_bounded_with_many_distinct_callers_through_a_server() {
    const MAX_KEYS: usize = 1_000;
    const BATCHES: usize = 100;
    const BATCH: usize = 1_000;
    let layer = RateLimitLayer::per_second(NonZeroU32::new(1).unwrap())
        .max_keys(MAX_KEYS)
        .key_by(|req| req.params().map(|p| p.get().to_string()));
    let server = Server::builder()
        .layer(layer.clone())
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let mut ws = RawWs::connect(&server.url()).await;
    let mut most = 0;
    for b in 0..BATCHES {
        let batch: Vec<String> = (0..BATCH).map(|i| echo(b * BATCH + i)).collect();
        let answers = parse(&ws.roundtrip(&format!("[{}]", batch.join(","))).await);
        let answers = answers.as_array().unwrap();
        assert_eq!(answers.len(), BATCH);
        // Every caller is new, so every call passes.
        let refused = answers.iter().filter(|a| a.get("error").is_some()).count();
        assert_eq!(refused, 0, "batch {b}");
        most = most.max(layer.tracked());
    }
    // The bound is checked every 1 024 calls.
    assert!(most <= MAX_KEYS + 1024, "{most} callers tracked at once");
    // And it still limits: the same caller twice within a second.
    let _first = ws.roundtrip(&echo(0)).await;
    rate_limited(&parse(&ws.roundtrip(&echo(0)).await));
}
