//! JSON-RPC 2.0 as MCP uses it: classifying incoming messages and building
//! responses and errors.

use serde_json::{json, Map, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Transport-level error codes of the MCP SDKs (not in JSON-RPC itself).
pub const SERVER_ERROR: i64 = -32000;
pub const SESSION_NOT_FOUND: i64 = -32001;

/// One message a client sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Expects a response with the same `id`.
    Request { id: Value, method: String, params: Value },
    /// Expects nothing back.
    Notification { method: String, params: Value },
    /// A client's answer to a server request; this server sends none, so it is ignored.
    Response,
}

/// A JSON-RPC error about to be sent, with the `id` it answers (`null` when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub id: Value,
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(id: Value, code: i64, message: impl Into<String>) -> Self {
        Self { id, code, message: message.into() }
    }
    pub fn to_json(&self) -> Value {
        error(&self.id, self.code, &self.message)
    }
}

impl Incoming {
    pub fn method(&self) -> Option<&str> {
        match self {
            Incoming::Request { method, .. } | Incoming::Notification { method, .. } => Some(method),
            Incoming::Response => None,
        }
    }
    pub fn is_request(&self) -> bool {
        matches!(self, Incoming::Request { .. })
    }
}

/// Classifies one message. An invalid one yields the `-32600` error to answer
/// it with (carrying its `id` when that much could be read).
pub fn classify(message: &Value) -> Result<Incoming, RpcError> {
    let Some(obj) = message.as_object() else {
        return Err(invalid(Value::Null, "a JSON-RPC message must be an object"));
    };
    let id = obj.get("id").cloned();
    let id_for_error = id.clone().filter(valid_id).unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(id_for_error, "\"jsonrpc\" must be \"2.0\""));
    }
    if let Some(method) = obj.get("method") {
        let Some(method) = method.as_str() else {
            return Err(invalid(id_for_error, "\"method\" must be a string"));
        };
        let params = obj.get("params").cloned().unwrap_or(Value::Null);
        if !(params.is_null() || params.is_object() || params.is_array()) {
            return Err(invalid(id_for_error, "\"params\" must be an object"));
        }
        return match id {
            None => Ok(Incoming::Notification { method: method.to_owned(), params }),
            // MCP forbids null ids; other types are not ids at all.
            Some(id) if valid_id(&id) => Ok(Incoming::Request { id, method: method.to_owned(), params }),
            Some(_) => Err(invalid(Value::Null, "\"id\" must be a string or an integer")),
        };
    }
    if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) {
        return Ok(Incoming::Response);
    }
    Err(invalid(id_for_error, "not a request, notification or response"))
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

fn invalid(id: Value, why: &str) -> RpcError {
    RpcError::new(id, INVALID_REQUEST, format!("Invalid Request: {why}"))
}

/// A successful response.
pub fn result(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// An error response.
pub fn error(id: &Value, code: i64, message: &str) -> Value {
    let mut err = Map::new();
    err.insert("code".into(), code.into());
    err.insert("message".into(), message.into());
    json!({ "jsonrpc": "2.0", "id": id, "error": err })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_classifies_requests_notifications_and_responses() {
        let r = classify(&json!({"jsonrpc":"2.0","id":7,"method":"ping"})).unwrap();
        assert_eq!(r, Incoming::Request { id: json!(7), method: "ping".into(), params: Value::Null });
        let n = classify(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})).unwrap();
        assert!(matches!(n, Incoming::Notification { ref method, .. } if method == "notifications/initialized"));
        let s = classify(&json!({"jsonrpc":"2.0","id":"a","result":{}})).unwrap();
        assert_eq!(s, Incoming::Response);
        assert!(classify(&json!({"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"x"}})).is_ok());
    }

    #[test]
    fn mcp_rejects_malformed_messages_with_invalid_request() {
        for bad in [
            json!([1]),
            json!("ping"),
            json!({"id":1,"method":"ping"}),
            json!({"jsonrpc":"1.0","id":1,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":1,"method":5}),
            json!({"jsonrpc":"2.0","id":null,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":1.5,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}),
            json!({"jsonrpc":"2.0","id":1}),
        ] {
            let e = classify(&bad).unwrap_err();
            assert_eq!(e.code, INVALID_REQUEST, "{bad}");
        }
        // The id is echoed when it could be read, so the client can match the error.
        assert_eq!(classify(&json!({"jsonrpc":"1.0","id":"x","method":"ping"})).unwrap_err().id, json!("x"));
    }

    #[test]
    fn mcp_builds_responses_and_errors() {
        assert_eq!(result(&json!(1), json!({})), json!({"jsonrpc":"2.0","id":1,"result":{}}));
        assert_eq!(
            error(&Value::Null, PARSE_ERROR, "Parse error"),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}})
        );
    }
}
