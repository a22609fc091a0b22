//! Writes a test CA and a server certificate for `localhost`/`127.0.0.1` (rcgen) as
//! `ca.pem`, `cert.pem` and `key.pem` into the directory given: for the TypeScript client's
//! TLS test in Node.js (`tests/browser/run.sh` passes `ca.pem` as `NODE_EXTRA_CA_CERTS`).
//!
//! ```text
//! cargo run -p wirecall-tests --example make_certs -- DIR
//! ```

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: make_certs DIR");
        std::process::exit(2);
    };
    wirecall_tests::tls::Certs::write_to(std::path::Path::new(&dir));
}
