//! A long run that proves nothing leaks (not a test: `bench/soak.sh` runs it).
//!
//! ```text
//! soak serve 127.0.0.1:0                        # the calculator, plus `Soak.stats`
//! soak run --server-bin target/release/soak --conns 10000 --minutes 10
//! ```
//!
//! `run` starts `soak serve` as a child process, opens `--conns` WebSocket connections,
//! each with a `ticks` subscription (an item every second) and an `add` call every ~10 s, and
//! `--churn` clients that connect, call, subscribe and drop the TCP connection abruptly,
//! in a loop. Every `--sample-secs` it samples the server: resident memory, open file
//! descriptors, live tokio tasks, connections, running `ticks` producers. At the end it
//! closes everything and fails (exit 1) if any figure grew after the first minute beyond
//! noise, if anything is left on the server, or if any call is lost: every call the
//! clients made ended exactly once, and the server counted exactly as many.
//!
//! Why an item every second: each connection's outgoing queue is a tokio mpsc channel,
//! which allocates its slots in blocks of 32. A connection's 33rd outgoing message
//! allocates the second block (about 1.9 KB with tungstenite's `Message`); from then on
//! the two blocks are recycled and nothing more is allocated. That is a one-time step to
//! the steady state, not growth, so the pace is set to reach it inside the first minute
//! (33 messages at ~1.1 a second): the 60-second baseline is then the steady state, and any
//! growth after it is a real leak. At `--tick-ms 5000` the same step comes at ~95 s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;
use wirecall::{client::Reconnect, server::ServerHandle, Client, RpcError, Server};
use wirecall_examples::calculator::{Calculator, CalculatorClient};
use wirecall_examples::CalcServer;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the calculator and `Soak.stats` (one thread), until killed.
    Serve {
        /// Address to listen on.
        #[arg(default_value = "127.0.0.1:0")]
        addr: String,
    },
    /// Run the soak against a `soak serve` child process.
    Run {
        /// The `soak` binary to start the server from (default: this one).
        #[arg(long)]
        server_bin: Option<String>,
        /// Long-lived connections, each with a subscription and a trickle of calls.
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
        /// Clients that connect, call and drop abruptly, in a loop.
        #[arg(long, default_value_t = 50)]
        churn: usize,
        /// How long to run.
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Seconds between samples.
        #[arg(long, default_value_t = 10)]
        sample_secs: u64,
        /// A CPU to pin the server to (taskset), if any.
        #[arg(long)]
        server_cpu: Option<u32>,
        /// Milliseconds between the items of each long-lived connection's subscription.
        #[arg(long, default_value_t = 1_000)]
        tick_ms: u32,
        /// Milliseconds between the `add` calls of each long-lived connection.
        #[arg(long, default_value_t = 10_000)]
        call_ms: u64,
    },
}

/// What `Soak.stats` answers.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Sample {
    /// Seconds since the run started (filled in by the runner).
    #[serde(default)]
    t: u64,
    rss_kib: u64,
    fds: u64,
    tasks: u64,
    connections: u64,
    ticks: u64,
    calls: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Args::parse().command {
        Command::Serve { addr } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(serve(&addr))
        }
        Command::Run {
            server_bin,
            conns,
            churn,
            minutes,
            sample_secs,
            server_cpu,
            tick_ms,
            call_ms,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let bin = server_bin.unwrap_or_else(|| {
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "soak".into())
            });
            let ok = rt.block_on(run(
                &bin,
                conns,
                churn,
                Duration::from_secs_f64(minutes * 60.0),
                Duration::from_secs(sample_secs),
                server_cpu,
                Pace {
                    tick_ms,
                    call: Duration::from_millis(call_ms),
                },
            ))?;
            std::process::exit(if ok { 0 } else { 1 });
        }
    }
}

async fn serve(addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    let calc = CalcServer::default();
    let mut router = calc.clone().into_router();
    let handle: Arc<OnceLock<ServerHandle>> = Arc::new(OnceLock::new());
    let h = handle.clone();
    router.method("Soak.stats", move |_ctx, _params| {
        let (calc, h) = (calc.clone(), h.clone());
        async move {
            let me = std::process::id();
            let stats = tokio::runtime::Handle::current().metrics();
            Ok::<_, RpcError>(Sample {
                t: 0,
                rss_kib: wirecall_bench::rss_kib(me).unwrap_or(0),
                fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
                tasks: stats.num_alive_tasks() as u64,
                connections: h.get().map_or(0, |s| s.connections() as u64),
                ticks: calc.active_ticks(),
                calls: calc.calls(),
            })
        }
    });
    let server = Server::builder()
        .max_connections(100_000)
        .bind(addr, router)
        .await?;
    println!("listening on {}", server.url());
    let _ = handle.set(server.clone());
    server.stopped().await;
    Ok(())
}

