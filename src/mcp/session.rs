//! One MCP session, as its Durable Object runs it: the persisted state
//! (owner, negotiated version, client info, initialized flag), the ownership
//! check, the lifecycle, and turning a POST into answers.
//!
//! The state is read from storage once per object instance and kept in
//! memory; storage is written only when something changed (creation, the
//! `initialized` notification, a rare expiry extension, deletion).

use super::envelope::Envelope;
use super::http_rules::Responder;
use super::jsonrpc::{self, Incoming};
use super::server::{self, Step};
use super::sse;
use super::tools::ToolCall;
use super::version;
use crate::store::StoreError;
use async_trait::async_trait;
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::RefCell;

/// Sessions unused this long are gone (404; clients then start a new one).
/// Each use in the second half of the period extends it, so an active session
/// is written at most once every half period.
pub const SESSION_TTL_SECS: u64 = 30 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    StreamableHttp,
    Sse,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub user_id: String,
    /// The grant that created it (kept for sessions stored before `client_id`).
    pub grant_id: String,
    /// The MCP client that created it; empty in sessions from before it was kept.
    #[serde(default)]
    pub client_id: String,
    pub transport: Transport,
    /// `None` until `initialize` (legacy SSE sessions exist before it).
    pub protocol_version: Option<String>,
    #[serde(default)]
    pub client_info: Value,
    #[serde(default)]
    pub client_capabilities: Value,
    /// `notifications/initialized` arrived.
    pub initialized: bool,
    pub created_at: u64,
    pub expires_at: u64,
}

impl SessionState {
    /// The same user through the same client: a re-authorization of that
    /// client (a step-up to wider scopes, a sign-in after the grant ended)
    /// keeps its session; another user or another client never gets it.
    fn owned_by(&self, env: &Envelope) -> bool {
        self.user_id == env.caller.user_id
            && match self.client_id.as_str() {
                "" => self.grant_id == env.caller.grant_id,
                client => client == env.caller.client_id,
            }
    }
    /// The version requests are judged by before and after negotiation.
    pub fn version(&self) -> &str {
        self.protocol_version.as_deref().unwrap_or(match self.transport {
            Transport::StreamableHttp => version::DEFAULT_HTTP,
            Transport::Sse => "2024-11-05",
        })
    }
}

/// Where the session state is kept: Durable Object storage in production.
#[async_trait(?Send)]
pub trait SessionStorage {
    async fn load(&self) -> Result<Option<SessionState>, StoreError>;
    /// Saves the state; implementations also schedule cleanup at `expires_at`.
    async fn save(&self, state: &SessionState) -> Result<(), StoreError>;
    async fn erase(&self) -> Result<(), StoreError>;
}

enum Cached {
    Unloaded,
    Gone,
    Live(SessionState),
}

pub struct Session<S> {
    storage: S,
    cache: RefCell<Cached>,
}

/// A POST admitted into the session: answers ready now, tool calls still to
/// run, and how to frame them.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub origin: Option<String>,
    /// Sent as `Mcp-Session-Id` (absent when `initialize` failed).
    pub session_id: Option<String>,
    pub sse: bool,
    pub batch: bool,
    /// The body contained at least one request (otherwise: 202, no body).
    pub has_requests: bool,
    pub immediate: Vec<Value>,
    pub calls: Vec<ToolCall>,
}

impl Exchange {
    fn responder(&self) -> Responder<'_> {
        Responder { origin: self.origin.as_deref(), session_id: self.session_id.as_deref() }
    }

    /// The whole answer, once the tool calls have produced `later`.
    pub fn finish(&self, later: Vec<Value>) -> Response<Vec<u8>> {
        let r = self.responder();
        if !self.has_requests {
            return r.empty(StatusCode::ACCEPTED);
        }
        let mut answers = self.immediate.clone();
        answers.extend(later);
        if self.sse {
            return sse::stream_response(&r, self.frames(&answers));
        }
        let body = if self.batch { Value::Array(answers) } else { answers.into_iter().next().unwrap_or(Value::Null) };
        r.json(StatusCode::OK, &body)
    }

    /// For a streamed answer: the head and first bytes (a comment, then the
    /// answers already known), sent before the tool calls run.
    pub fn stream_start(&self) -> Response<Vec<u8>> {
        let mut first = sse::PRELUDE.to_vec();
        first.extend(self.frames(&self.immediate));
        sse::stream_response(&self.responder(), first)
    }

    /// Answers as `event: message` frames.
    pub fn frames(&self, answers: &[Value]) -> Vec<u8> {
        answers.iter().flat_map(sse::message_frame).collect()
    }
}

