//! Two versions of one service for the compatibility matrix (`tests/compat/`): a server
//! of each, shared by `tests/compat.rs` and the `compat_server` example the TypeScript
//! test runs.

use wirecall::{items_ok, Context, Fault, Items};

use crate::{compat_v1 as v1, compat_v2 as v2};

/// The version 1 server: ids are titles, every card is `Todo` and `Small`.
#[derive(Clone, Copy, Debug)]
pub struct V1;

impl v1::Board for V1 {
    async fn get(&self, _ctx: Context, id: u64) -> Result<v1::Card, Fault<v1::BoardError>> {
        match id {
            0 => Err(v1::BoardError::NoSuchCard.into()),
            _ => Ok(v1::Card {
                title: format!("card {id}"),
            }),
        }
    }
    async fn column(&self, _ctx: Context, _id: u64) -> Result<v1::Column, Fault> {
        Ok(v1::Column::Todo)
    }
    async fn size(&self, _ctx: Context, _id: u64) -> Result<v1::Size, Fault> {
        Ok(v1::Size::Small)
    }
    async fn add(&self, _ctx: Context, title: String, column: v1::Column) -> Result<u64, Fault> {
        // A newer client's column this version does not know arrives as `Unknown`.
        Ok(match column {
            v1::Column::Unknown => 99,
            _ => title.len() as u64,
        })
    }
    async fn watch(&self, _ctx: Context, count: u32) -> Result<Items<v1::Card>, Fault> {
        Ok(items_ok(futures_util::stream::iter((0..count).map(|i| {
            v1::Card {
                title: format!("item {i}"),
            }
        }))))
    }
}

/// The version 2 server: card 9 is archived, card 2 is `Doing`, card 3 is `Huge`.
#[derive(Clone, Copy, Debug)]
pub struct V2;

impl v2::Board for V2 {
    async fn get(
        &self,
        _ctx: Context,
        id: u64,
        revision: Option<u32>,
    ) -> Result<v2::Card, Fault<v2::BoardError>> {
        match id {
            0 => Err(v2::BoardError::NoSuchCard.into()),
            9 => Err(v2::BoardError::Archived.into()),
            _ => Ok(v2::Card {
                title: format!("card {id}"),
                due: Some(u64::from(revision.unwrap_or(5))),
            }),
        }
    }
    async fn column(&self, _ctx: Context, id: u64) -> Result<v2::Column, Fault> {
        Ok(if id == 2 {
            v2::Column::Doing
        } else {
            v2::Column::Todo
        })
    }
    async fn size(&self, _ctx: Context, id: u64) -> Result<v2::Size, Fault> {
        Ok(if id == 3 {
            v2::Size::Huge
        } else {
            v2::Size::Large
        })
    }
    async fn add(&self, _ctx: Context, title: String, _column: v2::Column) -> Result<u64, Fault> {
        Ok(title.len() as u64)
    }
    async fn archive(&self, _ctx: Context, _id: u64) -> Result<bool, Fault> {
        Ok(true)
    }
    async fn watch(&self, _ctx: Context, count: u32) -> Result<Items<v2::Card>, Fault> {
        Ok(items_ok(futures_util::stream::iter((0..count).map(|i| {
            v2::Card {
                title: format!("item {i}"),
                due: Some(1),
            }
        }))))
    }
}
