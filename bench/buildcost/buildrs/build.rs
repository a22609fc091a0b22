fn main() {
    wirecall_idl::configure().compile(&["calc.wire"]).unwrap();
}
