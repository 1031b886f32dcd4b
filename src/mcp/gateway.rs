//! The Worker's half of the MCP endpoints, run after the bearer token was
//! verified: the HTTP rules of both transports, decided without waking a
//! Durable Object, and the envelope for the session's object.

#![allow(clippy::result_large_err)] // see `Refusal`

use super::caller::{Caller, Props};
use super::envelope::{Envelope, Op};
use super::http_rules::{self as rules, Responder, MAX_MESSAGE_BYTES, SESSION_HEADER, VERSION_HEADER};
use super::jsonrpc::{self, Incoming};
use super::stateless;
use super::tools::ToolCall;
use super::version;
use http::header::{HeaderValue, ALLOW};
use http::{Method, Request, Response, StatusCode};
use serde_json::Value;

/// Paths the MCP server owns (the Worker sends them here after auth): the
/// paths the authorization server's resource registry protects on this
/// origin (by default `/mcp` and its legacy-transport alias `/sse`, and
/// below). Of those, [`route`] serves `/mcp`, `/sse` and `/sse/message`.
pub fn owns(config: &crate::oauth::Config, path: &str) -> bool {
    config.is_protected_path(path)
}

/// What to do with a request.
#[derive(Debug)]
pub enum Route {
    /// Send `envelope` to the Durable Object named `object`, return its answer.
    Forward { object: String, envelope: Envelope },
    /// Answer directly.
    Respond(Response<Vec<u8>>),
    /// The message calls tools the token's scopes do not cover: the Worker
    /// answers 403 `insufficient_scope` naming `scopes` (the token's own and
    /// the missing ones, so a step-up keeps what it had), nothing runs.
    InsufficientScope { scopes: Vec<String>, missing: Vec<&'static str> },
    /// A modern-era `tools/call`: run it in the Worker for `caller`, then
    /// answer with [`stateless::tool_answer`] (no session object).
    Stateless { call: ToolCall, caller: Caller, origin: Option<String>, sse: bool },
}

/// What `/mcp` asks for: a session-era message for its session's object, or
/// a modern request, served without one.
enum Streamable {
    Session(Envelope),
    Stateless(stateless::Plan, bool),
}

/// Durable Object name of a session (one object per session and transport).
pub fn object_name(op: Op, session_id: &str) -> String {
    match op {
        Op::SseOpen | Op::SseMessage => format!("sse:{session_id}"),
        Op::Post | Op::Delete => format!("streamable-http:{session_id}"),
    }
}

pub fn route(req: &Request<Vec<u8>>, caller: &Caller) -> Route {
    let origin = rules::header(req.headers(), "origin");
    let r = Responder::new(origin);
    if let Some(o) = origin {
        if !rules::origin_allowed(o, rules::own_origin(req.uri()).as_deref()) {
            return Route::Respond(r.rpc_error(
                StatusCode::FORBIDDEN,
                jsonrpc::SERVER_ERROR,
                "Forbidden: Origin not allowed",
            ));
        }
    }
    let caller = Caller { props: Props::trimmed(&caller.props), ..caller.clone() };
    let envelope = |op, session_id: String| Envelope::new(op, session_id, caller.clone(), origin.map(str::to_owned));
    let result = match req.uri().path() {
        "/mcp" => match streamable(req, &r, envelope) {
            Ok(Streamable::Session(env)) => Ok(env),
            Ok(Streamable::Stateless(plan, sse)) => return stateless_route(plan, caller, origin, sse),
            Err(res) => Err(res),
        },
        "/sse" => sse_open(req, &r, envelope),
        "/sse/message" => sse_message(req, &r, envelope),
        _ => Err(r.json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "not_found", "error_description": "No such MCP endpoint; use /mcp or /sse"}),
        )),
    };
    match result {
        Ok(envelope) => {
            let missing = super::tools::missing_scopes(&envelope.message, &caller.scopes);
            if missing.is_empty() {
                Route::Forward { object: object_name(envelope.op, &envelope.session_id), envelope }
            } else {
                let mut scopes = caller.scopes.clone();
                scopes.extend(missing.iter().map(|s| (*s).to_owned()));
                Route::InsufficientScope { scopes, missing }
            }
        }
        Err(res) => Route::Respond(res),
    }
}

