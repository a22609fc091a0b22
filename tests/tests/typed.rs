//! Generated code end to end over loopback: the calculator fixture through its typed
//! client and server, the same service written with the macro talking to the IDL one,
//! and the JSON mapping of every IDL construct.

use std::time::Duration;

use serde_json::json;
use wirecall::{Client, Context, Error, Fault, Server};
use wirecall_examples::calculator::{CalcError, Calculator, CalculatorCallbacks, CalculatorClient};
use wirecall_examples::CalcServer;

struct Confirmer;

impl CalculatorCallbacks for Confirmer {
    async fn confirm(&self, _ctx: Context, question: String) -> Result<bool, Fault> {
        Ok(question.ends_with('?'))
    }
}

async fn calculator() -> (CalculatorClient, CalcServer, wirecall::server::ServerHandle) {
    let state = CalcServer::default();
    let server = Server::bind("127.0.0.1:0", state.clone().into_router())
        .await
        .unwrap();
    let client = Client::builder()
        .router(Confirmer.into_router())
        .connect(&server.url())
        .await
        .unwrap();
    (CalculatorClient::new(client), state, server)
}

#[tokio::test]
async fn every_method_of_the_fixture() {
    let (calc, _, _server) = calculator().await;
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
    assert_eq!(calc.subtract(42, 23).await.unwrap(), 19);
    assert_eq!(calc.divide(1.0, 4.0).await.unwrap(), 0.25);
    assert_eq!(
        calc.echo("héllo \"wire\"".into()).await.unwrap(),
        "héllo \"wire\""
    );
    assert_eq!(calc.sleep(5).await.unwrap(), 5);
    assert!(calc.ask("ok?".into()).await.unwrap());
    assert!(!calc.ask("ok.".into()).await.unwrap());
}

#[tokio::test]
async fn divide_by_zero_is_the_typed_error() {
    let (calc, _, _server) = calculator().await;
    match calc.divide(1.0, 0.0).await {
        Err(Error::App(CalcError::DivideByZero)) => {}
        other => panic!("expected CalcError::DivideByZero, got {other:?}"),
    }
}

#[tokio::test]
async fn log_then_stats_shows_the_message() {
    let (calc, _, _server) = calculator().await;
    let before = calc.stats().await.unwrap();
    assert_eq!(before.last_message, None);
    calc.log("hello".into()).await.unwrap();
    // A notification has no answer; wait until the server has handled it.
    let mut stats = calc.stats().await.unwrap();
    for _ in 0..100 {
        if stats.last_message.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = calc.stats().await.unwrap();
    }
    assert_eq!(stats.last_message.as_deref(), Some("hello"));
    assert!(stats.calls >= before.calls + 2, "{stats:?}");
}

#[tokio::test]
async fn per_call_timeout_cancels_the_server_handler() {
    let (calc, state, _server) = calculator().await;
    let err = calc
        .with_timeout(Duration::from_millis(100))
        .sleep(10_000)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    for _ in 0..200 {
        if state.sleeps().cancelled == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(state.sleeps().started, 1);
    assert_eq!(state.sleeps().cancelled, 1, "the handler was not cancelled");
    assert_eq!(state.sleeps().finished, 0);
    // The client keeps its default timeout for other calls.
    assert_eq!(calc.sleep(1).await.unwrap(), 1);
}

#[tokio::test]
async fn ask_without_callbacks_fails_cleanly() {
    let server = Server::bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let calc = CalculatorClient::new(Client::connect(&server.url()).await.unwrap());
    // The handler's `ctx.peer()` call fails (the client serves no `confirm`) and its `?`
    // answers the caller with a code and a reason that say so.
    let err = calc.ask("?".into()).await.unwrap_err();
    let rpc = err.rpc().expect("an error answer");
    assert_eq!(
        rpc.code,
        wirecall::protocol::code::PEER_CALL_FAILED,
        "{err}"
    );
    assert_eq!(rpc.message, "Call to the peer failed");
    let data: serde_json::Value = rpc.data().unwrap();
    assert_eq!(data["reason"], "method_not_found", "{data}");
    assert_eq!(data["error"]["code"], -32601, "{data}");
}

/// The calculator written with the macro: the same wire contract as the IDL.
mod macro_calc {
    #![allow(unreachable_pub)]
    use serde::{Deserialize, Serialize};

    /// Running totals.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Stats {
        /// Calls so far.
        pub calls: u64,
        /// The last logged message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_message: Option<String>,
    }

    /// Raised by `divide`.
    #[wirecall::error]
    pub enum CalcError {
        /// The divisor was zero.
        #[wirecall(code = 1001)]
        DivideByZero,
    }

    /// The calculator.
    #[wirecall::service]
    pub trait Calculator {
        /// Sum.
        async fn add(a: i64, b: i64) -> i64;
        /// Difference.
        async fn subtract(minuend: i64, subtrahend: i64) -> i64;
        /// Quotient.
        async fn divide(a: f64, b: f64) -> Result<f64, CalcError>;
        /// Echo.
        async fn echo(text: String) -> String;
        /// Sleep.
        async fn sleep(ms: u64) -> u64;
        /// Ask the client.
        async fn ask(question: String) -> bool;
        /// Totals.
        #[wirecall(idempotent)]
        async fn stats() -> Stats;
        /// Log.
        #[wirecall(notify)]
        async fn log(message: String);
        /// Confirm (client side).
        #[wirecall(client)]
        async fn confirm(question: String) -> bool;
    }
}

