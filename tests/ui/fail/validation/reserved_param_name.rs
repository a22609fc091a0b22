#[wirecall::service]
pub trait Svc {
    async fn run(ctx: String) -> bool;
}

fn main() {}
