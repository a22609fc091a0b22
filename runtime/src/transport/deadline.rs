//! Deadlines for what a peer has started to send and not finished: a request body (a POST,
//! or the POST that asks for server-sent events) and a WebSocket message. Without them a
//! peer that stalls or trickles holds its connection, and what was read of it, for as long
//! as it likes.
//!
//! The rule ([`ReadRules`]): whole within `whole`, and at least `min_bytes` in every window
//! of `per` while incomplete (a window in which the rest arrived ends the read, so a short
//! tail is never held against it). The cost: nothing at all for a read that completes
//! without waiting (a body that came with its request head, a message read in one go); one
//! timer for a read that has to wait, armed once and moved only when it fires — once per
//! window, never once per chunk.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::config;

/// How slowly a peer may send a body or a message it has started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadRules {
    /// The whole of it within this, from the moment it first has to be waited for.
    pub(crate) whole: Duration,
    /// At least this many bytes in every window of `per` while it is incomplete (0: no
    /// rate check).
    pub(crate) min_bytes: u64,
    pub(crate) per: Duration,
}

impl Default for ReadRules {
    fn default() -> Self {
        ReadRules {
            whole: config::DEFAULT_BODY_TIMEOUT,
            min_bytes: config::DEFAULT_MIN_BODY_RATE,
            per: config::DEFAULT_MIN_BODY_RATE_WINDOW,
        }
    }
}

impl ReadRules {
    /// When to look next, at `now`, for a read that started at `started`.
    fn next_check(&self, started: Instant, now: Instant) -> Instant {
        let end = started + self.whole;
        if self.min_bytes == 0 {
            end
        } else {
            // (`per` is at least 1 ms: see `ServerBuilder::min_body_rate`.)
            (now + self.per).min(end)
        }
    }
}

/// Why a read was cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TooSlow {
    /// It was not whole within `whole`.
    Timeout,
    /// Less than `min_bytes` arrived in a window of `per`.
    Rate,
}

impl fmt::Display for TooSlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TooSlow::Timeout => "not whole within the time allowed",
            TooSlow::Rate => "arriving slower than the minimum rate",
        })
    }
}

/// The deadline of one read in progress: one timer, checked and moved when it fires.
pub(crate) struct Deadline {
    rules: ReadRules,
    started: Instant,
    /// When the current window ends (the next check).
    check_at: Instant,
    /// Bytes read when the current window began.
    window_start: u64,
    /// Fires at `check_at`, or earlier (left from a read before: then it is only moved).
    timer: Pin<Box<Sleep>>,
}

impl Deadline {
    /// A read that has to be waited for starts now, `read` bytes into the count.
    pub(crate) fn new(rules: ReadRules, read: u64) -> Deadline {
        let started = Instant::now();
        let check_at = rules.next_check(started, started);
        Deadline {
            rules,
            started,
            check_at,
            window_start: read,
            timer: Box::pin(tokio::time::sleep_until(check_at)),
        }
    }

    /// Another read starts now, with the same timer. A timer still set from the read
    /// before fires earlier than this one's first check and is moved then, so messages
    /// that each wait a moment cost a clock read each, not a timer each.
    fn restart(&mut self, read: u64) {
        self.started = Instant::now();
        self.window_start = read;
        self.check_at = self.rules.next_check(self.started, self.started);
        if self.timer.is_elapsed() || self.timer.deadline() > self.check_at {
            self.timer.as_mut().reset(self.check_at);
        }
    }

    /// Ready when the read, `read` bytes into the count now, is too slow.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>, read: u64) -> Poll<TooSlow> {
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if now < self.check_at {
                // Set for an earlier read.
                self.timer.as_mut().reset(self.check_at);
                continue;
            }
            if now >= self.started + self.rules.whole {
                return Poll::Ready(TooSlow::Timeout);
            }
            if read.saturating_sub(self.window_start) < self.rules.min_bytes {
                return Poll::Ready(TooSlow::Rate);
            }
            self.window_start = read;
            self.check_at = self.rules.next_check(self.started, now);
            self.timer.as_mut().reset(self.check_at);
        }
        Poll::Pending
    }
}

/// A WebSocket connection's stream, counting the bytes read from it for [`MessageWatch`]
/// (one relaxed addition per read from the socket).
pub(crate) struct CountingIo<S> {
    io: S,
    read: Arc<AtomicU64>,
}

