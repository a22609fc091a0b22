//! The calling API is written once: a type of the user's that implements only
//! `Caller`'s three primitives gets every calling method, and a generated client stub
//! works over it — param encoding, options, decoding and the recognition of typed errors
//! and cancellation all come from the trait.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wirecall::{
    raw::RawResult, CallOptions, Caller, Client, Error, RpcError, Server, Subscription,
};
use wirecall_examples::calculator::{CalcError, Calculator, CalculatorClient};
use wirecall_examples::CalcServer;

/// What reached a primitive: which one, the method, the encoded params, the options.
#[derive(Clone, Debug, PartialEq)]
struct Sent {
    primitive: &'static str,
    method: String,
    params: Option<Value>,
    options: Option<CallOptions>,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Sent>>>);

impl Log {
    fn push(
        &self,
        primitive: &'static str,
        method: &str,
        params: Option<&str>,
        options: Option<CallOptions>,
    ) {
        let params = params.map(|p| serde_json::from_str(p).expect("params are JSON"));
        self.0.lock().unwrap().push(Sent {
            primitive,
            method: method.into(),
            params,
            options,
        });
    }

    fn take(&self) -> Vec<Sent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A test double: answers from a script, without any connection.
#[derive(Clone, Default)]
struct Mock {
    log: Log,
}

impl Caller for Mock {
    async fn send_request(
        &self,
        method: &str,
        params: Option<&str>,
        options: CallOptions,
    ) -> Result<RawResult, Error> {
        self.log.push("request", method, params, Some(options));
        match method {
            "Calculator.add" => Ok(RawResult::from_json("3")),
            "Calculator.stats" => Ok(RawResult::from_json(r#"{"calls":7}"#)),
            // Not a string: the stub's decoding fails.
            "Calculator.echo" => Ok(RawResult::from_json("42")),
            "Calculator.divide" => Err(Error::Rpc(RpcError::new(1001, "DivideByZero"))),
            "Calculator.sleep" => Err(Error::Rpc(RpcError::new(-32800, "Request cancelled"))),
            _ => Err(Error::Rpc(RpcError::method_not_found())),
        }
    }

    async fn send_notification(&self, method: &str, params: Option<&str>) -> Result<(), Error> {
        self.log.push("notification", method, params, None);
        Ok(())
    }

    async fn open_subscription<T, E>(
        &self,
        method: &str,
        params: Option<String>,
        options: CallOptions,
    ) -> Result<Subscription<T, E>, Error> {
        self.log
            .push("subscription", method, params.as_deref(), Some(options));
        Err(Error::Rpc(RpcError::new(1001, "DivideByZero")))
    }
}

fn sent(
    primitive: &'static str,
    method: &str,
    params: Option<Value>,
    options: Option<CallOptions>,
) -> Sent {
    Sent {
        primitive,
        method: method.into(),
        params,
        options,
    }
}

#[tokio::test]
async fn a_mock_with_only_the_primitives_serves_a_generated_stub() {
    let mock = Mock::default();
    let calc = CalculatorClient::new(mock.clone());
    let plain = Some(CallOptions::default());

    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
    assert_eq!(calc.stats().await.unwrap().calls, 7);
    let quick = Duration::from_millis(250);
    assert_eq!(calc.with_timeout(quick).add(4, 5).await.unwrap(), 3);
    assert_eq!(
        mock.log.take(),
        [
            sent(
                "request",
                "Calculator.add",
                Some(json!({"a": 1, "b": 2})),
                plain
            ),
            // `@idempotent` reaches the primitive (a Client sends it again after a drop).
            sent(
                "request",
                "Calculator.stats",
                Some(json!({})),
                Some(CallOptions::new(None, true))
            ),
            sent(
                "request",
                "Calculator.add",
                Some(json!({"a": 4, "b": 5})),
                Some(CallOptions::new(Some(quick), false))
            ),
        ]
    );

    // Error answers: the method's typed error, and a cancellation, are recognized.
    assert!(matches!(
        calc.divide(1.0, 0.0).await,
        Err(Error::App(CalcError::DivideByZero))
    ));
    assert!(matches!(calc.sleep(5).await, Err(Error::Cancelled)));
    assert!(matches!(calc.echo("x".into()).await, Err(Error::Decode(_))));
    // A stream's setup error is recognized the same way.
    let ticks = calc.ticks(3, 1).await;
    assert!(
        matches!(ticks, Err(Error::Rpc(ref e)) if e.code == 1001),
        "{ticks:?}"
    );
    calc.log("hello".into()).await.unwrap();
    assert_eq!(
        mock.log.take(),
        [
            sent(
                "request",
                "Calculator.divide",
                Some(json!({"a": 1.0, "b": 0.0})),
                plain
            ),
            sent("request", "Calculator.sleep", Some(json!({"ms": 5})), plain),
            sent(
                "request",
                "Calculator.echo",
                Some(json!({"text": "x"})),
                plain
            ),
            sent(
                "subscription",
                "Calculator.ticks",
                Some(json!({"count": 3, "every_ms": 1})),
                plain
            ),
            sent(
                "notification",
                "Calculator.log",
                Some(json!({"message": "hello"})),
                None
            ),
        ]
    );

    // The untyped methods come with the trait too.
    let sum: i64 = mock.call("Calculator.add", json!([1, 2])).await.unwrap();
    assert_eq!(sum, 3);
    let with_timeout: i64 = mock
        .call_with_timeout("Calculator.add", (), quick)
        .await
        .unwrap();
    assert_eq!(with_timeout, 3);
    mock.notify("Calculator.log", json!({"message": "hi"}))
        .await
        .unwrap();
    let typed = mock
        .subscribe_with::<u64, CalcError>(
            "Calculator.ticks",
            &json!([1, 1]),
            CallOptions::default(),
        )
        .await;
    assert!(
        matches!(typed, Err(Error::App(CalcError::DivideByZero))),
        "{typed:?}"
    );
    assert!(matches!(
        mock.call::<i64>("nope", json!({})).await,
        Err(Error::Rpc(e)) if e.code == -32601
    ));
    assert_eq!(
        mock.log.take(),
        [
            sent("request", "Calculator.add", Some(json!([1, 2])), plain),
            sent(
                "request",
                "Calculator.add",
                None,
                Some(CallOptions::new(Some(quick), false))
            ),
            sent(
                "notification",
                "Calculator.log",
                Some(json!({"message": "hi"})),
                None
            ),
            sent(
                "subscription",
                "Calculator.ticks",
                Some(json!([1, 1])),
                plain
            ),
            sent("request", "nope", Some(json!({})), plain),
        ]
    );

    // Params that are not an object or array never reach a primitive.
    assert!(matches!(
        mock.call::<i64>("Calculator.add", 5).await,
        Err(Error::Encode(_))
    ));
    assert!(matches!(
        mock.notify("Calculator.log", "x").await,
        Err(Error::Encode(_))
    ));
    assert!(matches!(
        mock.subscribe::<u64>("Calculator.ticks", true).await,
        Err(Error::Encode(_))
    ));
    assert_eq!(mock.log.take(), []);
}

/// A wrapper of the user's (here: one that records) over a real client: it supplies the
/// primitives by forwarding them, and a generated stub calls, streams and notifies through
/// it over a real connection.
#[derive(Clone)]
struct Recording<C> {
    inner: C,
    log: Log,
}

impl<C: Caller> Caller for Recording<C> {
    async fn send_request(
        &self,
        method: &str,
        params: Option<&str>,
        options: CallOptions,
    ) -> Result<RawResult, Error> {
        self.log.push("request", method, params, Some(options));
        self.inner.send_request(method, params, options).await
    }

    async fn send_notification(&self, method: &str, params: Option<&str>) -> Result<(), Error> {
        self.log.push("notification", method, params, None);
        self.inner.send_notification(method, params).await
    }

    async fn open_subscription<T, E>(
        &self,
        method: &str,
        params: Option<String>,
        options: CallOptions,
    ) -> Result<Subscription<T, E>, Error> {
        self.log
            .push("subscription", method, params.as_deref(), Some(options));
        self.inner.open_subscription(method, params, options).await
    }
}

#[tokio::test]
async fn a_wrapper_over_a_real_client_serves_a_generated_stub() {
    let state = CalcServer::default();
    let server = Server::bind("127.0.0.1:0", state.clone().into_router())
        .await
        .unwrap();
    let log = Log::default();
    let caller = Recording {
        inner: Client::connect(&server.url()).await.unwrap(),
        log: log.clone(),
    };
    let calc = CalculatorClient::new(caller);
    assert_eq!(calc.add(40, 2).await.unwrap(), 42);
    assert!(matches!(
        calc.divide(1.0, 0.0).await,
        Err(Error::App(CalcError::DivideByZero))
    ));
    let mut ticks = calc.ticks(3, 1).await.unwrap();
    let mut items = Vec::new();
    while let Some(item) = ticks.next().await {
        items.push(item.unwrap());
    }
    assert_eq!(items, [0, 1, 2]);
    calc.log("noted".into()).await.unwrap();
    // A notification has no answer: wait (bounded) until the server has handled it.
    let mut polls = 0;
    while calc.stats().await.unwrap().last_message.as_deref() != Some("noted") {
        polls += 1;
        assert!(polls < 200, "the notification never arrived");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let methods: Vec<(&str, String)> = log
        .take()
        .into_iter()
        .filter(|s| s.method != "Calculator.stats")
        .map(|s| (s.primitive, s.method))
        .collect();
    assert_eq!(
        methods,
        [
            ("request", "Calculator.add".to_string()),
            ("request", "Calculator.divide".into()),
            ("subscription", "Calculator.ticks".into()),
            ("notification", "Calculator.log".into()),
        ]
    );
    server.shutdown().await;
}

/// A test double that serves streams too: its `open_subscription` makes the subscription
/// from a stream of its own with `Subscription::from_items` (the public way for a `Caller`
/// that is not a connection; before it there was none, and this did not compile).
#[derive(Clone)]
struct Streamer;

impl Caller for Streamer {
    async fn send_request(
        &self,
        _method: &str,
        _params: Option<&str>,
        _options: CallOptions,
    ) -> Result<RawResult, Error> {
        Err(Error::Rpc(RpcError::method_not_found()))
    }

    async fn send_notification(&self, _method: &str, _params: Option<&str>) -> Result<(), Error> {
        Ok(())
    }

    async fn open_subscription<T, E>(
        &self,
        method: &str,
        params: Option<String>,
        _options: CallOptions,
    ) -> Result<Subscription<T, E>, Error> {
        assert_eq!(method, "Calculator.ticks");
        let params: Value = serde_json::from_str(params.as_deref().unwrap()).unwrap();
        let count = params["count"].as_u64().unwrap();
        // `count` items, then one that does not decode as u64, then a failure.
        let items = (0..count)
            .map(|n| Ok(n.to_string()))
            .chain([Ok("\"x\"".to_string()), Err(RpcError::new(-32603, "gone"))]);
        Ok(Subscription::from_items(
            "\"mock-1\"",
            futures_util::stream::iter(items),
        ))
    }
}

#[tokio::test]
async fn a_mock_makes_subscriptions_for_a_generated_stub() {
    let calc = CalculatorClient::new(Streamer);
    let mut ticks = calc.ticks(3, 1).await.unwrap();
    assert_eq!(ticks.id(), "\"mock-1\"");
    for n in 0..3 {
        assert_eq!(ticks.next().await.unwrap().unwrap(), n);
    }
    assert!(matches!(ticks.next().await, Some(Err(Error::Decode(_)))));
    assert!(matches!(ticks.next().await, Some(Err(Error::Rpc(e))) if e.code == -32603));
    // The failure ends it, exactly once.
    assert!(ticks.next().await.is_none());
    assert!(ticks.next().await.is_none());
    assert!(ticks.position().is_none());
}
