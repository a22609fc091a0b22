#[wirecall::service]
pub trait Svc {
    async fn ping() -> bool {
        true
    }
}

fn main() {}
