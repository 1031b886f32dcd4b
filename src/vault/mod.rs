//! The token vault: each user's access tokens for downstream MCP servers that
//! have their own OAuth (`DOWNSTREAMS` entries with `auth: "oauth"`), kept in
//! a Durable Object per user (`TokenVault`, named by the PingOne `sub`).
//!
//! Everything except `object` is plain Rust tested natively:
//!
//! - [`model`]: the stored entries (keyed by the downstream's resource), the
//!   most specific match, when a token is refreshed, which MCP grants use an
//!   entry and when one nobody uses is dropped;
//! - [`seal`]: the tokens and client credentials of an entry, encrypted
//!   (AES-256-GCM under a key derived from `COOKIE_ENCRYPTION_KEY`, the user
//!   and resource as associated data, so an entry copied to another user or
//!   resource does not open);
//! - [`oauth`]: the token endpoint requests of the downstream's authorization
//!   server (code exchange, refresh, revocation) and their answers;
//! - `object` (Wasm only): the Durable Object, which hands out a usable token,
//!   refreshing it once even under concurrent calls.

pub mod model;
pub mod oauth;
#[cfg(target_arch = "wasm32")]
pub mod object;
pub mod seal;
