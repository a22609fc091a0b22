//! The compatibility matrix: a service in two versions (`tests/compat/compat_v1.wire`,
//! `compat_v2.wire`), each with its own generated client and server. Version 2 makes only
//! edits docs/EVOLUTION.md calls safe, and one it calls breaking (a variant added to an
//! enum that is not `@open`). Old clients against the new server and new clients against
//! the old server, over WebSocket and HTTP: what the rules call safe works with the right
//! values, and what they call breaking fails the way they predict.

use wirecall::{server::ServerHandle, Client, Server};
use wirecall_idl::breaking::{check, Breaks, Options};
use wirecall_tests::compat::{V1, V2};
use wirecall_tests::{compat_v1 as v1, compat_v2 as v2};

fn urls(server: &ServerHandle) -> [String; 2] {
    [server.url(), server.http_url()]
}

#[test]
fn the_rules_predict_the_matrix() {
    let old = wirecall_idl::load("compat/compat_v1.wire").unwrap();
    let new = wirecall_idl::load("compat/compat_v2.wire").unwrap();
    let rules = |options| {
        check(&old.schema, &new.schema, options)
            .into_iter()
            .map(|c| (c.rule, c.breaks))
            .collect::<Vec<_>>()
    };
    // Old clients against the new server: only the closed enum's new variant.
    assert_eq!(
        rules(Options::default()),
        [("ENUM_VARIANT_ADDED", Breaks::OldClients)]
    );
    // New clients against the old server (`--both`): also the new param (when given a
    // value), the new method and the new topic.
    let forward = rules(Options {
        both: true,
        ..Options::default()
    });
    assert_eq!(
        forward,
        [
            ("ENUM_VARIANT_ADDED", Breaks::OldClients),
            ("PARAM_ADDED", Breaks::OldServers),
            ("METHOD_ADDED", Breaks::OldServers),
            ("METHOD_ADDED", Breaks::OldServers),
        ]
    );
}

#[tokio::test]
async fn old_clients_against_a_new_server() {
    use v2::Board as _;
    let server = Server::bind("127.0.0.1:0", V2.into_router()).await.unwrap();
    for url in urls(&server) {
        let board = v1::BoardClient::new(Client::connect(&url).await.unwrap());
        // A result with a new optional field: the field is ignored.
        let card = board.get(1).await.unwrap();
        assert_eq!(card.title, "card 1", "{url}");
        // A typed error both know; a new variant arrives untyped, with its code.
        assert!(matches!(
            board.get(0).await,
            Err(wirecall::Error::App(v1::BoardError::NoSuchCard))
        ));
        match board.get(9).await {
            Err(wirecall::Error::Rpc(e)) => {
                assert_eq!((e.code, e.message.as_ref()), (4002, "Archived"), "{url}")
            }
            other => panic!("{url}: {other:?}"),
        }
        // A new variant of an @open enum: `Unknown`, which cannot be sent back.
        assert_eq!(board.column(1).await.unwrap(), v1::Column::Todo);
        assert_eq!(board.column(2).await.unwrap(), v1::Column::Unknown, "{url}");
        assert!(serde_json::to_string(&v1::Column::Unknown).is_err());
        // A new variant of a closed enum: the breaking change the rules predict — this
        // call fails to decode, saying which variant; the connection goes on.
        match board.size(3).await {
            Err(wirecall::Error::Decode(e)) => {
                assert!(
                    e.to_string().contains("unknown variant `Huge`"),
                    "{url}: {e}"
                )
            }
            other => panic!("{url}: {other:?}"),
        }
        assert_eq!(board.size(1).await.unwrap(), v1::Size::Large);
        // Params unchanged by name and type: as before (the new server's new optional
        // param is absent).
        assert_eq!(board.add("four".into(), v1::Column::Done).await.unwrap(), 4);
        // A stream whose items gained a field.
        let mut watch = board.watch(3).await.unwrap();
        let mut titles = Vec::new();
        while let Some(item) = watch.next().await {
            titles.push(item.unwrap().title);
        }
        assert_eq!(titles, ["item 0", "item 1", "item 2"], "{url}");
    }
}

#[tokio::test]
async fn old_positional_callers_reach_a_new_optional_param() {
    use v2::Board as _;
    let server = Server::bind("127.0.0.1:0", V2.into_router()).await.unwrap();
    // A caller that sends params by position (WAMP `args`, many JSON-RPC clients) and
    // knows only version 1's `get(id)`: the trailing new param is absent.
    let answer = wirecall_tests::http::post(
        server.local_addr(),
        r#"{"jsonrpc":"2.0","method":"Board.get","params":[7],"id":1}"#,
    )
    .await;
    let answer: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(
        answer["result"],
        serde_json::json!({"title": "card 7", "due": 5}),
        "{answer}"
    );
}

#[tokio::test]
async fn new_clients_against_an_old_server() {
    use v1::Board as _;
    let server = Server::bind("127.0.0.1:0", V1.into_router()).await.unwrap();
    for url in urls(&server) {
        let board = v2::BoardClient::new(Client::connect(&url).await.unwrap());
        // The new optional param left out: the old server takes the call (the client sends
        // it as null, which a server ignores when it does not know the param).
        let card = board.get(1, None).await.unwrap();
        assert_eq!((card.title.as_str(), card.due), ("card 1", None), "{url}");
        // Given a value, the old server refuses it: `PARAM_ADDED` (forward).
        match board.get(1, Some(2)).await {
            Err(wirecall::Error::Rpc(e)) => {
                assert_eq!(e.code, -32602, "{url}");
                assert!(e.message.contains("unknown parameter `revision`"), "{e}");
            }
            other => panic!("{url}: {other:?}"),
        }
        // A new method: `METHOD_ADDED` (forward).
        match board.archive(1).await {
            Err(wirecall::Error::Rpc(e)) => assert_eq!(e.code, -32601, "{url}"),
            other => panic!("{url}: {other:?}"),
        }
        // A new variant of an @open enum sent to the old server: it sees `Unknown`.
        assert_eq!(board.add("x".into(), v2::Column::Doing).await.unwrap(), 99);
        assert_eq!(board.add("xy".into(), v2::Column::Done).await.unwrap(), 2);
        assert_eq!(board.size(1).await.unwrap(), v2::Size::Small);
        let mut watch = board.watch(2).await.unwrap();
        let mut n = 0;
        while let Some(item) = watch.next().await {
            assert_eq!(item.unwrap().due, None);
            n += 1;
        }
        assert_eq!(n, 2, "{url}");
    }
}
