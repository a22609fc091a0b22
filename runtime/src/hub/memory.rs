// Over ~500 lines with its unit tests (the code is ~540): one backend whose keys, history,
// live ring and fan-out share one lock; its bounds are already apart in memory/bounds.rs.
//! The hub of one process: positions, history and fan-out in memory, within bounds.
//!
//! A key costs what it holds. A key holds its position (epoch and offset), its history,
//! and, while it has subscribers, a small live ring. Keys with history or subscribers are
//! *active* (at most [`MemoryOptions::max_keys`]); history is bounded per key
//! ([`HistoryLimits`]) and in all ([`MemoryOptions::max_history_bytes`]). At a bound the
//! hub drops the history of the keys published least recently: a subscriber that comes back
//! for it is told of a gap. A key with neither history nor subscribers leaves a
//! *tombstone* — its position, so that a subscriber resuming there is not told of a gap
//! that did not happen — at most `max_keys` of them, the oldest forgotten first; a key
//! nothing was published to leaves nothing.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{
    resume, Backend, BoxFuture, Entry, HistoryLimits, MemoryOptions, Opened, Position,
    PublishError, Replay,
};
use crate::error::RpcError;
use crate::telemetry;

/// Publications a subscriber of the Redis hub may fall behind its node's live fan-out
/// before it reads the rest from history instead.
#[cfg(any(feature = "redis", test))]
pub(crate) const LIVE_BUFFER: usize = 1024;

/// The same for a subscriber of the memory hub: the ring exists while the key has
/// subscribers (about 32 bytes a slot). Further behind, a subscriber reads what it missed
/// from the key's history (one lock), or is told of a gap where history does not have it.
pub(crate) const KEY_LIVE_BUFFER: usize = 16;

/// Publications between two sweeps of history past its age.
const SWEEP_EVERY: u64 = 4096;

/// What a publication kept in history costs besides its JSON text, as counted against
/// [`MemoryOptions::max_history_bytes`] (the entry, its place in the key's ring, the
/// allocator's rounding).
pub(crate) const ENTRY_COST: usize = 128;

pub(crate) struct Memory {
    options: MemoryOptions,
    /// Slots of a key's live ring ([`KEY_LIVE_BUFFER`]).
    live_buffer: usize,
    state: Mutex<State>,
}

struct State {
    keys: HashMap<Arc<str>, Key>,
    /// Keys with history or subscribers.
    active: usize,
    /// Keys with subscribers.
    subscribed: usize,
    /// Keys that only remember their position.
    tombstones: usize,
    /// What the history of every key costs ([`cost`]).
    history_bytes: usize,
    /// Keys with history, the least recently published first: `(stamp, key)`, valid while
    /// the key's stamp is that one and it has history (others are skipped).
    by_age: VecDeque<(u64, Arc<str>)>,
    /// Tombstones, the oldest first (valid likewise).
    graves: VecDeque<(u64, Arc<str>)>,
    /// The last stamp given.
    stamp: u64,
    /// Makes the epoch of a key that starts without a tombstone (a hash of its name):
    /// replaced whenever a tombstone is forgotten, so that a key never reuses offsets in
    /// an epoch.
    fresh: RandomState,
    published: u64,
}

struct Key {
    epoch: Arc<str>,
    offset: u64,
    history: VecDeque<(Instant, Arc<Entry>)>,
    /// Feeds of this key.
    subscribers: usize,
    /// Their live ring, while there are any.
    live: Option<broadcast::Sender<Arc<Entry>>>,
    /// Of the key's last entry in `by_age` or `graves`.
    stamp: u64,
}

/// What a key is, for the counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Not in the map (or to be removed: no position worth keeping).
    Absent,
    Tombstone,
    Active,
}

/// The hub holds `max_keys` active keys, and none of them can give way.
struct Full(usize);

impl Full {
    fn message(&self) -> String {
        format!(
            "the hub holds its limit of {} topic keys, every one with subscribers; no new key until some are released",
            self.0
        )
    }
}

fn cost(entry: &Entry) -> usize {
    entry.json.len() + ENTRY_COST
}

impl Key {
    fn new(epoch: Arc<str>) -> Self {
        Key {
            epoch,
            offset: 0,
            history: VecDeque::new(),
            subscribers: 0,
            live: None,
            stamp: 0,
        }
    }

