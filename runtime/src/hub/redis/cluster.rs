//! A Redis Cluster behind the hub: which URLs name one, its command connection, and the
//! listener that joins each key's channel on the master that holds the key's slot.
//!
//! The redis crate's cluster connection routes every command by its first key (a script by
//! its first key, `SSUBSCRIBE` by its channel; all of a topic key shares one hash tag, so
//! one slot), follows the cluster's topology (`MOVED`, failovers) and repairs a node's
//! connection by itself; with a push sender it also subscribes a node's channels again once
//! it is back (or moves them to the master that took over the slots), and confirms each
//! with an `ssubscribe` push. The listener turns each such confirmation, after a node was
//! lost, into a history check for that key's subscribers: publications missed while the
//! node was away are read from history, or announced as a gap when the node came back
//! without them (a new `run_id`, so a new epoch). Keys on the other masters go on. After a
//! node was lost the listener also watches the masters (`CLUSTER SLOTS`, every
//! `ping_interval`): when a replica took over (the crate would keep trying the dead
//! master's address for the channels it had there), it connects again from scratch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{ConnectionInfo, IntoConnectionInfo, RedisFuture};

use super::{follow, unavailable, Flavour, RedisOptions, Relay};
use crate::hub::PublishError;

/// The command connection: to one Redis, or to a cluster.
#[derive(Clone)]
pub(super) enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Link::Single(conn) => conn.req_packed_command(cmd),
            Link::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Link::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            Link::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(conn) => conn.get_db(),
            Link::Cluster(conn) => conn.get_db(),
        }
    }
}

impl Link {
    /// A command about the server (`INFO`), answered by one node: on a cluster the crate
    /// would ask every master and answer with a map.
    pub(super) async fn one_node(&mut self, cmd: redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self {
            Link::Single(conn) => cmd.query_async(conn).await,
            Link::Cluster(conn) => {
                conn.route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
                    .await
            }
        }
    }
}

/// The URLs in `url`, separated by commas (`redis://h1:7000,redis://h2:7001`), each with
/// the hub's TCP settings.
pub(super) fn seeds(
    url: &str,
    tcp: redis::io::tcp::TcpSettings,
) -> Result<Vec<ConnectionInfo>, PublishError> {
    let seeds = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.into_connection_info()
                .map(|info| info.set_tcp_settings(tcp.clone()))
                .map_err(unavailable)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if seeds.is_empty() {
        return Err(PublishError::Unavailable(format!(
            "no Redis URL in {url:?} (expected redis://host:port/, or several separated by commas for a Redis Cluster)"
        )));
    }
    Ok(seeds)
}

/// Whether the Redis at `info` runs in cluster mode (`INFO cluster`: `cluster_enabled:1`).
pub(super) async fn enabled(
    info: &ConnectionInfo,
    timeout: Duration,
) -> Result<bool, PublishError> {
    let client = redis::Client::open(info.clone()).map_err(unavailable)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let probe = async {
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("INFO")
            .arg("cluster")
            .query_async::<String>(&mut conn)
            .await
    };
    let info = tokio::time::timeout(timeout * 2, probe)
        .await
        .map_err(|_| PublishError::Unavailable("Redis: connecting timed out".into()))?
        .map_err(unavailable)?;
    Ok(info.lines().any(|line| line.trim() == "cluster_enabled:1"))
}

/// The builder of a cluster client of the hub: its timeouts and TCP settings.
fn builder(seeds: &[ConnectionInfo], options: &RedisOptions) -> ClusterClientBuilder {
    ClusterClientBuilder::new(seeds.to_vec())
        .connection_timeout(options.timeout)
        .response_timeout(options.timeout)
        .tcp_settings(super::tcp_settings(options.timeout))
}

/// The command connection to the cluster of `seeds`, and the seeds as the listener
/// connects to them (RESP3: its pub/sub messages come as pushes).
pub(super) async fn connect(
    seeds: &[ConnectionInfo],
    options: &RedisOptions,
) -> Result<(ClusterConnection, Vec<ConnectionInfo>), PublishError> {
    let client = builder(seeds, options).build().map_err(unavailable)?;
    let conn = tokio::time::timeout(options.timeout * 3, client.get_async_connection())
        .await
        .map_err(|_| PublishError::Unavailable("Redis Cluster: connecting timed out".into()))?
        .map_err(unavailable)?;
    let listening = seeds
        .iter()
        .map(|info| {
            let resp3 = info
                .redis_settings()
                .clone()
                .set_protocol(redis::ProtocolVersion::RESP3);
            info.clone().set_redis_settings(resp3)
        })
        .collect();
    Ok((conn, listening))
}

