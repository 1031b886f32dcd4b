//! In-memory stand-ins: session storage, a working fake Todo API (tokens,
//! scopes, per-user lists) with failure injection, and a `World` that plays
//! the Worker and the Durable Objects.

use crate::mcp::caller::Caller;
use crate::mcp::envelope::Envelope;
use crate::mcp::gateway::{self, Route};
use crate::mcp::object::{self, Plan};
use crate::mcp::session::{Session, SessionState, SessionStorage};
use crate::mcp::tools::{self, ToolContext};
use crate::outbound::{HttpClient, OutboundError};
use crate::store::StoreError;
use async_trait::async_trait;
use futures::executor::block_on;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

pub const ORIGIN: &str = "https://mcp.example.com";
pub const API: &str = "https://todo.example.com";
pub const NOW: u64 = 1_800_000_000;

/// Storage of one object; clones share it, so it outlives object instances.
#[derive(Clone, Default)]
pub struct MemStorage {
    pub cell: Rc<RefCell<Option<SessionState>>>,
    pub saves: Rc<Cell<u32>>,
    pub loads: Rc<Cell<u32>>,
    pub broken: Rc<Cell<bool>>,
}

#[async_trait(?Send)]
impl SessionStorage for MemStorage {
    async fn load(&self) -> Result<Option<SessionState>, StoreError> {
        self.loads.set(self.loads.get() + 1);
        if self.broken.get() {
            return Err(StoreError::Unavailable("down".into()));
        }
        Ok(self.cell.borrow().clone())
    }
    async fn save(&self, state: &SessionState) -> Result<(), StoreError> {
        if self.broken.get() {
            return Err(StoreError::Unavailable("down".into()));
        }
        self.saves.set(self.saves.get() + 1);
        *self.cell.borrow_mut() = Some(state.clone());
        Ok(())
    }
    async fn erase(&self) -> Result<(), StoreError> {
        *self.cell.borrow_mut() = None;
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Normal,
    /// Every request answers this status and JSON body.
    Status(u16, Value),
    Timeout,
    Unreachable,
    /// 200 with a body that is not a todo list.
    Garbage,
}

/// A request the fake Todo API received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// The Todo API contract, in memory: bearer tokens map to a user and scopes.
pub struct FakeTodoApi {
    tokens: HashMap<String, (String, Vec<String>)>,
    lists: RefCell<HashMap<String, Vec<Value>>>,
    next_id: Cell<u32>,
    pub mode: RefCell<Mode>,
    pub seen: RefCell<Vec<Seen>>,
}

impl FakeTodoApi {
    pub fn new() -> Self {
        let rw = vec!["todo_api:read".to_owned(), "todo_api:write".to_owned()];
        let tokens = HashMap::from([
            ("tok-alice".to_owned(), ("alice".to_owned(), rw.clone())),
            ("tok-alice-2".to_owned(), ("alice".to_owned(), rw.clone())),
            ("tok-bob".to_owned(), ("bob".to_owned(), rw)),
            ("tok-reader".to_owned(), ("carol".to_owned(), vec!["todo_api:read".to_owned()])),
        ]);
        Self {
            tokens,
            lists: RefCell::default(),
            next_id: Cell::new(1),
            mode: RefCell::new(Mode::Normal),
            seen: RefCell::default(),
        }
    }

    pub fn todos_of(&self, user: &str) -> Vec<Value> {
        self.lists.borrow().get(user).cloned().unwrap_or_default()
    }