    fn class(&self) -> Class {
        if self.subscribers > 0 || !self.history.is_empty() {
            Class::Active
        } else if self.offset > 0 {
            Class::Tombstone
        } else {
            Class::Absent
        }
    }

    fn now(&self) -> Position {
        Position {
            epoch: self.epoch.to_string(),
            offset: self.offset,
        }
    }

    /// Drop what is past the limits; the bytes freed.
    fn trim(&mut self, limits: &HistoryLimits, now: Instant) -> usize {
        let mut freed = 0;
        while self.history.len() > limits.max_items {
            freed += self.history.pop_front().map_or(0, |(_, e)| cost(&e));
        }
        while let Some((at, e)) = self.history.front() {
            if now.duration_since(*at) <= limits.max_age {
                break;
            }
            freed += cost(e);
            self.history.pop_front();
        }
        if self.history.is_empty() {
            // A ring grown for a burst gives its memory back.
            self.history = VecDeque::new();
        }
        freed
    }

    /// Drop all history; the bytes freed.
    fn forget_history(&mut self) -> usize {
        let freed = self.history.iter().map(|(_, e)| cost(e)).sum();
        self.history = VecDeque::new();
        freed
    }
}

/// The counts a report compares.
#[derive(Clone, Copy)]
struct Counts {
    active: usize,
    tombstones: usize,
    history_bytes: usize,
}

impl State {
    fn new() -> Self {
        State {
            keys: HashMap::new(),
            active: 0,
            subscribed: 0,
            tombstones: 0,
            history_bytes: 0,
            by_age: VecDeque::new(),
            graves: VecDeque::new(),
            stamp: 0,
            fresh: RandomState::new(),
            published: 0,
        }
    }

    fn counts(&self) -> Counts {
        Counts {
            active: self.active,
            tombstones: self.tombstones,
            history_bytes: self.history_bytes,
        }
    }

    /// Tell the metrics what changed since `before`.
    fn report(&self, before: Counts) {
        telemetry::hub_changed(
            self.active as i64 - before.active as i64,
            self.tombstones as i64 - before.tombstones as i64,
            self.history_bytes as i64 - before.history_bytes as i64,
        );
    }

    fn class_of(&self, key: &str) -> Class {
        self.keys.get(key).map_or(Class::Absent, Key::class)
    }

    /// The epoch `key` starts in when it has no tombstone: the same while no tombstone is
    /// forgotten, another for every key.
    fn fresh_epoch(&self, key: &str) -> Arc<str> {
        format!("{:016x}", self.fresh.hash_one(key)).into()
    }

    /// `key`, made if it is not there.
    fn key(&mut self, key: &Arc<str>) -> &mut Key {
        if !self.keys.contains_key(key) {
            let epoch = self.fresh_epoch(key);
            self.keys.insert(key.clone(), Key::new(epoch));
        }
        self.keys.get_mut(key).expect("just made")
    }

