//! Metrics through the [`metrics`] facade. Nothing is recorded unless the application
//! installs a recorder (e.g. `metrics-exporter-prometheus`), and then these are kept:
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `wirecall_calls_total` | counter | `method`, `outcome` | calls served, by how they ended: `ok`, `error` (the handler's error), `invalid_params`, `internal` (a panic or an unserializable result), `cancelled` (by the caller, or its connection went away) |
//! | `wirecall_call_duration_seconds` | histogram | `method` | from the request's arrival to its answer |
//! | `wirecall_calls_in_flight` | gauge | | calls being served now |
//! | `wirecall_subscriptions` | gauge | | streams being served now |
//! | `wirecall_connections` | gauge | `door` | sessions open now: `websocket`, `events` (server-sent events) |
//! | `wirecall_http_requests_total` | counter | | JSON-RPC POSTs answered |
//! | `wirecall_pending_handshakes` | gauge | | connections of the server's listener still in their TLS or HTTP handshake |
//! | `wirecall_handshakes_refused_total` | counter | `reason` | connections or upgrades turned away: `pending_cap`, `per_ip`, `silent`, `timeout`, `tls`, `too_many_connections`, `origin`, `unauthorized`, `forbidden` |
//! | `wirecall_pending_bodies` | gauge | | request bodies of the server's listener being waited for |
//! | `wirecall_reads_cut_total` | counter | `reason` | request bodies and WebSocket messages cut off before they were whole: `body_cap` (the oldest of too many pending bodies), `body_rate` / `message_rate` (slower than the minimum rate), `body_timeout` / `message_timeout` (not whole in time) |
//! | `wirecall_received_bytes_total`, `wirecall_sent_bytes_total` | counter | `door` | JSON-RPC message bytes (frames, bodies, events) |
//! | `wirecall_hub_keys` | gauge | `state` | topic keys a memory hub holds: `active` (with history or subscribers), `tombstone` (only their position) |
//! | `wirecall_hub_history_bytes` | gauge | | the history memory hubs hold, as counted against their bound (each item's JSON plus 128) |
//! | `wirecall_hub_evictions_total` | counter | `reason` | what a memory hub dropped at a bound: a key's history for a new key (`max_keys`) or for bytes (`max_history_bytes`), a remembered position (`tombstones`) |
//! | `wirecall_hub_refused_total` | counter | | new topic keys refused because every key held has subscribers |
//!
//! wirecall decides once, when its first connection or call needs it, whether a recorder
//! is installed; install yours before the first server or client starts. Without one,
//! nothing is measured at all (not even the clock is read): an application that does not
//! collect metrics pays one branch per call. The check counts any recorder that is not a
//! zero-sized type (`metrics`' own no-op recorder is one); [`set_enabled`] decides it
//! explicitly, e.g. for a zero-sized recorder of your own.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram};

use crate::error::RpcError;

/// The door a message went through, for the `door` label (the session layer maps its
/// doors to these; this module imports nothing above the error types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    WebSocket = 0,
    Http = 1,
    Events = 2,
    HttpClient = 3,
}

static ENABLED: OnceLock<bool> = OnceLock::new();

/// Record metrics (`true`) or not, instead of detecting an installed recorder. Takes effect
/// only before wirecall's first connection or call (returns `false` if the decision was
/// already made).
pub fn set_enabled(on: bool) -> bool {
    ENABLED.set(on).is_ok()
}

/// Are metrics recorded? Decided on first use.
fn on() -> bool {
    *ENABLED.get_or_init(|| metrics::with_recorder(|r| std::mem::size_of_val(r) != 0))
}

/// How a call ended, for `wirecall_calls_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Error,
    InvalidParams,
    Internal,
    Cancelled,
}

const OUTCOMES: [&str; 5] = ["ok", "error", "invalid_params", "internal", "cancelled"];

impl Outcome {
    pub(crate) fn of<T>(result: &Result<T, RpcError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(e) => match e.code {
                -32602 => Outcome::InvalidParams,
                -32603 => Outcome::Internal,
                -32800 => Outcome::Cancelled,
                _ => Outcome::Error,
            },
        }
    }
}

/// The metrics of one method, made on its first call.
pub(crate) struct MethodMetrics {
    name: Arc<str>,
    handles: OnceLock<Handles>,
}

struct Handles {
    calls: [Counter; 5],
    duration: Histogram,
}

impl MethodMetrics {
    pub(crate) fn new(name: &str) -> Arc<MethodMetrics> {
        Arc::new(MethodMetrics {
            name: name.into(),
            handles: OnceLock::new(),
        })
    }

    fn handles(&self) -> &Handles {
        self.handles.get_or_init(|| {
            let method = self.name.to_string();
            Handles {
                calls: OUTCOMES.map(|outcome| {
                    metrics::counter!("wirecall_calls_total", "method" => method.clone(), "outcome" => outcome)
                }),
                duration: metrics::histogram!("wirecall_call_duration_seconds", "method" => method.clone()),
            }
        })
    }

    /// A call of this method starts.
    pub(crate) fn start(&self) -> CallTimer {
        if !on() {
            return CallTimer { started: None };
        }
        globals().in_flight.increment(1.0);
        CallTimer {
            started: Some(Instant::now()),
        }
    }

