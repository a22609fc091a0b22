//! Generates the calculator's client and server from `idl/calculator.wire`.

fn main() -> Result<(), wirecall_idl::BuildError> {
    wirecall_idl::configure()
        .client(true)
        .server(true)
        .compile(&["idl/calculator.wire"])
}
