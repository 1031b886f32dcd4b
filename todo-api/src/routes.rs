//! The HTTP contract, without the runtime: which route a method and path are,
//! which scope it needs, what its JSON body must be, and every answer as a
//! [`Reply`] (status, extra headers, JSON body).
//!
//! ```text
//! GET    /api/todos        todo_api:read   → { "todos": [...] }
//! POST   /api/todos        todo_api:write  { "todoText": string }
//! PATCH  /api/todos/:id    todo_api:write  { "completed": bool }
//! DELETE /api/todos/:id    todo_api:write
//! GET    /health           no token        { name, version, status }
//! ```

use crate::auth::{AuthError, READ_SCOPE, WRITE_SCOPE};
use crate::config::ConfigError;
use crate::todos::{self, Command, ListError, TextError, Todo, MAX_TEXT_CHARS, MAX_TODOS};
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};

/// Largest request body accepted (a todo is at most 500 characters).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest todo id in a path (ours are about 13 digits).
pub const MAX_ID_BYTES: usize = 200;

/// An answer: status, headers besides `content-type: application/json`, JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, headers: Vec::new(), body }
    }

    /// `{ "error": code, "error_description": description }`.
    pub fn error(status: u16, code: &str, description: impl Into<String>) -> Reply {
        Reply::json(status, json!({ "error": code, "error_description": description.into() }))
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// The body of every success: `{ "todos": [...] }` in list order.
    pub fn todos(todos: &[Todo]) -> Reply {
        Reply::json(200, json!({ "todos": todos }))
    }

    pub fn auth(e: &AuthError) -> Reply {
        Reply::json(e.status(), e.body()).with_header("www-authenticate", e.challenge())
    }

    pub fn not_found() -> Reply {
        Reply::error(404, "not_found", "No such endpoint")
    }

    pub fn too_large() -> Reply {
        Reply::error(413, "invalid_request", format!("The request body is larger than {MAX_BODY_BYTES} bytes"))
    }

    pub fn bad_request(description: impl Into<String>) -> Reply {
        Reply::error(400, "invalid_request", description)
    }

    /// A missing or malformed setting: named, never its value.
    pub fn config(e: &ConfigError) -> Reply {
        Reply::error(500, "server_error", format!("The Todo API is misconfigured: {e}"))
    }

    pub fn internal() -> Reply {
        Reply::error(500, "server_error", "The Todo API failed; try again later")
    }

    /// The issuer's keys could not be fetched, so no token can be checked.
    pub fn keys_unavailable() -> Reply {
        Reply::error(503, "temporarily_unavailable", "The issuer's signing keys could not be fetched; try again later")
            .with_header("retry-after", "5")
    }

    pub fn health() -> Reply {
        Reply::json(
            200,
            json!({ "name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION"), "status": "ok" }),
        )
    }

    /// A refused change of the list.
    pub fn list_error(e: &ListError) -> Reply {
        match e {
            ListError::NotFound => Reply::error(404, "not_found", "No todo with this id"),
            ListError::Full => Reply::bad_request(format!("The list is full ({MAX_TODOS} todos); delete some first")),
            ListError::InvalidText(t) => Reply::bad_request(text_error(*t)),
        }
    }
}

fn text_error(e: TextError) -> String {
    match e {
        TextError::Empty => "todoText must not be empty".into(),
        TextError::TooLong => format!("todoText must be at most {MAX_TEXT_CHARS} characters"),
    }
}

/// A Todo API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRoute {
    List,
    Add,
    SetCompleted(String),
    Delete(String),
}