struct MacroServer;

impl macro_calc::Calculator for MacroServer {
    async fn add(&self, _ctx: Context, a: i64, b: i64) -> Result<i64, Fault> {
        Ok(a + b)
    }
    async fn subtract(&self, _ctx: Context, minuend: i64, subtrahend: i64) -> Result<i64, Fault> {
        Ok(minuend - subtrahend)
    }
    async fn divide(
        &self,
        _ctx: Context,
        a: f64,
        b: f64,
    ) -> Result<f64, Fault<macro_calc::CalcError>> {
        if b == 0.0 {
            return Err(macro_calc::CalcError::DivideByZero.into());
        }
        Ok(a / b)
    }
    async fn echo(&self, _ctx: Context, text: String) -> Result<String, Fault> {
        Ok(text)
    }
    async fn sleep(&self, _ctx: Context, ms: u64) -> Result<u64, Fault> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }
    async fn ask(&self, ctx: Context, question: String) -> Result<bool, Fault> {
        Ok(
            macro_calc::CalculatorCallbacksClient::new(ctx.peer().clone())
                .confirm(question)
                .await?,
        )
    }
    async fn stats(&self, _ctx: Context) -> Result<macro_calc::Stats, Fault> {
        Ok(macro_calc::Stats {
            calls: 7,
            last_message: Some("macro".into()),
        })
    }
    async fn log(&self, _ctx: Context, _message: String) {}
}

struct MacroConfirmer;

impl macro_calc::CalculatorCallbacks for MacroConfirmer {
    async fn confirm(&self, _ctx: Context, question: String) -> Result<bool, Fault> {
        Ok(question.ends_with('?'))
    }
}

#[tokio::test]
async fn idl_client_talks_to_macro_server() {
    let server = Server::bind(
        "127.0.0.1:0",
        macro_calc::Calculator::into_router(MacroServer),
    )
    .await
    .unwrap();
    let client = Client::builder()
        .router(Confirmer.into_router())
        .connect(&server.url())
        .await
        .unwrap();
    let calc = CalculatorClient::new(client);
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
    assert_eq!(calc.subtract(2, 3).await.unwrap(), -1);
    assert!(matches!(
        calc.divide(1.0, 0.0).await,
        Err(Error::App(CalcError::DivideByZero))
    ));
    assert_eq!(calc.echo("x".into()).await.unwrap(), "x");
    assert!(calc.ask("sure?".into()).await.unwrap());
    let stats = calc.stats().await.unwrap();
    assert_eq!(
        (stats.calls, stats.last_message.as_deref()),
        (7, Some("macro"))
    );
    calc.log("ignored".into()).await.unwrap();
}

#[tokio::test]
async fn macro_client_talks_to_idl_server() {
    let server = Server::bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let client = Client::builder()
        .router(macro_calc::CalculatorCallbacks::into_router(MacroConfirmer))
        .connect(&server.url())
        .await
        .unwrap();
    let calc = macro_calc::CalculatorClient::new(client);
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
    assert!(matches!(
        calc.divide(1.0, 0.0).await,
        Err(Error::App(macro_calc::CalcError::DivideByZero))
    ));
    assert!(calc.ask("sure?".into()).await.unwrap());
    calc.log("from the macro client".into()).await.unwrap();
    let mut stats = calc.stats().await.unwrap();
    for _ in 0..100 {
        if stats.last_message.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = calc.stats().await.unwrap();
    }
    assert_eq!(stats.last_message.as_deref(), Some("from the macro client"));
}

