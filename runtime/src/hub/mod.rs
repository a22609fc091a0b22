// Over ~500 lines with its unit tests (the code is ~680): the hub's public types (Hub, Topic,
// Position, Gap, limits, PublishError), the backend seam, the feed of one subscription and
// `$since` resumption, which all read the same position rules. The next cut, when the hub
// changes: the feed and resumption into a file of their own.
//! Topics: typed publish/subscribe through a hub.
//!
//! A `topic` of a service (`topic room(room: string) -> Message;` in a `.wire` file) is a
//! stream whose items come from publications instead of a handler. Its parameters form the
//! **topic key** (`Chat.room` + `["lobby"]`). Server code publishes through a typed
//! [`Topic`] handle (generated per topic, e.g. `ChatTopics::new(&hub).room("lobby")`);
//! clients subscribe exactly as to a stream.
//!
//! Publications go through a [`Hub`]:
//! - [`Hub::memory`] (the default of every server) keeps everything in the process;
//! - `Hub::redis` (cargo feature `redis`) carries publications between the nodes of a
//!   deployment through Redis, so that every subscriber on every node receives every
//!   publication of its key, in one order.
//!
//! **Positions.** Every topic key has an *epoch* (a string that changes when the key's
//! history is lost) and an *offset* that grows by exactly 1 per publication. Every item
//! carries its [`Position`]. A subscriber that comes back with the position of the last item
//! it saw (the Rust and TypeScript clients do this by themselves after a reconnect) gets
//! every item after it from the key's history, then live items: in order, none twice,
//! none missing. When the history cannot cover it (another epoch, or trimmed), the
//! subscriber is told with a [`Gap`] and continues from there. History is bounded by count
//! and age ([`HistoryLimits`]).
//!
//! **Bounds.** A client that picks keys (a WAMP publisher, a subscriber, a handler that
//! publishes to a key named by its caller) cannot take a server's memory: a memory hub
//! holds at most [`MemoryOptions::max_keys`] keys with history or subscribers and
//! [`MemoryOptions::max_history_bytes`] of history, and gives way by dropping the history
//! of the keys published least recently (their subscribers are told of the gap when they
//! come back). Only when every key it holds has subscribers does it refuse a new key:
//! the publication fails with [`PublishError::LimitExceeded`], the subscription with
//! `-32005`. A Redis hub's keys expire after their last publication (`RedisOptions`'s
//! `key_ttl`, twice the history's age by default).
//!
//! The wire is in `docs/PROTOCOL.md` ("Topics").

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::broadcast;

use crate::error::RpcError;

mod memory;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::RedisOptions;

/// Where a publication stands in its topic key's sequence.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Changes whenever the key's history is lost (a new hub, a Redis that lost its data).
    pub epoch: String,
    /// The publication's number in the epoch: 1 for the first, then exactly 1 more each
    /// time. A position with offset 0 is "before the first publication".
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.epoch, self.offset)
    }
}

/// A subscriber missed publications that can no longer be delivered: its position was in
/// another epoch, or older than the history kept. It continues after `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The last position the subscriber had, if any.
    pub from: Option<Position>,
    /// Where it continues: the next item has offset `to.offset + 1` in epoch `to.epoch`.
    pub to: Position,
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.from {
            Some(from) => write!(
                f,
                "publications after {from} are lost; continuing after {}",
                self.to
            ),
            None => write!(f, "publications are lost; continuing after {}", self.to),
        }
    }
}

/// How much history a hub keeps per topic key, for subscribers that come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Most publications kept per key (default 1 000).
    pub max_items: usize,
    /// Oldest publication kept (default 10 minutes).
    pub max_age: Duration,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            max_items: 1000,
            max_age: Duration::from_secs(600),
        }
    }
}

