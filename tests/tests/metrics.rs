//! Metrics: the `web` example with a Prometheus recorder serves `/metrics`, and the
//! counters move with the calls made through every door. (One test: the recorder is
//! global to the process.)

use std::time::Duration;

use wirecall::Client;
use wirecall_examples::calculator::CalculatorClient;
use wirecall_examples::CalcServer;
use wirecall_tests::http::{get, prometheus_sample, HttpConn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_example_exports_moving_counters() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test binary");
    let (app, _rpc) = wirecall_examples::web::app(CalcServer::default(), Some(handle));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let scrape = || async move {
        let (status, content_type, text) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        text
    };
    let sample =
        |text: &str, name: &str, labels: &str| prometheus_sample(text, name, labels).unwrap_or(0.0);
    const ADD_OK: &str = r#"method="Calculator.add",outcome="ok""#;

    let client = Client::connect(&format!("ws://{addr}/rpc")).await.unwrap();
    let calc = CalculatorClient::new(client.clone());
    for i in 0..3 {
        assert_eq!(calc.add(i, 1).await.unwrap(), i + 1);
    }
    assert!(calc.divide(1.0, 0.0).await.is_err());
    let mut ticks = calc.ticks(1_000, 10).await.unwrap();
    ticks.next().await.unwrap().unwrap();
    let mut http = HttpConn::connect(addr).await.at("/rpc");
    let answer = http
        .post(r#"{"jsonrpc":"2.0","method":"Calculator.add","params":[1,2],"id":1}"#)
        .await;
    assert_eq!(answer.status, 200);

    let first = scrape().await;
    assert_eq!(
        sample(&first, "wirecall_calls_total", ADD_OK),
        4.0,
        "{first}"
    );
    assert_eq!(
        sample(
            &first,
            "wirecall_calls_total",
            r#"method="Calculator.divide",outcome="error""#
        ),
        1.0
    );
    assert_eq!(
        sample(&first, "wirecall_connections", r#"door="websocket""#),
        1.0
    );
    assert_eq!(sample(&first, "wirecall_subscriptions", ""), 1.0);
    assert_eq!(sample(&first, "wirecall_http_requests_total", ""), 1.0);
    assert!(
        sample(
            &first,
            "wirecall_received_bytes_total",
            r#"door="websocket""#
        ) > 0.0
    );
    assert!(sample(&first, "wirecall_sent_bytes_total", r#"door="websocket""#) > 0.0);
    assert!(
        sample(
            &first,
            "wirecall_call_duration_seconds_count",
            r#"method="Calculator.add""#
        ) >= 4.0
            || first
                .contains(r#"wirecall_call_duration_seconds{method="Calculator.add",quantile="#),
        "{first}"
    );

    // More calls, a cancellation, a refused origin: the counters move.
    for i in 0..5 {
        calc.add(i, i).await.unwrap();
    }
    drop(ticks);
    let sleeping = tokio::spawn({
        let calc = calc.clone();
        async move { calc.sleep(10_000).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sleeping.abort(); // the client cancels the call
    let refused = HttpConn::connect(addr)
        .await
        .at("/rpc")
        .send(
            "POST",
            &[
                ("content-type", "application/json"),
                ("origin", "https://evil.example"),
            ],
            "{}",
        )
        .await;
    assert_eq!(refused.status, 403);
    client.close().await;
    let moved = |last: &str| {
        sample(last, "wirecall_calls_total", ADD_OK) == 9.0
            && sample(
                last,
                "wirecall_calls_total",
                r#"method="Calculator.sleep",outcome="cancelled""#,
            ) == 1.0
            && sample(last, "wirecall_subscriptions", "") == 0.0
            && sample(last, "wirecall_connections", r#"door="websocket""#) == 0.0
            && sample(last, "wirecall_calls_in_flight", "") == 0.0
            && sample(
                last,
                "wirecall_handshakes_refused_total",
                r#"reason="origin""#,
            ) == 1.0
    };
    let mut last = scrape().await;
    for _ in 0..100 {
        if moved(&last) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = scrape().await;
    }
    panic!("the counters did not move as expected:\n{last}");
}
