//! The internal request the Worker sends a session's Durable Object: the
//! verified caller and the already-parsed message. Client headers never cross
//! this boundary, so nothing a client sends can pose as trusted data.

use super::caller::Caller;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The URL of the internal request (the Durable Object ignores it).
pub const INTERNAL_URL: &str = "https://mcp-session.internal/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Streamable HTTP POST of one message or a batch.
    Post,
    /// Streamable HTTP DELETE: end the session.
    Delete,
    /// Legacy `GET /sse`: open (or reattach to) the event stream.
    SseOpen,
    /// Legacy `POST /sse/message`: answers go out on the open stream.
    SseMessage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub op: Op,
    pub session_id: String,
    pub caller: Caller,
    /// The request's `Origin`, already checked by the Worker; used only to
    /// label the answer for CORS.
    #[serde(default)]
    pub origin: Option<String>,
    /// `initialize` without a session header: the Worker chose a fresh id.
    #[serde(default)]
    pub new_session: bool,
    /// Answer requests as a short SSE stream rather than JSON.
    #[serde(default)]
    pub sse: bool,
    /// The client's `MCP-Protocol-Version` header, already checked to be supported.
    #[serde(default)]
    pub protocol_version: Option<String>,
    /// The parsed body (one message or a batch).
    #[serde(default)]
    pub message: Value,
    /// `SseOpen`: the same-origin URL clients POST messages to.
    #[serde(default)]
    pub endpoint: Option<String>,
}

impl Envelope {
    pub fn new(op: Op, session_id: String, caller: Caller, origin: Option<String>) -> Self {
        Self {
            op,
            session_id,
            caller,
            origin,
            new_session: false,
            sse: false,
            protocol_version: None,
            message: Value::Null,
            endpoint: None,
        }
    }
}
