//! The hub of a deployment: Redis gives every publication its position (one Lua script:
//! epoch, `INCR`, `XADD` to the key's history stream, `PUBLISH`), keeps the history, and
//! carries publications to every node; each node fans them out to its own subscribers.
//!
//! Keys, per topic key `K` (`Chat.room["lobby"]`) under the prefix `P`: `P:K:e` (the epoch),
//! `P:K:n` (the last offset), `P:K:s` (the history, a stream whose entry ids are
//! `offset-0`). Every node listens on one channel, `P:publications`.
//!
//! A Redis that restarts without its data starts every key in a new epoch, so subscribers
//! are told of the gap. Run it without persistence (or with `appendfsync always`): one that
//! comes back from an older snapshot would hand out offsets a second time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::Script;
use tokio::sync::broadcast;

use super::memory::LIVE_BUFFER;
use super::{
    new_epoch, Backend, BoxFuture, Entry, HistoryLimits, Opened, Position, PublishError, Replay,
};
use crate::error::RpcError;

/// Settings of a Redis hub. Every node of a deployment needs the same ones.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Prefix of every Redis key and channel the hub uses (default `wirecall`): several
    /// deployments can share one Redis with different prefixes.
    pub prefix: String,
    /// History kept per topic key (in Redis).
    pub history: HistoryLimits,
    /// How long a command (a publication, a replay) may take before it fails (default 2 s).
    pub timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "wirecall".to_string(),
            history: HistoryLimits::default(),
            timeout: Duration::from_secs(2),
        }
    }
}

impl RedisOptions {
    /// These options with another key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// These options with other history limits.
    pub fn history(mut self, history: HistoryLimits) -> Self {
        self.history = history;
        self
    }