/// A modern request's route: a tool call is checked against the token's
/// scopes exactly as in the session era.
fn stateless_route(plan: stateless::Plan, caller: Caller, origin: Option<&str>, sse: bool) -> Route {
    match plan {
        stateless::Plan::Respond(res) => Route::Respond(res),
        stateless::Plan::Call(call) => {
            let needed = call.name.as_str();
            let missing: Vec<&'static str> = super::tools::TOOLS
                .required_scope(needed)
                .filter(|s| !caller.scopes.iter().any(|g| g == s))
                .into_iter()
                .collect();
            if missing.is_empty() {
                Route::Stateless { call, caller, origin: origin.map(str::to_owned), sse }
            } else {
                let mut scopes = caller.scopes.clone();
                scopes.extend(missing.iter().map(|s| (*s).to_owned()));
                Route::InsufficientScope { scopes, missing }
            }
        }
    }
}

/// A finished answer that ends the request. Large, but built at most once per
/// request on a path that returns at once, so boxing it would buy nothing.
type Refusal = Response<Vec<u8>>;

fn bad_request(r: &Responder<'_>, code: i64, message: &str) -> Refusal {
    r.rpc_error(StatusCode::BAD_REQUEST, code, message)
}

fn method_not_allowed(r: &Responder<'_>, allow: &'static str, message: &str) -> Refusal {
    let mut res = r.rpc_error(StatusCode::METHOD_NOT_ALLOWED, jsonrpc::SERVER_ERROR, message);
    res.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    res
}

/// Content-Type, size and JSON checks every message POST passes.
fn read_body(req: &Request<Vec<u8>>, r: &Responder<'_>) -> Result<Value, Refusal> {
    if !rules::is_json_content(req.headers()) {
        return Err(r.rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            jsonrpc::SERVER_ERROR,
            "Unsupported Media Type: Content-Type must be application/json",
        ));
    }
    if req.body().len() > MAX_MESSAGE_BYTES {
        return Err(r.rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            jsonrpc::SERVER_ERROR,
            &format!("Payload Too Large: messages are limited to {MAX_MESSAGE_BYTES} bytes"),
        ));
    }
    serde_json::from_slice(req.body())
        .map_err(|_| bad_request(r, jsonrpc::PARSE_ERROR, "Parse error: the body is not valid JSON"))
}

fn is_initialize(v: &Value) -> bool {
    v.get("method").and_then(Value::as_str) == Some("initialize")
}

