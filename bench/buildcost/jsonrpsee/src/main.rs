use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::server::Server;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::ws_client::WsClientBuilder;

#[rpc(server, client, namespace = "Calculator")]
pub trait Calculator {
    #[method(name = "add")]
    async fn add(&self, a: i64, b: i64) -> RpcResult<i64>;
    #[method(name = "divide")]
    async fn divide(&self, a: f64, b: f64) -> RpcResult<f64>;
}

struct Calc;
#[async_trait]
impl CalculatorServer for Calc {
    async fn add(&self, a: i64, b: i64) -> RpcResult<i64> {
        Ok(a + b)
    }
    async fn divide(&self, a: f64, b: f64) -> RpcResult<f64> {
        if b == 0.0 {
            Err(ErrorObjectOwned::owned(1001, "DivideByZero", None::<()>))
        } else {
            Ok(a / b)
        }
    }
}

#[tokio::main]
async fn main() {
    let server = Server::builder().build("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let _h = server.start(Calc.into_rpc());
    let client = WsClientBuilder::default()
        .build(format!("ws://{addr}"))
        .await
        .unwrap();
    println!("{}", client.add(1, 2).await.unwrap());
}
