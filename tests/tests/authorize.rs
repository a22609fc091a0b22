//! The generated `authorize_<topic>` hook: consulted on every subscription to a key
//! (JSON-RPC over WebSocket, server-sent events, WAMP `SUBSCRIBE`) and on every WAMP
//! `PUBLISH` to a `@publishable` one; a refusal is -32003 (`Error::Forbidden` in the Rust
//! client, `wamp.error.not_authorized` over WAMP), and a refused publication reaches nobody.

use std::time::Duration;

use serde_json::{json, Value};
use wirecall::auth::{Identity, Refusal};
use wirecall::server::ServerHandle;
use wirecall::{Client, Context, Error, Fault, Items, Server};
use wirecall_examples::chat::{Chat, ChatClient, ChatError, ChatServer, ChatTopics, Message};
use wirecall_tests::http::{Events, HttpConn};
use wirecall_tests::RawWs;

/// The example chat, where only `alice` may use the room `secret`.
struct Guarded(ChatServer);

impl Chat for Guarded {
    async fn join(&self, ctx: Context, room: String, name: String) -> Result<u32, Fault> {
        Chat::join(&self.0, ctx, room, name).await
    }

    async fn say(&self, ctx: Context, room: String, text: String) -> Result<u64, Fault<ChatError>> {
        Chat::say(&self.0, ctx, room, text).await
    }

    async fn close(&self, ctx: Context, room: String) -> Result<bool, Fault> {
        Chat::close(&self.0, ctx, room).await
    }

    async fn messages(
        &self,
        ctx: Context,
        room: String,
    ) -> Result<Items<Message, ChatError>, Fault<ChatError>> {
        Chat::messages(&self.0, ctx, room).await
    }

    async fn authorize_room(&self, ctx: Context, room: String) -> Result<(), Refusal> {
        let user = ctx.identity::<String>().map(String::as_str);
        if room == "secret" && user != Some("alice") {
            return Err(Refusal::forbidden("members only"));
        }
        Ok(())
    }
}

async fn server() -> ServerHandle {
    Server::builder()
        .authenticate(|handshake| {
            let token = handshake.bearer_token().map(str::to_string);
            async move { Ok::<_, Refusal>(Identity::new(token.unwrap_or_default())) }
        })
        .bind("127.0.0.1:0", Guarded(ChatServer::default()).into_router())
        .await
        .unwrap()
}

async fn chat(server: &ServerHandle, token: &str) -> ChatClient {
    let client = Client::builder()
        .token(token)
        .connect(&server.url())
        .await
        .unwrap();
    ChatClient::new(client)
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn a_topic_key_is_authorized_on_every_door() {
    let server = server().await;
    // JSON-RPC over WebSocket, through the typed client.
    let bob = chat(&server, "bob").await;
    let err = bob.room("secret".into()).await.unwrap_err();
    match &err {
        Error::Forbidden(e) => {
            assert_eq!(e.code, -32003);
            assert!(e.message.contains("Chat.room"), "{e:?}");
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    bob.room("lobby".into())
        .await
        .expect("another room is fine");
    let alice = chat(&server, "alice").await;
    let mut secret = alice.room("secret".into()).await.expect("alice may");

    // Server-sent events.
    let mut conn = HttpConn::connect(server.local_addr()).await;
    let resp = conn
        .start(
            "POST",
            &[
                ("content-type", "application/json"),
                ("accept", "text/event-stream"),
                ("authorization", "Bearer bob"),
            ],
            r#"{"jsonrpc":"2.0","method":"Chat.room","params":{"room":"secret"},"id":1}"#,
        )
        .await;
    let first = Events::new(resp).next().await.expect("an event");
    assert_eq!(parse(&first)["error"]["code"], -32003, "{first}");

    // WAMP: SUBSCRIBE and PUBLISH are refused, and the publication reaches nobody.
    let (mut wamp, _) = RawWs::connect_with(
        &server.url(),
        &[
            ("sec-websocket-protocol", "wamp.2.json"),
            ("authorization", "Bearer bob"),
        ],
    )
    .await
    .unwrap();
    wamp.send(r#"[1,"realm1",{"roles":{"subscriber":{},"publisher":{}}}]"#)
        .await;
    assert_eq!(parse(&wamp.recv().await)[0], 2);
    let refused = parse(&wamp.roundtrip(r#"[32,1,{},"Chat.room.secret"]"#).await);
    assert_eq!(
        (refused[0].clone(), refused[4].clone()),
        (json!(8), json!("wamp.error.not_authorized")),
        "{refused}"
    );
    let refused = parse(
        &wamp
            .roundtrip(r#"[16,2,{"acknowledge":true},"Chat.room.secret",[{"room":"secret","from":"bob","text":"hi"}]]"#)
            .await,
    );
    assert_eq!(
        (refused[0].clone(), refused[4].clone()),
        (json!(8), json!("wamp.error.not_authorized")),
        "{refused}"
    );
    // A publication alice may make arrives; bob's never did.
    ChatTopics::new(server.hub())
        .room("secret")
        .publish(&Message {
            room: "secret".into(),
            from: "server".into(),
            text: "first".into(),
        })
        .await
        .unwrap();
    let item = tokio::time::timeout(Duration::from_secs(10), secret.next())
        .await
        .expect("an item")
        .expect("not ended")
        .expect("an item");
    assert_eq!(
        item.from, "server",
        "bob's refused publication came first: {item:?}"
    );
}
