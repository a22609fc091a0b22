#[wirecall::service]
pub trait Svc {
    async fn echo<T>(value: T) -> T;
}

fn main() {}
