//! `get_my_todo_list`: the caller's todos.

use super::todo_api::{self, Op};
use super::{args, Tool, ToolContext, ToolResult};
use serde_json::Value;

pub const TOOL: Tool = Tool {
    name: "get_my_todo_list",
    title: None,
    description: "Get the Todo list for the current session from the Todo API.",
    input_schema: args::none,
    output_schema: Some(todo_api::list_schema),
    scope: Some(todo_api::READ_SCOPE),
    handler: |ctx, args| Box::pin(call(ctx, args)),
};

async fn call(ctx: &ToolContext, _args: &Value) -> ToolResult {
    todo_api::run(ctx, Op::List).await
}
