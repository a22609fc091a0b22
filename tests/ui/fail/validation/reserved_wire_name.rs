#[wirecall::service]
pub trait Svc {
    #[wirecall(name = "rpc.discover")]
    async fn discover() -> String;
}

fn main() {}
