#[wirecall::error]
pub enum Oops {
    #[wirecall(code = 1, message = "bad")]
    Bad,
}

fn main() {}
