//! Client resilience under injected faults: reconnect, resubscribe, safe retry,
//! keep-alive, failover. The faults come from an in-process TCP proxy
//! (`wirecall_tests::proxy`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wirecall::{
    client::ConnectionState, client::Reconnect, server::ServerHandle, Client, Context, Error,
    Fault, Server,
};
use wirecall_examples::calculator::{Calculator, CalculatorCallbacks, CalculatorClient};
use wirecall_examples::CalcServer;
use wirecall_tests::proxy::Proxy;

/// A service that counts how often each call ran.
#[allow(unreachable_pub)]
mod ledger {
    /// Counts executions.
    #[wirecall::service]
    pub trait Ledger {
        /// Not idempotent: records `key` once per execution; returns `key * 2`.
        async fn record(key: u64, hold_ms: u64) -> u64;
        /// Idempotent: returns `key * 3`, counting executions too.
        #[wirecall(idempotent)]
        async fn fetch(key: u64, hold_ms: u64) -> u64;
    }
}
use ledger::{Ledger, LedgerClient};

#[derive(Clone, Default)]
struct Counts {
    record: Arc<Mutex<HashMap<u64, u32>>>,
    fetch: Arc<Mutex<HashMap<u64, u32>>>,
}

impl Counts {
    fn record_count(&self, key: u64) -> u32 {
        self.record.lock().unwrap().get(&key).copied().unwrap_or(0)
    }
}

impl Ledger for Counts {
    async fn record(&self, _ctx: Context, key: u64, hold_ms: u64) -> Result<u64, Fault> {
        *self.record.lock().unwrap().entry(key).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
        Ok(key * 2)
    }

    async fn fetch(&self, _ctx: Context, key: u64, hold_ms: u64) -> Result<u64, Fault> {
        *self.fetch.lock().unwrap().entry(key).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
        Ok(key * 3)
    }
}

fn fast_reconnect() -> Reconnect {
    Reconnect {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        ..Reconnect::default()
    }
}

async fn ledger() -> (Counts, ServerHandle, Proxy) {
    let counts = Counts::default();
    let server = Server::bind("127.0.0.1:0", counts.clone().into_router())
        .await
        .unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    (counts, server, proxy)
}

