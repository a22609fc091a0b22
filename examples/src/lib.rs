//! Runnable wirecall examples; see `src/bin/`.
//!
//! The calculator fixture (`idl/calculator.wire`) is compiled by `build.rs`; its
//! generated code lives in [`calculator`], and [`CalcServer`] implements it. Tests and
//! benchmarks use both.

#![deny(missing_docs, warnings)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wirecall::{Context, Fault, Items};

use calculator::{CalcError, Calculator, CalculatorCallbacksClient, Stats};

pub mod web;

/// The calculator service, generated from `idl/calculator.wire`.
pub mod calculator {
    wirecall::include_idl!("calculator");
}

/// The calculator's server: a cheap handle (clones share the state), so a test can keep
/// one to observe the server while another serves.
#[derive(Clone, Debug, Default)]
pub struct CalcServer {
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    calls: AtomicU64,
    last_message: Mutex<Option<String>>,
    sleeps_started: AtomicU64,
    sleeps_finished: AtomicU64,
    sleeps_cancelled: AtomicU64,
    ticks_active: AtomicU64,
}

/// What happened to `sleep` calls so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SleepCounts {
    /// Handlers that started.
    pub started: u64,
    /// Handlers that ran to the end.
    pub finished: u64,
    /// Handlers stopped before the end (cancelled, timed out, disconnected).
    pub cancelled: u64,
}

impl CalcServer {
    /// What happened to `sleep` calls so far.
    pub fn sleeps(&self) -> SleepCounts {
        SleepCounts {
            started: self.state.sleeps_started.load(Ordering::SeqCst),
            finished: self.state.sleeps_finished.load(Ordering::SeqCst),
            cancelled: self.state.sleeps_cancelled.load(Ordering::SeqCst),
        }
    }

    /// `ticks` streams whose producer is still running on the server.
    pub fn active_ticks(&self) -> u64 {
        self.state.ticks_active.load(Ordering::SeqCst)
    }

