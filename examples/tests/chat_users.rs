//! `chat serve --users FILE [--rate N]` and `calculator serve --rate N`, driven through the
//! binaries as a user would: one users file, its rules checked over WebSocket (the typed
//! client and raw JSON-RPC), HTTP POST, server-sent events and WAMP (Autobahn|Python);
//! the rate limit answering a batch of N + 10 calls.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use wirecall::client::{ConnectError, Reconnect};
use wirecall::{Client, Error};
use wirecall_examples::chat::{ChatClient, ChatError, Users};
use wirecall_tests::http::{Events, HttpConn};
use wirecall_tests::services::{autobahn_python, temp_dir, Process};
use wirecall_tests::RawWs;

const USERS: &str = r#"{"users":[
    {"token":"t-alice","name":"alice","rooms":["lobby","secret"]},
    {"token":"t-bob","name":"bob","rooms":["lobby"]}
]}"#;

/// A server binary running, with the URL it printed.
struct Served {
    url: String,
    addr: std::net::SocketAddr,
    _process: Process,
    /// Kept open: the server may print more.
    _stdout: BufReader<std::process::ChildStdout>,
    /// Removed at the end.
    dir: Option<PathBuf>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Run `bin serve 127.0.0.1:0 ARGS…` and wait for its `listening on` line.
fn serve(bin: &str, args: &[&str], dir: Option<PathBuf>) -> Served {
    let mut process = Process::spawn(
        Command::new(bin)
            .args(["serve", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped()),
    );
    let mut stdout = BufReader::new(process.child().stdout.take().unwrap());
    let mut url = None;
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if let Some(u) = line.trim_end().strip_prefix("listening on ") {
            url = Some(u.to_string());
            break;
        }
        line.clear();
    }
    let url = url.unwrap_or_else(|| panic!("{bin} did not say where it listens"));
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    Served {
        url,
        addr,
        _process: process,
        _stdout: stdout,
        dir,
    }
}

/// `chat serve --users FILE` with the users above, and ARGS.
fn chat(args: &[&str]) -> Served {
    let dir = temp_dir("chat-users");
    let file = dir.join("users.json");
    std::fs::write(&file, USERS).unwrap();
    let mut all = vec!["--users", file.to_str().unwrap()];
    all.extend_from_slice(args);
    serve(env!("CARGO_BIN_EXE_chat"), &all, Some(dir))
}

async fn user(url: &str, token: &str) -> ChatClient {
    ChatClient::new(Client::builder().token(token).connect(url).await.unwrap())
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn forbidden<T: std::fmt::Debug>(what: &str, outcome: Result<T, Error<impl std::fmt::Debug>>) {
    match outcome {
        Err(Error::Forbidden(e)) => assert_eq!(e.code, -32003, "{what}: {e:?}"),
        other => panic!("{what}: expected Forbidden, got {other:?}"),
    }
}

fn json_forbidden(what: &str, answer: &Value) {
    assert_eq!(answer["error"]["code"], -32003, "{what}: {answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Forbidden")),
        "{what}: {answer}"
    );
}

