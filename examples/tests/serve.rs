//! `calculator serve` as deployed: TLS from PEM files, a required token, Prometheus
//! metrics on their own port — driven as a user would, through the binary's flags.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use wirecall::{
    client::{ConnectError, Reconnect},
    Client,
};
use wirecall_examples::calculator::CalculatorClient;
use wirecall_tests::http::{get, prometheus_sample};
use wirecall_tests::tls::Certs;

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn serve_with_tls_a_token_and_metrics() {
    let certs = Certs::new();
    let metrics_addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_calculator"))
        .arg("serve")
        .arg("127.0.0.1:0")
        .arg("--tls-cert")
        .arg(certs.cert())
        .arg("--tls-key")
        .arg(certs.key())
        .args(["--token", "s3cret", "--metrics", &metrics_addr.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _server = Running(child);
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("listening on ") {
            url = Some(u.to_string());
            break;
        }
    }
    let url = url.expect("the server prints its URL");
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let url = url.replace("127.0.0.1", "localhost");

    // Without the token: refused with 401, and not retried.
    let err = Client::builder()
        .tls_root_pem(certs.ca())
        .unwrap()
        .reconnect(Reconnect::disabled())
        .connect(&url)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::Refused { status: 401, .. }),
        "{err:?}"
    );
    // With it, over wss:// and https://, the caller shows in `stats`.
    for url in [url.clone(), url.replace("wss://", "https://")] {
        let calc = CalculatorClient::new(
            Client::builder()
                .tls_root_pem(certs.ca())
                .unwrap()
                .token("s3cret")
                .connect(&url)
                .await
                .unwrap(),
        );
        assert_eq!(calc.add(1, 2).await.unwrap(), 3);
        let stats = calc.stats().await.unwrap();
        assert_eq!(stats.caller.as_deref(), Some("token holder"), "{url}");
    }

    // The metrics endpoint counts those calls, and the refusal.
    let (status, _, text) = get(metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    let sample = |name: &str, labels: &str| prometheus_sample(&text, name, labels);
    assert_eq!(
        sample(
            "wirecall_calls_total",
            r#"method="Calculator.add",outcome="ok""#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            "wirecall_handshakes_refused_total",
            r#"reason="unauthorized""#
        ),
        Some(1.0),
        "{text}"
    );
}
