//! WAMP v2 on the same port, with the real clients: Autobahn|Python (asyncio, PyPI) and
//! Autobahn|JS (npm, on Node.js), each over JSON, msgpack and CBOR, call the calculator, cancel, read progressive results and
//! share a chat room topic with JSON-RPC clients; malformed WAMP is aborted without
//! disturbing anyone else. `tests/wamp/setup.sh` installs the clients (`.ci/run` runs it;
//! without network the tests say SKIPPED).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use wirecall::{raw::Router, server::ServerHandle, Client, Server};
use wirecall_examples::calculator::{Calculator, CalculatorClient};
use wirecall_examples::chat::{Chat, ChatClient, ChatServer};
use wirecall_examples::CalcServer;
use wirecall_tests::{Ended, RawWs};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The installed clients, installing them first if needed; `None` (SKIPPED) if that fails.
fn clients(test: &str) -> Option<(PathBuf, PathBuf)> {
    let venv_python = std::env::var_os("WAMP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/wamp-venv"))
        .join("bin/python");
    let js = root().join("tests/wamp/node_modules/autobahn/package.json");
    if !venv_python.exists() || !js.exists() {
        let status = std::process::Command::new(root().join("tests/wamp/setup.sh"))
            .stdout(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) || !venv_python.exists() || !js.exists() {
            let message = format!(
                "SKIPPED {test}: the Autobahn clients could not be installed (tests/wamp/setup.sh needs PyPI and npm; .ci/run runs it)"
            );
            eprintln!("\n*** {message} ***\n");
            println!("{message}");
            return None;
        }
    }
    Some((venv_python, root().join("tests/wamp")))
}

async fn server() -> ServerHandle {
    let mut router = Router::new();
    router.merge(CalcServer::default().into_router()).unwrap();
    router.merge(ChatServer::default().into_router()).unwrap();
    Server::bind("127.0.0.1:0", router).await.unwrap()
}

/// Run a client process; when it prints READY, say m1..m3 in the lobby over JSON-RPC.
/// Returns what a JSON-RPC subscriber of the lobby heard meanwhile.
async fn run_client(
    server: &ServerHandle,
    mut command: tokio::process::Command,
    name: &str,
) -> Vec<String> {
    let listener = ChatClient::new(Client::connect(&server.url()).await.unwrap());
    let mut room = listener.room("lobby".into()).await.unwrap();
    let mut child = command
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let speaker = ChatClient::new(Client::connect(&server.url()).await.unwrap());
    speaker
        .join("lobby".into(), "json-rpc".into())
        .await
        .unwrap();
    let mut output = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            println!("{name}: {line}");
            if line == "READY" {
                for text in ["m1", "m2", "m3"] {
                    speaker.say("lobby".into(), text.into()).await.unwrap();
                }
            }
            output.push(line);
        }
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("{name} did not finish in 60 s: {output:?}"));
    assert!(status.success(), "{name} failed: {output:#?}");
    assert!(
        output.iter().any(|l| l.starts_with("ok: topic")),
        "{output:#?}"
    );
    let mut heard = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(200), room.next()).await
    {
        heard.push(format!("{}: {}", m.from, m.text));
    }
    heard
}

/// Autobahn|Python with `serializer` (json, msgpack or cbor): the same checks for each.
async fn autobahn_python(test: &str, serializer: &str) {
    let Some((python, dir)) = clients(test) else {
        return;
    };
    let server = server().await;
    let mut command = tokio::process::Command::new(python);
    command
        .arg(dir.join("client.py"))
        .arg(server.url())
        .arg(serializer);
    let name = format!("autobahn|python {serializer}");
    let heard = run_client(&server, command, &name).await;
    assert!(
        heard.contains(&"autobahn-python: hello from WAMP".to_string()),
        "{heard:?}"
    );
    assert!(heard.contains(&"json-rpc: m3".to_string()), "{heard:?}");
}