    /// Calls handled so far (every method, streams' subscribe calls included).
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::Relaxed)
    }

    /// The message of the last `log` notification.
    pub fn last_message(&self) -> Option<String> {
        self.state
            .last_message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn count(&self) {
        self.state.calls.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a `sleep` handler that is dropped before it finishes.
struct SleepGuard<'a>(&'a State, bool);

impl Drop for SleepGuard<'_> {
    fn drop(&mut self) {
        let counter = if self.1 {
            &self.0.sleeps_finished
        } else {
            &self.0.sleeps_cancelled
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// Counts a running `ticks` producer; dropped with the stream.
struct TicksGuard(Arc<State>);

impl Drop for TicksGuard {
    fn drop(&mut self) {
        self.0.ticks_active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Calculator for CalcServer {
    async fn add(&self, _ctx: Context, a: i64, b: i64) -> Result<i64, Fault> {
        self.count();
        a.checked_add(b)
            .ok_or_else(|| wirecall::RpcError::invalid_params("the sum overflows i64").into())
    }

    async fn subtract(&self, _ctx: Context, minuend: i64, subtrahend: i64) -> Result<i64, Fault> {
        self.count();
        minuend.checked_sub(subtrahend).ok_or_else(|| {
            wirecall::RpcError::invalid_params("the difference overflows i64").into()
        })
    }

    async fn divide(&self, _ctx: Context, a: f64, b: f64) -> Result<f64, Fault<CalcError>> {
        self.count();
        if b == 0.0 {
            return Err(CalcError::DivideByZero.into());
        }
        Ok(a / b)
    }

    async fn echo(&self, _ctx: Context, text: String) -> Result<String, Fault> {
        self.count();
        Ok(text)
    }

    async fn sleep(&self, _ctx: Context, ms: u64) -> Result<u64, Fault> {
        self.count();
        let state = &*self.state;
        state.sleeps_started.fetch_add(1, Ordering::SeqCst);
        let mut guard = SleepGuard(state, false);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        guard.1 = true;
        Ok(ms)
    }

    async fn ask(&self, ctx: Context, question: String) -> Result<bool, Fault> {
        self.count();
        let client = CalculatorCallbacksClient::new(ctx.peer().clone());
        Ok(client.confirm(question).await?)
    }

    async fn stats(&self, ctx: Context) -> Result<Stats, Fault> {
        self.count();
        let last_message = self
            .state
            .last_message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Ok(Stats {
            calls: self.state.calls.load(Ordering::Relaxed),
            last_message,
            caller: ctx.identity::<String>().cloned(),
        })
    }

    async fn ticks(&self, _ctx: Context, count: u32, every_ms: u32) -> Result<Items<u64>, Fault> {
        self.count();
        self.state.ticks_active.fetch_add(1, Ordering::SeqCst);
        let guard = TicksGuard(self.state.clone());
        let every = Duration::from_millis(u64::from(every_ms));
        let ticks = futures_util::stream::unfold((0u64, guard), move |(n, guard)| async move {
            if n >= u64::from(count) {
                return None;
            }
            if n > 0 {
                tokio::time::sleep(every).await;
            }
            Some((n, (n + 1, guard)))
        });
        Ok(wirecall::items_ok(ticks))
    }

    async fn log(&self, _ctx: Context, message: String) {
        self.count();
        *self
            .state
            .last_message
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(message);
    }
}

/// The chat service, generated from `idl/chat.wire`, and its server.
pub mod chat {
    wirecall::include_idl!("chat");

    use std::collections::{HashMap, HashSet};
    use std::sync::{Arc, Mutex};

    use futures_util::StreamExt;
    use tokio::sync::broadcast;
    use wirecall::auth::{Handshake, Identity, Refusal};
    use wirecall::policy::{CallKind, RpcRequest};
    use wirecall::{server::ConnectionId, Context, Fault, Items, RpcError};

    /// Messages buffered per room; a subscriber further behind is closed as lagging.
    pub const ROOM_BUFFER: usize = 1024;

    /// The chat server: rooms with members, and a broadcast of each room's messages.
    ///
    /// [`ChatServer::default`] is an open chat: anyone may use any room, under the name
    /// they join with. [`ChatServer::with_accounts`] serves signed-in [`User`]s only (the
    /// connection's identity, see [`Users::authenticate`]): each may `join`, `say` in,
    /// read the `messages` of, `close` and subscribe or publish to the `room` topic of its
    /// own rooms only (`-32003` otherwise, on every door), and says everything under its
    /// own name (a WAMP client's publications too, with [`ChatServer::check_publication`]
    /// as a layer).
    #[derive(Clone, Debug, Default)]
    pub struct ChatServer {
        rooms: Arc<Mutex<HashMap<String, Room>>>,
        accounts: bool,
    }

    /// A user of a chat with accounts: a name, and the rooms it may use.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct User {
        /// The name its messages go out under.
        pub name: String,
        /// The rooms it may use.
        pub rooms: HashSet<String>,
    }

    impl User {
        /// May it use `room`?
        pub fn may_use(&self, room: &str) -> bool {
            self.rooms.contains(room)
        }
    }

    /// The users of a chat by bearer token: what `chat serve --users FILE` reads, e.g.
    ///
    /// ```json
    /// {"users": [
    ///   {"token": "t-alice", "name": "alice", "rooms": ["lobby", "secret"]},
    ///   {"token": "t-bob", "name": "bob", "rooms": ["lobby"]}
    /// ]}
    /// ```
    #[derive(Clone, Debug, Default)]
    pub struct Users {
        by_token: HashMap<String, User>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct UsersFile {
        users: Vec<UserEntry>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct UserEntry {
        token: String,
        name: String,
        rooms: Vec<String>,
    }

    impl Users {
        /// Read the JSON of a users file; an error says what is wrong with it (bad JSON, an
        /// empty token or name, a token or name given twice).
        pub fn from_json(text: &str) -> Result<Users, String> {
            let file: UsersFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
            let mut by_token = HashMap::new();
            let mut names = HashSet::new();
            for (i, u) in file.users.into_iter().enumerate() {
                if u.token.is_empty() || u.name.is_empty() {
                    return Err(format!(
                        "users[{i}]: the token and the name must not be empty"
                    ));
                }
                if !names.insert(u.name.clone()) {
                    return Err(format!("users[{i}]: the name `{}` is given twice", u.name));
                }
                let user = User {
                    name: u.name,
                    rooms: u.rooms.into_iter().collect(),
                };
                if by_token.insert(u.token, user).is_some() {
                    return Err(format!("users[{i}]: its token is another user's too"));
                }
            }
            Ok(Users { by_token })
        }

        /// Read a users file.
        pub fn load(path: &std::path::Path) -> Result<Users, String> {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Users::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
        }

        /// How many there are.
        pub fn len(&self) -> usize {
            self.by_token.len()
        }

        /// None at all?
        pub fn is_empty(&self) -> bool {
            self.by_token.is_empty()
        }

        /// The server's authentication hook: the [`User`] of the request's bearer token
        /// as its identity; 401 without a token, 403 with one nobody has.
        pub fn authenticate(&self, handshake: &Handshake) -> Result<Identity, Refusal> {
            let token = handshake
                .bearer_token()
                .ok_or_else(|| Refusal::unauthorized("a bearer token is required"))?;
            let user = self
                .by_token
                .get(token)
                .ok_or_else(|| Refusal::forbidden("unknown token"))?;
            // Named for WAMP too: a `WELCOME` reports the user's name as its `authid`,
            // never the one the client claimed in its `HELLO`.
            Ok(Identity::new(user.clone()).with_authid(user.name.as_str()))
        }
    }

    #[derive(Debug)]
    struct Room {
        /// Members by connection, with their names.
        members: HashMap<ConnectionId, String>,
        /// Every subscriber's stream reads from this; made by the first (a ring of
        /// `ROOM_BUFFER` costs some 32 KB, which a room nobody listens to need not).
        tx: Option<broadcast::Sender<Event>>,
    }

    /// What a room broadcasts: a message, or that it closed.
    #[derive(Clone, Debug)]
    enum Event {
        Said(Message),
        Closed,
    }

    impl ChatServer {
        fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Room>> {
            self.rooms.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// Rooms that exist now.
        pub fn room_names(&self) -> HashSet<String> {
            self.rooms().keys().cloned().collect()
        }

        /// A chat for signed-in [`User`]s only (see [`ChatServer`]).
        pub fn with_accounts() -> Self {
            ChatServer {
                accounts: true,
                ..ChatServer::default()
            }
        }

        /// For a chat with accounts, the check of a policy layer (`chat serve --users` installs
        /// it): a signed-in user's WAMP `PUBLISH` to the `room` topic must be a message from
        /// that user (its `from`), labelled with one of its rooms — as `say` sends it — else
        /// `-32003` (`wamp.error.not_authorized`) and nobody receives it. Everything else
        /// passes (an item that is not a message is the topic's own check to refuse).
        pub fn check_publication(req: &RpcRequest) -> Result<(), RpcError> {
            if req.kind() != CallKind::Publish || req.method() != "Chat.room" {
                return Ok(());
            }
            let Some(user) = req.identity::<User>() else {
                return Ok(());
            };
            // The item: `args` `[item]`, or `kwargs` (the item itself).
            let item = req.params().and_then(|p| {
                let value: serde_json::Value = serde_json::from_str(p.get()).ok()?;
                let value = match value {
                    serde_json::Value::Array(mut args) if args.len() == 1 => args.pop()?,
                    other => other,
                };
                serde_json::from_value::<Message>(value).ok()
            });
            match item {
                Some(m) if m.from != user.name => Err(RpcError::forbidden(format!(
                    "publishing a message as `{}`",
                    m.from
                ))),
                Some(m) if !user.may_use(&m.room) => Err(RpcError::forbidden(format!(
                    "publishing a message labelled with the room `{}`",
                    m.room
                ))),
                _ => Ok(()),
            }
        }

        /// Whether the connection of `ctx` may use `room`: its user, if it has one, or the
        /// `-32003` refusal. The one rule every method and the topic's hook ask.
        fn allowed<'c>(&self, ctx: &'c Context, room: &str) -> Result<Option<&'c User>, RpcError> {
            match ctx.identity::<User>() {
                Some(user) if user.may_use(room) => Ok(Some(user)),
                Some(_) => Err(RpcError::forbidden(format!("using the room `{room}`"))),
                None if self.accounts => Err(RpcError::forbidden("using rooms without signing in")),
                None => Ok(None),
            }
        }
    }

    impl Chat for ChatServer {
        async fn join(&self, ctx: Context, room: String, name: String) -> Result<u32, Fault> {
            // A signed-in user joins under its own name, whatever the client sent.
            let name = match self.allowed(&ctx, &room)? {
                Some(user) => user.name.clone(),
                None => name,
            };
            let mut rooms = self.rooms();
            let entry = rooms.entry(room).or_insert_with(|| Room {
                members: HashMap::new(),
                tx: None,
            });
            entry.members.insert(ctx.connection_id(), name);
            Ok(entry.members.len() as u32)
        }

        async fn say(
            &self,
            ctx: Context,
            room: String,
            text: String,
        ) -> Result<u64, Fault<ChatError>> {
            let user = self.allowed(&ctx, &room)?;
            if text.is_empty() {
                return Err(ChatError::EmptyText.into());
            }
            let (from, local) = {
                let rooms = self.rooms();
                let Some(r) = rooms.get(&room) else {
                    return Err(ChatError::NotMember.into());
                };
                let Some(from) = r.members.get(&ctx.connection_id()).cloned() else {
                    return Err(ChatError::NotMember.into());
                };
                // A signed-in user speaks under its own name.
                (user.map_or(from, |u| u.name.clone()), r.tx.clone())
            };
            let message = Message { room, from, text };
            // The room's topic first: every subscriber on every server. A hub that cannot
            // take it fails the call (nobody got the message).
            let position = ChatTopics::new(ctx.hub())
                .room(message.room.clone())
                .publish(&message)
                .await?;
            // Then this server's members' `messages` streams. No subscribers is fine.
            if let Some(local) = local {
                let _ = local.send(Event::Said(message));
            }
            Ok(position.offset)
        }

        async fn close(&self, ctx: Context, room: String) -> Result<bool, Fault> {
            self.allowed(&ctx, &room)?;
            match self.rooms().remove(&room) {
                Some(r) => {
                    if let Some(tx) = r.tx {
                        let _ = tx.send(Event::Closed);
                    }
                    Ok(true)
                }
                None => Ok(false),
            }
        }

        async fn messages(
            &self,
            ctx: Context,
            room: String,
        ) -> Result<Items<Message, ChatError>, Fault<ChatError>> {
            self.allowed(&ctx, &room)?;
            let rx = {
                let mut rooms = self.rooms();
                match rooms.get_mut(&room) {
                    Some(r) if r.members.contains_key(&ctx.connection_id()) => {
                        r.tx.get_or_insert_with(|| broadcast::channel(ROOM_BUFFER).0)
                            .subscribe()
                    }
                    _ => return Err(ChatError::NotMember.into()),
                }
            };
            let stream = futures_util::stream::unfold(Some(rx), move |rx| {
                let room = room.clone();
                async move {
                    let mut rx = rx?;
                    let item = match rx.recv().await {
                        Ok(Event::Said(m)) => Ok(m),
                        Ok(Event::Closed) | Err(broadcast::error::RecvError::Closed) => {
                            return Some((Err(ChatError::RoomClosed { room }.into()), None));
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            let e = RpcError::lagged(format!("{n} messages were missed"));
                            return Some((Err(Fault::Rpc(e)), None));
                        }
                    };
                    Some((item, Some(rx)))
                }
            });
            Ok(wirecall::items(stream.fuse()))
        }

        async fn authorize_room(&self, ctx: Context, room: String) -> Result<(), Refusal> {
            match self.allowed(&ctx, &room) {
                Ok(_) => Ok(()),
                Err(_) => Err(Refusal::forbidden("not one of the user's rooms")),
            }
        }
    }
}