/// How much a memory hub ([`Hub::memory_with_options`]) holds: per key, and in all.
///
/// The defaults fit a server with 1 GB of memory, with room for its connections: about
/// 300 MB at most for the hub (a key with an item of history costs some 700 bytes, a
/// remembered position some 200, a subscribed key's ring about 1 KB, history what its
/// bytes say and up to as much again once its items have been sent to subscribers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryOptions {
    /// History kept per topic key (default 1 000 items / 10 minutes).
    pub history: HistoryLimits,
    /// Most keys with history or subscribers (default 100 000). A new key beyond it
    /// takes the place of the key without subscribers published least recently, whose
    /// history is dropped; when every key has subscribers, the new key is refused. As
    /// many keys again may be remembered by position only (so that a subscriber coming
    /// back is told exactly what it missed, or that it missed nothing); beyond that the
    /// oldest are forgotten, and their subscribers told of a gap when they come back.
    pub max_keys: usize,
    /// Most history in all keys, in bytes: each item's JSON text plus 128 (default
    /// 64 MiB). Beyond it the history of the keys published least recently is dropped.
    pub max_history_bytes: usize,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            history: HistoryLimits::default(),
            max_keys: 100_000,
            max_history_bytes: 64 << 20,
        }
    }
}

impl MemoryOptions {
    /// These options with other history limits per key.
    pub fn history(mut self, history: HistoryLimits) -> Self {
        self.history = history;
        self
    }

    /// These options with another bound on keys.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// These options with another bound on history bytes.
    pub fn max_history_bytes(mut self, max_history_bytes: usize) -> Self {
        self.max_history_bytes = max_history_bytes;
        self
    }
}

/// Why a publication failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The item could not be serialized to JSON. Nobody received it.
    #[error("the item could not be serialized: {0}")]
    Encode(#[from] serde_json::Error),
    /// The hub's backend (Redis) could not be reached or refused the publication. Nobody
    /// received it: publishing it again is safe.
    #[error("the hub is unavailable: {0}")]
    Unavailable(String),
    /// The hub's backend did not answer in time, or its connection dropped after the
    /// publication was sent: it may have been delivered to every subscriber, or to none.
    /// Publishing it again may deliver it twice; a publisher that must not repeat itself
    /// checks (e.g. reads the topic) before it does.
    #[error("the publication's outcome is unknown (it may have been delivered): {0}")]
    OutcomeUnknown(String),
    /// The publication would make a new topic key, and the hub holds as many as it may
    /// (every one with subscribers): see [`MemoryOptions::max_keys`].
    #[error("the hub refused a new topic key: {0}")]
    LimitExceeded(String),
}

impl PublishError {
    /// `-32008 Publication failed` with `data` `{"reason": R, "message": "…"}`, `R` being
    /// `encode`, `unavailable`, `outcome_unknown` or `limit_exceeded`: what a handler's `?` on a publication
    /// answers.
    pub fn to_rpc_error(&self) -> crate::error::RpcError {
        let reason = match self {
            PublishError::Encode(_) => "encode",
            PublishError::Unavailable(_) => "unavailable",
            PublishError::OutcomeUnknown(_) => "outcome_unknown",
            PublishError::LimitExceeded(_) => "limit_exceeded",
        };
        crate::error::RpcError::new(crate::error::code::PUBLISH_FAILED, "Publication failed")
            .with_data(serde_json::json!({ "reason": reason, "message": self.to_string() }))
    }
}

/// One publication as the hub keeps it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) epoch: Arc<str>,
    pub(crate) offset: u64,
    pub(crate) json: Arc<str>,
    /// The part of its notification every subscriber shares, made by the first one.
    suffix: std::sync::OnceLock<Box<str>>,
}

impl Entry {
    pub(crate) fn new(epoch: Arc<str>, offset: u64, json: Arc<str>) -> Self {
        Entry {
            epoch,
            offset,
            json,
            suffix: std::sync::OnceLock::new(),
        }
    }

    /// `,"result":ITEM,"epoch":"E","offset":N}}`: serialized once for all subscribers.
    pub(crate) fn notification_suffix(&self) -> &str {
        self.suffix.get_or_init(|| {
            crate::codec::message::topic_item_suffix(&self.json, &self.epoch, self.offset).into()
        })
    }
}

/// What a subscriber receives.
#[derive(Debug)]
pub(crate) enum Event {
    /// Where the subscription starts (sent once, first, to a subscriber without a
    /// position).
    Start(Position),
    /// A publication.
    Item(Arc<Entry>),
    /// Publications were lost; continue after this position.
    Gap(Position),
}

