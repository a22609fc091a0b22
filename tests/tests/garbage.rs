//! A bad peer never takes the server down: thousands of mutated and random frames on one
//! connection, then the server still answers — on that connection and on others.

use std::time::Duration;

use wirecall_tests::{serve, spec_router, RawWs};

const SEEDS: &[&str] = &[
    r#"{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}"#,
    r#"{"jsonrpc":"2.0","method":"subtract","params":{"minuend":1,"subtrahend":2},"id":"x"}"#,
    r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"notify_hello"}]"#,
    r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#,
    r#"{"jsonrpc":"2.0","result":{"subscription":1},"id":9}"#,
    r#"{"jsonrpc":"2.0","method":"x.unsubscribe","params":[1],"id":2}"#,
];

fn mutate(rng: &mut fastrand::Rng, seed: &str) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..rng.usize(1..6) {
        let at = rng.usize(0..=bytes.len());
        match rng.u8(0..5) {
            0 if !bytes.is_empty() => {
                let end = (at + rng.usize(1..8)).min(bytes.len());
                bytes.drain(at.min(bytes.len())..end);
            }
            1 => bytes.insert(at, b"{}[]\",:0-e.\\nul"[rng.usize(0..15)]),
            2 => bytes.insert(at, rng.u8(..)),
            3 => bytes.truncate(at),
            _ => {
                let piece = SEEDS[rng.usize(0..SEEDS.len())];
                bytes.splice(at..at, piece.bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn thousands_of_bad_frames_never_break_the_server() {
    let server = serve(spec_router()).await;
    let mut bad = RawWs::connect(&server.url()).await;
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..3_000 {
        let frame = if i % 10 == 0 {
            (0..rng.usize(0..64)).map(|_| rng.char(..)).collect()
        } else {
            mutate(&mut rng, SEEDS[i % SEEDS.len()])
        };
        bad.send(&frame).await;
    }
    // Drain whatever was answered, then the connection must still work.
    let probe = r#"{"jsonrpc":"2.0","method":"subtract","params":[2,1],"id":"probe"}"#;
    bad.send(probe).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer to the probe"
        );
        let text = bad.recv().await;
        // Every answer is a JSON-RPC response (or batch of them).
        let value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        if value.get("id") == Some(&serde_json::json!("probe")) {
            assert_eq!(value["result"], 1);
            break;
        }
    }
    // And another connection was never disturbed.
    let mut good = RawWs::connect(&server.url()).await;
    assert_eq!(
        good.roundtrip(probe).await,
        r#"{"jsonrpc":"2.0","result":1,"id":"probe"}"#
    );
}
