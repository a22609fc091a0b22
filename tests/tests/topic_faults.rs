//! Topics under faults (issue #31): a TCP proxy between each node and Redis that freezes,
//! resets and delays; Redis `CLIENT PAUSE`, `CLIENT KILL`, `DEL` of single keys, a restart
//! without data; a memory hub that restarts; two deployments on two databases of one
//! Redis. For every scenario, every subscriber's sequence is checked against what was
//! published: every item exactly once and in order, or an announced gap covering exactly
//! what is missing (`topic_check::check`).
//!
//! Real `redis-server` (Debian package; without it the Redis tests say SKIPPED), nodes
//! in-process (a chat server each, its hub reaching Redis through a proxy of its own), typed
//! Rust clients that reconnect by themselves.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use wirecall::hub::{HistoryLimits, RedisOptions};
use wirecall::{hub::Hub, server::ServerHandle, Server};
use wirecall_examples::chat::{Chat, ChatServer, ChatTopics};
use wirecall_tests::proxy::Proxy;
use wirecall_tests::services::{require, Redis};
use wirecall_tests::RawWs;

mod topic_check;
use topic_check::{check, Gaps, Outcome, Published, Seen, Subscriber, ROOM};

fn redis_server(test: &str) -> Option<Redis> {
    let found = require(test, &["redis-server"])?;
    Some(Redis::start(&found[0]))
}

/// Options that notice a dead connection within about a second.
fn quick() -> RedisOptions {
    RedisOptions::default()
        .timeout(Duration::from_millis(500))
        .ping_interval(Duration::from_millis(200))
        .history(HistoryLimits {
            max_items: 10_000,
            max_age: Duration::from_secs(3600),
        })
}

/// A node: a chat server whose hub reaches Redis (database `db`) through a proxy.
struct Node {
    proxy: Proxy,
    hub: Hub,
    server: ServerHandle,
}

impl Node {
    async fn start(redis: SocketAddr, db: u32, options: RedisOptions) -> Node {
        let proxy = Proxy::start(redis).await;
        let hub = Hub::redis_with(&format!("redis://{}/{db}", proxy.addr()), options)
            .await
            .expect("the hub connects");
        let server = serve(hub.clone()).await;
        Node { proxy, hub, server }
    }
}

async fn serve(hub: Hub) -> ServerHandle {
    Server::builder()
        .hub(hub)
        .bind("127.0.0.1:0", ChatServer::default().into_router())
        .await
        .unwrap()
}

/// Two nodes on one Redis; `subscribers` typed clients on node A, each through a proxy.
async fn two_nodes(redis: &Redis, options: RedisOptions) -> (Node, Node) {
    (
        Node::start(redis.addr(), 0, options.clone()).await,
        Node::start(redis.addr(), 0, options).await,
    )
}

async fn subscribers(node: &Node, n: usize) -> Vec<Subscriber> {
    let mut subs = Vec::new();
    for _ in 0..n {
        subs.push(Subscriber::start(node.server.local_addr()).await);
    }
    subs
}

async fn check_all(subs: &[Subscriber], published: &Published, gaps: Gaps) {
    let last = format!("{}{}", published.tag, published.last_known());
    for (n, sub) in subs.iter().enumerate() {
        let seen = sub.until(&last).await;
        check(&format!("subscriber {n}"), &seen, published, gaps);
    }
}

/// Issue #31 item 2: node A's connections to Redis freeze (no close, no error: a partition,
/// a NAT that forgot them). Its PINGs go unanswered, it rebuilds both connections, and its
/// subscribers get everything published meanwhile from history, without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_connections_to_redis_are_noticed_and_nothing_is_lost() {
    let Some(redis) = redis_server("frozen_connections_to_redis_are_noticed_and_nothing_is_lost")
    else {
        return;
    };
    let (a, b) = two_nodes(&redis, quick()).await;
    let subs = subscribers(&a, 3).await;
    let mut published = Published::new("m");
    for i in 1..=60 {
        if i == 20 {
            a.proxy.freeze_open_connections();
        }
        published.publish(&b.hub, i).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(published.count(|o| !matches!(o, Outcome::At(_))), 0);
    check_all(&subs, &published, Gaps::None).await;
    // And node A publishes again.
    let mut more = published.clone();
    more.publish(&a.hub, 61).await;
    assert!(
        matches!(more.outcomes.last().unwrap().1, Outcome::At(_)),
        "{more:?}"
    );
    check_all(&subs, &more, Gaps::None).await;
}

