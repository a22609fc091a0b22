//! A shipped policy layer: rate limits per identity, else per IP address (feature
//! `rate-limit`; governor's GCRA).

use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context as TaskContext, Poll};

use futures_util::future::{ready, Either, Ready};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tower::{Layer, Service};

use crate::error::RpcError;
use crate::session::policy::{CallKind, RpcRequest};

/// Distinct keys tracked at most by default (see [`RateLimitLayer::max_keys`]).
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// How often (in checks) idle keys are dropped.
const SWEEP_EVERY: u64 = 1024;

/// Who a call's budget belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum RateKey {
    /// An identity, by the name the key function gave.
    Name(Box<str>),
    /// The peer's IP address (no identity).
    Ip(IpAddr),
    /// The connection (neither an identity nor an address is known).
    Connection(u64),
}

type KeyFn = dyn Fn(&RpcRequest) -> Option<String> + Send + Sync;

struct Limits {
    quota: Quota,
    max_keys: usize,
    limiter: RwLock<Arc<DefaultKeyedRateLimiter<RateKey>>>,
    checks: AtomicU64,
    key: Arc<KeyFn>,
}

/// Limits how many calls a caller makes: with a rate per identity when the connection
/// authenticated, else per IP address (an IPv6 address by its /64 prefix). Every call, notification, stream or topic
/// subscription and WAMP publication counts — each entry of a batch, on every door;
/// unsubscribes do not. Over
/// the limit, a call is answered `-32029 Rate limited` with `data: {"retry_after_ms": N}`
/// (over WAMP the error URI `wirecall.error.rate_limited`, `kwargs` the same), and a
/// notification is dropped.
///
/// The identity is found by [`key_by`](Self::key_by); by default it is the connection's
/// identity if that is a `String` (`Identity::new(name)`). Memory stays bounded however many
/// distinct callers pass: past [`max_keys`](Self::max_keys) callers, idle ones (whose
/// budget is full again) are forgotten, and if as many still have a budget in use
/// the table is started afresh (everyone's budget full again: the limit errs on the side
/// of serving).
///
/// ```
/// use std::num::NonZeroU32;
/// use wirecall::policy::RateLimitLayer;
///
/// let builder = wirecall::Server::builder()
///     .layer(RateLimitLayer::per_second(NonZeroU32::new(20).unwrap()));
/// # drop(builder);
/// ```
#[derive(Clone)]
pub struct RateLimitLayer {
    limits: Arc<Limits>,
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("quota", &self.limits.quota)
            .field("max_keys", &self.limits.max_keys)
            .finish_non_exhaustive()
    }
}

impl RateLimitLayer {
    /// `n` calls per second per caller, in bursts of up to `n`.
    pub fn per_second(n: NonZeroU32) -> Self {
        Self::new(Quota::per_second(n))
    }

    /// Any [`governor::Quota`] (e.g. `Quota::per_minute(n).allow_burst(b)`).
    pub fn new(quota: Quota) -> Self {
        RateLimitLayer {
            limits: Arc::new(Limits {
                quota,
                max_keys: DEFAULT_MAX_KEYS,
                limiter: RwLock::new(Arc::new(DefaultKeyedRateLimiter::keyed(quota))),
                checks: AtomicU64::new(0),
                key: Arc::new(|req: &RpcRequest| req.identity::<String>().cloned()),
            }),
        }
    }

    fn with(self, f: impl FnOnce(&mut Limits)) -> Self {
        let mut limits = Arc::try_unwrap(self.limits).unwrap_or_else(|shared| Limits {
            quota: shared.quota,
            max_keys: shared.max_keys,
            limiter: RwLock::new(Arc::new(DefaultKeyedRateLimiter::keyed(shared.quota))),
            checks: AtomicU64::new(0),
            key: shared.key.clone(),
        });
        f(&mut limits);
        RateLimitLayer {
            limits: Arc::new(limits),
        }
    }

    /// Callers tracked at most with a budget in use (default [`DEFAULT_MAX_KEYS`]).
    pub fn max_keys(self, n: usize) -> Self {
        self.with(|l| l.max_keys = n.max(1))
    }

    /// Who a call's budget belongs to: `Some(name)` for an identity (e.g. from
    /// [`RpcRequest::identity`]); `None` counts it against the peer's IP address (an IPv6
    /// address's /64).
    pub fn key_by<F>(self, key: F) -> Self
    where
        F: Fn(&RpcRequest) -> Option<String> + Send + Sync + 'static,
    {
        self.with(|l| l.key = Arc::new(key))
    }

    /// Distinct callers tracked right now.
    pub fn tracked(&self) -> usize {
        self.limiter().len()
    }

    fn limiter(&self) -> Arc<DefaultKeyedRateLimiter<RateKey>> {
        self.limits
            .limiter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn key(&self, req: &RpcRequest) -> RateKey {
        match ((self.limits.key)(req), req.remote_addr()) {
            (Some(name), _) => RateKey::Name(name.into()),
            (None, Some(addr)) => RateKey::Ip(ip_key(addr.ip())),
            (None, None) => RateKey::Connection(req.connection_id().0),
        }
    }

    /// Take one call from `key`'s budget, or say when the next would be allowed.
    fn take(&self, key: &RateKey) -> Result<(), RpcError> {
        let limiter = self.limiter();
        let out = limiter.check_key(key);
        let checks = self.limits.checks.fetch_add(1, Ordering::Relaxed) + 1;
        if checks.is_multiple_of(SWEEP_EVERY) {
            self.sweep(&limiter);
        }
        match out {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(RpcError::rate_limited(retry_after_ms(wait)))
            }
        }
    }

