#[wirecall::service]
pub trait Chat {
    #[wirecall(topic)]
    async fn room(room: String) -> String;
    async fn authorize_room(room: String) -> bool;
}

fn main() {}
