#[wirecall::service]
pub trait Svc<T> {
    async fn ping() -> bool;
}

fn main() {}
