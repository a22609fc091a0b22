//! Topics through the memory hub, end to end: the wire (positions, `$since`, gaps), the
//! typed API (publishers, `Subscription::position`, `Error::Gap`), and a client that is cut
//! off while publications go on and resumes without losing or repeating one.

use std::time::Duration;

use serde_json::{json, Value};
use wirecall::hub::HistoryLimits;
use wirecall::{
    client::Reconnect, hub::Hub, hub::Position, server::ServerHandle, Client, Error, Server,
};
use wirecall_examples::chat::{Chat, ChatClient, ChatServer, ChatTopics, Message};
use wirecall_tests::proxy::Proxy;
use wirecall_tests::RawWs;

async fn chat_server(hub: Hub) -> ServerHandle {
    Server::builder()
        .hub(hub)
        .bind("127.0.0.1:0", ChatServer::default().into_router())
        .await
        .unwrap()
}

fn message(i: u64) -> Message {
    Message {
        room: "lobby".into(),
        from: "bot".into(),
        text: format!("m{i}"),
    }
}

async fn publish(hub: &Hub, range: std::ops::RangeInclusive<u64>) -> Position {
    let topic = ChatTopics::new(hub).room("lobby");
    let mut last = None;
    for i in range {
        last = Some(topic.publish(&message(i)).await.unwrap());
    }
    last.unwrap()
}

/// The next notification's params, skipping nothing.
async fn next_params(ws: &mut RawWs) -> Value {
    let frame: Value = serde_json::from_str(&ws.recv().await).unwrap();
    assert_eq!(frame["method"], "Chat.room", "{frame}");
    frame["params"].clone()
}

async fn subscribe_raw(ws: &mut RawWs, params: Value) -> Value {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "Chat.room", "params": params});
    let answer: Value = serde_json::from_str(&ws.roundtrip(&request.to_string()).await).unwrap();
    answer
}

#[tokio::test]
async fn the_wire_carries_a_start_position_then_items_with_epoch_and_offset() {
    let hub = Hub::memory();
    let server = chat_server(hub.clone()).await;
    let before = publish(&hub, 1..=2).await;
    assert_eq!(before.offset, 2);

    let mut ws = RawWs::connect(&server.url()).await;
    let answer = subscribe_raw(&mut ws, json!({"room": "lobby"})).await;
    let sub = answer["result"].clone();
    assert!(sub.is_u64(), "{answer}");
    // Where it starts: after what was published before.
    let start = next_params(&mut ws).await;
    assert_eq!(
        start,
        json!({"subscription": sub, "position": {"epoch": before.epoch, "offset": 2}})
    );
    publish(&hub, 3..=4).await;
    for offset in 3..=4 {
        let item = next_params(&mut ws).await;
        assert_eq!(
            item,
            json!({
                "subscription": sub,
                "result": {"room": "lobby", "from": "bot", "text": format!("m{offset}")},
                "epoch": before.epoch,
                "offset": offset,
            })
        );
    }
    // Another key of the same topic is another sequence.
    let other = ChatTopics::new(&hub)
        .room("attic")
        .publish(&message(9))
        .await
        .unwrap();
    assert_eq!(other.offset, 1);
    assert_ne!(other.epoch, before.epoch);
    ws.assert_no_answer_pending().await;
}

#[tokio::test]
async fn since_replays_from_history_then_goes_live_in_order_none_twice() {
    let hub = Hub::memory();
    let server = chat_server(hub.clone()).await;
    let at = publish(&hub, 1..=5).await;

    let mut ws = RawWs::connect(&server.url()).await;
    let since = json!({"epoch": at.epoch, "offset": 2});
    let answer = subscribe_raw(&mut ws, json!({"room": "lobby", "$since": since})).await;
    assert!(answer["result"].is_u64(), "{answer}");
    // Live publications made right away must come after the replay, not among it.
    publish(&hub, 6..=7).await;
    for offset in 3..=7 {
        let item = next_params(&mut ws).await;
        assert_eq!(item["offset"], offset, "{item}");
        assert_eq!(item["result"]["text"], format!("m{offset}"));
    }
    ws.assert_no_answer_pending().await;

    // `$since` at the newest position: nothing to replay, no gap.
    let mut ws = RawWs::connect(&server.url()).await;
    let since = json!({"epoch": at.epoch, "offset": 7});
    subscribe_raw(&mut ws, json!({"$since": since, "room": "lobby"})).await;
    publish(&hub, 8..=8).await;
    assert_eq!(next_params(&mut ws).await["offset"], 8);
}

