//! Client of the Todo API (`/api/todos`), authenticated with the user's
//! PingOne access token, and the messages its failures turn into.

use super::{ToolContext, ToolResult};
use crate::mcp::caller::Props;
use crate::outbound::{HttpClient, OutboundError, TIMEOUT_MS};
use serde_json::{json, Value};

/// The MCP scope that lets a client read the todo list (PingOne's scope name too).
pub const READ_SCOPE: &str = "todo_api:read";
/// The MCP scope that lets a client change the todo list.
pub const WRITE_SCOPE: &str = "todo_api:write";
/// Longest todo id we send; anything longer is not an id the API issued.
const MAX_ID_LEN: usize = 200;

/// One call to the Todo API.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    List,
    Create(String),
    Toggle(String, bool),
    Delete(String),
}

impl Op {
    fn verb(&self) -> &'static str {
        match self {
            Op::List => "Get Todos",
            Op::Create(_) => "Create Todo",
            Op::Toggle(..) => "Toggle Todo",
            Op::Delete(_) => "Delete Todo",
        }
    }
    fn scope(&self) -> &'static str {
        if matches!(self, Op::List) {
            READ_SCOPE
        } else {
            WRITE_SCOPE
        }
    }
    fn todo_id(&self) -> Option<&str> {
        match self {
            Op::Toggle(id, _) | Op::Delete(id) => Some(id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Todo {
    pub id: String,
    pub text: String,
    pub completed: bool,
}

/// Why a Todo API call produced no list.
#[derive(Debug, Clone, PartialEq)]
pub enum TodoError {
    Timeout,
    Unreachable,
    /// 401: PingOne no longer accepts the access token.
    Unauthorized,
    /// 403, with the API's explanation when it gave one.
    Forbidden(Option<String>),
    NotFound,
    /// 400 (or another 4xx), with the API's explanation.
    Rejected(u16, Option<String>),
    /// 5xx.
    Failed(u16),
    /// 2xx whose body is not `{"todos":[...]}`.
    BadResponse,
    /// The todo id cannot be a real one (empty path segment tricks and the like).
    InvalidId,
}

impl TodoError {
    /// What went wrong and what to do about it, in words for a person.
    pub fn message(&self, op: &Op) -> String {
        let what = op.verb();
        let detail = match self {
            TodoError::Timeout => format!(
                "the Todo API did not answer within {} seconds. It may be overloaded; try again in a moment.",
                TIMEOUT_MS / 1000
            ),
            TodoError::Unreachable => {
                "the Todo API could not be reached. Check that it is running and that API_URL points at it, then try again.".into()
            }
            TodoError::Unauthorized => "your PingOne session has expired or was revoked, so the Todo API no longer \
                accepts your access token. Reconnect (re-authenticate) this MCP server in your client to sign in \
                with PingOne again, then retry."
                .into(),
            TodoError::Forbidden(why) => format!(
                "the Todo API refused access (HTTP 403): this needs the \"{}\" scope, which your PingOne access token \
                 does not carry{}. Ask your PingOne administrator to grant it, then reconnect to sign in again.",
                op.scope(),
                why.as_deref().map(|w| format!(" ({w})")).unwrap_or_default()
            ),
            TodoError::NotFound => match op.todo_id() {
                Some(id) => format!(
                    "no todo with ID \"{id}\" exists (it may have been deleted). Call get_my_todo_list to see the current IDs."
                ),
                None => "the Todo API answered 404 Not Found. Check that API_URL points at the Todo API.".into(),
            },
            TodoError::Rejected(status, why) => format!(
                "the Todo API rejected the request (HTTP {status}){}.",
                why.as_deref().map(|w| format!(": {w}")).unwrap_or_default()
            ),
            TodoError::Failed(status) => {
                format!("the Todo API failed with HTTP {status}. This is a server problem; try again later.")
            }
            TodoError::BadResponse => "the Todo API sent an answer that is not a todo list.".into(),
            TodoError::InvalidId => {
                "Invalid arguments: that is not a todo ID. Call get_my_todo_list to see the current IDs.".into()
            }
        };
        format!("{what} failed: {detail}")
    }
}

/// A todo tool's answer on a grant made of an enterprise ID-JAG, which holds
/// no PingOne token for the Todo API.
pub const ENTERPRISE_NO_TOKEN: &str = "Error: this connection was authorized by your organization's identity provider \
     (enterprise-managed authorization), which gives this server no PingOne access token, and the Todo API needs one. \
     To use the Todo tools, connect this MCP server again with the browser sign-in (OAuth authorization code) and sign \
     in to PingOne there.";

/// What a todo tool answers: `op` sent with the session's PingOne access
/// token, then the whole list, or what went wrong and what to do about it.
pub async fn run(ctx: &ToolContext, op: Op) -> ToolResult {
    let props = Props::from_value(&ctx.caller.props);
    let Some(token) = props.subject_token.as_deref() else {
        if props.enterprise {
            return Err(ENTERPRISE_NO_TOKEN.into());
        }
        return Err(
            "Error: this session has no PingOne access token. Disconnect and reconnect the MCP server to sign in again."
                .into(),
        );
    };
    if props.subject_token_expires_at.is_some_and(|exp| exp <= ctx.now) {
        return Err(TodoError::Unauthorized.message(&op));
    }
    let api = TodoApi { http: ctx.http.as_ref(), base: &ctx.api_url, token };
    match api.send(&op).await {
        Ok(todos) => Ok(list_result(&todos)),
        Err(e) => Err(e.message(&op)),
    }
}

pub struct TodoApi<'a> {
    pub http: &'a dyn HttpClient,
    /// `API_URL`, e.g. `https://todo-api.example.workers.dev`.
    pub base: &'a str,
    pub token: &'a str,
}

impl TodoApi<'_> {
    pub async fn send(&self, op: &Op) -> Result<Vec<Todo>, TodoError> {
        let (method, body) = match op {
            Op::List => (http::Method::GET, None),
            Op::Create(text) => (http::Method::POST, Some(json!({ "todoText": text }))),
            Op::Toggle(_, completed) => (http::Method::PATCH, Some(json!({ "completed": completed }))),
            Op::Delete(_) => (http::Method::DELETE, None),
        };
        let url = self.url(op.todo_id())?;
        let mut req = http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.token));
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = req.body(body).map_err(|_| TodoError::Unreachable)?;
        let res = self.http.send(req).await.map_err(|e| match e {
            OutboundError::Timeout => TodoError::Timeout,
            OutboundError::Unreachable(_) => TodoError::Unreachable,
        })?;
        let status = res.status().as_u16();
        let body: Option<Value> = serde_json::from_slice(res.body()).ok();
        let description = || {
            body.as_ref()
                .and_then(|b| b.get("error_description").or_else(|| b.get("error")))
                .and_then(Value::as_str)
                .map(|s| s.chars().take(300).collect::<String>())
        };
        match status {
            200..=299 => parse_list(body.as_ref()).ok_or(TodoError::BadResponse),
            401 => Err(TodoError::Unauthorized),
            403 => Err(TodoError::Forbidden(description())),
            404 => Err(TodoError::NotFound),
            500..=599 => Err(TodoError::Failed(status)),
            _ => Err(TodoError::Rejected(status, description())),
        }
    }

    /// `API_URL/api/todos[/<id>]`, the id percent-encoded as one path segment.
    fn url(&self, id: Option<&str>) -> Result<url::Url, TodoError> {
        let mut url = url::Url::parse(self.base).map_err(|_| TodoError::Unreachable)?;
        {
            let mut path = url.path_segments_mut().map_err(|_| TodoError::Unreachable)?;
            path.pop_if_empty().extend(["api", "todos"]);
            if let Some(id) = id {
                if id.is_empty() || id == "." || id == ".." || id.len() > MAX_ID_LEN {
                    return Err(TodoError::InvalidId);
                }
                path.push(id);
            }
        }
        Ok(url)
    }
}

/// `{"todos":[{id,text,completed}]}`; ids may come as numbers and are kept as strings.
fn parse_list(body: Option<&Value>) -> Option<Vec<Todo>> {
    body?
        .get("todos")?
        .as_array()?
        .iter()
        .map(|t| {
            let id = match t.get("id")? {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some(Todo {
                id,
                text: t.get("text")?.as_str()?.to_owned(),
                completed: t.get("completed").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect()
}

/// The `outputSchema` of every todo tool.
pub fn list_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "todos": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": { "type": "string" },
                        "text": { "type": "string" },
                        "completed": { "type": "boolean" },
                    },
                    "required": ["id", "text", "completed"],
                },
            },
        },
        "required": ["todos"],
    })
}

/// The list as `structuredContent`, and the same JSON as text for clients
/// that read only text.
pub fn list_result(todos: &[Todo]) -> Value {
    let structured = json!({ "todos": todos });
    let text = serde_json::to_string_pretty(&structured).unwrap_or_default();
    json!({
        "content": [{ "type": "text", "text": text }],
        "structuredContent": structured,
    })
}
