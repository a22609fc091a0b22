//! Several chat nodes behind nginx, topics carried by Redis: a subscriber moved to another
//! node (its node killed) loses nothing; a Redis that restarts empty shows every subscriber
//! one gap, and nothing after it is lost. Real `redis-server` and `nginx` (Debian packages,
//! installed by `.ci/run`; without them the tests say SKIPPED), real `chat` processes.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use wirecall::{client::Reconnect, Client, Error};
use wirecall_examples::chat::ChatClient;
use wirecall_tests::services::{free_port, require, wait_listening, Nginx, Process, Redis};

const MESSAGES: u64 = 5000;
const SUBSCRIBERS: usize = 50;

/// A `chat serve … --redis URL` process.
struct Node {
    addr: SocketAddr,
    redis: String,
    process: Process,
}

impl Node {
    fn start(redis: &str) -> Node {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let process = Self::run(addr, redis);
        Node {
            addr,
            redis: redis.to_string(),
            process,
        }
    }

    fn run(addr: SocketAddr, redis: &str) -> Process {
        let process = Process::spawn(
            Command::new(env!("CARGO_BIN_EXE_chat"))
                .args(["serve", &addr.to_string(), "--redis", redis])
                .args(["--history", "10000"])
                .stdout(Stdio::null()),
        );
        wait_listening(addr, "a chat node");
        process
    }

    fn kill(&mut self) {
        self.process.kill();
    }

    fn restart(&mut self) {
        self.process = Self::run(self.addr, &self.redis);
    }

    fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }
}

/// What one subscriber saw: texts with offsets, and gaps (with the index they came at).
#[derive(Debug, Default)]
struct Seen {
    items: Vec<(String, u64)>,
    gaps: Vec<(usize, wirecall::hub::Gap)>,
}

fn reconnect() -> Reconnect {
    Reconnect {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..Reconnect::default()
    }
}

/// `SUBSCRIBERS` clients through nginx, each subscribed to `Chat.room("lobby")`, each
/// collecting until it has the message `last`.
async fn subscribers(url: &str, last: String) -> Vec<tokio::task::JoinHandle<Seen>> {
    let mut tasks = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let client = Client::builder()
            .reconnect(reconnect())
            .connect(url)
            .await
            .expect("connect through nginx");
        let mut room = ChatClient::new(client).room("lobby".into()).await.unwrap();
        let last = last.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            while seen.items.last().is_none_or(|(text, _)| *text != last) {
                let next = tokio::time::timeout(Duration::from_secs(30), room.next()).await;
                match next {
                    Ok(Some(Ok(m))) => {
                        let offset = room.position().expect("a topic item has a position").offset;
                        seen.items.push((m.text, offset));
                    }
                    Ok(Some(Err(Error::Gap(gap)))) => seen.gaps.push((seen.items.len(), gap)),
                    Ok(other) => panic!("subscription ended: {other:?} after {seen:?}"),
                    Err(_) => panic!(
                        "no item for 30 s after {} items, gaps {:?}",
                        seen.items.len(),
                        seen.gaps
                    ),
                }
            }
            seen
        }));
    }
    tasks
}

fn programs(test: &str) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let found = require(test, &["redis-server", "nginx"])?;
    Some((found[0].clone(), found[1].clone()))
}

