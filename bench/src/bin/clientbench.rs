//! The client side: K concurrent `add` calls in a loop through wirecall's generated
//! client or jsonrpsee's WebSocket client, against any server (the script uses the
//! minimal responder). Prints one JSON object.
//!
//! ```text
//! clientbench --client wirecall --url ws://127.0.0.1:9000 --inflight 64 --seconds 5
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// `wirecall` or `jsonrpsee`.
    #[arg(long)]
    client: String,
    /// The server's URL.
    #[arg(long)]
    url: String,
    /// Calls in flight.
    #[arg(long, default_value_t = 64)]
    inflight: usize,
    /// Measured seconds (after one second of warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let counted = Arc::new(AtomicU64::new(0));
        let start = Instant::now() + Duration::from_secs(1);
        let end = start + Duration::from_secs_f64(args.seconds);
        let cpu0 = wirecall_bench::cpu_time();
        let begin = Instant::now();
        let mut tasks = Vec::new();
        match args.client.as_str() {
            "wirecall" => {
                let client = wirecall::Client::connect(&args.url).await.expect("connect");
                let calc = wirecall_examples::calculator::CalculatorClient::new(client);
                for _ in 0..args.inflight {
                    let (calc, counted) = (calc.clone(), counted.clone());
                    tasks.push(tokio::spawn(async move {
                        while Instant::now() < end {
                            assert_eq!(calc.add(1, 2).await.expect("add"), 3);
                            if Instant::now() >= start {
                                counted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }));
                }
            }
            _ => {
                use jsonrpsee::core::client::ClientT;
                let client = Arc::new(
                    jsonrpsee::ws_client::WsClientBuilder::default()
                        .max_concurrent_requests(args.inflight * 2)
                        .build(&args.url)
                        .await
                        .expect("connect"),
                );
                for _ in 0..args.inflight {
                    let (client, counted) = (client.clone(), counted.clone());
                    tasks.push(tokio::spawn(async move {
                        while Instant::now() < end {
                            let mut p = jsonrpsee::core::params::ObjectParams::new();
                            p.insert("a", 1).expect("param");
                            p.insert("b", 2).expect("param");
                            let r: i64 = client.request("Calculator.add", p).await.expect("add");
                            assert_eq!(r, 3);
                            if Instant::now() >= start {
                                counted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }));
                }
            }
        }
        for t in tasks {
            t.await.expect("task");
        }
        let wall = begin.elapsed().as_secs_f64();
        let cpu = (wirecall_bench::cpu_time() - cpu0).as_secs_f64();
        println!(
            r#"{{"client":"{}","inflight":{},"rps":{:.0},"client_cpu":{:.2}}}"#,
            args.client,
            args.inflight,
            counted.load(Ordering::Relaxed) as f64 / args.seconds,
            cpu / wall
        );
    });
}
