// Over ~500 lines: one backend — the publish script, the subscriber connection and its
// reconnects, history reads, key expiry — around one connection state. A Redis Cluster's
// connections and listener are in `cluster.rs`. The next cut, when it changes: the script
// and the history reads apart.
//! The hub of a deployment: Redis gives every publication its position (one Lua script:
//! epoch, counter, `XADD` to the key's history stream, `PUBLISH`), keeps the history, and
//! carries publications to every node; each node fans them out to its own subscribers.
//!
//! Keys, per topic key `K` (`Chat.room["lobby"]`) under the prefix `P`: `P:{K}:h` (a hash:
//! the epoch `e`, the last offset `n` and the `run_id` `r` of the Redis process that wrote
//! them, together so that they vanish together), `P:{K}:s` (the history, a stream whose
//! entry ids are `offset-0`), and `P:{K}:i:ID` for a short while after each publication (its
//! id, so that a retry does not publish twice). Publications go to the key's own channel,
//! `P:{K}:DB` (`DB` the database number: pub/sub ignores databases), sharded
//! (`SPUBLISH`/`SSUBSCRIBE`) on Redis 7 and later. `{K}` is a hash tag: all of a key lives
//! on one shard of a cluster. A node joins a key's channel while it has subscribers of the
//! key, so it receives only the publications its clients want.
//!
//! A Redis that restarts, with or without its data (an older snapshot, a replica promoted),
//! starts every key in a new epoch on first use (the key's hash remembers the `run_id` of
//! the process that wrote it), so subscribers are told of the gap and no position is handed
//! out twice. On a Redis Cluster the scripts run on the master that holds the key's slot,
//! so each key's epoch follows the `run_id` of its own master: a master restarted or
//! replaced moves its keys, and only those, to new epochs. Run it with
//! `maxmemory-policy noeviction`: an evicted history is a gap for subscribers that need it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::sync::{broadcast, oneshot};

use self::cluster::Link;

use super::memory::LIVE_BUFFER;
use super::{
    new_epoch, Backend, BoxFuture, Entry, HistoryLimits, Opened, Position, PublishError, Replay,
};
use crate::error::RpcError;

mod cluster;

/// Settings of a Redis hub. Every node of a deployment needs the same ones.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Prefix of every Redis key and channel the hub uses (default `wirecall`): several
    /// deployments can share one Redis with different prefixes.
    pub prefix: String,
    /// History kept per topic key (in Redis).
    pub history: HistoryLimits,
    /// How long a command (a publication, a replay, a `PING`) may take before it fails
    /// (default 2 s). A publication that times out fails with
    /// [`PublishError::OutcomeUnknown`]: it may have been delivered.
    pub timeout: Duration,
    /// How often both connections to Redis are checked with a `PING` (default 5 s). One
    /// that does not answer within `timeout` is taken for dead and rebuilt (the publications
    /// channel at once, the command connection after two timeouts in a row); subscribers
    /// then read what they missed from history. On a Redis Cluster there are no pings
    /// (its connection repairs its node connections by itself); this is how often the
    /// channels that could not be joined (their master is down) are tried again.
    pub ping_interval: Duration,
    /// How long a topic key's epoch, counter and history stay in Redis after its last
    /// publication (default `None`: twice `history.max_age`, at least a second). A
    /// subscriber that comes back later is told of a gap, even if nothing was published
    /// meanwhile; Redis holds at most the keys published within this window.
    pub key_ttl: Option<Duration>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "wirecall".to_string(),
            history: HistoryLimits::default(),
            timeout: Duration::from_secs(2),
            ping_interval: Duration::from_secs(5),
            key_ttl: None,
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

    /// These options with another interval between liveness checks.
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.ping_interval = every.max(Duration::from_millis(10));
        self
    }

    /// These options with another expiry of idle topic keys.
    pub fn key_ttl(mut self, key_ttl: Duration) -> Self {
        self.key_ttl = Some(key_ttl);
        self
    }
}

