#[wirecall::service]
pub trait Svc {
    async fn new(name: String) -> u64;
}

fn main() {}
