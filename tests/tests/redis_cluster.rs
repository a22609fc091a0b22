//! The Redis hub on a Redis Cluster (issue #29 §2 and §3): three masters on loopback ports
//! (`redis-server --cluster-enabled yes` × 3, joined by `redis-cli --cluster create`),
//! started by each test, with topic keys on every master. Publish, subscribe and history
//! across the three; one master killed is a gap for its keys only, never silent loss, while
//! the keys of the others go on; a master restored from an older snapshot moves its keys to
//! a new epoch, never hands out a position twice. Every subscriber's sequence is checked
//! against what was published (`topic_check::check`).
//!
//! Real `redis-server` and `redis-cli` (Debian packages redis-server and redis-tools;
//! without them the tests say SKIPPED).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wirecall::hub::{HistoryLimits, Hub, RedisOptions};
use wirecall::server::ServerHandle;
use wirecall::Server;
use wirecall_examples::chat::{Chat, ChatServer, ChatTopics};
use wirecall_tests::services::{require, RedisCluster};
use wirecall_tests::RawWs;

mod topic_check;
use topic_check::{check, Gaps, Outcome, Published, Seen, Subscriber};

fn redis_cluster(test: &str) -> Option<RedisCluster> {
    let found = require(test, &["redis-server", "redis-cli"])?;
    Some(RedisCluster::start(&found[0], &found[1]))
}

/// Options for the tests: channels that could not be joined are tried again every 200 ms;
/// a generous command timeout (a loaded machine).
fn options() -> RedisOptions {
    RedisOptions::default()
        .timeout(Duration::from_secs(2))
        .ping_interval(Duration::from_millis(200))
        .history(HistoryLimits {
            max_items: 10_000,
            max_age: Duration::from_secs(3600),
        })
}

async fn hub(urls: &str) -> Hub {
    Hub::redis_with(urls, options())
        .await
        .expect("the hub connects to the cluster")
}

async fn serve(hub: Hub) -> ServerHandle {
    Server::builder()
        .hub(hub)
        .bind("127.0.0.1:0", ChatServer::default().into_router())
        .await
        .unwrap()
}

/// The hub's name of room `room`'s topic key (`Chat.room["…"]`).
fn key_of(room: &str) -> String {
    ChatTopics::new(&Hub::memory()).room(room).key().to_string()
}

/// The Redis hash of room `room` (epoch, counter, run_id).
fn hash_of(room: &str) -> String {
    format!("wirecall:{{{}}}:h", key_of(room))
}

/// A room whose key lives on each of the three masters: (the master's node, the room),
/// in the order of the nodes.
fn rooms_on_every_master(cluster: &RedisCluster, prefix: &str) -> Vec<(usize, String)> {
    let mut rooms = std::collections::BTreeMap::new();
    for n in 0..1000 {
        let room = format!("{prefix}{n}");
        rooms.entry(cluster.owner(&hash_of(&room))).or_insert(room);
        if rooms.len() == 3 {
            return rooms.into_iter().collect();
        }
    }
    panic!("no rooms on every master: {rooms:?}");
}

/// How many connections listen on `room`'s channel on master `i` (`PUBSUB SHARDNUMSUB`).
fn listeners(cluster: &RedisCluster, i: usize, room: &str) -> u64 {
    let channel = format!("wirecall:{{{}}}:0", key_of(room));
    let reply = cluster.command(i, &["PUBSUB", "SHARDNUMSUB", &channel]);
    let lines: Vec<&str> = reply.lines().collect();
    assert_eq!(lines.len(), 2, "PUBSUB SHARDNUMSUB: {reply:?}");
    lines[1].parse().unwrap()
}

/// The items (and gaps) `seen` has, as texts (`gap` for a gap).
fn texts(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| match s {
            Seen::Item(t, _) => t.clone(),
            Seen::Gap(_) => "gap".to_string(),
        })
        .collect()
}

