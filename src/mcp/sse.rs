//! Server-Sent Events framing for both transports.

use super::http_rules::Responder;
use http::header::{HeaderValue, CACHE_CONTROL};
use http::{Response, StatusCode};
use serde_json::Value;

/// A comment line: clients ignore it, proxies see traffic. Cloudflare cuts
/// streams idle for a couple of minutes, so one goes out every
/// [`KEEPALIVE_SECS`].
pub const KEEPALIVE: &[u8] = b": keepalive\n\n";
pub const KEEPALIVE_SECS: u64 = 20;
/// Sent first so the client gets its first byte at once, before slow work.
pub const PRELUDE: &[u8] = b": ok\n\n";

/// `event: message` carrying one JSON-RPC message (serde_json escapes
/// newlines, so one `data:` line always suffices).
pub fn message_frame(message: &Value) -> Vec<u8> {
    let mut out = b"event: message\ndata: ".to_vec();
    // Serializing a Value cannot fail.
    out.extend(serde_json::to_vec(message).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
    out
}

/// The legacy transport's first event: where to POST messages.
pub fn endpoint_frame(url: &str) -> Vec<u8> {
    format!("event: endpoint\ndata: {url}\n\n").into_bytes()
}

/// Status and headers of an event stream whose body starts with `first`:
/// no caching and no transformation (compression would buffer events).
pub fn stream_response(r: &Responder<'_>, first: Vec<u8>) -> Response<Vec<u8>> {
    let mut res = r.bytes(StatusCode::OK, Some("text/event-stream"), first);
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache, no-transform"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mcp_sse_frames_are_single_events() {
        let f = message_frame(&json!({"jsonrpc":"2.0","id":1,"result":{"text":"a\nb"}}));
        let s = String::from_utf8(f).unwrap();
        assert!(s.starts_with("event: message\ndata: {"));
        assert!(s.ends_with("}\n\n"));
        assert_eq!(s.matches('\n').count(), 3, "the newline inside the payload is escaped");
        assert_eq!(endpoint_frame("/sse/message?sessionId=x"), b"event: endpoint\ndata: /sse/message?sessionId=x\n\n");
    }

    #[test]
    fn mcp_sse_responses_are_uncached_and_untransformed() {
        let res = stream_response(&Responder::new(None).with_session("s1"), PRELUDE.to_vec());
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        assert_eq!(res.headers()["cache-control"], "no-cache, no-transform");
        assert_eq!(res.headers()["mcp-session-id"], "s1");
        assert!(res.headers().get("content-encoding").is_none());
    }
}