/// Listen to the channels of the keys this node's clients subscribe to, for as long as the
/// hub lives, on a RESP3 cluster connection of its own (it holds one connection per
/// master). When the whole connection is lost, connect again with backoff and join them
/// all again; when one node is lost, the cluster connection gets it back and the keys of
/// that node are checked against history (see the module's docs).
pub(super) async fn listen(
    seeds: Vec<ConnectionInfo>,
    flavour: Flavour,
    relay: Arc<Relay>,
    options: RedisOptions,
) {
    let mut wait = Duration::from_millis(50);
    let mut lost = false;
    loop {
        let (tx, mut pushes) = tokio::sync::mpsc::unbounded_channel();
        let client = builder(&seeds, &options)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(tx)
            .build();
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "the hub's Redis Cluster client could not be built");
                return;
            }
        };
        let connect = tokio::time::timeout(options.timeout * 3, client.get_async_connection());
        match connect.await {
            Ok(Ok(conn)) => {
                wait = Duration::from_millis(50);
                relay.connected(true);
                let outcome =
                    serve_channels(conn, flavour, &mut pushes, &relay, &options, lost).await;
                relay.connected(false);
                match outcome {
                    Ok(()) => {
                        tracing::warn!("lost the hub's Redis Cluster subscriptions; reconnecting")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the hub's Redis Cluster subscriptions failed; reconnecting")
                    }
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "could not reach the hub's Redis Cluster"),
            Err(_) => tracing::warn!("connecting to the hub's Redis Cluster timed out"),
        }
        lost = true;
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// One connection of [`listen`]: join the channels wanted, then deliver and follow the
/// keys wanted until the connection is gone. Every `ping_interval`, the channels that
/// could not be joined (their master is down) are tried again.
async fn serve_channels(
    mut conn: ClusterConnection,
    flavour: Flavour,
    pushes: &mut tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
    relay: &Relay,
    options: &RedisOptions,
    lost: bool,
) -> redis::RedisResult<()> {
    // Key -> channel, joined on this connection.
    let mut joined: HashMap<Arc<str>, Arc<str>> = HashMap::new();
    follow(&mut conn, flavour, relay, &mut joined, true).await?;
    if lost {
        tracing::info!("the hub's Redis Cluster subscriptions are back");
    }
    relay.resync();
    // A key's channel is `P:{K}:0` (a cluster has only database 0).
    let head = format!("{}:{{", options.prefix);
    let key_of = |channel: &[u8]| {
        std::str::from_utf8(channel)
            .ok()?
            .strip_prefix(head.as_str())?
            .strip_suffix("}:0")
            .map(str::to_owned)
    };
    // A node's connection was lost (on this connection, or the listener had lost the
    // previous one): from then on, a channel subscribed again is a key whose subscribers
    // check history, and the masters are watched.
    let mut node_lost = lost;
    let mut topology = masters(&mut conn).await;
    let mut retry = tokio::time::interval(options.ping_interval);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    retry.tick().await;
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
                    redis::PushKind::Disconnection => {
                        node_lost = true;
                        tracing::warn!(
                            "lost a connection to a node of the hub's Redis Cluster; its keys' \
                             subscribers check history once it is back"
                        );
                    }
                    redis::PushKind::SSubscribe | redis::PushKind::Subscribe if node_lost => {
                        if let Some(redis::Value::BulkString(channel)) = push.data.first() {
                            if let Some(key) = key_of(channel) {
                                relay.resync_key(&key);
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ = relay.changed.notified() => {
                follow(&mut conn, flavour, relay, &mut joined, true).await?;
            }
            _ = retry.tick() => {
                if node_lost {
                    if let Some(now) = masters(&mut conn).await {
                        match &topology {
                            Some(was) if *was != now => {
                                tracing::warn!(
                                    "the Redis Cluster's masters changed; joining every key's \
                                     channel again where its slot is now"
                                );
                                return Ok(());
                            }
                            Some(_) => {}
                            None => topology = Some(now),
                        }
                    }
                }
                follow(&mut conn, flavour, relay, &mut joined, true).await?;
            }
        }
    }
}

/// The master of each slot range (`CLUSTER SLOTS`, asked of any node; `None` when it did
/// not answer). After a node was lost the listener compares them: when they changed (a
/// replica took over a master's slots, slots moved), it connects again, so that every
/// key's channel is joined where its slot is now and every subscriber checks history. A
/// master that is down and not replaced stays in the list: the cluster connection gets it
/// back when it is.
async fn masters(conn: &mut ClusterConnection) -> Option<Vec<(i64, i64, String)>> {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    let reply = conn
        .route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
        .await
        .ok()?;
    let redis::Value::Array(ranges) = reply else {
        return None;
    };
    let mut masters = Vec::with_capacity(ranges.len());
    for range in ranges {
        let redis::Value::Array(items) = range else {
            return None;
        };
        let [redis::Value::Int(start), redis::Value::Int(end), redis::Value::Array(master), ..] =
            items.as_slice()
        else {
            return None;
        };
        let [host, redis::Value::Int(port), ..] = master.as_slice() else {
            return None;
        };
        let host: String = redis::from_redis_value_ref(host).ok()?;
        masters.push((*start, *end, format!("{host}:{port}")));
    }
    masters.sort();
    Some(masters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp() -> redis::io::tcp::TcpSettings {
        redis::io::tcp::TcpSettings::default()
    }

    #[test]
    fn several_urls_separated_by_commas_are_a_clusters_seeds() {
        let two = seeds("redis://127.0.0.1:7000/, redis://127.0.0.1:7001/,", tcp()).unwrap();
        let addrs: Vec<String> = two.iter().map(|s| s.addr().to_string()).collect();
        assert_eq!(addrs, ["127.0.0.1:7000", "127.0.0.1:7001"]);
        assert_eq!(seeds("redis://127.0.0.1:6379/3", tcp()).unwrap().len(), 1);
    }

    #[test]
    fn no_url_or_a_bad_one_is_a_clear_error() {
        for bad in ["", " , ", "redis://127.0.0.1:7000/,http://x/"] {
            let e = seeds(bad, tcp()).unwrap_err();
            assert!(matches!(e, PublishError::Unavailable(_)), "{bad:?}: {e:?}");
        }
        let e = seeds(",", tcp()).unwrap_err().to_string();
        assert!(e.contains("no Redis URL"), "{e}");
    }
}
