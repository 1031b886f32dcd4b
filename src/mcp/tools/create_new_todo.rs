//! `create_new_todo`: adds a todo; answers with the whole list.

use super::todo_api::{self, Op};
use super::{args, Tool, ToolContext, ToolResult};
use serde_json::{json, Value};

pub const TOOL: Tool = Tool {
    name: "create_new_todo",
    title: None,
    description: "Adds a new todo to the current sessions Todo list by calling the Todo API.",
    input_schema: || {
        args::object(
            json!({
                "text": { "type": "string", "description": "Todo item text" },
            }),
            &["text"],
        )
    },
    output_schema: Some(todo_api::list_schema),
    scope: Some(todo_api::WRITE_SCOPE),
    handler: |ctx, args| Box::pin(call(ctx, args)),
};

async fn call(ctx: &ToolContext, args: &Value) -> ToolResult {
    let text = args::string(args, "text")?;
    todo_api::run(ctx, Op::Create(text)).await
}
