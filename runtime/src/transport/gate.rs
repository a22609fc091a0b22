//! The door of the server's own listener, before a whole request: connections still in
//! their TLS or HTTP handshake are capped on their own (at the cap the oldest is dropped, so
//! a flood of idle sockets cannot keep a real client out); so are request bodies being
//! waited for, apart from the handshakes (a flood of stalled bodies cannot keep a real
//! client out either, nor push out a real client's handshake); and optionally the
//! connections of one IP address.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use crate::telemetry;

/// Connections in their handshake, request bodies being waited for, and connections per
/// IP address.
pub(crate) struct Gate {
    max_pending: usize,
    max_bodies: usize,
    max_per_ip: Option<usize>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u64,
    /// Handshakes in progress, oldest first: cancelled to drop that connection.
    pending: BTreeMap<u64, CancellationToken>,
    /// Request bodies being waited for, oldest first: cancelled to cut that one off.
    bodies: BTreeMap<u64, CancellationToken>,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why the gate turned a connection away.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Turned {
    /// Its IP address has `max_per_ip` connections open.
    PerIp,
}

impl Gate {
    pub(crate) fn new(
        max_pending: usize,
        max_bodies: usize,
        max_per_ip: Option<usize>,
    ) -> Arc<Gate> {
        Arc::new(Gate {
            max_pending: max_pending.max(1),
            max_bodies: max_bodies.max(1),
            max_per_ip,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection was accepted: count it as pending (dropping the oldest pending one if
    /// that makes too many) and against its IP address.
    pub(crate) fn enter(self: &Arc<Self>, ip: IpAddr) -> Result<Pass, Turned> {
        let mut state = self.state();
        if let Some(max) = self.max_per_ip {
            let n = state.per_ip.entry(ip).or_insert(0);
            if *n >= max {
                return Err(Turned::PerIp);
            }
            *n += 1;
        }
        let (id, evicted) = self.pend(&mut state);
        Ok(Pass {
            gate: self.clone(),
            id,
            ip: self.max_per_ip.map(|_| ip),
            evicted,
        })
    }

    /// Count one more among the pending, dropping the oldest if that makes too many.
    fn pend(&self, state: &mut State) -> (u64, CancellationToken) {
        state.next += 1;
        let id = state.next;
        let evicted = CancellationToken::new();
        state.pending.insert(id, evicted.clone());
        while state.pending.len() > self.max_pending {
            if let Some((_, oldest)) = state.pending.pop_first() {
                oldest.cancel();
                telemetry::handshake_refused("pending_cap");
            }
        }
        telemetry::pending_handshakes(state.pending.len());
        (id, evicted)
    }

    /// A session that must still authenticate (a WAMP client's `ticket`, after the
    /// upgrade) is pending again, like a handshake, until the guard is dropped: at the cap
    /// the oldest pending goes, so sessions that never authenticate cannot hold the
    /// connection slots that real clients need.
    pub(crate) fn unauthenticated(self: &Arc<Self>) -> Unauthenticated {
        let (id, evicted) = self.pend(&mut self.state());
        Unauthenticated {
            gate: self.clone(),
            id,
            evicted,
        }
    }

    /// Handshakes in progress now.
    pub(crate) fn pending(&self) -> usize {
        self.state().pending.len()
    }

    /// A request body has to be waited for: count it among the pending bodies, cutting off
    /// the oldest if that makes too many. A real client's body arrives within moments; one
    /// that stalls grows old.
    pub(crate) fn body(self: &Arc<Self>) -> PendingBody {
        let mut state = self.state();
        state.next += 1;
        let id = state.next;
        let shed = CancellationToken::new();
        state.bodies.insert(id, shed.clone());
        while state.bodies.len() > self.max_bodies {
            if let Some((_, oldest)) = state.bodies.pop_first() {
                oldest.cancel();
                telemetry::read_cut("body_cap");
            }
        }
        telemetry::pending_bodies(state.bodies.len());
        PendingBody {
            gate: self.clone(),
            id,
            shed,
        }
    }

    /// Request bodies being waited for now.
    pub(crate) fn bodies(&self) -> usize {
        self.state().bodies.len()
    }
}

/// A request body being waited for, counted at the gate until dropped.
pub(crate) struct PendingBody {
    gate: Arc<Gate>,
    id: u64,
    shed: CancellationToken,
}

impl PendingBody {
    /// Cancelled when the gate cuts this body off to make room for a newer one.
    pub(crate) fn shed(&self) -> &CancellationToken {
        &self.shed
    }
}

impl Drop for PendingBody {
    fn drop(&mut self) {
        let mut state = self.gate.state();
        if state.bodies.remove(&self.id).is_some() {
            telemetry::pending_bodies(state.bodies.len());
        }
    }
}

/// A session waiting to authenticate, counted among the pending handshakes until dropped.
pub(crate) struct Unauthenticated {
    gate: Arc<Gate>,
    id: u64,
    evicted: CancellationToken,
}

impl Unauthenticated {
    /// Cancelled when the gate drops this session to make room.
    pub(crate) fn evicted(&self) -> &CancellationToken {
        &self.evicted
    }
}

impl Drop for Unauthenticated {
    fn drop(&mut self) {
        let mut state = self.gate.state();
        if state.pending.remove(&self.id).is_some() {
            telemetry::pending_handshakes(state.pending.len());
        }
    }
}

/// One accepted connection's place at the gate: pending until [`Pass::established`], and
/// counted against its IP address until dropped.
pub(crate) struct Pass {
    gate: Arc<Gate>,
    id: u64,
    ip: Option<IpAddr>,
    /// Cancelled when the gate drops this connection to make room.
    evicted: CancellationToken,
}

impl Pass {
    /// Cancelled when this connection is dropped to make room for a newer handshake.
    pub(crate) fn evicted(&self) -> &CancellationToken {
        &self.evicted
    }

    /// A request body of this connection has to be waited for.
    pub(crate) fn body(&self) -> PendingBody {
        self.gate.body()
    }

    /// This connection's session must still authenticate: pending again until dropped.
    pub(crate) fn unauthenticated(&self) -> Unauthenticated {
        self.gate.unauthenticated()
    }

    /// The handshake is done (a whole request head arrived): no longer pending.
    pub(crate) fn established(&self) {
        let mut state = self.gate.state();
        if state.pending.remove(&self.id).is_some() {
            telemetry::pending_handshakes(state.pending.len());
        }
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut state = self.gate.state();
        if state.pending.remove(&self.id).is_some() {
            telemetry::pending_handshakes(state.pending.len());
        }
        if let Some(ip) = self.ip {
            if let Some(n) = state.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    state.per_ip.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn the_oldest_pending_handshake_makes_room() {
        let gate = Gate::new(2, 2, None);
        let first = gate.enter(A).unwrap();
        let second = gate.enter(A).unwrap();
        second.established();
        let third = gate.enter(A).unwrap();
        assert!(!first.evicted().is_cancelled());
        let fourth = gate.enter(A).unwrap();
        assert!(
            first.evicted().is_cancelled(),
            "the oldest pending one goes"
        );
        assert!(!second.evicted().is_cancelled(), "established ones stay");
        assert!(!third.evicted().is_cancelled() && !fourth.evicted().is_cancelled());
        assert_eq!(gate.pending(), 2);
        drop((third, fourth));
        assert_eq!(gate.pending(), 0);
    }

    #[test]
    fn the_oldest_pending_body_makes_room_apart_from_handshakes() {
        let gate = Gate::new(2, 2, None);
        let handshake = gate.enter(A).unwrap();
        let first = gate.body();
        let second = gate.body();
        let third = gate.body();
        assert!(first.shed().is_cancelled(), "the oldest body goes");
        assert!(!second.shed().is_cancelled() && !third.shed().is_cancelled());
        assert!(
            !handshake.evicted().is_cancelled(),
            "bodies do not push out handshakes"
        );
        assert_eq!((gate.bodies(), gate.pending()), (2, 1));
        drop((first, second));
        assert_eq!(gate.bodies(), 1);
        drop(third);
        assert_eq!(gate.bodies(), 0);
    }

    #[test]
    fn connections_per_ip_are_capped_and_given_back() {
        let gate = Gate::new(100, 100, Some(2));
        let a1 = gate.enter(A).unwrap();
        let _a2 = gate.enter(A).unwrap();
        assert_eq!(gate.enter(A).err(), Some(Turned::PerIp));
        let _b = gate.enter(B).expect("another address has its own count");
        a1.established();
        assert_eq!(
            gate.enter(A).err(),
            Some(Turned::PerIp),
            "established still counts"
        );
        drop(a1);
        assert!(gate.enter(A).is_ok());
    }
}
