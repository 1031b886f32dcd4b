//! Who is calling: the verified auth context the Worker hands the session's
//! Durable Object. The grant's props are read through [`Props`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::grant_props::Props;

/// The bearer token's verified context, as the authorization server resolved
/// it. Built by the Worker from `oauth::AuthContext`; never from client headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Caller {
    pub user_id: String,
    pub grant_id: String,
    pub client_id: String,
    /// Scopes of the MCP access token.
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    /// When the MCP access token expires (unix seconds).
    pub expires_at: u64,
    /// Only the props fields the tools need (see [`Props::trimmed`]).
    pub props: Value,
}