async fn deployment(redis: &Path, nginx: &Path) -> (Redis, Vec<Node>, Nginx) {
    let redis = Redis::start(redis);
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&redis.url())).collect();
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let nginx = Nginx::start(nginx, &addrs);
    (redis, nodes, nginx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_loses_its_subscribers_nothing() {
    let Some((redis_bin, nginx_bin)) =
        programs("a_node_killed_mid_stream_loses_its_subscribers_nothing")
    else {
        return;
    };
    let (_redis, mut nodes, nginx) = deployment(&redis_bin, &nginx_bin).await;
    let tasks = subscribers(&nginx.url(), format!("m{MESSAGES}")).await;

    // The speaker talks to node 0 directly; node 2 is the one that dies.
    let speaker = ChatClient::new(Client::connect(&nodes[0].url()).await.unwrap());
    speaker
        .join("lobby".into(), "speaker".into())
        .await
        .unwrap();
    for i in 1..=MESSAGES {
        if i == MESSAGES / 2 {
            nodes[2].kill();
        }
        if i == MESSAGES * 7 / 10 {
            nodes[2].restart();
        }
        let offset = speaker.say("lobby".into(), format!("m{i}")).await.unwrap();
        assert_eq!(offset, i);
    }
    let expected: Vec<(String, u64)> = (1..=MESSAGES).map(|i| (format!("m{i}"), i)).collect();
    for (n, task) in tasks.into_iter().enumerate() {
        let seen = task.await.unwrap();
        assert!(
            seen.gaps.is_empty(),
            "subscriber {n} saw gaps: {:?}",
            seen.gaps
        );
        assert!(
            seen.items == expected,
            "subscriber {n}: not every message once, in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_is_one_gap_and_nothing_after_it_is_lost() {
    let Some((redis_bin, nginx_bin)) =
        programs("a_redis_restarted_empty_is_one_gap_and_nothing_after_it_is_lost")
    else {
        return;
    };
    let (mut redis, nodes, nginx) = deployment(&redis_bin, &nginx_bin).await;
    let tasks = subscribers(&nginx.url(), format!("m{MESSAGES}")).await;

    let speaker = ChatClient::new(Client::connect(&nodes[0].url()).await.unwrap());
    speaker
        .join("lobby".into(), "speaker".into())
        .await
        .unwrap();
    let mut refused = 0;
    let mut restarted = false;
    // What `say` confirmed after the restart (text, offset), and what it could not tell.
    let mut confirmed_after = Vec::new();
    let mut unknown = Vec::new();
    let mut i = 1;
    while i <= MESSAGES {
        if i == MESSAGES / 2 + 1 && !restarted {
            redis.kill();
        }
        match speaker.say("lobby".into(), format!("m{i}")).await {
            Ok(offset) => {
                if restarted {
                    confirmed_after.push((format!("m{i}"), offset));
                }
                i += 1;
            }
            Err(Error::Rpc(e)) => {
                assert_eq!(e.code, wirecall::protocol::code::PUBLISH_FAILED, "{e}");
                let data = e.data::<serde_json::Value>().unwrap_or_default();
                match data["reason"].as_str() {
                    // Nobody received it: saying it again is safe. Bring Redis back after a
                    // few.
                    Some("unavailable") => {
                        refused += 1;
                        if refused == 3 {
                            redis.restart();
                            restarted = true;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    // It may have been delivered: saying it again could say it twice. Go
                    // on; subscribers see it once or not at all.
                    Some("outcome_unknown") => {
                        unknown.push(format!("m{i}"));
                        i += 1;
                    }
                    _ => panic!("say m{i}: {e}"),
                }
            }
            Err(e) => panic!("say m{i}: {e}"),
        }
    }
    assert!(restarted, "Redis was never missed");
    assert!(unknown.len() <= 2, "{unknown:?}");
    let half = MESSAGES / 2;
    for (n, task) in tasks.into_iter().enumerate() {
        let seen = task.await.unwrap();
        // Before the restart: m1.. in order (what reached the node before Redis died).
        let [(at, gap)] = &seen.gaps[..] else {
            panic!("subscriber {n}: expected one gap, saw {:?}", seen.gaps);
        };
        assert!(*at as u64 <= half, "subscriber {n}: gap after {at} items");
        for (k, (text, offset)) in seen.items[..*at].iter().enumerate() {
            assert_eq!(
                (text.as_str(), *offset),
                (format!("m{}", k + 1).as_str(), k as u64 + 1)
            );
        }
        let from = gap.from.as_ref().expect("the subscriber had a position");
        assert_eq!(from.offset, *at as u64);
        assert_ne!(gap.to.epoch, from.epoch, "Redis lost its data: a new epoch");
        // After it: every message said since, in order, at the offsets `say` returned (a
        // message whose outcome was unknown may be among them, once).
        let after: Vec<(String, u64)> = seen.items[*at..]
            .iter()
            .filter(|(text, _)| !unknown.contains(text))
            .cloned()
            .collect();
        assert!(
            after == confirmed_after,
            "subscriber {n}: lost messages after the gap ({} after it)",
            after.len()
        );
    }
}
