#[derive(serde::Serialize, serde::Deserialize)]
pub struct Point {
    pub x: i32,
}

#[wirecall::service]
pub trait Maps {
    #[wirecall(topic)]
    async fn near(at: Point, radius: f64) -> Point;
    #[wirecall(topic)]
    async fn plain(tag: String) -> Point;
}

fn main() {
    // The rest of the trait still expands: its publisher exists.
    let hub = wirecall::hub::Hub::memory();
    let _ = MapsTopics::new(&hub).plain("x");
}
