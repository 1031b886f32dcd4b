//! The tools of the built-in MCP server. Each tool is one [`Tool`] value in
//! its own file, listed once in [`TOOLS`]: `tools/list`, the scope check
//! before a call and the call itself all read that list, so a tool cannot be
//! listed without being callable, or callable without its scope.
//!
//! Tools answer with MCP `CallToolResult`s. Failures a person can act on are
//! results with `isError: true`; only an unknown tool is a protocol error.

pub mod args;
mod create_new_todo;
mod delete_todo;
mod get_my_todo_list;
pub mod todo_api;
mod toggle_todo_status;
mod who_am_i;

use super::caller::Caller;
use super::jsonrpc;
use crate::outbound::HttpClient;
use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};
use std::rc::Rc;
use std::sync::OnceLock;

/// Every tool of the server, in `tools/list` order. A new tool is a file
/// like `who_am_i.rs` and one line here.
pub static TOOLS: Registry<'static> = Registry::new(&[
    who_am_i::TOOL,
    get_my_todo_list::TOOL,
    create_new_todo::TOOL,
    toggle_todo_status::TOOL,
    delete_todo::TOOL,
]);

/// One tool: what `tools/list` says about it, the MCP scope it needs and the
/// code that runs it.
#[derive(Clone, Copy)]
pub struct Tool {
    /// What clients call it by; unique in a registry.
    pub name: &'static str,
    /// A name for people, when `name` is not one.
    pub title: Option<&'static str>,
    /// What it does, for the model choosing among tools.
    pub description: &'static str,
    /// JSON Schema of the arguments, an object schema (see [`args`]). A
    /// function because `json!` cannot build a constant.
    pub input_schema: fn() -> Value,
    /// JSON Schema of the result's `structuredContent`, if it has one.
    pub output_schema: Option<fn() -> Value>,
    /// The MCP scope a token needs to call it; `None`: any token may.
    pub scope: Option<&'static str>,
    /// Runs one call: `|ctx, args| Box::pin(call(ctx, args))` for an
    /// `async fn call(ctx: &ToolContext, args: &Value) -> ToolResult`.
    pub handler: Handler,
}

/// A tool's code. Every `async fn` returns a future of its own type, so a
/// list of them holds plain functions that box theirs; not `Send` (Wasm).
pub type Handler = for<'a> fn(&'a ToolContext, &'a Value) -> LocalBoxFuture<'a, ToolResult>;

/// What a tool run answers: a `CallToolResult` (e.g. [`text_result`]), or
/// the text of a failure the person can act on (sent as an `isError` result).
pub type ToolResult = Result<Value, String>;

impl Tool {
    /// Its entry in the `tools/list` result.
    pub fn describe(&self) -> Value {
        let mut out =
            json!({ "name": self.name, "description": self.description, "inputSchema": (self.input_schema)() });
        if let Some(title) = self.title {
            out["title"] = title.into();
        }
        if let Some(schema) = self.output_schema {
            out["outputSchema"] = schema();
        }
        out
    }
}

/// A list of tools, looked up by name. The server's is [`TOOLS`]; a test can
/// build its own from a slice.
pub struct Registry<'a> {
    tools: &'a [Tool],
}

impl<'a> Registry<'a> {
    pub const fn new(tools: &'a [Tool]) -> Self {
        Registry { tools }
    }

    pub fn tools(&self) -> &'a [Tool] {
        self.tools
    }

    pub fn get(&self, name: &str) -> Option<&'a Tool> {
        self.tools.iter().find(|t| t.name == name)
    }

    pub fn is_known(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The MCP scope a tool needs; `None` for a tool any token may call or
    /// one that does not exist (that is a protocol error later).
    pub fn required_scope(&self, name: &str) -> Option<&'static str> {
        self.get(name)?.scope
    }

    /// The scopes `message` (one JSON-RPC message or a batch) needs for its
    /// `tools/call`s that `granted` lacks, without duplicates.
    pub fn missing_scopes(&self, message: &Value, granted: &[String]) -> Vec<&'static str> {
        let one = |m: &Value| {
            (m.get("method").and_then(Value::as_str) == Some("tools/call"))
                .then(|| m.pointer("/params/name").and_then(Value::as_str).and_then(|n| self.required_scope(n)))
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

    /// The `tools/list` result, built afresh (the server's is kept: [`list`]).
    pub fn list(&self) -> Value {
        json!({ "tools": self.tools.iter().map(Tool::describe).collect::<Vec<_>>() })
    }

    /// One tool's `CallToolResult`, or `None` for a tool that does not exist.
    pub async fn call(&self, ctx: &ToolContext, name: &str, args: &Value) -> Option<Value> {
        let tool = self.get(name)?;
        // The Worker refuses these with a 403 step-up challenge before the session
        // runs; this keeps a tool from ever running past its scope all the same.
        if let Some(scope) = tool.scope.filter(|s| !ctx.caller.scopes.iter().any(|g| g == s)) {
            return Some(error_result(format!(
                "Error: this connection was not granted {scope}; reconnect and approve it."
            )));
        }
        Some((tool.handler)(ctx, args).await.unwrap_or_else(error_result))
    }

    /// Runs the calls one after another and returns their JSON-RPC responses.
    pub async fn run(&self, ctx: &ToolContext, calls: Vec<ToolCall>) -> Vec<Value> {
        let mut out = Vec::with_capacity(calls.len());
        for c in calls {
            out.push(match self.call(ctx, &c.name, &c.arguments).await {
                Some(result) => jsonrpc::result(&c.id, result),
                None => jsonrpc::error(&c.id, jsonrpc::INVALID_PARAMS, &format!("Unknown tool: {}", c.name)),
            });
        }
        out
    }
}

pub fn is_known(name: &str) -> bool {
    TOOLS.is_known(name)
}

/// [`Registry::missing_scopes`] of [`TOOLS`].
pub fn missing_scopes(message: &Value, granted: &[String]) -> Vec<&'static str> {
    TOOLS.missing_scopes(message, granted)
}

/// The `tools/list` result of [`TOOLS`], built once per isolate (it never
/// changes while the code runs).
pub fn list() -> Value {
    static LIST: OnceLock<Value> = OnceLock::new();
    LIST.get_or_init(|| TOOLS.list()).clone()
}

/// [`Registry::call`] on [`TOOLS`].
pub async fn call(ctx: &ToolContext, name: &str, args: &Value) -> Option<Value> {
    TOOLS.call(ctx, name, args).await
}

/// [`Registry::run`] on [`TOOLS`].
pub async fn run(ctx: &ToolContext, calls: Vec<ToolCall>) -> Vec<Value> {
    TOOLS.run(ctx, calls).await
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

/// A successful result with plain text.
pub fn text_result(text: String) -> Value {
    json!({ "content": [{ "type": "text", "text": text }] })
}

/// A failed tool run the model (and the person) can read and act on.
pub fn error_result(text: String) -> Value {
    json!({ "content": [{ "type": "text", "text": text }], "isError": true })
}