#[test]
fn json_mapping_of_every_construct() {
    #![allow(deprecated)]
    use wirecall_tests::everything::{Bag, Mode, Oops, Shape};
    let circle = Shape::Circle { radius: 1.5 };
    assert_eq!(
        serde_json::to_value(&circle).unwrap(),
        json!({"kind": "Circle", "radius": 1.5})
    );
    assert_eq!(
        serde_json::to_value(Shape::Empty {}).unwrap(),
        json!({"kind": "Empty"})
    );
    assert_eq!(
        serde_json::to_value(Shape::Point).unwrap(),
        json!({"kind": "Point"})
    );
    assert_eq!(serde_json::to_value(Mode::Fast).unwrap(), json!("Fast"));
    assert_eq!(
        serde_json::to_value(Mode::ExactMode).unwrap(),
        json!("exact_mode")
    );
    let bag = Bag {
        items: [("a".to_string(), vec![Some(circle.clone()), None])]
            .into_iter()
            .collect(),
        per_mode: [(Mode::ExactMode, 2)].into_iter().collect(),
        raw: json!({"any": [1, "thing"]}),
        data: wirecall::Bytes(b"hi!".to_vec()),
        maybe_data: None,
        last_value: 2.5,
        r#type: "t".into(),
        counts: vec![1, 2],
        small: -1,
        medium: -2,
        large: -3,
        unsigned: 4,
        ratio: 0.5,
        flag: true,
    };
    let value = serde_json::to_value(&bag).unwrap();
    assert_eq!(
        value,
        json!({
            "items": {"a": [{"kind": "Circle", "radius": 1.5}, null]},
            "per_mode": {"exact_mode": 2},
            "raw": {"any": [1, "thing"]},
            "data": "aGkh",
            "lastValue": 2.5,
            "type": "t",
            "counts": [1, 2],
            "small": -1, "medium": -2, "large": -3, "unsigned": 4, "ratio": 0.5, "flag": true
        })
    );
    assert_eq!(serde_json::from_value::<Bag>(value).unwrap(), bag);
    // An absent optional and an explicit null both read as None.
    let mut with_null = serde_json::to_value(&bag).unwrap();
    with_null["maybe_data"] = json!(null);
    assert_eq!(
        serde_json::from_value::<Bag>(with_null).unwrap().maybe_data,
        None
    );
    let mut bad = serde_json::to_value(&bag).unwrap();
    bad["data"] = json!("not base64!");
    assert!(serde_json::from_value::<Bag>(bad)
        .unwrap_err()
        .to_string()
        .contains("invalid base64"));

    // Typed errors travel as code, name and data, and come back.
    use wirecall::ApplicationError;
    let worse = Oops::Worse {
        why: "because".into(),
        code_hint: None,
    };
    let rpc = worse.to_rpc_error();
    assert_eq!((rpc.code, &*rpc.message), (-2, "Worse"));
    assert_eq!(
        rpc.data::<serde_json::Value>(),
        Some(json!({"why": "because"}))
    );
    assert_eq!(Oops::from_rpc_error(&rpc), Some(worse));
    assert_eq!(
        Oops::from_rpc_error(&Oops::Bad.to_rpc_error()),
        Some(Oops::Bad)
    );
    assert_eq!(
        Oops::from_rpc_error(&wirecall::RpcError::new(99, "Other")),
        None
    );
    assert_eq!(Oops::Bad.to_string(), "Bad (code 1)");
}

#[tokio::test]
async fn rpc_discover_answers_the_openrpc_document() {
    let mut router = CalcServer::default().into_router();
    router
        .discover(wirecall_examples::calculator::OPENRPC_DOCUMENT)
        .unwrap();
    let server = Server::bind("127.0.0.1:0", router).await.unwrap();
    let client = Client::connect(&server.url()).await.unwrap();
    let doc: serde_json::Value = client.call("rpc.discover", ()).await.unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(wirecall_examples::calculator::OPENRPC_DOCUMENT).unwrap();
    assert_eq!(doc, expected);
    assert_eq!(doc["methods"][0]["name"], "Calculator.add");
    assert!(wirecall::raw::Router::new().discover("not json").is_err());
}
