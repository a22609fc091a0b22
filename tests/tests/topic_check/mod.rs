//! What the topic tests check (issues #29, #31): publishers that record each publication's
//! outcome, typed subscribers that record what they see, and [`check`], the property every
//! scenario's subscribers must have. Shared by `topic_faults.rs` and `redis_cluster.rs`.

// Each test file uses a part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wirecall::{
    client::Reconnect, hub::Gap, hub::Hub, hub::Position, hub::PublishError, Client, Error,
};
use wirecall_examples::chat::{ChatClient, ChatTopics, Message};
use wirecall_tests::proxy::Proxy;

/// The room the tests publish to unless they name another.
pub(crate) const ROOM: &str = "lobby";

/// What a publication's call said.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    At(Position),
    Unknown,
    Failed,
}

/// Everything one publisher published, by index (`{tag}{index}` is the text).
#[derive(Clone, Debug, Default)]
pub(crate) struct Published {
    pub(crate) tag: String,
    pub(crate) room: String,
    pub(crate) outcomes: Vec<(u64, Outcome)>,
}

impl Published {
    pub(crate) fn new(tag: &str) -> Self {
        Published::in_room(tag, ROOM)
    }

    /// Publications to `room`.
    pub(crate) fn in_room(tag: &str, room: &str) -> Self {
        Published {
            tag: tag.into(),
            room: room.into(),
            outcomes: Vec::new(),
        }
    }

    pub(crate) async fn publish(&mut self, hub: &Hub, i: u64) -> &Outcome {
        let m = Message {
            room: self.room.clone(),
            from: "bot".into(),
            text: format!("{}{i}", self.tag),
        };
        let outcome = match ChatTopics::new(hub).room(&self.room).publish(&m).await {
            Ok(at) => Outcome::At(at),
            Err(PublishError::OutcomeUnknown(_)) => Outcome::Unknown,
            Err(_) => Outcome::Failed,
        };
        self.outcomes.push((i, outcome));
        &self.outcomes.last().unwrap().1
    }

    pub(crate) fn last_known(&self) -> u64 {
        self.outcomes
            .iter()
            .rev()
            .find(|(_, o)| matches!(o, Outcome::At(_)))
            .map(|(i, _)| *i)
            .expect("something was published")
    }

    pub(crate) fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|(_, o)| f(o)).count()
    }
}

/// What a subscriber saw.
#[derive(Clone, Debug)]
pub(crate) enum Seen {
    Item(String, Position),
    Gap(Gap),
}

/// A typed subscriber of the room on `url` (through a proxy of its own, so that it can be
/// cut off), collecting until it has seen `{tag}{until}`.
pub(crate) struct Subscriber {
    pub(crate) proxy: Proxy,
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    pub(crate) async fn start(server: SocketAddr) -> Subscriber {
        Subscriber::start_in(server, ROOM).await
    }

    /// A subscriber of `room`.
    pub(crate) async fn start_in(server: SocketAddr, room: &str) -> Subscriber {
        let proxy = Proxy::start(server).await;
        let client = Client::builder()
            .reconnect(Reconnect {
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(100),
                ..Reconnect::default()
            })
            .connect(&proxy.url())
            .await
            .unwrap();
        let mut room = ChatClient::new(client).room(room.into()).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                loop {
                    let event = match room.next().await {
                        Some(Ok(m)) => Seen::Item(m.text, room.position().unwrap().clone()),
                        Some(Err(Error::Gap(gap))) => Seen::Gap(gap),
                        other => panic!("the subscription ended: {other:?}"),
                    };
                    seen.lock().unwrap().push(event);
                }
            }
        });
        Subscriber { proxy, seen, task }
    }

    /// Wait (up to 30 s) until it has seen `text`, then return what it saw.
    pub(crate) async fn until(&self, text: &str) -> Vec<Seen> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            {
                let seen = self.seen.lock().unwrap();
                if seen
                    .iter()
                    .any(|s| matches!(s, Seen::Item(t, _) if t == text))
                {
                    return seen.clone();
                }
            }
            assert!(
                !self.task.is_finished(),
                "the subscriber's task ended: {:?}",
                self.seen.lock().unwrap()
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "{text} did not arrive within 30 s; seen: {:?}",
                self.seen.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Which gaps a scenario allows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Gaps {
    /// None: nothing was lost.
    None,
    /// Only to a new epoch (the data was lost), from which history is whole.
    NewEpoch,
}

/// The property: `seen` is every publication of `published` after the subscription
/// started, exactly once and in order (each where the publisher was told it is), or a gap
/// announced where publications are missing; publications whose outcome was unknown
/// appear at most once; failed ones never; nothing of another publisher.
pub(crate) fn check(who: &str, seen: &[Seen], published: &Published, gaps: Gaps) {
    let index_of: HashMap<String, usize> = published
        .outcomes
        .iter()
        .enumerate()
        .map(|(k, (i, _))| (format!("{}{i}", published.tag), k))
        .collect();
    let mut position: Option<Position> = None;
    let mut last_index: Option<usize> = None;
    let mut gap_since_last_item = false;
    let mut delivered = std::collections::HashSet::new();
    for (n, event) in seen.iter().enumerate() {
        let context = || format!("{who}: event {n} {event:?}; all: {seen:?}");
        match event {
            Seen::Gap(gap) => {
                match gaps {
                    Gaps::None => panic!("no gap expected: {}", context()),
                    Gaps::NewEpoch => {
                        if let Some(from) = &gap.from {
                            assert_ne!(from.epoch, gap.to.epoch, "{}", context());
                        }
                        assert_eq!(gap.to.offset, 0, "history is whole: {}", context());
                    }
                }
                position = Some(gap.to.clone());
                gap_since_last_item = true;
            }
            Seen::Item(text, at) => {
                let k = *index_of
                    .get(text)
                    .unwrap_or_else(|| panic!("not published here: {}", context()));
                assert!(delivered.insert(k), "delivered twice: {}", context());
                let (_, outcome) = &published.outcomes[k];
                match outcome {
                    Outcome::Failed => panic!("a failed publication arrived: {}", context()),
                    Outcome::At(p) => {
                        assert_eq!(p, at, "not where it was published: {}", context())
                    }
                    Outcome::Unknown => {}
                }
                // In order, none skipped without a gap: the next offset of the epoch.
                match &position {
                    Some(p) => assert_eq!(
                        (p.epoch.as_str(), p.offset + 1),
                        (at.epoch.as_str(), at.offset),
                        "not the next position: {}",
                        context()
                    ),
                    None => assert_eq!(at.offset, 1, "the first item: {}", context()),
                }
                // Publications known to be published between the last item and this one
                // were skipped: only behind a gap.
                let from = last_index.map_or(0, |l| l + 1);
                let skipped: Vec<_> = published.outcomes[from..k]
                    .iter()
                    .filter(|(_, o)| matches!(o, Outcome::At(_)))
                    .collect();
                if !skipped.is_empty() {
                    assert!(
                        gap_since_last_item,
                        "skipped {skipped:?} without a gap: {}",
                        context()
                    );
                } else if let Some(l) = last_index {
                    // Known publications keep their order.
                    assert!(
                        k > l || matches!(outcome, Outcome::Unknown),
                        "{}",
                        context()
                    );
                }
                if matches!(outcome, Outcome::At(_)) {
                    last_index = Some(k);
                }
                position = Some(at.clone());
                gap_since_last_item = false;
            }
        }
    }
    let last = published.last_known();
    assert!(
        delivered.contains(&index_of[&format!("{}{last}", published.tag)]),
        "{who}: the last publication did not arrive: {seen:?}"
    );
}
