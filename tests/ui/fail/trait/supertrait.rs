#[wirecall::service]
pub trait Svc: Clone {
    async fn ping() -> bool;
}

fn main() {}