    /// These options with another command timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Shared by the scripts: a key's epoch (a fresh one resets the key), and trimming its
/// history by count and age (Redis' clock, so that nodes' clocks do not matter).
const COMMON: &str = r#"
local function epoch_of(ekey, nkey, skey, fresh)
  local e = redis.call('GET', ekey)
  if not e then
    redis.call('SET', ekey, fresh)
    redis.call('DEL', nkey, skey)
    e = fresh
  end
  return e
end
local function trim(skey, max_items, max_age_ms)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('XTRIM', skey, 'MAXLEN', max_items)
  local cutoff = now - max_age_ms
  for _ = 1, 100 do
    local first = redis.call('XRANGE', skey, '-', '+', 'COUNT', 1)
    if #first == 0 then break end
    local fields = first[1][2]
    local at = 0
    for i = 1, #fields, 2 do
      if fields[i] == 't' then at = tonumber(fields[i + 1]) end
    end
    if at >= cutoff then break end
    redis.call('XDEL', skey, first[1][1])
  end
  return now
end
local function offset_of(id)
  return tonumber(string.match(id, '^(%d+)'))
end
"#;

/// KEYS: epoch, counter, stream. ARGV: fresh epoch, payload, max items, max age (ms),
/// channel, topic key. Returns {epoch, offset}.
const PUBLISH: &str = r#"
local e = epoch_of(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
local o = redis.call('INCR', KEYS[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[3], o .. '-0', 'd', ARGV[2], 't', now)
end
trim(KEYS[3], tonumber(ARGV[3]), tonumber(ARGV[4]))
redis.call('PUBLISH', ARGV[5], ARGV[6] .. '\n' .. e .. '\n' .. o .. '\n' .. ARGV[2])
return {e, tostring(o)}
"#;

/// KEYS: epoch, counter, stream. ARGV: fresh epoch. Returns {epoch, offset}.
const OPEN: &str = r#"
local e = epoch_of(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
return {e, tostring(tonumber(redis.call('GET', KEYS[2]) or '0'))}
"#;

/// KEYS: epoch, counter, stream. ARGV: fresh epoch, after epoch, after offset, max items,
/// max age (ms). Returns {epoch, last offset, first offset kept, offset, data, offset,
/// data, …}: the history after the position (all of it for another epoch).
const REPLAY: &str = r#"
local e = epoch_of(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
trim(KEYS[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)
local first_kept = n + 1
if #first > 0 then first_kept = offset_of(first[1][1]) end
local start = '-'
if e == ARGV[2] then start = tostring(tonumber(ARGV[3]) + 1) .. '-0' end
local out = {e, tostring(n), tostring(first_kept)}
for _, item in ipairs(redis.call('XRANGE', KEYS[3], start, '+')) do
  local fields = item[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'd' then
      out[#out + 1] = tostring(offset_of(item[1]))
      out[#out + 1] = fields[i + 1]
    end
  end
end
return out
"#;

pub(crate) struct Redis {
    conn: ConnectionManager,
    options: RedisOptions,
    channel: String,
    publish: Arc<Script>,
    open: Arc<Script>,
    replay: Arc<Script>,
    relay: Arc<Relay>,
    listener: tokio::task::AbortHandle,
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

fn unavailable(e: redis::RedisError) -> PublishError {
    PublishError::Unavailable(format!("Redis: {e}"))
}

fn history_unreachable(e: redis::RedisError) -> RpcError {
    RpcError::internal(format!("the topic's history is unreachable (Redis: {e})"))
}

impl Redis {
    pub(crate) async fn connect(url: &str, options: RedisOptions) -> Result<Self, PublishError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.timeout))
            .set_connection_timeout(Some(options.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(unavailable)?;
        let channel = format!("{}:publications", options.prefix);
        let relay = Arc::new(Relay::default());
        let listener = tokio::spawn(listen(
            client,
            channel.clone(),
            relay.clone(),
            options.timeout,
        ));
        Ok(Redis {
            conn,
            channel,
            publish: Arc::new(Script::new(&format!("{COMMON}{PUBLISH}"))),
            open: Arc::new(Script::new(&format!("{COMMON}{OPEN}"))),
            replay: Arc::new(Script::new(&format!("{COMMON}{REPLAY}"))),
            relay,
            listener: listener.abort_handle(),
            options,
        })
    }

    fn keys(&self, key: &str) -> [String; 3] {
        let p = &self.options.prefix;
        [
            format!("{p}:{key}:e"),
            format!("{p}:{key}:n"),
            format!("{p}:{key}:s"),
        ]
    }

    fn max_age_ms(&self) -> u64 {
        u64::try_from(self.options.history.max_age.as_millis()).unwrap_or(u64::MAX)
    }
}

fn position(epoch: &str, offset: &str) -> Option<Position> {
    Some(Position {
        epoch: epoch.to_string(),
        offset: offset.parse().ok()?,
    })
}

impl Backend for Redis {
    fn publish(&self, key: Arc<str>, json: Arc<str>) -> BoxFuture<Result<Position, PublishError>> {
        let mut conn = self.conn.clone();
        let script = self.publish.clone();
        let keys = self.keys(&key);
        let (max_items, max_age, channel) = (
            self.options.history.max_items,
            self.max_age_ms(),
            self.channel.clone(),
        );
        Box::pin(async move {
            let mut call = script.prepare_invoke();
            call.key(&keys[..])
                .arg(new_epoch())
                .arg(&*json)
                .arg(max_items)
                .arg(max_age)
                .arg(channel)
                .arg(&*key);
            let out: Vec<String> = call.invoke_async(&mut conn).await.map_err(unavailable)?;
            match out.as_slice() {
                [epoch, offset] => position(epoch, offset),
                _ => None,
            }
            .ok_or_else(|| PublishError::Unavailable(format!("Redis answered {out:?}")))
        })
    }

    fn open(&self, key: Arc<str>) -> BoxFuture<Result<Opened, RpcError>> {
        // Listen first: whatever is published after the position read below arrives live.
        let live = self.relay.subscribe(&key);
        let mut conn = self.conn.clone();
        let script = self.open.clone();
        let keys = self.keys(&key);
        Box::pin(async move {
            let mut call = script.prepare_invoke();
            call.key(&keys[..]).arg(new_epoch());
            let out: Vec<String> = call
                .invoke_async(&mut conn)
                .await
                .map_err(history_unreachable)?;
            let now = match out.as_slice() {
                [epoch, offset] => position(epoch, offset),
                _ => None,
            }
            .ok_or_else(|| RpcError::internal(format!("Redis answered {out:?}")))?;
            Ok(Opened { live, now })
        })
    }

    fn replay(&self, key: Arc<str>, after: Position) -> BoxFuture<Result<Replay, RpcError>> {
        let mut conn = self.conn.clone();
        let script = self.replay.clone();
        let keys = self.keys(&key);
        let (max_items, max_age) = (self.options.history.max_items, self.max_age_ms());
        Box::pin(async move {
            let mut call = script.prepare_invoke();
            call.key(&keys[..])
                .arg(new_epoch())
                .arg(&after.epoch)
                .arg(after.offset)
                .arg(max_items)
                .arg(max_age);
            let out: Vec<String> = call
                .invoke_async(&mut conn)
                .await
                .map_err(history_unreachable)?;
            let malformed = || RpcError::internal("Redis answered a malformed history");
            let [epoch, last, first, rest @ ..] = out.as_slice() else {
                return Err(malformed());
            };
            let last: u64 = last.parse().map_err(|_| malformed())?;
            let first: u64 = first.parse().map_err(|_| malformed())?;
            let epoch: Arc<str> = epoch.as_str().into();
            let mut items = Vec::with_capacity(rest.len() / 2);
            for pair in rest.chunks_exact(2) {
                items.push(Arc::new(Entry::new(
                    epoch.clone(),
                    pair[0].parse().map_err(|_| malformed())?,
                    pair[1].as_str().into(),
                )));
            }
            let same_epoch = *epoch == *after.epoch;
            if same_epoch && after.offset + 1 >= first && after.offset <= last {
                return Ok(Replay {
                    from: after,
                    lost: false,
                    items,
                });
            }
            Ok(Replay {
                lost: !(after.offset == 0 && first == 1),
                from: Position {
                    epoch: epoch.to_string(),
                    offset: first.saturating_sub(1),
                },
                items,
            })
        })
    }
}

/// This node's subscribers, by topic key: publications from the Redis channel go to them.
#[derive(Default)]
struct Relay {
    keys: Mutex<HashMap<Arc<str>, broadcast::Sender<Arc<Entry>>>>,
}

impl Relay {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, broadcast::Sender<Arc<Entry>>>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn subscribe(&self, key: &Arc<str>) -> broadcast::Receiver<Arc<Entry>> {
        let mut keys = self.lock();
        if keys.len() >= 1024 && keys.len().is_power_of_two() {
            keys.retain(|_, tx| tx.receiver_count() > 0);
        }
        keys.entry(key.clone())
            .or_insert_with(|| broadcast::channel(LIVE_BUFFER).0)
            .subscribe()
    }

    /// A publication from the channel: `key \n epoch \n offset \n json`.
    fn deliver(&self, payload: &[u8]) {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        let mut parts = text.splitn(4, '\n');
        let (Some(key), Some(epoch), Some(offset), Some(json)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            tracing::warn!("ignored a malformed publication on the hub's Redis channel");
            return;
        };
        let Ok(offset) = offset.parse::<u64>() else {
            return;
        };
        let mut keys = self.lock();
        let Some(tx) = keys.get(key) else {
            return; // nobody on this node listens
        };
        let entry = Arc::new(Entry::new(epoch.into(), offset, json.into()));
        if tx.send(entry).is_err() {
            keys.remove(key);
        }
    }

    /// The channel was (re)joined: publications may have been missed meanwhile, so every
    /// subscriber checks history (offset 0 asks for that).
    fn resync(&self) {
        for tx in self.lock().values() {
            let _ = tx.send(Arc::new(Entry::new("".into(), 0, "".into())));
        }
    }
}

/// Listen to the publications channel for as long as the hub lives; after the connection
/// is lost, reconnect with backoff.
async fn listen(client: redis::Client, channel: String, relay: Arc<Relay>, timeout: Duration) {
    let mut wait = Duration::from_millis(50);
    let mut lost = false;
    loop {
        let connect = tokio::time::timeout(timeout, client.get_async_pubsub());
        match connect.await.unwrap_or_else(|_| {
            Err(redis::RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            )))
        }) {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    if lost {
                        tracing::info!("the hub's Redis subscription is back");
                    }
                    wait = Duration::from_millis(50);
                    relay.resync();
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        relay.deliver(message.get_payload_bytes());
                    }
                    tracing::warn!("lost the hub's Redis subscription; reconnecting");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not subscribe to the hub's Redis channel")
                }
            },
            Err(e) => tracing::warn!(error = %e, "could not reach the hub's Redis"),
        }
        lost = true;
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}