#[tokio::test]
async fn history_that_cannot_cover_since_is_a_gap_then_what_is_left() {
    let hub = Hub::memory_with(HistoryLimits {
        max_items: 3,
        max_age: Duration::from_secs(60),
    });
    let server = chat_server(hub.clone()).await;
    let at = publish(&hub, 1..=10).await;

    // Trimmed: offsets 8..=10 are kept; a subscriber at 2 lost 3..=7.
    let mut ws = RawWs::connect(&server.url()).await;
    let since = json!({"epoch": at.epoch, "offset": 2});
    let answer = subscribe_raw(&mut ws, json!({"room": "lobby", "$since": since})).await;
    let sub = answer["result"].clone();
    assert_eq!(
        next_params(&mut ws).await,
        json!({"subscription": sub, "gap": {"epoch": at.epoch, "offset": 7}})
    );
    for offset in 8..=10 {
        assert_eq!(next_params(&mut ws).await["offset"], offset);
    }

    // Another epoch (the hub lost its history): a gap too.
    let mut ws = RawWs::connect(&server.url()).await;
    let since = json!({"epoch": "gone", "offset": 4});
    subscribe_raw(&mut ws, json!({"room": "lobby", "$since": since})).await;
    let gap = next_params(&mut ws).await;
    assert_eq!(gap["gap"], json!({"epoch": at.epoch, "offset": 7}), "{gap}");
}

#[tokio::test]
async fn a_bad_since_or_key_is_invalid_params_and_a_topic_needs_a_stream_door() {
    let server = chat_server(Hub::memory()).await;
    let mut ws = RawWs::connect(&server.url()).await;
    let answer = subscribe_raw(&mut ws, json!({"room": "lobby", "$since": {"epoch": 3}})).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("$since"),
        "{answer}"
    );
    let answer = subscribe_raw(&mut ws, json!({"room": 7})).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let answer = subscribe_raw(&mut ws, json!({"$since": {"epoch": "e", "offset": 0}})).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    // By position: the key only, no `$since` (that is a by-name member).
    let answer = subscribe_raw(&mut ws, json!(["lobby"])).await;
    assert!(answer["result"].is_u64(), "{answer}");

    // Over a plain POST a subscription has nowhere to send its items.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "Chat.room", "params": ["lobby"]});
    let answer = wirecall_tests::http::post(server.local_addr(), &body.to_string()).await;
    let answer: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert!(answer["error"]["data"]
        .as_str()
        .unwrap()
        .contains("text/event-stream"));
}

/// A topic over HTTP: one POST answered with server-sent events, `$since` included.
#[tokio::test]
async fn a_topic_over_server_sent_events_resumes_with_since() {
    use wirecall_tests::http::{Events, HttpConn};
    let hub = Hub::memory();
    let server = chat_server(hub.clone()).await;
    let at = publish(&hub, 1..=3).await;
    let mut http = HttpConn::connect(server.local_addr()).await;
    let body = json!({"jsonrpc": "2.0", "id": "t", "method": "Chat.room",
        "params": {"room": "lobby", "$since": {"epoch": at.epoch, "offset": 1}}});
    let resp = http
        .start(
            "POST",
            &[
                ("content-type", "application/json"),
                ("accept", "text/event-stream"),
            ],
            &body.to_string(),
        )
        .await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut events = Events::new(resp);
    let answer: Value = serde_json::from_str(&events.next().await.unwrap()).unwrap();
    assert!(answer["result"].is_u64(), "{answer}");
    publish(&hub, 4..=4).await;
    for offset in 2..=4 {
        let item: Value = serde_json::from_str(&events.next().await.unwrap()).unwrap();
        assert_eq!(item["params"]["offset"], offset, "{item}");
        assert_eq!(item["params"]["result"]["text"], format!("m{offset}"));
    }
}

