#[wirecall::service]
pub trait Svc {
    #[wirecall(notify, idempotent)]
    async fn log(message: String);
}

fn main() {}
