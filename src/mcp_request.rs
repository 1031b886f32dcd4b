//! What an MCP 2026-07-28 ("modern") request carries besides its method: the
//! per-request `_meta` (protocol version, client capabilities) and the HTTP
//! headers that mirror the body (`MCP-Protocol-Version`, `Mcp-Method`,
//! `Mcp-Name`), checked against it. Shared by the built-in server (`mcp`) and
//! the gateway (`proxy`), which both tell the eras apart per request.
//!
//! The revision's rules (`basic/transports/streamable-http`, "Request
//! Metadata" and "Server Validation"; `basic/versioning`): a request with
//! modern `_meta` is served statelessly; `initialize` opens a session of an
//! earlier revision. A header missing or disagreeing with the body is
//! `400` + `HeaderMismatch`; a `_meta` without its required fields is `400` +
//! `-32602`; a version the server does not speak is `400` +
//! `UnsupportedProtocolVersion` naming the supported ones.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::HeaderMap;
use serde_json::{json, Value};

/// The modern revision this worker speaks.
pub const MODERN_VERSION: &str = "2026-07-28";

/// The revisions of the session era (`initialize`, `Mcp-Session-Id`), all
/// published before [`MODERN_VERSION`]: what an intermediary that speaks no
/// revision itself (the gateway) passes to [`is_modern`] as `legacy`.
pub const SESSION_ERA_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

pub const VERSION_HEADER: &str = "mcp-protocol-version";
/// The session era's session header (ignored by the modern era).
pub const SESSION_HEADER: &str = "mcp-session-id";
pub const METHOD_HEADER: &str = "mcp-method";
pub const NAME_HEADER: &str = "mcp-name";
/// Headers mirroring tool arguments marked `x-mcp-header`.
pub const PARAM_HEADER_PREFIX: &str = "mcp-param-";

pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// Error codes the revision reserves (`basic/index`, "Error Codes").
pub const HEADER_MISMATCH: i64 = -32020;
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
const INVALID_PARAMS: i64 = -32602;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn meta(message: &Value) -> Option<&serde_json::Map<String, Value>> {
    message.get("params")?.get("_meta")?.as_object()
}

/// The protocol version the body's `_meta` names.
pub fn meta_version(message: &Value) -> Option<&str> {
    meta(message)?.get(META_PROTOCOL_VERSION)?.as_str()
}

/// Whether `message` (the parsed body) is a request of the modern era, as a
/// dual-era server tells them apart: it carries modern `_meta`, or it is
/// `server/discover`, or, outside a session (no `Mcp-Session-Id`), its
/// `MCP-Protocol-Version` names no revision of the session era (`legacy`; so
/// a client asking for an unknown future revision hears
/// `UnsupportedProtocolVersion`, which it understands). JSON-RPC batches
/// (2025-03-26) are always of the session era, and so is `initialize` unless
/// it carries modern `_meta`: no session-era client sends that, and a modern
/// one asking for `initialize` asks for a method the revision removed (404).
pub fn is_modern(headers: &HeaderMap, message: &Value, legacy: &[&str]) -> bool {
    let Some(obj) = message.as_object() else { return false };
    let method = obj.get("method").and_then(Value::as_str);
    if method == Some("initialize") {
        return meta_version(message).is_some();
    }
    meta_version(message).is_some()
        || method == Some("server/discover")
        || header(headers, SESSION_HEADER).is_none()
            && header(headers, VERSION_HEADER).is_some_and(|v| !legacy.contains(&v.trim()))
}

/// The value of `Mcp-Name` or `Mcp-Param-*`: as sent, or decoded from the
/// Base64 sentinel form `=?base64?…?=` (UTF-8). `None` when the value is not
/// a valid header value of either form.
pub fn decode_header_value(raw: &str) -> Option<String> {
    if let Some(inner) = raw.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        return String::from_utf8(STANDARD.decode(inner).ok()?).ok();
    }
    // Plain values are visible ASCII, space and tab (RFC 9110), no edge whitespace.
    let plain = raw.bytes().all(|b| b == b'\t' || (0x20..=0x7e).contains(&b));
    (plain && raw.trim() == raw).then(|| raw.to_owned())
}

