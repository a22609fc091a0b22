//! The Redis hub sends a node only the publications of keys its clients subscribe to
//! (issue #29 §2): one Redis channel per topic key (sharded pub/sub on Redis 7 and later),
//! joined when the node's first subscriber of the key arrives and left after its last one
//! is gone. Real `redis-server` (Debian package; without it the tests say SKIPPED).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wirecall::hub::Hub;
use wirecall::server::ServerHandle;
use wirecall::Server;
use wirecall_examples::chat::{Chat, ChatServer, ChatTopics, Message};
use wirecall_tests::proxy::Proxy;
use wirecall_tests::services::{require, Redis};
use wirecall_tests::RawWs;

fn redis_server(test: &str) -> Option<Redis> {
    let found = require(test, &["redis-server"])?;
    Some(Redis::start(&found[0]))
}

async fn serve(hub: Hub) -> ServerHandle {
    Server::builder()
        .hub(hub)
        .bind("127.0.0.1:0", ChatServer::default().into_router())
        .await
        .unwrap()
}

/// The Redis channel of room `room` (docs/PROTOCOL.md: `P:{K}:DB`).
fn channel(room: &str) -> String {
    format!("wirecall:{{Chat.room[{}]}}:0", json!(room))
}

/// How many connections listen on `channel`: `PUBSUB SHARDNUMSUB` on Redis 7 and later
/// (sharded pub/sub), `PUBSUB NUMSUB` before.
fn listeners(redis: &Redis, channel: &str) -> u64 {
    let info = redis.command(0, &["INFO", "server"]);
    let major: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let command = if major >= 7 { "SHARDNUMSUB" } else { "NUMSUB" };
    let reply = redis.command(0, &["PUBSUB", command, channel]);
    let lines: Vec<&str> = reply.lines().collect();
    assert_eq!(lines.len(), 2, "PUBSUB {command}: {reply:?}");
    assert_eq!(lines[0], channel);
    lines[1].parse().unwrap()
}

/// Wait (up to 10 s) until `channel` has `n` listeners.
async fn until_listeners(redis: &Redis, channel: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = listeners(redis, channel);
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{channel} has {now} listeners, not {n}, after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A raw WebSocket subscriber of `room` on `server`: the answer and its start position
/// have been read.
async fn subscribe(server: &ServerHandle, room: &str) -> RawWs {
    let mut ws = RawWs::connect(&server.url()).await;
    let answer: Value = serde_json::from_str(
        &ws.roundtrip(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "Chat.room", "params": {"room": room}})
                .to_string(),
        )
        .await,
    )
    .unwrap();
    assert!(answer["result"].is_u64(), "{answer}");
    let start: Value = serde_json::from_str(&ws.recv().await).unwrap();
    assert!(start["params"]["position"].is_object(), "{start}");
    ws
}

/// The text of the next item `ws` receives.
async fn next_text(ws: &mut RawWs) -> String {
    let item: Value = serde_json::from_str(&ws.recv().await).unwrap();
    item["params"]["result"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("not an item: {item}"))
        .to_string()
}

async fn say(hub: &Hub, room: &str, text: String) {
    let m = Message {
        room: room.into(),
        from: "bot".into(),
        text,
    };
    ChatTopics::new(hub).room(room).publish(&m).await.unwrap();
}

/// Issue #29 §2: a key's channel is joined before its first subscriber's answer (so
/// nothing published after the answer can be missed), by one connection per node however
/// many subscribers the node has, and left after the node's last subscriber is gone; a
/// key subscribed again is joined again and delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_channel_is_joined_by_its_first_subscriber_and_left_after_its_last() {
    let Some(redis) =
        redis_server("a_keys_channel_is_joined_by_its_first_subscriber_and_left_after_its_last")
    else {
        return;
    };
    let ch = channel("lobby");
    let hub_a = Hub::redis(&redis.url()).await.unwrap();
    let hub_b = Hub::redis(&redis.url()).await.unwrap();
    let (a, b) = (serve(hub_a.clone()).await, serve(hub_b.clone()).await);
    assert_eq!(listeners(&redis, &ch), 0);

    let mut first = subscribe(&a, "lobby").await;
    assert_eq!(listeners(&redis, &ch), 1, "joined before the answer");
    let mut second = subscribe(&a, "lobby").await;
    assert_eq!(listeners(&redis, &ch), 1, "one connection per node");
    let mut third = subscribe(&b, "lobby").await;
    assert_eq!(listeners(&redis, &ch), 2);
    say(&hub_a, "lobby", "m1".into()).await;
    for ws in [&mut first, &mut second, &mut third] {
        assert_eq!(next_text(ws).await, "m1");
    }

    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(listeners(&redis, &ch), 2, "node A still has a subscriber");
    say(&hub_b, "lobby", "m2".into()).await;
    assert_eq!(next_text(&mut second).await, "m2");
    drop(second);
    until_listeners(&redis, &ch, 1).await;
    drop(third);
    until_listeners(&redis, &ch, 0).await;

    // Back again: joined again, and delivered.
    let mut again = subscribe(&a, "lobby").await;
    assert_eq!(listeners(&redis, &ch), 1);
    say(&hub_b, "lobby", "m3".into()).await;
    assert_eq!(next_text(&mut again).await, "m3");
}

/// Issue #29 §2: node B, whose clients subscribe to another room only, receives nothing of
/// the publications to "lobby" (measured on the bytes its Redis connections receive),
/// while its own room's publications reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_subscribers_of_a_key_receives_nothing_of_it() {
    let Some(redis) = redis_server("a_node_without_subscribers_of_a_key_receives_nothing_of_it")
    else {
        return;
    };
    let hub_a = Hub::redis(&redis.url()).await.unwrap();
    let proxy_b = Proxy::start(redis.addr()).await;
    let hub_b = Hub::redis(&format!("redis://{}/", proxy_b.addr()))
        .await
        .unwrap();
    let (a, b) = (serve(hub_a.clone()).await, serve(hub_b.clone()).await);
    let mut on_a = subscribe(&a, "lobby").await;
    let mut on_b = subscribe(&b, "elsewhere").await;

    let before = proxy_b.bytes_from_target();
    let text = "x".repeat(2000);
    for i in 0..200 {
        say(&hub_a, "lobby", format!("{i}{text}")).await;
    }
    for i in 0..200 {
        assert_eq!(next_text(&mut on_a).await, format!("{i}{text}"));
    }
    say(&hub_a, "elsewhere", "here".into()).await;
    assert_eq!(next_text(&mut on_b).await, "here");
    let received = proxy_b.bytes_from_target() - before;
    assert!(
        received < 40_000,
        "node B received {received} bytes from Redis while 400 KB were published to a key \
         it has no subscriber of"
    );
}