fn streamable(
    req: &Request<Vec<u8>>,
    r: &Responder<'_>,
    envelope: impl Fn(Op, String) -> Envelope,
) -> Result<Streamable, Refusal> {
    let session = rules::header(req.headers(), SESSION_HEADER);
    let protocol_version = rules::header(req.headers(), VERSION_HEADER);
    match *req.method() {
        Method::POST => {}
        Method::DELETE => {
            // Without a session there is nothing to end: 405, as the modern
            // revision answers DELETE, so neither era's client is misled.
            let Some(id) = session else {
                return Err(method_not_allowed(
                    r,
                    "POST",
                    "Method Not Allowed: DELETE ends a session named by Mcp-Session-Id",
                ));
            };
            if !rules::plausible_session_id(id) {
                return Err(r.session_not_found());
            }
            return Ok(Streamable::Session(envelope(Op::Delete, id.to_owned())));
        }
        // No server-initiated messages exist here, so there is no GET stream;
        // 405 (never 404) tells clients to go on without one.
        Method::GET => {
            return Err(method_not_allowed(r, "POST, DELETE", "Method Not Allowed: this server offers no GET stream"))
        }
        _ => return Err(method_not_allowed(r, "POST, DELETE", "Method Not Allowed")),
    }
    let accepts = rules::accepts(req.headers());
    if !accepts.json && !accepts.sse {
        return Err(r.rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            jsonrpc::SERVER_ERROR,
            "Not Acceptable: Accept must allow application/json or text/event-stream",
        ));
    }
    let message = read_body(req, r)?;
    if crate::mcp_request::is_modern(req.headers(), &message, &version::SUPPORTED) {
        // Stateless: Mcp-Session-Id and Last-Event-ID are ignored.
        let sse = stateless::wants_sse(accepts);
        return Ok(Streamable::Stateless(stateless::plan(req.headers(), &message, r, sse), sse));
    }
    if let Some(v) = protocol_version {
        if !version::is_supported(v) {
            return Err(bad_request(
                r,
                jsonrpc::SERVER_ERROR,
                &format!(
                    "Bad Request: unsupported MCP-Protocol-Version {:?} (supported: {})",
                    v.chars().take(40).collect::<String>(),
                    version::SUPPORTED.join(", ")
                ),
            ));
        }
    }
    let batch_has_initialize = message.as_array().is_some_and(|a| a.iter().any(is_initialize));
    if batch_has_initialize {
        return Err(bad_request(
            r,
            jsonrpc::INVALID_REQUEST,
            "Invalid Request: initialize must not be part of a batch",
        ));
    }
    let mut env = match session {
        None => {
            match jsonrpc::classify(&message) {
                Ok(Incoming::Request { method, .. }) if method == "initialize" => {}
                Err(e) if !message.is_array() => return Err(r.json(StatusCode::BAD_REQUEST, &e.to_json())),
                _ => {
                    return Err(bad_request(r, jsonrpc::SERVER_ERROR, "Bad Request: Mcp-Session-Id header is required"))
                }
            }
            let mut env = envelope(Op::Post, rules::new_session_id());
            env.new_session = true;
            env
        }
        Some(id) => {
            if is_initialize(&message) {
                return Err(bad_request(
                    r,
                    jsonrpc::INVALID_REQUEST,
                    "Invalid Request: initialize must be sent without Mcp-Session-Id",
                ));
            }
            if !rules::plausible_session_id(id) {
                return Err(r.session_not_found());
            }
            envelope(Op::Post, id.to_owned())
        }
    };
    // A short SSE stream when the client names it (as MCP clients do), else JSON.
    env.sse = accepts.sse_named || !accepts.json;
    env.protocol_version = protocol_version.map(str::to_owned);
    env.message = message;
    Ok(Streamable::Session(env))
}

fn query_param(req: &Request<Vec<u8>>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.uri().query()?.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn sse_open(
    req: &Request<Vec<u8>>,
    r: &Responder<'_>,
    envelope: impl Fn(Op, String) -> Envelope,
) -> Result<Envelope, Refusal> {
    if req.method() != Method::GET {
        return Err(method_not_allowed(r, "GET", "Method Not Allowed: open the stream with GET, post to /sse/message"));
    }
    if !rules::accepts(req.headers()).sse {
        return Err(r.rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            jsonrpc::SERVER_ERROR,
            "Not Acceptable: Accept must allow text/event-stream",
        ));
    }
    let (id, new_session) = match query_param(req, "sessionId") {
        Some(id) if rules::plausible_session_id(&id) => (id, false),
        Some(_) => return Err(r.session_not_found()),
        None => (rules::new_session_id(), true),
    };
    let mut env = envelope(Op::SseOpen, id);
    env.new_session = new_session;
    let encoded: String = url::form_urlencoded::byte_serialize(env.session_id.as_bytes()).collect();
    env.endpoint = Some(format!("/sse/message?sessionId={encoded}"));
    Ok(env)
}

fn sse_message(
    req: &Request<Vec<u8>>,
    r: &Responder<'_>,
    envelope: impl Fn(Op, String) -> Envelope,
) -> Result<Envelope, Refusal> {
    if req.method() != Method::POST {
        return Err(method_not_allowed(r, "POST", "Method Not Allowed"));
    }
    let Some(id) = query_param(req, "sessionId") else {
        return Err(bad_request(r, jsonrpc::SERVER_ERROR, "Bad Request: the sessionId query parameter is required"));
    };
    if !rules::plausible_session_id(&id) {
        return Err(r.session_not_found());
    }
    let message = read_body(req, r)?;
    let mut env = envelope(Op::SseMessage, id);
    env.sse = true;
    env.message = message;
    Ok(env)
}
