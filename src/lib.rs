//! The MCP worker: an OAuth 2.1 authorization server for MCP clients, an OIDC
//! client of PingOne, and an MCP server whose tools call the Todo API.
//!
//! Everything outside `entry` is plain Rust that `cargo test` runs natively;
//! `entry` is the thin Workers glue compiled only for Wasm.

pub mod grant_props;
pub mod login;
pub mod mcp;
pub mod oauth;
pub mod outbound;
pub mod proxy;
pub mod store;
pub mod util;

#[cfg(target_arch = "wasm32")]
mod entry;
#[cfg(target_arch = "wasm32")]
pub mod platform;

/// Name and version reported by `/health` and MCP `serverInfo`.
pub const SERVER_NAME: &str = env!("CARGO_PKG_NAME");
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");
