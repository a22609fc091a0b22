//! The memory hub within its bounds: what a key costs, what is evicted, what is refused,
//! and that every subscriber still gets every item once, in order, or a gap.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use proptest::prelude::*;

use super::*;
use crate::hub::{Event, Feed, Hub};

fn hub(options: MemoryOptions) -> (Hub, Arc<Memory>) {
    let memory = Arc::new(Memory::new(options));
    let hub = Hub {
        backend: memory.clone(),
        kind: "memory",
    };
    (hub, memory)
}

fn key(i: usize) -> Arc<str> {
    format!("T[{i}]").into()
}

/// The counts agree with the keys, and hold the bounds.
fn check(memory: &Memory) {
    let s = memory.state();
    let (mut active, mut tombstones, mut subscribed, mut bytes) = (0, 0, 0, 0);
    for (name, k) in &s.keys {
        match k.class() {
            Class::Active => active += 1,
            Class::Tombstone => tombstones += 1,
            Class::Absent => panic!("{name} holds nothing and is kept"),
        }
        assert_eq!(
            k.subscribers > 0,
            k.live.is_some(),
            "{name}: a ring iff subscribers"
        );
        subscribed += usize::from(k.subscribers > 0);
        bytes += k.history.iter().map(|(_, e)| cost(e)).sum::<usize>();
    }
    assert_eq!(
        (s.active, s.tombstones, s.subscribed, s.history_bytes),
        (active, tombstones, subscribed, bytes)
    );
    let o = &memory.options;
    assert!(active <= o.max_keys, "{active} active keys");
    assert!(tombstones <= o.max_keys, "{tombstones} tombstones");
    assert!(bytes <= o.max_history_bytes, "{bytes} bytes of history");
}

/// Everything the feed has now.
fn drain(feed: &mut Feed) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(Some(event)) = tokio::task::unconstrained(feed.next()).now_or_never() {
        events.push(event);
    }
    events
}

fn position(epoch: &str, offset: u64) -> Position {
    Position {
        epoch: epoch.into(),
        offset,
    }
}