#[tokio::test]
async fn typed_subscribers_see_positions_and_a_gap_they_can_match() {
    let hub = Hub::memory_with(HistoryLimits {
        max_items: 2,
        max_age: Duration::from_secs(60),
    });
    let server = chat_server(hub.clone()).await;
    let chat = ChatClient::new(Client::connect(&server.url()).await.unwrap());
    let mut room = chat.room("lobby".into()).await.unwrap();
    let at = publish(&hub, 1..=3).await;
    for i in 1..=3 {
        let m = room.next().await.unwrap().unwrap();
        assert_eq!(m.text, format!("m{i}"));
        assert_eq!(room.position().unwrap().offset, i);
    }
    assert_eq!(room.position().unwrap().epoch, at.epoch);

    // A subscription by hand from an old position: the gap is an `Err` it can match, and
    // the items after it follow.
    let params = json!({"room": "lobby", "$since": {"epoch": at.epoch, "offset": 0}});
    let mut late = chat
        .caller()
        .subscribe::<Message>("Chat.room", params)
        .await
        .unwrap();
    match late.next().await {
        Some(Err(Error::Gap(gap))) => {
            assert_eq!(
                gap.to,
                Position {
                    epoch: at.epoch.clone(),
                    offset: 1
                }
            );
            // Subscribed by hand with `$since`: it had no position of its own yet.
            assert_eq!(gap.from, None);
        }
        other => panic!("expected a gap, got {other:?}"),
    }
    assert_eq!(late.next().await.unwrap().unwrap().text, "m2");
    assert_eq!(late.next().await.unwrap().unwrap().text, "m3");
    drop(server);
}

#[tokio::test]
async fn say_publishes_to_the_room_topic_without_joining_to_listen() {
    let server = chat_server(Hub::memory()).await;
    let listener = ChatClient::new(Client::connect(&server.url()).await.unwrap());
    let mut room = listener.room("lobby".into()).await.unwrap();
    let speaker = ChatClient::new(Client::connect(&server.url()).await.unwrap());
    speaker.join("lobby".into(), "ann".into()).await.unwrap();
    let first = speaker.say("lobby".into(), "hello".into()).await.unwrap();
    let second = speaker.say("lobby".into(), "again".into()).await.unwrap();
    assert_eq!((first, second), (1, 2));
    let m = room.next().await.unwrap().unwrap();
    assert_eq!((m.from.as_str(), m.text.as_str()), ("ann", "hello"));
    assert_eq!(room.next().await.unwrap().unwrap().text, "again");
    assert_eq!(room.position().unwrap().offset, 2);
}

#[tokio::test]
async fn a_client_cut_off_mid_flow_resumes_with_since_and_misses_nothing() {
    let hub = Hub::memory();
    let server = chat_server(hub.clone()).await;
    let proxy = Proxy::start(server.local_addr()).await;
    let client = Client::builder()
        .reconnect(Reconnect {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..Reconnect::default()
        })
        .connect(&proxy.url())
        .await
        .unwrap();
    let mut room = ChatClient::new(client).room("lobby".into()).await.unwrap();

    const N: u64 = 2000;
    let publisher = tokio::spawn({
        let hub = hub.clone();
        async move {
            let topic = ChatTopics::new(&hub).room("lobby");
            for i in 1..=N {
                topic.publish(&message(i)).await.unwrap();
                if i % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    });
    let mut cuts = 0;
    for expected in 1..=N {
        if expected % 500 == 250 {
            proxy.drop_all();
            cuts += 1;
        }
        let item = tokio::time::timeout(Duration::from_secs(10), room.next())
            .await
            .unwrap_or_else(|_| panic!("no item {expected}"));
        let m = match item {
            Some(Ok(m)) => m,
            other => panic!("item {expected}: {other:?}"),
        };
        assert_eq!(m.text, format!("m{expected}"));
        assert_eq!(room.position().unwrap().offset, expected);
    }
    publisher.await.unwrap();
    assert_eq!(cuts, 4);
}
