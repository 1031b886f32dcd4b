//! Streamable HTTP and legacy SSE rules, sessions and their owners.

use super::fakes::*;
use crate::mcp::caller::Caller;
use crate::mcp::jsonrpc;
use crate::mcp::session::SESSION_TTL_SECS;
use serde_json::{json, Value};

fn alice() -> crate::mcp::caller::Caller {
    caller("alice", "grant-a", "tok-alice")
}

fn error_code(res: &http::Response<Vec<u8>>) -> i64 {
    one(res)["error"]["code"].as_i64().unwrap_or_else(|| panic!("no error in {}", String::from_utf8_lossy(res.body())))
}

fn ping() -> Value {
    json!({"jsonrpc":"2.0","id":"p1","method":"ping"})
}

#[test]
fn mcp_initialize_creates_a_session_with_a_random_id() {
    let w = World::new();
    let res = w.send(post(&init_body("2025-06-18"), &[]), &alice());
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let sid = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    assert!(sid.len() >= 32 && sid.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    let m = one(&res);
    assert_eq!(m["id"], 0);
    assert_eq!(m["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(m["result"]["serverInfo"]["name"], crate::SERVER_NAME);
    assert!(m["result"]["capabilities"]["tools"].is_object());

    let other = w.send(post(&init_body("2025-06-18"), &[]), &alice());
    assert_ne!(other.headers()["mcp-session-id"].to_str().unwrap(), sid);

    // The state is stored under the session's object.
    let stored = w.storage(&format!("streamable-http:{sid}")).cell.borrow().clone().unwrap();
    assert_eq!(stored.user_id, "alice");
    assert_eq!(stored.client_info["name"], "test-client");
    assert!(!stored.initialized);
}

#[test]
fn mcp_version_negotiation_echoes_supported_else_latest() {
    let w = World::new();
    for v in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let res = w.send(post(&init_body(v), &[]), &alice());
        assert_eq!(one(&res)["result"]["protocolVersion"], v);
    }
    let res = w.send(post(&init_body("2030-01-01"), &[]), &alice());
    assert_eq!(one(&res)["result"]["protocolVersion"], "2025-11-25");
}

#[test]
fn mcp_initialize_with_bad_params_creates_no_session() {
    let w = World::new();
    let res = w.send(post(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#, &[]), &alice());
    assert_eq!(res.status(), 200);
    assert_eq!(error_code(&res), jsonrpc::INVALID_PARAMS);
    assert!(res.headers().get("mcp-session-id").is_none());
    assert!(w.storages.borrow().values().all(|s| s.cell.borrow().is_none()));
}

#[test]
fn mcp_answers_json_or_sse_as_accept_allows() {
    let w = World::new();
    let both = w.send(post(&init_body("2025-11-25"), &[]), &alice());
    assert_eq!(both.headers()["content-type"], "text/event-stream");

    let mut req = post(&init_body("2025-11-25"), &[]);
    req.headers_mut().insert("accept", "application/json".parse().unwrap());
    let res = w.send(req, &alice());
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(one(&res)["result"]["protocolVersion"], "2025-11-25");

    // Some proxies send only text/event-stream.
    let mut req = post(&init_body("2025-11-25"), &[]);
    req.headers_mut().insert("accept", "text/event-stream".parse().unwrap());
    let res = w.send(req, &alice());
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["cache-control"], "no-cache, no-transform");

    let mut req = post(&init_body("2025-11-25"), &[]);
    req.headers_mut().remove("accept");
    assert_eq!(w.send(req, &alice()).headers()["content-type"], "application/json");

    let mut req = post(&init_body("2025-11-25"), &[]);
    req.headers_mut().insert("accept", "text/html".parse().unwrap());
    let res = w.send(req, &alice());
    assert_eq!(res.status(), 406);
    assert!(res.headers().get("mcp-session-id").is_none());
}

#[test]
fn mcp_rejects_wrong_content_type_size_and_json() {
    let w = World::new();
    let mut req = post(&init_body("2025-11-25"), &[]);
    req.headers_mut().insert("content-type", "text/plain".parse().unwrap());
    assert_eq!(w.send(req, &alice()).status(), 415);
    let mut req = post(&init_body("2025-11-25"), &[]);
    req.headers_mut().remove("content-type");
    assert_eq!(w.send(req, &alice()).status(), 415);

    let huge = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":"{}"}}}}"#, "a".repeat(1024 * 1024));
    assert_eq!(w.send(post(&huge, &[]), &alice()).status(), 413);

    let res = w.send(post("{not json", &[]), &alice());
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(&res), jsonrpc::PARSE_ERROR);

    let res = w.send(post(r#"{"jsonrpc":"2.0","id":1}"#, &[]), &alice());
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(&res), jsonrpc::INVALID_REQUEST);
    assert!(w.envelopes.borrow().is_empty(), "nothing reached a session object");
}

#[test]
fn mcp_requests_need_a_session_and_unknown_ones_get_404() {
    let w = World::new();
    let res = w.send(post(&ping().to_string(), &[]), &alice());
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(&res), jsonrpc::SERVER_ERROR);
    assert!(String::from_utf8_lossy(res.body()).contains("Mcp-Session-Id"));

    let res = call(&w, &alice(), "no-such-session-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ping());
    assert_eq!(res.status(), 404);
    assert_eq!(error_code(&res), jsonrpc::SESSION_NOT_FOUND);
    assert_eq!(call(&w, &alice(), "bad id", ping()).status(), 404);

    // initialize never goes to an existing session, nor in a batch.
    let sid = open_session(&w, &alice(), "2025-03-26");
    let res = w.send(post(&init_body("2025-03-26"), &[("mcp-session-id", &sid)]), &alice());
    assert_eq!(res.status(), 400);
    let batch = format!("[{}]", init_body("2025-03-26"));
    assert_eq!(w.send(post(&batch, &[]), &alice()).status(), 400);
    assert_eq!(w.send(post(&batch, &[("mcp-session-id", &sid)]), &alice()).status(), 400);
}

#[test]
fn mcp_ping_tools_list_and_unknown_methods_in_a_session() {
    let w = World::new();
    let sid = open_session(&w, &alice(), "2025-11-25");
    let res = call(&w, &alice(), &sid, ping());
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["mcp-session-id"], sid.as_str());
    assert_eq!(one(&res), json!({"jsonrpc":"2.0","id":"p1","result":{}}));

    let res = call(&w, &alice(), &sid, json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}));
    assert_eq!(one(&res)["result"]["tools"].as_array().unwrap().len(), 5);

    let res = call(&w, &alice(), &sid, json!({"jsonrpc":"2.0","id":3,"method":"prompts/list"}));
    assert_eq!(res.status(), 200);
    assert_eq!(error_code(&res), jsonrpc::METHOD_NOT_FOUND);

    let res = call(&w, &alice(), &sid, json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}));
    assert_eq!(error_code(&res), jsonrpc::INVALID_PARAMS);
}

