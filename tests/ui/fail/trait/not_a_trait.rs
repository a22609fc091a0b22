#[wirecall::service]
pub struct Svc;

fn main() {}
