//! One forwarded request, decided without I/O: what to send downstream (or
//! what to answer at once), and the head of the response the client gets.

#![allow(clippy::result_large_err)] // a refusal is built at most once per request

use super::challenge;
use super::config::Downstream;
use super::identity::outbound_headers;
use super::session::{Bound, Sessions};
use super::User;
use crate::mcp_request::{check_headers, is_modern, Refusal, SESSION_ERA_VERSIONS};
use crate::util::origin::{origin_allowed, own_origin};
use http::header::{HeaderName, HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use url::Url;

pub const SESSION_HEADER: &str = "mcp-session-id";
/// JSON-RPC codes of the MCP SDKs' transports.
const SERVER_ERROR: i64 = -32000;
const SESSION_NOT_FOUND: i64 = -32001;
const INTERNAL_ERROR: i64 = -32603;

/// Which endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/mcp`: Streamable HTTP, any method.
    Streamable,
    /// `GET /sse`: opens a legacy event stream.
    SseOpen,
    /// `POST /sse/message?sessionId=`: a message of a legacy session.
    SseMessage,
}

/// A request about to be forwarded.
#[derive(Debug)]
pub struct Outbound {
    pub kind: Kind,
    /// The request for the downstream server.
    pub request: Request<Vec<u8>>,
    /// The client's `Origin`, for CORS on the answer.
    pub origin: Option<String>,
    /// The sealed session id the client sent and what it opened to.
    pub client_session: Option<String>,
    pub downstream_session: Option<String>,
    /// An MCP 2026-07-28 request: no session travels either way.
    pub modern: bool,
}

#[derive(Debug)]
pub enum Plan {
    Respond(Response<Vec<u8>>),
    Send(Outbound),
    /// A tool call needs scopes the token lacks (`GATEWAY_TOOL_SCOPES`): the
    /// Worker answers 403 `insufficient_scope` naming `scopes` (the token's
    /// own and the `missing` ones, so a step-up keeps what it had).
    InsufficientScope {
        scopes: Vec<String>,
        missing: Vec<String>,
    },
}

/// A JSON-RPC error that answers no particular request, with CORS.
pub fn rpc_error(origin: Option<&str>, status: StatusCode, code: i64, message: &str) -> Response<Vec<u8>> {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    let mut res = Response::new(body.to_string().into_bytes());
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    crate::oauth::cors::apply(origin, res.headers_mut());
    res
}

/// The 404 MCP clients take as "start a new session".
pub fn session_not_found(origin: Option<&str>) -> Response<Vec<u8>> {
    rpc_error(
        origin,
        StatusCode::NOT_FOUND,
        SESSION_NOT_FOUND,
        "Session not found: it expired, was deleted or belongs to someone else. Start a new session with initialize.",
    )
}

/// The downstream server could not be reached (connection refused, DNS, TLS).
pub fn unreachable(origin: Option<&str>) -> Response<Vec<u8>> {
    rpc_error(
        origin,
        StatusCode::BAD_GATEWAY,
        INTERNAL_ERROR,
        "Bad Gateway: the MCP server behind this gateway could not be reached; try again later.",
    )
}

/// The downstream server did not start answering in time.
pub fn timeout(origin: Option<&str>, timeout_ms: u32) -> Response<Vec<u8>> {
    let msg = format!(
        "Gateway Timeout: the MCP server behind this gateway did not answer within {} s; try again later.",
        timeout_ms / 1000
    );
    rpc_error(origin, StatusCode::GATEWAY_TIMEOUT, INTERNAL_ERROR, &msg)
}

/// The downstream answered with something no MCP server sends.
pub fn garbage(origin: Option<&str>) -> Response<Vec<u8>> {
    rpc_error(
        origin,
        StatusCode::BAD_GATEWAY,
        INTERNAL_ERROR,
        "Bad Gateway: the MCP server behind this gateway gave an answer that is not MCP.",
    )
}

