//! Workers KV as the [`KvStore`](crate::store::KvStore): the adapter comes with the OAuth crate.

pub use crate::oauth::workers::Kv;
