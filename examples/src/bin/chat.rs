//! The chat example: rooms, `join`/`say` calls, and a `messages` stream fanned out to
//! every member.
//!
//! ```text
//! cargo run -p wirecall-examples --bin chat                         # demo: several clients
//! cargo run -p wirecall-examples --bin chat -- serve 127.0.0.1:9001  # server only
//! cargo run -p wirecall-examples --bin chat -- serve 127.0.0.1:9001 --redis redis://127.0.0.1:6379/
//! cargo run -p wirecall-examples --bin chat -- serve 127.0.0.1:9001 --users users.json --rate 20
//! ```
//!
//! With `--redis`, rooms' topics go through Redis: run several servers with the same URL
//! (behind a load balancer, see `deploy/`) and every `Chat.room` subscriber, on any of
//! them, gets every message.
//!
//! With `--users FILE` (`{"users":[{"token":"t-alice","name":"alice","rooms":["lobby"]}]}`)
//! every door wants a bearer token (401 without, 403 for one nobody has), and each user may
//! use its own rooms only: `join`, `say`, `messages`, `close` and the `room` topic
//! (subscribing, and publishing over WAMP) answer `-32003` for any other; messages go out
//! under the user's name (a WAMP publication under another name is refused too). With
//! `--rate N` each user (each IP address without `--users`) makes N calls a second, in
//! bursts of up to N; beyond, `-32029` with `retry_after_ms`.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use wirecall::hub::{HistoryLimits, MemoryOptions};
use wirecall::policy::{from_fn, Next, RateLimitLayer, RpcRequest};
use wirecall::{hub::Hub, Client, Server};
use wirecall_examples::chat::{Chat, ChatClient, ChatError, ChatServer, User, Users};

/// The chat example: a demo with several clients, or a server.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the chat rooms until Ctrl-C (or SIGTERM).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:9001.
        addr: String,
        /// Carry rooms' topics between servers through this Redis, e.g.
        /// redis://127.0.0.1:6379/ (default: this process only); a Redis Cluster: the URLs
        /// of some of its masters separated by commas, or of any one of its nodes.
        #[arg(long, value_name = "URL")]
        redis: Option<String>,
        /// Messages each room keeps for subscribers that come back.
        #[arg(long, value_name = "N", default_value_t = HistoryLimits::default().max_items)]
        history: usize,
        /// Most rooms the memory hub holds with history or subscribers (beyond it, the
        /// history of the rooms said least recently goes).
        #[arg(long, value_name = "N", default_value_t = MemoryOptions::default().max_keys)]
        max_keys: usize,
        /// Most bytes of history the memory hub holds, in all rooms.
        #[arg(long, value_name = "BYTES", default_value_t = MemoryOptions::default().max_history_bytes)]
        max_history_bytes: usize,
        /// Serve only the users of this JSON file, each in its own rooms:
        /// {"users":[{"token":"t-alice","name":"alice","rooms":["lobby","secret"]}]}.
        /// Every door then wants `Authorization: Bearer TOKEN` (or the WebSocket
        /// subprotocol `bearer.BASE64URL(TOKEN)`).
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
        /// At most N calls a second per user (per IP address without --users), in
        /// bursts of up to N; every batch entry and subscription counts.
        #[arg(long, value_name = "N")]
        rate: Option<NonZeroU32>,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Args::parse().command {
        None => demo().await,
        Some(Command::Serve {
            addr,
            redis,
            history,
            max_keys,
            max_history_bytes,
            users,
            rate,
        }) => {
            let history = HistoryLimits {
                max_items: history,
                ..HistoryLimits::default()
            };
            let hub = match redis {
                Some(url) => {
                    let options = wirecall::hub::RedisOptions::default().history(history);
                    Hub::redis_with(&url, options).await?
                }
                None => Hub::memory_with_options(
                    MemoryOptions::default()
                        .history(history)
                        .max_keys(max_keys)
                        .max_history_bytes(max_history_bytes),
                ),
            };
            let mut builder = Server::builder().hub(hub);
            let chat = match users {
                Some(path) => {
                    let users = Arc::new(Users::load(&path)?);
                    builder = builder.authenticate(move |handshake| {
                        let who = users.authenticate(&handshake);
                        async move { who }
                    });
                    // A WAMP client publishes under its user's name only, as `say` speaks.
                    builder = builder.layer(from_fn(|req: RpcRequest, next: Next| async move {
                        match ChatServer::check_publication(&req) {
                            Ok(()) => next.run(req).await,
                            Err(refused) => Err(refused),
                        }
                    }));
                    ChatServer::with_accounts()
                }
                None => ChatServer::default(),
            };
            if let Some(n) = rate {
                // Per user by name (every connection of a user shares its budget), else
                // per IP address.
                builder = builder.layer(
                    RateLimitLayer::per_second(n)
                        .key_by(|req| req.identity::<User>().map(|u| u.name.clone())),
                );
            }
            // `rpc.discover` describes the interface, so `wirecall call`/`subscribe` type
            // their arguments against it.
            let mut router = chat.into_router();
            router.discover(wirecall_examples::chat::OPENRPC_DOCUMENT)?;
            let server = builder.bind(&addr, router).await?;
            println!("listening on {}", server.url());
            stopped().await?;
            server.shutdown().await;
            Ok(())
        }
    }
}

/// Ctrl-C, or SIGTERM (what `kill` and service managers send).
async fn stopped() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}

async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::bind("127.0.0.1:0", ChatServer::default().into_router()).await?;
    println!("chat server on {}", server.url());

    let names = ["alice", "bob", "carol"];
    let mut members = Vec::new();
    let mut listeners = Vec::new();
    for name in names {
        let chat = ChatClient::new(Client::connect(&server.url()).await?);
        let count = chat.join("lobby".into(), name.into()).await?;
        println!(
            "{name} joined the lobby ({count} member{})",
            if count == 1 { "" } else { "s" }
        );
        // Each member listens to the room in a task of its own.
        let mut messages = chat.messages("lobby".into()).await?;
        listeners.push(tokio::spawn(async move {
            let mut heard = Vec::new();
            let ended = loop {
                match messages.next().await {
                    Some(Ok(m)) => heard.push(format!("{}: {}", m.from, m.text)),
                    Some(Err(wirecall::Error::App(ChatError::RoomClosed { room }))) => {
                        break format!("room {room} closed");
                    }
                    Some(Err(e)) => break format!("failed: {e}"),
                    None => break "ended".to_string(),
                }
            };
            (name, heard, ended)
        }));
        members.push((name, chat));
    }

    for (name, chat) in &members {
        chat.say("lobby".into(), format!("hi, I am {name}")).await?;
    }
    match members[0].1.say("lobby".into(), String::new()).await {
        Err(wirecall::Error::App(e)) => println!("alice says nothing: {e}"),
        other => println!("alice says nothing: {other:?} (unexpected)"),
    }
    let outsider = ChatClient::new(Client::connect(&server.url()).await?);
    match outsider.say("lobby".into(), "let me in".into()).await {
        Err(wirecall::Error::App(e)) => println!("an outsider says something: {e}"),
        other => println!("an outsider says something: {other:?} (unexpected)"),
    }

    // Let the messages reach everyone, then close the room: every stream ends.
    tokio::time::sleep(Duration::from_millis(100)).await;
    members[0].1.close("lobby".into()).await?;
    for listener in listeners {
        let (name, heard, ended) = listener.await?;
        println!(
            "{name} heard {} messages: {}; then: {ended}",
            heard.len(),
            heard.join(" | ")
        );
    }
    server.shutdown().await;
    Ok(())
}