#[test]
fn mcp_notifications_and_client_responses_get_202_without_body() {
    let w = World::new();
    let sid = open_session(&w, &alice(), "2025-11-25");
    for body in [
        json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}),
        json!({"jsonrpc":"2.0","id":"s1","result":{}}),
    ] {
        let res = call(&w, &alice(), &sid, body);
        assert_eq!(res.status(), 202);
        assert!(res.body().is_empty());
    }
    let state = w.storage(&format!("streamable-http:{sid}")).cell.borrow().clone().unwrap();
    assert!(state.initialized, "notifications/initialized was recorded");
}

#[test]
fn mcp_protocol_version_header_must_be_supported() {
    let w = World::new();
    let sid = open_session(&w, &alice(), "2025-11-25");
    let res = w
        .send(post(&ping().to_string(), &[("mcp-session-id", &sid), ("mcp-protocol-version", "1999-01-01")]), &alice());
    assert_eq!(res.status(), 400);
    assert!(String::from_utf8_lossy(res.body()).contains("MCP-Protocol-Version"));
    // Absent: the negotiated version applies.
    let res = w.send(post(&ping().to_string(), &[("mcp-session-id", &sid)]), &alice());
    assert_eq!(res.status(), 200);
}

#[test]
fn mcp_batches_only_where_the_negotiated_version_allows() {
    let w = World::new();
    let old = open_session(&w, &alice(), "2025-03-26");
    let batch = json!([
        {"jsonrpc":"2.0","id":1,"method":"ping"},
        {"jsonrpc":"2.0","method":"notifications/cancelled"},
        {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_my_todo_list"}},
        {"jsonrpc":"2.0","id":3,"method":9},
    ]);
    let mut req = post(&batch.to_string(), &[("mcp-session-id", &old)]);
    req.headers_mut().insert("accept", "application/json".parse().unwrap());
    let res = w.send(req, &alice());
    assert_eq!(res.status(), 200);
    let answers: Value = serde_json::from_slice(res.body()).unwrap();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 3);
    let by_id = |id: i64| answers.iter().find(|a| a["id"] == id).cloned().unwrap_or(Value::Null);
    assert_eq!(by_id(1)["result"], json!({}));
    assert!(by_id(2)["result"]["structuredContent"]["todos"].is_array());
    assert_eq!(by_id(3)["error"]["code"], jsonrpc::INVALID_REQUEST);

    let only_notes = json!([{"jsonrpc":"2.0","method":"notifications/cancelled"}]);
    assert_eq!(w.send(post(&only_notes.to_string(), &[("mcp-session-id", &old)]), &alice()).status(), 202);
    assert_eq!(w.send(post("[]", &[("mcp-session-id", &old)]), &alice()).status(), 400);

    let new = open_session(&w, &alice(), "2025-06-18");
    let res = w.send(post(&batch.to_string(), &[("mcp-session-id", &new)]), &alice());
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(&res), jsonrpc::INVALID_REQUEST);
}

