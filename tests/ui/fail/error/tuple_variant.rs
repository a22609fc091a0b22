#[wirecall::error]
pub enum Oops {
    #[wirecall(code = 1)]
    Bad(String),
}

fn main() {}
