//! `bench-server IMPL ADDR`: serve the calculator's `add` and `echo` with one of the
//! implementations under test, on one thread, until killed.

use clap::Parser;
use wirecall_bench::Impl;

#[derive(Parser)]
struct Args {
    /// Which server.
    #[arg(value_enum)]
    imp: Impl,
    /// Address to listen on.
    #[arg(default_value = "127.0.0.1:0")]
    addr: String,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(wirecall_bench::serve(args.imp, &args.addr, |addr| {
        println!("listening on ws://{addr}");
    }))
}
