#[wirecall::service]
pub trait Svc {
    async fn ping() -> bool;
    #[wirecall(client)]
    async fn pong() -> bool;
    async fn Ping() -> bool;
}

fn main() {}
