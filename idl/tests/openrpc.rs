//! The OpenRPC documents validate against the OpenRPC meta-schema, and describe the
//! calculator as the wire does.
//!
//! `tests/openrpc/openrpc-meta-schema-1.14.9.json` is the schema of the npm package
//! `@open-rpc/meta-schema` 1.14.9 (Apache-2.0), exported as JSON; it refers to the JSON
//! Schema meta-schema of `@json-schema-tools/meta-schema` 1.8.0 (Apache-2.0), beside it.

use serde_json::{json, Value};

fn meta_schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string("tests/openrpc/openrpc-meta-schema-1.14.9.json").unwrap();
    let mut schema: Value = serde_json::from_str(&text).unwrap();
    // Its `$schema` names a draft-7 dialect by a URL the validator does not know.
    schema.as_object_mut().unwrap().remove("$schema");
    let tools: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/openrpc/json-schema-tools-meta-schema-1.8.0.json").unwrap(),
    )
    .unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .with_retriever(Local(tools))
        .build(&schema)
        .unwrap()
}

/// Serves the JSON Schema meta-schema from the file: the tests use no network.
struct Local(Value);

impl jsonschema::Retrieve for Local {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        if uri.as_str().starts_with("https://meta.json-schema.tools") {
            Ok(self.0.clone())
        } else {
            Err(format!("no local copy of {uri}").into())
        }
    }
}

fn document(path: &str) -> Value {
    let loaded = wirecall_idl::load(path).unwrap();
    wirecall_idl::openrpc::document(&loaded.schema, "test", "1.0.0")
}

#[test]
fn documents_validate_against_the_openrpc_schema() {
    let validator = meta_schema();
    for path in [
        "../examples/idl/calculator.wire",
        "../examples/idl/chat.wire",
        "tests/golden/everything.wire",
    ] {
        let doc = document(path);
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{path}:\n{}", errors.join("\n"));
    }
    // The validator does reject a broken document.
    let mut broken = document("../examples/idl/calculator.wire");
    broken["methods"][0]["params"] = json!("nope");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn a_topic_as_openrpc() {
    let doc = document("../examples/idl/chat.wire");
    let room = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "Chat.room")
        .expect("the topic is listed");
    assert_eq!(
        room["x-topic"],
        json!({"key": ["room"], "since": "$since", "publishable": true})
    );
    assert_eq!(
        room["x-subscription"]["unsubscribe"],
        "Chat.room.unsubscribe"
    );
    assert_eq!(
        room["x-subscription"]["item"],
        json!({"$ref": "#/components/schemas/Message"})
    );
}

#[test]
fn the_calculator_as_openrpc() {
    let doc = document("../examples/idl/calculator.wire");
    assert_eq!(doc["openrpc"], "1.3.2");
    let methods = doc["methods"].as_array().unwrap();
    let by_name = |n: &str| {
        methods
            .iter()
            .find(|m| m["name"] == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    let add = by_name("Calculator.add");
    assert_eq!(
        add["params"][0],
        json!({"name": "a", "required": true, "schema": {"type": "integer", "format": "int64"}})
    );
    assert_eq!(
        add["result"]["schema"],
        json!({"type": "integer", "format": "int64"})
    );
    assert_eq!(
        by_name("Calculator.divide")["errors"],
        json!([{"code": 1001, "message": "DivideByZero"}])
    );
    assert_eq!(by_name("Calculator.stats")["x-idempotent"], true);
    assert_eq!(
        by_name("Calculator.stats")["result"]["schema"],
        json!({"$ref": "#/components/schemas/Stats"})
    );
    assert!(
        by_name("Calculator.log").get("result").is_none(),
        "a notification has no result"
    );
    assert_eq!(
        by_name("Calculator.ticks")["x-subscription"]["unsubscribe"],
        "Calculator.ticks.unsubscribe"
    );
    assert_eq!(
        by_name("Calculator.confirm")["x-direction"],
        "server-to-client"
    );
    assert_eq!(
        doc["components"]["schemas"]["Stats"]["required"],
        json!(["calls"])
    );
}
