//! A server of one version of the compatibility matrix's service (tests/compat/), for the
//! TypeScript test (tests/browser/compat.test.mjs): `compat_server v1|v2 [ADDR]` prints
//! `listening on ws://ADDR` once it accepts connections.

use wirecall::Server;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let version = args.next().unwrap_or_default();
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let router = match version.as_str() {
        "v1" => wirecall_tests::compat_v1::Board::into_router(wirecall_tests::compat::V1),
        "v2" => wirecall_tests::compat_v2::Board::into_router(wirecall_tests::compat::V2),
        other => return Err(format!("expected v1 or v2, got `{other}`").into()),
    };
    let server = Server::bind(addr.as_str(), router).await?;
    println!("listening on {}", server.url());
    std::future::pending::<()>().await;
    Ok(())
}
