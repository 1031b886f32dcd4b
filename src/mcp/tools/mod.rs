//! The five tools of the original server (same names, descriptions and input
//! schemas), answering with MCP `CallToolResult`s. Failures a person can act
//! on are results with `isError: true`; only an unknown tool is a protocol
//! error.

pub mod todo_api;
pub mod who_am_i;

use super::caller::{Caller, Props};
use super::jsonrpc;
use crate::outbound::HttpClient;
use serde_json::{json, Value};
use std::rc::Rc;
use todo_api::{Op, TodoApi};

pub const WHO_AM_I: &str = "who_am_I";
pub const GET_TODOS: &str = "get_my_todo_list";
pub const CREATE_TODO: &str = "create_new_todo";
pub const TOGGLE_TODO: &str = "toggle_todo_status";
pub const DELETE_TODO: &str = "deleteTodo";
const NAMES: [&str; 5] = [WHO_AM_I, GET_TODOS, CREATE_TODO, TOGGLE_TODO, DELETE_TODO];

/// The MCP scope that lets a client read the todo list (PingOne's scope name too).
pub const READ_SCOPE: &str = "todo_api:read";
/// The MCP scope that lets a client change the todo list.
pub const WRITE_SCOPE: &str = "todo_api:write";

/// The MCP scope a tool needs; `None` for a tool any token may call
/// (`who_am_I`) or one that does not exist (that is a protocol error later).
pub fn required_scope(name: &str) -> Option<&'static str> {
    match name {
        GET_TODOS => Some(READ_SCOPE),
        CREATE_TODO | TOGGLE_TODO | DELETE_TODO => Some(WRITE_SCOPE),
        _ => None,
    }
}

/// The scopes `message` (one JSON-RPC message or a batch) needs for its
/// `tools/call`s that `granted` lacks, without duplicates.
pub fn missing_scopes(message: &Value, granted: &[String]) -> Vec<&'static str> {
    let one = |m: &Value| {
        (m.get("method").and_then(Value::as_str) == Some("tools/call"))
            .then(|| m.pointer("/params/name").and_then(Value::as_str).and_then(required_scope))
            .flatten()
    };
    let needed: Vec<&'static str> = match message {
        Value::Array(batch) => batch.iter().filter_map(one).collect(),
        m => one(m).into_iter().collect(),
    };
    let mut missing: Vec<&'static str> = Vec::new();
    for s in needed {
        if !granted.iter().any(|g| g == s) && !missing.contains(&s) {
            missing.push(s);
        }
    }
    missing
}

/// A `tools/call` request waiting to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: Value,
    pub name: String,
    pub arguments: Value,
}

/// What a tool run needs; owned so a run can outlive the request handler
/// (it is awaited inside a streaming response).
#[derive(Clone)]
pub struct ToolContext {
    pub http: Rc<dyn HttpClient>,
    /// Base URL of the Todo API (`API_URL`).
    pub api_url: String,
    pub caller: Caller,
    pub now: u64,
}

pub fn is_known(name: &str) -> bool {
    NAMES.contains(&name)
}

/// The `tools/list` result.
pub fn list() -> Value {
    let no_args = json!({ "type": "object", "properties": {} });
    let todo_id = json!({ "type": "string", "description": "The ID of the Todo to update" });
    json!({ "tools": [
        {
            "name": WHO_AM_I,
            "description": "Get the token for the current session info, helpful for debugging.",
            "inputSchema": no_args,
        },
        {
            "name": GET_TODOS,
            "description": "Get the Todo list for the current session from the Todo API.",
            "inputSchema": no_args,
            "outputSchema": todo_api::list_schema(),
        },
        {
            "name": CREATE_TODO,
            "description": "Adds a new todo to the current sessions Todo list by calling the Todo API.",
            "inputSchema": object_schema(json!({
                "text": { "type": "string", "description": "Todo item text" },
            }), &["text"]),
            "outputSchema": todo_api::list_schema(),
        },
        {
            "name": TOGGLE_TODO,
            "title": "Toggle Todo Status",
            "description": "Marks an existing Todo as either completed or incomplete, using its ID and the target status",
            "inputSchema": object_schema(json!({
                "todoId": todo_id,
                "completed": { "type": "boolean", "description": "The target status (true for complete, false for incomplete)" },
            }), &["todoId", "completed"]),
            "outputSchema": todo_api::list_schema(),
        },
        {
            "name": DELETE_TODO,
            "title": "Delete Todo",
            "description": "Deletes an existing Todo, using its ID",
            "inputSchema": object_schema(json!({
                "todoId": { "type": "string", "description": "The ID of the Todo to delete" },
            }), &["todoId"]),
            "outputSchema": todo_api::list_schema(),
        },
    ]})
}