/// Issue #31: connections reset (RST) and delayed lose nothing; the first command after a
/// reset (a broken pipe) is tried again on a new connection instead of failing, so every
/// publication succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_and_delayed_connections_lose_nothing_and_publishing_goes_on() {
    let Some(redis) =
        redis_server("reset_and_delayed_connections_lose_nothing_and_publishing_goes_on")
    else {
        return;
    };
    // Long pings: the publication itself meets the dead connection first.
    let options = quick().ping_interval(Duration::from_secs(60));
    let (a, b) = two_nodes(&redis, options).await;
    let subs = subscribers(&a, 2).await;
    let subs_b = subscribers(&b, 2).await;
    let mut published = Published::new("m");
    for i in 1..=80 {
        match i {
            20 | 50 => a.proxy.reset_all(),
            30 => a.proxy.delay(Duration::from_millis(30)),
            40 => a.proxy.delay(Duration::ZERO),
            _ => {}
        }
        published.publish(&a.hub, i).await;
    }
    let failed: Vec<_> = published
        .outcomes
        .iter()
        .filter(|(_, o)| !matches!(o, Outcome::At(_)))
        .collect();
    assert!(failed.is_empty(), "publications failed: {failed:?}");
    check_all(&subs, &published, Gaps::None).await;
    check_all(&subs_b, &published, Gaps::None).await;
}

/// Issue #31 item 4: Redis paused for writes longer than the hub's timeout. The publication
/// that times out says its outcome is unknown (not "unavailable": it is delivered once the
/// pause ends), and nothing is delivered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publication_that_times_out_has_an_unknown_outcome_and_arrives_once() {
    let Some(redis) =
        redis_server("a_publication_that_times_out_has_an_unknown_outcome_and_arrives_once")
    else {
        return;
    };
    let (a, b) = two_nodes(&redis, quick().ping_interval(Duration::from_secs(60))).await;
    let subs = subscribers(&b, 2).await;
    let mut published = Published::new("m");
    for i in 1..=20 {
        if i == 10 {
            assert_eq!(
                redis.command(0, &["CLIENT", "PAUSE", "1500", "WRITE"]),
                "OK"
            );
        }
        if let Outcome::Unknown = published.publish(&a.hub, i).await {
            // A careful publisher waits before it goes on.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    assert_eq!(
        published.count(|o| matches!(o, Outcome::Failed)),
        0,
        "{published:?}"
    );
    assert!(
        published.count(|o| matches!(o, Outcome::Unknown)) >= 1,
        "the pause made no publication time out: {published:?}"
    );
    check_all(&subs, &published, Gaps::None).await;
    // The paused publication was delivered after all (which "unavailable" would deny).
    let seen = subs[0].until("m20").await;
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::Item(t, _) if t == "m10")),
        "{seen:?}"
    );
}