/// What `Mcp-Name` must mirror: `params.name` of `tools/call` and
/// `prompts/get`, `params.uri` of `resources/read`; `None` for other methods.
pub fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Why a modern request is refused before it runs: the JSON-RPC error and
/// the HTTP status (always 400) to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl Refusal {
    fn mismatch(message: impl Into<String>) -> Self {
        Refusal { code: HEADER_MISMATCH, message: format!("Header mismatch: {}", message.into()), data: None }
    }

    /// The JSON-RPC error response answering request `id`.
    pub fn to_json(&self, id: &Value) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({ "jsonrpc": "2.0", "id": id, "error": error })
    }
}

/// Cuts client text down for an error message (no control characters).
fn shown(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// Checks that a modern request's headers mirror its body (`MCP-Protocol-Version`
/// = `_meta` version, `Mcp-Method` = `method`, `Mcp-Name` = the name or URI,
/// Base64 sentinel decoded), then its `_meta` (required fields, a version in
/// `supported`). The order follows the revision: a header that disagrees
/// with the body is refused before the body's version is judged.
pub fn check(headers: &HeaderMap, message: &Value, supported: &[&str]) -> Result<(), Refusal> {
    check_headers(headers, message)?;
    check_meta(message, supported)
}

/// The first half of [`check`]: the mirrored headers are there and agree
/// with the body. All an intermediary may judge (the gateway): whether the
/// body's `_meta` is complete and its version spoken is the server's to say.
/// `Mcp-Param-*` headers are not judged here: which argument each mirrors is
/// in the tool's `inputSchema` (`x-mcp-header`), known to the server only.
pub fn check_headers(headers: &HeaderMap, message: &Value) -> Result<(), Refusal> {
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    let meta_version = meta_version(message);
    match (header(headers, VERSION_HEADER), meta_version) {
        (None, _) => return Err(Refusal::mismatch("the MCP-Protocol-Version header is required")),
        (Some(h), Some(m)) if h.trim() != m => {
            return Err(Refusal::mismatch(format!(
                "MCP-Protocol-Version header value '{}' does not match body value '{}'",
                shown(h),
                shown(m)
            )))
        }
        _ => {}
    }
    match header(headers, METHOD_HEADER) {
        None => return Err(Refusal::mismatch("the Mcp-Method header is required")),
        Some(h) if h != method => {
            return Err(Refusal::mismatch(format!(
                "Mcp-Method header value '{}' does not match body value '{}'",
                shown(h),
                shown(method)
            )))
        }
        Some(_) => {}
    }
    if let Some(field) = name_field(method) {
        let body = message.get("params").and_then(|p| p.get(field)).and_then(Value::as_str);
        match (headers.get(NAME_HEADER).map(|v| v.to_str().ok().and_then(decode_header_value)), body) {
            (None, _) => return Err(Refusal::mismatch(format!("the Mcp-Name header is required for {method}"))),
            (Some(None), _) => return Err(Refusal::mismatch("the Mcp-Name header value is malformed")),
            (Some(Some(h)), Some(b)) if h == b => {}
            (Some(Some(h)), b) => {
                return Err(Refusal::mismatch(format!(
                    "Mcp-Name header value '{}' does not match body value '{}'",
                    shown(&h),
                    shown(b.unwrap_or(""))
                )))
            }
        }
    }
    Ok(())
}

/// The second half of [`check`]: the body's `_meta` carries the required
/// fields and a version in `supported`.
pub fn check_meta(message: &Value, supported: &[&str]) -> Result<(), Refusal> {
    let Some(version) = meta_version(message) else {
        return Err(Refusal {
            code: INVALID_PARAMS,
            message: format!("Invalid params: _meta must carry \"{META_PROTOCOL_VERSION}\""),
            data: None,
        });
    };
    if !meta(message).and_then(|m| m.get(META_CLIENT_CAPABILITIES)).is_some_and(Value::is_object) {
        return Err(Refusal {
            code: INVALID_PARAMS,
            message: format!("Invalid params: _meta must carry \"{META_CLIENT_CAPABILITIES}\" (an object)"),
            data: None,
        });
    }
    if !supported.contains(&version) {
        return Err(Refusal {
            code: UNSUPPORTED_PROTOCOL_VERSION,
            message: "Unsupported protocol version".into(),
            data: Some(json!({ "supported": supported, "requested": version })),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const LEGACY: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
    const SUPPORTED: [&str; 4] = [MODERN_VERSION, "2025-11-25", "2025-06-18", "2025-03-26"];

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn call(name: &str) -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": name, "arguments": {},
            "_meta": {META_PROTOCOL_VERSION: MODERN_VERSION, META_CLIENT_CAPABILITIES: {}},
        }})
    }

    fn modern_headers(method: &str, name: Option<&str>) -> HeaderMap {
        let mut h = headers(&[(VERSION_HEADER, MODERN_VERSION), (METHOD_HEADER, method)]);
        if let Some(n) = name {
            h.insert(NAME_HEADER, HeaderValue::from_str(n).unwrap());
        }
        h
    }

    #[test]
    fn mcp_era_is_told_per_request() {
        let none = HeaderMap::new();
        assert!(is_modern(&none, &call("x"), &LEGACY), "modern _meta");
        let discover = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover"});
        assert!(is_modern(&none, &discover, &LEGACY), "the probe of dual-era clients");
        let init =
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}});
        assert!(!is_modern(&headers(&[(VERSION_HEADER, MODERN_VERSION)]), &init, &LEGACY));
        let mut modern_init = init.clone();
        modern_init["params"]["_meta"] = json!({META_PROTOCOL_VERSION: MODERN_VERSION});
        assert!(is_modern(&HeaderMap::new(), &modern_init, &LEGACY), "initialize with modern _meta");
        let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
        assert!(!is_modern(&headers(&[(VERSION_HEADER, "2025-06-18")]), &ping, &LEGACY), "a session's request");
        assert!(!is_modern(&none, &ping, &LEGACY), "no header: 2025-03-26");
        assert!(is_modern(&headers(&[(VERSION_HEADER, "2099-01-01")]), &ping, &LEGACY), "a future revision");
        let in_session = headers(&[(VERSION_HEADER, "2099-01-01"), (SESSION_HEADER, "s1")]);
        assert!(!is_modern(&in_session, &ping, &LEGACY), "a session's message with an odd version stays in its era");
        assert!(!is_modern(&none, &json!([call("x")]), &LEGACY), "batches are 2025-03-26");
    }

    #[test]
    fn mcp_headers_must_mirror_the_body() {
        let ok = modern_headers("tools/call", Some("get_my_todo_list"));
        assert_eq!(check(&ok, &call("get_my_todo_list"), &SUPPORTED), Ok(()));
        let cases = [
            (headers(&[(METHOD_HEADER, "tools/call"), (NAME_HEADER, "a")]), "MCP-Protocol-Version header is required"),
            (modern_headers("tools/list", Some("a")), "Mcp-Method header value 'tools/list'"),
            (headers(&[(VERSION_HEADER, MODERN_VERSION), (NAME_HEADER, "a")]), "Mcp-Method header is required"),
            (modern_headers("tools/call", None), "Mcp-Name header is required"),
            (modern_headers("tools/call", Some("b")), "Mcp-Name header value 'b' does not match body value 'a'"),
            (modern_headers("tools/call", Some("=?base64?!!?=")), "malformed"),
        ];
        for (h, why) in cases {
            let e = check(&h, &call("a"), &SUPPORTED).unwrap_err();
            assert_eq!(e.code, HEADER_MISMATCH, "{why}");
            assert!(e.message.contains(why), "{} / {why}", e.message);
        }
        let mut other = modern_headers("tools/call", Some("a"));
        other.insert(VERSION_HEADER, HeaderValue::from_static("2025-11-25"));
        assert_eq!(check(&other, &call("a"), &SUPPORTED).unwrap_err().code, HEADER_MISMATCH);
    }

    #[test]
    fn mcp_name_may_come_in_the_base64_sentinel_form() {
        let name = "Grüße, 世界";
        let encoded = format!("=?base64?{}?=", STANDARD.encode(name));
        assert_eq!(check(&modern_headers("tools/call", Some(&encoded)), &call(name), &SUPPORTED), Ok(()));
        // A plain-ASCII name that looks like the sentinel must itself be encoded.
        let literal = "=?base64?bGl0?=";
        assert!(check(&modern_headers("tools/call", Some(literal)), &call(literal), &SUPPORTED).is_err());
        assert_eq!(decode_header_value(" padded"), None);
        assert_eq!(decode_header_value("us-west1").as_deref(), Some("us-west1"));
    }

    #[test]
    fn mcp_headers_alone_are_what_an_intermediary_checks() {
        // No _meta fields, a version nobody speaks: the server's to refuse, not the gateway's.
        let future = headers(&[(VERSION_HEADER, "2099-01-01"), (METHOD_HEADER, "tools/call"), (NAME_HEADER, "a")]);
        let mut msg = call("a");
        msg["params"]["_meta"] = json!({META_PROTOCOL_VERSION: "2099-01-01"});
        assert_eq!(check_headers(&future, &msg), Ok(()));
        assert_eq!(check(&future, &msg, &SUPPORTED).unwrap_err().code, INVALID_PARAMS);
        msg["params"]["_meta"][META_CLIENT_CAPABILITIES] = json!({});
        assert_eq!(check(&future, &msg, &SUPPORTED).unwrap_err().code, UNSUPPORTED_PROTOCOL_VERSION);
        // A lie is refused by either.
        let lying = headers(&[(VERSION_HEADER, "2099-01-01"), (METHOD_HEADER, "tools/call"), (NAME_HEADER, "b")]);
        assert_eq!(check_headers(&lying, &msg).unwrap_err().code, HEADER_MISMATCH);
        assert!(is_modern(&future, &msg, &SESSION_ERA_VERSIONS));
    }

    #[test]
    fn mcp_meta_needs_its_fields_and_a_supported_version() {
        let h = modern_headers("tools/list", None);
        let mut list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {}}});
        let e = check(&h, &list, &SUPPORTED).unwrap_err();
        assert_eq!((e.code, e.message.contains(META_PROTOCOL_VERSION)), (INVALID_PARAMS, true));
        list["params"]["_meta"][META_PROTOCOL_VERSION] = json!(MODERN_VERSION);
        let e = check(&h, &list, &SUPPORTED).unwrap_err();
        assert_eq!((e.code, e.message.contains(META_CLIENT_CAPABILITIES)), (INVALID_PARAMS, true));
        list["params"]["_meta"][META_CLIENT_CAPABILITIES] = json!({});
        assert_eq!(check(&h, &list, &SUPPORTED), Ok(()));

        let future = headers(&[(VERSION_HEADER, "2099-01-01"), (METHOD_HEADER, "tools/list")]);
        list["params"]["_meta"][META_PROTOCOL_VERSION] = json!("2099-01-01");
        let e = check(&future, &list, &SUPPORTED).unwrap_err();
        assert_eq!(e.code, UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(e.data, Some(json!({"supported": SUPPORTED, "requested": "2099-01-01"})));
        let answer = e.to_json(&json!(7));
        assert_eq!((answer["id"].clone(), answer["error"]["code"].clone()), (json!(7), json!(-32022)));
    }
}
