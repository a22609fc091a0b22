//! A Redis hub under a flood of distinct topic keys (#27): every key expires with its
//! history, so Redis' memory comes back to where it was. Real `redis-server` (and
//! `redis-cli` to read it); without them the test says SKIPPED.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use wirecall::hub::Hub;
use wirecall::hub::{HistoryLimits, RedisOptions};
use wirecall_tests::services::{require, Redis};

const KEYS: usize = 20_000;

/// `redis-cli` against `redis` with `args`: its output.
fn cli(program: &Path, redis: &Redis, args: &[&str]) -> String {
    let port = redis
        .url()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let out = Command::new(program)
        .args(["-p", &port])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn dbsize(program: &Path, redis: &Redis) -> u64 {
    cli(program, redis, &["DBSIZE"]).trim().parse().unwrap()
}

fn used_memory(program: &Path, redis: &Redis) -> u64 {
    cli(program, redis, &["INFO", "memory"])
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_distinct_keys_leaves_redis_memory_bounded() {
    let Some(found) = require(
        "a_flood_of_distinct_keys_leaves_redis_memory_bounded",
        &["redis-server", "redis-cli"],
    ) else {
        return;
    };
    let (server, cli_bin) = (&found[0], &found[1]);
    let redis = Redis::start(server);
    let history = HistoryLimits {
        max_items: 100,
        max_age: Duration::from_millis(500),
    };
    let options = RedisOptions::default()
        .history(history)
        .key_ttl(Duration::from_secs(10));
    let hub = Hub::redis_with(&redis.url(), options).await.unwrap();
    let before = used_memory(cli_bin, &redis);

    let item = "x".repeat(200);
    let first = hub
        .topic::<str>("Flood.key", &(0,))
        .unwrap()
        .publish(&item)
        .await
        .unwrap();
    for chunk in (1..KEYS).collect::<Vec<_>>().chunks(500) {
        let publications = chunk.iter().map(|i| {
            let topic = hub.topic::<str>("Flood.key", &(i,)).unwrap();
            let item = &item;
            async move { topic.publish(item).await.unwrap() }
        });
        futures_util::future::join_all(publications).await;
    }
    let flooded = used_memory(cli_bin, &redis);
    let keys = dbsize(cli_bin, &redis);
    assert_eq!(
        keys,
        3 * KEYS as u64,
        "epoch, counter and history of each key"
    );
    assert!(
        flooded > before + 100 * KEYS as u64,
        "the flood took memory: {before} -> {flooded}"
    );

    // Every key expires 10 s after its publication: Redis comes back to where it was.
    let deadline = Instant::now() + Duration::from_secs(60);
    while dbsize(cli_bin, &redis) > 0 {
        assert!(
            Instant::now() < deadline,
            "{} Redis keys left a minute after the flood",
            dbsize(cli_bin, &redis)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = used_memory(cli_bin, &redis);
    assert!(
        after < before + 512 * 1024,
        "used_memory {before} before, {flooded} flooded, {after} after expiry"
    );

    // A key that expired starts again in another epoch: its subscribers are told of a gap.
    let again = hub
        .topic::<str>("Flood.key", &(0,))
        .unwrap()
        .publish(&item)
        .await
        .unwrap();
    assert_eq!(again.offset, 1);
    assert_ne!(again.epoch, first.epoch);
}