/// #31, item 7: a key whose history aged out and was swept keeps its position, so a
/// subscriber that saw its last item resumes without a gap, in the same epoch.
#[tokio::test(start_paused = true)]
async fn a_swept_key_resumes_where_it_was_without_a_gap() {
    let history = HistoryLimits {
        max_items: 10,
        max_age: Duration::from_secs(1),
    };
    let (hub, memory) = hub(MemoryOptions::default().history(history));
    let at = hub.publish_json(key(0), "1".into()).await.unwrap();
    assert_eq!(at.offset, 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    // Enough publications elsewhere for a sweep.
    for i in 0..SWEEP_EVERY {
        hub.publish_json(key(1), i.to_string().into())
            .await
            .unwrap();
    }
    {
        let s = memory.state();
        let k = s.keys.get("T[0]").expect("a tombstone");
        assert!(k.history.is_empty(), "swept");
        assert_eq!(k.class(), Class::Tombstone);
    }
    check(&memory);
    let mut feed = hub.feed(key(0), Some(at.clone())).await.unwrap();
    let next = hub.publish_json(key(0), "2".into()).await.unwrap();
    assert_eq!(
        next,
        position(&at.epoch, 2),
        "the same epoch, the next offset"
    );
    let events = drain(&mut feed);
    assert!(
        matches!(&events[..], [Event::Item(e)] if e.offset == 2 && *e.epoch == *at.epoch),
        "no gap, then the new item: {events:?}"
    );
}

/// An idle key gives way to a new one beyond `max_keys`; a subscriber of the evicted
/// history is told of the gap, one that saw everything is not.
#[tokio::test]
async fn beyond_max_keys_the_least_recently_published_history_goes_with_a_gap() {
    let (hub, memory) = hub(MemoryOptions::default().max_keys(10));
    // A subscriber of key 0 that saw nothing yet.
    let feed = hub.feed(key(0), None).await.unwrap();
    let start = {
        let s = memory.state();
        s.keys.get("T[0]").unwrap().now()
    };
    drop(feed);
    assert!(
        memory.state().keys.is_empty(),
        "a key without anything costs nothing"
    );
    let first = hub.publish_json(key(0), "1".into()).await.unwrap();
    assert_eq!(first, position(&start.epoch, 1));
    for i in 1..20 {
        hub.publish_json(key(i), "1".into()).await.unwrap();
        check(&memory);
    }
    assert_eq!(memory.state().active, 10);
    // Key 0's item is gone: from its start, a gap; from its item, nothing missed.
    let mut behind = hub.feed(key(0), Some(start)).await.unwrap();
    let events = drain(&mut behind);
    assert!(
        matches!(&events[..], [Event::Gap(p)] if *p == first),
        "a gap up to the evicted item: {events:?}"
    );
    let mut current = hub.feed(key(0), Some(first.clone())).await.unwrap();
    assert!(drain(&mut current).is_empty(), "nothing missed, no gap");
    check(&memory);
}

/// Tombstones are bounded too: a forgotten one means a new epoch, and a gap.
#[tokio::test]
async fn forgotten_positions_mean_a_new_epoch_and_a_gap() {
    let (hub, memory) = hub(MemoryOptions::default().max_keys(5));
    let first = hub.publish_json(key(0), "1".into()).await.unwrap();
    for i in 1..20 {
        hub.publish_json(key(i), "1".into()).await.unwrap();
        check(&memory);
    }
    assert_eq!(memory.state().tombstones, 5);
    assert!(!memory.state().keys.contains_key("T[0]"), "forgotten");
    let mut feed = hub.feed(key(0), Some(first.clone())).await.unwrap();
    let events = drain(&mut feed);
    assert!(
        matches!(&events[..], [Event::Gap(p)] if p.epoch != first.epoch && p.offset == 0),
        "{events:?}"
    );
    let again = hub.publish_json(key(0), "1".into()).await.unwrap();
    assert_ne!(
        again.epoch, first.epoch,
        "offsets are never reused in an epoch"
    );
}

/// When every key held has subscribers, a new key is refused, to publishers and
/// subscribers alike, with a clear error; a key released makes room.
#[tokio::test]
async fn a_hub_full_of_subscribed_keys_refuses_new_keys() {
    let (hub, memory) = hub(MemoryOptions::default().max_keys(2));
    let a = hub.feed(key(0), None).await.unwrap();
    let _b = hub.feed(key(1), None).await.unwrap();
    let refused = hub.publish_json(key(2), "1".into()).await.unwrap_err();
    assert!(
        matches!(&refused, PublishError::LimitExceeded(m) if m.contains("limit of 2 topic keys")),
        "{refused}"
    );
    let refused = hub.feed(key(2), None).await.err().expect("refused");
    assert_eq!(refused.code, crate::error::code::LIMIT_EXCEEDED);
    // Keys already held still take publications.
    hub.publish_json(key(0), "1".into()).await.unwrap();
    check(&memory);
    drop(a);
    hub.publish_json(key(2), "1".into()).await.unwrap();
    check(&memory);
}

/// History beyond `max_history_bytes` goes, the least recently published first.
#[tokio::test]
async fn history_bytes_stay_within_their_bound() {
    let item = "x".repeat(200);
    let bound = 10 * (item.len() + 2 + ENTRY_COST);
    let (hub, memory) = hub(MemoryOptions::default().max_history_bytes(bound));
    for i in 0..100 {
        hub.publish_json(key(i % 7), format!("\"{item}\"").into())
            .await
            .unwrap();
        check(&memory);
    }
    let s = memory.state();
    assert!(s.history_bytes <= bound && s.history_bytes > bound / 2);
    // The most recent publication is kept.
    assert!(!s.keys.get("T[1]").unwrap().history.is_empty());
}

#[derive(Clone, Debug)]
enum Op {
    Publish(usize),
    /// Subscribe to a key: afresh, or from where the `n`th dropped feed of it stopped.
    Subscribe(usize, Option<usize>),
    /// Drop the `n`th feed held.
    Drop(usize),
    /// Let time pass (seconds).
    Wait(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..6).prop_map(Op::Publish),
        2 => (0usize..6, proptest::option::of(0usize..4)).prop_map(|(k, s)| Op::Subscribe(k, s)),
        1 => (0usize..8).prop_map(Op::Drop),
        1 => (0u8..3).prop_map(Op::Wait),
    ]
}

