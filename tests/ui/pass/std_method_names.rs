//! A trait whose methods are named like methods of `Arc` and of std traits, with the
//! prelude in scope: the generated router calls the trait's methods by path. TypeScript's
//! naming rules (`then`, `get_v2` next to `get_v_2`) do not apply to the macro.
#![deny(warnings)]

/// A service.
#[wirecall::service]
pub trait Cloner {
    /// Clone.
    async fn clone() -> u8;
    /// Into.
    async fn into(x: u8) -> u8;
    /// As ref.
    async fn as_ref() -> String;
    /// Then.
    async fn then();
    /// Version two.
    async fn get_v2() -> u8;
    /// Version two, again.
    async fn get_v_2() -> u8;
}

struct Impl;

impl Cloner for Impl {
    async fn clone(&self, _ctx: wirecall::Context) -> Result<u8, wirecall::Fault> {
        Ok(1)
    }
    async fn into(&self, _ctx: wirecall::Context, x: u8) -> Result<u8, wirecall::Fault> {
        Ok(x)
    }
    async fn as_ref(&self, _ctx: wirecall::Context) -> Result<String, wirecall::Fault> {
        Ok(String::new())
    }
    async fn then(&self, _ctx: wirecall::Context) -> Result<(), wirecall::Fault> {
        Ok(())
    }
    async fn get_v2(&self, _ctx: wirecall::Context) -> Result<u8, wirecall::Fault> {
        Ok(2)
    }
    async fn get_v_2(&self, _ctx: wirecall::Context) -> Result<u8, wirecall::Fault> {
        Ok(2)
    }
}

fn main() {
    let router = Impl.into_router();
    assert!(router.contains("Cloner.clone") && router.contains("Cloner.get_v_2"));
}