fn method_not_allowed(origin: Option<&str>, allow: &'static str) -> Response<Vec<u8>> {
    let mut res = rpc_error(origin, StatusCode::METHOD_NOT_ALLOWED, SERVER_ERROR, "Method Not Allowed");
    res.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    res
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn query_param(req: &Request<Vec<u8>>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.uri().query()?.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// A modern request whose headers do not mirror its body: 400 and the
/// JSON-RPC error the revision names (`HeaderMismatch`), answering its id.
fn refused(origin: Option<&str>, message: &Value, refusal: &Refusal) -> Response<Vec<u8>> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let mut res = Response::new(refusal.to_json(&id).to_string().into_bytes());
    *res.status_mut() = StatusCode::BAD_REQUEST;
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    crate::oauth::cors::apply(origin, res.headers_mut());
    res
}

/// Decides what to do with an authenticated request to `/mcp` or `/sse…`.
///
/// On `POST /mcp` the era is told per request (`mcp_request::is_modern`): a
/// modern request must have headers that mirror its body (refused with 400
/// otherwise, so the downstream never sees one that lies) and travels without
/// a session: a client's `Mcp-Session-Id` is ignored, none is sent or sealed.
/// A session-era request (and `GET`, `DELETE`, `/sse…`) goes as it always did.
pub fn plan(req: &Request<Vec<u8>>, user: &User, ds: &Downstream) -> Plan {
    let origin = header(req.headers(), "origin");
    if let Some(o) = origin {
        if !origin_allowed(o, own_origin(req.uri()).as_deref()) {
            return Plan::Respond(rpc_error(
                origin,
                StatusCode::FORBIDDEN,
                SERVER_ERROR,
                "Forbidden: Origin not allowed",
            ));
        }
    }
    let sessions = Sessions::new(&ds.session_key, &user.user_id, &user.client_id);
    let not_found = || Plan::Respond(session_not_found(origin));
    // A message that is not JSON goes on as it is: the downstream answers it.
    let message: Option<Value> =
        (req.method() == Method::POST).then(|| serde_json::from_slice(req.body()).ok()).flatten();
    let mut modern = false;
    // A named downstream is at its mount alone (no legacy transport there).
    let path = match req.uri().path() {
        p if p == ds.mount => "/mcp",
        _ if ds.mount != "/mcp" => "",
        p => p,
    };
    let (kind, target, client_session, downstream_session) = match path {
        "/mcp" => {
            if !matches!(*req.method(), Method::GET | Method::POST | Method::DELETE) {
                return Plan::Respond(method_not_allowed(origin, "GET, POST, DELETE"));
            }
            modern = message.as_ref().is_some_and(|m| is_modern(req.headers(), m, &SESSION_ERA_VERSIONS));
            let (client, downstream) = match header(req.headers(), SESSION_HEADER) {
                _ if modern => (None, None),
                None => (None, None),
                Some(id) => match sessions.open(id) {
                    Some(Bound::Mcp(sid)) => (Some(id.to_owned()), Some(sid)),
                    _ => return not_found(),
                },
            };
            if let (true, Some(m)) = (modern, &message) {
                // The downstream judges `_meta` and the version; the gateway, the mirrors.
                if let Err(refusal) = check_headers(req.headers(), m) {
                    return Plan::Respond(refused(origin, m, &refusal));
                }
            }
            (Kind::Streamable, ds.mcp_url.clone(), client, downstream)
        }
        "/sse" | "/sse/message" if ds.sse_url.is_none() => {
            return Plan::Respond(rpc_error(
                origin,
                StatusCode::NOT_FOUND,
                SERVER_ERROR,
                "Not Found: the MCP server behind this gateway offers no legacy SSE transport; use /mcp",
            ))
        }
        "/sse" => {
            if req.method() != Method::GET {
                return Plan::Respond(method_not_allowed(origin, "GET"));
            }
            // The downstream decides the session; reattaching is not offered.
            if query_param(req, "sessionId").is_some() {
                return not_found();
            }
            (Kind::SseOpen, ds.sse_url.clone().expect("checked above"), None, None)
        }
        "/sse/message" => {
            if req.method() != Method::POST {
                return Plan::Respond(method_not_allowed(origin, "POST"));
            }
            let Some(id) = query_param(req, "sessionId") else {
                return Plan::Respond(rpc_error(
                    origin,
                    StatusCode::BAD_REQUEST,
                    SERVER_ERROR,
                    "Bad Request: the sessionId query parameter is required",
                ));
            };
            let sse_url = ds.sse_url.as_ref().expect("checked above");
            let target = match sessions.open(&id) {
                Some(Bound::Sse(endpoint)) => match sse_url.join(&endpoint) {
                    Ok(t) if same_origin(&t, sse_url) => t,
                    _ => return not_found(),
                },
                _ => return not_found(),
            };
            (Kind::SseMessage, target, Some(id), None)
        }
        _ => {
            return Plan::Respond(rpc_error(
                origin,
                StatusCode::NOT_FOUND,
                SERVER_ERROR,
                "Not Found: no such MCP endpoint; use /mcp or /sse",
            ))
        }
    };
    if let Some(m) = &message {
        let missing = ds.tool_scopes.missing(m, &user.scopes);
        if !missing.is_empty() {
            let mut scopes = user.scopes.clone();
            scopes.extend(missing.iter().cloned());
            return Plan::InsufficientScope { scopes, missing };
        }
    }
    let headers =
        outbound_headers(req.headers(), user, ds.sends, &ds.groups_claim, downstream_session.as_deref(), modern);
    let mut request = Request::new(req.body().clone());
    *request.method_mut() = req.method().clone();
    *request.headers_mut() = headers;
    match target.as_str().parse() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return Plan::Respond(unreachable(origin)),
    }
    Plan::Send(Outbound {
        kind,
        request,
        origin: origin.map(str::to_owned),
        client_session,
        downstream_session,
        modern,
    })
}