    fn answer(&self, req: &http::Request<Vec<u8>>) -> (u16, Value) {
        let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        let Some((user, scopes)) = auth.strip_prefix("Bearer ").and_then(|t| self.tokens.get(t)) else {
            return (401, json!({"error": "invalid_token", "error_description": "token expired"}));
        };
        let path = req.uri().path();
        let Some(rest) = path.strip_prefix("/api/todos") else {
            return (404, json!({"error": "not_found"}));
        };
        let needed = if req.method() == http::Method::GET { "todo_api:read" } else { "todo_api:write" };
        if !scopes.iter().any(|s| s == needed) {
            return (403, json!({"error": "insufficient_scope", "error_description": format!("requires {needed}")}));
        }
        let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        let mut lists = self.lists.borrow_mut();
        let list = lists.entry(user.clone()).or_default();
        let id = rest.strip_prefix('/').map(|s| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap()
        });
        match (req.method().as_str(), id) {
            ("GET", None) => {}
            ("POST", None) => {
                let Some(text) = body.get("todoText").and_then(Value::as_str) else {
                    return (400, json!({"error": "invalid_request", "error_description": "todoText is required"}));
                };
                let id = self.next_id.get();
                self.next_id.set(id + 1);
                list.push(json!({"id": format!("t{id}"), "text": text, "completed": false}));
            }
            ("PATCH", Some(id)) => {
                let Some(t) = list.iter_mut().find(|t| t["id"] == id.as_str()) else {
                    return (404, json!({"error": "not_found", "error_description": "no such todo"}));
                };
                t["completed"] = body["completed"].clone();
            }
            ("DELETE", Some(id)) => {
                let before = list.len();
                list.retain(|t| t["id"] != id.as_str());
                if list.len() == before {
                    return (404, json!({"error": "not_found", "error_description": "no such todo"}));
                }
            }
            _ => return (405, json!({"error": "method_not_allowed"})),
        }
        (200, json!({"todos": list}))
    }
}

#[async_trait(?Send)]
impl HttpClient for FakeTodoApi {
    async fn send(&self, req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, OutboundError> {
        self.seen.borrow_mut().push(Seen {
            method: req.method().to_string(),
            uri: req.uri().to_string(),
            authorization: req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned),
            body: serde_json::from_slice(req.body()).unwrap_or(Value::Null),
        });
        let mode = self.mode.borrow().clone();
        let (status, body) = match mode {
            Mode::Timeout => return Err(OutboundError::Timeout),
            Mode::Unreachable => return Err(OutboundError::Unreachable("connection refused".into())),
            Mode::Garbage => (200, json!({"unexpected": true})),
            Mode::Status(s, b) => (s, b),
            Mode::Normal => self.answer(&req),
        };
        Ok(http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .unwrap())
    }
}

/// A caller with a PingOne token in its props.
pub fn caller(user: &str, grant: &str, token: &str) -> Caller {
    Caller {
        user_id: user.into(),
        grant_id: grant.into(),
        client_id: "client-1".into(),
        scopes: vec!["todo_api:read".into(), "todo_api:write".into()],
        audience: Some(format!("{ORIGIN}/mcp")),
        expires_at: NOW + 3600,
        props: json!({
            "subjectToken": token,
            "subjectTokenExpiresAt": NOW + 3600,
            "refreshToken": "refresh-secret",
            "scopes": ["openid", "todo_api:read", "todo_api:write"],
            "claims": {"sub": user, "preferred_username": user, "name": format!("{user} Example")},
        }),
    }
}

/// The Worker and every session object, in memory.
pub struct World {
    pub api: Rc<FakeTodoApi>,
    pub storages: RefCell<HashMap<String, MemStorage>>,
    objects: RefCell<HashMap<String, Rc<Session<MemStorage>>>>,
    /// Frames written to each legacy stream.
    pub streams: RefCell<HashMap<String, Vec<u8>>>,
    pub now: Cell<u64>,
    /// Envelopes the objects received, as JSON.
    pub envelopes: RefCell<Vec<Value>>,
}

impl World {
    pub fn new() -> Self {
        Self {
            api: Rc::new(FakeTodoApi::new()),
            storages: RefCell::default(),
            objects: RefCell::default(),
            streams: RefCell::default(),
            now: Cell::new(NOW),
            envelopes: RefCell::default(),
        }
    }

    /// Drops every object instance (as an eviction or redeploy would); storage stays.
    pub fn evict(&self) {
        self.objects.borrow_mut().clear();
    }

    pub fn storage(&self, object: &str) -> MemStorage {
        self.storages.borrow_mut().entry(object.to_owned()).or_default().clone()
    }

    fn object(&self, name: &str) -> Rc<Session<MemStorage>> {
        let storage = self.storage(name);
        self.objects.borrow_mut().entry(name.to_owned()).or_insert_with(|| Rc::new(Session::new(storage))).clone()
    }

    pub fn ctx(&self, caller: &Caller) -> ToolContext {
        ToolContext { http: self.api.clone(), api_url: API.into(), caller: caller.clone(), now: self.now.get() }
    }

