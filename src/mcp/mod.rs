//! The MCP server: JSON-RPC and MCP lifecycle, the Streamable HTTP (`/mcp`)
//! and legacy HTTP+SSE (`/sse`) transport rules, one session per Durable
//! Object, and the Todo tools.
//!
//! Everything here except `worker/` is plain Rust over `http` types and small
//! async traits (session storage, outbound HTTP), so `cargo test` runs it
//! natively. The request path is:
//!
//! 1. `gateway` (in the Worker, after the bearer token was verified): checks
//!    the HTTP rules (Origin, Accept, Content-Type, size, session header,
//!    `MCP-Protocol-Version`), parses the JSON once and builds an
//!    [`envelope::Envelope`] from the verified caller and the message — never
//!    from client headers.
//! 2. `session` (in the Durable Object named after the session id): checks the
//!    session exists and belongs to the caller, runs the lifecycle and answers.
//! 3. `tools`: the five tools, calling the Todo API with the caller's PingOne
//!    access token through [`crate::outbound::HttpClient`].

pub mod caller;
pub mod envelope;
pub mod gateway;
pub mod http_rules;
pub mod jsonrpc;
pub mod object;
pub mod server;
pub mod session;
pub mod sse;
pub mod stateless;
pub mod stream_watch;
pub mod tools;
pub mod version;
#[cfg(target_arch = "wasm32")]
pub mod worker;

#[cfg(test)]
mod tests;
