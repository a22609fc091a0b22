#[wirecall::service]
pub trait Svc {
    type Item;
    async fn ping() -> bool;
}

fn main() {}