    fn next_stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }

    /// `key` was `before` and may have changed: update the counts, remember a new
    /// tombstone, remove a key that holds nothing worth keeping.
    fn settle(&mut self, key: &Arc<str>, before: Class) {
        let after = self.class_of(key);
        if after == before {
            return;
        }
        match before {
            Class::Active => self.active -= 1,
            Class::Tombstone => self.tombstones -= 1,
            Class::Absent => {}
        }
        match after {
            Class::Active => self.active += 1,
            Class::Tombstone => {
                self.tombstones += 1;
                let stamp = self.next_stamp();
                if let Some(k) = self.keys.get_mut(key) {
                    k.stamp = stamp;
                }
                self.graves.push_back((stamp, key.clone()));
                if self.graves.len() > 2 * self.tombstones + 1024 {
                    let keys = &self.keys;
                    self.graves.retain(|(stamp, name)| {
                        keys.get(name)
                            .is_some_and(|k| k.stamp == *stamp && k.class() == Class::Tombstone)
                    });
                }
            }
            Class::Absent => {
                self.keys.remove(key);
            }
        }
    }

    /// `key` was published to and has history: it is now the most recent.
    fn touch(&mut self, key: &Arc<str>) {
        let Some(k) = self.keys.get(key) else {
            return;
        };
        if self.by_age.back().is_some_and(|(s, _)| *s == k.stamp) {
            return; // already the most recent
        }
        let stamp = self.next_stamp();
        if let Some(k) = self.keys.get_mut(key) {
            k.stamp = stamp;
        }
        self.by_age.push_back((stamp, key.clone()));
        if self.by_age.len() > 2 * self.active + 1024 {
            let keys = &self.keys;
            self.by_age.retain(|(stamp, name)| {
                keys.get(name)
                    .is_some_and(|k| k.stamp == *stamp && !k.history.is_empty())
            });
        }
    }

    /// Drop the history of the least recently published key that has some, if it has no
    /// subscribers or `subscribed_too`: whether one was found.
    fn evict_oldest(&mut self, subscribed_too: bool) -> bool {
        let mut skipped = Vec::new();
        let mut found = None;
        for _ in 0..self.by_age.len() {
            let Some((stamp, name)) = self.by_age.pop_front() else {
                break;
            };
            let Some(k) = self.keys.get(&name) else {
                continue;
            };
            if k.stamp != stamp || k.history.is_empty() {
                continue; // stale
            }
            if k.subscribers > 0 && !subscribed_too {
                skipped.push(name);
                continue;
            }
            found = Some(name);
            break;
        }
        // Keys passed over stay, as the most recent (they have subscribers).
        for name in skipped {
            let stamp = self.next_stamp();
            if let Some(k) = self.keys.get_mut(&name) {
                k.stamp = stamp;
            }
            self.by_age.push_back((stamp, name));
        }
        let Some(name) = found else {
            return false;
        };
        let before = self.class_of(&name);
        if let Some(k) = self.keys.get_mut(&name) {
            self.history_bytes -= k.forget_history();
        }
        self.settle(&name, before);
        true
    }

    /// Room for one more active key: drop the history of the least recently published key
    /// without subscribers if the hub holds `max_keys`.
    fn make_room(&mut self, max_keys: usize) -> Result<(), Full> {
        while self.active >= max_keys {
            if self.active == self.subscribed || !self.evict_oldest(false) {
                telemetry::hub_refused();
                return Err(Full(max_keys));
            }
            telemetry::hub_evicted("max_keys");
        }
        Ok(())
    }

    /// Within the bounds on history bytes and tombstones.
    fn enforce(&mut self, options: &MemoryOptions) {
        while self.history_bytes > options.max_history_bytes && self.evict_oldest(true) {
            telemetry::hub_evicted("max_history_bytes");
        }
        while self.tombstones > options.max_keys {
            let Some((stamp, name)) = self.graves.pop_front() else {
                break;
            };
            let valid = self
                .keys
                .get(&name)
                .is_some_and(|k| k.stamp == stamp && k.class() == Class::Tombstone);
            if valid {
                self.keys.remove(&name);
                self.tombstones -= 1;
                // That key may start again at offset 0: in an epoch it never had.
                self.fresh = RandomState::new();
                telemetry::hub_evicted("tombstones");
            }
        }
    }

    /// Drop history past its age, everywhere.
    fn sweep(&mut self, limits: &HistoryLimits, now: Instant) {
        let mut emptied = Vec::new();
        for (name, k) in self.keys.iter_mut() {
            if k.history.is_empty() {
                continue;
            }
            let freed = k.trim(limits, now);
            self.history_bytes -= freed;
            if k.history.is_empty() {
                emptied.push(name.clone());
            }
        }
        for name in emptied {
            self.settle(&name, Class::Active);
        }
    }
}