#[test]
fn mcp_session_is_bound_to_its_user_and_client() {
    let w = World::new();
    let sid = open_session(&w, &alice(), "2025-11-25");
    let bob = caller("bob", "grant-b", "tok-bob");
    let res = call(
        &w,
        &bob,
        &sid,
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_my_todo_list"}}),
    );
    assert_eq!(res.status(), 404);
    assert!(w.api.seen.borrow().is_empty(), "bob's token never reached the Todo API through alice's session");
    // Same user, another client.
    let other_client = Caller { client_id: "client-2".into(), ..alice() };
    assert_eq!(call(&w, &other_client, &sid, ping()).status(), 404);
    // Same user and client, a new grant (a step-up re-authorization replaced the old one).
    assert_eq!(call(&w, &caller("alice", "grant-new", "tok-alice-2"), &sid, ping()).status(), 200);
    // Bob cannot end it either.
    let del = request("DELETE", "/mcp").header("mcp-session-id", &sid).body(Vec::new()).unwrap();
    assert_eq!(w.send(del, &bob).status(), 404);
    assert_eq!(call(&w, &alice(), &sid, ping()).status(), 200);
}

#[test]
fn mcp_tools_use_the_current_requests_token() {
    let w = World::new();
    let sid = open_session(&w, &alice(), "2025-11-25");
    tool(&w, &alice(), &sid, "get_my_todo_list", json!({}));
    // Same grant, refreshed PingOne token.
    tool(&w, &caller("alice", "grant-a", "tok-alice-2"), &sid, "get_my_todo_list", json!({}));
    let seen = w.api.seen.borrow();
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer tok-alice"));
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer tok-alice-2"));
}

#[test]
fn mcp_delete_ends_the_session() {
    let w = World::new();
    let sid = open_session(&w, &alice(), "2025-11-25");
    let del = || request("DELETE", "/mcp").header("mcp-session-id", &sid).body(Vec::new()).unwrap();
    let res = w.send(del(), &alice());
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(call(&w, &alice(), &sid, ping()).status(), 404);
    assert_eq!(w.send(del(), &alice()).status(), 404);
    w.evict();
    assert_eq!(call(&w, &alice(), &sid, ping()).status(), 404, "deletion is durable");
    // Without a session there is nothing to end: 405, as the modern revision answers DELETE.
    let no_header = request("DELETE", "/mcp").body(Vec::new()).unwrap();
    assert_eq!(w.send(no_header, &alice()).status(), 405);
}

#[test]
fn mcp_get_is_405_never_404() {
    let w = World::new();
    let sid = open_session(&w, &alice(), "2025-11-25");
    let get = request("GET", "/mcp").header("accept", "text/event-stream").header("mcp-session-id", &sid);
    let res = w.send(get.body(Vec::new()).unwrap(), &alice());
    assert_eq!(res.status(), 405);
    assert!(res.headers()["allow"].to_str().unwrap().contains("POST"));
    assert_eq!(w.send(request("PUT", "/mcp").body(Vec::new()).unwrap(), &alice()).status(), 405);
    assert_eq!(w.send(request("GET", "/mcp/elsewhere").body(Vec::new()).unwrap(), &alice()).status(), 404);
}

