//! The hub of one process: positions, history and fan-out in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{
    new_epoch, resume, Backend, BoxFuture, Entry, HistoryLimits, Opened, Position, PublishError,
    Replay,
};
use crate::error::RpcError;

/// Publications a subscriber may fall behind the live fan-out before it reads the rest
/// from history instead.
pub(crate) const LIVE_BUFFER: usize = 1024;

/// Publications between two sweeps of keys nobody uses.
const SWEEP_EVERY: u64 = 4096;

pub(crate) struct Memory {
    history: HistoryLimits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: HashMap<Arc<str>, Key>,
    published: u64,
}

struct Key {
    epoch: Arc<str>,
    offset: u64,
    history: VecDeque<(Instant, Arc<Entry>)>,
    live: broadcast::Sender<Arc<Entry>>,
}

impl Key {
    fn new() -> Self {
        Key {
            epoch: new_epoch().into(),
            offset: 0,
            history: VecDeque::new(),
            live: broadcast::channel(LIVE_BUFFER).0,
        }
    }

    fn now(&self) -> Position {
        Position {
            epoch: self.epoch.to_string(),
            offset: self.offset,
        }
    }

    fn trim(&mut self, limits: &HistoryLimits, now: Instant) {
        while self.history.len() > limits.max_items {
            self.history.pop_front();
        }
        while let Some((at, _)) = self.history.front() {
            if now.duration_since(*at) <= limits.max_age {
                break;
            }
            self.history.pop_front();
        }
    }
}

