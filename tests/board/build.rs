//! Generates the board's code with the options a real application uses: derives and serde
//! attributes of its own, and its own `Money` type for the IDL's `Money`.

fn main() {
    wirecall_idl::configure()
        .type_attribute("Priority", "#[derive(Default)]")
        .field_attribute("Priority.Normal", "#[default]")
        .type_attribute("Card", "#[serde(deny_unknown_fields)]")
        .field_attribute("Card.tags", "#[serde(default)]")
        .extern_path("Money", "crate::money::Money")
        .compile(&["board.wire"])
        .unwrap_or_else(|e| panic!("{e}"));
}
