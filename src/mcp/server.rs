//! The MCP methods this server answers: `initialize`, `ping`, `tools/list`,
//! `tools/call`, and the notifications it takes note of.

use super::jsonrpc::{self, Incoming};
use super::tools::{self, ToolCall};
use super::version;
use serde_json::{json, Value};

pub const INSTRUCTIONS: &str = "Manages the signed-in user's Todo list in the Todo API, on behalf of the user who \
signed in with PingOne. Call get_my_todo_list to see the todos and their IDs; create_new_todo adds one; \
toggle_todo_status and deleteTodo take an ID from that list. who_am_I shows which user and scopes the session has.";

/// What the session learns from a valid `initialize`.
#[derive(Debug, Clone, PartialEq)]
pub struct Init {
    pub version: &'static str,
    pub client_info: Value,
    pub client_capabilities: Value,
}

/// Validates `initialize` params and negotiates the version.
pub fn initialize(params: &Value) -> Result<Init, String> {
    let Some(requested) = params.get("protocolVersion").and_then(Value::as_str) else {
        return Err("Invalid params: initialize needs a string \"protocolVersion\"".into());
    };
    Ok(Init {
        version: version::negotiate(requested),
        client_info: params.get("clientInfo").cloned().unwrap_or(Value::Null),
        client_capabilities: params.get("capabilities").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The `initialize` result for a negotiated version.
pub fn initialize_result(version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": {
            "name": crate::SERVER_NAME,
            "title": "OIDC MCP Server secured with PingOne",
            "version": crate::SERVER_VERSION,
        },
        "instructions": INSTRUCTIONS,
    })
}

/// What one message asks of an existing session.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Answer at once with this JSON-RPC response.
    Answer(Value),
    /// Run a tool; the answer comes later.
    Call(ToolCall),
    /// `initialize` (valid only while the session is not yet initialized).
    Initialize { id: Value, params: Value },
    /// `notifications/initialized`.
    Initialized,
    /// Nothing to do (other notifications, client responses).
    Ignore,
}

pub fn dispatch(message: Incoming) -> Step {
    let (id, method, params) = match message {
        Incoming::Request { id, method, params } => (id, method, params),
        Incoming::Notification { method, .. } if method == "notifications/initialized" => return Step::Initialized,
        Incoming::Notification { .. } | Incoming::Response => return Step::Ignore,
    };
    match method.as_str() {
        "initialize" => Step::Initialize { id, params },
        "ping" => Step::Answer(jsonrpc::result(&id, json!({}))),
        "tools/list" => {
            // Everything fits one page, so no cursor can be valid.
            if params.get("cursor").is_some_and(|c| !c.is_null()) {
                Step::Answer(jsonrpc::error(&id, jsonrpc::INVALID_PARAMS, "Invalid params: unknown cursor"))
            } else {
                Step::Answer(jsonrpc::result(&id, tools::list()))
            }
        }
        "tools/call" => match tool_call(id, &params) {
            Ok(call) => Step::Call(call),
            Err(reply) => Step::Answer(reply),
        },
        other => Step::Answer(jsonrpc::error(
            &id,
            jsonrpc::METHOD_NOT_FOUND,
            &format!("Method not found: {}", other.chars().take(100).collect::<String>()),
        )),
    }
}

/// A valid `tools/call` of a known tool, or the JSON-RPC error answering it.
pub fn tool_call(id: Value, params: &Value) -> Result<ToolCall, Value> {
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Err(invalid_params(&id, "tools/call needs a string \"name\""));
    };
    if !tools::is_known(name) {
        return Err(invalid_params(&id, &format!("Unknown tool: {name}")));
    }
    let arguments = params.get("arguments").cloned().unwrap_or_else(|| json!({}));
    if !arguments.is_object() {
        return Err(invalid_params(&id, "\"arguments\" must be an object"));
    }
    Ok(ToolCall { id, name: name.to_owned(), arguments })
}