/// Shared by the scripts: a key's epoch (a fresh one resets the key), and trimming its
/// history by count and age (Redis' clock, so that nodes' clocks do not matter).
///
/// The epoch and the last offset live in one hash (`P:K:h`, fields `e` and `n`): whatever
/// removes one (an eviction, a `DEL`, an expiry) removes the other, so an offset is never
/// handed out twice in one epoch. Offsets travel as strings (never through Lua numbers,
/// which print 1e14 as `1e+14`).
///
/// The hash also holds the `run_id` of the Redis process that wrote it (`r`): a Redis
/// restarted (from an older snapshot, an AOF without `appendfsync always`) or a replica
/// promoted may hold a counter that went back, so a hash written by another process than
/// the one running the script starts a new epoch. A position is never handed out twice.
const COMMON: &str = r#"
local function epoch_of(hkey, skey, fresh, ttl_ms)
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
  local h = redis.call('HMGET', hkey, 'e', 'r')
  local e = h[1]
  if not e or h[2] ~= run then
    redis.call('DEL', hkey, skey)
    redis.call('HSET', hkey, 'e', fresh, 'n', '0', 'r', run)
    redis.call('PEXPIRE', hkey, ttl_ms)
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
  return string.match(id, '^(%d+)')
end
"#;

/// KEYS: hash (epoch, counter), stream, publication id. ARGV: fresh epoch, payload, max
/// items, max age (ms), channel, topic key, how long the publication id is remembered
/// (ms), the key's time to live (ms), the publish command (`SPUBLISH` or `PUBLISH`; the
/// channel has the keys' hash tag, so it lives on their shard). Returns {epoch, offset}: a publication whose id was seen in this epoch is not
/// published again; the first one's position is returned.
const PUBLISH: &str = r#"
local e = epoch_of(KEYS[1], KEYS[2], ARGV[1], ARGV[8])
local seen = redis.call('GET', KEYS[3])
if seen then
  local se, so = string.match(seen, '^(.*) (%d+)$')
  if se == e then return {e, so} end