    pub fn send(&self, req: http::Request<Vec<u8>>, caller: &Caller) -> http::Response<Vec<u8>> {
        let (name, envelope) = match gateway::route(&req, caller) {
            Route::Respond(res) => return res,
            Route::Forward { object, envelope } => (object, envelope),
            // Modern era: the Worker runs the tool itself.
            Route::Stateless { call, caller, origin, sse } => {
                let result = block_on(tools::call(&self.ctx(&caller), &call.name, &call.arguments));
                let r = crate::mcp::http_rules::Responder::new(origin.as_deref());
                return crate::mcp::stateless::tool_answer(&r, sse, &call, result);
            }
            // The Worker's 403 challenge (built by oauth, not mcp), reduced to what tests read.
            Route::InsufficientScope { scopes, .. } => {
                let mut res = http::Response::new(Vec::new());
                *res.status_mut() = http::StatusCode::FORBIDDEN;
                res.headers_mut().insert("x-needed-scope", scopes.join(" ").parse().unwrap());
                return res;
            }
        };
        // Through JSON, as over the wire to the Durable Object.
        let wire = serde_json::to_value(&envelope).unwrap();
        self.envelopes.borrow_mut().push(wire.clone());
        let env: Envelope = serde_json::from_value(wire).unwrap();
        let session = self.object(&name);
        let now = self.now.get();
        block_on(async {
            match object::plan(&session, &env, now).await {
                Plan::Done(res) => res,
                Plan::Run(ex) => {
                    let answers = tools::run(&self.ctx(&env.caller), ex.calls.clone()).await;
                    ex.finish(answers)
                }
                Plan::OpenStream(res) => {
                    self.streams.borrow_mut().insert(name.clone(), res.body().clone());
                    res
                }
                Plan::Deliver(ex) => {
                    if !self.streams.borrow().contains_key(&name) {
                        return object::no_stream(&env);
                    }
                    let mut answers = ex.immediate.clone();
                    answers.extend(tools::run(&self.ctx(&env.caller), ex.calls.clone()).await);
                    self.streams.borrow_mut().get_mut(&name).unwrap().extend(ex.frames(&answers));
                    object::accepted(&env)
                }
            }
        })
    }
}

/// Builds requests to the MCP endpoints.
pub fn request(method: &str, path: &str) -> http::request::Builder {
    http::Request::builder().method(method).uri(format!("{ORIGIN}{path}"))
}

/// A Streamable HTTP POST as MCP clients send it, plus `extra` headers.
pub fn post(body: &str, extra: &[(&str, &str)]) -> http::Request<Vec<u8>> {
    let mut b = request("POST", "/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(body.as_bytes().to_vec()).unwrap()
}

/// The JSON-RPC messages of a response: its JSON body, or the `data:` of each SSE event.
pub fn messages(res: &http::Response<Vec<u8>>) -> Vec<Value> {
    let body = String::from_utf8(res.body().clone()).unwrap();
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap()).unwrap_or("");
    if ct.starts_with("text/event-stream") {
        body.split("\n\n")
            .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    } else if body.is_empty() {
        Vec::new()
    } else {
        match serde_json::from_str(&body).unwrap() {
            Value::Array(a) => a,
            v => vec![v],
        }
    }
}

pub fn one(res: &http::Response<Vec<u8>>) -> Value {
    let m = messages(res);
    assert_eq!(m.len(), 1, "expected one message in {:?}", String::from_utf8_lossy(res.body()));
    m.into_iter().next().unwrap()
}

pub fn init_body(version: &str) -> String {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test-client", "version": "1.0"}}})
    .to_string()
}

/// An initialized session: (session id, negotiated version).
pub fn open_session(world: &World, who: &Caller, version: &str) -> String {
    let res = world.send(post(&init_body(version), &[]), who);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    let sid = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let res = world.send(
        post(
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            &[("mcp-session-id", &sid), ("mcp-protocol-version", version)],
        ),
        who,
    );
    assert_eq!(res.status(), 202);
    sid
}

/// A request within a session.
pub fn call(world: &World, who: &Caller, sid: &str, body: Value) -> http::Response<Vec<u8>> {
    world.send(post(&body.to_string(), &[("mcp-session-id", sid), ("mcp-protocol-version", "2025-11-25")]), who)
}

pub fn tool(world: &World, who: &Caller, sid: &str, name: &str, args: Value) -> Value {
    let res = call(
        world,
        who,
        sid,
        json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":name,"arguments":args}}),
    );
    assert_eq!(res.status(), 200);
    let m = one(&res);
    assert_eq!(m["id"], 9);
    m["result"].clone()
}

pub fn text_of(result: &Value) -> String {
    result["content"][0]["text"].as_str().unwrap().to_owned()
}