    /// A call of this method, started at `timer`, ended so.
    pub(crate) fn finish(&self, timer: CallTimer, outcome: Outcome) {
        let Some(started) = timer.started else {
            return;
        };
        globals().in_flight.decrement(1.0);
        let handles = self.handles();
        handles.calls[outcome as usize].increment(1);
        handles.duration.record(started.elapsed().as_secs_f64());
    }
}

/// When a call started (if metrics are on); given back to [`MethodMetrics::finish`] when
/// it ends.
pub(crate) struct CallTimer {
    started: Option<Instant>,
}

impl CallTimer {
    /// A timer of a call that records no method metrics.
    pub(crate) fn off() -> Self {
        CallTimer { started: None }
    }
}

struct Globals {
    in_flight: Gauge,
    subscriptions: Gauge,
    websocket: Gauge,
    events: Gauge,
    http_requests: Counter,
    pending: Gauge,
    bodies: Gauge,
    received: [Counter; 4],
    sent: [Counter; 4],
}

const DOORS: [&str; 4] = ["websocket", "http", "events", "http_client"];

fn globals() -> &'static Globals {
    static GLOBALS: OnceLock<Globals> = OnceLock::new();
    GLOBALS.get_or_init(|| Globals {
        in_flight: metrics::gauge!("wirecall_calls_in_flight"),
        subscriptions: metrics::gauge!("wirecall_subscriptions"),
        websocket: metrics::gauge!("wirecall_connections", "door" => "websocket"),
        events: metrics::gauge!("wirecall_connections", "door" => "events"),
        http_requests: metrics::counter!("wirecall_http_requests_total"),
        pending: metrics::gauge!("wirecall_pending_handshakes"),
        bodies: metrics::gauge!("wirecall_pending_bodies"),
        received: DOORS
            .map(|door| metrics::counter!("wirecall_received_bytes_total", "door" => door)),
        sent: DOORS.map(|door| metrics::counter!("wirecall_sent_bytes_total", "door" => door)),
    })
}

/// A connection or upgrade turned away.
pub(crate) fn handshake_refused(reason: &'static str) {
    if !on() {
        return;
    }
    metrics::counter!("wirecall_handshakes_refused_total", "reason" => reason).increment(1);
}

/// Handshakes in progress now.
pub(crate) fn pending_handshakes(n: usize) {
    if !on() {
        return;
    }
    globals().pending.set(n as f64);
}

/// Request bodies being waited for now.
pub(crate) fn pending_bodies(n: usize) {
    if !on() {
        return;
    }
    globals().bodies.set(n as f64);
}

/// A request body or WebSocket message cut off before it was whole.
#[cold]
pub(crate) fn read_cut(reason: &'static str) {
    if !on() {
        return;
    }
    metrics::counter!("wirecall_reads_cut_total", "reason" => reason).increment(1);
}

/// One JSON-RPC POST answered.
pub(crate) fn http_request() {
    if !on() {
        return;
    }
    globals().http_requests.increment(1);
}

pub(crate) fn received(via: Via, bytes: usize) {
    if !on() {
        return;
    }
    globals().received[via as usize].increment(bytes as u64);
}

pub(crate) fn sent(via: Via, bytes: usize) {
    if !on() {
        return;
    }
    globals().sent[via as usize].increment(bytes as u64);
}

/// Counted in a gauge while alive.
pub(crate) struct Open(Option<&'static Gauge>);

impl Open {
    /// A server session (WebSocket, or server-sent events) opened.
    pub(crate) fn session(via: Via) -> Open {
        if !on() {
            return Open(None);
        }
        let g = globals();
        let gauge = if via == Via::Events {
            &g.events
        } else {
            &g.websocket
        };
        gauge.increment(1.0);
        Open(Some(gauge))
    }

    /// A stream started being served.
    pub(crate) fn subscription() -> Open {
        if !on() {
            return Open(None);
        }
        let gauge = &globals().subscriptions;
        gauge.increment(1.0);
        Open(Some(gauge))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(gauge) = self.0 {
            gauge.decrement(1.0);
        }
    }
}

struct HubMetrics {
    active: Gauge,
    tombstones: Gauge,
    history_bytes: Gauge,
    refused: Counter,
}

fn hub_metrics() -> &'static HubMetrics {
    static HUB: OnceLock<HubMetrics> = OnceLock::new();
    HUB.get_or_init(|| HubMetrics {
        active: metrics::gauge!("wirecall_hub_keys", "state" => "active"),
        tombstones: metrics::gauge!("wirecall_hub_keys", "state" => "tombstone"),
        history_bytes: metrics::gauge!("wirecall_hub_history_bytes"),
        refused: metrics::counter!("wirecall_hub_refused_total"),
    })
}

/// A memory hub's counts changed by these (every hub of the process adds to the gauges).
pub(crate) fn hub_changed(active: i64, tombstones: i64, history_bytes: i64) {
    if !on() || (active, tombstones, history_bytes) == (0, 0, 0) {
        return;
    }
    let m = hub_metrics();
    m.active.increment(active as f64);
    m.tombstones.increment(tombstones as f64);
    m.history_bytes.increment(history_bytes as f64);
}

/// A memory hub dropped something at a bound.
pub(crate) fn hub_evicted(reason: &'static str) {
    if !on() {
        return;
    }
    metrics::counter!("wirecall_hub_evictions_total", "reason" => reason).increment(1);
}

/// A memory hub refused a new key.
pub(crate) fn hub_refused() {
    if !on() {
        return;
    }
    hub_metrics().refused.increment(1);
}
