#[wirecall::service]
pub trait Svc {
    #[wirecall(cached)]
    async fn stats() -> u64;
}

fn main() {}
