//! The calculator written with the macros compiles, and an implementation serves it.
use wirecall::{Context, Fault};

/// Raised by `divide`.
#[wirecall::error]
pub enum CalcError {
    /// The divisor was zero.
    #[wirecall(code = 1001)]
    DivideByZero,
    /// Too big.
    #[wirecall(code = 1002)]
    Overflow {
        /// The limit.
        limit: i64,
    },
}

/// A calculator.
#[wirecall::service]
pub trait Calculator {
    /// Sum.
    async fn add(a: i64, b: i64) -> i64;
    /// Quotient.
    async fn divide(a: f64, b: f64) -> Result<f64, CalcError>;
    /// Optional and list params.
    #[wirecall(name = "calc_stats", idempotent)]
    async fn stats(names: Option<Vec<String>>) -> std::collections::BTreeMap<String, u64>;
    /// Nothing back.
    async fn reset() -> ();
    /// A notification.
    #[wirecall(notify)]
    async fn log(message: String);
    /// Asked of the client.
    #[wirecall(client)]
    async fn confirm(question: String) -> bool;
    /// Deprecated, still served.
    #[deprecated = "use add"]
    async fn plus(a: i64, b: i64) -> i64;
}

struct Server;

impl Calculator for Server {
    async fn add(&self, _ctx: Context, a: i64, b: i64) -> Result<i64, Fault> {
        Ok(a + b)
    }
    async fn divide(&self, _ctx: Context, a: f64, b: f64) -> Result<f64, Fault<CalcError>> {
        if b == 0.0 {
            return Err(CalcError::DivideByZero.into());
        }
        Ok(a / b)
    }
    async fn stats(&self, _ctx: Context, _names: Option<Vec<String>>) -> Result<std::collections::BTreeMap<String, u64>, Fault> {
        Ok(Default::default())
    }
    async fn reset(&self, _ctx: Context) -> Result<(), Fault> {
        Ok(())
    }
    async fn log(&self, _ctx: Context, _message: String) {}
    async fn plus(&self, _ctx: Context, a: i64, b: i64) -> Result<i64, Fault> {
        Ok(a + b)
    }
}

fn main() {
    let router = Server.into_router();
    for name in ["Calculator.add", "Calculator.divide", "calc_stats", "Calculator.reset", "Calculator.log", "Calculator.plus"] {
        assert!(router.contains(name), "{name} is not served");
    }
    assert!(!router.contains("Calculator.confirm"));
    let _client: Option<CalculatorClient> = None;
    let _callbacks: Option<CalculatorCallbacksClient> = None;
}
