#[wirecall::error]
pub enum Oops {
    #[wirecall(code = 1)]
    Bad,
    #[wirecall(code = 1)]
    Worse,
}

fn main() {}
