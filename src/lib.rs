//! The MCP worker: an OAuth 2.1 authorization server for MCP clients, an OIDC
//! client of PingOne, and an MCP server whose tools call the Todo API.
//!
//! Everything outside `entry` is plain Rust that `cargo test` runs natively;
//! `entry` is the thin Workers glue compiled only for Wasm.

pub mod grant_props;
pub mod grant_watch;
pub mod login;
pub mod mcp;
pub mod mcp_request;
pub mod outbound;
pub mod proxy;
pub mod util;
pub mod vault;

/// The OAuth 2.1 authorization server (crates/oauth-provider) and the
/// key-value store trait it and the sign-in flow keep records in.
pub use oauth_provider::{self as oauth, store};

#[cfg(target_arch = "wasm32")]
mod entry;
#[cfg(target_arch = "wasm32")]
pub mod platform;

/// Name and version reported by `/health` and MCP `serverInfo`.
pub const SERVER_NAME: &str = env!("CARGO_PKG_NAME");
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");
