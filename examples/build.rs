//! Generates the examples' clients and servers from their `.wire` files.

fn main() -> Result<(), wirecall_idl::BuildError> {
    wirecall_idl::configure()
        .client(true)
        .server(true)
        .openrpc(true)
        .compile(&["idl/calculator.wire", "idl/chat.wire"])
}
