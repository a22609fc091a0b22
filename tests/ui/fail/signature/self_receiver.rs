#[wirecall::service]
pub trait Svc {
    async fn ping(&self) -> bool;
}

fn main() {}