/// What the clients counted.
#[derive(Default)]
struct Counts {
    /// Calls made (each `add`, each subscribe).
    calls: AtomicU64,
    /// Calls that ended with their answer.
    answered: AtomicU64,
    /// Calls that ended with an error.
    failed: AtomicU64,
    /// Stream items received.
    items: AtomicU64,
}

async fn run(
    bin: &str,
    conns: usize,
    churn: usize,
    duration: Duration,
    every: Duration,
    server_cpu: Option<u32>,
    pace: Pace,
) -> Result<bool, Box<dyn std::error::Error>> {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = match server_cpu {
        Some(cpu) => {
            let mut c = tokio::process::Command::new("taskset");
            c.args(["-c", &cpu.to_string(), bin]);
            c
        }
        None => tokio::process::Command::new(bin),
    };
    let mut child = cmd
        .args(["serve", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let url = loop {
        let line = lines.next_line().await?.ok_or("the server exited")?;
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_string();
        }
    };
    eprintln!("soak: server at {url}; {conns} connections, {churn} churning clients, {duration:?}");
    let control = Client::connect(&url).await?;
    let stats = || async {
        control
            .call::<Sample>("Soak.stats", serde_json::json!({}))
            .await
    };

    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + duration;
    let stop = tokio_util::sync::CancellationToken::new();

    // The long-lived connections, opened 200 at a time.
    let mut steady = Vec::with_capacity(conns);
    let mut opening = Vec::new();
    for i in 0..conns {
        let url = url.clone();
        opening.push(tokio::spawn(async move {
            Client::builder()
                .reconnect(Reconnect::disabled())
                .connect(&url)
                .await
                .expect("connect")
        }));
        if opening.len() == 200 || i + 1 == conns {
            for o in opening.drain(..) {
                let client = o.await?;
                let seed = steady.len() as u64;
                steady.push(tokio::spawn(steady_client(
                    client,
                    seed,
                    pace,
                    counts.clone(),
                    stop.clone(),
                )));
            }
        }
    }
    eprintln!(
        "soak: {} connections open after {:?}",
        steady.len(),
        started.elapsed()
    );

    let churners: Vec<_> = (0..churn)
        .map(|i| {
            tokio::spawn(churn_client(
                url.clone(),
                i as u64,
                counts.clone(),
                stop.clone(),
            ))
        })
        .collect();

    let mut samples: Vec<Sample> = Vec::new();
    let mut ticker = tokio::time::interval(every);
    println!(
        "| t (s) | RSS (KiB) | fds | tasks | connections | ticks | server calls | client calls |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
        let mut s = stats().await?;
        s.t = started.elapsed().as_secs();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            s.t,
            s.rss_kib,
            s.fds,
            s.tasks,
            s.connections,
            s.ticks,
            s.calls,
            counts.calls.load(Ordering::Relaxed)
        );
        samples.push(s);
    }

    // Stop, let every call end, close every connection.
    stop.cancel();
    for c in churners {
        c.await?;
    }
    for s in steady {
        s.await?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut end = stats().await?;
    end.t = started.elapsed().as_secs();
    let calls = counts.calls.load(Ordering::Relaxed);
    let answered = counts.answered.load(Ordering::Relaxed);
    let failed = counts.failed.load(Ordering::Relaxed);
    println!(
        "| end | {} | {} | {} | {} | {} | {} | {calls} |",
        end.rss_kib, end.fds, end.tasks, end.connections, end.ticks, end.calls
    );

    let mut ok = true;
    let mut fail = |what: String| {
        eprintln!("soak: FAIL: {what}");
        ok = false;
    };
    // Growth after the first minute: no figure may rise above its value at 60 s by more
    // than noise (churning clients come and go: each holds a descriptor, a few tasks and
    // maybe a subscription; the allocator keeps some slack).
    let base = samples.iter().find(|s| s.t >= 60).copied();
    if let Some(base) = base {
        let later: Vec<&Sample> = samples.iter().filter(|s| s.t > base.t).collect();
        let slack = churn as u64 * 3 + 16;
        type Figure = (&'static str, fn(&Sample) -> u64, u64);
        let figures: [Figure; 5] = [
            ("RSS (KiB)", |s| s.rss_kib, base.rss_kib / 50 + 2048),
            ("file descriptors", |s| s.fds, slack),
            ("tasks", |s| s.tasks, slack * 4),
            ("connections", |s| s.connections, slack),
            ("running ticks", |s| s.ticks, slack),
        ];
        for (name, f, noise) in figures {
            let peak = later.iter().map(|s| f(s)).max().unwrap_or(0);
            let at = later.iter().find(|s| f(s) == peak).map_or(0, |s| s.t);
            eprintln!("soak: {name}: {} at 60 s, peak {peak} at {at} s", f(&base));
            if peak > f(&base) + noise {
                fail(format!(
                    "{name} grew from {} at 60 s to {peak} at {at} s (noise: {noise})",
                    f(&base)
                ));
            }
        }
    } else {
        eprintln!("soak: shorter than a minute: growth not checked");
    }
    if answered + failed != calls {
        fail(format!(
            "{calls} calls made, {answered} answered + {failed} failed"
        ));
    }
    if failed > 0 {
        fail(format!("{failed} calls failed"));
    }
    // The server counts every call it ran (each add and each subscribe): the same number.
    if end.calls != calls {
        fail(format!(
            "the clients made {calls} calls, the server ran {}",
            end.calls
        ));
    }
    // Everything closed: only the control connection is left.
    if end.connections > 1 || end.ticks > 0 {
        fail(format!(
            "left on the server: {} connections, {} running ticks",
            end.connections, end.ticks
        ));
    }
    eprintln!(
        "soak: {calls} calls, {answered} answered, {} items; {}",
        counts.items.load(Ordering::Relaxed),
        if ok { "PASS" } else { "FAIL" }
    );
    control.close().await;
    let _ = child.kill().await;
    Ok(ok)
}

/// How often each long-lived connection gets an item and makes a call.
#[derive(Clone, Copy)]
struct Pace {
    tick_ms: u32,
    call: Duration,
}

/// A long-lived connection: one `ticks` subscription, an `add` every `pace.call`.
async fn steady_client(
    client: Client,
    seed: u64,
    pace: Pace,
    counts: Arc<Counts>,
    stop: tokio_util::sync::CancellationToken,
) {
    let calc = CalculatorClient::new(client.clone());
    counts.calls.fetch_add(1, Ordering::Relaxed);
    let mut ticks = match calc.ticks(u32::MAX, pace.tick_ms).await {
        Ok(t) => {
            counts.answered.fetch_add(1, Ordering::Relaxed);
            t
        }
        Err(e) => {
            eprintln!("soak: subscribe failed: {e}");
            counts.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    // Spread the calls over the interval.
    let mut next = tokio::time::Instant::now()
        + Duration::from_millis(seed * 7919 % pace.call.as_millis().max(1) as u64);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            item = ticks.next() => match item {
                Some(Ok(_)) => { counts.items.fetch_add(1, Ordering::Relaxed); }
                _ => break,
            },
            _ = tokio::time::sleep_until(next) => {
                next += pace.call;
                counts.calls.fetch_add(1, Ordering::Relaxed);
                match calc.add(seed as i64, 1).await {
                    Ok(sum) if sum == seed as i64 + 1 => { counts.answered.fetch_add(1, Ordering::Relaxed); }
                    other => {
                        eprintln!("soak: add failed: {other:?}");
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
    drop(ticks);
    client.close().await;
}

/// Connect, call, subscribe, then drop the TCP connection without a close frame; again.
async fn churn_client(
    url: String,
    seed: u64,
    counts: Arc<Counts>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut round = 0u64;
    while !stop.is_cancelled() {
        round += 1;
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let add = format!(
            r#"{{"jsonrpc":"2.0","method":"Calculator.add","params":[{seed},{round}],"id":1}}"#
        );
        let sub = r#"{"jsonrpc":"2.0","method":"Calculator.ticks","params":[1000000,10],"id":2}"#;
        counts.calls.fetch_add(2, Ordering::Relaxed);
        if ws.send(Message::text(add)).await.is_err() || ws.send(Message::text(sub)).await.is_err()
        {
            counts.failed.fetch_add(2, Ordering::Relaxed);
            continue;
        }
        // Both answers (the add's result and the subscription id), and a few items.
        let mut answers = 0;
        let mut items = 0;
        while answers < 2 || items < 3 {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    if t.contains(r#""id":"#) {
                        answers += 1;
                    } else {
                        items += 1;
                    }
                }
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        counts.answered.fetch_add(answers, Ordering::Relaxed);
        counts
            .failed
            .fetch_add(2 - answers.min(2), Ordering::Relaxed);
        counts.items.fetch_add(items, Ordering::Relaxed);
        // Abruptly: no close frame, the socket just goes.
        drop(ws);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
