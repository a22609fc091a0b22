#[wirecall::service]
pub trait Svc {
    #[wirecall(name = "echo")]
    async fn echo1(text: String) -> String;
    #[wirecall(name = "echo")]
    async fn echo2(text: String) -> String;
}

fn main() {}