/// A feed's events against what was published to its key: each item is a publication of
/// the key and comes right after the one before it (or after a gap, or a start); the last
/// position is the key's last.
fn verify(
    k: usize,
    from: Option<Position>,
    events: &[Event],
    published: &HashMap<(usize, String, u64), String>,
) -> Result<Option<Position>, TestCaseError> {
    let mut at = from;
    for event in events {
        match event {
            Event::Start(p) | Event::Gap(p) => at = Some(p.clone()),
            Event::Item(e) => {
                let p = at.as_ref().expect("a position before the first item");
                let next = *e.epoch == *p.epoch && e.offset == p.offset + 1;
                prop_assert!(next, "{e:?} after {p:?}: silently skipped or repeated");
                prop_assert_eq!(
                    published.get(&(k, e.epoch.to_string(), e.offset)),
                    Some(&e.json.to_string())
                );
                at = Some(position(&e.epoch, e.offset));
            }
        }
    }
    Ok(at)
}

/// A feed the proptest holds: its key, where it started, the last publication made while
/// it was held, and its events.
type Held = (usize, Option<Position>, Option<Position>, Feed, Vec<Event>);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Under small bounds, with keys published, subscribed, released, evicted and
    /// forgotten in any order: the counts are right, the bounds hold, and every
    /// subscriber gets every item once and in order, or a gap.
    #[test]
    fn within_bounds_nothing_is_lost_silently(
        max_keys in 1usize..4,
        max_items in 0usize..4,
        bytes in 1usize..6,
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        rt.block_on(async {
            let options = MemoryOptions::default()
                .history(HistoryLimits { max_items, max_age: Duration::from_secs(2) })
                .max_keys(max_keys)
                .max_history_bytes(bytes * (ENTRY_COST + 3));
            let (hub, memory) = hub(options);
            let mut published = HashMap::new();
            let mut feeds: Vec<Held> = Vec::new();
            let mut dropped: HashMap<usize, Vec<Option<Position>>> = HashMap::new();
            let mut n = 0u64;
            for op in ops {
                match op {
                    Op::Publish(k) => {
                        n += 1;
                        let json = format!("{}", n % 1000);
                        match hub.publish_json(key(k), json.clone().into()).await {
                            Ok(p) => {
                                published.insert((k, p.epoch.clone(), p.offset), json);
                                for (fk, _, last, _, _) in &mut feeds {
                                    if *fk == k {
                                        *last = Some(p.clone());
                                    }
                                }
                            }
                            Err(PublishError::LimitExceeded(_)) => {
                                prop_assert_eq!(memory.state().subscribed, max_keys);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    Op::Subscribe(k, since) => {
                        let since = since.and_then(|i| dropped.get(&k)?.get(i).cloned().flatten());
                        match hub.feed(key(k), since.clone()).await {
                            Ok(feed) => feeds.push((k, since, None, feed, Vec::new())),
                            Err(e) => {
                                prop_assert_eq!(e.code, crate::error::code::LIMIT_EXCEEDED);
                                prop_assert_eq!(memory.state().subscribed, max_keys);
                            }
                        }
                    }
                    Op::Drop(i) => {
                        if i < feeds.len() {
                            let (k, from, _, mut feed, mut events) = feeds.remove(i);
                            events.extend(drain(&mut feed));
                            drop(feed);
                            let at = verify(k, from, &events, &published)?;
                            dropped.entry(k).or_default().push(at);
                        }
                    }
                    Op::Wait(s) => tokio::time::advance(Duration::from_secs(s.into())).await,
                }
                check(&memory);
                for (_, _, _, feed, events) in &mut feeds {
                    events.extend(drain(feed));
                }
            }
            for (k, from, last, mut feed, mut events) in feeds {
                events.extend(drain(&mut feed));
                let at = verify(k, from, &events, &published)?;
                if let Some(last) = last {
                    prop_assert_eq!(at, Some(last), "everything up to the last item, or a gap");
                }
            }
            Ok(())
        })?;
    }
}
