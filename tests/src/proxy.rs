//! A fault-injection TCP proxy for resilience tests: in-process, on loopback.
//!
//! It forwards every accepted connection to a target address and, on command, drops all
//! connections (or resets them: TCP RST), refuses new ones for a while, stalls (accepts
//! bytes, forwards none), freezes the connections open now for good (a peer that vanished
//! without a close, while new connections work), delays every chunk, or cuts the next
//! chunk in half and hangs up.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

/// A running proxy. Dropping it stops accepting; call [`Proxy::drop_all`] to cut open
/// connections.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    target: Mutex<SocketAddr>,
    refusing: AtomicBool,
    stalled: AtomicBool,
    delay_ms: AtomicU64,
    cut_next: AtomicBool,
    accepted: AtomicU64,
    /// Bytes forwarded from the target back to the clients.
    from_target: AtomicU64,
    /// Connections numbered below this forward nothing more, ever.
    frozen_below: AtomicU64,
    /// Every connection listens here for "drop now" (`true`: with a reset).
    kill: broadcast::Sender<bool>,
}

impl Proxy {
    /// Listen on a free loopback port and forward to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State {
            target: Mutex::new(target),
            refusing: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            cut_next: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            from_target: AtomicU64::new(0),
            frozen_below: AtomicU64::new(0),
            kill: broadcast::channel(1).0,
        });
        let st = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if st.refusing.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let number = st.accepted.fetch_add(1, Ordering::SeqCst);
                let st = st.clone();
                tokio::spawn(async move {
                    let target = *st.target.lock().unwrap();
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let mut kill = st.kill.subscribe();
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let reset = tokio::select! {
                        _ = pipe(&mut cr, &mut sw, st.clone(), number, false) => false,
                        _ = pipe(&mut sr, &mut cw, st.clone(), number, true) => false,
                        reset = kill.recv() => reset.unwrap_or(false),
                    };
                    if reset {
                        // Closed with SO_LINGER 0: a reset, on both sides.
                        let _ = cw.as_ref().set_zero_linger();
                        let _ = sw.as_ref().set_zero_linger();
                    }
                });
            }
        });
        Proxy {
            addr,
            state,
            accept,
        }
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's `ws://` URL.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Forward new connections elsewhere (existing ones are unaffected).
    pub fn set_target(&self, target: SocketAddr) {
        *self.state.target.lock().unwrap() = target;
    }

    /// Cut every open connection now (as a network failure would: no close frame).
    pub fn drop_all(&self) {
        let _ = self.state.kill.send(false);
    }

    /// Cut every open connection now with a TCP reset (RST), as a peer that crashed and
    /// came back would.
    pub fn reset_all(&self) {
        let _ = self.state.kill.send(true);
    }

    /// From now on, the connections open now forward nothing (in either direction) and
    /// never close: a peer that vanished without a close (a partition, a NAT that dropped
    /// the mapping). New connections are not affected.
    pub fn freeze_open_connections(&self) {
        let open = self.state.accepted.load(Ordering::SeqCst);
        self.state.frozen_below.store(open, Ordering::SeqCst);
    }

    /// Refuse (accept and immediately close) new connections while `on`.
    pub fn refuse(&self, on: bool) {
        self.state.refusing.store(on, Ordering::SeqCst);
    }

    /// While `on`, read everything but forward nothing, in both directions.
    pub fn stall(&self, on: bool) {
        self.state.stalled.store(on, Ordering::SeqCst);
    }

    /// Hold every chunk for `delay` before forwarding it.
    pub fn delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Forward only the first half of the next chunk (in either direction), then cut
    /// that connection: a frame cut in half.
    pub fn cut_next_chunk(&self) {
        self.state.cut_next.store(true, Ordering::SeqCst);
    }

    /// Connections accepted (and not refused) so far.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Bytes forwarded so far from the target back to the clients.
    pub fn bytes_from_target(&self) -> u64 {
        self.state.from_target.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = self.state.kill.send(false);
    }
}

async fn pipe(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    st: Arc<State>,
    number: u64,
    from_target: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let frozen = || number < st.frozen_below.load(Ordering::SeqCst);
    loop {
        if frozen() {
            return std::future::pending().await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if frozen() {
                    return std::future::pending().await;
                }
                return;
            }
            Ok(n) => n,
        };
        if frozen() {
            return std::future::pending().await;
        }
        if st.stalled.load(Ordering::SeqCst) {
            continue;
        }
        let delay = st.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if st.cut_next.swap(false, Ordering::SeqCst) {
            let _ = to.write_all(&buf[..n / 2]).await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if from_target {
            st.from_target.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
}
