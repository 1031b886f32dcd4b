//! Workers glue shared by every module: KV behind [`crate::store::KvStore`],
//! conversions between `worker` and `http` types and settings from the
//! environment. Compiled only for Wasm.

pub mod env;
pub mod fetch;
pub mod http;
pub mod kv;
