//! The Todo API worker: a port of the original's `api/`.
//!
//! Every request carries a PingOne JWT access token, verified here against the
//! issuer's JWKS ([`auth`], [`jwks`]) once per token and isolate ([`verified`]); each user's todos live in one Durable
//! Object named after the token's `sub` ([`todos`]), which handles one request
//! at a time, so concurrent writes by one user never drop a todo. [`routes`]
//! is the HTTP contract; `runtime` (Wasm only) wires it to Workers.
//!
//! Everything but `runtime` is plain Rust, tested natively with `cargo test`.

pub mod auth;
pub mod config;
pub mod jwks;
pub mod routes;
pub mod todos;
pub mod verified;

#[cfg(target_arch = "wasm32")]
mod runtime;
