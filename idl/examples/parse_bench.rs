//! Benchmark (not a test): parse + validate a generated interface of about 10 000 lines.
//!
//! ```text
//! cargo run --release -p wirecall-idl --example parse_bench [LINES]
//! ```
//!
//! Prints the size of the input and the best and median time of several runs.

use std::time::{Duration, Instant};

fn generate(lines: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    let mut count = 0;
    while count < lines {
        let block = format!(
            "/// Record number {n}.\n\
             struct Record{n} {{\n    /// Identifier.\n    id: u64,\n    name: string?,\n    \
             tags: list<string>,\n    attrs: map<string, f64>,\n    prev: Record{p}?,\n}}\n\n\
             enum Shape{n} {{ Circle {{ radius: f64 }}, Rect {{ w: f64, h: f64 }}, Empty }}\n\n\
             error Fail{n} {{ NotFound = {c1}, Invalid {{ reason: string }} = {c2} }}\n\n\
             /// Service number {n}.\n\
             service Service{n} {{\n    rpc get(id: u64) -> Record{n} throws Fail{n};\n    \
             @idempotent rpc list(offset: u32, limit: u32?) -> list<Record{n}>;\n    \
             @name(\"svc{n}.area\") rpc area(shape: Shape{n}) -> f64;\n    \
             notify touch(id: u64);\n    stream watch(id: u64) -> Record{n};\n    \
             client {{ rpc confirm(question: string) -> bool; }}\n}}\n\n",
            p = if n == 0 { 0 } else { n - 1 },
            c1 = 1000 + 2 * n,
            c2 = 1001 + 2 * n,
        );
        count += block.lines().count();
        out.push_str(&block);
        n += 1;
    }
    // Record0 refers to itself through `prev: Record0?`; break that cycle.
    out.replacen("prev: Record0?", "prev: json?", 1)
}

fn main() {
    let lines: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let text = generate(lines);
    let loader = wirecall_idl::Loader::new().with_source("bench.wire", text.clone());
    let mut times: Vec<Duration> = Vec::new();
    let mut summary = String::new();
    for _ in 0..15 {
        let start = Instant::now();
        let loaded = match loader.load("bench.wire") {
            Ok(l) => l,
            Err(d) => panic!("generated input is invalid:\n{d}"),
        };
        times.push(start.elapsed());
        summary = format!(
            "{} types, {} services",
            loaded.schema.types.len(),
            loaded.schema.services.len()
        );
    }
    times.sort();
    println!(
        "parse + validate: {} lines, {} bytes ({summary}): best {:.2} ms, median {:.2} ms over {} runs",
        text.lines().count(),
        text.len(),
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times.len()
    );
}
