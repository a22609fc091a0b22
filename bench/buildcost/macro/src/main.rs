use wirecall::{Context, Fault};

#[wirecall::error]
pub enum CalcError {
    /// The divisor was zero.
    #[wirecall(code = 1001)]
    DivideByZero,
}

/// A calculator.
#[wirecall::service]
pub trait Calculator {
    /// The sum.
    async fn add(a: i64, b: i64) -> i64;
    /// The quotient.
    async fn divide(a: f64, b: f64) -> Result<f64, CalcError>;
}

struct Calc;
impl Calculator for Calc {
    async fn add(&self, _ctx: Context, a: i64, b: i64) -> Result<i64, Fault> {
        Ok(a + b)
    }
    async fn divide(&self, _ctx: Context, a: f64, b: f64) -> Result<f64, Fault<CalcError>> {
        if b == 0.0 {
            Err(CalcError::DivideByZero.into())
        } else {
            Ok(a / b)
        }
    }
}

#[tokio::main]
async fn main() {
    let server = wirecall::Server::bind("127.0.0.1:0", Calc.into_router())
        .await
        .unwrap();
    let calc = CalculatorClient::new(wirecall::Client::connect(&server.url()).await.unwrap());
    println!("{}", calc.add(1, 2).await.unwrap());
}