/// Issue #29 §2: one hub given the three masters' URLs, another given one master's URL
/// (it finds the others); a room on each master. Each room's channel is joined on its own
/// master by both nodes, each room's counter lives on its master, every subscriber on
/// either node gets every publication of its room once and in order, and history resumes
/// from a position on every master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_subscribe_and_history_across_three_masters() {
    let Some(cluster) = redis_cluster("publish_subscribe_and_history_across_three_masters") else {
        return;
    };
    let (masters, rooms): (Vec<usize>, Vec<String>) =
        rooms_on_every_master(&cluster, "room").into_iter().unzip();
    let hub_a = hub(&cluster.urls()).await;
    let hub_b = hub(&cluster.url(1)).await;
    let (a, b) = (serve(hub_a.clone()).await, serve(hub_b.clone()).await);
    let mut subs = Vec::new();
    for room in &rooms {
        subs.push(Subscriber::start_in(a.local_addr(), room).await);
        subs.push(Subscriber::start_in(b.local_addr(), room).await);
    }
    for (i, room) in rooms.iter().enumerate() {
        assert_eq!(
            listeners(&cluster, masters[i], room),
            2,
            "{room}'s channel is joined on its master by both nodes"
        );
    }
    let mut published: Vec<Published> = rooms
        .iter()
        .map(|room| Published::in_room(&format!("{room}-"), room))
        .collect();
    for n in 1..=5 {
        for p in published.iter_mut() {
            let hub = if n % 2 == 0 { &hub_a } else { &hub_b };
            let placed = matches!(p.publish(hub, n).await, Outcome::At(at) if at.offset == n);
            assert!(placed, "{p:?}");
        }
    }
    for (i, room) in rooms.iter().enumerate() {
        assert_eq!(
            cluster.command(masters[i], &["HGET", &hash_of(room), "n"]),
            "5",
            "{room}'s counter is on its master"
        );
        for sub in &subs[2 * i..2 * i + 2] {
            let seen = sub.until(&format!("{room}-5")).await;
            check(room, &seen, &published[i], Gaps::None);
        }
    }
    // History, on every master: from offset 2, a subscriber gets 3, 4 and 5, then live.
    for (i, room) in rooms.iter().enumerate() {
        let Outcome::At(at) = published[i].outcomes[1].1.clone() else {
            unreachable!()
        };
        let mut ws = RawWs::connect(&b.url()).await;
        let answer: Value = serde_json::from_str(
            &ws.roundtrip(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "Chat.room",
                    "params": {"room": room, "$since": {"epoch": at.epoch, "offset": 2}}})
                .to_string(),
            )
            .await,
        )
        .unwrap();
        assert!(answer["result"].is_u64(), "{answer}");
        for n in 3..=5 {
            let item: Value = serde_json::from_str(&ws.recv().await).unwrap();
            assert_eq!(item["params"]["result"]["text"], format!("{room}-{n}"));
            assert_eq!(item["params"]["offset"], n, "{item}");
        }
        published[i].publish(&hub_a, 6).await;
        let item: Value = serde_json::from_str(&ws.recv().await).unwrap();
        assert_eq!(item["params"]["result"]["text"], format!("{room}-6"));
    }
}

