//! The identity gateway (proxy mode): with `DOWNSTREAM_MCP_URL` or the
//! `DOWNSTREAM_MCP` service binding set, `/mcp`
//! (Streamable HTTP) and `/sse` + `/sse/message` (legacy HTTP+SSE) are
//! forwarded to another MCP server instead of the built-in Todo tools.
//!
//! The worker still does everything in front (discovery, registration,
//! consent, PingOne sign-in, bearer validation, the PingOne refresh); this
//! module takes over once the bearer token was verified. Everything except
//! `worker` is plain Rust over `http` types, tested natively:
//!
//! - [`config`]: the settings (the `DOWNSTREAM_MCP` service binding,
//!   `DOWNSTREAM_MCP_URL`, `DOWNSTREAM_SSE_URL`, `DOWNSTREAM_TIMEOUT_SECS`,
//!   `DOWNSTREAM_KEEPALIVE_SECS`, `SSE_GRANT_CHECK_SECS`,
//!   `GATEWAY_TOOL_SCOPES`);
//! - [`identity`]: which client headers go through (an allowlist) and the
//!   identity the downstream server gets (`Authorization: Bearer <PingOne
//!   token>`, `X-User-*`), never the client's bearer token or cookies;
//! - [`session`]: downstream session ids sealed to the user and client that
//!   created them, so no state is kept and no Durable Object is in the path;
//! - [`forward`]: the request to send and the response head to return,
//!   including every error a client can act on (400 for MCP 2026-07-28
//!   headers that disagree with the body, 403 step-up for a tool call beyond
//!   the token's scopes, 404, 502, 504). Both protocol eras share `/mcp`:
//!   a modern request (`mcp_request::is_modern`) is checked and forwarded
//!   without any session, a session-era one as before;
//! - [`challenge`]: the downstream's `WWW-Authenticate` parsed (RFC 9110
//!   auth-params) and rebuilt so its Bearer challenges point at this worker;
//! - [`sse`]: the legacy transport's `endpoint` event, rewritten to point at
//!   this worker with a sealed session id;
//! - [`keepalive`]: comments sent on event streams the downstream leaves idle;
//! - [`clock`]: when a relayed event stream next needs a keep-alive or a look
//!   at its grant;
//! - `relay` (Wasm only): event streams to the client, with keep-alives, ended
//!   once their grant is gone (`SSE_GRANT_CHECK_SECS`, as the built-in server);
//! - `worker` (Wasm only): fetch (or the service binding) with a timeout,
//!   bodies streamed through, the downstream request cancelled when the client
//!   goes away or the grant behind an event stream ends.

pub mod challenge;
pub mod clock;
pub mod config;
pub mod connect;
pub mod downstreams;
pub mod forward;
pub mod identity;
pub mod keepalive;
#[cfg(target_arch = "wasm32")]
pub mod relay;
pub mod session;
pub mod sse;
#[cfg(target_arch = "wasm32")]
pub mod worker;

use crate::grant_props::Props;

/// The verified user a request is forwarded for, built by the Worker from
/// the bearer token's context (never from client headers).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    /// The grant's user id (PingOne `sub`).
    pub user_id: String,
    /// The MCP client the token was issued to.
    pub client_id: String,
    /// The grant behind the token: event streams end once it is gone.
    pub grant_id: String,
    /// The grant's props: the PingOne access token and the user's claims.
    pub props: Props,
    /// This worker's protected-resource metadata URL for the request, put
    /// into the downstream's `WWW-Authenticate` challenges so clients come
    /// back here (the only authorization server they can use).
    pub resource_metadata: String,
    /// The MCP access token's scopes: `GATEWAY_TOOL_SCOPES` is judged
    /// against them.
    pub scopes: Vec<String>,
    /// The downstream's own access token for this user (a named downstream
    /// with `auth: "oauth"`, from the user's vault); sent only to that
    /// downstream, never with anything of PingOne's.
    pub vault_token: Option<String>,
}