/// What a backend can say about a key's history after a position.
pub(crate) struct Replay {
    /// The position `items` follow: the one asked for, or a later one (or one in another
    /// epoch) when history does not reach back that far.
    pub(crate) from: Position,
    /// Whether publications between the position asked for and `from` are lost.
    pub(crate) lost: bool,
    /// The publications after `from`, in order.
    pub(crate) items: Vec<Arc<Entry>>,
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A hub's engine: where publications get their position and are kept.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Give the publication the key's next position, keep it in history, deliver it to
    /// every subscriber (here and on other nodes).
    fn publish(&self, key: Arc<str>, json: Arc<str>) -> BoxFuture<Result<Position, PublishError>>;
    /// Start receiving the key's live publications, and say where the key stands now
    /// (publications at or before that position are not received live).
    fn open(&self, key: Arc<str>) -> BoxFuture<Result<Opened, RpcError>>;
    /// The key's publications after `after`, from history.
    fn replay(&self, key: Arc<str>, after: Position) -> BoxFuture<Result<Replay, RpcError>>;
    /// A feed of the key (from [`Backend::open`]) is gone.
    fn release(&self, _key: &str) {}
}

pub(crate) struct Opened {
    pub(crate) live: broadcast::Receiver<Arc<Entry>>,
    pub(crate) now: Position,
}

/// Publications go through a hub: in one process ([`Hub::memory`]) or between the nodes
/// of a deployment (`Hub::redis`, feature `redis`). Cheap to clone; clones are the same
/// hub.
///
/// A server uses the hub given to [`crate::server::ServerBuilder::hub`], or a memory hub of its
/// own ([`crate::server::ServerHandle::hub`]); handlers reach it with [`crate::Context::hub`].
#[derive(Clone)]
pub struct Hub {
    backend: Arc<dyn Backend>,
    kind: &'static str,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub").field("kind", &self.kind).finish()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub::memory()
    }
}

impl Hub {
    /// A hub in this process, with the default [`HistoryLimits`].
    pub fn memory() -> Hub {
        Hub::memory_with(HistoryLimits::default())
    }

    /// A hub in this process that keeps `history` per topic key (and the default bounds
    /// of [`MemoryOptions`]).
    pub fn memory_with(history: HistoryLimits) -> Hub {
        Hub::memory_with_options(MemoryOptions::default().history(history))
    }

    /// A hub in this process, with options.
    pub fn memory_with_options(options: MemoryOptions) -> Hub {
        Hub {
            backend: Arc::new(memory::Memory::new(options)),
            kind: "memory",
        }
    }