#[test]
fn a_users_file_that_is_wrong_says_why() {
    for (text, says) in [
        ("{", "EOF"),
        (r#"{"users":[{"token":"t","name":"a"}]}"#, "rooms"),
        (r#"{"users":[{"token":"","name":"a","rooms":[]}]}"#, "empty"),
        (
            r#"{"users":[{"token":"t","name":"a","rooms":[]},{"token":"t","name":"b","rooms":[]}]}"#,
            "token",
        ),
        (
            r#"{"users":[{"token":"t","name":"a","rooms":[]},{"token":"u","name":"a","rooms":[]}]}"#,
            "twice",
        ),
    ] {
        let err = Users::from_json(text).unwrap_err();
        assert!(err.contains(says), "{text}: {err}");
    }
    assert_eq!(Users::from_json(USERS).unwrap().len(), 2);
    // The binary refuses to start with it, saying so.
    let dir = temp_dir("chat-users-bad");
    let file = dir.join("users.json");
    std::fs::write(&file, "{").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(["serve", "127.0.0.1:0", "--users", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("users.json"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_door_wants_a_token_and_each_user_keeps_to_its_rooms() {
    let server = chat(&[]);
    let url = server.url.as_str();

    // A token on every door: 401 without, 403 for one nobody has.
    for (token, status) in [(None, 401), (Some("t-mallory"), 403)] {
        let mut builder = Client::builder().reconnect(Reconnect::disabled());
        if let Some(t) = token {
            builder = builder.token(t);
        }
        let err = builder.connect(url).await.unwrap_err();
        assert!(
            matches!(err, ConnectError::Refused { status: s, .. } if s == status),
            "{token:?}: {err:?}"
        );
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        let join = r#"{"jsonrpc":"2.0","method":"Chat.join","params":["lobby","x"],"id":1}"#;
        let answer = HttpConn::connect(server.addr)
            .await
            .send("POST", &headers, join)
            .await;
        assert_eq!(answer.status, status, "POST with {token:?}: {answer:?}");
        let mut wamp = vec![("sec-websocket-protocol", "wamp.2.json")];
        if let Some(a) = &auth {
            wamp.push(("authorization", a.as_str()));
        }
        match (token, RawWs::connect_with(url, &wamp).await) {
            // Without credentials a WAMP client may still authenticate the WAMP way
            // (`ticket`, after the upgrade); a HELLO that offers nothing is aborted.
            (None, Ok((mut ws, _))) => {
                ws.send(r#"[1,"realm1",{}]"#).await;
                let abort: Value = serde_json::from_str(&ws.recv().await).unwrap();
                assert_eq!(
                    (&abort[0], &abort[2]),
                    (
                        &Value::from(3),
                        &Value::from("wamp.error.authentication_required")
                    ),
                    "WAMP without a token: {abort}"
                );
            }
            (_, Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                assert_eq!(resp.status().as_u16(), status, "WAMP with {token:?}")
            }
            (_, other) => panic!("WAMP with {token:?}: {:?}", other.map(|(_, r)| r)),
        }
    }

    // WAMP's own way, `ticket`: the WELCOME names the user the ticket belongs to, never the
    // `authid` the client claimed.
    let (mut ws, _) = RawWs::connect_with(url, &[("sec-websocket-protocol", "wamp.2.json")])
        .await
        .unwrap();
    ws.send(r#"[1,"realm1",{"authmethods":["ticket"],"authid":"alice","roles":{"caller":{}}}]"#)
        .await;
    assert_eq!(parse(&ws.recv().await)[0], 4, "CHALLENGE");
    ws.send(r#"[5,"t-bob",{}]"#).await;
    let welcome = parse(&ws.recv().await);
    assert_eq!(
        (&welcome[0], &welcome[2]["authid"]),
        (&Value::from(2), &Value::from("bob")),
        "{welcome}"
    );
    let refused = parse(
        &ws.roundtrip(r#"[48,1,{},"Chat.join",["secret","bob"]]"#)
            .await,
    );
    assert_eq!(refused[4], "wamp.error.not_authorized", "{refused}");

    // WebSocket, typed client: bob may not use `secret`, whatever the method.
    let alice = user(url, "t-alice").await;
    let bob = user(url, "t-bob").await;
    let mut alice_lobby = alice.room("lobby".into()).await.unwrap();
    let mut alice_secret = alice.room("secret".into()).await.unwrap();
    forbidden("join", bob.join("secret".into(), "bob".into()).await);
    forbidden("say", bob.say("secret".into(), "hi".into()).await);
    forbidden("close", bob.close("secret".into()).await);
    forbidden("messages", bob.messages("secret".into()).await.map(|_| ()));
    forbidden("room", bob.room("secret".into()).await.map(|_| ()));
    // Not a member of `lobby` yet: the chat's own error, not a refusal.
    assert!(matches!(
        bob.say("lobby".into(), "hi".into()).await,
        Err(Error::App(ChatError::NotMember))
    ));
    // In his own room, he joins under any name and is heard as bob.
    bob.join("lobby".into(), "alice".into()).await.unwrap();
    bob.say("lobby".into(), "I am alice".into()).await.unwrap();
    let said = next(&mut alice_lobby).await;
    assert_eq!(
        (said.from.as_str(), said.text.as_str()),
        ("bob", "I am alice")
    );
    // Over WAMP he publishes to his room as himself only: a forged `from` (by position or
    // by name) or another user's room as the label is refused and reaches nobody.
    let (mut wamp, _) = RawWs::connect_with(
        url,
        &[
            ("sec-websocket-protocol", "wamp.2.json"),
            ("authorization", "Bearer t-bob"),
        ],
    )
    .await
    .unwrap();
    wamp.send(r#"[1,"realm1",{"roles":{"publisher":{}}}]"#)
        .await;
    assert_eq!(parse(&wamp.recv().await)[0], 2, "WELCOME");
    for forged in [
        r#"[16,1,{"acknowledge":true},"Chat.room.lobby",[{"room":"lobby","from":"alice","text":"forged"}]]"#,
        r#"[16,2,{"acknowledge":true},"Chat.room.lobby",[],{"room":"lobby","from":"alice","text":"forged"}]"#,
        r#"[16,3,{"acknowledge":true},"Chat.room.lobby",[{"room":"secret","from":"bob","text":"forged"}]]"#,
    ] {
        let refused = parse(&wamp.roundtrip(forged).await);
        assert_eq!(
            (&refused[0], &refused[4]),
            (&Value::from(8), &Value::from("wamp.error.not_authorized")),
            "{forged}: {refused}"
        );
    }
    let published = parse(
        &wamp
            .roundtrip(r#"[16,4,{"acknowledge":true},"Chat.room.lobby",[{"room":"lobby","from":"bob","text":"published as bob"}]]"#)
            .await,
    );
    assert_eq!(published[0], 17, "{published}");
    let said = next(&mut alice_lobby).await;
    assert_eq!(
        (said.from.as_str(), said.text.as_str()),
        ("bob", "published as bob")
    );

    // Raw JSON-RPC over WebSocket, with the subprotocol form of the token, a batch with
    // params by name and by position: each refused entry on its own.
    let (mut raw, _) = RawWs::connect_with(
        url,
        &[(
            "sec-websocket-protocol",
            &format!(
                "jsonrpc-2.0, {}",
                wirecall::auth::bearer_subprotocol("t-bob")
            ),
        )],
    )
    .await
    .unwrap();
    let batch = parse(
        &raw.roundtrip(
            r#"[
        {"jsonrpc":"2.0","method":"Chat.join","params":{"room":"secret","name":"bob"},"id":1},
        {"jsonrpc":"2.0","method":"Chat.join","params":["secret","bob"],"id":2},
        {"jsonrpc":"2.0","method":"Chat.room","params":["secret"],"id":3},
        {"jsonrpc":"2.0","method":"Chat.join","params":["lobby","bob"],"id":4}
    ]"#,
        )
        .await,
    );
    let by_id = |id: u64| {
        batch
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no answer {id}: {batch}"))
            .clone()
    };
    for id in 1..=3 {
        json_forbidden(&format!("raw entry {id}"), &by_id(id));
    }
    assert!(by_id(4)["result"].as_u64().is_some(), "{batch}");

    // HTTP POST and server-sent events.
    let bob_auth = [
        ("content-type", "application/json"),
        ("authorization", "Bearer t-bob"),
    ];
    let mut post = HttpConn::connect(server.addr).await;
    for body in [
        r#"{"jsonrpc":"2.0","method":"Chat.join","params":{"room":"secret","name":"bob"},"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"Chat.say","params":["secret","hi"],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"Chat.close","params":["secret"],"id":1}"#,
    ] {
        let answer = post.send("POST", &bob_auth, body).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        json_forbidden(body, &parse(&answer.body));
    }
    let answer = post
        .send(
            "POST",
            &bob_auth,
            r#"{"jsonrpc":"2.0","method":"Chat.join","params":["lobby","bob"],"id":1}"#,
        )
        .await;
    assert!(
        parse(&answer.body)["result"].as_u64().is_some(),
        "{answer:?}"
    );
    for (token, body, allowed) in [
        (
            "Bearer t-bob",
            r#"{"jsonrpc":"2.0","method":"Chat.room","params":{"room":"secret"},"id":1}"#,
            false,
        ),
        (
            "Bearer t-bob",
            r#"{"jsonrpc":"2.0","method":"Chat.messages","params":{"room":"secret"},"id":1}"#,
            false,
        ),
        (
            "Bearer t-alice",
            r#"{"jsonrpc":"2.0","method":"Chat.room","params":{"room":"secret"},"id":1}"#,
            true,
        ),
    ] {
        let mut conn = HttpConn::connect(server.addr).await;
        let resp = conn
            .start(
                "POST",
                &[
                    ("content-type", "application/json"),
                    ("accept", "text/event-stream"),
                    ("authorization", token),
                ],
                body,
            )
            .await;
        let first = parse(&Events::new(resp).next().await.expect("an event"));
        if allowed {
            assert!(first.get("result").is_some(), "{token} {body}: {first}");
        } else {
            json_forbidden(body, &first);
        }
    }

    // WAMP, with the real Autobahn|Python, as bob (header form of the token).
    if let Some(python) =
        autobahn_python("every_door_wants_a_token_and_each_user_keeps_to_its_rooms")
    {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/wamp/users.py");
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(python)
                .arg(script)
                .args([url, "t-bob", "lobby", "secret", "bob"])
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the WAMP client finished within 60 s")
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("autobahn|python: {stdout}");
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.matches("ok: ").count(), 3, "{stdout}");
        let said = next(&mut alice_lobby).await;
        assert_eq!(
            (said.from.as_str(), said.text.as_str()),
            ("bob", "said over WAMP")
        );
    }

    // Nothing bob tried reached `secret`: the first thing alice hears there is her own.
    alice.join("secret".into(), "alice".into()).await.unwrap();
    alice.say("secret".into(), "only us".into()).await.unwrap();
    let said = next(&mut alice_secret).await;
    assert_eq!(
        (said.from.as_str(), said.text.as_str()),
        ("alice", "only us")
    );
}

async fn next(
    sub: &mut wirecall::Subscription<wirecall_examples::chat::Message>,
) -> wirecall_examples::chat::Message {
    tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("a message within 20 s")
        .expect("the subscription goes on")
        .expect("a message")
}

/// Send a batch of `n + 10` calls on `ws`, and check that `n` are answered and the rest
/// refused `-32029` with `retry_after_ms`. The budget comes back at `n` a second, so if
/// the batch took longer than one refill (a loaded machine), one more may pass.
async fn batch_over_the_rate(ws: &mut RawWs, n: usize, call: impl Fn(usize) -> String) {
    let batch: Vec<String> = (1..=n + 10).map(call).collect();
    let started = Instant::now();
    let answers = parse(&ws.roundtrip(&format!("[{}]", batch.join(","))).await);
    let took = started.elapsed();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), n + 10);
    let ok = answers.iter().filter(|a| a.get("result").is_some()).count();
    for a in answers.iter().filter(|a| a.get("result").is_none()) {
        assert_eq!(a["error"]["code"], -32029, "{a}");
        let ms = a["error"]["data"]["retry_after_ms"].as_u64().unwrap();
        assert!((1..=1000).contains(&ms), "{a}");
    }
    let refill = Duration::from_secs(1) / n as u32;
    if took < refill {
        assert_eq!(ok, n, "{answers:?}");
    } else {
        assert!((n..=n + 1 + (took.as_millis() / refill.as_millis()) as usize).contains(&ok));
    }
}

#[tokio::test]
async fn chat_rate_is_per_user_and_answers_a_batch_of_n_plus_10() {
    const N: usize = 3;
    let server = chat(&["--rate", &N.to_string()]);
    let bearer = |t: &str| format!("Bearer {t}");
    let join = |id: usize| {
        format!(r#"{{"jsonrpc":"2.0","method":"Chat.join","params":["lobby","x"],"id":{id}}}"#)
    };
    let (mut alice, _) = RawWs::connect_with(&server.url, &[("authorization", &bearer("t-alice"))])
        .await
        .unwrap();
    batch_over_the_rate(&mut alice, N, join).await;
    // Her other connection shares her budget; bob, from the same address, has his own.
    let (mut again, _) = RawWs::connect_with(&server.url, &[("authorization", &bearer("t-alice"))])
        .await
        .unwrap();
    let answer = parse(&again.roundtrip(&join(1)).await);
    assert_eq!(answer["error"]["code"], -32029, "{answer}");
    let (mut bob, _) = RawWs::connect_with(&server.url, &[("authorization", &bearer("t-bob"))])
        .await
        .unwrap();
    let answer = parse(&bob.roundtrip(&join(1)).await);
    assert!(answer["result"].as_u64().is_some(), "{answer}");
    // The typed client says so too.
    let client = user(&server.url, "t-alice").await;
    match client.join("lobby".into(), "x".into()).await {
        Err(Error::RateLimited { retry_after }) => {
            assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn calculator_rate_is_per_ip_without_a_token() {
    const N: usize = 4;
    let server = serve(
        env!("CARGO_BIN_EXE_calculator"),
        &["--rate", &N.to_string()],
        None,
    );
    let mut ws = RawWs::connect(&server.url).await;
    batch_over_the_rate(&mut ws, N, |id| {
        format!(r#"{{"jsonrpc":"2.0","method":"Calculator.add","params":[{id},1],"id":{id}}}"#)
    })
    .await;
    // Another connection from the same address shares the budget, over POST too.
    let answer = HttpConn::connect(server.addr)
        .await
        .post(r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,1],"id":1}"#)
        .await;
    assert_eq!(parse(&answer.body)["error"]["code"], -32029, "{answer:?}");
}

/// `chat serve` describes itself (`rpc.discover`), so `wirecall call` and `subscribe` type
/// their arguments against it; a signed-in user may read the description.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_serve_answers_rpc_discover() {
    let server = chat(&[]);
    let answer = HttpConn::connect(server.addr)
        .await
        .send(
            "POST",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer t-bob"),
            ],
            r#"{"jsonrpc":"2.0","method":"rpc.discover","id":1}"#,
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let doc = parse(&answer.body);
    assert_eq!(doc["result"]["info"]["title"], "chat", "{doc}");
    let methods: Vec<&str> = doc["result"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    for name in ["Chat.join", "Chat.say", "Chat.room"] {
        assert!(methods.contains(&name), "{name} in {methods:?}");
    }
}
