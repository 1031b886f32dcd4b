//! The modern era (MCP 2026-07-28) of `/mcp`: every request stands alone,
//! carrying its version and client capabilities in `_meta`, so nothing is
//! kept between requests and no session object is woken. `server/discover`
//! and `tools/list` are answered from constants; `tools/call` runs in the
//! Worker itself, straight to the Todo API with the PingOne token the grant's
//! props hold (the caller is the bearer token's, as in the session era).
//!
//! Requests of the session era (`initialize`, a session's messages, legacy
//! `/sse`) never come here: [`super::gateway`] tells the eras apart per request
//! with [`crate::mcp_request::is_modern`].

use super::http_rules::{Accepts, Responder};
use super::jsonrpc::{self, Incoming};
use super::server::INSTRUCTIONS;
use super::tools::{self, ToolCall};
use super::version;
use crate::mcp_request::{self as modern, MODERN_VERSION};
use http::{HeaderMap, Response, StatusCode};
use serde_json::{json, Value};

/// Versions a modern request may name, newest first: the modern revision.
/// `UnsupportedProtocolVersion` also lists the session era's, which a client
/// reaches through `initialize`.
pub const MODERN: [&str; 1] = [MODERN_VERSION];

/// How long clients and shared caches may keep `server/discover` and
/// `tools/list`: both change only with a deployment, and neither depends on
/// who asks (every tool is listed to everyone; scopes are enforced per call),
/// so `cacheScope` is `public`.
pub const LIST_TTL_MS: u64 = 5 * 60 * 1000;

/// What a modern request needs after the checks.
#[derive(Debug)]
pub enum Plan {
    /// Answer with this response.
    Respond(Response<Vec<u8>>),
    /// Run this tool, then answer with [`tool_answer`].
    Call(ToolCall),
}

/// Every version a client can use here, for `UnsupportedProtocolVersion` and
/// `server/discover`: the modern one, then the session era's.
pub fn supported_versions() -> Vec<&'static str> {
    MODERN.iter().chain(version::SUPPORTED.iter()).copied().collect()
}

/// `result` as the revision wants every result: `resultType` and the
/// server's identity in `_meta`.
pub fn complete(mut result: Value) -> Value {
    if let Some(obj) = result.as_object_mut() {
        obj.insert("resultType".into(), json!("complete"));
        let meta = obj.entry("_meta").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(
                modern::META_SERVER_INFO.into(),
                json!({ "name": crate::SERVER_NAME, "version": crate::SERVER_VERSION }),
            );
        }
    }
    result
}

fn cacheable(mut result: Value) -> Value {
    result["ttlMs"] = json!(LIST_TTL_MS);
    result["cacheScope"] = json!("public");
    complete(result)
}

/// The `server/discover` result.
pub fn discover_result() -> Value {
    cacheable(json!({
        "supportedVersions": supported_versions(),
        "capabilities": { "tools": {} },
        "instructions": INSTRUCTIONS,
    }))
}

fn answer(r: &Responder<'_>, sse: bool, message: &Value) -> Response<Vec<u8>> {
    if sse {
        // A client that takes only event streams gets the answer as one event.
        r.bytes(StatusCode::OK, Some("text/event-stream"), super::sse::message_frame(message))
    } else {
        r.json(StatusCode::OK, message)
    }
}

/// Whether answers go as an event stream: only for a client that cannot take JSON.
pub fn wants_sse(accepts: Accepts) -> bool {
    !accepts.json
}

/// Checks a modern request and decides what it needs. `message` is the parsed
/// body, already known to be of the modern era.
pub fn plan(headers: &HeaderMap, message: &Value, r: &Responder<'_>, sse: bool) -> Plan {
    let refuse = |status: StatusCode, reply: Value| Plan::Respond(r.json(status, &reply));
    let incoming = match jsonrpc::classify(message) {
        Ok(m) => m,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_json()),
    };
    let id = match &incoming {
        Incoming::Request { id, .. } => id.clone(),
        _ => Value::Null,
    };
    // Only the modern revision is served statelessly; the refusal names every
    // version, the session era's too (reached through `initialize`).
    if let Err(mut refusal) = modern::check(headers, message, &MODERN) {
        if let Some(data) = refusal.data.as_mut().filter(|_| refusal.code == modern::UNSUPPORTED_PROTOCOL_VERSION) {
            data["supported"] = json!(supported_versions());
        }
        return refuse(StatusCode::BAD_REQUEST, refusal.to_json(&id));
    }
    let (method, params) = match incoming {
        Incoming::Request { method, params, .. } => (method, params),
        // This revision defines no client notifications over HTTP; taken and ignored.
        Incoming::Notification { .. } | Incoming::Response => {
            return Plan::Respond(r.empty(StatusCode::ACCEPTED));
        }
    };
    match method.as_str() {
        "server/discover" => Plan::Respond(answer(r, sse, &jsonrpc::result(&id, discover_result()))),
        "tools/list" => {
            if params.get("cursor").is_some_and(|c| !c.is_null()) {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    jsonrpc::error(&id, jsonrpc::INVALID_PARAMS, "Invalid params: unknown cursor"),
                );
            }
            Plan::Respond(answer(r, sse, &jsonrpc::result(&id, cacheable(tools::list()))))
        }
        "tools/call" => match super::server::tool_call(id.clone(), &params) {
            Ok(call) => Plan::Call(call),
            Err(reply) => Plan::Respond(answer(r, sse, &reply)),
        },
        // Removed by this revision (ping, logging/setLevel), or not offered here
        // (subscriptions/listen: no list changes are announced): 404 + -32601.
        other => refuse(
            StatusCode::NOT_FOUND,
            jsonrpc::error(
                &id,
                jsonrpc::METHOD_NOT_FOUND,
                &format!("Method not found: {}", other.chars().take(100).collect::<String>()),
            ),
        ),
    }
}

/// The answer to a `tools/call` once its tool ran (`None`: no such tool).
pub fn tool_answer(r: &Responder<'_>, sse: bool, call: &ToolCall, result: Option<Value>) -> Response<Vec<u8>> {
    let reply = match result {
        Some(result) => jsonrpc::result(&call.id, complete(result)),
        None => jsonrpc::error(&call.id, jsonrpc::INVALID_PARAMS, &format!("Unknown tool: {}", call.name)),
    };
    answer(r, sse, &reply)
}
