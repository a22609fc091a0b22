//! A service defined with the `#[wirecall::service]` macro instead of a `.wire` file.
//!
//! ```text
//! cargo run -p wirecall-examples --bin greeter
//! ```

use wirecall::{Client, Context, Fault, Server};

/// Why a greeting failed.
#[wirecall::error]
#[derive(Eq)]
pub enum GreetError {
    /// Nobody to greet.
    #[wirecall(code = 4001)]
    EmptyName,
    /// The name is longer than the greeter accepts.
    #[wirecall(code = 4002)]
    TooLong {
        /// The longest name accepted.
        max: u32,
    },
}

/// Greets people.
#[wirecall::service]
pub trait Greeter {
    /// A greeting for `name`.
    async fn greet(name: String) -> Result<String, GreetError>;
    /// How many greetings were made.
    #[wirecall(idempotent)]
    async fn count() -> u64;
    /// Forget the count. Never answered.
    #[wirecall(notify)]
    async fn reset();
}

#[derive(Default)]
struct Impl {
    count: std::sync::atomic::AtomicU64,
}

impl Greeter for Impl {
    async fn greet(&self, _ctx: Context, name: String) -> Result<String, Fault<GreetError>> {
        if name.is_empty() {
            return Err(GreetError::EmptyName.into());
        }
        if name.len() > 20 {
            return Err(GreetError::TooLong { max: 20 }.into());
        }
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(format!("Hello, {name}!"))
    }

    async fn count(&self, _ctx: Context) -> Result<u64, Fault> {
        Ok(self.count.load(std::sync::atomic::Ordering::Relaxed))
    }

    async fn reset(&self, _ctx: Context) {
        self.count.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::bind("127.0.0.1:0", Impl::default().into_router()).await?;
    let greeter = GreeterClient::new(Client::connect(&server.url()).await?);
    println!("greet(\"Ada\") = {:?}", greeter.greet("Ada".into()).await?);
    println!(
        "greet(\"\") = {}",
        greeter.greet(String::new()).await.unwrap_err()
    );
    println!(
        "greet(<long>) = {}",
        greeter.greet("x".repeat(30)).await.unwrap_err()
    );
    println!("count() = {}", greeter.count().await?);
    server.shutdown().await;
    Ok(())
}
