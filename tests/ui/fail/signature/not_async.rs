#[wirecall::service]
pub trait Svc {
    fn ping() -> bool;
}

fn main() {}
