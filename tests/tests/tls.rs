//! TLS on every door with certificates made at test time: the Rust client over `wss://`
//! and `https://` (POST and server-sent events), a client that does not trust the CA
//! refused with a clear error, and Python's `websockets` with an `ssl` context.

use std::time::Duration;

use futures_util::StreamExt;
use wirecall::{
    client::{ConnectError, Reconnect},
    server::ServerHandle,
    Client, Server,
};
use wirecall_examples::calculator::{Calculator, CalculatorClient};
use wirecall_examples::CalcServer;
use wirecall_tests::tls::Certs;

async fn tls_server(certs: &Certs) -> ServerHandle {
    Server::builder()
        .tls_pem(certs.cert(), certs.key())
        .expect("the test certificate loads")
        .bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap()
}

#[tokio::test]
async fn rust_client_over_wss_and_https() {
    let certs = Certs::new();
    let server = tls_server(&certs).await;
    assert!(server.url().starts_with("wss://"), "{}", server.url());
    assert!(server.http_url().starts_with("https://"));
    let port = server.local_addr().port();
    for url in [
        format!("wss://localhost:{port}"),
        format!("wss://127.0.0.1:{port}"),
        format!("https://localhost:{port}"),
    ] {
        let client = Client::builder()
            .tls_root_pem(certs.ca())
            .unwrap()
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let calc = CalculatorClient::new(client);
        assert_eq!(calc.add(40, 2).await.unwrap(), 42, "{url}");
        // A stream: WebSocket notifications, or server-sent events over HTTPS.
        let items: Vec<u64> = calc
            .ticks(3, 1)
            .await
            .unwrap()
            .map(|i| i.unwrap())
            .collect()
            .await;
        assert_eq!(items, [0, 1, 2], "{url}");
    }
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_refused_clearly() {
    let certs = Certs::new();
    let server = tls_server(&certs).await;
    let port = server.local_addr().port();
    for url in [
        format!("wss://localhost:{port}"),
        format!("https://localhost:{port}"),
    ] {
        // The default roots (webpki) do not include the test CA.
        let err = Client::builder()
            .reconnect(Reconnect::disabled())
            .connect(&url)
            .await
            .expect_err("an unknown CA must not verify");
        match &err {
            ConnectError::Tls { reason, .. } => {
                assert!(reason.contains("UnknownIssuer"), "{url}: {reason}");
                assert!(reason.contains("certificate"), "{url}: {reason}");
            }
            other => panic!("{url}: expected a TLS error, got {other:?}"),
        }
        assert!(!err.is_retryable(), "waiting does not fix a certificate");
    }
    // Trusting another CA is no better.
    let other = Certs::new();
    let err = Client::builder()
        .tls_root_pem(other.ca())
        .unwrap()
        .connect(&format!("wss://localhost:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Tls { .. }), "{err:?}");
    // The server is unharmed.
    let calc = CalculatorClient::new(
        Client::builder()
            .tls_root_pem(certs.ca())
            .unwrap()
            .connect(&server.url())
            .await
            .unwrap(),
    );
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
}

#[tokio::test]
async fn plaintext_to_a_tls_port_and_bad_pem_files_fail_clearly() {
    let certs = Certs::new();
    let server = tls_server(&certs).await;
    let port = server.local_addr().port();
    // ws:// against a TLS port: the server sees no TLS hello and hangs up.
    let err = Client::builder()
        .reconnect(Reconnect::disabled())
        .handshake_timeout(Duration::from_secs(5))
        .connect(&format!("ws://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::Io { .. } | ConnectError::Timeout { .. }),
        "{err:?}"
    );
    // A key file given as the certificate, and a missing file.
    let err = Server::builder()
        .tls_pem(certs.key(), certs.key())
        .unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
    let err = Server::builder()
        .tls_pem(certs.cert(), certs.ca().with_file_name("missing.pem"))
        .unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
    let err = Client::builder()
        .tls_root_pem("/nonexistent/ca.pem")
        .unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

/// Debian's python3 with python3-websockets (`.ci/run` installs it), else any `python3`
/// that has the module.
fn python_with_websockets() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|py| {
        std::process::Command::new(py)
            .args(["-c", "import websockets"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

const PYTHON_CLIENT: &str = r#"
import asyncio, json, ssl, sys
import websockets

async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    async with websockets.connect(sys.argv[1], ssl=ctx, subprotocols=["jsonrpc-2.0"]) as ws:
        assert ws.subprotocol == "jsonrpc-2.0", ws.subprotocol
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "Calculator.add", "params": {"a": 2, "b": 3}, "id": 1}))
        print(await ws.recv())
    # Without the CA: the handshake must fail on the certificate.
    try:
        async with websockets.connect(sys.argv[1], ssl=ssl.create_default_context()):
            print("UNEXPECTED: connected without the CA")
    except ssl.SSLCertVerificationError as e:
        print("refused:", e.reason)

asyncio.run(main())
"#;

#[tokio::test]
async fn python_websockets_over_wss() {
    let Some(python) = python_with_websockets() else {
        eprintln!(
            "SKIPPED python_websockets_over_wss: no python3 with the `websockets` module \
             (Debian: apt-get install python3-websockets; .ci/run installs it)"
        );
        return;
    };
    let certs = Certs::new();
    let server = tls_server(&certs).await;
    let url = format!("wss://localhost:{}", server.local_addr().port());
    let out = tokio::process::Command::new(python)
        .args(["-c", PYTHON_CLIENT, &url])
        .arg(certs.ca())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some(r#"{"jsonrpc":"2.0","result":5,"id":1}"#));
    assert_eq!(lines.next(), Some("refused: CERTIFICATE_VERIFY_FAILED"));
}