fn invalid_params(id: &Value, why: &str) -> Value {
    let message = if why.starts_with("Unknown tool") { why.to_owned() } else { format!("Invalid params: {why}") };
    jsonrpc::error(id, jsonrpc::INVALID_PARAMS, &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, params: Value) -> Incoming {
        Incoming::Request { id: json!(1), method: method.into(), params }
    }

    fn error_code(step: Step) -> i64 {
        match step {
            Step::Answer(v) => v["error"]["code"].as_i64().unwrap(),
            other => panic!("not an answer: {other:?}"),
        }
    }

    #[test]
    fn mcp_initialize_negotiates_and_describes_the_server() {
        let init =
            initialize(&json!({"protocolVersion":"2025-06-18","clientInfo":{"name":"c","version":"1"}})).unwrap();
        assert_eq!(init.version, "2025-06-18");
        assert_eq!(init.client_info["name"], "c");
        assert_eq!(initialize(&json!({"protocolVersion":"1999-01-01"})).unwrap().version, version::LATEST);
        assert!(initialize(&json!({})).is_err());
        assert!(initialize(&json!({"protocolVersion": 3})).is_err());

        let r = initialize_result("2025-03-26");
        assert_eq!(r["protocolVersion"], "2025-03-26");
        assert_eq!(r["serverInfo"]["name"], crate::SERVER_NAME);
        assert_eq!(r["serverInfo"]["version"], crate::SERVER_VERSION);
        assert!(r["capabilities"]["tools"].is_object());
        assert!(r["instructions"].as_str().unwrap().contains("get_my_todo_list"));
    }

    #[test]
    fn mcp_ping_and_unknown_methods() {
        assert_eq!(dispatch(req("ping", Value::Null)), Step::Answer(json!({"jsonrpc":"2.0","id":1,"result":{}})));
        assert_eq!(error_code(dispatch(req("resources/list", Value::Null))), jsonrpc::METHOD_NOT_FOUND);
        assert_eq!(
            dispatch(Incoming::Notification { method: "notifications/initialized".into(), params: Value::Null }),
            Step::Initialized
        );
        assert_eq!(
            dispatch(Incoming::Notification { method: "notifications/cancelled".into(), params: Value::Null }),
            Step::Ignore
        );
        assert_eq!(dispatch(Incoming::Response), Step::Ignore);
    }

    #[test]
    fn mcp_tools_list_has_the_original_tools_with_valid_names() {
        let Step::Answer(v) = dispatch(req("tools/list", json!({}))) else { panic!() };
        let tools = v["result"]["tools"].as_array().unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["who_am_I", "get_my_todo_list", "create_new_todo", "toggle_todo_status", "deleteTodo"]);
        for t in tools {
            let name = t["name"].as_str().unwrap();
            assert!(name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
            assert!(!t["description"].as_str().unwrap().is_empty());
            assert_eq!(t["inputSchema"]["type"], "object");
        }
        assert_eq!(tools[2]["inputSchema"]["required"], json!(["text"]));
        assert_eq!(tools[3]["inputSchema"]["properties"]["completed"]["type"], "boolean");
        assert_eq!(tools[4]["inputSchema"]["required"], json!(["todoId"]));
        assert_eq!(error_code(dispatch(req("tools/list", json!({"cursor": "abc"})))), jsonrpc::INVALID_PARAMS);
    }

    #[test]
    fn mcp_tools_call_validates_the_envelope() {
        assert_eq!(error_code(dispatch(req("tools/call", json!({})))), jsonrpc::INVALID_PARAMS);
        assert_eq!(error_code(dispatch(req("tools/call", json!({"name": "nope"})))), jsonrpc::INVALID_PARAMS);
        assert_eq!(
            error_code(dispatch(req("tools/call", json!({"name": "deleteTodo", "arguments": [1]})))),
            jsonrpc::INVALID_PARAMS
        );
        assert_eq!(
            dispatch(req("tools/call", json!({"name": "get_my_todo_list"}))),
            Step::Call(ToolCall { id: json!(1), name: "get_my_todo_list".into(), arguments: json!({}) })
        );
    }
}
