//! Policy layers (`ServerBuilder::layer`, `ClientBuilder::layer`): every call, notification,
//! stream and topic subscription, unsubscribe and WAMP publication reaches the layer exactly
//! once, from every door (WebSocket, HTTP POST, server-sent events, WAMP), alone or inside a batch; a
//! refusal (-32003, WAMP `wamp.error.not_authorized`) refuses only its own entry, and a
//! refused subscription sends no item.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wirecall::policy::{from_fn, CallKind, Door, RpcRequest};
use wirecall::raw::Router;
use wirecall::server::ServerHandle;
use wirecall::{Client, Context, Fault, RpcError, Server};
use wirecall_examples::calculator::{Calculator, CalculatorCallbacks, CalculatorClient};
use wirecall_examples::chat::Chat;
use wirecall_examples::chat::ChatServer;
use wirecall_examples::CalcServer;
use wirecall_tests::http::{post, Events, HttpConn};
use wirecall_tests::RawWs;

/// What the layer saw: `door kind method`, one line per call.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn record(&self, req: &RpcRequest) {
        let line = format!("{:?} {:?} {}", req.door(), req.kind(), req.method());
        self.0.lock().unwrap().push(line);
    }

    /// What was seen since the last take, sorted.
    fn take(&self) -> Vec<String> {
        let mut seen = std::mem::take(&mut *self.0.lock().unwrap());
        seen.sort();
        seen
    }

    /// Wait (bounded) until `n` calls were seen, then take them.
    async fn take_when(&self, n: usize) -> Vec<String> {
        for _ in 0..500 {
            if self.0.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Anything more that would arrive late.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.take()
    }
}