/// Response headers passed on as the downstream sent them.
const PASSED: [&str; 5] = ["content-type", "cache-control", "retry-after", "allow", "mcp-protocol-version"];

fn media_type(headers: &HeaderMap) -> String {
    header(headers, "content-type").and_then(|v| v.split(';').next()).unwrap_or("").trim().to_ascii_lowercase()
}

/// Status and headers of the response to the client, from the downstream's,
/// or the error to answer instead when the downstream's answer is not MCP.
pub fn response_head(
    out: &Outbound,
    status: u16,
    headers: &HeaderMap,
    user: &User,
    ds: &Downstream,
) -> Result<(StatusCode, HeaderMap), Response<Vec<u8>>> {
    let origin = out.origin.as_deref();
    let status = match StatusCode::from_u16(status) {
        // Redirects are not followed (they could carry the token elsewhere).
        Ok(s) if !s.is_informational() && !s.is_redirection() => s,
        _ => return Err(garbage(origin)),
    };
    let media = media_type(headers);
    let (json, sse) = (media == "application/json", media == "text/event-stream");
    if status.is_success() {
        let method = out.request.method();
        let fits = match out.kind {
            Kind::Streamable if method == Method::POST => {
                json || sse || status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT
            }
            Kind::Streamable if method == Method::GET => sse,
            Kind::SseOpen => sse,
            Kind::Streamable | Kind::SseMessage => true,
        };
        if !fits {
            return Err(garbage(origin));
        }
    }
    let mut h = HeaderMap::new();
    for name in PASSED {
        for v in headers.get_all(name) {
            h.append(HeaderName::from_static(name), v.clone());
        }
    }
    // The downstream's challenges, parsed: Bearer ones pointing at this
    // worker's resource metadata, nothing else (see `challenge`). A line that
    // is not text counts as unreadable.
    let challenges: Vec<&str> = headers.get_all(WWW_AUTHENTICATE).iter().map(|v| v.to_str().unwrap_or("")).collect();
    if let Some(v) =
        challenge::rewrite(&challenges, &user.resource_metadata).and_then(|c| HeaderValue::from_str(&c).ok())
    {
        h.append(WWW_AUTHENTICATE, v);
    }
    // A modern exchange has no session: one the downstream names anyway is dropped.
    if out.kind == Kind::Streamable && !out.modern {
        if let Some(sid) = header(headers, SESSION_HEADER) {
            let id = if out.downstream_session.as_deref() == Some(sid) {
                out.client_session.clone()
            } else {
                Sessions::new(&ds.session_key, &user.user_id, &user.client_id).seal(&Bound::Mcp(sid.to_owned()))
            };
            match id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                Some(v) => {
                    h.insert(SESSION_HEADER, v);
                }
                None => return Err(garbage(origin)),
            }
        }
    }
    if sse {
        // Events must not wait in a buffer or be compressed on the way.
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache, no-transform"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    crate::oauth::cors::apply(origin, &mut h);
    Ok((status, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant_props::Props;
    use serde_json::Value;

    fn ds() -> Downstream {
        Downstream::for_tests("http://127.0.0.1:9100/mcp", Some("http://127.0.0.1:9100/sse"))
    }

    fn user(id: &str) -> User {
        User {
            user_id: id.into(),
            client_id: "client-1".into(),
            grant_id: "grant-1".into(),
            props: Props::from_value(&json!({"subjectToken": format!("pingone-token-of-{id}"), "claims": {"sub": id}})),
            resource_metadata: "https://gw.example.com/.well-known/oauth-protected-resource/mcp".into(),
            scopes: vec!["todo_api:read".into()],
            vault_token: None,
        }
    }

    #[test]
    fn a_named_downstream_is_served_at_its_mount_only() {
        let named = Downstream {
            mount: "/mcp/notes".into(),
            sse_url: None,
            mcp_url: url::Url::parse("http://127.0.0.1:9300/v1/mcp").unwrap(),
            ..ds()
        };
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
        let out = send(plan(&req("POST", "https://gw.example.com/mcp/notes", &[], init), &user("alice"), &named));
        assert_eq!(out.request.uri().to_string(), "http://127.0.0.1:9300/v1/mcp");
        for other in ["/mcp", "/sse", "/sse/message?sessionId=x", "/mcp/notes/x"] {
            let res = respond(plan(
                &req("POST", &format!("https://gw.example.com{other}"), &[], init),
                &user("alice"),
                &named,
            ));
            assert_eq!(res.status(), 404, "{other}");
        }
        // A session sealed by the single gateway is no session at the named one.
        let sealed = Sessions::new(&ds().session_key, "alice", "client-1").seal(&Bound::Mcp("sid".into())).unwrap();
        let h = [(SESSION_HEADER, sealed.as_str())];
        let res = respond(plan(&req("POST", "https://gw.example.com/mcp/notes", &h, init), &user("alice"), &named));
        assert_eq!(res.status(), 404);
    }

    fn req(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Request<Vec<u8>> {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    fn send(p: Plan) -> Outbound {
        match p {
            Plan::Send(o) => o,
            Plan::Respond(r) => panic!("answered {} {}", r.status(), String::from_utf8_lossy(r.body())),
            Plan::InsufficientScope { missing, .. } => panic!("refused for lack of {missing:?}"),
        }
    }

    fn respond(p: Plan) -> Response<Vec<u8>> {
        match p {
            Plan::Respond(r) => r,
            Plan::Send(o) => panic!("forwarded to {}", o.request.uri()),
            Plan::InsufficientScope { missing, .. } => panic!("refused for lack of {missing:?}"),
        }
    }

    fn body(r: &Response<Vec<u8>>) -> Value {
        serde_json::from_slice(r.body()).unwrap()
    }

    fn downstream_headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;

    #[test]
    fn an_initialize_is_forwarded_with_identity_and_the_session_comes_back_sealed() {
        let (ds, alice) = (ds(), user("alice"));
        let r = req(
            "POST",
            "https://gw.example.com/mcp",
            &[("authorization", "Bearer mcp-token"), ("content-type", "application/json"), ("cookie", "c=1")],
            INIT,
        );
        let out = send(plan(&r, &alice, &ds));
        assert_eq!(out.request.uri(), "http://127.0.0.1:9100/mcp");
        assert_eq!(out.request.method(), Method::POST);
        assert_eq!(out.request.body(), INIT.as_bytes());
        assert_eq!(out.request.headers()["authorization"], "Bearer pingone-token-of-alice");
        assert_eq!(out.request.headers()["x-user-sub"], "alice");
        assert!(out.request.headers().get("cookie").is_none());

        let ds_headers = downstream_headers(&[
            ("content-type", "text/event-stream"),
            ("mcp-session-id", "downstream-1"),
            ("set-cookie", "tracking=1"),
            ("content-encoding", "gzip"),
        ]);
        let (status, h) = response_head(&out, 200, &ds_headers, &alice, &ds).unwrap();
        assert_eq!(status, StatusCode::OK);
        let sealed = h["mcp-session-id"].to_str().unwrap().to_owned();
        assert!(sealed.starts_with("g1.") && !sealed.contains("downstream-1"));
        assert_eq!(h["cache-control"], "no-cache, no-transform");
        assert!(h.get("set-cookie").is_none() && h.get("content-encoding").is_none());

        // The next request of that session reaches the downstream's session…
        let next = req("POST", "https://gw.example.com/mcp", &[("mcp-session-id", &sealed)], "{}");
        let out = send(plan(&next, &alice, &ds));
        assert_eq!(out.request.headers()["mcp-session-id"], "downstream-1");
        // …and the same id comes back when the downstream repeats its own.
        let (_, h) = response_head(
            &out,
            200,
            &downstream_headers(&[("content-type", "application/json"), ("mcp-session-id", "downstream-1")]),
            &alice,
            &ds,
        )
        .unwrap();
        assert_eq!(h["mcp-session-id"], sealed.as_str());

        // Bob's token with Alice's session id: 404, nothing forwarded.
        let res = respond(plan(&next, &user("bob"), &ds));
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(body(&res)["error"]["code"], SESSION_NOT_FOUND);
        // The downstream's raw id is no session here either.
        let raw = req("POST", "https://gw.example.com/mcp", &[("mcp-session-id", "downstream-1")], "{}");
        assert_eq!(respond(plan(&raw, &alice, &ds)).status(), StatusCode::NOT_FOUND);
    }

    fn modern_call(name: &str) -> String {
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
            "name": name, "arguments": {"region": "us-west1"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}},
        }})
        .to_string()
    }

    const MODERN: [(&str, &str); 4] = [
        ("content-type", "application/json"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "whoami"),
    ];

    #[test]
    fn a_modern_request_travels_without_a_session_and_with_its_mirrored_headers() {
        let (ds, alice) = (ds(), user("alice"));
        let mut headers = MODERN.to_vec();
        headers.extend([("mcp-param-region", "us-west1"), ("mcp-session-id", "g1.not-a-session-of-anyone")]);
        let r = req("POST", "https://gw.example.com/mcp", &headers, &modern_call("whoami"));
        let out = send(plan(&r, &alice, &ds));
        assert!(out.modern);
        let h = out.request.headers();
        assert_eq!((h["mcp-method"].to_str().unwrap(), h["mcp-name"].to_str().unwrap()), ("tools/call", "whoami"));
        assert_eq!(
            (h["mcp-param-region"].to_str().unwrap(), h["mcp-protocol-version"].to_str().unwrap()),
            ("us-west1", "2026-07-28")
        );
        assert_eq!(h["authorization"], "Bearer pingone-token-of-alice");
        assert!(h.get("mcp-session-id").is_none(), "a client's session id is ignored, not forwarded or judged");
        assert_eq!(out.request.body(), modern_call("whoami").as_bytes(), "the body goes as it came");
        // A session id the downstream names anyway is neither sealed nor echoed.
        let ds_headers = downstream_headers(&[("content-type", "application/json"), ("mcp-session-id", "d-1")]);
        let (_, h) = response_head(&out, 200, &ds_headers, &alice, &ds).unwrap();
        assert!(h.get("mcp-session-id").is_none());
        // server/discover (the probe of dual-era clients) is modern too, as is a future version.
        let discover = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover"}).to_string();
        let probe = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "server/discover")];
        assert!(send(plan(&req("POST", "https://gw.example.com/mcp", &probe, &discover), &alice, &ds)).modern);

        // Session-era requests: the session as before, and unchecked mirrors never pass.
        let init = req(
            "POST",
            "https://gw.example.com/mcp",
            &[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/list"), ("mcp-name", "x")],
            INIT,
        );
        let out = send(plan(&init, &alice, &ds));
        assert!(!out.modern, "initialize is of the session era whatever its headers say");
        assert!(out.request.headers().get("mcp-method").is_none() && out.request.headers().get("mcp-name").is_none());
        let legacy = req("POST", "https://gw.example.com/mcp", &[("mcp-session-id", "g1.forged")], "{}");
        assert_eq!(respond(plan(&legacy, &alice, &ds)).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_modern_request_whose_headers_lie_is_refused_before_the_downstream() {
        let (ds, alice) = (ds(), user("alice"));
        let lying = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "echo")];
        let res =
            respond(plan(&req("POST", "https://gw.example.com/mcp", &lying, &modern_call("whoami")), &alice, &ds));
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let b = body(&res);
        assert_eq!(
            (b["id"].clone(), b["error"]["code"].clone()),
            (json!(5), json!(crate::mcp_request::HEADER_MISMATCH))
        );
        assert!(b["error"]["message"].as_str().unwrap().contains("Mcp-Name header value 'echo'"));
        assert_eq!(res.headers()["content-type"], "application/json");
        let no_method = [("mcp-protocol-version", "2026-07-28"), ("mcp-name", "whoami")];
        let res =
            respond(plan(&req("POST", "https://gw.example.com/mcp", &no_method, &modern_call("whoami")), &alice, &ds));
        assert_eq!(body(&res)["error"]["code"], crate::mcp_request::HEADER_MISMATCH);
        let other_version =
            [("mcp-protocol-version", "2026-12-01"), ("mcp-method", "tools/call"), ("mcp-name", "whoami")];
        let res = respond(plan(
            &req("POST", "https://gw.example.com/mcp", &other_version, &modern_call("whoami")),
            &alice,
            &ds,
        ));
        assert!(body(&res)["error"]["message"].as_str().unwrap().contains("MCP-Protocol-Version"));
        // Versions are the downstream's to judge: one the gateway never heard of passes.
        let future = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
            "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01"}}})
        .to_string();
        let h = [("mcp-protocol-version", "2099-01-01"), ("mcp-method", "tools/list")];
        assert!(send(plan(&req("POST", "https://gw.example.com/mcp", &h, &future), &alice, &ds)).modern);
    }

    #[test]
    fn tool_calls_beyond_the_tokens_scopes_are_refused_in_both_eras() {
        let ds = Downstream {
            tool_scopes: crate::proxy::config::ToolScopes::parse("delete_*=todo_api:write, *=todo_api:read").unwrap(),
            ..ds()
        };
        let alice = user("alice"); // todo_api:read only
        let refused = |p: Plan| match p {
            Plan::InsufficientScope { scopes, missing } => (scopes, missing),
            Plan::Send(o) => panic!("forwarded to {}", o.request.uri()),
            Plan::Respond(r) => panic!("answered {}", r.status()),
        };
        let read_write = || vec!["todo_api:read".to_owned(), "todo_api:write".to_owned()];
        // Modern: the name from the body (the headers agree, or it is refused before).
        let h = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "delete_all")];
        let (scopes, missing) =
            refused(plan(&req("POST", "https://gw.example.com/mcp", &h, &modern_call("delete_all")), &alice, &ds));
        assert_eq!((scopes, missing), (read_write(), vec!["todo_api:write".to_owned()]));
        let mut permitted = MODERN.to_vec();
        permitted[3] = ("mcp-name", "whoami");
        send(plan(&req("POST", "https://gw.example.com/mcp", &permitted, &modern_call("whoami")), &alice, &ds));
        // Session era, one call and a batch, on /mcp and on the legacy transport.
        let sealed = Sessions::new(&ds.session_key, "alice", "client-1").seal(&Bound::Mcp("d-1".into())).unwrap();
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "delete_one"}});
        let legacy = req("POST", "https://gw.example.com/mcp", &[("mcp-session-id", &sealed)], &call.to_string());
        assert_eq!(refused(plan(&legacy, &alice, &ds)).0, read_write());
        let batch = json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, call]).to_string();
        let legacy = req("POST", "https://gw.example.com/mcp", &[("mcp-session-id", &sealed)], &batch);
        assert_eq!(refused(plan(&legacy, &alice, &ds)).1, ["todo_api:write"]);
        let endpoint = Sessions::new(&ds.session_key, "alice", "client-1")
            .seal(&Bound::Sse("/messages?sessionId=a".into()))
            .unwrap();
        let uri = format!("https://gw.example.com/sse/message?sessionId={endpoint}");
        assert_eq!(refused(plan(&req("POST", &uri, &[], &call.to_string()), &alice, &ds)).1, ["todo_api:write"]);
        // A token without any scope needs read even for whoami; with write it may delete.
        let nobody = User { scopes: vec![], ..user("alice") };
        assert_eq!(
            refused(plan(&req("POST", "https://gw.example.com/mcp", &permitted, &modern_call("whoami")), &nobody, &ds))
                .1,
            ["todo_api:read"]
        );
        let writer = User { scopes: read_write(), ..user("alice") };
        send(plan(&req("POST", "https://gw.example.com/mcp", &h, &modern_call("delete_all")), &writer, &ds));
        // Without GATEWAY_TOOL_SCOPES scopes are not judged.
        send(plan(
            &req("POST", "https://gw.example.com/mcp", &h, &modern_call("delete_all")),
            &nobody,
            &super::super::config::Downstream { tool_scopes: Default::default(), ..ds.clone() },
        ));
    }

    #[test]
    fn http_rules_in_front_of_the_downstream() {
        let (ds, alice) = (ds(), user("alice"));
        let evil = req("POST", "https://gw.example.com/mcp", &[("origin", "https://evil.example.com")], INIT);
        assert_eq!(respond(plan(&evil, &alice, &ds)).status(), StatusCode::FORBIDDEN);
        let local = req("POST", "https://gw.example.com/mcp", &[("origin", "http://localhost:6274")], INIT);
        assert_eq!(send(plan(&local, &alice, &ds)).origin.as_deref(), Some("http://localhost:6274"));
        let put = respond(plan(&req("PUT", "https://gw.example.com/mcp", &[], ""), &alice, &ds));
        assert_eq!(
            (put.status(), put.headers()["allow"].to_str().unwrap()),
            (StatusCode::METHOD_NOT_ALLOWED, "GET, POST, DELETE")
        );
        for m in ["GET", "DELETE"] {
            assert_eq!(send(plan(&req(m, "https://gw.example.com/mcp", &[], ""), &alice, &ds)).request.method(), m);
        }
        let other = respond(plan(&req("GET", "https://gw.example.com/mcp/x", &[], ""), &alice, &ds));
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
        let no_sse = Downstream { sse_url: None, ..ds.clone() };
        let res = respond(plan(&req("GET", "https://gw.example.com/sse", &[], ""), &alice, &no_sse));
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert!(body(&res)["error"]["message"].as_str().unwrap().contains("use /mcp"));
    }

    #[test]
    fn legacy_sse_messages_go_to_the_sealed_endpoint_of_their_user() {
        let (ds, alice) = (ds(), user("alice"));
        let open =
            send(plan(&req("GET", "https://gw.example.com/sse", &[("accept", "text/event-stream")], ""), &alice, &ds));
        assert_eq!((open.kind, open.request.uri().to_string().as_str()), (Kind::SseOpen, "http://127.0.0.1:9100/sse"));
        let sealed = Sessions::new(&ds.session_key, "alice", "client-1")
            .seal(&Bound::Sse("/messages?sessionId=abc".into()))
            .unwrap();
        let uri = format!("https://gw.example.com/sse/message?sessionId={sealed}");
        let out = send(plan(&req("POST", &uri, &[("content-type", "application/json")], "{}"), &alice, &ds));
        assert_eq!(out.request.uri(), "http://127.0.0.1:9100/messages?sessionId=abc");
        assert_eq!(out.request.headers()["authorization"], "Bearer pingone-token-of-alice");
        assert_eq!(respond(plan(&req("POST", &uri, &[], "{}"), &user("bob"), &ds)).status(), StatusCode::NOT_FOUND);
        // A Streamable HTTP session id is no legacy session, and the reverse.
        let mcp_id = Sessions::new(&ds.session_key, "alice", "client-1").seal(&Bound::Mcp("s".into())).unwrap();
        let wrong = format!("https://gw.example.com/sse/message?sessionId={mcp_id}");
        assert_eq!(respond(plan(&req("POST", &wrong, &[], "{}"), &alice, &ds)).status(), StatusCode::NOT_FOUND);
        let wrong = req("POST", "https://gw.example.com/mcp", &[("mcp-session-id", &sealed)], "{}");
        assert_eq!(respond(plan(&wrong, &alice, &ds)).status(), StatusCode::NOT_FOUND);
        // An endpoint on another origin is never a target, even when sealed.
        let elsewhere = Sessions::new(&ds.session_key, "alice", "client-1")
            .seal(&Bound::Sse("https://evil.example.com/steal".into()))
            .unwrap();
        let uri = format!("https://gw.example.com/sse/message?sessionId={elsewhere}");
        assert_eq!(respond(plan(&req("POST", &uri, &[], "{}"), &alice, &ds)).status(), StatusCode::NOT_FOUND);
        let missing = respond(plan(&req("POST", "https://gw.example.com/sse/message", &[], "{}"), &alice, &ds));
        assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
        let reattach = req("GET", &format!("https://gw.example.com/sse?sessionId={sealed}"), &[], "");
        assert_eq!(respond(plan(&reattach, &alice, &ds)).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn downstream_answers_pass_faithfully_unless_they_are_not_mcp() {
        let (ds, alice) = (ds(), user("alice"));
        let post = send(plan(&req("POST", "https://gw.example.com/mcp", &[], INIT), &alice, &ds));
        let get = send(plan(&req("GET", "https://gw.example.com/mcp", &[], ""), &alice, &ds));
        let head = |out: &Outbound, status: u16, pairs: &[(&str, &str)]| {
            response_head(out, status, &downstream_headers(pairs), &alice, &ds)
                .map(|(s, _)| s.as_u16())
                .map_err(|r| r.status().as_u16())
        };
        assert_eq!(head(&post, 200, &[("content-type", "application/json; charset=utf-8")]), Ok(200));
        assert_eq!(head(&post, 202, &[]), Ok(202));
        assert_eq!(head(&post, 200, &[("content-type", "text/html")]), Err(502));
        assert_eq!(head(&post, 302, &[("location", "https://elsewhere.example.com/")]), Err(502));
        assert_eq!(head(&get, 200, &[("content-type", "application/json")]), Err(502));
        assert_eq!(head(&get, 405, &[("allow", "POST")]), Ok(405));
        // Errors are the downstream's to give: status, body and challenge.
        assert_eq!(head(&post, 400, &[("content-type", "application/json")]), Ok(400));
        assert_eq!(head(&post, 500, &[("content-type", "text/plain")]), Ok(500));
        let challenge = r#"Bearer error="invalid_token", resource_metadata="https://downstream.example.com/.well-known/oauth-protected-resource", scope="files:read""#;
        let (status, h) =
            response_head(&post, 401, &downstream_headers(&[("www-authenticate", challenge)]), &alice, &ds).unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            h["www-authenticate"],
            r#"Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token", scope="files:read""#
        );
        // A hostile challenge: a look-alike parameter first, the text in a quoted description.
        for hostile in [
            r#"Bearer x_resource_metadata="https://evil.example.com/a", resource_metadata="https://evil.example.com/b""#,
            r#"Bearer error_description="resource_metadata=\"x\"", resource_metadata="https://evil.example.com/b""#,
        ] {
            let (_, h) =
                response_head(&post, 401, &downstream_headers(&[("www-authenticate", hostile)]), &alice, &ds).unwrap();
            let www = h["www-authenticate"].to_str().unwrap();
            assert!(!www.contains("evil.example.com"), "{hostile} -> {www}");
            assert!(www.starts_with(r#"Bearer resource_metadata="https://gw.example.com/"#), "{www}");
        }
        // A session id too long to seal is not passed on.
        let long = "x".repeat(2000);
        assert_eq!(head(&post, 200, &[("content-type", "application/json"), ("mcp-session-id", &long)]), Err(502));
    }

    #[test]
    fn downstream_failures_are_json_rpc_errors_with_cors() {
        for (res, status) in [
            (unreachable(Some("http://localhost:6274")), 502),
            (timeout(Some("http://localhost:6274"), 30_000), 504),
            (garbage(Some("http://localhost:6274")), 502),
        ] {
            assert_eq!(res.status().as_u16(), status);
            assert_eq!(res.headers()["access-control-allow-origin"], "http://localhost:6274");
            let b = body(&res);
            assert_eq!((b["jsonrpc"].as_str(), b["id"].is_null()), (Some("2.0"), true));
            assert!(b["error"]["message"].as_str().unwrap().contains("MCP server behind this gateway"));
        }
        assert!(body(&timeout(None, 30_000))["error"]["message"].as_str().unwrap().contains("30 s"));
    }
}
