//! Limits and timings shared by both sides of a connection, with the documented defaults.

use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Default maximum message size, in and out: 10 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 10 << 20;
/// Default maximum number of concurrent connections of a server.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default maximum number of calls a connection runs at once; past it, reading pauses.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Default maximum number of messages in one batch.
pub const DEFAULT_MAX_BATCH_LEN: usize = 1024;
/// Default maximum number of subscriptions per connection.
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 1024;
/// Default per-subscription buffer, in items.
pub const DEFAULT_SUBSCRIPTION_BUFFER: usize = 1024;
/// Default per-subscription buffer of a client, in bytes (of the messages its items
/// arrived in).
pub const DEFAULT_SUBSCRIPTION_BUFFER_BYTES: usize = 32 << 20;
/// Default handshake timeout.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a new connection of a server has to send its first byte (a TLS hello or a request
/// line) before it is closed.
pub const DEFAULT_SILENT_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections a server holds in their TLS or HTTP handshake at once; at the cap the
/// oldest is dropped.
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 1024;
/// Largest HTTP request head (request line and headers) a server reads.
pub const DEFAULT_MAX_HEADER_SIZE: usize = 16 << 10;
/// Longest a request body may take to arrive whole, from the moment it first has to be
/// waited for (and likewise a WebSocket message, from its first bytes): 120 s, so a 1 MB
/// body needs an average of ~8.5 KB/s (70 kbit/s; a "Slow 3G" link of 400 kbit/s sends it
/// in ~21 s).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(120);
/// Least a request body (or a WebSocket message) still arriving must bring in every
/// [`DEFAULT_MIN_BODY_RATE_WINDOW`]: 1 KiB, about 100 bytes/s. A stalled or trickled body
/// is cut off after one to two windows.
pub const DEFAULT_MIN_BODY_RATE: u64 = 1024;
/// The window over which [`DEFAULT_MIN_BODY_RATE`] is measured: 10 s, longer than the
/// pauses of a lossy mobile link (TCP retransmissions back off 1, 2, 4 s…).
pub const DEFAULT_MIN_BODY_RATE_WINDOW: Duration = Duration::from_secs(10);
/// Request bodies a server waits for at once; at the cap the oldest is cut off.
pub const DEFAULT_MAX_PENDING_BODIES: usize = 1024;
/// Default interval between keep-alive pings.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);
/// Default number of unanswered pings after which a peer is considered dead.
pub const DEFAULT_MAX_MISSED_PONGS: u32 = 2;
/// Default timeout of a call made by a client.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Per-connection settings, the same on both sides.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// Largest message accepted or sent, in bytes.
    pub max_message_size: usize,
    /// Calls served at once per connection; when reached, the connection stops reading
    /// until one finishes (backpressure: nothing is dropped).
    pub max_in_flight: usize,
    /// Largest batch accepted.
    pub max_batch_len: usize,
    /// Subscriptions open at once per connection.
    pub max_subscriptions: usize,
    /// Items buffered per subscription before it is closed as lagging.
    pub subscription_buffer: usize,
    /// Bytes buffered per subscription (client side: the size of the messages its
    /// waiting items came in) before it is closed as lagging. An empty buffer takes any
    /// item, so one item larger than this still passes.
    pub subscription_buffer_bytes: usize,
    /// Interval between pings; `None` disables keep-alive.
    pub ping_interval: Option<Duration>,
    /// Unanswered pings after which the peer is dropped.
    pub max_missed_pongs: u32,
    /// Timeout of calls made on this connection, unless a call sets its own.
    pub call_timeout: Duration,
    /// Capacity of the outgoing frame queue.
    pub send_queue: usize,
    /// tungstenite's read buffer (allocated per connection), which is also the most it
    /// reads from the socket at once. The default, 6 KiB, keeps an idle server
    /// connection near 15 KB and reads a 16 KiB message in three system calls (4 KiB
    /// took five, and 16 KiB echoes were ~10 % slower); more suits servers that mostly
    /// receive large messages, less saves ~1 KB per idle connection per KiB.
    pub read_buffer_size: usize,
    /// tungstenite's write buffer target before a write is issued.
    pub write_buffer_size: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_batch_len: DEFAULT_MAX_BATCH_LEN,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            subscription_buffer: DEFAULT_SUBSCRIPTION_BUFFER,
            subscription_buffer_bytes: DEFAULT_SUBSCRIPTION_BUFFER_BYTES,
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            max_missed_pongs: DEFAULT_MAX_MISSED_PONGS,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            send_queue: 256,
            // Small buffers keep idle connections cheap; tungstenite grows the read buffer
            // to hold a large message, but still reads at most this much per system call.
            read_buffer_size: 6 * 1024,
            // The writer feeds a burst of queued frames, then flushes once; frames collect
            // in this buffer until it is this full.
            write_buffer_size: 64 * 1024,
        }
    }
}

impl ConnectionConfig {
    pub(crate) fn websocket(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size))
    }
}
