//! Sign-in through PingOne: the consent page MCP clients send people to
//! (`GET/POST /authorize`), the OpenID Connect client (PKCE, nonce, state
//! bound to the browser) and `/callback`, which checks PingOne's answer and
//! completes the MCP authorization with the user's PingOne tokens as props;
//! and the connections page (`/connections`), where a person sees and ends
//! the grants MCP clients hold for them.
//!
//! Everything here is plain Rust over `http` types; `worker.rs` is the thin
//! Workers glue.

pub mod access;
pub mod authz;
pub mod connections;
pub mod consent;
pub mod cookies;
pub mod discovery;
pub mod enterprise;
pub mod flow;
pub mod id_token;
pub mod oidc;
pub mod outbound;
pub mod pages;
pub mod records;
pub mod settings;
pub mod upstream;
#[cfg(target_arch = "wasm32")]
pub mod webcrypto;
#[cfg(target_arch = "wasm32")]
pub mod worker;

pub use connections::CONNECTIONS_PATH;
pub use flow::{owns, Detour, Login, SignInExtension, CALLBACK_PATH};

#[cfg(test)]
mod tests;
