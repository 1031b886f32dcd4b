//! Workers glue shared by every module: KV behind [`crate::store::KvStore`] and
//! conversions between `worker` and `http` types. Compiled only for Wasm.

pub mod fetch;
pub mod http;
pub mod kv;