impl<S: SessionStorage> Session<S> {
    pub fn new(storage: S) -> Self {
        Self { storage, cache: RefCell::new(Cached::Unloaded) }
    }

    /// The live state, reading storage only the first time; an expired
    /// session is erased and reported as gone.
    pub async fn state(&self, now: u64) -> Result<Option<SessionState>, StoreError> {
        if matches!(*self.cache.borrow(), Cached::Unloaded) {
            let loaded = self.storage.load().await?;
            // Another request may have filled the cache while we awaited.
            let mut cache = self.cache.borrow_mut();
            if matches!(*cache, Cached::Unloaded) {
                *cache = loaded.map_or(Cached::Gone, Cached::Live);
            }
        }
        let current = match &*self.cache.borrow() {
            Cached::Live(s) => Some(s.clone()),
            _ => None,
        };
        match current {
            Some(s) if s.expires_at <= now => {
                self.forget().await?;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    async fn store(&self, state: SessionState) -> Result<(), StoreError> {
        self.storage.save(&state).await?;
        *self.cache.borrow_mut() = Cached::Live(state);
        Ok(())
    }

    async fn forget(&self) -> Result<(), StoreError> {
        *self.cache.borrow_mut() = Cached::Gone;
        self.storage.erase().await
    }

    /// The caller's session, or the response refusing the request: 404 when
    /// there is none or it belongs to another user or grant (never revealing
    /// which), 500 when storage failed.
    async fn owned(&self, env: &Envelope, now: u64) -> Result<SessionState, Response<Vec<u8>>> {
        let r = Responder::new(env.origin.as_deref());
        match self.state(now).await {
            Ok(Some(s)) if s.owned_by(env) => Ok(s),
            Ok(_) => Err(r.session_not_found()),
            Err(_) => Err(r.internal_error()),
        }
    }

    /// A Streamable HTTP POST or legacy message POST.
    pub async fn post(&self, env: &Envelope, now: u64) -> Result<Exchange, Response<Vec<u8>>> {
        let r = Responder::new(env.origin.as_deref()).with_session(&env.session_id);
        let batch = env.message.is_array();
        let items: Vec<&Value> = match &env.message {
            Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        if items.is_empty() {
            return Err(r.rpc_error(StatusCode::BAD_REQUEST, jsonrpc::INVALID_REQUEST, "Invalid Request: empty batch"));
        }
        let mut ex = Exchange {
            origin: env.origin.clone(),
            session_id: Some(env.session_id.clone()),
            sse: env.sse,
            batch,
            has_requests: false,
            immediate: Vec::new(),
            calls: Vec::new(),
        };
        if env.new_session {
            return self.create(env, items[0], ex, now).await;
        }
        let mut state = self.owned(env, now).await?;
        if batch && !version::allows_batches(state.version()) {
            return Err(r.rpc_error(
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                &format!("Invalid Request: protocol version {} does not allow JSON-RPC batches", state.version()),
            ));
        }
        let before = state.clone();
        for item in items {
            let message = match jsonrpc::classify(item) {
                Ok(m) => m,
                Err(e) if !batch => return Err(r.json(StatusCode::BAD_REQUEST, &e.to_json())),
                Err(e) => {
                    ex.has_requests = true;
                    ex.immediate.push(e.to_json());
                    continue;
                }
            };
            ex.has_requests |= message.is_request();
            match server::dispatch(message) {
                Step::Answer(v) => ex.immediate.push(v),
                Step::Call(c) => ex.calls.push(c),
                Step::Initialized => state.initialized = true,
                Step::Ignore => {}
                Step::Initialize { id, params } => {
                    // Only a legacy SSE session is initialized after it exists.
                    if state.protocol_version.is_some() {
                        ex.immediate.push(jsonrpc::error(
                            &id,
                            jsonrpc::INVALID_REQUEST,
                            "Invalid Request: this session is already initialized",
                        ));
                        continue;
                    }
                    match server::initialize(&params) {
                        Ok(init) => {
                            state.protocol_version = Some(init.version.to_owned());
                            state.client_info = init.client_info;
                            state.client_capabilities = init.client_capabilities;
                            ex.immediate.push(jsonrpc::result(&id, server::initialize_result(init.version)));
                        }
                        Err(msg) => ex.immediate.push(jsonrpc::error(&id, jsonrpc::INVALID_PARAMS, &msg)),
                    }
                }
            }
        }
        if state.expires_at.saturating_sub(SESSION_TTL_SECS / 2) <= now {
            state.expires_at = now + SESSION_TTL_SECS;
        }
        if state != before && self.store(state).await.is_err() {
            return Err(r.internal_error());
        }
        Ok(ex)
    }

    /// `initialize` without a session: creates the session under the id the
    /// Worker chose.
    async fn create(
        &self,
        env: &Envelope,
        message: &Value,
        mut ex: Exchange,
        now: u64,
    ) -> Result<Exchange, Response<Vec<u8>>> {
        let r = Responder::new(env.origin.as_deref());
        ex.has_requests = true;
        let (id, params) = match jsonrpc::classify(message) {
            Ok(Incoming::Request { id, method, params }) if method == "initialize" => (id, params),
            _ => {
                return Err(r.rpc_error(
                    StatusCode::BAD_REQUEST,
                    jsonrpc::INVALID_REQUEST,
                    "Invalid Request: a new session starts with a single initialize request",
                ))
            }
        };
        match self.state(now).await {
            Ok(None) => {}
            Ok(Some(_)) => {
                return Err(r.rpc_error(StatusCode::CONFLICT, jsonrpc::INVALID_REQUEST, "Session already exists"))
            }
            Err(_) => return Err(r.internal_error()),
        }
        let init = match server::initialize(&params) {
            Ok(init) => init,
            Err(msg) => {
                // No session is created, so none is named in the answer.
                ex.session_id = None;
                ex.immediate.push(jsonrpc::error(&id, jsonrpc::INVALID_PARAMS, &msg));
                return Ok(ex);
            }
        };
        let state = SessionState {
            user_id: env.caller.user_id.clone(),
            grant_id: env.caller.grant_id.clone(),
            client_id: env.caller.client_id.clone(),
            transport: Transport::StreamableHttp,
            protocol_version: Some(init.version.to_owned()),
            client_info: init.client_info,
            client_capabilities: init.client_capabilities,
            initialized: false,
            created_at: now,
            expires_at: now + SESSION_TTL_SECS,
        };
        if self.store(state).await.is_err() {
            return Err(r.internal_error());
        }
        ex.immediate.push(jsonrpc::result(&id, server::initialize_result(init.version)));
        Ok(ex)
    }

    /// DELETE: ends the session; afterwards its id answers 404.
    pub async fn delete(&self, env: &Envelope, now: u64) -> Response<Vec<u8>> {
        if let Err(res) = self.owned(env, now).await {
            return res;
        }
        let r = Responder::new(env.origin.as_deref());
        match self.forget().await {
            Ok(()) => r.empty(StatusCode::NO_CONTENT),
            Err(_) => r.internal_error(),
        }
    }

    /// `GET /sse`: creates the legacy session, or checks the caller owns the
    /// one being reattached to.
    pub async fn open_sse(&self, env: &Envelope, now: u64) -> Result<(), Response<Vec<u8>>> {
        let r = Responder::new(env.origin.as_deref());
        match self.state(now).await {
            Err(_) => Err(r.internal_error()),
            Ok(Some(s)) if s.owned_by(env) => Ok(()),
            Ok(Some(_)) => Err(r.session_not_found()),
            Ok(None) if !env.new_session => Err(r.session_not_found()),
            Ok(None) => {
                let state = SessionState {
                    user_id: env.caller.user_id.clone(),
                    grant_id: env.caller.grant_id.clone(),
                    client_id: env.caller.client_id.clone(),
                    transport: Transport::Sse,
                    protocol_version: None,
                    client_info: Value::Null,
                    client_capabilities: Value::Null,
                    initialized: false,
                    created_at: now,
                    expires_at: now + SESSION_TTL_SECS,
                };
                self.store(state).await.map_err(|_| r.internal_error())
            }
        }
    }

    /// The alarm: erases the session once it expired. Returns when to look
    /// again while it lives.
    pub async fn on_alarm(&self, now: u64) -> Result<Option<u64>, StoreError> {
        Ok(self.state(now).await?.map(|s| s.expires_at))
    }
}