/// `CLIENT KILL` of every pub/sub connection, then of every normal one: nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_loses_nothing() {
    let Some(redis) = redis_server("client_kill_loses_nothing") else {
        return;
    };
    let (a, b) = two_nodes(&redis, quick()).await;
    let subs = subscribers(&a, 2).await;
    let mut published = Published::new("m");
    for i in 1..=60 {
        match i {
            20 => {
                redis.command(0, &["CLIENT", "KILL", "TYPE", "pubsub"]);
            }
            40 => {
                redis.command(0, &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
            }
            _ => {}
        }
        published.publish(&b.hub, i).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(published.count(|o| matches!(o, Outcome::Failed)), 0);
    check_all(&subs, &published, Gaps::None).await;
    drop(a);
}

/// Issue #31 item 6: every Redis key of the topic but the one that holds only its epoch (if
/// there is one) is deleted, as an eviction would. The key then starts in a new epoch: one
/// announced gap, never an offset handed out twice in one epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_topics_counter_and_history_is_a_new_epoch_never_a_reused_offset() {
    let Some(redis) =
        redis_server("deleting_a_topics_counter_and_history_is_a_new_epoch_never_a_reused_offset")
    else {
        return;
    };
    let (a, b) = two_nodes(&redis, quick()).await;
    let subs = subscribers(&a, 2).await;
    let mut published = Published::new("m");
    for i in 1..=40 {
        if i == 20 {
            let keys = redis.command(0, &["KEYS", "wirecall:{Chat.room*"]);
            let doomed: Vec<&str> = keys
                .lines()
                .filter(|k| !k.ends_with(":e") && !k.contains(":i:"))
                .collect();
            assert!(!doomed.is_empty(), "{keys}");
            let mut del = vec!["DEL"];
            del.extend(&doomed);
            redis.command(0, &del);
        }
        published.publish(&b.hub, i).await;
    }
    check_all(&subs, &published, Gaps::NewEpoch).await;
    for sub in &subs {
        let seen = sub.until("m40").await;
        let gaps = seen.iter().filter(|s| matches!(s, Seen::Gap(_))).count();
        assert_eq!(gaps, 1, "{seen:?}");
    }
}

/// Issue #31 item 1 and the first command after a restart: a subscriber that saw nothing
/// (offset 0) is cut off, publications go on, Redis restarts empty. When it comes back it
/// is told of the gap (the first publications are lost to it), then gets everything after.
/// The first publication and the first subscription after the restart do not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_is_a_gap_even_for_a_subscriber_that_saw_nothing() {
    let Some(mut redis) =
        redis_server("a_redis_restarted_empty_is_a_gap_even_for_a_subscriber_that_saw_nothing")
    else {
        return;
    };
    let options = quick().ping_interval(Duration::from_secs(60));
    let (a, b) = two_nodes(&redis, options.clone()).await;
    let quiet = Node::start(redis.addr(), 0, options).await;
    let live = subscribers(&a, 2).await;
    let away = Subscriber::start(a.server.local_addr()).await;
    // It has its start position ({E1, 0}): wait for it, then cut it off.
    tokio::time::sleep(Duration::from_millis(300)).await;
    away.proxy.refuse(true);
    away.proxy.drop_all();
    let mut published = Published::new("m");
    for i in 1..=3 {
        published.publish(&b.hub, i).await;
    }
    redis.restart();
    for i in 4..=10 {
        published.publish(&b.hub, i).await;
    }
    assert_eq!(
        published.count(|o| !matches!(o, Outcome::At(_))),
        0,
        "publications after the restart failed: {published:?}"
    );
    // A first subscription through a node that has not talked to Redis since.
    let late = Subscriber::start(quiet.server.local_addr()).await;
    away.proxy.refuse(false);
    for i in 11..=15 {
        published.publish(&b.hub, i).await;
    }
    check_all(&live, &published, Gaps::NewEpoch).await;
    let seen = away.until("m15").await;
    check(
        "the subscriber that was away",
        &seen,
        &published,
        Gaps::NewEpoch,
    );
    assert!(
        matches!(&seen[0], Seen::Gap(g) if g.from.as_ref().is_some_and(|f| f.offset == 0)),
        "{seen:?}"
    );
    let seen = late.until("m15").await;
    assert!(
        matches!(&seen[0], Seen::Item(t, _) if t == "m11"),
        "{seen:?}"
    );
}