impl<S> CountingIo<S> {
    pub(crate) fn new(io: S, read: Arc<AtomicU64>) -> Self {
        CountingIo { io, read }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The deadline of the WebSocket message in progress on a server connection. A message is
/// in progress when the reader waits while bytes have arrived since the last whole message
/// or control frame; the deadline runs from then (so from its first bytes, or from its
/// second read when its first bytes came in the same read as the message before).
///
/// Control frames count as progress: a peer that sends pings between the fragments of a
/// message is alive, and such a message is bounded by the message size limit, as an
/// idle session is by nothing at all.
pub(crate) struct MessageWatch {
    read: Arc<AtomicU64>,
    rules: ReadRules,
    /// Bytes read when the reader last had a whole message or control frame.
    mark: u64,
    /// Kept from one slow message to the next, so its timer is allocated once.
    deadline: Option<Deadline>,
    armed: bool,
}

impl MessageWatch {
    /// A watch, and the count its connection's [`CountingIo`] adds to.
    pub(crate) fn new(rules: ReadRules) -> (MessageWatch, Arc<AtomicU64>) {
        let read = Arc::new(AtomicU64::new(0));
        let watch = MessageWatch {
            read: read.clone(),
            rules,
            mark: 0,
            deadline: None,
            armed: false,
        };
        (watch, read)
    }

    /// The reader got a whole message or control frame.
    #[inline]
    pub(crate) fn message(&mut self) {
        self.mark = self.read.load(Ordering::Relaxed);
        self.armed = false;
    }

    /// Polled while the reader waits: ready when the message in progress is too slow.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<TooSlow> {
        let read = self.read.load(Ordering::Relaxed);
        if !self.armed {
            if read == self.mark {
                return Poll::Pending;
            }
            self.armed = true;
            match &mut self.deadline {
                Some(deadline) => deadline.restart(read),
                None => self.deadline = Some(Deadline::new(self.rules, read)),
            }
        }
        match &mut self.deadline {
            Some(deadline) => deadline.poll_expired(cx, read),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(whole_ms: u64, min_bytes: u64, per_ms: u64) -> ReadRules {
        ReadRules {
            whole: Duration::from_millis(whole_ms),
            min_bytes,
            per: Duration::from_millis(per_ms),
        }
    }

    async fn expiry(deadline: &mut Deadline, read: u64) -> Option<TooSlow> {
        let poll = std::future::poll_fn(|cx| Poll::Ready(deadline.poll_expired(cx, read)));
        match poll.await {
            Poll::Ready(why) => Some(why),
            Poll::Pending => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_is_cut_at_the_first_window_without_enough_bytes() {
        let mut d = Deadline::new(rules(10_000, 100, 1_000), 5);
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(expiry(&mut d, 5).await, None);
        tokio::time::advance(Duration::from_millis(2)).await;
        assert_eq!(expiry(&mut d, 104).await, Some(TooSlow::Rate));
    }

    #[tokio::test(start_paused = true)]
    async fn enough_bytes_per_window_last_until_the_whole_deadline() {
        let mut d = Deadline::new(rules(3_500, 100, 1_000), 0);
        let mut read = 0;
        for _ in 0..3 {
            read += 100;
            tokio::time::advance(Duration::from_millis(1_001)).await;
            assert_eq!(expiry(&mut d, read).await, None);
        }
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(expiry(&mut d, read + 1_000).await, Some(TooSlow::Timeout));
    }

    #[tokio::test(start_paused = true)]
    async fn no_rate_check_with_zero_bytes() {
        let mut d = Deadline::new(rules(2_000, 0, 1), 0);
        tokio::time::advance(Duration::from_millis(1_999)).await;
        assert_eq!(expiry(&mut d, 0).await, None);
        tokio::time::advance(Duration::from_millis(2)).await;
        assert_eq!(expiry(&mut d, 0).await, Some(TooSlow::Timeout));
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_is_watched_only_while_it_is_in_progress() {
        let (mut watch, read) = MessageWatch::new(rules(10_000, 100, 1_000));
        let mut poll = || {
            let waker = futures_util::task::noop_waker();
            watch.poll_expired(&mut Context::from_waker(&waker))
        };
        // Nothing in progress: no timer at all, however long.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(poll().is_pending());
        // Bytes without a whole message: armed from now.
        read.fetch_add(10, Ordering::Relaxed);
        assert!(poll().is_pending());
        tokio::time::advance(Duration::from_millis(1_001)).await;
        assert_eq!(poll(), Poll::Ready(TooSlow::Rate));
        // A whole message disarms; the next one starts its own deadline.
        watch.message();
        tokio::time::advance(Duration::from_secs(5)).await;
        let mut poll = || {
            let waker = futures_util::task::noop_waker();
            watch.poll_expired(&mut Context::from_waker(&waker))
        };
        assert!(poll().is_pending());
        read.fetch_add(10, Ordering::Relaxed);
        assert!(poll().is_pending());
        tokio::time::advance(Duration::from_millis(600)).await;
        read.fetch_add(100, Ordering::Relaxed);
        assert!(poll().is_pending());
        tokio::time::advance(Duration::from_millis(401)).await;
        assert!(poll().is_pending(), "100 bytes in its first window");
        tokio::time::advance(Duration::from_millis(1_000)).await;
        assert_eq!(poll(), Poll::Ready(TooSlow::Rate));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_left_from_an_earlier_message_only_moves_the_check() {
        let (mut watch, read) = MessageWatch::new(rules(10_000, 100, 1_000));
        let poll = |watch: &mut MessageWatch| {
            let waker = futures_util::task::noop_waker();
            watch.poll_expired(&mut Context::from_waker(&waker))
        };
        let timer_at = |watch: &MessageWatch| watch.deadline.as_ref().unwrap().timer.deadline();
        read.fetch_add(10, Ordering::Relaxed);
        assert!(poll(&mut watch).is_pending());
        let first = timer_at(&watch);
        tokio::time::advance(Duration::from_millis(700)).await;
        watch.message();
        // The next message starts 700 ms in; the old timer fires at 1 000 ms, which is
        // no check of the new one (it has until 1 700 ms).
        read.fetch_add(10, Ordering::Relaxed);
        assert!(poll(&mut watch).is_pending());
        assert_eq!(
            timer_at(&watch),
            first,
            "the timer is not moved for the new message"
        );
        tokio::time::advance(Duration::from_millis(400)).await;
        assert!(poll(&mut watch).is_pending(), "not checked early");
        tokio::time::advance(Duration::from_millis(601)).await;
        assert_eq!(poll(&mut watch), Poll::Ready(TooSlow::Rate));
    }
}
