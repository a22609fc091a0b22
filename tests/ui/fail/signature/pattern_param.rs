#[wirecall::service]
pub trait Svc {
    async fn add((a, b): (i64, i64)) -> i64;
}

fn main() {}
