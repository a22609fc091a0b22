#[wirecall::error]
pub enum Oops {
    #[wirecall(code = -32601)]
    NotFound,
}

fn main() {}
