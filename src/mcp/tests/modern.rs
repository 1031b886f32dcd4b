//! The modern era (MCP 2026-07-28) on the same `/mcp`: stateless requests
//! answered without a session, beside the session era.

use super::fakes::*;
use crate::mcp::caller::Caller;
use crate::mcp_request::{
    HEADER_MISMATCH, META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION, META_SERVER_INFO, MODERN_VERSION,
    UNSUPPORTED_PROTOCOL_VERSION,
};
use serde_json::{json, Value};

fn alice() -> Caller {
    caller("alice", "grant-a", "tok-alice")
}

fn body(id: u64, method: &str, mut params: Value) -> String {
    params["_meta"] = json!({
        META_PROTOCOL_VERSION: MODERN_VERSION,
        META_CLIENT_CAPABILITIES: {},
        "io.modelcontextprotocol/clientInfo": {"name": "modern-test", "version": "1"},
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// A modern POST with the headers the revision requires.
fn modern(w: &World, who: &Caller, method: &str, params: Value) -> http::Response<Vec<u8>> {
    let name = params.get("name").and_then(Value::as_str).map(str::to_owned);
    let mut headers = vec![("mcp-protocol-version", MODERN_VERSION), ("mcp-method", method)];
    if let Some(n) = name.as_deref() {
        headers.push(("mcp-name", n));
    }
    w.send(post(&body(1, method, params), &headers), who)
}

fn complete(m: &Value) -> &Value {
    assert_eq!(m["result"]["resultType"], "complete", "{m}");
    assert_eq!(m["result"]["_meta"][META_SERVER_INFO]["name"], crate::SERVER_NAME);
    &m["result"]
}

#[test]
fn mcp_modern_discover_and_tools_list_need_no_session() {
    let w = World::new();
    let res = modern(&w, &alice(), "server/discover", json!({}));
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert!(res.headers().get("mcp-session-id").is_none(), "no session is minted");
    let d = one(&res);
    let r = complete(&d);
    assert_eq!(r["supportedVersions"][0], MODERN_VERSION);
    assert!(r["supportedVersions"].as_array().unwrap().contains(&json!("2025-11-25")));
    assert!(r["capabilities"]["tools"].is_object());
    assert_eq!((r["cacheScope"].as_str(), r["ttlMs"].as_u64().is_some()), (Some("public"), true));

    let list = one(&modern(&w, &alice(), "tools/list", json!({})));
    let r = complete(&list);
    let names: Vec<&str> = r["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["who_am_I", "get_my_todo_list", "create_new_todo", "toggle_todo_status", "deleteTodo"]);
    assert_eq!(r["cacheScope"], "public", "the list is the same for every user");
    assert!(r["ttlMs"].as_u64().unwrap() > 0);
    assert!(w.envelopes.borrow().is_empty(), "no session object was asked");
}

#[test]
fn mcp_modern_tool_calls_run_without_a_session_and_keep_each_users_data() {
    let w = World::new();
    let bob = caller("bob", "grant-b", "tok-bob");
    let created =
        one(&modern(&w, &alice(), "tools/call", json!({"name": "create_new_todo", "arguments": {"text": "buy milk"}})));
    let r = complete(&created);
    assert_ne!(r["isError"], true, "{created}");
    assert_eq!(w.api.todos_of("alice").len(), 1);
    let listed = one(&modern(&w, &bob, "tools/call", json!({"name": "get_my_todo_list", "arguments": {}})));
    assert_eq!(complete(&listed)["structuredContent"]["todos"], json!([]), "bob sees only his own");
    // A session id sent along is ignored, never echoed.
    let res = w.send(
        post(
            &body(3, "tools/call", json!({"name": "get_my_todo_list", "arguments": {}})),
            &[
                ("mcp-protocol-version", MODERN_VERSION),
                ("mcp-method", "tools/call"),
                ("mcp-name", "get_my_todo_list"),
                ("mcp-session-id", "not-a-session"),
            ],
        ),
        &alice(),
    );
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("mcp-session-id").is_none());
    assert_eq!(one(&res)["result"]["structuredContent"]["todos"].as_array().unwrap().len(), 1);
    assert!(w.envelopes.borrow().is_empty());
}

#[test]
fn mcp_modern_scopes_are_enforced_as_in_the_session_era() {
    let w = World::new();
    let reader = Caller { scopes: vec!["todo_api:read".into()], ..alice() };
    let res = modern(&w, &reader, "tools/call", json!({"name": "deleteTodo", "arguments": {"todoId": "1"}}));
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["x-needed-scope"], "todo_api:read todo_api:write");
    let ok = modern(&w, &reader, "tools/call", json!({"name": "get_my_todo_list", "arguments": {}}));
    assert_eq!(ok.status(), 200);
}

#[test]
fn mcp_modern_refusals_are_modern_errors_a_dual_era_client_recognises() {
    let w = World::new();
    let code = |res: &http::Response<Vec<u8>>| one(res)["error"]["code"].as_i64().unwrap();
    // Mcp-Name disagreeing with the body.
    let res = w.send(
        post(
            &body(1, "tools/call", json!({"name": "deleteTodo", "arguments": {"todoId": "1"}})),
            &[("mcp-protocol-version", MODERN_VERSION), ("mcp-method", "tools/call"), ("mcp-name", "who_am_I")],
        ),
        &alice(),
    );
    assert_eq!((res.status().as_u16(), code(&res)), (400, HEADER_MISMATCH));
    assert!(w.api.seen.borrow().is_empty(), "nothing ran");
    // No Mcp-Method at all.
    let res = w.send(post(&body(1, "tools/list", json!({})), &[("mcp-protocol-version", MODERN_VERSION)]), &alice());
    assert_eq!((res.status().as_u16(), code(&res)), (400, HEADER_MISMATCH));
    // A revision this server does not speak: the supported ones, session era included.
    let future = body(1, "tools/list", json!({})).replace(MODERN_VERSION, "2099-01-01");
    let res = w.send(post(&future, &[("mcp-protocol-version", "2099-01-01"), ("mcp-method", "tools/list")]), &alice());
    assert_eq!((res.status().as_u16(), code(&res)), (400, UNSUPPORTED_PROTOCOL_VERSION));
    let data = &one(&res)["error"]["data"];
    assert_eq!(data["requested"], "2099-01-01");
    assert_eq!(data["supported"][0], MODERN_VERSION);
    // Removed by the revision: 404 with -32601, never a session error;
    // `initialize` too when it comes as a modern request (with modern _meta).
    for method in ["initialize", "ping", "logging/setLevel", "subscriptions/listen"] {
        let res = modern(&w, &alice(), method, json!({}));
        assert_eq!((res.status().as_u16(), code(&res)), (404, -32601), "{method}");
        assert!(res.headers().get("mcp-session-id").is_none(), "{method}");
    }
    assert!(w.envelopes.borrow().is_empty(), "no session object was asked");
}

#[test]
fn mcp_both_eras_on_one_endpoint() {
    let w = World::new();
    // A session-era client: initialize opens a session as before.
    let sid = open_session(&w, &alice(), "2025-11-25");
    let legacy = tool(&w, &alice(), &sid, "get_my_todo_list", json!({}));
    assert!(legacy.get("resultType").is_none(), "session-era results are as before");
    // A modern request meanwhile, on the same endpoint.
    let m = one(&modern(&w, &alice(), "tools/call", json!({"name": "who_am_I", "arguments": {}})));
    assert_eq!(complete(&m)["isError"], Value::Null);
    // A session-era request without a session is still refused as before.
    let res = w.send(
        post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, &[("mcp-protocol-version", "2025-11-25")]),
        &alice(),
    );
    assert_eq!(res.status(), 400);
    // DELETE without a session: 405, as the modern revision answers it.
    let res = w.send(request("DELETE", "/mcp").body(Vec::new()).unwrap(), &alice());
    assert_eq!(res.status(), 405);
}
