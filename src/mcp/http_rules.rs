//! HTTP rules shared by both MCP transports: content negotiation, the Origin
//! allowlist, session ids, and building every response the MCP endpoints send
//! (always with CORS and, once known, `Mcp-Session-Id`).

use super::jsonrpc;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};
use serde_json::Value;

/// Largest message body accepted (MCP messages from clients are small).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
pub const SESSION_HEADER: &str = "mcp-session-id";
pub const VERSION_HEADER: &str = "mcp-protocol-version";
const SESSION_ID_LEN: usize = 43; // 258 random bits

/// What a request's `Accept` header allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepts {
    pub json: bool,
    pub sse: bool,
    /// `text/event-stream` is named explicitly (not only through a wildcard).
    pub sse_named: bool,
}

/// Reads `Accept` leniently: an absent header allows everything; `q` values are
/// ignored because real clients and proxies send odd combinations.
pub fn accepts(headers: &HeaderMap) -> Accepts {
    let mut a = Accepts { json: false, sse: false, sse_named: false };
    let values: Vec<&str> = headers.get_all(http::header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect();
    if values.is_empty() {
        return Accepts { json: true, sse: true, sse_named: false };
    }
    for range in values.iter().flat_map(|v| v.split(',')) {
        let media = range.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match media.as_str() {
            "*/*" => {
                a.json = true;
                a.sse = true;
            }
            "application/*" | "application/json" => a.json = true,
            "text/*" => a.sse = true,
            "text/event-stream" => {
                a.sse = true;
                a.sse_named = true;
            }
            _ => {}
        }
    }
    a
}

/// `Content-Type: application/json`, parameters (charset) allowed.
pub fn is_json_content(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false)
}

pub use crate::util::origin::{origin_allowed, own_origin};

/// A fresh, unguessable session id (visible ASCII, as the spec requires).
pub fn new_session_id() -> String {
    crate::util::crypto::random_token(SESSION_ID_LEN)
}

/// Ids we could have issued: anything else cannot name a session.
pub fn plausible_session_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Adds CORS headers for `origin`: the authorization server's policy, so
/// every endpoint answers browsers alike.
pub fn apply_cors(origin: Option<&str>, headers: &mut HeaderMap) {
    crate::oauth::cors::apply(origin, headers);
}

/// The answer to a preflight of the MCP endpoints: the authorization
/// server's policy, plus the `Mcp-Param-*` headers the browser asks for (a
/// tool's `x-mcp-header` arguments, whose names no fixed list can know).
pub fn preflight(headers: &HeaderMap) -> Response<Vec<u8>> {
    let mut res = crate::oauth::cors::preflight(header(headers, "origin"));
    let params: Vec<&str> = header(headers, "access-control-request-headers")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|h| h.len() <= 128 && h.to_ascii_lowercase().starts_with(crate::mcp_request::PARAM_HEADER_PREFIX))
        .filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .collect();
    if !params.is_empty() {
        let allowed = format!("{}, {}", crate::oauth::cors::ALLOW_HEADERS, params.join(", "));
        if let Ok(v) = HeaderValue::from_str(&allowed) {
            res.headers_mut().insert("access-control-allow-headers", v);
        }
    }
    res
}

/// Builds the responses of one MCP request: every one carries CORS headers and,
/// when the session is known, its id.
#[derive(Debug, Clone, Copy)]
pub struct Responder<'a> {
    pub origin: Option<&'a str>,
    pub session_id: Option<&'a str>,
}

impl<'a> Responder<'a> {
    pub fn new(origin: Option<&'a str>) -> Self {
        Self { origin, session_id: None }
    }
    pub fn with_session(self, session_id: &'a str) -> Self {
        Self { session_id: Some(session_id), ..self }
    }

    pub fn bytes(&self, status: StatusCode, content_type: Option<&'static str>, body: Vec<u8>) -> Response<Vec<u8>> {
        let mut res = Response::new(body);
        *res.status_mut() = status;
        let h = res.headers_mut();
        if let Some(ct) = content_type {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        if let Some(id) = self.session_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            h.insert(SESSION_HEADER, id);
        }
        apply_cors(self.origin, h);
        res
    }

    pub fn json(&self, status: StatusCode, body: &Value) -> Response<Vec<u8>> {
        self.bytes(status, Some("application/json"), body.to_string().into_bytes())
    }

    /// A JSON-RPC error that is not the answer to a particular request.
    pub fn rpc_error(&self, status: StatusCode, code: i64, message: &str) -> Response<Vec<u8>> {
        self.json(status, &jsonrpc::error(&Value::Null, code, message))
    }

    pub fn empty(&self, status: StatusCode) -> Response<Vec<u8>> {
        self.bytes(status, None, Vec::new())
    }

    /// The 404 clients take as "start a new session".
    pub fn session_not_found(&self) -> Response<Vec<u8>> {
        Responder { session_id: None, ..*self }.rpc_error(
            StatusCode::NOT_FOUND,
            jsonrpc::SESSION_NOT_FOUND,
            "Session not found: it expired, was deleted or belongs to someone else. Start a new session with initialize.",
        )
    }

    pub fn internal_error(&self) -> Response<Vec<u8>> {
        self.rpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            jsonrpc::INTERNAL_ERROR,
            "Internal error: the session could not be read or saved; try again.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(accept: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(http::header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        m
    }

    #[test]
    fn mcp_accept_is_lenient() {
        assert_eq!(accepts(&HeaderMap::new()), Accepts { json: true, sse: true, sse_named: false });
        let both = accepts(&h("application/json, text/event-stream"));
        assert!(both.json && both.sse && both.sse_named);
        let sse_only = accepts(&h("text/event-stream"));
        assert!(!sse_only.json && sse_only.sse);
        let json_only = accepts(&h("application/json;q=0.9"));
        assert!(json_only.json && !json_only.sse);
        let any = accepts(&h("*/*"));
        assert!(any.json && any.sse && !any.sse_named);
        let neither = accepts(&h("text/html, image/png"));
        assert!(!neither.json && !neither.sse);
    }

    #[test]
    fn mcp_preflight_allows_the_modern_headers() {
        let mut m = HeaderMap::new();
        m.insert("origin", HeaderValue::from_static("http://localhost:6274"));
        m.insert(
            "access-control-request-headers",
            HeaderValue::from_static("authorization, mcp-method, mcp-name, mcp-param-region, x-other"),
        );
        let res = preflight(&m);
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let allowed = res.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
        for h in ["authorization", "mcp-method", "mcp-name", "mcp-param-region", "mcp-protocol-version"] {
            assert!(allowed.split(", ").any(|a| a == h), "{h} in {allowed}");
        }
        assert!(!allowed.contains("x-other"));
        assert_eq!(res.headers()["access-control-allow-origin"], "http://localhost:6274");
    }

    #[test]
    fn mcp_content_type_must_be_json() {
        let mut m = HeaderMap::new();
        assert!(!is_json_content(&m));
        m.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        assert!(is_json_content(&m));
        m.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json_content(&m));
    }

    #[test]
    fn mcp_session_ids_are_random_visible_ascii() {
        let a = new_session_id();
        assert!(plausible_session_id(&a));
        assert_ne!(a, new_session_id());
        assert!(a.len() >= 32);
        assert!(!plausible_session_id(""));
        assert!(!plausible_session_id("has space"));
        assert!(!plausible_session_id(&"x".repeat(129)));
    }
}