impl ApiRoute {
    pub fn scope(&self) -> &'static str {
        match self {
            ApiRoute::List => READ_SCOPE,
            _ => WRITE_SCOPE,
        }
    }

    /// Whether the call has a JSON body to read.
    pub fn has_body(&self) -> bool {
        matches!(self, ApiRoute::Add | ApiRoute::SetCompleted(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Api(ApiRoute),
    /// The path exists, the method does not: the value of `Allow`.
    MethodNotAllowed(&'static str),
    NotFound,
}

impl Route {
    /// The answer of a route that ends here (404/405), if it is one.
    pub fn early_reply(&self, method: &str) -> Option<Reply> {
        match self {
            Route::NotFound => Some(Reply::not_found()),
            Route::MethodNotAllowed(allow) => Some(
                Reply::error(405, "method_not_allowed", format!("{method} is not allowed here; use {allow}"))
                    .with_header("allow", *allow),
            ),
            _ => None,
        }
    }
}

/// The route of `method` and `path` (the URL path, still percent-encoded).
pub fn route(method: &str, path: &str) -> Route {
    if path == "/health" {
        return if method == "GET" { Route::Health } else { Route::MethodNotAllowed("GET") };
    }
    let Some(rest) = path.strip_prefix("/api/todos") else {
        return Route::NotFound;
    };
    if rest.is_empty() {
        return match method {
            "GET" => Route::Api(ApiRoute::List),
            "POST" => Route::Api(ApiRoute::Add),
            _ => Route::MethodNotAllowed("GET, POST"),
        };
    }
    let Some(segment) = rest.strip_prefix('/') else {
        return Route::NotFound;
    };
    if segment.is_empty() || segment.contains('/') || segment.len() > 3 * MAX_ID_BYTES {
        return Route::NotFound;
    }
    let Ok(id) = percent_decode_str(segment).decode_utf8() else {
        return Route::NotFound;
    };
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Route::NotFound;
    }
    let id = id.into_owned();
    match method {
        "PATCH" => Route::Api(ApiRoute::SetCompleted(id)),
        "DELETE" => Route::Api(ApiRoute::Delete(id)),
        _ => Route::MethodNotAllowed("PATCH, DELETE"),
    }
}

/// The body as a JSON object, or the 400 saying why not.
fn object(body: &[u8], fields: &str) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Reply::bad_request(format!("The request body must be a JSON object with {fields}")));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Reply::bad_request(format!("The request body must be a JSON object with {fields}"))),
        Err(_) => Err(Reply::bad_request("The request body is not valid JSON")),
    }
}