/// Issue #31 item 1 on the memory hub: the same, with the server restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hub_restarted_is_a_gap_even_for_a_subscriber_that_saw_nothing() {
    let first = serve(Hub::memory()).await;
    let sub = Subscriber::start(first.local_addr()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    sub.proxy.refuse(true);
    sub.proxy.drop_all();
    let mut published = Published::new("m");
    let hub = first.hub().clone();
    for i in 1..=3 {
        published.publish(&hub, i).await;
    }
    first.shutdown().await;
    let second = serve(Hub::memory()).await;
    sub.proxy.set_target(second.local_addr());
    let hub = second.hub().clone();
    for i in 4..=6 {
        published.publish(&hub, i).await;
    }
    sub.proxy.refuse(false);
    // The subscriber resumes (in the old epoch, at 0) before these arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 7..=9 {
        published.publish(&hub, i).await;
    }
    let seen = sub.until("m9").await;
    check("the subscriber", &seen, &published, Gaps::NewEpoch);
    assert!(matches!(&seen[0], Seen::Gap(_)), "{seen:?}");
}

/// Issue #31 item 3: two deployments with the same prefix on two databases of one Redis do
/// not hear each other's publications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_on_two_databases_do_not_hear_each_other() {
    let Some(redis) = redis_server("deployments_on_two_databases_do_not_hear_each_other") else {
        return;
    };
    let x = Node::start(redis.addr(), 0, quick()).await;
    let y = Node::start(redis.addr(), 1, quick()).await;
    let subs_x = subscribers(&x, 2).await;
    let subs_y = subscribers(&y, 2).await;
    let mut px = Published::new("x");
    let mut py = Published::new("y");
    for i in 1..=30 {
        px.publish(&x.hub, i).await;
        py.publish(&y.hub, i).await;
    }
    check_all(&subs_x, &px, Gaps::None).await;
    check_all(&subs_y, &py, Gaps::None).await;
}

/// Issue #31 item 8, on both hubs alike: a `$since` beyond any offset is `-32602`; one ahead
/// of the key (a huge one included) is a gap back to where the key is, then live items.
#[tokio::test]
async fn since_beyond_or_ahead_of_the_key_is_the_same_on_both_hubs() {
    since_beyond_or_ahead(Hub::memory()).await;
    let Some(redis) = redis_server("since_beyond_or_ahead_of_the_key_is_the_same_on_both_hubs")
    else {
        return;
    };
    since_beyond_or_ahead(Hub::redis(&redis.url()).await.unwrap()).await;
}

async fn since_beyond_or_ahead(hub: Hub) {
    let server = serve(hub.clone()).await;
    let mut published = Published::new("m");
    for i in 1..=3 {
        published.publish(&hub, i).await;
    }
    let Outcome::At(at) = published.outcomes[2].1.clone() else {
        panic!("{published:?}");
    };
    let mut ws = RawWs::connect(&server.url()).await;
    let subscribe = |id: u64, offset: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "Chat.room",
            "params": {"room": ROOM, "$since": {"epoch": at.epoch, "offset": offset}}})
        .to_string()
    };
    let answer: Value =
        serde_json::from_str(&ws.roundtrip(&subscribe(1, json!(u64::MAX))).await).unwrap();
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let answer: Value = serde_json::from_str(
        &ws.roundtrip(&subscribe(2, json!(i64::MAX as u64 + 1)))
            .await,
    )
    .unwrap();
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    for (id, offset) in [(3, 5u64), (4, 100_000_000_000_000), (5, i64::MAX as u64)] {
        let now = published.outcomes.len() as u64;
        let mut ws = RawWs::connect(&server.url()).await;
        let answer: Value =
            serde_json::from_str(&ws.roundtrip(&subscribe(id, json!(offset))).await).unwrap();
        assert!(answer["result"].is_u64(), "{answer}");
        let next: Value = serde_json::from_str(&ws.recv().await).unwrap();
        assert_eq!(
            next["params"]["gap"],
            json!({"epoch": at.epoch, "offset": now}),
            "$since offset {offset}: {next}"
        );
        published.publish(&hub, now + 1).await;
        let next: Value = serde_json::from_str(&ws.recv().await).unwrap();
        assert_eq!(next["params"]["result"]["text"], format!("m{}", now + 1));
        assert_eq!(next["params"]["offset"], now + 1, "{next}");
        ws.assert_no_answer_pending().await;
    }
}

