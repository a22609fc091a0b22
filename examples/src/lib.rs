//! Runnable wirecall examples; see `src/bin/`.
//!
//! The calculator fixture (`idl/calculator.wire`) is compiled by `build.rs`; its
//! generated code lives in [`calculator`], and [`CalcServer`] implements it. Tests and
//! benchmarks use both.

#![deny(missing_docs, warnings)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wirecall::{Context, Fault};

use calculator::{CalcError, Calculator, CalculatorCallbacksClient, Stats};

/// The calculator service, generated from `idl/calculator.wire`.
pub mod calculator {
    wirecall::include_idl!("calculator");
}

/// The calculator's server: a cheap handle (clones share the state), so a test can keep
/// one to observe the server while another serves.
#[derive(Clone, Debug, Default)]
pub struct CalcServer {
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    calls: AtomicU64,
    last_message: Mutex<Option<String>>,
    sleeps_started: AtomicU64,
    sleeps_finished: AtomicU64,
    sleeps_cancelled: AtomicU64,
}

/// What happened to `sleep` calls so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SleepCounts {
    /// Handlers that started.
    pub started: u64,
    /// Handlers that ran to the end.
    pub finished: u64,
    /// Handlers stopped before the end (cancelled, timed out, disconnected).
    pub cancelled: u64,
}

impl CalcServer {
    /// What happened to `sleep` calls so far.
    pub fn sleeps(&self) -> SleepCounts {
        SleepCounts {
            started: self.state.sleeps_started.load(Ordering::SeqCst),
            finished: self.state.sleeps_finished.load(Ordering::SeqCst),
            cancelled: self.state.sleeps_cancelled.load(Ordering::SeqCst),
        }
    }

    fn count(&self) {
        self.state.calls.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a `sleep` handler that is dropped before it finishes.
struct SleepGuard<'a>(&'a State, bool);

impl Drop for SleepGuard<'_> {
    fn drop(&mut self) {
        let counter = if self.1 {
            &self.0.sleeps_finished
        } else {
            &self.0.sleeps_cancelled
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

impl Calculator for CalcServer {
    async fn add(&self, _ctx: Context, a: i64, b: i64) -> Result<i64, Fault> {
        self.count();
        a.checked_add(b)
            .ok_or_else(|| wirecall::RpcError::invalid_params("the sum overflows i64").into())
    }

    async fn subtract(&self, _ctx: Context, minuend: i64, subtrahend: i64) -> Result<i64, Fault> {
        self.count();
        minuend.checked_sub(subtrahend).ok_or_else(|| {
            wirecall::RpcError::invalid_params("the difference overflows i64").into()
        })
    }

    async fn divide(&self, _ctx: Context, a: f64, b: f64) -> Result<f64, Fault<CalcError>> {
        self.count();
        if b == 0.0 {
            return Err(CalcError::DivideByZero.into());
        }
        Ok(a / b)
    }

    async fn echo(&self, _ctx: Context, text: String) -> Result<String, Fault> {
        self.count();
        Ok(text)
    }

    async fn sleep(&self, _ctx: Context, ms: u64) -> Result<u64, Fault> {
        self.count();
        let state = &*self.state;
        state.sleeps_started.fetch_add(1, Ordering::SeqCst);
        let mut guard = SleepGuard(state, false);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        guard.1 = true;
        Ok(ms)
    }

    async fn ask(&self, ctx: Context, question: String) -> Result<bool, Fault> {
        self.count();
        let client = CalculatorCallbacksClient::new(ctx.peer().clone());
        Ok(client.confirm(question).await?)
    }

    async fn stats(&self, _ctx: Context) -> Result<Stats, Fault> {
        self.count();
        let last_message = self
            .state
            .last_message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Ok(Stats {
            calls: self.state.calls.load(Ordering::Relaxed),
            last_message,
        })
    }

    async fn log(&self, _ctx: Context, message: String) {
        self.count();
        *self
            .state
            .last_message
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(message);
    }
}
