//! Glue for Cloudflare Workers (`workers` feature): Workers KV as the
//! [`KvStore`](crate::store::KvStore), conversions between `worker` and the
//! `http` types [`Provider`](crate::Provider) speaks, and the fetch behind
//! Client ID Metadata Documents. Everything else in the crate is plain Rust
//! that runs natively.

mod cimd;
mod convert;
mod kv;

pub use cimd::WorkersMetadataFetcher;
pub use convert::{from_http, into_http, MAX_BODY_BYTES};
pub use kv::Kv;