end
local o = string.format('%d', redis.call('HINCRBY', KEYS[1], 'n', 1))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[2], o .. '-0', 'd', ARGV[2], 't', now)
end
trim(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
redis.call('SET', KEYS[3], e .. ' ' .. o, 'PX', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('PEXPIRE', KEYS[2], ARGV[8])
redis.call(ARGV[9], ARGV[5], ARGV[6] .. '\n' .. e .. '\n' .. o .. '\n' .. ARGV[2])
return {e, o}
"#;

/// KEYS: hash, stream. ARGV: fresh epoch. Returns {epoch, offset}.
const OPEN: &str = r#"
local e = epoch_of(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return {e, redis.call('HGET', KEYS[1], 'n')}
"#;

/// KEYS: hash, stream. ARGV: fresh epoch, after epoch, first stream id wanted in that epoch
/// (computed by the caller), max items, max age (ms). Returns {epoch, last offset, first
/// offset kept or '', offset, data, offset, data, …}: the history after the position (all
/// of it for another epoch).
const REPLAY: &str = r#"
local e = epoch_of(KEYS[1], KEYS[2], ARGV[1], ARGV[6])
trim(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]))
local n = redis.call('HGET', KEYS[1], 'n')
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local first_kept = ''
if #first > 0 then first_kept = offset_of(first[1][1]) end
local start = '-'
if e == ARGV[2] then start = ARGV[3] end
local out = {e, n, first_kept}
for _, item in ipairs(redis.call('XRANGE', KEYS[2], start, '+')) do
  local fields = item[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'd' then
      out[#out + 1] = offset_of(item[1])
      out[#out + 1] = fields[i + 1]
    end
  end
end
return out
"#;

/// What the listener connects to: a single Redis (a RESP3 client), or a cluster (its
/// nodes' URLs, RESP3).
enum Listening {
    Single(redis::Client),
    Cluster(Vec<redis::ConnectionInfo>),
}

/// After this many commands in a row time out, the command connection is rebuilt: a
/// connection that died without a close (a partition, an idle drop by a NAT) never fails
/// with an error that would make the connection manager reconnect.
const REBUILD_AFTER_TIMEOUTS: u32 = 2;

pub(crate) struct Redis {
    commands: Arc<Commands>,
    options: RedisOptions,
    /// The database number, in channel names (pub/sub ignores databases).
    db: i64,
    flavour: Flavour,
    publish: Arc<Lua>,
    open: Arc<Lua>,
    replay: Arc<Lua>,
    relay: Arc<Relay>,
    tasks: [tokio::task::AbortHandle; 2],
}

impl Drop for Redis {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn unavailable(e: redis::RedisError) -> PublishError {
    PublishError::Unavailable(format!("Redis: {e}"))
}

fn history_unreachable(e: redis::RedisError) -> RpcError {
    RpcError::internal(format!("the topic's history is unreachable (Redis: {e})"))
}

/// One of the hub's scripts: its code ([`COMMON`] and its own) and its SHA1.
struct Lua {
    code: String,
    sha: String,
}

impl Lua {
    fn new(body: &str) -> Arc<Lua> {
        let code = format!("{COMMON}{body}");
        let sha = Script::new(&code).get_hash().to_string();
        Arc::new(Lua { code, sha })
    }
}

/// One run of a script: its keys (all of one topic key, so of one cluster slot) and
/// arguments.
struct Call {
    lua: Arc<Lua>,
    keys: Vec<String>,
    args: Vec<String>,
}

impl Call {
    fn new(lua: &Arc<Lua>) -> Call {
        Call {
            lua: lua.clone(),
            keys: Vec::new(),
            args: Vec::new(),
        }
    }

    fn key(&mut self, key: impl Into<String>) -> &mut Call {
        self.keys.push(key.into());
        self
    }

    fn arg(&mut self, arg: impl ToString) -> &mut Call {
        self.args.push(arg.to_string());
        self
    }

    /// `EVALSHA` (`by_sha`) or `EVAL` of the script. Both are routed by their first key on
    /// a cluster; `EVAL` also caches the script on the server that runs it (a master
    /// restarted has forgotten it), so that the next `EVALSHA` finds it.
    fn cmd(&self, by_sha: bool) -> redis::Cmd {
        let mut cmd = if by_sha {
            redis::cmd("EVALSHA")
        } else {
            redis::cmd("EVAL")
        };
        cmd.arg(if by_sha {
            &self.lua.sha
        } else {
            &self.lua.code
        })
        .arg(self.keys.len());
        for key in &self.keys {
            cmd.arg(key);
        }
        for arg in &self.args {
            cmd.arg(arg);
        }
        cmd
    }
}

/// The connection for commands (scripts, pings): to a single Redis, a connection manager
/// that reconnects after an I/O error, rebuilt after [`REBUILD_AFTER_TIMEOUTS`] timeouts
/// in a row; to a Redis Cluster, a cluster connection (it routes each command to the
/// master of its key's slot, follows the cluster's topology and repairs its connections
/// to the nodes by itself).
struct Commands {
    /// How to rebuild a single Redis' connection (`None` on a cluster).
    rebuild: Option<(redis::Client, ConnectionManagerConfig)>,
    conn: Mutex<Link>,
    timeouts: AtomicU32,
}

/// A failed command, and whether Redis may have run it anyway (it timed out, or the
/// connection dropped after it was sent).
struct Failed {
    error: redis::RedisError,
    may_have_run: bool,
}

impl Commands {
    fn conn(&self) -> Link {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn succeeded(&self) {
        self.timeouts.store(0, Ordering::Relaxed);
    }

    fn timed_out(&self) {
        if self.timeouts.fetch_add(1, Ordering::Relaxed) + 1 < REBUILD_AFTER_TIMEOUTS {
            return;
        }
        let Some((client, config)) = &self.rebuild else {
            return;
        };
        match ConnectionManager::new_lazy_with_config(client.clone(), config.clone()) {
            Ok(fresh) => {
                tracing::warn!("the hub's Redis connection stopped answering; reconnecting");
                *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Link::Single(fresh);
                self.timeouts.store(0, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "could not rebuild the hub's Redis connection"),
        }
    }

    /// Run a script (`EVALSHA`, then `EVAL` if the server does not know it). A dropped
    /// connection is tried once more (the manager reconnects; the first command after a
    /// Redis restart fails with a broken pipe): every script is safe to run twice
    /// (publications carry an id the script checks).
    async fn invoke<T: redis::FromRedisValue>(&self, call: &Call) -> Result<T, Failed> {
        let mut may_have_run = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.conn();
            let outcome = match call.cmd(true).query_async(&mut conn).await {
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    call.cmd(false).query_async(&mut conn).await
                }
                outcome => outcome,
            };
            let error = match outcome {
                Ok(value) => {
                    self.succeeded();
                    return Ok(value);
                }
                Err(e) => e,
            };
            if error.is_timeout() {
                self.timed_out();
                may_have_run = true;
            } else if error.is_connection_refusal() {
                // Never sent.
            } else if error.is_connection_dropped() || error.is_io_error() {
                may_have_run = true;
                if attempt < 2 {
                    continue;
                }
            }
            return Err(Failed {
                error,
                may_have_run,
            });
        }
    }

    /// `PING` with the command timeout; a timeout counts towards a rebuild. Not on a
    /// cluster: its connection repairs itself (a `PING` there goes to every master, and
    /// one master down would fail it).
    async fn ping(&self) {
        if self.rebuild.is_none() {
            return;
        }
        let mut conn = self.conn();
        match redis::cmd("PING").query_async::<String>(&mut conn).await {
            Ok(_) => self.succeeded(),
            Err(e) if e.is_timeout() => self.timed_out(),
            Err(_) => {} // the manager reconnects after an I/O error by itself
        }
    }
}

/// TCP settings of both connections: keepalive probes and a user timeout, so that the
/// kernel gives up on a peer that stopped acknowledging.
fn tcp_settings(timeout: Duration) -> redis::io::tcp::TcpSettings {
    let keepalive = redis::io::tcp::socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(5));
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    let keepalive = keepalive.with_retries(3);
    let settings = redis::io::tcp::TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive);
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    let settings = settings.set_user_timeout(timeout.max(Duration::from_secs(10)));
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
    let _ = timeout;
    settings
}

impl Redis {
    /// Connect to the Redis at `url`: one server (`redis://host:port/db`), or a Redis
    /// Cluster — several URLs of its nodes separated by commas, or the URL of any one node
    /// of it (the server says it runs in cluster mode).
    pub(crate) async fn connect(url: &str, options: RedisOptions) -> Result<Self, PublishError> {
        let mut seeds = cluster::seeds(url, tcp_settings(options.timeout))?;
        let single = if seeds.len() == 1 && !cluster::enabled(&seeds[0], options.timeout).await? {
            seeds.pop()
        } else {
            None
        };
        let (commands, db, listening) = if let Some(info) = single {
            // Pub/sub ignores the database number: the channel names it (and the prefix),
            // so deployments on two databases of one Redis do not hear each other.
            let db = info.redis_settings().db();
            // The listener's connection speaks RESP3: one connection carries its pub/sub
            // messages and its commands (joining and leaving channels, pings).
            let resp3 = info
                .redis_settings()
                .clone()
                .set_protocol(redis::ProtocolVersion::RESP3);
            let listening =
                redis::Client::open(info.clone().set_redis_settings(resp3)).map_err(unavailable)?;
            let client = redis::Client::open(info).map_err(unavailable)?;
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(options.timeout))
                .set_connection_timeout(Some(options.timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_secs(1));
            let conn = ConnectionManager::new_with_config(client.clone(), config.clone())
                .await
                .map_err(unavailable)?;
            let commands = Commands {
                rebuild: Some((client, config)),
                conn: Mutex::new(Link::Single(conn)),
                timeouts: AtomicU32::new(0),
            };
            (commands, db, Listening::Single(listening))
        } else {
            let (conn, listening) = cluster::connect(&seeds, &options).await?;
            let commands = Commands {
                rebuild: None,
                conn: Mutex::new(Link::Cluster(conn)),
                timeouts: AtomicU32::new(0),
            };
            (commands, 0, Listening::Cluster(listening))
        };
        let commands = Arc::new(commands);
        warn_unless_noeviction(commands.conn()).await;
        let flavour = Flavour {
            sharded: major_version(&commands).await >= 7,
        };
        let relay = Arc::new(Relay::default());
        let listener = match listening {
            Listening::Single(client) => tokio::spawn(listen(
                client,
                flavour,
                relay.clone(),
                options.timeout,
                options.ping_interval,
            )),
            Listening::Cluster(seeds) => tokio::spawn(cluster::listen(
                seeds,
                flavour,
                relay.clone(),
                options.clone(),
            )),
        };
        let pinger = tokio::spawn({
            let commands = Arc::downgrade(&commands);
            let every = options.ping_interval;
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(commands) = commands.upgrade() else {
                        return;
                    };
                    commands.ping().await;
                }
            }
        });
        Ok(Redis {
            commands,
            db,
            flavour,
            publish: Lua::new(PUBLISH),
            open: Lua::new(OPEN),
            replay: Lua::new(REPLAY),
            relay,
            tasks: [listener.abort_handle(), pinger.abort_handle()],
            options,
        })
    }

    /// The key's hash and history stream. The key is a hash tag (`{…}`), so that
    /// everything of one topic key (hash, stream, publication ids, channel) lands on one
    /// shard of a Redis Cluster.
    fn keys(&self, key: &str) -> [String; 2] {
        let p = &self.options.prefix;
        [format!("{p}:{{{key}}}:h"), format!("{p}:{{{key}}}:s")]
    }

    /// The key's channel: `P:{K}:DB` (pub/sub ignores databases).
    fn channel(prefix: &str, key: &str, db: i64) -> String {
        format!("{prefix}:{{{key}}}:{db}")
    }

    fn max_age_ms(&self) -> u64 {
        u64::try_from(self.options.history.max_age.as_millis()).unwrap_or(u64::MAX)
    }

    /// [`RedisOptions::key_ttl`] in milliseconds.
    fn key_ttl_ms(&self) -> u64 {
        let ttl = self
            .options
            .key_ttl
            .unwrap_or_else(|| (self.options.history.max_age * 2).max(Duration::from_secs(1)));
        u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(1, i64::MAX as u64 / 2)
    }
}

/// The Redis server's major version (0 when it cannot be read; on a cluster, that of one
/// of its nodes): 7 and later have sharded pub/sub.
async fn major_version(commands: &Commands) -> u32 {
    let mut conn = commands.conn();
    let mut cmd = redis::cmd("INFO");
    cmd.arg("server");
    let info = conn
        .one_node(cmd)
        .await
        .ok()
        .and_then(|v| redis::from_redis_value::<String>(v).ok())
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Keys of a hub must not be evicted one by one (a history without its counter is lost
/// silently only if the epoch survives; the hash keeps them together, but an evicted
/// history is still a gap). Say so when Redis is set up to evict.
async fn warn_unless_noeviction(mut conn: Link) {
    let policy = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async::<Vec<String>>(&mut conn)
        .await;
    if let Ok(policy) = policy {
        if let [_, policy] = policy.as_slice() {
            if policy != "noeviction" {
                tracing::warn!(
                    policy = policy.as_str(),
                    "the hub's Redis evicts keys (maxmemory-policy); topics' histories may be \
                     lost to evictions (subscribers see gaps). Use maxmemory-policy noeviction."
                );
            }
        }
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
        let commands = self.commands.clone();
        let script = self.publish.clone();
        let [hash, stream] = self.keys(&key);
        // The publication's id: a retry after a dropped connection cannot publish twice.
        let id = format!("{}:{{{key}}}:i:{}", self.options.prefix, new_epoch());
        let remember_ms = u64::try_from(self.options.timeout.as_millis())
            .unwrap_or(u64::MAX / 16)
            .saturating_mul(10)
            .max(1000);
        let (max_items, max_age, channel, ttl) = (
            self.options.history.max_items,
            self.max_age_ms(),
            Self::channel(&self.options.prefix, &key, self.db),
            self.key_ttl_ms(),
        );
        let command = self.flavour.publish();
        Box::pin(async move {
            let mut call = Call::new(&script);
            call.key(hash)
                .key(stream)
                .key(id)
                .arg(new_epoch())
                .arg(&*json)
                .arg(max_items)
                .arg(max_age)
                .arg(channel)
                .arg(&*key)
                .arg(remember_ms)
                .arg(ttl)
                .arg(command);
            let out: Vec<String> = match commands.invoke(&call).await {
                Ok(out) => out,
                Err(Failed {
                    error,
                    may_have_run: true,
                }) => return Err(PublishError::OutcomeUnknown(format!("Redis: {error}"))),
                Err(Failed { error, .. }) => return Err(unavailable(error)),
            };
            match out.as_slice() {
                [epoch, offset] => position(epoch, offset),
                _ => None,
            }
            .ok_or_else(|| PublishError::Unavailable(format!("Redis answered {out:?}")))
        })
    }

    fn open(&self, key: Arc<str>) -> BoxFuture<Result<Opened, RpcError>> {
        // Listen first (the key's channel joined): whatever is published after the position
        // read below arrives live.
        let (live, joining) = self
            .relay
            .open(&key, || Self::channel(&self.options.prefix, &key, self.db));
        let opening = Opening {
            relay: self.relay.clone(),
            key: key.clone(),
            done: false,
        };
        let commands = self.commands.clone();
        let script = self.open.clone();
        let keys = self.keys(&key);
        let ttl = self.key_ttl_ms();
        // The listener joins within its timeout, or drops the connection (and lets the
        // opens waiting go on).
        let patience = self.options.timeout * 3;
        Box::pin(async move {
            let mut opening = opening;
            if let Some(joining) = joining {
                if tokio::time::timeout(patience, joining).await.is_err() {
                    return Err(RpcError::internal(
                        "the topic's Redis channel could not be joined in time",
                    ));
                }
            }
            let [hash, stream] = keys;
            let mut call = Call::new(&script);
            call.key(hash).key(stream).arg(new_epoch()).arg(ttl);
            let out: Vec<String> = commands
                .invoke(&call)
                .await
                .map_err(|f| history_unreachable(f.error))?;
            let now = match out.as_slice() {
                [epoch, offset] => position(epoch, offset),
                _ => None,
            }
            .ok_or_else(|| RpcError::internal(format!("Redis answered {out:?}")))?;
            opening.done = true;
            Ok(Opened { live, now })
        })
    }

    fn release(&self, key: &str) {
        self.relay.release(key);
    }

    fn replay(&self, key: Arc<str>, after: Position) -> BoxFuture<Result<Replay, RpcError>> {
        let commands = self.commands.clone();
        let script = self.replay.clone();
        let keys = self.keys(&key);
        let (max_items, max_age, ttl) = (
            self.options.history.max_items,
            self.max_age_ms(),
            self.key_ttl_ms(),
        );
        Box::pin(async move {
            // The caller checked the position (`Hub::feed`): the next offset exists.
            let start = match after.offset.checked_add(1) {
                Some(next) => format!("{next}-0"),
                None => return Err(super::impossible_position(&after)),
            };
            let [hash, stream] = keys;
            let mut call = Call::new(&script);
            call.key(hash)
                .key(stream)
                .arg(new_epoch())
                .arg(&after.epoch)
                .arg(start)
                .arg(max_items)
                .arg(max_age)
                .arg(ttl);
            let out: Vec<String> = commands
                .invoke(&call)
                .await
                .map_err(|f| history_unreachable(f.error))?;
            let malformed = || RpcError::internal("Redis answered a malformed history");
            let [epoch, last, first, rest @ ..] = out.as_slice() else {
                return Err(malformed());
            };
            let last: u64 = last.parse().map_err(|_| malformed())?;
            let first: Option<u64> = match first.as_str() {
                "" => None,
                first => Some(first.parse().map_err(|_| malformed())?),
            };
            let epoch: Arc<str> = epoch.as_str().into();
            let (from, lost) = super::resume(&after, &epoch, last, first);
            let mut items = Vec::with_capacity(rest.len() / 2);
            for pair in rest.chunks_exact(2) {
                let offset: u64 = pair[0].parse().map_err(|_| malformed())?;
                if offset > from.offset {
                    items.push(Arc::new(Entry::new(
                        epoch.clone(),
                        offset,
                        pair[1].as_str().into(),
                    )));
                }
            }
            Ok(Replay { from, lost, items })
        })
    }
}

/// This node's subscribers, by topic key, and the keys whose Redis channels the listener
/// is to join: a key's channel is joined when its first feed on this node opens and left
/// after its last one is gone, so a node receives only the publications of keys its
/// clients subscribe to.
#[derive(Default)]
struct Relay {
    state: Mutex<RelayState>,
    /// Wakes the listener: keys came or went.
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct RelayState {
    keys: HashMap<Arc<str>, Local>,
    /// Whether the listener has a connection: the channels of the keys wanted are joined
    /// on it (or about to be, and everyone checks history once they are).
    connected: bool,
}

/// One topic key on this node.
struct Local {
    tx: broadcast::Sender<Arc<Entry>>,
    channel: Arc<str>,
    /// Open feeds of the key (and opens under way).
    feeds: usize,
    /// The key's channel is joined on the listener's current connection.
    joined: bool,
    /// Opens waiting until it is.
    waiting: Vec<oneshot::Sender<()>>,
}

impl Relay {
    fn lock(&self) -> MutexGuard<'_, RelayState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A feed of `key` opens: its live publications, and (when the key's channel is not
    /// joined yet on a live connection) what says it is.
    fn open(
        &self,
        key: &Arc<str>,
        channel: impl FnOnce() -> String,
    ) -> (
        broadcast::Receiver<Arc<Entry>>,
        Option<oneshot::Receiver<()>>,
    ) {
        let mut state = self.lock();
        let connected = state.connected;
        let local = state.keys.entry(key.clone()).or_insert_with(|| Local {
            tx: broadcast::channel(LIVE_BUFFER).0,
            channel: channel().into(),
            feeds: 0,
            joined: false,
            waiting: Vec::new(),
        });
        local.feeds += 1;
        let live = local.tx.subscribe();
        if local.joined || !connected {
            // Joined; or no connection now: the listener joins it when it has one, and
            // then every feed checks history.
            return (live, None);
        }
        let (tx, rx) = oneshot::channel();
        local.waiting.push(tx);
        drop(state);
        self.changed.notify_one();
        (live, Some(rx))
    }

    /// A feed of `key` is gone; after the last one the key's channel is left.
    fn release(&self, key: &str) {
        let mut state = self.lock();
        let Some(local) = state.keys.get_mut(key) else {
            return;
        };
        local.feeds = local.feeds.saturating_sub(1);
        if local.feeds == 0 {
            state.keys.remove(key);
            drop(state);
            self.changed.notify_one();
        }
    }

    /// A publication from a key's channel: `key \n epoch \n offset \n json`.
    fn deliver(&self, payload: &[u8]) {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        let mut parts = text.splitn(4, '\n');
        let (Some(key), Some(epoch), Some(offset), Some(json)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            tracing::warn!("ignored a malformed publication on a hub's Redis channel");
            return;
        };
        let Ok(offset) = offset.parse::<u64>() else {
            return;
        };
        let state = self.lock();
        let Some(local) = state.keys.get(key) else {
            return; // nobody on this node listens (any more)
        };
        let _ = local
            .tx
            .send(Arc::new(Entry::new(epoch.into(), offset, json.into())));
    }

    /// The listener has a connection (`true`), or lost it: nothing is joined any more, and
    /// opens waiting for their channel go on (the listener joins it on its next connection
    /// and every feed then checks history).
    fn connected(&self, connected: bool) {
        let mut state = self.lock();
        state.connected = connected;
        if !connected {
            for local in state.keys.values_mut() {
                local.joined = false;
                for waiting in local.waiting.drain(..) {
                    let _ = waiting.send(());
                }
            }
        }
    }

    /// The keys whose channels are to be joined, and the channels to leave, given what is
    /// joined. Keys still joined (left and wanted again meanwhile) are marked at once.
    fn plan(&self, joined: &HashMap<Arc<str>, Arc<str>>) -> (Vec<KeyChannel>, Vec<Arc<str>>) {
        let mut state = self.lock();
        let mut join = Vec::new();
        for (key, local) in state.keys.iter_mut() {
            if local.joined {
                continue;
            }
            if joined.contains_key(key) {
                local.joined = true;
                for waiting in local.waiting.drain(..) {
                    let _ = waiting.send(());
                }
            } else {
                join.push((key.clone(), local.channel.clone()));
            }
        }
        let leave = joined
            .keys()
            .filter(|key| !state.keys.contains_key(*key))
            .cloned()
            .collect();
        (join, leave)
    }

    /// These keys' channels are joined.
    fn joined(&self, keys: &[KeyChannel]) {
        let mut state = self.lock();
        for (key, _) in keys {
            if let Some(local) = state.keys.get_mut(key) {
                local.joined = true;
                for waiting in local.waiting.drain(..) {
                    let _ = waiting.send(());
                }
            }
        }
    }

    /// The channels were (re)joined: publications may have been missed meanwhile, so every
    /// subscriber checks history (offset 0 asks for that).
    fn resync(&self) {
        for local in self.lock().keys.values() {
            let _ = local.tx.send(Arc::new(Entry::new("".into(), 0, "".into())));
        }
    }

    /// [`Relay::resync`] for one key: its channel was joined again on a node of a cluster
    /// that the listener had lost.
    fn resync_key(&self, key: &str) {
        if let Some(local) = self.lock().keys.get(key) {
            let _ = local.tx.send(Arc::new(Entry::new("".into(), 0, "".into())));
        }
    }
}

/// A topic key and its channel.
type KeyChannel = (Arc<str>, Arc<str>);

/// Releases a feed whose open did not finish (it failed, or was given up).
struct Opening {
    relay: Arc<Relay>,
    key: Arc<str>,
    done: bool,
}

impl Drop for Opening {
    fn drop(&mut self) {
        if !self.done {
            self.relay.release(&self.key);
        }
    }
}

/// Pub/sub commands of the server: sharded (`SSUBSCRIBE`, Redis 7 and later) or classic.
#[derive(Clone, Copy, Debug)]
struct Flavour {
    sharded: bool,
}

impl Flavour {
    fn publish(self) -> &'static str {
        if self.sharded {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    fn subscribe(self) -> &'static str {
        if self.sharded {
            "SSUBSCRIBE"
        } else {
            "SUBSCRIBE"
        }
    }

    fn unsubscribe(self) -> &'static str {
        if self.sharded {
            "SUNSUBSCRIBE"
        } else {
            "UNSUBSCRIBE"
        }
    }
}

/// Listen to the channels of the keys this node's clients subscribe to, for as long as the
/// hub lives, on a RESP3 connection of its own; after the connection is lost, reconnect
/// with backoff and join them all again. A `PING` every `ping_every` must be answered
/// within `timeout`, or the connection is taken for dead (it may have died without a
/// close) and rebuilt; subscribers then check history for what they missed.
async fn listen(
    client: redis::Client,
    flavour: Flavour,
    relay: Arc<Relay>,
    timeout: Duration,
    ping_every: Duration,
) {
    let mut wait = Duration::from_millis(50);
    let mut lost = false;
    loop {
        let (tx, mut pushes) = tokio::sync::mpsc::unbounded_channel();
        let config = redis::AsyncConnectionConfig::new()
            .set_push_sender(tx)
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let connect = tokio::time::timeout(
            timeout,
            client.get_multiplexed_async_connection_with_config(&config),
        );
        match connect.await {
            Ok(Ok(conn)) => {
                wait = Duration::from_millis(50);
                relay.connected(true);
                let outcome =
                    serve_channels(conn, flavour, &mut pushes, &relay, ping_every, lost).await;
                relay.connected(false);
                match outcome {
                    Ok(()) => tracing::warn!("lost the hub's Redis subscriptions; reconnecting"),
                    Err(e) => {
                        tracing::warn!(error = %e, "the hub's Redis subscriptions failed; reconnecting")
                    }
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "could not reach the hub's Redis"),
            Err(_) => tracing::warn!("connecting to the hub's Redis timed out"),
        }
        lost = true;
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// One connection of [`listen`]: join the channels wanted, then deliver, follow the keys
/// wanted and ping until the connection is lost (`Ok`) or a command fails (`Err`).
async fn serve_channels(
    mut conn: redis::aio::MultiplexedConnection,
    flavour: Flavour,
    pushes: &mut tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
    relay: &Relay,
    ping_every: Duration,
    lost: bool,
) -> redis::RedisResult<()> {
    // Key -> channel, joined on this connection.
    let mut joined: HashMap<Arc<str>, Arc<str>> = HashMap::new();
    follow(&mut conn, flavour, relay, &mut joined, false).await?;
    if lost {
        tracing::info!("the hub's Redis subscriptions are back");
    }
    relay.resync();
    let mut ping = tokio::time::interval(ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            push = pushes.recv() => {
                let Some(push) = push else { return Ok(()) };
                match push.kind {
                    redis::PushKind::Message | redis::PushKind::SMessage => {
                        if let [_, redis::Value::BulkString(payload)] = push.data.as_slice() {
                            relay.deliver(payload);
                        }
                    }
                    redis::PushKind::Disconnection => return Ok(()),
                    _ => {}
                }
            }
            _ = relay.changed.notified() => follow(&mut conn, flavour, relay, &mut joined, false).await?,
            _ = ping.tick() => {
                redis::cmd("PING").query_async::<redis::Value>(&mut conn).await?;
            }
        }
    }
}

/// Join the channels of the keys wanted and not joined, leave those of keys gone. On a
/// single Redis the first failure fails it (the listener reconnects); on a cluster
/// (`tolerant`) a key whose channel could not be joined (its master is down) stays unjoined
/// and is tried again next time, while the other keys go on.
async fn follow<C>(
    conn: &mut C,
    flavour: Flavour,
    relay: &Relay,
    joined: &mut HashMap<Arc<str>, Arc<str>>,
    tolerant: bool,
) -> redis::RedisResult<()>
where
    C: redis::aio::ConnectionLike + Clone + Send,
{
    let (join, leave) = relay.plan(joined);
    // One channel per command: a command with several is answered with several
    // confirmations, which a multiplexed connection would take for other commands' replies
    // (and on a cluster the channels may live on several masters).
    let joins = join.iter().map(|(_, channel)| {
        let mut conn = conn.clone();
        async move {
            redis::cmd(flavour.subscribe())
                .arg(&**channel)
                .query_async::<redis::Value>(&mut conn)
                .await
        }
    });
    let mut done = Vec::with_capacity(join.len());
    for (reply, key) in futures_util::future::join_all(joins)
        .await
        .into_iter()
        .zip(join)
    {
        match reply {
            Ok(_) => done.push(key),
            Err(e) if tolerant => {
                tracing::debug!(key = &*key.0, error = %e, "could not join a topic key's Redis channel; trying again");
            }
            Err(e) => return Err(e),
        }
    }
    joined.extend(done.iter().cloned());
    relay.joined(&done);
    let leaves = leave.iter().map(|key| {
        let mut conn = conn.clone();
        let channel = joined.get(key).cloned();
        async move {
            let Some(channel) = channel else {
                return Ok(redis::Value::Nil);
            };
            redis::cmd(flavour.unsubscribe())
                .arg(&*channel)
                .query_async::<redis::Value>(&mut conn)
                .await
        }
    });
    for reply in futures_util::future::join_all(leaves).await {
        // On a cluster, a channel that could not be left (its master is down) is gone with
        // that master's connection; its publications would be dropped anyway.
        if !tolerant {
            reply?;
        }
    }
    for key in &leave {
        joined.remove(key);
    }
    Ok(())
}
