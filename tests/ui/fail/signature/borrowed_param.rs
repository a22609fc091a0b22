#[wirecall::service]
pub trait Svc {
    async fn echo(text: &str) -> String;
}

fn main() {}