/// Autobahn|JS with `serializer`.
async fn autobahn_js(test: &str, serializer: &str) {
    let Some((_, dir)) = clients(test) else {
        return;
    };
    let server = server().await;
    let mut command = tokio::process::Command::new("node");
    command
        .arg("--experimental-websocket")
        .arg(dir.join("client.mjs"))
        .arg(server.url())
        .arg(serializer);
    let name = format!("autobahn|js {serializer}");
    let heard = run_client(&server, command, &name).await;
    assert!(
        heard.contains(&"autobahn-js: hello from WAMP".to_string()),
        "{heard:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_python_calls_cancels_streams_and_shares_a_room() {
    autobahn_python(
        "autobahn_python_calls_cancels_streams_and_shares_a_room",
        "json",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_python_over_msgpack() {
    autobahn_python("autobahn_python_over_msgpack", "msgpack").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_python_over_cbor() {
    autobahn_python("autobahn_python_over_cbor", "cbor").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_js_calls_cancels_streams_and_shares_a_room() {
    autobahn_js(
        "autobahn_js_calls_cancels_streams_and_shares_a_room",
        "json",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_js_over_msgpack() {
    autobahn_js("autobahn_js_over_msgpack", "msgpack").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_js_over_cbor() {
    autobahn_js("autobahn_js_over_cbor", "cbor").await;
}

async fn wamp(url: &str) -> RawWs {
    let (ws, resp) = RawWs::connect_with(url, &[("sec-websocket-protocol", "wamp.2.json")])
        .await
        .unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "wamp.2.json");
    ws
}

async fn next(ws: &mut RawWs) -> Value {
    serde_json::from_str(&ws.recv().await).unwrap()
}

/// ABORT with `reason`, then the close.
async fn aborted(ws: &mut RawWs, reason: &str) {
    let abort = next(ws).await;
    assert_eq!(
        (abort[0].as_u64(), abort[2].as_str()),
        (Some(3), Some(reason)),
        "{abort}"
    );
    assert!(matches!(ws.next_text().await, Err(Ended::Close(_))));
}

#[tokio::test]
async fn malformed_wamp_is_aborted_and_everyone_else_is_served() {
    let server = server().await;
    let calc = CalculatorClient::new(Client::connect(&server.url()).await.unwrap());
    let mut watcher = wamp(&server.url()).await;
    watcher
        .send(r#"[1,"realm1",{"roles":{"caller":{}}}]"#)
        .await;
    assert_eq!(next(&mut watcher).await[0], 2, "WELCOME");

    // Before HELLO, garbage, an unknown type, a second HELLO, a malformed CALL.
    let cases = [
        (None, r#"[48,1,{},"Calculator.add",[1,2]]"#),
        (Some(r#"[1,"realm1",{}]"#), r#"{"not":"an array"}"#),
        (Some(r#"[1,"realm1",{}]"#), "[99,1]"),
        (Some(r#"[1,"realm1",{}]"#), r#"[1,"realm1",{}]"#),
        (
            Some(r#"[1,"realm1",{}]"#),
            r#"[48,"one",{},"Calculator.add"]"#,
        ),
        (Some(r#"[1,"realm1",{}]"#), "not json"),
    ];
    for (hello, bad) in cases {
        let mut ws = wamp(&server.url()).await;
        if let Some(hello) = hello {
            ws.send(hello).await;
            assert_eq!(next(&mut ws).await[0], 2);
        }
        ws.send(bad).await;
        aborted(&mut ws, "wamp.error.protocol_violation").await;
        // Everyone else is still served, over both protocols.
        assert_eq!(calc.add(1, 2).await.unwrap(), 3);
        watcher.send(r#"[48,7,{},"Calculator.add",[2,2]]"#).await;
        assert_eq!(next(&mut watcher).await, json!([50, 7, {}, [4]]));
    }

    // GOODBYE is answered, then the connection closes.
    watcher.send(r#"[6,{},"wamp.close.close_realm"]"#).await;
    assert_eq!(
        next(&mut watcher).await,
        json!([6, {}, "wamp.close.goodbye_and_out"])
    );

    // WAMP serializers other than JSON, msgpack and CBOR are refused at the handshake.
    let refused = RawWs::connect_with(
        &server.url(),
        &[("sec-websocket-protocol", "wamp.2.ubjson")],
    )
    .await;
    assert!(refused.is_err());
}

/// What Autobahn does not exercise: `skip` and `killnowait`, `UNSUBSCRIBE`, a refused
/// publication, and the server's `GOODBYE` on shutdown.
#[tokio::test]
async fn cancel_modes_unsubscribe_refusals_and_goodbye_on_shutdown() {
    let server = server().await;
    let mut ws = wamp(&server.url()).await;
    ws.send(r#"[1,"realm1",{}]"#).await;
    assert_eq!(next(&mut ws).await[0], 2);
    for (request, mode) in [(1, "skip"), (2, "killnowait")] {
        ws.send(&format!(r#"[48,{request},{{}},"Calculator.sleep",[5000]]"#))
            .await;
        ws.send(&format!(r#"[49,{request},{{"mode":"{mode}"}}]"#))
            .await;
        let error = next(&mut ws).await;
        let error = error.as_array().unwrap();
        assert_eq!(
            error[..5],
            json!([8, 48, request, {}, "wamp.error.canceled"])
                .as_array()
                .unwrap()[..],
            "{error:?}"
        );
    }
    ws.send(r#"[49,3,{"mode":"sideways"}]"#).await;
    assert_eq!(next(&mut ws).await[4], "wamp.error.invalid_argument");
    // Subscribe, get an event, unsubscribe, get none.
    ws.send(r#"[32,10,{},"Chat.room.attic"]"#).await;
    let subscribed = next(&mut ws).await;
    let subscribed = subscribed.as_array().unwrap();
    assert_eq!(subscribed[..2], [json!(33), json!(10)], "{subscribed:?}");
    let sub = subscribed[2].as_u64().unwrap();
    let topics = wirecall_examples::chat::ChatTopics::new(server.hub());
    let message = |text: &str| wirecall_examples::chat::Message {
        room: "attic".into(),
        from: "rust".into(),
        text: text.into(),
    };
    topics.room("attic").publish(&message("one")).await.unwrap();
    let event = next(&mut ws).await;
    assert_eq!(
        (event[0].as_u64(), event[1].as_u64()),
        (Some(36), Some(sub)),
        "{event}"
    );
    assert_eq!(event[4][0]["text"], "one");
    ws.send(&format!("[34,11,{sub}]")).await;
    assert_eq!(next(&mut ws).await, json!([35, 11]));
    ws.send(&format!("[34,12,{sub}]")).await;
    assert_eq!(next(&mut ws).await[4], "wamp.error.no_such_subscription");
    topics.room("attic").publish(&message("two")).await.unwrap();
    // A topic that takes no client publications, acknowledged: refused.
    ws.send(r#"[16,13,{"acknowledge":true},"Chat.nope.x",[1]]"#)
        .await;
    assert_eq!(next(&mut ws).await[4], "wamp.error.invalid_uri");
    // Shutdown: GOODBYE, then the close.
    server.shutdown().await;
    assert_eq!(
        next(&mut ws).await,
        json!([6, {}, "wamp.close.system_shutdown"])
    );
    assert!(matches!(ws.next_text().await, Err(Ended::Close(_))));
}

#[tokio::test]
async fn a_configured_realm_is_enforced() {
    let mut router = Router::new();
    router.merge(CalcServer::default().into_router()).unwrap();
    let server = Server::builder()
        .wamp_realm("calc")
        .bind("127.0.0.1:0", router)
        .await
        .unwrap();
    let mut ws = wamp(&server.url()).await;
    ws.send(r#"[1,"other",{}]"#).await;
    aborted(&mut ws, "wamp.error.no_such_realm").await;
    let mut ws = wamp(&server.url()).await;
    ws.send(r#"[1,"calc",{}]"#).await;
    let welcome = next(&mut ws).await;
    assert_eq!(welcome[2]["realm"], "calc");
    assert_eq!(
        welcome[2]["roles"]["dealer"]["features"]["progressive_call_results"],
        true
    );
}

/// The door's rules hold for WAMP too: the authentication hook (a token in the
/// `bearer.…` subprotocol next to `wamp.2.json`, as a browser would send it) and the
/// Origin rule.
#[tokio::test]
async fn authentication_and_origin_apply_to_wamp() {
    let mut router = Router::new();
    router.merge(CalcServer::default().into_router()).unwrap();
    let server = Server::builder()
        .allow_origin("https://app.test")
        .authenticate(|handshake| async move {
            match handshake.bearer_token() {
                Some("s3cret") => Ok(wirecall::auth::Identity::new("wamp-user".to_string())),
                _ => Err(wirecall::auth::Refusal::unauthorized(
                    "a bearer token is required",
                )),
            }
        })
        .bind("127.0.0.1:0", router)
        .await
        .unwrap();
    let status = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
        Ok(_) => 101,
    };
    let token = wirecall::auth::bearer_subprotocol("s3cret");
    let with_token = format!("wamp.2.json, {token}");
    let url = server.url();
    let origin = ("origin", "https://app.test");
    // Without a token the upgrade succeeds (the client may still authenticate with
    // `ticket`), and a HELLO that offers no authentication is aborted.
    let (mut no_token, _) =
        RawWs::connect_with(&url, &[("sec-websocket-protocol", "wamp.2.json"), origin])
            .await
            .unwrap();
    no_token.send(r#"[1,"realm1",{}]"#).await;
    aborted(&mut no_token, "wamp.error.authentication_required").await;
    let elsewhere = RawWs::connect_with(
        &url,
        &[
            ("sec-websocket-protocol", &with_token),
            ("origin", "https://evil.test"),
        ],
    )
    .await;
    assert_eq!(status(elsewhere.map(|_| ())), 403);
    let (mut ws, resp) =
        RawWs::connect_with(&url, &[("sec-websocket-protocol", &with_token), origin])
            .await
            .unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "wamp.2.json");
    ws.send(r#"[1,"realm1",{}]"#).await;
    assert_eq!(next(&mut ws).await[0], 2);
    ws.send(r#"[48,1,{},"Calculator.stats",[]]"#).await;
    let result = next(&mut ws).await;
    assert_eq!(result[3][0]["caller"], "wamp-user", "{result}");
}

/// msgpack and CBOR through a raw socket: binary frames both ways, the same answers as
/// JSON (a result, a typed error, a progressive stream), and garbage aborted in the
/// connection's own serializer.
#[tokio::test]
async fn binary_serializers_answer_in_binary_frames_and_abort_garbage() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let server = server().await;
    for serializer in ["msgpack", "cbor"] {
        let encode = |value: &Value| -> Vec<u8> {
            match serializer {
                "msgpack" => rmp_serde::to_vec(value).unwrap(),
                _ => {
                    let mut out = Vec::new();
                    ciborium::ser::into_writer(value, &mut out).unwrap();
                    out
                }
            }
        };
        let protocol = format!("wamp.2.{serializer}");
        let (mut ws, resp) =
            RawWs::connect_with(&server.url(), &[("sec-websocket-protocol", &protocol)])
                .await
                .unwrap();
        assert_eq!(resp.headers()["sec-websocket-protocol"], *protocol);
        // The next message: it must come in a binary frame.
        async fn next(ws: &mut RawWs, serializer: &str) -> Option<Value> {
            loop {
                let frame = tokio::time::timeout(Duration::from_secs(10), ws.inner().next())
                    .await
                    .expect("a frame within 10 s");
                match frame {
                    Some(Ok(Message::Binary(bytes))) => {
                        return Some(match serializer {
                            "msgpack" => rmp_serde::from_slice(&bytes).unwrap(),
                            _ => ciborium::de::from_reader(&bytes[..]).unwrap(),
                        })
                    }
                    Some(Ok(Message::Text(text))) => {
                        panic!("a text frame over {serializer}: {text}")
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    _ => return None,
                }
            }
        }
        ws.send_binary(encode(&json!([1, "realm1", {}]))).await;
        assert_eq!(next(&mut ws, serializer).await.unwrap()[0], 2, "WELCOME");
        ws.send_binary(encode(&json!([48, 1, {}, "Calculator.add", [1, 2]])))
            .await;
        assert_eq!(
            next(&mut ws, serializer).await,
            Some(json!([50, 1, {}, [3]]))
        );
        ws.send_binary(encode(&json!([48, 2, {}, "Calculator.divide", [1, 0]])))
            .await;
        let error = next(&mut ws, serializer).await.unwrap();
        assert_eq!(error[4], "CalcError.DivideByZero", "{error}");
        assert_eq!(error[5], json!([1001]), "{error}");
        let ticks = json!([48, 3, {"receive_progress": true}, "Calculator.ticks", [2, 1]]);
        ws.send_binary(encode(&ticks)).await;
        assert_eq!(
            next(&mut ws, serializer).await,
            Some(json!([50, 3, {"progress": true}, [0]]))
        );
        assert_eq!(
            next(&mut ws, serializer).await,
            Some(json!([50, 3, {"progress": true}, [1]]))
        );
        assert_eq!(
            next(&mut ws, serializer).await,
            Some(json!([50, 3, {}, []]))
        );
        ws.send_binary(vec![0xc1, 0xff, 0x00]).await;
        let abort = next(&mut ws, serializer).await.unwrap();
        assert_eq!(
            (abort[0].as_u64(), abort[2].as_str()),
            (Some(3), Some("wamp.error.protocol_violation")),
            "{abort}"
        );
        assert_eq!(next(&mut ws, serializer).await, None, "closed after ABORT");
    }
}

/// A server whose hook takes the token `s3cret` (as `alice`, role `member`) and refuses
/// others with 401.
async fn ticket_server(handshake_timeout: Duration) -> ServerHandle {
    ticket_server_with(Server::builder().handshake_timeout(handshake_timeout)).await
}

/// [`ticket_server`] from `builder`.
async fn ticket_server_with(builder: wirecall::server::ServerBuilder) -> ServerHandle {
    let mut router = Router::new();
    router.merge(CalcServer::default().into_router()).unwrap();
    router.merge(ChatServer::default().into_router()).unwrap();
    builder
        .authenticate(|handshake| async move {
            match handshake.bearer_token() {
                Some("s3cret") => {
                    Ok(wirecall::auth::Identity::new("alice".to_string()).with_authrole("member"))
                }
                Some(_) => Err(wirecall::auth::Refusal::unauthorized("unknown token")),
                None => Err(wirecall::auth::Refusal::unauthorized(
                    "a bearer token is required",
                )),
            }
        })
        .bind("127.0.0.1:0", router)
        .await
        .unwrap()
}

/// WAMP's own authentication: `HELLO` with `authmethods: ["ticket"]`, the server's
/// `CHALLENGE`, `AUTHENTICATE` with the bearer token as the ticket → `WELCOME` with the
/// identity the other doors give that token; a wrong ticket, no method or another method
/// → `ABORT` with the standard URI; a server without the hook welcomes at once.
#[tokio::test]
async fn ticket_authentication_gives_the_identity_of_the_token() {
    let server = ticket_server(Duration::from_secs(10)).await;
    let mut ws = wamp(&server.url()).await;
    ws.send(r#"[1,"realm1",{"authmethods":["ticket"],"authid":"alice-claimed"}]"#)
        .await;
    assert_eq!(next(&mut ws).await, json!([4, "ticket", {}]), "CHALLENGE");
    ws.send(r#"[5,"s3cret",{}]"#).await;
    let welcome = next(&mut ws).await;
    assert_eq!(welcome[0], 2, "{welcome}");
    let details = &welcome[2];
    assert_eq!(
        (
            &details["authid"],
            &details["authrole"],
            &details["authmethod"]
        ),
        (&json!("alice"), &json!("member"), &json!("ticket")),
        "{welcome}"
    );
    // The handlers see the same identity as over the other doors.
    ws.send(r#"[48,1,{},"Calculator.stats",[]]"#).await;
    let result = next(&mut ws).await;
    assert_eq!(result[3][0]["caller"], "alice", "{result}");
    // The header and subprotocol forms still work, without a CHALLENGE.
    let offered = format!(
        "wamp.2.json, {}",
        wirecall::auth::bearer_subprotocol("s3cret")
    );
    let (mut ws, _) = RawWs::connect_with(&server.url(), &[("sec-websocket-protocol", &offered)])
        .await
        .unwrap();
    ws.send(r#"[1,"realm1",{"authmethods":["ticket"]}]"#).await;
    let welcome = next(&mut ws).await;
    assert_eq!(
        (welcome[0].as_u64(), &welcome[2]["authid"]),
        (Some(2), &json!("alice")),
        "{welcome}"
    );

    // A wrong ticket, no method, another method, AUTHENTICATE unasked.
    let mut ws = wamp(&server.url()).await;
    ws.send(r#"[1,"realm1",{"authmethods":["ticket"],"authid":"mallory"}]"#)
        .await;
    assert_eq!(next(&mut ws).await[0], 4);
    ws.send(r#"[5,"guess",{}]"#).await;
    aborted(&mut ws, "wamp.error.authentication_denied").await;
    let mut ws = wamp(&server.url()).await;
    ws.send(r#"[1,"realm1",{"authmethods":["anonymous"]}]"#)
        .await;
    aborted(&mut ws, "wamp.error.no_matching_auth_method").await;
    let mut ws = wamp(&server.url()).await;
    ws.send(r#"[5,"s3cret",{}]"#).await;
    aborted(&mut ws, "wamp.error.protocol_violation").await;
    // A CALL between CHALLENGE and AUTHENTICATE.
    let mut ws = wamp(&server.url()).await;
    ws.send(r#"[1,"realm1",{"authmethods":["ticket"]}]"#).await;
    assert_eq!(next(&mut ws).await[0], 4);
    ws.send(r#"[48,1,{},"Calculator.add",[1,2]]"#).await;
    aborted(&mut ws, "wamp.error.protocol_violation").await;

    // Without authentication configured, `ticket` is not asked for: WELCOME at once.
    let plain = self::server().await;
    let mut ws = wamp(&plain.url()).await;
    ws.send(r#"[1,"realm1",{"authmethods":["ticket"],"authid":"x"}]"#)
        .await;
    let welcome = next(&mut ws).await;
    assert_eq!(welcome[0], 2, "{welcome}");
    assert!(welcome[2].get("authid").is_none(), "{welcome}");
}

/// A WAMP connection that came without credentials has the handshake timeout to
/// authenticate; then it is aborted and closed.
#[tokio::test]
async fn an_unauthenticated_wamp_connection_is_closed_after_the_handshake_timeout() {
    let server = ticket_server(Duration::from_millis(500)).await;
    let mut ws = wamp(&server.url()).await;
    let abort = next(&mut ws).await;
    assert_eq!(
        (abort[0].as_u64(), abort[2].as_str()),
        (Some(3), Some("wamp.error.authentication_required")),
        "{abort}"
    );
    assert!(matches!(
        ws.next_text().await,
        Err(Ended::Close(Some((4401, _))))
    ));
}

/// Connections that take the `ticket` way in and never authenticate are pending, like
/// handshakes: at `max_pending_handshakes` the oldest is aborted, so they cannot hold the
/// connection slots — with 40 of them against 10 slots, a client with a token still gets
/// in, over WAMP and over JSON-RPC, and one that authenticates with `ticket` too.
#[tokio::test]
async fn sessions_that_never_authenticate_cannot_lock_real_clients_out() {
    let server = ticket_server_with(
        Server::builder()
            .max_connections(10)
            .max_pending_handshakes(4)
            .handshake_timeout(Duration::from_secs(30)),
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(wamp(&server.url()).await);
    }
    // The oldest 36 were dropped to make room: ABORT, then the close.
    for ws in &mut idle[..36] {
        aborted(ws, "wamp.error.authentication_required").await;
    }
    let (mut ws, _) = RawWs::connect_with(
        &server.url(),
        &[
            ("sec-websocket-protocol", "wamp.2.json"),
            ("authorization", "Bearer s3cret"),
        ],
    )
    .await
    .expect("a WAMP client with a token gets in");
    ws.send(r#"[1,"realm1",{}]"#).await;
    assert_eq!(next(&mut ws).await[0], 2, "WELCOME");
    let calc = CalculatorClient::new(
        Client::builder()
            .token("s3cret")
            .connect(&server.url())
            .await
            .expect("a JSON-RPC client with a token gets in"),
    );
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
    // A client that authenticates with `ticket` is pending only until WELCOME: once in, it
    // is not dropped for newer ones.
    let mut ticket = wamp(&server.url()).await;
    ticket
        .send(r#"[1,"realm1",{"authmethods":["ticket"]}]"#)
        .await;
    assert_eq!(next(&mut ticket).await[0], 4, "CHALLENGE");
    ticket.send(r#"[5,"s3cret",{}]"#).await;
    assert_eq!(next(&mut ticket).await[0], 2, "WELCOME");
    for _ in 0..8 {
        idle.push(wamp(&server.url()).await);
    }
    ticket.send(r#"[48,1,{},"Calculator.add",[2,3]]"#).await;
    let result = next(&mut ticket).await;
    assert_eq!(
        (&result[0], &result[3]),
        (&json!(50), &json!([5])),
        "{result}"
    );
}

/// Autobahn|Python's and Autobahn|JS's `ticket` authentication: each joins as the token's
/// identity; a wrong ticket is refused with `wamp.error.authentication_denied`; at the
/// identity's expiry the session is left with `wirecall.close.authentication_expired`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_authenticates_with_a_ticket() {
    let Some((python, dir)) = clients("autobahn_authenticates_with_a_ticket") else {
        return;
    };
    let mut router = Router::new();
    router.merge(CalcServer::default().into_router()).unwrap();
    let server = Server::builder()
        .authenticate(|handshake| async move {
            match handshake.bearer_token() {
                Some("s3cret") => Ok(wirecall::auth::Identity::new("alice".to_string())
                    .expires_in(Duration::from_millis(1500))),
                _ => Err(wirecall::auth::Refusal::unauthorized("unknown ticket")),
            }
        })
        .bind("127.0.0.1:0", router)
        .await
        .unwrap();
    let cases = [
        ("s3cret", "left: wirecall.close.authentication_expired"),
        ("guess", "left: wamp.error.authentication_denied"),
    ];
    for ((ticket, expect), js) in cases.into_iter().flat_map(|c| [(c, false), (c, true)]) {
        let mut command = match js {
            false => tokio::process::Command::new(&python),
            true => {
                let mut node = tokio::process::Command::new("node");
                node.arg("--experimental-websocket");
                node
            }
        };
        let script = if js { "ticket.mjs" } else { "ticket.py" };
        let out = command
            .arg(dir.join(script))
            .arg(server.url())
            .arg(ticket)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(60), out)
            .await
            .unwrap_or_else(|_| panic!("{script} within 60 s"))
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!(
            "{script} {ticket}:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        if ticket == "s3cret" {
            assert!(
                lines.contains(&"joined: authid=alice authrole=user authmethod=ticket"),
                "{lines:?}"
            );
            assert!(lines.contains(&"caller: alice"), "{lines:?}");
        } else {
            assert!(!lines.iter().any(|l| l.starts_with("joined")), "{lines:?}");
        }
        assert!(lines.contains(&expect), "{lines:?}");
    }
}