/// Publish `published`'s next index until one publication is told its position (at most
/// 20 s): the first publications to a master just restarted may fail while the hub's
/// connection to it comes back. Failed ones are recorded (they must never arrive).
async fn publish_until_placed(published: &mut Published, hub: &Hub, next: &mut u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let i = *next;
        *next += 1;
        if matches!(published.publish(hub, i).await, Outcome::At(_)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "publications still fail after 20 s: {published:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A server (on hub A) with a subscriber of one room on every master, and hub B, which
/// published `{room}-1` … `{room}-3` to each room; every subscriber has caught up.
struct Live {
    masters: Vec<usize>,
    rooms: Vec<String>,
    hub_b: Hub,
    a: ServerHandle,
    subs: Vec<Subscriber>,
    published: Vec<Published>,
}

async fn live_on_every_master(cluster: &RedisCluster) -> Live {
    let (masters, rooms): (Vec<usize>, Vec<String>) =
        rooms_on_every_master(cluster, "room").into_iter().unzip();
    let hub_a = hub(&cluster.urls()).await;
    let hub_b = hub(&cluster.urls()).await;
    let a = serve(hub_a.clone()).await;
    let mut subs = Vec::new();
    for room in &rooms {
        subs.push(Subscriber::start_in(a.local_addr(), room).await);
    }
    let mut published: Vec<Published> = rooms
        .iter()
        .map(|room| Published::in_room(&format!("{room}-"), room))
        .collect();
    for n in 1..=3 {
        for p in published.iter_mut() {
            let placed = matches!(p.publish(&hub_b, n).await, Outcome::At(_));
            assert!(placed, "{p:?}");
        }
    }
    for (i, room) in rooms.iter().enumerate() {
        subs[i].until(&format!("{room}-3")).await;
    }
    Live {
        masters,
        rooms,
        hub_b,
        a,
        subs,
        published,
    }
}

/// Issue #29 §2: the process of one master is killed (SIGKILL) and comes back empty. While
/// it is down, publications to its key fail with an error (never a position), and the keys
/// on the other two masters go on: published and delivered, live. Once it is back, its
/// key's subscribers are told of one gap into a new epoch and get everything after; the
/// subscribers of the other keys never see a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_is_a_gap_for_its_keys_only_and_the_others_go_on() {
    let Some(mut cluster) =
        redis_cluster("a_master_killed_is_a_gap_for_its_keys_only_and_the_others_go_on")
    else {
        return;
    };
    let Live {
        masters,
        rooms,
        hub_b,
        a,
        subs,
        mut published,
    } = live_on_every_master(&cluster).await;

    let victim = 0;
    cluster.kill(masters[victim]);
    // The others go on, live, while it is down, for new subscribers too.
    let late = Subscriber::start_in(a.local_addr(), &rooms[1]).await;
    for n in 4..=6 {
        for p in published.iter_mut().skip(1) {
            let placed = matches!(p.publish(&hub_b, n).await, Outcome::At(_));
            assert!(placed, "a key on a master that runs: {p:?}");
        }
    }
    for (i, room) in rooms.iter().enumerate().skip(1) {
        subs[i].until(&format!("{room}-6")).await;
    }
    let seen = late.until(&format!("{}-6", rooms[1])).await;
    assert_eq!(texts(&seen), [4, 5, 6].map(|n| format!("{}-{n}", rooms[1])));
    // Its key: a new subscription fails with an error, it does not hang.
    let mut ws = RawWs::connect(&a.url()).await;
    let subscribe = json!({"jsonrpc": "2.0", "id": 1, "method": "Chat.room",
        "params": {"room": rooms[victim]}});
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        ws.roundtrip(&subscribe.to_string()),
    )
    .await
    .expect("an answer while the key's master is down");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    // Its key: an error, never a position.
    let outcome = published[victim].publish(&hub_b, 4).await.clone();
    assert!(
        !matches!(outcome, Outcome::At(_)),
        "a publication to a key of a master that is down was placed: {outcome:?}"
    );

    cluster.restart(masters[victim]); // empty: it had no snapshot
    let mut next = 5;
    for _ in 0..3 {
        publish_until_placed(&mut published[victim], &hub_b, &mut next).await;
    }
    for n in 7..=8 {
        for p in published.iter_mut().skip(1) {
            let placed = matches!(p.publish(&hub_b, n).await, Outcome::At(_));
            assert!(placed, "{p:?}");
        }
    }
    let last = published[victim].last_known();
    let seen = subs[victim]
        .until(&format!("{}-{last}", rooms[victim]))
        .await;
    check(
        "the victim's subscriber",
        &seen,
        &published[victim],
        Gaps::NewEpoch,
    );
    let gaps = seen.iter().filter(|s| matches!(s, Seen::Gap(_))).count();
    assert_eq!(gaps, 1, "{:?}", texts(&seen));
    for (i, room) in rooms.iter().enumerate().skip(1) {
        let seen = subs[i].until(&format!("{room}-8")).await;
        check(room, &seen, &published[i], Gaps::None);
    }
}