/// Issue #29 §3, exactly as reported: Debian's usual Redis (RDB snapshots), 20 messages
/// said (offsets 1–20), a snapshot after the 10th, Redis killed (SIGKILL) and restarted
/// from that snapshot, 5 more said. No position is handed out twice: the key moves to a
/// new epoch, one announced gap for every subscriber — one that saw everything, one that
/// started at offset 20 and stayed, one that started at 20 and resumes with `$since`
/// after the restore — and none of them is sent anything from before its own start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restored_from_an_older_snapshot_is_one_gap_into_a_new_epoch_never_a_reused_position(
) {
    let Some(mut redis) = redis_server(
        "a_redis_restored_from_an_older_snapshot_is_one_gap_into_a_new_epoch_never_a_reused_position",
    ) else {
        return;
    };
    let (a, b) = two_nodes(&redis, quick()).await;
    let early = subscribers(&a, 1).await;
    let mut published = Published::new("m");
    for i in 0..20 {
        if i == 10 {
            assert_eq!(redis.command(0, &["SAVE"]), "OK");
        }
        published.publish(&b.hub, i).await;
    }
    let Outcome::At(twentieth) = published.outcomes[19].1.clone() else {
        panic!("{published:?}");
    };
    assert_eq!(twentieth.offset, 20);
    early[0].until("m19").await;
    // Two subscribers start at offset 20; one of them is then cut off.
    let stays = Subscriber::start(a.server.local_addr()).await;
    let away = Subscriber::start(b.server.local_addr()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    away.proxy.refuse(true);
    away.proxy.drop_all();

    redis.restart(); // SIGKILL, then back from the snapshot taken after the 10th
    assert_eq!(
        redis.command(
            0,
            &["HGET", &format!("wirecall:{{{}}}:h", key_of(&b.hub)), "n"]
        ),
        "10",
        "Redis came back from the snapshot"
    );
    for i in 20..25 {
        published.publish(&b.hub, i).await;
    }
    away.proxy.refuse(false);
    assert_eq!(
        published.count(|o| !matches!(o, Outcome::At(_))),
        0,
        "{published:?}"
    );
    // No (epoch, offset) handed out twice.
    let mut positions = std::collections::HashSet::new();
    for (i, outcome) in &published.outcomes {
        let Outcome::At(at) = outcome else {
            unreachable!()
        };
        assert!(
            positions.insert(at.clone()),
            "m{i} got {at}, a position handed out before: {published:?}"
        );
    }
    for (who, sub) in [("early", &early[0]), ("stays", &stays), ("away", &away)] {
        let seen = sub.until("m24").await;
        check(who, &seen, &published, Gaps::NewEpoch);
        let gaps = seen.iter().filter(|s| matches!(s, Seen::Gap(_))).count();
        assert_eq!(gaps, 1, "{who}: {seen:?}");
        if who != "early" {
            // Nothing from before its start (offset 20 of the first epoch).
            let texts: Vec<&str> = seen
                .iter()
                .filter_map(|s| match s {
                    Seen::Item(t, _) => Some(t.as_str()),
                    Seen::Gap(_) => None,
                })
                .collect();
            assert_eq!(
                texts,
                ["m20", "m21", "m22", "m23", "m24"],
                "{who}: {seen:?}"
            );
        }
    }
}

/// The Redis key (without prefix and suffix) of the test's room.
fn key_of(hub: &Hub) -> String {
    let key = ChatTopics::new(hub).room(ROOM).key().to_string();
    key
}
