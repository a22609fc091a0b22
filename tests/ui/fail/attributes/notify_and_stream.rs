#[wirecall::service]
pub trait Svc {
    #[wirecall(notify, stream)]
    async fn watch(id: u64);
}

fn main() {}
