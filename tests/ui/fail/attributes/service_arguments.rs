#[wirecall::service(name = "Other")]
pub trait Svc {
    async fn ping() -> bool;
}

fn main() {}