    /// Past the bound, forget idle callers; if that is not enough, start afresh.
    #[cold]
    fn sweep(&self, limiter: &DefaultKeyedRateLimiter<RateKey>) {
        if limiter.len() <= self.limits.max_keys {
            return;
        }
        limiter.retain_recent();
        if limiter.len() > self.limits.max_keys {
            tracing::warn!(
                max_keys = self.limits.max_keys,
                "rate limits: more callers with a budget in use than max_keys; starting afresh"
            );
            let fresh = Arc::new(DefaultKeyedRateLimiter::keyed(self.limits.quota));
            *self
                .limits
                .limiter
                .write()
                .unwrap_or_else(|e| e.into_inner()) = fresh;
        } else {
            limiter.shrink_to_fit();
        }
    }
}

/// The budget an address draws on: an IPv4 address (also one mapped into IPv6) as it is,
/// an IPv6 address by its /64 — what one host or one site is given (a host may use any
/// address of it, so a budget per /128 would be no limit at all).
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !(u128::from(u64::MAX)),
            )),
        },
        v4 => v4,
    }
}

/// `wait` in whole milliseconds, rounded up (at least 1): a client that waits that long
/// finds the budget back, never a fraction of a millisecond early.
fn retry_after_ms(wait: std::time::Duration) -> u64 {
    u64::try_from(wait.as_nanos().div_ceil(1_000_000))
        .unwrap_or(u64::MAX)
        .max(1)
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            layer: self.clone(),
            inner,
        }
    }
}

/// The service of a [`RateLimitLayer`].
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    layer: RateLimitLayer,
    inner: S,
}

impl<S> Service<RpcRequest> for RateLimit<S>
where
    S: Service<RpcRequest, Response = String, Error = RpcError>,
{
    type Response = String;
    type Error = RpcError;
    type Future = Either<Ready<Result<String, RpcError>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), RpcError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: RpcRequest) -> Self::Future {
        if req.kind() != CallKind::Unsubscribe {
            if let Err(e) = self.layer.take(&self.layer.key(&req)) {
                return Either::Left(ready(Err(e)));
            }
        }
        Either::Right(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stays_bounded_with_a_million_distinct_callers() {
        let layer = RateLimitLayer::per_second(NonZeroU32::new(5).unwrap()).max_keys(10_000);
        let mut most = 0;
        for i in 0..1_000_000u128 {
            let ip = IpAddr::V6(std::net::Ipv6Addr::from(i + 1));
            layer.take(&RateKey::Ip(ip)).unwrap();
            if i.is_multiple_of(1000) {
                most = most.max(layer.tracked());
            }
        }
        assert!(
            most <= 10_000 + SWEEP_EVERY as usize,
            "{most} callers tracked at once"
        );
    }

    #[test]
    fn an_ipv6_address_is_limited_by_its_64_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // One host rotating the last 64 bits draws on one budget.
        assert_eq!(ip_key(ip("2001:db8:1:2::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            ip_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(ip_key(ip("2001:db8:1:3::1")), ip_key(ip("2001:db8:1:2::1")));
        // IPv4, and IPv4 mapped into IPv6 (a dual-stack listener), by the address.
        assert_eq!(ip_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(ip_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        let layer = RateLimitLayer::per_second(NonZeroU32::new(1).unwrap());
        layer.take(&RateKey::Ip(ip_key(ip("2001:db8::1")))).unwrap();
        assert!(layer.take(&RateKey::Ip(ip_key(ip("2001:db8::2")))).is_err());
    }

    #[test]
    fn retry_after_is_rounded_up_to_the_millisecond() {
        use std::time::Duration;
        assert_eq!(retry_after_ms(Duration::from_micros(999_600)), 1000);
        assert_eq!(retry_after_ms(Duration::from_millis(12)), 12);
        assert_eq!(retry_after_ms(Duration::from_nanos(1)), 1);
        assert_eq!(retry_after_ms(Duration::ZERO), 1);
    }

    #[test]
    fn a_caller_over_its_budget_is_told_when_to_come_back() {
        let layer = RateLimitLayer::per_second(NonZeroU32::new(3).unwrap());
        let key = RateKey::Name("alice".into());
        for _ in 0..3 {
            layer.take(&key).unwrap();
        }
        let err = layer.take(&key).unwrap_err();
        assert_eq!(err.code, crate::error::code::RATE_LIMITED);
        let data: serde_json::Value = err.data().unwrap();
        let ms = data["retry_after_ms"].as_u64().unwrap();
        assert!((1..=1000).contains(&ms), "{data}");
        // Someone else is not affected.
        layer.take(&RateKey::Name("bob".into())).unwrap();
    }
}