impl Memory {
    pub(crate) fn new(options: MemoryOptions) -> Self {
        Memory {
            options,
            live_buffer: KEY_LIVE_BUFFER,
            state: Mutex::new(State::new()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish_now(&self, key: Arc<str>, json: Arc<str>) -> Result<Position, PublishError> {
        let now = Instant::now();
        let limits = self.options.history;
        let mut state = self.state();
        let counts = state.counts();
        state.published += 1;
        if state.published.is_multiple_of(SWEEP_EVERY) {
            state.sweep(&limits, now);
        }
        let before = state.class_of(&key);
        if before != Class::Active && limits.max_items > 0 {
            if let Err(full) = state.make_room(self.options.max_keys) {
                state.report(counts);
                return Err(PublishError::LimitExceeded(full.message()));
            }
        }
        let k = state.key(&key);
        k.offset += 1;
        let entry = Arc::new(Entry::new(k.epoch.clone(), k.offset, json));
        let mut added = 0;
        if limits.max_items > 0 {
            added = cost(&entry);
            k.history.push_back((now, entry.clone()));
        }
        let freed = k.trim(&limits, now);
        if let Some(live) = &k.live {
            // No receiver is fine: nobody listens.
            let _ = live.send(entry);
        }
        let position = k.now();
        let kept = !k.history.is_empty();
        state.history_bytes = state.history_bytes + added - freed;
        if kept {
            state.touch(&key);
        }
        state.settle(&key, before);
        state.enforce(&self.options);
        state.report(counts);
        Ok(position)
    }

    fn open_now(&self, key: Arc<str>) -> Result<Opened, RpcError> {
        let mut state = self.state();
        let counts = state.counts();
        let before = state.class_of(&key);
        if before != Class::Active {
            if let Err(full) = state.make_room(self.options.max_keys) {
                state.report(counts);
                return Err(RpcError::limit_exceeded(full.message()));
            }
        }
        let k = state.key(&key);
        k.subscribers += 1;
        let first = k.subscribers == 1;
        let live = k
            .live
            .get_or_insert_with(|| broadcast::channel(self.live_buffer).0)
            .subscribe();
        let now = k.now();
        if first {
            state.subscribed += 1;
        }
        state.settle(&key, before);
        state.enforce(&self.options);
        state.report(counts);
        Ok(Opened { live, now })
    }

    fn release_now(&self, key: &str) {
        let mut state = self.state();
        let counts = state.counts();
        let Some((name, k)) = state.keys.get_key_value(key) else {
            return;
        };
        let name = name.clone();
        let before = k.class();
        let k = state.keys.get_mut(key).expect("just found");
        k.subscribers = k.subscribers.saturating_sub(1);
        if k.subscribers == 0 {
            k.live = None;
            state.subscribed -= 1;
        }
        state.settle(&name, before);
        state.enforce(&self.options);
        state.report(counts);
    }

    fn replay_now(&self, key: &str, after: &Position) -> Replay {
        let now = Instant::now();
        let mut state = self.state();
        let counts = state.counts();
        let Some((name, k)) = state.keys.get_key_value(key) else {
            // Nothing known of the key (a feed holds its key, so only without one): it
            // starts afresh.
            let (from, lost) = resume(after, &state.fresh_epoch(key), 0, None);
            return Replay {
                lost,
                from,
                items: Vec::new(),
            };
        };
        let (name, before) = (name.clone(), k.class());
        let k = state.keys.get_mut(key).expect("just found");
        let freed = k.trim(&self.options.history, now);
        let first = k.history.front().map(|(_, e)| e.offset);
        let (from, lost) = resume(after, &k.epoch, k.offset, first);
        let replay = Replay {
            lost,
            items: k
                .history
                .iter()
                .filter(|(_, e)| e.offset > from.offset)
                .map(|(_, e)| e.clone())
                .collect(),
            from,
        };
        state.history_bytes -= freed;
        state.settle(&name, before);
        state.report(counts);
        replay
    }
}

impl Backend for Memory {
    fn publish(&self, key: Arc<str>, json: Arc<str>) -> BoxFuture<Result<Position, PublishError>> {
        let position = self.publish_now(key, json);
        Box::pin(async move { position })
    }

    fn open(&self, key: Arc<str>) -> BoxFuture<Result<Opened, RpcError>> {
        let opened = self.open_now(key);
        Box::pin(async move { opened })
    }

    fn release(&self, key: &str) {
        self.release_now(key);
    }

    fn replay(&self, key: Arc<str>, after: Position) -> BoxFuture<Result<Replay, RpcError>> {
        let replay = self.replay_now(&key, &after);
        Box::pin(async move { Ok(replay) })
    }
}

#[cfg(test)]
mod bounds;

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
        let n = KEY_LIVE_BUFFER as u64 + 500;
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
                // A live ring that holds every publication: this is about history and
                // replay (falling behind the ring is the test above).
                let mut memory = Memory::new(MemoryOptions::default().history(HistoryLimits { max_items, max_age: std::time::Duration::from_secs(3600) }));
                memory.live_buffer = 1024;
                let hub = Hub { backend: Arc::new(memory), kind: "memory" };
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
