//! Every tool against the fake Todo API, including every failure mode.

use super::fakes::*;
use crate::mcp::caller::Caller;
use crate::util::crypto::{b64url, sha256_hex};
use serde_json::{json, Value};

fn alice() -> Caller {
    caller("alice", "grant-a", "tok-alice")
}

fn setup() -> (World, String) {
    let w = World::new();
    let sid = open_session(&w, &alice(), "2025-11-25");
    (w, sid)
}

fn assert_error(result: &Value, needles: &[&str]) {
    assert_eq!(result["isError"], true, "{result}");
    let text = text_of(result);
    for n in needles {
        assert!(text.contains(n), "{text:?} should mention {n:?}");
    }
}

fn todos(result: &Value) -> Vec<Value> {
    assert!(result.get("isError").is_none(), "{result}");
    let structured = result["structuredContent"]["todos"].as_array().unwrap().clone();
    let text: Value = serde_json::from_str(&text_of(result)).unwrap();
    assert_eq!(text["todos"], Value::Array(structured.clone()), "text and structuredContent agree");
    structured
}

#[test]
fn mcp_todo_tools_round_trip_through_the_api() {
    let (w, sid) = setup();
    assert!(todos(&tool(&w, &alice(), &sid, "get_my_todo_list", json!({}))).is_empty());

    let list = todos(&tool(&w, &alice(), &sid, "create_new_todo", json!({"text": "buy milk"})));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["text"], "buy milk");
    assert_eq!(list[0]["completed"], false);
    let id = list[0]["id"].as_str().unwrap().to_owned();

    let list = todos(&tool(&w, &alice(), &sid, "toggle_todo_status", json!({"todoId": id, "completed": true})));
    assert_eq!(list[0]["completed"], true);

    let list = todos(&tool(&w, &alice(), &sid, "deleteTodo", json!({"todoId": id})));
    assert!(list.is_empty());
    assert!(w.api.todos_of("alice").is_empty());

    let seen = w.api.seen.borrow();
    let calls: Vec<(String, String)> = seen.iter().map(|s| (s.method.clone(), s.uri.clone())).collect();
    assert_eq!(
        calls,
        [
            ("GET".into(), format!("{API}/api/todos")),
            ("POST".into(), format!("{API}/api/todos")),
            ("PATCH".into(), format!("{API}/api/todos/{id}")),
            ("DELETE".into(), format!("{API}/api/todos/{id}")),
        ]
    );
    assert_eq!(seen[1].body, json!({"todoText": "buy milk"}));
    assert_eq!(seen[2].body, json!({"completed": true}));
    assert!(seen.iter().all(|s| s.authorization.as_deref() == Some("Bearer tok-alice")));
}

#[test]
fn mcp_users_see_only_their_own_todos() {
    let w = World::new();
    let bob = caller("bob", "grant-b", "tok-bob");
    let a = open_session(&w, &alice(), "2025-11-25");
    let b = open_session(&w, &bob, "2025-11-25");
    tool(&w, &alice(), &a, "create_new_todo", json!({"text": "alice's"}));
    assert!(todos(&tool(&w, &bob, &b, "get_my_todo_list", json!({}))).is_empty());
}

#[test]
fn mcp_todo_ids_are_one_encoded_path_segment() {
    let (w, sid) = setup();
    let r = tool(&w, &alice(), &sid, "deleteTodo", json!({"todoId": "a/../b?c#d"}));
    assert_error(&r, &["no todo with ID \"a/../b?c#d\"", "get_my_todo_list"]);
    assert_eq!(w.api.seen.borrow()[0].uri, format!("{API}/api/todos/a%2F..%2Fb%3Fc%23d"));

    let before = w.api.seen.borrow().len();
    assert_error(&tool(&w, &alice(), &sid, "deleteTodo", json!({"todoId": ".."})), &["not a todo ID"]);
    assert_eq!(w.api.seen.borrow().len(), before, "no request for an impossible id");
}