#[test]
fn mcp_origin_must_be_own_or_loopback() {
    let w = World::new();
    let evil = w.send(post(&init_body("2025-11-25"), &[("origin", "https://evil.example")]), &alice());
    assert_eq!(evil.status(), 403);
    assert!(evil.headers().contains_key("access-control-expose-headers"));
    for ok in [ORIGIN, "http://localhost:6274", "http://127.0.0.1:6274"] {
        let res = w.send(post(&init_body("2025-11-25"), &[("origin", ok)]), &alice());
        assert_eq!(res.status(), 200, "{ok}");
        assert_eq!(res.headers()["access-control-allow-origin"], ok);
    }
}

#[test]
fn mcp_every_response_exposes_the_session_header() {
    let w = World::new();
    let sid = open_session(&w, &alice(), "2025-11-25");
    let o = [("origin", "http://localhost:6274")];
    let responses = [
        w.send(post(&init_body("2025-11-25"), &o), &alice()),
        w.send(post(&ping().to_string(), &o), &alice()),
        w.send(post(&ping().to_string(), &[o[0], ("mcp-session-id", "unknown-session-id")]), &alice()),
        w.send(post(&ping().to_string(), &[o[0], ("mcp-session-id", &sid)]), &alice()),
        w.send(post("{", &o), &alice()),
    ];
    for res in responses {
        let expose = res.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
        assert!(expose.contains("mcp-session-id") && expose.contains("www-authenticate"), "{}", res.status());
    }
}