fn object_schema(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

/// Runs the calls one after another and returns their JSON-RPC responses.
pub async fn run(ctx: &ToolContext, calls: Vec<ToolCall>) -> Vec<Value> {
    let mut out = Vec::with_capacity(calls.len());
    for c in calls {
        out.push(match call(ctx, &c.name, &c.arguments).await {
            Some(result) => jsonrpc::result(&c.id, result),
            None => jsonrpc::error(&c.id, jsonrpc::INVALID_PARAMS, &format!("Unknown tool: {}", c.name)),
        });
    }
    out
}

/// One tool's `CallToolResult`, or `None` for a tool that does not exist.
pub async fn call(ctx: &ToolContext, name: &str, args: &Value) -> Option<Value> {
    // The Worker refuses these with a 403 step-up challenge before the session
    // runs; this keeps a tool from ever running past its scope all the same.
    if let Some(scope) = required_scope(name).filter(|s| !ctx.caller.scopes.iter().any(|g| g == s)) {
        return Some(error_result(format!(
            "Error: this connection was not granted {scope}; reconnect and approve it."
        )));
    }
    let props = Props::from_value(&ctx.caller.props);
    if name == WHO_AM_I {
        return Some(who_am_i::run(ctx, &props));
    }
    let op = match name {
        GET_TODOS => Op::List,
        CREATE_TODO => match str_arg(args, "text") {
            Ok(text) => Op::Create(text),
            Err(msg) => return Some(error_result(msg)),
        },
        TOGGLE_TODO => match (str_arg(args, "todoId"), bool_arg(args, "completed")) {
            (Ok(id), Ok(completed)) => Op::Toggle(id, completed),
            (Err(msg), _) | (_, Err(msg)) => return Some(error_result(msg)),
        },
        DELETE_TODO => match str_arg(args, "todoId") {
            Ok(id) => Op::Delete(id),
            Err(msg) => return Some(error_result(msg)),
        },
        _ => return None,
    };
    let Some(token) = props.subject_token.as_deref() else {
        return Some(error_result(
            "Error: this session has no PingOne access token. Disconnect and reconnect the MCP server to sign in again.".into(),
        ));
    };
    if props.subject_token_expires_at.is_some_and(|exp| exp <= ctx.now) {
        return Some(error_result(todo_api::TodoError::Unauthorized.message(&op)));
    }
    let api = TodoApi { http: ctx.http.as_ref(), base: &ctx.api_url, token };
    Some(match api.send(&op).await {
        Ok(todos) => todo_api::list_result(&todos),
        Err(e) => error_result(e.message(&op)),
    })
}

fn str_arg(args: &Value, name: &str) -> Result<String, String> {
    match args.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(format!("Invalid arguments: \"{name}\" must not be empty.")),
        Some(_) => Err(format!("Invalid arguments: \"{name}\" must be a string.")),
        None => Err(format!("Invalid arguments: \"{name}\" is required.")),
    }
}

fn bool_arg(args: &Value, name: &str) -> Result<bool, String> {
    match args.get(name) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("Invalid arguments: \"{name}\" must be true or false.")),
        None => Err(format!("Invalid arguments: \"{name}\" is required.")),
    }
}

/// A successful result with plain text.
pub fn text_result(text: String) -> Value {
    json!({ "content": [{ "type": "text", "text": text }] })
}

/// A failed tool run the model (and the person) can read and act on.
pub fn error_result(text: String) -> Value {
    json!({ "content": [{ "type": "text", "text": text }], "isError": true })
}
