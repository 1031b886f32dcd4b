//! `toggle_todo_status`: marks a todo done or not done; answers with the
//! whole list.

use super::todo_api::{self, Op};
use super::{args, Tool, ToolContext, ToolResult};
use serde_json::{json, Value};

pub const TOOL: Tool = Tool {
    name: "toggle_todo_status",
    title: Some("Toggle Todo Status"),
    description: "Marks an existing Todo as either completed or incomplete, using its ID and the target status",
    input_schema: || {
        args::object(
            json!({
                "todoId": { "type": "string", "description": "The ID of the Todo to update" },
                "completed": { "type": "boolean", "description": "The target status (true for complete, false for incomplete)" },
            }),
            &["todoId", "completed"],
        )
    },
    output_schema: Some(todo_api::list_schema),
    scope: Some(todo_api::WRITE_SCOPE),
    handler: |ctx, args| Box::pin(call(ctx, args)),
};

async fn call(ctx: &ToolContext, args: &Value) -> ToolResult {
    let id = args::string(args, "todoId")?;
    let completed = args::boolean(args, "completed")?;
    todo_api::run(ctx, Op::Toggle(id, completed)).await
}
