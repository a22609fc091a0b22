#[wirecall::error]
pub enum Nothing {}

fn main() {}
