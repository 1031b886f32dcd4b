//! `deleteTodo` (the original server's spelling): deletes a todo; answers
//! with the whole list.

use super::todo_api::{self, Op};
use super::{args, Tool, ToolContext, ToolResult};
use serde_json::{json, Value};

pub const TOOL: Tool = Tool {
    name: "deleteTodo",
    title: Some("Delete Todo"),
    description: "Deletes an existing Todo, using its ID",
    input_schema: || {
        args::object(
            json!({
                "todoId": { "type": "string", "description": "The ID of the Todo to delete" },
            }),
            &["todoId"],
        )
    },
    output_schema: Some(todo_api::list_schema),
    scope: Some(todo_api::WRITE_SCOPE),
    handler: |ctx, args| Box::pin(call(ctx, args)),
};

async fn call(ctx: &ToolContext, args: &Value) -> ToolResult {
    let id = args::string(args, "todoId")?;
    todo_api::run(ctx, Op::Delete(id)).await
}
