#[wirecall::error]
pub enum Oops {
    #[wirecall(code = 1)]
    Bad,
    Worse,
}

fn main() {}
