#[wirecall::service]
pub trait Svc {
    #[wirecall(name = 5)]
    async fn ping() -> bool;
}

fn main() {}
