//! When a client reconnects ([`Reconnect`]), and where its connection stands
//! ([`ConnectionState`]).

use std::time::Duration;

/// When and how a client reconnects after its connection drops.
///
/// While it reconnects (on by default):
/// - calls made while disconnected wait for the connection, within their own timeout;
/// - calls in flight when the connection drops fail with [`crate::Error::Disconnected`],
///   except idempotent ones (IDL `@idempotent`), which are sent again on the new
///   connection; a call that had not been sent yet is always sent on the new connection;
/// - a client with a [token function](crate::client::ClientBuilder::token_fn) fetches a fresh token
///   for every attempt (after the server closed with 4401 because the last one expired, too);
/// - an attempt the server refuses (401, 403) or whose certificate does not verify ends the
///   client, unless `retry_refused` is set;
/// - subscriptions resubscribe by themselves and carry on (items produced while
///   disconnected are lost: each resubscription is a fresh stream);
/// - the methods registered with [`crate::client::ClientBuilder::router`] stay registered;
/// - with several URLs ([`crate::client::ClientBuilder::connect_any`]), each attempt tries the next;
///   a refusal stops the client only once every URL has refused in a row;
/// - the backoff starts again from `initial_backoff` only after a connection has stayed up
///   for `stable_after`: a server that accepts and then drops each connection at once is
///   retried ever more slowly, as if the attempts had failed;
/// - a connection closed because a message from the server exceeded the client's
///   `max_message_size` does not re-send its idempotent calls (the answer would be as large
///   again): they fail with `Disconnected(MessageTooLarge)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reconnect {
    /// Reconnect at all (default `true`).
    pub enabled: bool,
    /// The wait before the first attempt (default 100 ms); it doubles with each failure…
    pub initial_backoff: Duration,
    /// …up to this (default 30 s).
    pub max_backoff: Duration,
    /// Wait a random time between zero and the backoff ("full jitter"), so that many
    /// clients dropped at once do not reconnect in step (default `true`).
    pub jitter: bool,
    /// How long a connection must stay up before the backoff starts again from
    /// `initial_backoff` (default 5 s). A connection that drops sooner counts as a failed
    /// attempt.
    pub stable_after: Duration,
    /// Give up after this many failed attempts in a row (default: never).
    pub max_attempts: Option<u32>,
    /// Keep trying after an attempt fails in a way waiting will not fix (default `false`):
    /// the server refused the handshake (401, 403, other 4xx), or its certificate does
    /// not verify. See [`crate::client::ConnectError::is_retryable`].
    pub retry_refused: bool,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            enabled: true,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            jitter: true,
            stable_after: Duration::from_secs(5),
            max_attempts: None,
            retry_refused: false,
        }
    }
}

impl Reconnect {
    /// Never reconnect: when the connection drops, the client is closed.
    pub fn disabled() -> Self {
        Reconnect {
            enabled: false,
            ..Reconnect::default()
        }
    }

    /// The wait before attempt `attempt` (1-based): `initial_backoff` doubled per earlier
    /// attempt, at most `max_backoff`; with `jitter`, a uniformly random time in
    /// `[0, that]` (full jitter: a crowd dropped at once spreads over the whole window).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self.ceiling(attempt);
        if self.jitter {
            base.mul_f64(fastrand::f64())
        } else {
            base
        }
    }

    /// The backoff of attempt `attempt` before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        self.initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff)
    }
}

/// Where a client's connection stands. Watch it with [`Client::state`](crate::Client::state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connected to this URL.
    Connected {
        /// The server's URL.
        url: String,
    },
    /// The connection dropped; reconnecting.
    Reconnecting {
        /// Attempts made so far since the drop.
        attempt: u32,
        /// Why the last connection or attempt ended.
        reason: String,
    },
    /// Closed for good: by [`Client::close`](crate::Client::close), because reconnecting is off, or because it gave up.
    Closed {
        /// Why.
        reason: String,
    },
}
