//! CORS for browser-based MCP clients (MCP Inspector runs on another origin):
//! one policy for the metadata, registration, token, revocation and MCP
//! endpoints. Nothing here relies on cookies, so any origin may read.

use http::header::{HeaderValue, VARY};
use http::{HeaderMap, Response, StatusCode};

/// `Access-Control-Allow-Headers` of a preflight answer.
pub const ALLOW_HEADERS: &str =
    "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID";
/// `Access-Control-Allow-Methods` of a preflight answer.
pub const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
/// `Access-Control-Expose-Headers`: what a browser client may read of an answer.
pub const EXPOSE_HEADERS: &str = "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, Retry-After";

/// Adds the CORS response headers for a request from `origin` (none without one).
pub fn apply(origin: Option<&str>, headers: &mut HeaderMap) {
    let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else { return };
    headers.insert("access-control-allow-origin", value);
    headers.insert("access-control-expose-headers", HeaderValue::from_static(EXPOSE_HEADERS));
    headers.append(VARY, HeaderValue::from_static("Origin"));
}

/// The answer to a preflight (`OPTIONS`).
pub fn preflight(origin: Option<&str>) -> Response<Vec<u8>> {
    let mut res = Response::new(Vec::new());
    *res.status_mut() = StatusCode::NO_CONTENT;
    let h = res.headers_mut();
    apply(origin, h);
    h.insert("access-control-allow-methods", HeaderValue::from_static(ALLOW_METHODS));
    h.insert("access-control-allow-headers", HeaderValue::from_static(ALLOW_HEADERS));
    h.insert("access-control-max-age", HeaderValue::from_static("86400"));
    res
}
