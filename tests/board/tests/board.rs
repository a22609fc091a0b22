//! What the generated types derive and what the build options add, used as a user would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wirecall::{Client, Context, Fault, Server};
use wirecall_board::board::{Board, BoardClient, BoardError, Card, Column, Priority, Slot};
use wirecall_board::money::Money;

#[test]
fn a_unit_enum_is_a_value_and_a_key() {
    let to = Column::Doing;
    let moved = to; // Copy: `to` is still usable
    assert_eq!(moved, to);
    let mut counts: HashMap<Column, u32> = HashMap::new();
    *counts.entry(to).or_default() += 1;
    *counts.entry(Column::Done).or_default() += 1;
    assert_eq!(counts[&Column::Doing], 1);
    // Ord follows the declaration.
    let mut columns = vec![Column::Done, Column::Todo, Column::Doing];
    columns.sort();
    assert_eq!(columns, [Column::Todo, Column::Doing, Column::Done]);
    // A struct of hashable fields is hashable too.
    let mut slots = std::collections::HashSet::new();
    slots.insert(Slot {
        column: Column::Todo,
        row: 0,
    });
    assert!(slots.contains(&Slot {
        column: Column::Todo,
        row: 0
    }));
}

#[test]
fn the_build_options_apply() {
    // type_attribute + field_attribute: `#[derive(Default)]` with `#[default] Normal`.
    assert_eq!(Priority::default(), Priority::Normal);
    // extern_path: the application's `Money`.
    let card = Card {
        title: "pay the rent".into(),
        column: Column::Todo,
        priority: Priority::High,
        price: Some(Money::eur(120_000)),
        tags: vec![],
    };
    let json = serde_json::to_value(&card).unwrap();
    assert_eq!(
        json["price"],
        serde_json::json!({"cents": 120000, "currency": "EUR"})
    );
    // field_attribute: `tags` may be left out.
    let card: Card =
        serde_json::from_str(r#"{"title":"t","column":"Done","priority":"Low"}"#).unwrap();
    assert!(card.tags.is_empty());
    // type_attribute: `#[serde(deny_unknown_fields)]`.
    let err = serde_json::from_str::<Card>(
        r#"{"title":"t","column":"Done","priority":"Low","colour":"red"}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
}

/// A board shared by every connection of a multi-threaded server.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<HashMap<u64, Card>>>);

impl Board for Shared {
    async fn move_card(
        &self,
        _ctx: Context,
        id: u64,
        to: Column,
    ) -> Result<Column, Fault<BoardError>> {
        let mut cards = self.0.lock().unwrap();
        let card = cards.get_mut(&id).ok_or(BoardError::NoSuchCard { id })?;
        let from = card.column;
        card.column = to;
        Ok(from)
    }

    async fn cards(
        &self,
        _ctx: Context,
    ) -> Result<std::collections::BTreeMap<String, Card>, Fault> {
        let cards = self.0.lock().unwrap();
        Ok(cards
            .iter()
            .map(|(id, c)| (id.to_string(), c.clone()))
            .collect())
    }

    async fn counts(
        &self,
        _ctx: Context,
    ) -> Result<std::collections::BTreeMap<Column, u32>, Fault> {
        let mut counts = std::collections::BTreeMap::new();
        for card in self.0.lock().unwrap().values() {
            *counts.entry(card.column).or_default() += 1;
        }
        Ok(counts)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn end_to_end() {
    let board = Shared::default();
    board.0.lock().unwrap().insert(
        7,
        Card {
            title: "write tests".into(),
            column: Column::Todo,
            priority: Priority::default(),
            price: None,
            tags: vec!["dev".into()],
        },
    );
    let server = Server::bind("127.0.0.1:0", board.into_router())
        .await
        .unwrap();
    let client = BoardClient::new(Client::connect(&server.url()).await.unwrap());
    let to = Column::Doing;
    assert_eq!(client.move_card(7, to).await.unwrap(), Column::Todo);
    assert_eq!(client.cards().await.unwrap()["7"].column, to);
    // A unit enum keys a map: a JSON object keyed by the variants' names, both ways.
    let counts = client.counts().await.unwrap();
    assert_eq!(counts, [(Column::Doing, 1)].into_iter().collect());
    let json = serde_json::to_string(&counts).unwrap();
    assert_eq!(json, r#"{"Doing":1}"#);
    let back: std::collections::BTreeMap<Column, u32> =
        serde_json::from_str(r#"{"Todo":2,"Done":0}"#).unwrap();
    assert_eq!(back[&Column::Todo], 2);
    assert!(
        serde_json::from_str::<std::collections::BTreeMap<Column, u32>>(r#"{"Nope":1}"#).is_err()
    );
    match client.move_card(8, to).await {
        Err(wirecall::Error::App(BoardError::NoSuchCard { id })) => assert_eq!(id, 8),
        other => panic!("{other:?}"),
    }
}
