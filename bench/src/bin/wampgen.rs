//! A raw WAMP load generator (`wirecall_bench::wamp`): C connections × K `CALL`s of
//! `Calculator.add` in flight, every `RESULT` matched by request id and checked, latency
//! in an HDR histogram; the same options and the same one-line JSON output as `loadgen`.
//!
//! ```text
//! wampgen --url ws://127.0.0.1:9000 --conns 32 --inflight 16 --seconds 5
//! wampgen --url ws://127.0.0.1:9000 --serializer msgpack --conns 1 --inflight 64
//! wampgen --url ws://127.0.0.1:9000 --serializer msgpack --probe   # does the server speak it?
//! ```
//! Exits 2 when the server refuses the subprotocol (`server refused subprotocol …` on
//! stderr), 1 when a connection cannot join otherwise or a probe fails.

use std::time::{Duration, Instant};

use clap::Parser;
use wirecall_bench::wamp::{self, Serializer, WampError};

#[derive(Parser)]
struct Args {
    /// The server's `ws://` URL.
    #[arg(long)]
    url: String,
    /// Connections.
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Calls in flight per connection.
    #[arg(long, default_value_t = 1)]
    inflight: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Warm-up seconds (not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// The WAMP serializer: `json` (wamp.2.json), `msgpack` (wamp.2.msgpack) or `cbor`
    /// (wamp.2.cbor).
    #[arg(long, value_enum, default_value_t = Serializer::Json)]
    serializer: Serializer,
    /// The realm to join.
    #[arg(long, default_value = "realm1")]
    realm: String,
    /// Only join and make one call: exit 0 if the server answers it rightly.
    #[arg(long)]
    probe: bool,
    /// A label for the output.
    #[arg(long, default_value = "")]
    label: String,
}

fn fail(e: &WampError) -> ! {
    eprintln!("wampgen: {e}");
    std::process::exit(match e {
        WampError::Refused { .. } => 2,
        _ => 1,
    })
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if args.probe {
            if let Err(e) = wamp::probe(&args.url, args.serializer, &args.realm).await {
                fail(&e);
            }
            return;
        }
        let opts = wamp::Options {
            url: args.url.clone(),
            conns: args.conns,
            inflight: args.inflight,
            warmup: Duration::from_secs_f64(args.warmup),
            seconds: Duration::from_secs_f64(args.seconds),
            serializer: args.serializer,
            realm: args.realm.clone(),
        };
        let begin = Instant::now();
        let cpu_start = wirecall_bench::cpu_time();
        let report = match wamp::run(&opts).await {
            Ok(r) => r,
            Err(e) => fail(&e),
        };
        let wall = begin.elapsed().as_secs_f64();
        let cpu = (wirecall_bench::cpu_time() - cpu_start).as_secs_f64();
        if let Some(first) = &report.first_error {
            eprintln!("wampgen: {} errors, the first: {first}", report.errors);
        }
        println!(
            r#"{{"label":"{}","conns":{},"inflight":{},"method":"add","protocol":"wamp","serializer":"{}","rps":{:.0},"p50_us":{},"p99_us":{},"errors":{},"generator_cpu":{:.2}}}"#,
            args.label,
            args.conns,
            args.inflight,
            args.serializer.name(),
            report.calls as f64 / args.seconds,
            report.hist.value_at_quantile(0.5),
            report.hist.value_at_quantile(0.99),
            report.errors,
            cpu / wall
        );
    });
}