async fn wait_state(client: &Client, what: &str, pred: impl Fn(&ConnectionState) -> bool) {
    let mut state = client.state();
    let wait = async {
        loop {
            if pred(&state.borrow_and_update()) {
                return;
            }
            state.changed().await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for the client to be {what}"));
}

fn connected(s: &ConnectionState) -> bool {
    matches!(s, ConnectionState::Connected { .. })
}

fn reconnecting(s: &ConnectionState) -> bool {
    matches!(s, ConnectionState::Reconnecting { .. })
}

#[tokio::test]
async fn drop_mid_call_fails_a_non_idempotent_call_and_resends_an_idempotent_one() {
    let (counts, _server, proxy) = ledger().await;
    let client = Client::builder()
        .reconnect(fast_reconnect())
        .connect(&proxy.url())
        .await
        .unwrap();
    let ledger = LedgerClient::new(client.clone());

    // Non-idempotent: the server starts it, the connection drops, the call fails.
    let call = tokio::spawn({
        let ledger = ledger.clone();
        async move { ledger.record(7, 300).await }
    });
    for _ in 0..200 {
        if counts.record_count(7) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proxy.drop_all();
    let err = call.await.unwrap().unwrap_err();
    assert!(err.is_disconnected(), "{err}");
    wait_state(&client, "connected again", connected).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(counts.record_count(7), 1, "ran at most once");

    // Idempotent: in flight at the drop, sent again after the reconnect, succeeds.
    let call = tokio::spawn({
        let ledger = ledger.clone();
        async move { ledger.fetch(5, 300).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.drop_all();
    assert_eq!(call.await.unwrap().unwrap(), 15);
    assert_eq!(
        counts.fetch.lock().unwrap()[&5],
        2,
        "it ran again on the new connection"
    );
}

#[tokio::test]
async fn calls_made_while_disconnected_wait_for_the_connection() {
    let (_counts, _server, proxy) = ledger().await;
    let client = Client::builder()
        .reconnect(fast_reconnect())
        .connect(&proxy.url())
        .await
        .unwrap();
    let ledger = LedgerClient::new(client.clone());
    proxy.refuse(true);
    proxy.drop_all();
    wait_state(&client, "reconnecting", reconnecting).await;
    // Not even idempotent: never sent before the reconnect, so it is safe to wait.
    let call = tokio::spawn({
        let ledger = ledger.clone();
        async move { ledger.record(1, 0).await }
    });
    // Several attempts fail while the proxy refuses.
    wait_state(
        &client,
        "retrying",
        |s| matches!(s, ConnectionState::Reconnecting { attempt, .. } if *attempt >= 3),
    )
    .await;
    proxy.refuse(false);
    assert_eq!(call.await.unwrap().unwrap(), 2);
    // A call whose timeout passes while disconnected fails with Timeout.
    proxy.refuse(true);
    proxy.drop_all();
    wait_state(&client, "reconnecting", reconnecting).await;
    let err = ledger
        .with_timeout(Duration::from_millis(200))
        .record(2, 0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(d) if d == Duration::from_millis(200)),
        "{err}"
    );
    proxy.refuse(false);
}

#[tokio::test]
async fn a_stall_is_detected_by_keepalive_and_the_client_reconnects() {
    let (_counts, _server, proxy) = ledger().await;
    let client = Client::builder()
        .reconnect(fast_reconnect())
        .ping(Some(Duration::from_millis(100)), 2)
        .connect(&proxy.url())
        .await
        .unwrap();
    let ledger = LedgerClient::new(client.clone());
    assert_eq!(ledger.fetch(1, 0).await.unwrap(), 3);
    proxy.stall(true);
    let started = tokio::time::Instant::now();
    wait_state(&client, "reconnecting", reconnecting).await;
    let detected = started.elapsed();
    // Detected after about interval × (missed + 1), not much later.
    assert!(
        detected >= Duration::from_millis(150) && detected < Duration::from_secs(2),
        "{detected:?}"
    );
    proxy.stall(false);
    wait_state(&client, "connected", connected).await;
    assert_eq!(ledger.fetch(2, 0).await.unwrap(), 6);
}

#[tokio::test]
async fn a_frame_cut_in_half_is_survived() {
    let (_counts, _server, proxy) = ledger().await;
    let client = Client::builder()
        .reconnect(fast_reconnect())
        .connect(&proxy.url())
        .await
        .unwrap();
    let ledger = LedgerClient::new(client.clone());
    proxy.cut_next_chunk();
    // The idempotent call's request (or its answer) is cut; it is sent again.
    assert_eq!(ledger.fetch(4, 0).await.unwrap(), 12);
    assert!(proxy.accepted() >= 2, "a new connection was made");
}

#[tokio::test]
async fn the_stream_resumes_after_the_server_restarts() {
    let first = Server::bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let addr = first.local_addr();
    let client = Client::builder()
        .reconnect(fast_reconnect())
        .connect(&first.url())
        .await
        .unwrap();
    let calc = CalculatorClient::new(client.clone());
    let mut ticks = calc.ticks(1_000_000, 5).await.unwrap();
    for expected in 0..3 {
        assert_eq!(ticks.next().await.unwrap().unwrap(), expected);
    }
    first.shutdown().await;
    // The same address again (a restart).
    let mut second = None;
    for _ in 0..100 {
        match Server::bind(addr, CalcServer::default().into_router()).await {
            Ok(s) => {
                second = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let _second = second.expect("rebind the address");
    // The subscription carries on: a fresh stream on the new server, from 0.
    let mut resumed = Vec::new();
    while resumed.len() < 5 {
        let item = tokio::time::timeout(Duration::from_secs(10), ticks.next())
            .await
            .expect("items after the restart")
            .expect("the subscription is still open");
        resumed.push(item.expect("an item, not an error"));
    }
    assert!(resumed.contains(&0), "resubscribed: {resumed:?}");
}

struct Yes;

impl CalculatorCallbacks for Yes {
    async fn confirm(&self, _ctx: Context, _question: String) -> Result<bool, Fault> {
        Ok(true)
    }
}

#[tokio::test]
async fn graceful_shutdown_moves_clients_to_the_next_server() {
    let one = Server::bind("127.0.0.1:0", CalcServer::default().into_router())
        .await
        .unwrap();
    let two_state = CalcServer::default();
    let two = Server::bind("127.0.0.1:0", two_state.clone().into_router())
        .await
        .unwrap();
    let client = Client::builder()
        .reconnect(fast_reconnect())
        .router(Yes.into_router())
        .connect_any([one.url(), two.url()])
        .await
        .unwrap();
    let calc = CalculatorClient::new(client.clone());
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
    assert!(
        matches!(&*client.state().borrow(), ConnectionState::Connected { url } if *url == one.url())
    );
    one.shutdown().await;
    wait_state(
        &client,
        "connected to server 2",
        |s| matches!(s, ConnectionState::Connected { url } if *url == two.url()),
    )
    .await;
    assert_eq!(calc.add(2, 2).await.unwrap(), 4);
    // The client's own handlers are still registered on the new connection.
    assert!(calc.ask("still there?".into()).await.unwrap());
    assert!(two_state.active_ticks() == 0);
}

#[tokio::test]
async fn giving_up_closes_the_client() {
    let (_counts, _server, proxy) = ledger().await;
    let client = Client::builder()
        .reconnect(Reconnect {
            max_attempts: Some(3),
            ..fast_reconnect()
        })
        .connect(&proxy.url())
        .await
        .unwrap();
    proxy.refuse(true);
    proxy.drop_all();
    let reason = tokio::time::timeout(Duration::from_secs(10), client.closed())
        .await
        .unwrap();
    assert!(
        reason
            .to_string()
            .contains("gave up reconnecting after 3 attempts"),
        "{reason}"
    );
    assert!(client.is_closed());
    let err = LedgerClient::new(client).fetch(1, 0).await.unwrap_err();
    assert!(err.is_disconnected(), "{err}");
}

#[tokio::test]
async fn backoff_grows_exponentially_with_jitter_up_to_the_cap() {
    let r = Reconnect::default();
    for attempt in 1..=20u32 {
        let full = Duration::from_millis(100)
            .saturating_mul(1 << (attempt - 1).min(20))
            .min(Duration::from_secs(30));
        let d = r.backoff(attempt);
        assert_eq!(r.ceiling(attempt), full);
        assert!(d <= full, "attempt {attempt}: {d:?} not in [0, {full:?}]");
    }
    let exact = Reconnect {
        jitter: false,
        ..Reconnect::default()
    };
    assert_eq!(exact.backoff(1), Duration::from_millis(100));
    assert_eq!(exact.backoff(4), Duration::from_millis(800));
    assert_eq!(exact.backoff(40), Duration::from_secs(30));
}

/// 10 000 calls from 8 tasks while the proxy drops every connection at random moments:
/// every call ends exactly once, with the right result or a clear error; no idempotent
/// call is lost; no non-idempotent call runs twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariants_hold_under_random_drops() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (counts, _server, proxy) = ledger().await;
    let client = Client::builder()
        .reconnect(fast_reconnect())
        .call_timeout(Duration::from_secs(30))
        .connect(&proxy.url())
        .await
        .unwrap();
    let ledger = LedgerClient::new(client);
    let proxy = Arc::new(proxy);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drops = Arc::new(AtomicU64::new(0));
    let chaos = tokio::spawn({
        let (proxy, done, drops) = (proxy.clone(), done.clone(), drops.clone());
        async move {
            while !done.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5 + fastrand::u64(0..40))).await;
                proxy.drop_all();
                drops.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    const TASKS: u64 = 8;
    const PER_TASK: u64 = 1_250;
    let workers: Vec<_> = (0..TASKS)
        .map(|t| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::with_capacity(PER_TASK as usize);
                for i in 0..PER_TASK {
                    let key = t * PER_TASK + i;
                    let idempotent = key.is_multiple_of(2);
                    let outcome = if idempotent {
                        (key, true, ledger.fetch(key, 0).await.map(|v| v == key * 3))
                    } else {
                        (
                            key,
                            false,
                            ledger.record(key, 0).await.map(|v| v == key * 2),
                        )
                    };
                    outcomes.push(outcome);
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for w in workers {
        outcomes.extend(
            tokio::time::timeout(Duration::from_secs(120), w)
                .await
                .expect("no call hangs")
                .unwrap(),
        );
    }
    done.store(true, Ordering::SeqCst);
    chaos.await.unwrap();

    assert_eq!(
        outcomes.len(),
        (TASKS * PER_TASK) as usize,
        "every call ended exactly once"
    );
    let mut failed_records = 0;
    for (key, idempotent, outcome) in &outcomes {
        match (idempotent, outcome) {
            (_, Ok(correct)) => assert!(correct, "wrong result for key {key}"),
            (true, Err(e)) => panic!("idempotent call {key} was lost: {e}"),
            (false, Err(e)) => {
                assert!(e.is_disconnected(), "key {key}: unclear error {e}");
                failed_records += 1;
            }
        }
    }
    let records = counts.record.lock().unwrap();
    for (key, idempotent, outcome) in &outcomes {
        if !idempotent {
            let ran = records.get(key).copied().unwrap_or(0);
            assert!(ran <= 1, "non-idempotent call {key} ran {ran} times");
            if outcome.is_ok() {
                assert_eq!(ran, 1, "call {key} succeeded without running");
            }
        }
    }
    println!(
        "{} calls, {} connection drops, {failed_records} non-idempotent calls failed with Disconnected",
        outcomes.len(),
        drops.load(Ordering::SeqCst)
    );
    assert!(
        drops.load(Ordering::SeqCst) > 3,
        "the proxy did drop connections"
    );
}