#[test]
fn mcp_client_headers_never_reach_the_session_object() {
    let w = World::new();
    let req = post(
        &init_body("2025-11-25"),
        &[
            ("x-partykit-props", r#"{"subjectToken":"forged"}"#),
            ("cf-mcp-message", "x"),
            ("authorization", "Bearer abc"),
        ],
    );
    w.send(req, &alice());
    let envelope = w.envelopes.borrow()[0].to_string();
    assert!(!envelope.contains("forged") && !envelope.contains("partykit") && !envelope.contains("Bearer"));
    assert!(!envelope.contains("refresh-secret"), "the PingOne refresh token stays out of the session");
    assert!(envelope.contains("tok-alice"));
}

#[test]
fn mcp_session_survives_eviction_and_reads_storage_once() {
    let w = World::new();
    let sid = open_session(&w, &alice(), "2025-03-26");
    let storage = w.storage(&format!("streamable-http:{sid}"));
    w.evict();
    let loads = storage.loads.get();
    let saves = storage.saves.get();
    for _ in 0..5 {
        assert_eq!(call(&w, &alice(), &sid, ping()).status(), 200);
    }
    tool(&w, &alice(), &sid, "get_my_todo_list", json!({}));
    assert_eq!(storage.loads.get(), loads + 1, "state is read once per object instance");
    assert_eq!(storage.saves.get(), saves, "nothing changed, nothing written");
    // The negotiated version survived: batches still allowed for 2025-03-26.
    let batch = json!([{"jsonrpc":"2.0","id":1,"method":"ping"}]);
    assert_eq!(w.send(post(&batch.to_string(), &[("mcp-session-id", &sid)]), &alice()).status(), 200);
}

#[test]
fn mcp_sessions_expire_and_active_ones_are_extended() {
    let w = World::new();
    let sid = open_session(&w, &alice(), "2025-11-25");
    let storage = w.storage(&format!("streamable-http:{sid}"));
    let saves = storage.saves.get();
    w.now.set(NOW + SESSION_TTL_SECS / 2 + 10);
    assert_eq!(call(&w, &alice(), &sid, ping()).status(), 200);
    assert_eq!(storage.saves.get(), saves + 1, "extended once");
    assert_eq!(call(&w, &alice(), &sid, ping()).status(), 200);
    assert_eq!(storage.saves.get(), saves + 1, "and not again right away");
    w.now.set(NOW + SESSION_TTL_SECS * 2);
    assert_eq!(call(&w, &alice(), &sid, ping()).status(), 404);
    assert!(storage.cell.borrow().is_none(), "expired state is erased");
}

#[test]
fn mcp_storage_failure_is_a_clean_500() {
    let w = World::new();
    let sid = open_session(&w, &alice(), "2025-11-25");
    w.evict();
    w.storage(&format!("streamable-http:{sid}")).broken.set(true);
    let res = call(&w, &alice(), &sid, ping());
    assert_eq!(res.status(), 500);
    assert_eq!(error_code(&res), jsonrpc::INTERNAL_ERROR);
    assert!(!String::from_utf8_lossy(res.body()).contains("down"));
}

fn sse_get(query: &str) -> http::Request<Vec<u8>> {
    request("GET", &format!("/sse{query}")).header("accept", "text/event-stream").body(Vec::new()).unwrap()
}

fn sse_post(endpoint: &str, body: Value) -> http::Request<Vec<u8>> {
    request("POST", endpoint).header("content-type", "application/json").body(body.to_string().into_bytes()).unwrap()
}

#[test]
fn mcp_legacy_sse_sends_the_endpoint_then_answers_on_the_stream() {
    let w = World::new();
    let res = w.send(sse_get(""), &alice());
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let first = String::from_utf8(res.body().clone()).unwrap();
    let endpoint = first.strip_prefix("event: endpoint\ndata: ").unwrap().trim_end().to_owned();
    assert!(endpoint.starts_with("/sse/message?sessionId="), "same-origin relative URL: {endpoint}");
    let sid = endpoint.split('=').nth(1).unwrap().to_owned();
    let object = format!("sse:{sid}");

    let res = w.send(sse_post(&endpoint, serde_json::from_str(&init_body("2024-11-05")).unwrap()), &alice());
    assert_eq!(res.status(), 202);
    let res = w.send(sse_post(&endpoint, json!({"jsonrpc":"2.0","method":"notifications/initialized"})), &alice());
    assert_eq!(res.status(), 202);
    let res = w.send(sse_post(&endpoint, json!({"jsonrpc":"2.0","id":5,"method":"tools/list"})), &alice());
    assert_eq!(res.status(), 202);

    let stream = http::Response::builder()
        .header("content-type", "text/event-stream")
        .body(w.streams.borrow()[&object].clone())
        .unwrap();
    let events = messages(&stream);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(events[1]["id"], 5);
    assert_eq!(events[1]["result"]["tools"].as_array().unwrap().len(), 5);

    // Second initialize on the same session is refused.
    w.send(sse_post(&endpoint, serde_json::from_str(&init_body("2024-11-05")).unwrap()), &alice());
    let stream = w.streams.borrow()[&object].clone();
    assert!(String::from_utf8(stream).unwrap().contains("already initialized"));
}

#[test]
fn mcp_legacy_sse_rules() {
    let w = World::new();
    let first = String::from_utf8(w.send(sse_get(""), &alice()).body().clone()).unwrap();
    let endpoint = first.strip_prefix("event: endpoint\ndata: ").unwrap().trim_end().to_owned();
    let sid = endpoint.split('=').nth(1).unwrap().to_owned();

    let bob = caller("bob", "grant-b", "tok-bob");
    assert_eq!(w.send(sse_post(&endpoint, ping()), &bob).status(), 404);
    assert_eq!(w.send(sse_get(&format!("?sessionId={sid}")), &bob).status(), 404);
    assert_eq!(w.send(sse_get(&format!("?sessionId={sid}")), &alice()).status(), 200, "owner may reattach");
    assert_eq!(w.send(sse_post("/sse/message", ping()), &alice()).status(), 400);
    assert_eq!(w.send(sse_post("/sse/message?sessionId=unknownunknownunknown", ping()), &alice()).status(), 404);
    let mut wrong_type = sse_post(&endpoint, ping());
    wrong_type.headers_mut().insert("content-type", "text/plain".parse().unwrap());
    assert_eq!(w.send(wrong_type, &alice()).status(), 415);
    let bad = request("POST", &endpoint).header("content-type", "application/json").body(b"{".to_vec()).unwrap();
    assert_eq!(w.send(bad, &alice()).status(), 400);
    let html = request("GET", "/sse").header("accept", "text/html").body(Vec::new()).unwrap();
    assert_eq!(w.send(html, &alice()).status(), 406);
    assert_eq!(w.send(sse_get("?sessionId=never-opened-session-id"), &alice()).status(), 404);
}
