//! A tool's arguments: the JSON Schema it advertises and the one-line parse
//! of each argument. A parse error is the text the tool answers with (the
//! `?` in a handler turns it into an `isError` result), written so the model
//! can fix its call: `Invalid arguments: "text" is required.`

use serde_json::{json, Value};

/// The input schema of a tool that takes no arguments.
pub fn none() -> Value {
    json!({ "type": "object", "properties": {} })
}

/// The input schema of a tool taking `properties` (a JSON object of JSON
/// Schemas), of which `required` must be there; no others are allowed.
pub fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

/// A required, non-blank string argument.
pub fn string(args: &Value, name: &str) -> Result<String, String> {
    match args.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(format!("Invalid arguments: \"{name}\" must not be empty.")),
        Some(_) => Err(format!("Invalid arguments: \"{name}\" must be a string.")),
        None => Err(format!("Invalid arguments: \"{name}\" is required.")),
    }
}

/// A required boolean argument.
pub fn boolean(args: &Value, name: &str) -> Result<bool, String> {
    match args.get(name) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("Invalid arguments: \"{name}\" must be true or false.")),
        None => Err(format!("Invalid arguments: \"{name}\" is required.")),
    }
}
