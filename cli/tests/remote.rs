//! `wirecall call`, `subscribe` and `discover` end to end, against the calculator server
//! started by the test (in this process, so the test can see what the server received).

use std::time::Duration;

use wirecall::{
    auth::{Identity, Refusal},
    server::ServerHandle,
    Server,
};
use wirecall_examples::calculator::{Calculator, OPENRPC_DOCUMENT};
use wirecall_examples::CalcServer;

/// The calculator with `rpc.discover`, as `calculator serve` runs it.
async fn calculator(builder: wirecall::server::ServerBuilder) -> (ServerHandle, CalcServer) {
    let calc = CalcServer::default();
    let mut router = calc.clone().into_router();
    router.discover(OPENRPC_DOCUMENT).unwrap();
    let server = builder.bind("127.0.0.1:0", router).await.unwrap();
    (server, calc)
}

/// Run `wirecall ARGS…`: exit code, stdout, stderr.
async fn wirecall(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wirecall"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn call_types_its_arguments_from_the_server() {
    let (server, calc) = calculator(Server::builder()).await;
    let url = server.url();
    for args in [
        vec!["a=1", "b=2"],
        vec!["1", "2"],
        vec![r#"{"a":1,"b":2}"#],
        vec!["[1,2]"],
    ] {
        let mut argv = vec!["call", url.as_str(), "Calculator.add"];
        argv.extend(args.iter().copied());
        let (code, out, err) = wirecall(&argv).await;
        assert_eq!((code, out.as_str()), (0, "3\n"), "{args:?}: {err}");
    }
    // Over HTTP too; a string parameter takes its text as it is.
    let (code, out, err) =
        wirecall(&["call", &server.http_url(), "Calculator.echo", "text=1"]).await;
    assert_eq!((code, out.as_str()), (0, "\"1\"\n"), "{err}");
    // Pretty by default, one line with --compact.
    let (_, out, _) = wirecall(&["call", &url, "Calculator.stats"]).await;
    assert!(out.starts_with("{\n  \"calls\": "), "{out}");
    let (_, out, _) = wirecall(&["call", &url, "Calculator.stats", "--compact"]).await;
    assert!(
        out.starts_with("{\"calls\":") && out.lines().count() == 1,
        "{out}"
    );
    assert_eq!(calc.calls(), 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_typed_error_exits_1_with_its_name_and_code() {
    let (server, _) = calculator(Server::builder()).await;
    let (code, out, err) =
        wirecall(&["call", &server.url(), "Calculator.divide", "a=1", "b=0"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out, "");
    assert!(err.contains("CalcError.DivideByZero (1001)"), "{err}");
    // An error the server answers for itself: its code and message.
    let (code, _, err) = wirecall(&[
        "call",
        &server.url(),
        "Calculator.add",
        "a=1",
        "--idl",
        "cli/tests/fixtures/loose.wire",
    ])
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("-32602"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_a_description_is_called_untyped_and_says_how_to_fix_it() {
    // The calculator without `router.discover(…)`.
    let server = Server::bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let (code, out, err) =
        wirecall(&["call", &server.url(), "Calculator.divide", "a=1", "b=0"]).await;
    assert_eq!(code, 1, "{out}{err}");
    // Untyped arguments are announced, with both fixes …
    assert!(
        err.contains("warning: the server does not describe itself"),
        "{err}"
    );
    assert!(err.contains("router.discover(OPENRPC_DOCUMENT)"), "{err}");
    assert!(err.contains("--idl FILE.wire"), "{err}");
    // … and the error is printed in the one form, typed or not: `error: WHAT (CODE)`.
    assert!(err.contains("error: DivideByZero (1001)"), "{err}");
    let (_, _, typed) = wirecall(&[
        "call",
        &server.url(),
        "Calculator.divide",
        "a=1",
        "b=0",
        "--idl",
        "examples/idl/calculator.wire",
    ])
    .await;
    assert!(
        typed.contains("error: CalcError.DivideByZero (1001)"),
        "{typed}"
    );
    assert!(!typed.contains("warning"), "{typed}");
    // `discover` names the fix too.
    let (code, _, err) = wirecall(&["discover", &server.url()]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("router.discover(OPENRPC_DOCUMENT)"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mistakes_are_reported_before_anything_is_sent() {
    let (server, calc) = calculator(Server::builder()).await;
    let url = server.url();
    for (args, words) in [
        (
            vec!["Calculator.add", "a=x", "b=2"],
            vec!["`a`", "i64", "`x`"],
        ),
        (
            vec!["Calculator.add", "a=1", "c=2"],
            vec!["unknown parameter `c`", "a: i64, b: i64"],
        ),
        (vec!["Calculator.add", "a=1"], vec!["missing parameter `b`"]),
        (
            vec!["Calculator.add", "1", "2", "3"],
            vec!["3 values given"],
        ),
        (vec!["Calculator.add", "a=1.5", "b=2"], vec!["`a`", "i64"]),
        (vec!["Calculator.sleep", "ms=-1"], vec!["`ms`", "u64"]),
        (
            vec!["Calculator.nope"],
            vec!["no method `Calculator.nope`", "Calculator.add"],
        ),
        (
            vec!["Calculator.ticks", "1", "2"],
            vec!["is a stream", "wirecall subscribe"],
        ),
    ] {
        let mut argv = vec!["call", url.as_str()];
        argv.extend(args.iter().copied());
        let (code, out, err) = wirecall(&argv).await;
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        for w in words {
            assert!(err.contains(w), "{args:?}: `{w}` not in {err}");
        }
    }
    assert_eq!(calc.calls(), 0, "nothing was sent");
    // Usage and connection errors exit 2 as well.
    let (code, _, err) = wirecall(&["call", "ws://127.0.0.1:1", "Calculator.add"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    let (code, _, err) = wirecall(&["call", &url, "Calculator.add", "--timeout", "soon"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a duration"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_description_values_are_json_or_strings() {
    // A server without `rpc.discover`.
    let calc = CalcServer::default();
    let server = Server::bind("127.0.0.1:0", calc.clone().into_router())
        .await
        .unwrap();
    let (code, out, err) = wirecall(&["call", &server.url(), "Calculator.add", "a=1", "b=2"]).await;
    assert_eq!((code, out.as_str()), (0, "3\n"), "{err}");
    let (code, out, _) = wirecall(&["call", &server.url(), "Calculator.echo", "text=hello"]).await;
    assert_eq!((code, out.as_str()), (0, "\"hello\"\n"));
    // The server then judges the types: -32602, exit 1.
    let (code, _, err) = wirecall(&["call", &server.url(), "Calculator.add", "a=x", "b=2"]).await;
    assert_eq!(code, 1, "{err}");
    // --idl types them here instead.
    let (code, _, err) = wirecall(&[
        "call",
        &server.url(),
        "Calculator.add",
        "a=x",
        "b=2",
        "--idl",
        "examples/idl/calculator.wire",
    ])
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("i64"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribe_prints_items_as_lines() {
    let (server, calc) = calculator(Server::builder()).await;
    let (code, out, err) = wirecall(&[
        "subscribe",
        &server.url(),
        "Calculator.ticks",
        "count=3",
        "every_ms=10",
    ])
    .await;
    assert_eq!((code, out.as_str()), (0, "0\n1\n2\n"), "{err}");
    // --count stops early and unsubscribes.
    let (code, out, err) = wirecall(&[
        "subscribe",
        &server.http_url(),
        "Calculator.ticks",
        "1000",
        "5",
        "--count",
        "2",
    ])
    .await;
    assert_eq!((code, out.as_str()), (0, "0\n1\n"), "{err}");
    let stopped = async {
        while calc.active_ticks() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("the stream is stopped");
    let (code, _, err) = wirecall(&["subscribe", &server.url(), "Calculator.add", "1", "2"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("not a stream"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_prints_wire_text_that_checks() {
    let (server, _) = calculator(Server::builder()).await;
    let (code, out, err) = wirecall(&["discover", &server.url()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rpc add(a: i64, b: i64) -> i64;"), "{out}");
    assert!(
        out.contains("rpc divide(a: f64, b: f64) -> f64 throws CalcError;"),
        "{out}"
    );
    assert!(out.contains("DivideByZero = 1001,"), "{out}");
    assert!(
        out.contains("stream ticks(count: u32, every_ms: u32) -> u64;"),
        "{out}"
    );
    assert!(out.contains("    /// The sum of `a` and `b`.\n"), "{out}");
    assert!(out.contains("    client {\n"), "{out}");
    let dir = std::env::temp_dir().join(format!("wirecall-discover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("discovered.wire");
    std::fs::write(&file, &out).unwrap();
    let (code, checked, err) = wirecall(&["check", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(checked.contains("1 service, 2 types"), "{checked}");
    // The document itself.
    let (code, out, _) = wirecall(&["discover", &server.url(), "--json"]).await;
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["info"]["title"], "calculator");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_keeps_topics_attributes_and_field_order() {
    use wirecall_examples::chat::{Chat, OPENRPC_DOCUMENT as CHAT_DOCUMENT};
    let mut router = wirecall_examples::chat::ChatServer::default().into_router();
    router.discover(CHAT_DOCUMENT).unwrap();
    let server = Server::bind("127.0.0.1:0", router).await.unwrap();
    let (code, out, err) = wirecall(&["discover", &server.url()]).await;
    assert_eq!(code, 0, "{err}");
    // A topic stays a topic, with its attribute; a stream stays a stream.
    assert!(
        out.contains("    @publishable\n    topic room(room: string) -> Message;\n"),
        "{out}"
    );
    assert!(
        out.contains("stream messages(room: string) -> Message throws ChatError;"),
        "{out}"
    );
    // Fields in declared order (room, from, text), not alphabetical.
    let fields: Vec<&str> = out
        .split("struct Message {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().split_once(':').map(|(name, _)| name))
        .collect();
    assert_eq!(fields, ["room", "from", "text"], "{out}");
    // And the text is a valid interface again.
    let file = std::env::temp_dir().join(format!("wirecall-chat-{}.wire", std::process::id()));
    std::fs::write(&file, &out).unwrap();
    let (code, _, err) = wirecall(&["check", file.to_str().unwrap()]).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, 0, "{err}\n{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_and_tokens() {
    let certs = wirecall_tests::tls::Certs::new();
    let (server, _) = calculator(
        Server::builder()
            .tls_pem(certs.cert(), certs.key())
            .unwrap()
            .authenticate(|h| async move {
                match h.bearer_token() {
                    Some("s3cret") => Ok(Identity::new("cli".to_string())),
                    Some(_) => Err(Refusal::forbidden("wrong token")),
                    None => Err(Refusal::unauthorized("a token is required")),
                }
            }),
    )
    .await;
    let port = server.local_addr().port();
    let ca = certs.ca();
    for url in [
        format!("wss://localhost:{port}"),
        format!("https://localhost:{port}"),
    ] {
        let (code, out, err) = wirecall(&[
            "call",
            &url,
            "Calculator.add",
            "a=1",
            "b=2",
            "--token",
            "s3cret",
            "--ca",
            ca.to_str().unwrap(),
        ])
        .await;
        assert_eq!((code, out.as_str()), (0, "3\n"), "{url}: {err}");
        let (code, _, err) = wirecall(&[
            "call",
            &url,
            "Calculator.add",
            "a=1",
            "b=2",
            "--header",
            "authorization: Bearer nope",
            "--ca",
            ca.to_str().unwrap(),
        ])
        .await;
        assert_eq!(code, 2, "{url}: {err}");
        assert!(err.contains("403"), "{url}: {err}");
    }
    // Without the CA: a certificate error, exit 2.
    let (code, _, err) = wirecall(&[
        "call",
        &format!("wss://localhost:{port}"),
        "Calculator.add",
        "1",
        "2",
    ])
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("certificate"), "{err}");
}
