//! The hub of one process: positions, history and fan-out in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{
    new_epoch, Backend, BoxFuture, Entry, HistoryLimits, Opened, Position, PublishError, Replay,
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
        if state.published % SWEEP_EVERY == 0 {
            let limits = self.history;
            state.keys.retain(|_, k| {
                k.trim(&limits, now);
                !k.history.is_empty() || k.live.receiver_count() > 0
            });
        }
        let k = state.keys.entry(key).or_insert_with(Key::new);
        k.offset += 1;
        let entry = Arc::new(Entry {
            epoch: k.epoch.clone(),
            offset: k.offset,
            json,
        });
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
        let Some(k) = state.keys.get_mut(key) else {
            // Never published (or swept): the key starts in a new epoch.
            let fresh = Key::new();
            let from = fresh.now();
            state.keys.insert(key.into(), fresh);
            return Replay {
                lost: after.offset > 0,
                from,
                items: Vec::new(),
            };
        };
        k.trim(&self.history, now);
        let first = k.history.front().map_or(k.offset + 1, |(_, e)| e.offset);
        let same_epoch = *k.epoch == *after.epoch;
        if same_epoch && after.offset + 1 >= first && after.offset <= k.offset {
            let skip = (after.offset + 1 - first) as usize;
            return Replay {
                lost: false,
                from: after.clone(),
                items: k
                    .history
                    .iter()
                    .skip(skip)
                    .map(|(_, e)| e.clone())
                    .collect(),
            };
        }
        Replay {
            // A subscriber that saw nothing (offset 0) lost nothing if history is whole.
            lost: !(after.offset == 0 && first == 1),
            from: Position {
                epoch: k.epoch.to_string(),
                offset: first - 1,
            },
            items: k.history.iter().map(|(_, e)| e.clone()).collect(),
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