/// The command for the user's list, from the route and its (size-checked) body.
pub fn command(route: &ApiRoute, body: &[u8]) -> Result<Command, Reply> {
    if route.has_body() && body.len() > MAX_BODY_BYTES {
        return Err(Reply::too_large());
    }
    match route {
        ApiRoute::List => Ok(Command::List),
        ApiRoute::Delete(id) => Ok(Command::Delete { id: id.clone() }),
        ApiRoute::Add => {
            let body = object(body, "todoText")?;
            let text = match body.get("todoText") {
                None | Some(Value::Null) => return Err(Reply::bad_request("todoText is required")),
                Some(Value::String(s)) => s,
                Some(_) => return Err(Reply::bad_request("todoText must be a string")),
            };
            let text = todos::clean_text(text).map_err(|e| Reply::bad_request(text_error(e)))?;
            Ok(Command::Add { text: text.to_owned() })
        }
        ApiRoute::SetCompleted(id) => {
            let body = object(body, "completed")?;
            match body.get("completed") {
                None | Some(Value::Null) => Err(Reply::bad_request("completed is required")),
                Some(Value::Bool(completed)) => Ok(Command::SetCompleted { id: id.clone(), completed: *completed }),
                Some(_) => Err(Reply::bad_request("completed must be true or false")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(method: &str, path: &str) -> ApiRoute {
        match route(method, path) {
            Route::Api(r) => r,
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    fn description(r: &Reply) -> &str {
        r.body["error_description"].as_str().unwrap()
    }

    #[test]
    fn routes_and_scopes() {
        assert_eq!(api("GET", "/api/todos"), ApiRoute::List);
        assert_eq!(api("POST", "/api/todos"), ApiRoute::Add);
        assert_eq!(api("PATCH", "/api/todos/123"), ApiRoute::SetCompleted("123".into()));
        assert_eq!(api("DELETE", "/api/todos/123"), ApiRoute::Delete("123".into()));
        assert_eq!(api("DELETE", "/api/todos/a%2F..%2Fb%3Fc%23d"), ApiRoute::Delete("a/../b?c#d".into()));
        assert_eq!(route("GET", "/health"), Route::Health);
        assert_eq!(ApiRoute::List.scope(), READ_SCOPE);
        for r in [ApiRoute::Add, ApiRoute::SetCompleted("1".into()), ApiRoute::Delete("1".into())] {
            assert_eq!(r.scope(), WRITE_SCOPE);
        }
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
        for path in [
            "/",
            "/api",
            "/api/todo",
            "/api/todosx",
            "/api/todos/",
            "/api/todos/1/2",
            "/api/todos//",
            "/API/todos",
            "/api/todos/%FF",
            &format!("/api/todos/{}", "9".repeat(MAX_ID_BYTES + 1)),
        ] {
            assert_eq!(route("GET", path), Route::NotFound, "{path}");
            assert_eq!(route("GET", path).early_reply("GET").unwrap().status, 404);
        }
        assert_eq!(route("PUT", "/api/todos"), Route::MethodNotAllowed("GET, POST"));
        assert_eq!(route("DELETE", "/api/todos"), Route::MethodNotAllowed("GET, POST"));
        assert_eq!(route("GET", "/api/todos/1"), Route::MethodNotAllowed("PATCH, DELETE"));
        assert_eq!(route("POST", "/api/todos/1"), Route::MethodNotAllowed("PATCH, DELETE"));
        assert_eq!(route("POST", "/health"), Route::MethodNotAllowed("GET"));
        let r = route("PUT", "/api/todos").early_reply("PUT").unwrap();
        assert_eq!(r.status, 405);
        assert_eq!(r.body["error"], "method_not_allowed");
        assert_eq!(r.headers, vec![("allow", "GET, POST".to_string())]);
        assert!(route("GET", "/api/todos").early_reply("GET").is_none());
    }

    #[test]
    fn add_needs_a_todo_text_string() {
        assert_eq!(
            command(&ApiRoute::Add, br#"{"todoText":"  buy milk "}"#),
            Ok(Command::Add { text: "buy milk".into() })
        );
        assert_eq!(command(&ApiRoute::Add, br#"{"todoText":"x","extra":1}"#), Ok(Command::Add { text: "x".into() }));
        let cases: &[(&[u8], &str)] = &[
            (b"", "JSON object"),
            (b"  ", "JSON object"),
            (b"{", "not valid JSON"),
            (b"todoText=x", "not valid JSON"),
            (b"[]", "JSON object"),
            (b"\"x\"", "JSON object"),
            (b"{}", "todoText is required"),
            (br#"{"todoText":null}"#, "todoText is required"),
            (br#"{"text":"x"}"#, "todoText is required"),
            (br#"{"todoText":5}"#, "todoText must be a string"),
            (br#"{"todoText":["x"]}"#, "todoText must be a string"),
            (br#"{"todoText":"   "}"#, "must not be empty"),
        ];
        for (body, want) in cases {
            let r = command(&ApiRoute::Add, body).unwrap_err();
            assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(body));
            assert_eq!(r.body["error"], "invalid_request");
            assert!(description(&r).contains(want), "{}: {}", String::from_utf8_lossy(body), description(&r));
        }
        let long = json!({ "todoText": "x".repeat(MAX_TEXT_CHARS + 1) }).to_string();
        let r = command(&ApiRoute::Add, long.as_bytes()).unwrap_err();
        assert_eq!((r.status, description(&r)), (400, "todoText must be at most 500 characters"));
        let huge = json!({ "todoText": "x".repeat(MAX_BODY_BYTES) }).to_string();
        assert_eq!(command(&ApiRoute::Add, huge.as_bytes()).unwrap_err().status, 413);
    }

    #[test]
    fn set_completed_needs_a_boolean() {
        let r = ApiRoute::SetCompleted("7".into());
        assert_eq!(
            command(&r, br#"{"completed":true}"#),
            Ok(Command::SetCompleted { id: "7".into(), completed: true })
        );
        assert_eq!(
            command(&r, br#"{"completed":false}"#),
            Ok(Command::SetCompleted { id: "7".into(), completed: false })
        );
        for (body, want) in [
            (&b"{}"[..], "completed is required"),
            (br#"{"completed":"true"}"#, "true or false"),
            (br#"{"completed":1}"#, "true or false"),
            (b"nope", "not valid JSON"),
        ] {
            let e = command(&r, body).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(description(&e).contains(want), "{}", description(&e));
        }
    }

    #[test]
    fn list_and_delete_ignore_the_body() {
        assert_eq!(command(&ApiRoute::List, b"garbage"), Ok(Command::List));
        assert_eq!(command(&ApiRoute::Delete("1".into()), b"garbage"), Ok(Command::Delete { id: "1".into() }));
    }

    #[test]
    fn replies() {
        let t = Todo { id: "1".into(), text: "a".into(), completed: false };
        assert_eq!(Reply::todos(&[t]).body, json!({"todos": [{"id": "1", "text": "a", "completed": false}]}));
        assert_eq!(Reply::list_error(&ListError::NotFound).status, 404);
        assert_eq!(Reply::list_error(&ListError::Full).status, 400);
        assert_eq!(Reply::list_error(&ListError::InvalidText(TextError::TooLong)).status, 400);
        let r = Reply::auth(&AuthError::Missing);
        assert_eq!(r.status, 401);
        assert_eq!(r.headers[0].0, "www-authenticate");
        let r = Reply::config(&ConfigError::Missing("API_ISSUER"));
        assert_eq!(r.status, 500);
        assert!(description(&r).contains("API_ISSUER"));
        assert_eq!(Reply::health().body["name"], "todo-api");
    }
}