fn sorted(lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// A server with the calculator and the chat behind a layer that records every call and
/// refuses those whose params mention `666`.
async fn server() -> (ServerHandle, Seen) {
    let seen = Seen::default();
    let mut router = Router::new();
    router.merge(CalcServer::default().into_router()).unwrap();
    router.merge(ChatServer::default().into_router()).unwrap();
    let record = seen.clone();
    let server = Server::builder()
        .layer(from_fn(move |req: RpcRequest, next| {
            record.record(&req);
            let refuse = req.params().is_some_and(|p| p.get().contains("666"));
            async move {
                if refuse {
                    return Err(RpcError::forbidden(format!("`{}`", req.method())));
                }
                next.run(req).await
            }
        }))
        .bind("127.0.0.1:0", router)
        .await
        .unwrap();
    (server, seen)
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The answer with `id` in a batch array.
fn by_id(batch: &Value, id: u64) -> &Value {
    batch
        .as_array()
        .expect("a batch array")
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no answer {id} in {batch}"))
}

fn forbidden(answer: &Value) {
    assert_eq!(answer["error"]["code"], -32003, "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains('`'),
        "the message says what was refused: {answer}"
    );
}

/// Read frames until one satisfies `pred`; every frame read.
async fn until(ws: &mut RawWs, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let v = parse(&ws.recv().await);
        let done = pred(&v);
        got.push(v);
        if done {
            return got;
        }
    }
}

fn is_end(v: &Value) -> bool {
    v["params"]["error"].is_null() && v["params"].get("error").is_some()
}

/// Send a request and read until its answer (skipping stream items and notes).
async fn ask(ws: &mut RawWs, text: &str) -> Value {
    let id = parse(text)["id"].clone();
    ws.send(text).await;
    until(ws, |v| v["id"] == id && v.get("method").is_none())
        .await
        .pop()
        .unwrap()
}

#[tokio::test]
async fn websocket_single_calls_each_reach_the_layer_once() {
    let (server, seen) = server().await;
    let mut ws = RawWs::connect(&server.url()).await;

    let ok = ask(
        &mut ws,
        r#"{"jsonrpc":"2.0","method":"Calculator.echo","params":{"text":"hi"},"id":1}"#,
    )
    .await;
    assert_eq!(ok["result"], "hi");
    forbidden(
        &ask(
            &mut ws,
            r#"{"jsonrpc":"2.0","method":"Calculator.echo","params":{"text":"666"},"id":2}"#,
        )
        .await,
    );
    ws.send(r#"{"jsonrpc":"2.0","method":"Calculator.log","params":{"message":"note"}}"#)
        .await;
    assert_eq!(
        seen.take_when(3).await,
        sorted(&[
            "WebSocket Call Calculator.echo",
            "WebSocket Call Calculator.echo",
            "WebSocket Notification Calculator.log"
        ])
    );

    // A stream: its answer, both items, the end.
    ws.send(
        r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":2,"every_ms":1},"id":3}"#,
    )
    .await;
    let frames = until(&mut ws, is_end).await;
    assert_eq!(frames.len(), 4, "{frames:?}");
    assert!(frames[0]["result"].is_u64(), "{frames:?}");
    // Refused: the error, and no item (the probe below is answered next).
    forbidden(&parse(&ws.roundtrip(r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":666,"every_ms":1},"id":4}"#).await));
    ws.assert_no_answer_pending().await;
    // A topic, then its unsubscribe; a refused topic.
    let sub = ask(
        &mut ws,
        r#"{"jsonrpc":"2.0","method":"Chat.room","params":{"room":"lobby"},"id":5}"#,
    )
    .await;
    let sub_id = sub["result"].as_u64().expect("a subscription id");
    forbidden(
        &ask(
            &mut ws,
            r#"{"jsonrpc":"2.0","method":"Chat.room","params":{"room":"666"},"id":6}"#,
        )
        .await,
    );
    let unsub = format!(
        r#"{{"jsonrpc":"2.0","method":"Chat.room.unsubscribe","params":[{sub_id}],"id":7}}"#
    );
    assert_eq!(ask(&mut ws, &unsub).await["result"], true);
    assert_eq!(
        seen.take_when(6).await,
        sorted(&[
            "WebSocket Call $probe",
            "WebSocket Stream Calculator.ticks",
            "WebSocket Stream Calculator.ticks",
            "WebSocket Topic Chat.room",
            "WebSocket Topic Chat.room",
            "WebSocket Unsubscribe Chat.room.unsubscribe",
        ])
    );
}

#[tokio::test]
async fn websocket_batch_entries_each_reach_the_layer_once_and_a_refusal_refuses_only_its_entry() {
    let (server, seen) = server().await;
    let mut ws = RawWs::connect(&server.url()).await;
    ws.send(
        r#"[
        {"jsonrpc":"2.0","method":"Calculator.echo","params":{"text":"hi"},"id":10},
        {"jsonrpc":"2.0","method":"Calculator.echo","params":{"text":"666"},"id":11},
        {"jsonrpc":"2.0","method":"Calculator.log","params":{"message":"note"}},
        {"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":2,"every_ms":1},"id":12},
        {"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":666,"every_ms":1},"id":13},
        {"jsonrpc":"2.0","method":"Chat.room","params":{"room":"lobby"},"id":14},
        {"jsonrpc":"2.0","method":"Chat.room","params":{"room":"666"},"id":15},
        {"jsonrpc":"2.0","method":"Nope.x","id":16}
    ]"#,
    )
    .await;
    let frames = until(&mut ws, Value::is_array).await;
    let batch = frames.last().unwrap();
    assert_eq!(batch.as_array().unwrap().len(), 7, "{batch}");
    assert_eq!(by_id(batch, 10)["result"], "hi");
    forbidden(by_id(batch, 11));
    let ticks = by_id(batch, 12)["result"]
        .as_u64()
        .expect("a subscription id");
    forbidden(by_id(batch, 13));
    let room = by_id(batch, 14)["result"]
        .as_u64()
        .expect("a subscription id");
    forbidden(by_id(batch, 15));
    assert_eq!(by_id(batch, 16)["error"]["code"], -32601);
    assert_eq!(
        seen.take_when(8).await,
        sorted(&[
            "WebSocket Call Calculator.echo",
            "WebSocket Call Calculator.echo",
            "WebSocket Call Nope.x",
            "WebSocket Notification Calculator.log",
            "WebSocket Stream Calculator.ticks",
            "WebSocket Stream Calculator.ticks",
            "WebSocket Topic Chat.room",
            "WebSocket Topic Chat.room",
        ])
    );
    // The allowed stream delivers its items and its end; the refused one nothing.
    let mut all = frames;
    if !all.iter().any(is_end) {
        all.extend(until(&mut ws, is_end).await);
    }
    let items: Vec<&Value> = all
        .iter()
        .filter(|f| f["method"] == "Calculator.ticks")
        .collect();
    assert_eq!(items.len(), 3, "two items and the end: {all:?}");
    assert!(items.iter().all(|f| f["params"]["subscription"] == ticks));

    // An unsubscribe inside a batch passes the layer too.
    ws.send(&format!(
        r#"[{{"jsonrpc":"2.0","method":"Chat.room.unsubscribe","params":[{room}],"id":20}},
            {{"jsonrpc":"2.0","method":"Calculator.echo","params":{{"text":"666"}},"id":21}}]"#
    ))
    .await;
    let batch = until(&mut ws, Value::is_array).await.pop().unwrap();
    assert_eq!(by_id(&batch, 20)["result"], true);
    forbidden(by_id(&batch, 21));
    assert_eq!(
        seen.take_when(2).await,
        sorted(&[
            "WebSocket Call Calculator.echo",
            "WebSocket Unsubscribe Chat.room.unsubscribe"
        ])
    );
}

#[tokio::test]
async fn http_post_single_and_batch_entries_each_reach_the_layer_once() {
    let (server, seen) = server().await;
    let addr = server.local_addr();
    let one = |body: &'static str| async move { post(addr, body).await };

    let a =
        one(r#"{"jsonrpc":"2.0","method":"Calculator.echo","params":{"text":"hi"},"id":1}"#).await;
    assert_eq!(
        (a.status, parse(&a.body)["result"].clone()),
        (200, json!("hi"))
    );
    let a =
        one(r#"{"jsonrpc":"2.0","method":"Calculator.echo","params":{"text":"666"},"id":2}"#).await;
    forbidden(&parse(&a.body));
    let a = one(r#"{"jsonrpc":"2.0","method":"Calculator.log","params":{"message":"n"}}"#).await;
    assert_eq!(a.status, 204);
    // A stream over a plain POST: the layer sees it, then the door's -32600 hint.
    let a = one(
        r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":2,"every_ms":1},"id":3}"#,
    )
    .await;
    assert_eq!(parse(&a.body)["error"]["code"], -32600, "{}", a.body);
    let a = one(r#"{"jsonrpc":"2.0","method":"Chat.room.unsubscribe","params":[1],"id":4}"#).await;
    assert_eq!(parse(&a.body)["result"], false);
    assert_eq!(
        seen.take_when(5).await,
        sorted(&[
            "Http Call Calculator.echo",
            "Http Call Calculator.echo",
            "Http Notification Calculator.log",
            "Http Stream Calculator.ticks",
            "Http Unsubscribe Chat.room.unsubscribe",
        ])
    );

    let a = one(
        r#"[{"jsonrpc":"2.0","method":"Calculator.echo","params":{"text":"hi"},"id":1},
            {"jsonrpc":"2.0","method":"Calculator.echo","params":{"text":"666"},"id":2},
            {"jsonrpc":"2.0","method":"Calculator.log","params":{"message":"n"}},
            {"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":2,"every_ms":1},"id":3},
            {"jsonrpc":"2.0","method":"Chat.room","params":{"room":"666"},"id":4},
            {"jsonrpc":"2.0","method":"Chat.room.unsubscribe","params":[1],"id":5}]"#,
    )
    .await;
    let batch = parse(&a.body);
    assert_eq!(batch.as_array().unwrap().len(), 5, "{batch}");
    assert_eq!(by_id(&batch, 1)["result"], "hi");
    forbidden(by_id(&batch, 2));
    assert_eq!(by_id(&batch, 3)["error"]["code"], -32600);
    forbidden(by_id(&batch, 4));
    assert_eq!(by_id(&batch, 5)["result"], false);
    assert_eq!(
        seen.take_when(6).await,
        sorted(&[
            "Http Call Calculator.echo",
            "Http Call Calculator.echo",
            "Http Notification Calculator.log",
            "Http Stream Calculator.ticks",
            "Http Topic Chat.room",
            "Http Unsubscribe Chat.room.unsubscribe",
        ])
    );
}

/// POST `body` asking for server-sent events: the data of every event until the end.
async fn events(server: &ServerHandle, body: &str) -> Vec<Value> {
    let mut conn = HttpConn::connect(server.local_addr()).await;
    let resp = conn
        .start(
            "POST",
            &[
                ("content-type", "application/json"),
                ("accept", "text/event-stream"),
            ],
            body,
        )
        .await;
    let mut events = Events::new(resp);
    let mut got = Vec::new();
    while let Some(data) = events.next().await {
        let v = parse(&data);
        let end = is_end(&v) || v.get("error").is_some();
        got.push(v);
        if end || got.len() > 10 {
            break;
        }
    }
    got
}

#[tokio::test]
async fn server_sent_event_subscriptions_each_reach_the_layer_once() {
    let (server, seen) = server().await;
    let got = events(
        &server,
        r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":2,"every_ms":1},"id":1}"#,
    )
    .await;
    assert_eq!(got.len(), 4, "answer, two items, end: {got:?}");
    assert!(got[0]["result"].is_u64());
    let got = events(&server, r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":666,"every_ms":1},"id":2}"#).await;
    assert_eq!(got.len(), 1, "{got:?}");
    forbidden(&got[0]);
    let got = events(
        &server,
        r#"{"jsonrpc":"2.0","method":"Chat.room","params":{"room":"666"},"id":3}"#,
    )
    .await;
    forbidden(&got[0]);
    assert_eq!(
        seen.take_when(3).await,
        sorted(&[
            "Events Stream Calculator.ticks",
            "Events Stream Calculator.ticks",
            "Events Topic Chat.room",
        ])
    );
}

#[tokio::test]
async fn wamp_calls_subscriptions_unsubscribes_and_publications_each_reach_the_layer_once() {
    let (server, seen) = server().await;
    let (mut ws, _) =
        RawWs::connect_with(&server.url(), &[("sec-websocket-protocol", "wamp.2.json")])
            .await
            .unwrap();
    ws.send(r#"[1,"realm1",{"roles":{"caller":{},"subscriber":{}}}]"#)
        .await;
    assert_eq!(parse(&ws.recv().await)[0], 2, "WELCOME");
    let not_authorized = |v: &Value, request_type: u64, request: u64| {
        assert_eq!(
            (v[0].clone(), v[1].clone(), v[2].clone(), v[4].clone()),
            (
                json!(8),
                json!(request_type),
                json!(request),
                json!("wamp.error.not_authorized")
            ),
            "{v}"
        );
    };

    assert_eq!(
        parse(&ws.roundtrip(r#"[48,1,{},"Calculator.echo",["hi"]]"#).await),
        json!([50, 1, {}, ["hi"]])
    );
    not_authorized(
        &parse(&ws.roundtrip(r#"[48,2,{},"Calculator.echo",["666"]]"#).await),
        48,
        2,
    );
    ws.send(r#"[48,3,{"receive_progress":true},"Calculator.ticks",[2,1]]"#)
        .await;
    let mut results = Vec::new();
    loop {
        let v = parse(&ws.recv().await);
        assert_eq!(v[0], 50, "{v}");
        let last = v[2].get("progress").is_none();
        results.push(v);
        if last {
            break;
        }
    }
    assert_eq!(results.len(), 3, "{results:?}");
    not_authorized(
        &parse(
            &ws.roundtrip(r#"[48,4,{"receive_progress":true},"Calculator.ticks",[666,1]]"#)
                .await,
        ),
        48,
        4,
    );
    let subscribed = parse(&ws.roundtrip(r#"[32,5,{},"Chat.room.lobby"]"#).await);
    assert_eq!(subscribed[0], 33, "{subscribed}");
    not_authorized(
        &parse(&ws.roundtrip(r#"[32,6,{},"Chat.room.666"]"#).await),
        32,
        6,
    );
    let unsubscribe = format!("[34,7,{}]", subscribed[2]);
    assert_eq!(parse(&ws.roundtrip(&unsubscribe).await), json!([35, 7]));
    // A publication passes the layer too (a rate limit counts it); refused, nobody gets it.
    let publish = |request: u64, text: &str| {
        format!(
            r#"[16,{request},{{"acknowledge":true}},"Chat.room.lobby",[{{"room":"lobby","from":"a","text":"{text}"}}]]"#
        )
    };
    let published = parse(&ws.roundtrip(&publish(8, "hi")).await);
    assert_eq!(
        (&published[0], &published[1]),
        (&json!(17), &json!(8)),
        "{published}"
    );
    not_authorized(&parse(&ws.roundtrip(&publish(9, "666")).await), 16, 9);
    assert_eq!(
        seen.take_when(9).await,
        sorted(&[
            "Wamp Publish Chat.room",
            "Wamp Publish Chat.room",
            "Wamp Call Calculator.echo",
            "Wamp Call Calculator.echo",
            "Wamp Stream Calculator.ticks",
            "Wamp Stream Calculator.ticks",
            "Wamp Topic Chat.room",
            "Wamp Topic Chat.room",
            "Wamp Unsubscribe Chat.room.unsubscribe",
        ])
    );
}

struct Confirmer;

impl CalculatorCallbacks for Confirmer {
    async fn confirm(&self, _ctx: Context, question: String) -> Result<bool, Fault> {
        Ok(question.ends_with('?'))
    }
}

#[tokio::test]
async fn calls_from_the_server_pass_the_clients_layer() {
    let server = Server::bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let seen = Seen::default();
    let record = seen.clone();
    let client = Client::builder()
        .router(Confirmer.into_router())
        .layer(from_fn(move |req: RpcRequest, next| {
            record.record(&req);
            let refuse = req.params().is_some_and(|p| p.get().contains("666"));
            async move {
                if refuse {
                    return Err(RpcError::forbidden(format!("`{}`", req.method())));
                }
                next.run(req).await
            }
        }))
        .connect(&server.url())
        .await
        .unwrap();
    let calc = CalculatorClient::new(client);
    assert!(calc.ask("ok?".into()).await.unwrap());
    let err = calc.ask("666?".into()).await.unwrap_err();
    assert!(
        err.to_string().contains("-32003") || err.to_string().contains("Forbidden"),
        "{err}"
    );
    assert_eq!(
        seen.take_when(2).await,
        sorted(&[
            "WebSocket Call Calculator.confirm",
            "WebSocket Call Calculator.confirm"
        ])
    );
}

/// A plain `tower::Layer` (not `from_fn`): counts what it passes on.
#[derive(Clone)]
struct Counting(Arc<Mutex<Vec<String>>>, &'static str);

impl<S> tower::Layer<S> for Counting {
    type Service = CountingService<S>;
    fn layer(&self, inner: S) -> CountingService<S> {
        CountingService(self.clone(), inner)
    }
}

#[derive(Clone)]
struct CountingService<S>(Counting, S);

impl<S> tower::Service<RpcRequest> for CountingService<S>
where
    S: tower::Service<RpcRequest, Response = String, Error = RpcError>,
{
    type Response = String;
    type Error = RpcError;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), RpcError>> {
        self.1.poll_ready(cx)
    }

    fn call(&mut self, req: RpcRequest) -> S::Future {
        (self.0)
            .0
            .lock()
            .unwrap()
            .push(format!("{} {}", (self.0).1, req.method()));
        self.1.call(req)
    }
}

#[tokio::test]
async fn layers_stack_the_first_outermost_and_a_layer_may_answer_by_itself() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let server = Server::builder()
        .layer(Counting(order.clone(), "outer"))
        .layer(from_fn(|req: RpcRequest, next| async move {
            // Answers `Calculator.add` itself; the layers inside never see it.
            if req.method() == "Calculator.add" && req.kind() == CallKind::Call {
                return wirecall::policy::json(&42);
            }
            assert_eq!(req.door(), Door::WebSocket);
            next.run(req).await
        }))
        .layer(Counting(order.clone(), "inner"))
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let calc = CalculatorClient::new(Client::connect(&server.url()).await.unwrap());
    assert_eq!(calc.add(1, 2).await.unwrap(), 42);
    assert_eq!(calc.echo("x".into()).await.unwrap(), "x");
    assert_eq!(
        *order.lock().unwrap(),
        [
            "outer Calculator.add",
            "outer Calculator.echo",
            "inner Calculator.echo"
        ]
    );
}

#[tokio::test]
async fn a_subscription_refused_after_it_was_set_up_sends_no_item_and_a_refused_unsubscribe_leaves_the_stream(
) {
    let calc = CalcServer::default();
    let server = Server::builder()
        .layer(from_fn(|req: RpcRequest, next| async move {
            let kind = req.kind();
            let refuse_after = req.params().is_some_and(|p| p.get().contains("666"));
            if kind == CallKind::Unsubscribe {
                return Err(RpcError::forbidden("unsubscribing from `Calculator.ticks`"));
            }
            let out = next.run(req).await;
            if kind == CallKind::Stream && refuse_after {
                // The setup ran (the handler made its stream); the answer is refused.
                assert!(out.is_ok());
                return Err(RpcError::forbidden("`Calculator.ticks`"));
            }
            out
        }))
        .bind("127.0.0.1:0", calc.clone().into_router())
        .await
        .unwrap();
    let mut ws = RawWs::connect(&server.url()).await;
    forbidden(&parse(&ws.roundtrip(r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":666,"every_ms":1},"id":1}"#).await));
    ws.assert_no_answer_pending().await;
    wirecall_tests::wait_for("the refused stream's producer to stop", || {
        calc.active_ticks() == 0
    })
    .await;

    // A stream whose unsubscribe a layer refuses goes on.
    let sub = ask(&mut ws, r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":{"count":100000,"every_ms":5},"id":2}"#).await;
    let sub_id = sub["result"].as_u64().unwrap();
    let unsub = format!(
        r#"{{"jsonrpc":"2.0","method":"Calculator.ticks.unsubscribe","params":[{sub_id}],"id":3}}"#
    );
    let refused = ask(&mut ws, &unsub).await;
    assert_eq!(refused["error"]["code"], -32003, "{refused}");
    let items = until(&mut ws, |v| v["params"]["subscription"] == sub_id).await;
    assert!(!items.is_empty());
}
