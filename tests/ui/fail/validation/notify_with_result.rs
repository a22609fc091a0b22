#[wirecall::service]
pub trait Svc {
    #[wirecall(notify)]
    async fn log(message: String) -> bool;
}

fn main() {}