#[test]
fn mcp_invalid_arguments_are_tool_errors_without_api_calls() {
    let (w, sid) = setup();
    let cases = [
        ("create_new_todo", json!({}), "\"text\" is required"),
        ("create_new_todo", json!({"text": 5}), "\"text\" must be a string"),
        ("create_new_todo", json!({"text": "  "}), "\"text\" must not be empty"),
        ("toggle_todo_status", json!({"todoId": "t1"}), "\"completed\" is required"),
        ("toggle_todo_status", json!({"todoId": "t1", "completed": "yes"}), "\"completed\" must be true or false"),
        ("toggle_todo_status", json!({"completed": true}), "\"todoId\" is required"),
        ("deleteTodo", json!({"todoId": 3}), "\"todoId\" must be a string"),
    ];
    for (name, args, msg) in cases {
        assert_error(&tool(&w, &alice(), &sid, name, args), &["Invalid arguments", msg]);
    }
    assert!(w.api.seen.borrow().is_empty());
}

#[test]
fn mcp_todo_api_failures_explain_what_to_do() {
    let (w, sid) = setup();
    let list = || tool(&w, &alice(), &sid, "get_my_todo_list", json!({}));
    let set = |m: Mode| *w.api.mode.borrow_mut() = m;

    set(Mode::Status(401, json!({"error": "invalid_token"})));
    assert_error(&list(), &["Get Todos failed", "PingOne session has expired", "Reconnect"]);
    set(Mode::Status(500, json!({"error": "boom"})));
    assert_error(&list(), &["HTTP 500", "try again later"]);
    set(Mode::Status(503, Value::Null));
    assert_error(&list(), &["HTTP 503"]);
    set(Mode::Timeout);
    assert_error(&list(), &["did not answer within 10 seconds"]);
    set(Mode::Unreachable);
    assert_error(&list(), &["could not be reached", "API_URL"]);
    set(Mode::Garbage);
    assert_error(&list(), &["not a todo list"]);
    set(Mode::Status(400, json!({"error": "invalid_request", "error_description": "todoText too long"})));
    assert_error(
        &tool(&w, &alice(), &sid, "create_new_todo", json!({"text": "x"})),
        &["HTTP 400", "todoText too long"],
    );
    set(Mode::Status(404, json!({"error": "not_found"})));
    assert_error(&list(), &["404", "API_URL"]);
    assert!(!text_of(&list()).contains("tok-alice"), "the token never appears in errors");
}

#[test]
fn mcp_missing_scope_and_missing_todo_are_named() {
    let w = World::new();
    let carol = caller("carol", "grant-c", "tok-reader");
    let sid = open_session(&w, &carol, "2025-11-25");
    assert!(todos(&tool(&w, &carol, &sid, "get_my_todo_list", json!({}))).is_empty());
    let r = tool(&w, &carol, &sid, "create_new_todo", json!({"text": "x"}));
    assert_error(&r, &["Create Todo failed", "403", "\"todo_api:write\" scope", "requires todo_api:write"]);

    let (w, sid) = setup();
    let r = tool(&w, &alice(), &sid, "toggle_todo_status", json!({"todoId": "t404", "completed": true}));
    assert_error(&r, &["Toggle Todo failed", "no todo with ID \"t404\""]);
}

#[test]
fn mcp_expired_or_missing_pingone_token_is_reported_without_calling_the_api() {
    let (w, sid) = setup();
    let mut expired = alice();
    expired.props["subjectTokenExpiresAt"] = json!(NOW - 1);
    assert_error(&tool(&w, &expired, &sid, "get_my_todo_list", json!({})), &["expired", "Reconnect"]);
    let mut none = alice();
    none.props = json!({"claims": {"sub": "alice"}});
    assert_error(&tool(&w, &none, &sid, "deleteTodo", json!({"todoId": "t1"})), &["no PingOne access token"]);
    assert!(w.api.seen.borrow().is_empty());
}