/// Issue #29 §3 on a cluster, exactly as reported for one Redis: 20 messages said in a
/// room (offsets 1–20), a snapshot of its master after the 10th, that master killed
/// (SIGKILL) and restarted from the snapshot, 5 more said. No position is handed out
/// twice: the key moves to a new epoch, one announced gap for every subscriber — one that
/// saw everything, one that started at offset 20 and stayed, one that started at 20 and
/// resumes with `$since` after the restore — and none is sent anything from before its own
/// start. A room on another master, published to all along, sees no gap at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_restored_from_an_older_snapshot_is_one_gap_into_a_new_epoch_for_its_keys_only() {
    let Some(mut cluster) = redis_cluster(
        "a_master_restored_from_an_older_snapshot_is_one_gap_into_a_new_epoch_for_its_keys_only",
    ) else {
        return;
    };
    let rooms = rooms_on_every_master(&cluster, "r");
    let (victim, room) = (rooms[0].0, rooms[0].1.as_str());
    let other_room = rooms[1].1.as_str();
    // A warm-up room on the victim: publications to it show the hub reaches the victim
    // again after the restore, without touching the room under test.
    let warm = rooms_on_every_master(&cluster, "warm")[0].1.clone();
    let hub_a = hub(&cluster.urls()).await;
    let hub_b = hub(&cluster.url(2)).await;
    let (a, b) = (serve(hub_a.clone()).await, serve(hub_b.clone()).await);
    let early = Subscriber::start_in(a.local_addr(), room).await;
    let bystander = Subscriber::start_in(a.local_addr(), other_room).await;
    let mut published = Published::in_room("m", room);
    let mut elsewhere = Published::in_room("o", other_room);
    for i in 0..20 {
        if i == 10 {
            assert_eq!(cluster.command(victim, &["SAVE"]), "OK");
        }
        published.publish(&hub_b, i).await;
        elsewhere.publish(&hub_b, i).await;
    }
    let Outcome::At(twentieth) = published.outcomes[19].1.clone() else {
        panic!("{published:?}");
    };
    assert_eq!(twentieth.offset, 20);
    early.until("m19").await;
    // Two subscribers start at offset 20; one of them is then cut off.
    let stays = Subscriber::start_in(a.local_addr(), room).await;
    let away = Subscriber::start_in(b.local_addr(), room).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    away.proxy.refuse(true);
    away.proxy.drop_all();

    cluster.restart(victim); // SIGKILL, then back from the snapshot taken after the 10th
    assert_eq!(
        cluster.command(victim, &["HGET", &hash_of(room), "n"]),
        "10",
        "the master came back from the snapshot"
    );
    let mut warmed = Published::in_room("w", &warm);
    publish_until_placed(&mut warmed, &hub_b, &mut 0).await;
    for i in 20..25 {
        published.publish(&hub_b, i).await;
        elsewhere.publish(&hub_b, i).await;
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
    for (who, sub) in [("early", &early), ("stays", &stays), ("away", &away)] {
        let seen = sub.until("m24").await;
        check(who, &seen, &published, Gaps::NewEpoch);
        let gaps = seen.iter().filter(|s| matches!(s, Seen::Gap(_))).count();
        assert_eq!(gaps, 1, "{who}: {:?}", texts(&seen));
        if who != "early" {
            // Nothing from before its start (offset 20 of the first epoch).
            assert_eq!(
                texts(&seen),
                ["gap", "m20", "m21", "m22", "m23", "m24"],
                "{who}"
            );
        }
    }
    let seen = bystander.until("o24").await;
    check(
        "the other master's subscriber",
        &seen,
        &elsewhere,
        Gaps::None,
    );
}

/// Issue #29 §2, failover: three masters with a replica each; one master's process is
/// killed and its replica takes over its slots (with what it had replicated, which may lack
/// the last writes: another `run_id`, so a new epoch). Its key's subscribers are told of one
/// gap and get everything published after it, the hub publishes to the new master, and the
/// keys of the other masters never see a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_replaced_by_its_replica_is_a_gap_for_its_keys_only() {
    let Some(found) = require(
        "a_master_replaced_by_its_replica_is_a_gap_for_its_keys_only",
        &["redis-server", "redis-cli"],
    ) else {
        return;
    };
    let mut cluster = RedisCluster::start_with_replicas(&found[0], &found[1]);
    let Live {
        masters,
        rooms,
        hub_b,
        a: _server,
        subs,
        mut published,
    } = live_on_every_master(&cluster).await;

    let victim = 0;
    cluster.kill(masters[victim]);
    // Its replica takes over (the cluster's node timeout is 2 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_master = loop {
        match cluster.try_owner(&hash_of(&rooms[victim])) {
            Some(node) if node != masters[victim] => break node,
            _ => {}
        }
        assert!(Instant::now() < deadline, "no replica took over in 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut next = 4;
    for _ in 0..3 {
        publish_until_placed(&mut published[victim], &hub_b, &mut next).await;
    }
    for n in 4..=6 {
        for p in published.iter_mut().skip(1) {
            let placed = matches!(p.publish(&hub_b, n).await, Outcome::At(_));
            assert!(placed, "{p:?}");
        }
    }
    // The key lives on the new master, in a new epoch.
    let Some((_, Outcome::At(first))) = published[victim].outcomes.first().cloned() else {
        unreachable!()
    };
    let Some((_, Outcome::At(now))) = published[victim].outcomes.last().cloned() else {
        unreachable!()
    };
    assert_ne!(first.epoch, now.epoch, "{:?}", published[victim]);
    assert_eq!(
        cluster.command(new_master, &["HGET", &hash_of(&rooms[victim]), "n"]),
        now.offset.to_string(),
    );
    let last = published[victim].last_known();
    let seen = subs[victim]
        .until(&format!("{}-{last}", rooms[victim]))
        .await;
    check(
        "the replaced master's subscriber",
        &seen,
        &published[victim],
        Gaps::NewEpoch,
    );
    let gaps = seen.iter().filter(|s| matches!(s, Seen::Gap(_))).count();
    assert_eq!(gaps, 1, "{:?}", texts(&seen));
    for (i, room) in rooms.iter().enumerate().skip(1) {
        let seen = subs[i].until(&format!("{room}-6")).await;
        check(room, &seen, &published[i], Gaps::None);
    }
}