    /// A hub that carries publications between nodes through the Redis server at `url`
    /// (e.g. `redis://127.0.0.1:6379/`), with the default [`RedisOptions`]. Every node of
    /// a deployment uses the same Redis (and key prefix). Connects before it returns.
    ///
    /// A Redis Cluster: the URLs of some of its masters separated by commas
    /// (`redis://10.0.0.1:7000,redis://10.0.0.2:7000`), or the URL of any one of its nodes
    /// (the hub asks it whether it runs in cluster mode, and finds the others). Each topic
    /// key lives on the master of its slot; a master that fails is a gap for its keys only
    /// (docs/PROTOCOL.md, "Topics", "A Redis Cluster").
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str) -> Result<Hub, PublishError> {
        Hub::redis_with(url, RedisOptions::default()).await
    }

    /// [`Hub::redis`] with options.
    #[cfg(feature = "redis")]
    pub async fn redis_with(url: &str, options: RedisOptions) -> Result<Hub, PublishError> {
        Ok(Hub {
            backend: Arc::new(self::redis::Redis::connect(url, options).await?),
            kind: "redis",
        })
    }

    /// The typed handle of one topic key: `name` is the topic's wire name
    /// (`Chat.room`), `key` its key parameters in order. Generated `…Topics` structs call
    /// this; by hand, `hub.topic::<Message>("Chat.room", &("lobby",))`.
    pub fn topic<T: Serialize + ?Sized>(
        &self,
        name: &str,
        key: &impl Serialize,
    ) -> Result<Topic<T>, PublishError> {
        Ok(Topic {
            hub: self.clone(),
            key: topic_key(name, &serde_json::to_string(key)?).into(),
            _item: PhantomData,
        })
    }

    /// Publish JSON text (already serialized) to the topic key `key` (from
    /// [`topic_key`]).
    pub(crate) async fn publish_json(
        &self,
        key: Arc<str>,
        json: Arc<str>,
    ) -> Result<Position, PublishError> {
        self.backend.publish(key, json).await
    }

    /// Subscribe to a topic key; with `since`, first everything after it.
    pub(crate) async fn feed(
        &self,
        key: Arc<str>,
        since: Option<Position>,
    ) -> Result<Feed, RpcError> {
        if let Some(since) = &since {
            if since.offset > MAX_OFFSET {
                return Err(impossible_position(since));
            }
        }
        let opened = self.backend.open(key.clone()).await?;
        let mut feed = Feed {
            backend: self.backend.clone(),
            key,
            live: opened.live,
            position: opened.now.clone(),
            pending: VecDeque::new(),
            dead: VecDeque::new(),
        };
        match since {
            None => feed.pending.push_back(Event::Start(opened.now)),
            Some(since) => {
                feed.position = since;
                feed.catch_up().await?;
            }
        }
        Ok(feed)
    }
}

/// The hub's name of a topic key: the topic's wire name and its key values as a JSON
/// array (`Chat.room["lobby"]`).
pub(crate) fn topic_key(name: &str, key_json: &str) -> String {
    format!("{name}{key_json}")
}

/// One topic key of a hub, for publishing items of type `T`. Cheap to clone.
pub struct Topic<T: ?Sized> {
    hub: Hub,
    key: Arc<str>,
    _item: PhantomData<fn(&T)>,
}

impl<T: ?Sized> Clone for Topic<T> {
    fn clone(&self) -> Self {
        Topic {
            hub: self.hub.clone(),
            key: self.key.clone(),
            _item: PhantomData,
        }
    }
}

impl<T: ?Sized> fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic").field("key", &self.key).finish()
    }
}

impl<T: Serialize + ?Sized> Topic<T> {
    /// Publish `item` to every subscriber of this key, on every node: its position once
    /// the hub has it. An error means no subscriber gets it, except
    /// [`PublishError::OutcomeUnknown`]: it may have been delivered.
    pub async fn publish(&self, item: &T) -> Result<Position, PublishError> {
        let json: Arc<str> = crate::codec::json::to_string(item)?.into();
        self.hub.publish_json(self.key.clone(), json).await
    }

