//! Drives the MCP worker with the rmcp client over Streamable HTTP:
//! initialize → tools/list → every tool → an unknown tool, asserting each
//! answer. Exits non-zero with the first failed check on stderr; prints a
//! JSON summary on stdout.
//!
//! `MCP_ERA=modern` speaks MCP 2026-07-28 instead: `server/discover` in place
//! of `initialize` (no fallback to the session era), then the same calls,
//! each carrying its own `_meta` and mirrored headers.

use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::{json, Value};

type Client = RunningService<RoleClient, ()>;

fn check(ok: bool, what: impl AsRef<str>) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what.as_ref().to_owned())
    }
}

async fn call(client: &Client, name: &str, args: Value) -> Result<CallToolResult, String> {
    let mut params = CallToolRequestParams::new(name.to_owned());
    if let Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    client.call_tool(params).await.map_err(|e| format!("{name}: {e}"))
}

fn text(result: &CallToolResult) -> String {
    serde_json::to_value(&result.content)
        .ok()
        .and_then(|c| c.get(0)?.get("text")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The todo list of a successful todo tool result (structured and text must agree).
fn todos(name: &str, result: &CallToolResult) -> Result<Vec<Value>, String> {
    check(result.is_error != Some(true), format!("{name} failed: {}", text(result)))?;
    let structured = result.structured_content.clone().ok_or(format!("{name}: no structuredContent"))?;
    let from_text: Value = serde_json::from_str(&text(result)).map_err(|e| format!("{name}: text is not JSON: {e}"))?;
    check(from_text == structured, format!("{name}: text and structuredContent differ"))?;
    structured["todos"].as_array().cloned().ok_or(format!("{name}: no todos array"))
}

async fn run(url: &str, token: &str, modern: bool) -> Result<Value, String> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned());
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
    let client = if modern {
        let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
        ().serve_with_lifecycle(transport, lifecycle).await.map_err(|e| format!("server/discover: {e}"))?
    } else {
        ().serve(transport).await.map_err(|e| format!("initialize: {e}"))?
    };

    let info = client.peer_info().ok_or("no server info after initialize")?;
    let info = serde_json::to_value(&*info).map_err(|e| e.to_string())?;
    check(info["serverInfo"]["name"].as_str().is_some_and(|n| !n.is_empty()), "serverInfo.name")?;
    check(info["capabilities"]["tools"].is_object(), "capabilities.tools")?;

    let tools = client.list_all_tools().await.map_err(|e| format!("tools/list: {e}"))?;
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    check(
        names == ["who_am_I", "get_my_todo_list", "create_new_todo", "toggle_todo_status", "deleteTodo"],
        format!("tool names: {names:?}"),
    )?;

    let who = call(&client, "who_am_I", json!({})).await?;
    check(who.is_error != Some(true), format!("who_am_I failed: {}", text(&who)))?;
    let who: Value = serde_json::from_str(&text(&who)).map_err(|e| format!("who_am_I text: {e}"))?;
    check(
        who["pingOneAccessToken"]["tokenFingerprint"].as_str().is_some_and(|f| f.starts_with("sha256:")),
        "fingerprint",
    )?;
    check(who["pingOneAccessToken"].get("accessToken").is_none(), "who_am_I must not return the raw token")?;

    let before = todos("get_my_todo_list", &call(&client, "get_my_todo_list", json!({})).await?)?;
    let label = format!("rmcp-client {}", std::process::id());
    let after = todos("create_new_todo", &call(&client, "create_new_todo", json!({"text": label})).await?)?;
    check(after.len() == before.len() + 1, "create_new_todo adds one todo")?;
    let created = after.iter().find(|t| t["text"] == label.as_str()).ok_or("created todo not in list")?;
    let id = created["id"].as_str().ok_or("todo id is not a string")?.to_owned();

    let toggled = todos(
        "toggle_todo_status",
        &call(&client, "toggle_todo_status", json!({"todoId": id, "completed": true})).await?,
    )?;
    check(toggled.iter().any(|t| t["id"] == id.as_str() && t["completed"] == true), "todo marked completed")?;

    let deleted = todos("deleteTodo", &call(&client, "deleteTodo", json!({"todoId": id})).await?)?;
    check(deleted.iter().all(|t| t["id"] != id.as_str()), "todo deleted")?;

    let missing = call(&client, "deleteTodo", json!({"todoId": id})).await?;
    check(missing.is_error == Some(true) && text(&missing).contains("no todo"), "deleting twice is a tool error")?;

    let invalid = call(&client, "toggle_todo_status", json!({"todoId": id})).await?;
    check(invalid.is_error == Some(true), "missing argument is a tool error")?;

    let unknown = client.call_tool(CallToolRequestParams::new("no_such_tool")).await;
    check(unknown.is_err(), "unknown tool is a protocol error")?;

    let _ = client.cancel().await;
    Ok(json!({ "ok": true, "tools": names, "server": info["serverInfo"], "protocolVersion": info["protocolVersion"] }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (Ok(url), Ok(token)) = (std::env::var("MCP_URL"), std::env::var("MCP_TOKEN")) else {
        eprintln!("set MCP_URL and MCP_TOKEN");
        std::process::exit(2);
    };
    let modern = match std::env::var("MCP_ERA").as_deref() {
        Ok("modern") => true,
        Ok("legacy") | Err(_) => false,
        Ok(other) => {
            eprintln!("MCP_ERA must be legacy or modern, not {other}");
            std::process::exit(2);
        }
    };
    match run(&url, &token, modern).await {
        Ok(summary) => println!("{summary}"),
        Err(e) => {
            eprintln!("rmcp-client: {e}");
            std::process::exit(1);
        }
    }
}