fn jwt(claims: Value) -> String {
    format!("{}.{}.{}", b64url(br#"{"alg":"RS256"}"#), b64url(claims.to_string()), b64url(b"signature"))
}

#[test]
fn mcp_who_am_i_describes_the_user_without_the_token() {
    let (w, sid) = setup();
    let token = jwt(json!({
        "sub": "alice", "iss": "https://auth.pingone.com/env/as", "aud": ["https://api.example.com"],
        "scope": "openid todo_api:read", "exp": NOW + 600,
    }));
    let mut who = alice();
    who.props["subjectToken"] = json!(token);
    who.props.as_object_mut().unwrap().remove("scopes");
    let r = tool(&w, &who, &sid, "who_am_I", json!({}));
    assert!(r.get("isError").is_none());
    let text = text_of(&r);
    assert!(!text.contains(&token) && !text.contains(token.split('.').nth(1).unwrap()), "no raw token");
    assert!(!text.contains("refresh-secret"));
    let out: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(out["user"]["preferred_username"], "alice");
    let at = &out["pingOneAccessToken"];
    assert_eq!(at["audience"], json!(["https://api.example.com"]));
    assert_eq!(at["scopes"], json!(["openid", "todo_api:read"]));
    assert_eq!(at["expiresAt"], NOW + 3600, "props expiry wins over the claim");
    assert_eq!(at["tokenFingerprint"], format!("sha256:{}", &sha256_hex(&token)[..16]));
    assert!(at.get("accessToken").is_none());
    assert_eq!(out["mcpSession"]["clientId"], "client-1");
}

#[test]
fn mcp_who_am_i_handles_opaque_tokens_without_showing_them() {
    let (w, sid) = setup();
    let r = tool(&w, &alice(), &sid, "who_am_I", json!({}));
    assert!(r.get("isError").is_none());
    let text = text_of(&r);
    assert!(!text.contains("tok-alice"), "the PingOne token never appears: {text}");
    let out: Value = serde_json::from_str(&text).unwrap();
    assert!(out["pingOneAccessToken"].get("accessToken").is_none());
    assert_eq!(out["pingOneAccessToken"]["tokenFingerprint"], format!("sha256:{}", &sha256_hex("tok-alice")[..16]));
    assert!(out["pingOneAccessToken"]["audience"].is_null(), "an opaque token has no readable claims");
    assert_eq!(out["pingOneAccessToken"]["scopes"], json!(["openid", "todo_api:read", "todo_api:write"]));

    let mut none = alice();
    none.props = json!({});
    assert_error(&tool(&w, &none, &sid, "who_am_I", json!({})), &["User session not found"]);
}

#[test]
fn mcp_tool_call_streams_when_sse_is_accepted() {
    let (w, sid) = setup();
    let body = json!({"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"get_my_todo_list"}});
    let res = w.send(post(&body.to_string(), &[("mcp-session-id", &sid)]), &alice());
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(one(&res)["id"], "c1");
}

#[test]
fn mcp_a_read_only_token_is_refused_writes_before_any_tool_runs() {
    let (w, sid) = setup();
    let reader = Caller { scopes: vec!["todo_api:read".into()], ..alice() };
    assert!(todos(&tool(&w, &reader, &sid, "get_my_todo_list", json!({}))).is_empty());
    for (name, args) in [
        ("create_new_todo", json!({"text": "x"})),
        ("toggle_todo_status", json!({"todoId": "1", "completed": true})),
        ("deleteTodo", json!({"todoId": "1"})),
    ] {
        let msg = json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":name,"arguments":args}});
        let res = call(&w, &reader, &sid, msg);
        assert_eq!(res.status(), 403, "{name}");
        // What the client should ask for: what it has plus what it lacks.
        assert_eq!(res.headers()["x-needed-scope"], "todo_api:read todo_api:write");
    }
    // who_am_I needs no scope; a token without any still reads who it is.
    let nobody = Caller { scopes: vec![], ..alice() };
    assert!(tool(&w, &nobody, &sid, "who_am_I", json!({})).get("isError").is_none());
    let res = call(
        &w,
        &nobody,
        &sid,
        json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_my_todo_list"}}),
    );
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["x-needed-scope"], "todo_api:read");
    // Nothing was written on the way.
    assert!(todos(&tool(&w, &alice(), &sid, "get_my_todo_list", json!({}))).is_empty());
}

#[test]
fn mcp_scope_check_covers_batches_and_leaves_other_methods_alone() {
    use crate::mcp::tools::missing_scopes;
    let call = |name: &str| json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":name}});
    let read = vec!["todo_api:read".to_owned()];
    let batch = json!([call("get_my_todo_list"), call("deleteTodo"), call("create_new_todo")]);
    assert_eq!(missing_scopes(&batch, &read), vec!["todo_api:write"]);
    assert_eq!(missing_scopes(&batch, &[]), vec!["todo_api:read", "todo_api:write"]);
    assert!(missing_scopes(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}), &[]).is_empty());
    assert!(missing_scopes(&call("no_such_tool"), &[]).is_empty(), "unknown tools are a protocol error later");
    assert!(missing_scopes(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call"}), &[]).is_empty());
}

#[test]
fn mcp_a_tool_never_runs_past_its_scope_even_if_the_worker_check_is_bypassed() {
    let w = World::new();
    let reader = Caller { scopes: vec!["todo_api:read".into()], ..alice() };
    let ctx = w.ctx(&reader);
    let out = futures::executor::block_on(crate::mcp::tools::call(&ctx, "create_new_todo", &json!({"text": "x"})));
    assert_error(&out.unwrap(), &["todo_api:write"]);
}

#[test]
fn mcp_the_registry_lists_each_tool_once_in_its_order() {
    use crate::mcp::tools::{list, TOOLS};
    let names: Vec<&str> = TOOLS.tools().iter().map(|t| t.name).collect();
    // The original server's tools, in its order (tools added since may be anywhere).
    let original = ["who_am_I", "get_my_todo_list", "create_new_todo", "toggle_todo_status", "deleteTodo"];
    assert_eq!(names.iter().filter(|n| original.contains(n)).copied().collect::<Vec<_>>(), original);
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "tool names are unique: {names:?}");
    for t in TOOLS.tools() {
        let schema = (t.input_schema)();
        assert_eq!(schema["type"], "object", "{}: MCP input schemas are object schemas", t.name);
        let properties = schema["properties"].as_object().unwrap_or_else(|| panic!("{}: no properties", t.name));
        for r in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            assert!(properties.contains_key(r.as_str().unwrap()), "{}: required {r} is not a property", t.name);
        }
        if let Some(output) = t.output_schema {
            assert_eq!(output()["type"], "object", "{}: MCP output schemas are object schemas", t.name);
        }
    }
    let listed: Vec<Value> = list()["tools"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect();
    assert_eq!(listed, names, "tools/list is in registry order");
    assert_eq!(list(), TOOLS.list(), "the kept list is the registry's");
}

#[test]
fn mcp_a_tool_defined_anywhere_can_be_registered() {
    use crate::mcp::tools::{args, text_result, Registry, Tool, ToolContext, ToolResult};
    const SHOUT: Tool = Tool {
        name: "shout",
        title: Some("Shout"),
        description: "Says it louder.",
        input_schema: || args::object(json!({ "text": { "type": "string" } }), &["text"]),
        output_schema: None,
        scope: Some("todo_api:write"),
        handler: |ctx, args| Box::pin(shout(ctx, args)),
    };
    async fn shout(_ctx: &ToolContext, args: &Value) -> ToolResult {
        Ok(text_result(args::string(args, "text")?.to_uppercase()))
    }

    let registry = Registry::new(&[SHOUT]);
    assert_eq!(
        registry.list(),
        json!({ "tools": [{
            "name": "shout",
            "title": "Shout",
            "description": "Says it louder.",
            "inputSchema": {
                "type": "object",
                "properties": { "text": { "type": "string" } },
                "required": ["text"],
                "additionalProperties": false,
            },
        }]})
    );
    let w = World::new();
    let run =
        |who: &Caller, name: &str, args: Value| futures::executor::block_on(registry.call(&w.ctx(who), name, &args));
    assert_eq!(text_of(&run(&alice(), "shout", json!({"text": "hi"})).unwrap()), "HI");
    assert_error(&run(&alice(), "shout", json!({})).unwrap(), &["Invalid arguments: \"text\" is required."]);
    assert!(run(&alice(), "who_am_I", json!({})).is_none(), "a registry knows only its own tools");
    let reader = Caller { scopes: vec!["todo_api:read".into()], ..alice() };
    assert_error(&run(&reader, "shout", json!({"text": "hi"})).unwrap(), &["not granted todo_api:write"]);
    let msg = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"shout"}});
    assert_eq!(registry.missing_scopes(&msg, &reader.scopes), ["todo_api:write"]);
}