    /// The key as the hub names it (`Chat.room["lobby"]`).
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Backoff between attempts to read history while the backend is unreachable.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Epochs a feed remembers as not current (dead, or another deployment's): their live
/// publications are dropped without asking history again.
const DEAD_EPOCHS: usize = 8;

/// One subscriber's view of a topic key: live publications, with what it missed filled
/// in from history (or announced as a gap), each delivered once, in order.
///
/// Only history moves a feed to another epoch: a live publication of an epoch other than
/// the feed's makes it ask history, and history says which epoch is the key's. A live
/// publication of any other epoch (a dead one still in the live buffer, or a foreign one)
/// is dropped. Dropped, it releases the key.
pub(crate) struct Feed {
    backend: Arc<dyn Backend>,
    key: Arc<str>,
    live: broadcast::Receiver<Arc<Entry>>,
    /// The last position delivered (or the start).
    position: Position,
    pending: VecDeque<Event>,
    /// Epochs known not to be the key's (most recent last).
    dead: VecDeque<Arc<str>>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.backend.release(&self.key);
    }
}

impl Feed {
    /// The next event; `None` when the hub is gone.
    pub(crate) async fn next(&mut self) -> Option<Event> {
        // The catch-up (history reads, retries) is boxed: it is rare, and inline it would
        // make every subscription's waiting task that much larger.
        loop {
            if let Some(event) = self.pending.pop_front() {
                if self.pending.is_empty() {
                    // A waiting subscription keeps no buffer for the catch-ups it had
                    // (every subscription has one: its start position).
                    self.pending = VecDeque::new();
                }
                return Some(event);
            }
            match self.live.recv().await {
                Ok(entry) => {
                    if entry.offset == 0 {
                        // The backend may have missed publications (its link to the
                        // other nodes was down): check history.
                        Box::pin(self.catch_up_retrying()).await;
                        continue;
                    }
                    if *entry.epoch == *self.position.epoch {
                        if entry.offset <= self.position.offset {
                            continue; // delivered from history already
                        }
                        if Some(entry.offset) == self.position.offset.checked_add(1) {
                            self.position.offset = entry.offset;
                            return Some(Event::Item(entry));
                        }
                    } else if self.dead.contains(&entry.epoch) {
                        continue;
                    }
                    // Publications are missing before this one (or it is of another
                    // epoch): fill in from history, then take this one if still new.
                    Box::pin(self.catch_up_retrying()).await;
                    self.accept(entry);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    Box::pin(self.catch_up_retrying()).await
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    fn bury(&mut self, epoch: Arc<str>) {
        if self.dead.contains(&epoch) {
            return;
        }
        if self.dead.len() == DEAD_EPOCHS {
            self.dead.pop_front();
        }
        self.dead.push_back(epoch);
    }

    /// Queue `entry` if it is the next position (after history was read).
    fn accept(&mut self, entry: Arc<Entry>) {
        if *entry.epoch != *self.position.epoch {
            // History says another epoch is the key's: this one is dead or foreign.
            tracing::debug!(
                key = &*self.key,
                epoch = &*entry.epoch,
                "dropped a publication of an epoch that is not the key's"
            );
            self.bury(entry.epoch.clone());
            return;
        }
        if Some(entry.offset) == self.position.offset.checked_add(1) {
            self.position.offset = entry.offset;
            self.pending.push_back(Event::Item(entry));
        } else if entry.offset > self.position.offset {
            // History could not say more (it keeps nothing, or was trimmed meanwhile): a
            // gap.
            let to = Position {
                epoch: entry.epoch.to_string(),
                offset: entry.offset - 1,
            };
            self.pending.push_back(Event::Gap(to));
            self.position.offset = entry.offset;
            self.pending.push_back(Event::Item(entry));
        }
    }

    /// Queue what history has after the position.
    async fn catch_up(&mut self) -> Result<(), RpcError> {
        let replay = self
            .backend
            .replay(self.key.clone(), self.position.clone())
            .await?;
        if replay.lost {
            self.pending.push_back(Event::Gap(replay.from.clone()));
        }
        if replay.from.epoch != self.position.epoch {
            let old: Arc<str> = std::mem::take(&mut self.position.epoch).into();
            self.bury(old);
        }
        self.position = replay.from;
        for entry in replay.items {
            self.accept(entry);
        }
        Ok(())
    }

    /// [`Feed::catch_up`], waiting (with backoff) while the backend is unreachable.
    async fn catch_up_retrying(&mut self) {
        let mut wait = Duration::from_millis(50);
        loop {
            match self.catch_up().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(key = &*self.key, error = %e, "topic history unreachable; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
    }
}

/// The largest offset a position may have: Redis counts in signed 64 bits, and no hub
/// gets near it.
pub(crate) const MAX_OFFSET: u64 = i64::MAX as u64;

/// `-32602` for a `$since` no hub can have handed out.
pub(crate) fn impossible_position(position: &Position) -> RpcError {
    RpcError::invalid_params(format!(
        "invalid parameter `{SINCE_PARAM}`: offset {} is beyond any topic's (at most {MAX_OFFSET})",
        position.offset
    ))
}

/// Where a subscriber at `after` continues in a key's history: the key is in `epoch` at
/// offset `last`, and its history keeps `first..=last` (`None`: nothing). Returns the
/// position the history items follow (items at or before it are not delivered) and
/// whether publications were lost to the subscriber (a gap).
///
/// - same epoch, `after` within what history covers: from `after`, nothing lost;
/// - same epoch, `after` older than the history kept: a gap to just before the oldest kept;
/// - same epoch, `after` *ahead* of the key (a hub that went back in time): a gap to the
///   key's position, no history (the subscriber saw what it had);
/// - another epoch: always a gap (offset 0 of another epoch means "saw nothing", not
///   "nothing was published": history may have been lost with the epoch), then all the
///   history kept.
pub(crate) fn resume(
    after: &Position,
    epoch: &str,
    last: u64,
    first: Option<u64>,
) -> (Position, bool) {
    let first = first.unwrap_or(last.saturating_add(1));
    let at = |offset: u64| Position {
        epoch: epoch.to_string(),
        offset,
    };
    if after.epoch != epoch {
        return (at(first - 1), true);
    }
    if after.offset > last {
        return (at(last), true);
    }
    if after.offset.saturating_add(1) >= first {
        return (after.clone(), false);
    }
    (at(first - 1), true)
}

/// A fresh epoch: 16 random hex digits.
#[cfg(feature = "redis")]
pub(crate) fn new_epoch() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// The name of the by-name param that carries a subscriber's position.
pub const SINCE_PARAM: &str = "$since";

/// Take `"$since"` off a subscribe's by-name params: the params left (`None` when there
/// were none, or only `"$since"`), and the position.
pub(crate) fn split_since(
    params: Option<&RawValue>,
) -> Result<(Option<Box<RawValue>>, Option<Position>), RpcError> {
    let Some(raw) = params else {
        return Ok((None, None));
    };
    let text = raw.get();
    // Cheap test first: by-position params and most subscribes carry no `$since`.
    if !text.trim_start().starts_with('{') || !text.contains(SINCE_PARAM) {
        return Ok((Some(raw.to_owned()), None));
    }
    let members = crate::codec::params::object_members(text)
        .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))?;
    let mut since = None;
    let mut rest = String::with_capacity(text.len());
    rest.push('{');
    for (key, value) in members {
        if key == SINCE_PARAM {
            let position = serde_json::from_str::<Position>(value.get()).map_err(|e| {
                RpcError::invalid_params(format!(
                    "invalid parameter `{SINCE_PARAM}`: {e} (expected {{\"epoch\": string, \"offset\": integer}})"
                ))
            })?;
            since = Some(position);
            continue;
        }
        if rest.len() > 1 {
            rest.push(',');
        }
        rest.push_str(&serde_json::to_string(&*key).unwrap_or_default());
        rest.push(':');
        rest.push_str(value.get());
    }
    rest.push('}');
    let rest = RawValue::from_string(rest)
        .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))?;
    Ok((Some(rest), since))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures_util::FutureExt;

    use super::*;

    /// A backend whose history the test sets, and whose live publications it sends.
    struct Fake {
        live: broadcast::Sender<Arc<Entry>>,
        /// The key's epoch and its history (offsets 1..=n, all kept).
        history: Mutex<(String, u64)>,
    }

    impl Fake {
        fn entry(epoch: &str, offset: u64) -> Arc<Entry> {
            Arc::new(Entry::new(
                epoch.into(),
                offset,
                format!("\"{epoch}{offset}\"").into(),
            ))
        }
    }

    impl Backend for Fake {
        fn publish(&self, _: Arc<str>, _: Arc<str>) -> BoxFuture<Result<Position, PublishError>> {
            Box::pin(async { Err(PublishError::Unavailable("fake".into())) })
        }

        fn open(&self, _: Arc<str>) -> BoxFuture<Result<Opened, RpcError>> {
            let (epoch, offset) = self.history.lock().unwrap().clone();
            let opened = Opened {
                live: self.live.subscribe(),
                now: Position { epoch, offset },
            };
            Box::pin(async move { Ok(opened) })
        }

        fn replay(&self, _: Arc<str>, after: Position) -> BoxFuture<Result<Replay, RpcError>> {
            let (epoch, last) = self.history.lock().unwrap().clone();
            let first = (last > 0).then_some(1);
            let (from, lost) = resume(&after, &epoch, last, first);
            let items = (from.offset + 1..=last)
                .map(|o| Fake::entry(&epoch, o))
                .collect();
            Box::pin(async move { Ok(Replay { from, lost, items }) })
        }
    }

    fn fake(epoch: &str, last: u64) -> (Hub, Arc<Fake>) {
        let backend = Arc::new(Fake {
            live: broadcast::channel(memory::LIVE_BUFFER).0,
            history: Mutex::new((epoch.to_string(), last)),
        });
        let hub = Hub {
            backend: backend.clone(),
            kind: "fake",
        };
        (hub, backend)
    }

    /// Everything the feed has now, as text.
    async fn drain(feed: &mut Feed) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(Some(event)) = tokio::task::unconstrained(feed.next()).now_or_never() {
            seen.push(match event {
                Event::Start(p) => format!("start {p}"),
                Event::Gap(p) => format!("gap {p}"),
                Event::Item(e) => format!("{}/{}", e.epoch, e.offset),
            });
        }
        seen
    }

    /// Issue #31 item 5: a feed further behind than the live buffer when the backend loses
    /// its data reads the new epoch from history; the old epoch's publications still in the
    /// live buffer are dropped, not delivered after the gap (wrong order, duplicates).
    #[tokio::test]
    async fn a_lagging_feed_never_goes_back_to_a_dead_epoch() {
        let (hub, fake) = fake("old", 0);
        let mut feed = hub.feed("K".into(), None).await.unwrap();
        for o in 1..=1500 {
            let _ = fake.live.send(Fake::entry("old", o));
        }
        // The backend loses its data: a new epoch with three publications.
        *fake.history.lock().unwrap() = ("new".into(), 3);
        for o in 1..=3 {
            let _ = fake.live.send(Fake::entry("new", o));
        }
        assert_eq!(
            drain(&mut feed).await,
            ["start old/0", "gap new/0", "new/1", "new/2", "new/3"]
        );
        // Live publications of the new epoch go on.
        *fake.history.lock().unwrap() = ("new".into(), 4);
        let _ = fake.live.send(Fake::entry("new", 4));
        assert_eq!(drain(&mut feed).await, ["new/4"]);
    }

    /// Issue #31 item 3: a live publication of an epoch history does not know (another
    /// deployment's) does not move the feed: it is dropped, and the key's own publications
    /// go on without a gap.
    #[tokio::test]
    async fn a_foreign_epoch_on_the_live_channel_is_dropped_not_a_gap() {
        let (hub, fake) = fake("ours", 2);
        let mut feed = hub.feed("K".into(), None).await.unwrap();
        let _ = fake.live.send(Fake::entry("theirs", 7));
        let _ = fake.live.send(Fake::entry("theirs", 8));
        *fake.history.lock().unwrap() = ("ours".into(), 3);
        let _ = fake.live.send(Fake::entry("ours", 3));
        assert_eq!(drain(&mut feed).await, ["start ours/2", "ours/3"]);
    }

    /// Issue #31 items 1 and 8, on the rule both hubs share.
    #[test]
    fn resuming_another_epoch_is_always_a_gap_and_ahead_of_the_key_is_a_gap_back_to_it() {
        let at = |epoch: &str, offset| Position {
            epoch: epoch.into(),
            offset,
        };
        // Offset 0 of another epoch: the subscriber saw nothing, but history may be lost.
        assert_eq!(
            resume(&at("old", 0), "new", 3, Some(1)),
            (at("new", 0), true)
        );
        // Same epoch, covered: no gap.
        assert_eq!(resume(&at("e", 0), "e", 3, Some(1)), (at("e", 0), false));
        assert_eq!(resume(&at("e", 3), "e", 3, None), (at("e", 3), false));
        // Trimmed.
        assert_eq!(resume(&at("e", 1), "e", 9, Some(5)), (at("e", 4), true));
        // Ahead of the key, even far ahead: a gap back to where the key is.
        assert_eq!(resume(&at("e", 7), "e", 3, Some(1)), (at("e", 3), true));
        assert_eq!(
            resume(&at("e", MAX_OFFSET), "e", 3, Some(1)),
            (at("e", 3), true)
        );
    }
}