impl Memory {
    pub(crate) fn new(history: HistoryLimits) -> Self {
        Memory {
            history,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish_now(&self, key: Arc<str>, json: Arc<str>) -> Position {
        let now = Instant::now();
        let mut state = self.state();
        state.published += 1;
        if state.published.is_multiple_of(SWEEP_EVERY) {
            let limits = self.history;
            state.keys.retain(|_, k| {
                k.trim(&limits, now);
                !k.history.is_empty() || k.live.receiver_count() > 0
            });
        }
        let k = state.keys.entry(key).or_insert_with(Key::new);
        k.offset += 1;
        let entry = Arc::new(Entry::new(k.epoch.clone(), k.offset, json));
        if self.history.max_items > 0 {
            k.history.push_back((now, entry.clone()));
        }
        k.trim(&self.history, now);
        // No receiver is fine: nobody listens.
        let _ = k.live.send(entry);
        k.now()
    }

    fn replay_now(&self, key: &str, after: &Position) -> Replay {
        let now = Instant::now();
        let mut state = self.state();
        // Never published (or swept): the key starts in a new epoch.
        let k = state.keys.entry(key.into()).or_insert_with(Key::new);
        k.trim(&self.history, now);
        let first = k.history.front().map(|(_, e)| e.offset);
        let (from, lost) = resume(after, &k.epoch, k.offset, first);
        Replay {
            lost,
            items: k
                .history
                .iter()
                .filter(|(_, e)| e.offset > from.offset)
                .map(|(_, e)| e.clone())
                .collect(),
            from,
        }
    }
}

impl Backend for Memory {
    fn publish(&self, key: Arc<str>, json: Arc<str>) -> BoxFuture<Result<Position, PublishError>> {
        let position = self.publish_now(key, json);
        Box::pin(async move { Ok(position) })
    }

    fn open(&self, key: Arc<str>) -> BoxFuture<Result<Opened, RpcError>> {
        let mut state = self.state();
        let k = state.keys.entry(key).or_insert_with(Key::new);
        let opened = Opened {
            live: k.live.subscribe(),
            now: k.now(),
        };
        Box::pin(async move { Ok(opened) })
    }

    fn replay(&self, key: Arc<str>, after: Position) -> BoxFuture<Result<Replay, RpcError>> {
        let replay = self.replay_now(&key, &after);
        Box::pin(async move { Ok(replay) })
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use proptest::prelude::*;

    use super::*;
    use crate::hub::{Event, Hub};

    #[derive(Clone, Debug)]
    enum Op {
        /// Publish this many items.
        Publish(u8),
        /// Subscribe: none (`None`), or since an offset in this epoch or another.
        Subscribe(Option<(u16, bool)>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1u8..8).prop_map(Op::Publish),
            1 => proptest::option::of((0u16..80, any::<bool>())).prop_map(Op::Subscribe),
        ]
    }

    /// What a subscriber must see: optionally where it starts or a gap, then the items
    /// (as offsets).
    #[derive(Debug, PartialEq)]
    enum Seen {
        Start(u64),
        Gap(u64),
        Item(u64),
    }

    /// Everything the feed has now. (`unconstrained`: tokio's cooperative budget would
    /// make a ready receiver look pending after a hundred-odd items.)
    async fn drain(feed: &mut crate::hub::Feed) -> Vec<Seen> {
        let mut seen = Vec::new();
        while let Some(Some(event)) = tokio::task::unconstrained(feed.next()).now_or_never() {
            seen.push(match event {
                Event::Start(p) => Seen::Start(p.offset),
                Event::Gap(p) => Seen::Gap(p.offset),
                Event::Item(e) => {
                    assert_eq!(*e.json, *e.offset.to_string(), "the item at its offset");
                    Seen::Item(e.offset)
                }
            });
        }
        seen
    }

    /// A subscriber further behind than the live buffer reads the rest from history: no
    /// loss while history has it, a gap (then what is left) when it does not.
    #[tokio::test]
    async fn a_subscriber_that_falls_behind_the_live_buffer_catches_up_from_history() {
        let n = LIVE_BUFFER as u64 + 500;
        for (max_items, first) in [(5000, 1), (100, n - 99)] {
            let hub = Hub::memory_with(HistoryLimits {
                max_items,
                max_age: std::time::Duration::from_secs(3600),
            });
            let key: Arc<str> = "T[]".into();
            let mut feed = hub.feed(key.clone(), None).await.unwrap();
            for i in 1..=n {
                hub.publish_json(key.clone(), i.to_string().into())
                    .await
                    .unwrap();
            }
            let mut expect = vec![Seen::Start(0)];
            if first > 1 {
                expect.push(Seen::Gap(first - 1));
            }
            expect.extend((first..=n).map(Seen::Item));
            assert_eq!(drain(&mut feed).await, expect, "history of {max_items}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Replay + live is exactly the published sequence after the position (or after
        /// the gap, when history cannot cover it), whatever the interleaving and trimming.
        #[test]
        fn replay_then_live_is_the_sequence_after_the_position(
            max_items in 0usize..12,
            ops in proptest::collection::vec(op(), 1..40),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let hub = Hub::memory_with(HistoryLimits { max_items, max_age: std::time::Duration::from_secs(3600) });
                let key: Arc<str> = "T[1]".into();
                let epoch = hub.backend.open(key.clone()).await.unwrap().now.epoch;
                let mut published = 0u64;
                let mut subscribers = Vec::new();
                for op in ops {
                    match op {
                        Op::Publish(n) => {
                            for _ in 0..n {
                                published += 1;
                                let json: Arc<str> = published.to_string().into();
                                let at = hub.publish_json(key.clone(), json).await.unwrap();
                                prop_assert_eq!(at.offset, published);
                                prop_assert_eq!(&at.epoch, &epoch);
                            }
                        }
                        Op::Subscribe(since) => {
                            let first_kept = published - (published.min(max_items as u64)) + 1;
                            let mut expect = Vec::new();
                            let position = since.map(|(offset, same)| Position {
                                epoch: if same { epoch.clone() } else { "other".into() },
                                offset: u64::from(offset),
                            });
                            let from = match &position {
                                None => {
                                    expect.push(Seen::Start(published));
                                    published
                                }
                                Some(p) => {
                                    let same = p.epoch == epoch;
                                    if same && p.offset + 1 >= first_kept && p.offset <= published {
                                        p.offset
                                    } else if same && p.offset > published {
                                        // Ahead of the key: a gap back to where it is.
                                        expect.push(Seen::Gap(published));
                                        published
                                    } else {
                                        // Trimmed, or another epoch (even at offset 0).
                                        expect.push(Seen::Gap(first_kept - 1));
                                        first_kept - 1
                                    }
                                }
                            };
                            let feed = hub.feed(key.clone(), position).await.unwrap();
                            subscribers.push((feed, expect, from));
                        }
                    }
                }
                for (mut feed, mut expect, from) in subscribers {
                    expect.extend((from + 1..=published).map(Seen::Item));
                    prop_assert_eq!(drain(&mut feed).await, expect);
                }
                Ok(())
            })?;
        }
    }
}
