//! The key-value store the authorization server and the sign-in flow keep
//! their records in: Workers KV in production, memory in native tests.

use async_trait::async_trait;
use std::fmt;

/// KV never accepts an expiry under 60 seconds; callers' TTLs are raised to this.
pub const MIN_TTL_SECS: u64 = 60;

/// A storage failure. The message is for logs and never contains a stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The store asked us to slow down (KV answers 429 under write bursts).
    RateLimited,
    /// Anything else went wrong talking to the store.
    Unavailable(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::RateLimited => f.write_str("storage rate limited"),
            StoreError::Unavailable(m) => write!(f, "storage unavailable: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// One page of keys from [`KvStore::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// The keys, in key order.
    pub keys: Vec<String>,
    /// Pass back to `list` for the next page; `None` when this was the last.
    pub cursor: Option<String>,
}

/// KV rejects key metadata larger than this (serialized as JSON).
pub const MAX_METADATA_BYTES: usize = 1024;

/// A key listed by [`KvStore::list_keys`], with the metadata it was written with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListedKey {
    /// The key.
    pub name: String,
    /// The key metadata given to [`KvStore::put_with_metadata`]; `None` for
    /// keys written without any (or by a store that does not keep it).
    pub metadata: Option<serde_json::Value>,
}

/// One page of keys with their metadata, from [`KvStore::list_keys`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListedPage {
    /// The keys, in key order.
    pub keys: Vec<ListedKey>,
    /// Pass back to `list_keys` for the next page; `None` when this was the last.
    pub cursor: Option<String>,
}

/// The subset of Workers KV this project uses. Futures are not `Send`
/// because Workers' JavaScript promises are not.
///
/// Key metadata ([`put_with_metadata`](Self::put_with_metadata),
/// [`list_keys`](Self::list_keys)) has default methods that drop it and
/// list without it, so a store written before it existed still works: the
/// server then reads each record it would have matched from its metadata.
#[async_trait(?Send)]
pub trait KvStore {
    /// The value under `key`; `None` when absent or expired.
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Stores `value`; with `ttl_secs`, the entry expires that many seconds from
    /// now (raised to [`MIN_TTL_SECS`] by implementations).
    async fn put(&self, key: &str, value: &str, ttl_secs: Option<u64>) -> Result<(), StoreError>;
    /// Deletes `key`; deleting an absent key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// One page of the keys starting with `prefix`, in key order, from
    /// `cursor` (`None`: the first page).
    async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<KeyPage, StoreError>;

    /// [`put`](Self::put) with key metadata (at most [`MAX_METADATA_BYTES`] as
    /// JSON), which [`list_keys`](Self::list_keys) returns without reading the
    /// value. A put without metadata leaves the key without any. The default
    /// drops the metadata.
    async fn put_with_metadata(
        &self,
        key: &str,
        value: &str,
        ttl_secs: Option<u64>,
        metadata: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let _ = metadata;
        self.put(key, value, ttl_secs).await
    }

    /// Keys starting with `prefix`, in key order, with their metadata; at most
    /// `limit` of them when the store honours the limit (Workers KV and
    /// `MemoryStore` do; KV's own maximum is 1000). The default lists with
    /// [`list`](Self::list) and has no metadata.
    async fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListedPage, StoreError> {
        let _ = limit;
        let page = self.list(prefix, cursor).await?;
        Ok(ListedPage {
            keys: page.keys.into_iter().map(|name| ListedKey { name, metadata: None }).collect(),
            cursor: page.cursor,
        })
    }
}

/// A store that counts the operations made through it, to stay within a
/// budget (a Worker invocation may make at most 1000 KV operations).
pub struct Counting<'a> {
    /// The store the operations go to.
    pub inner: &'a dyn KvStore,
    ops: std::cell::Cell<usize>,
}

impl<'a> Counting<'a> {
    /// Counts the operations made on `inner`, from zero.
    pub fn new(inner: &'a dyn KvStore) -> Self {
        Self { inner, ops: Default::default() }
    }
    /// Operations made so far (successful or not).
    pub fn ops(&self) -> usize {
        self.ops.get()
    }
    fn count(&self) {
        self.ops.set(self.ops.get() + 1);
    }
}

#[async_trait(?Send)]
impl KvStore for Counting<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.count();
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &str, ttl_secs: Option<u64>) -> Result<(), StoreError> {
        self.count();
        self.inner.put(key, value, ttl_secs).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.count();
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<KeyPage, StoreError> {
        self.count();
        self.inner.list(prefix, cursor).await
    }
    async fn put_with_metadata(
        &self,
        key: &str,
        value: &str,
        ttl_secs: Option<u64>,
        metadata: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        self.count();
        self.inner.put_with_metadata(key, value, ttl_secs, metadata).await
    }
    async fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListedPage, StoreError> {
        self.count();
        self.inner.list_keys(prefix, cursor, limit).await
    }
}

/// How long a value this store wrote is preferred over a different one read
/// back (KV propagates a write within about this long).
pub const READ_YOUR_WRITES_SECS: u64 = 60;
/// Values remembered at most (oldest forgotten first).
const READ_YOUR_WRITES_MAX: usize = 16;

/// Values written (`Some`) and keys deleted (`None`, a tombstone) recently
/// through a [`ReadYourWrites`], kept by its owner across requests (a Durable
/// Object that serializes one grant's refreshes).
#[derive(Default)]
pub struct Written(std::cell::RefCell<Vec<(String, Option<String>, u64)>>);

/// A store that reads back what it wrote. KV is eventually consistent: a read
/// right after a write may still return the value before it, and a refresh
/// that read the grant as it was before the previous refresh would refuse the
/// token that refresh just issued. Only a *different present* value is
/// overridden by a remembered write: a key that reads as absent stays absent
/// (a revocation elsewhere must never be undone by a remembered write). A
/// deletion through this store is remembered too, as a tombstone: the key
/// reads as absent even while KV still serves the value from before it.
pub struct ReadYourWrites<'a> {
    /// The store read from and written to.
    pub inner: &'a dyn KvStore,
    /// What was written recently, kept by the caller across requests.
    pub written: &'a Written,
    /// The request's clock (seconds since the epoch), to forget old writes.
    pub now: u64,
}

impl ReadYourWrites<'_> {
    /// Remembers `key`'s latest value (`None`: deleted), newest last.
    fn remember(&self, key: &str, value: Option<&str>) {
        let mut written = self.written.0.borrow_mut();
        written.retain(|(k, _, _)| k != key);
        if written.len() >= READ_YOUR_WRITES_MAX {
            written.remove(0);
        }
        written.push((key.to_owned(), value.map(str::to_owned), self.now));
    }
}

#[async_trait(?Send)]
impl KvStore for ReadYourWrites<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let read = self.inner.get(key).await?;
        let mut written = self.written.0.borrow_mut();
        written.retain(|(_, _, at)| self.now < at + READ_YOUR_WRITES_SECS);
        Ok(match (read, written.iter().rev().find(|(k, _, _)| k == key)) {
            // A remembered deletion (`None`) wins over KV's stale copy too.
            (Some(_), Some((_, mine, _))) => mine.clone(),
            (read, _) => read,
        })
    }
    async fn put(&self, key: &str, value: &str, ttl_secs: Option<u64>) -> Result<(), StoreError> {
        self.put_with_metadata(key, value, ttl_secs, None).await
    }
    async fn put_with_metadata(
        &self,
        key: &str,
        value: &str,
        ttl_secs: Option<u64>,
        metadata: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        match metadata {
            Some(_) => self.inner.put_with_metadata(key, value, ttl_secs, metadata).await?,
            None => self.inner.put(key, value, ttl_secs).await?,
        }
        self.remember(key, Some(value));
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        // Remembered before the deletion is tried: a failed one may still have happened.
        self.remember(key, None);
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<KeyPage, StoreError> {
        self.inner.list(prefix, cursor).await
    }
    async fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListedPage, StoreError> {
        self.inner.list_keys(prefix, cursor, limit).await
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use memory::MemoryStore;

#[cfg(not(target_arch = "wasm32"))]
mod memory {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    struct Entry {
        value: String,
        expires: Option<u64>,
        metadata: Option<serde_json::Value>,
    }

    /// An in-memory [`KvStore`] for native tests, with expiry driven by a
    /// clock the test controls (`set_now`).
    #[derive(Default)]
    pub struct MemoryStore {
        entries: RefCell<BTreeMap<String, Entry>>,
        now: RefCell<u64>,
        /// Every TTL that was requested, so tests can assert none is under 60 s.
        pub ttls_requested: RefCell<Vec<u64>>,
        /// Deletions of keys with this prefix fail (a storage failure KV
        /// cannot be made to produce on demand).
        failing_deletes: RefCell<Option<String>>,
    }

    impl MemoryStore {
        /// An empty store whose clock reads `now` (seconds since the epoch).
        pub fn new(now: u64) -> Self {
            let s = Self::default();
            *s.now.borrow_mut() = now;
            s
        }
        /// Removes `key` at once (what a concurrent request's delete does).
        pub fn remove(&self, key: &str) {
            self.entries.borrow_mut().remove(key);
        }
        /// From now on, deleting a key that starts with `prefix` fails.
        pub fn fail_deletes_with_prefix(&self, prefix: &str) {
            *self.failing_deletes.borrow_mut() = Some(prefix.to_owned());
        }
        /// Moves the store's clock to `now`; entries past their expiry vanish.
        pub fn set_now(&self, now: u64) {
            *self.now.borrow_mut() = now;
        }
        /// The store's clock (seconds since the epoch).
        pub fn now(&self) -> u64 {
            *self.now.borrow()
        }
        /// All live keys, for assertions.
        pub fn keys(&self) -> Vec<String> {
            let now = self.now();
            self.entries
                .borrow()
                .iter()
                .filter(|(_, e)| e.expires.is_none_or(|x| x > now))
                .map(|(k, _)| k.clone())
                .collect()
        }
        /// The raw stored value, for assertions about what is (not) stored.
        pub fn raw(&self, key: &str) -> Option<String> {
            let now = self.now();
            self.entries.borrow().get(key).filter(|e| e.expires.is_none_or(|x| x > now)).map(|e| e.value.clone())
        }
        /// The key metadata of a live key, for assertions.
        pub fn metadata(&self, key: &str) -> Option<serde_json::Value> {
            let now = self.now();
            self.entries
                .borrow()
                .get(key)
                .filter(|e| e.expires.is_none_or(|x| x > now))
                .and_then(|e| e.metadata.clone())
        }
        /// When a live key expires (seconds since the epoch), for assertions.
        pub fn expires_at(&self, key: &str) -> Option<u64> {
            let now = self.now();
            self.entries.borrow().get(key).filter(|e| e.expires.is_none_or(|x| x > now)).and_then(|e| e.expires)
        }
    }

    #[async_trait(?Send)]
    impl KvStore for MemoryStore {
        async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
            Ok(self.raw(key))
        }
        async fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), StoreError> {
            self.put_with_metadata(key, value, ttl, None).await
        }
        async fn put_with_metadata(
            &self,
            key: &str,
            value: &str,
            ttl: Option<u64>,
            metadata: Option<&serde_json::Value>,
        ) -> Result<(), StoreError> {
            if let Some(t) = ttl {
                self.ttls_requested.borrow_mut().push(t);
            }
            if metadata.is_some_and(|m| m.to_string().len() > MAX_METADATA_BYTES) {
                return Err(StoreError::Unavailable("metadata too large".into()));
            }
            let expires = ttl.map(|t| self.now() + t.max(MIN_TTL_SECS));
            let entry = Entry { value: value.to_owned(), expires, metadata: metadata.cloned() };
            self.entries.borrow_mut().insert(key.to_owned(), entry);
            Ok(())
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            if self.failing_deletes.borrow().as_deref().is_some_and(|p| key.starts_with(p)) {
                return Err(StoreError::Unavailable("injected delete failure".into()));
            }
            self.entries.borrow_mut().remove(key);
            Ok(())
        }
        async fn list(&self, prefix: &str, _cursor: Option<&str>) -> Result<KeyPage, StoreError> {
            let keys = self.keys().into_iter().filter(|k| k.starts_with(prefix)).collect();
            Ok(KeyPage { keys, cursor: None })
        }
        /// Pages of at most `limit` keys (1000 by default, as KV); the cursor
        /// is the last key of the page.
        async fn list_keys(
            &self,
            prefix: &str,
            cursor: Option<&str>,
            limit: Option<usize>,
        ) -> Result<ListedPage, StoreError> {
            let limit = limit.unwrap_or(1000).clamp(1, 1000);
            let mut keys: Vec<ListedKey> = self
                .keys()
                .into_iter()
                .filter(|k| k.starts_with(prefix) && cursor.is_none_or(|c| k.as_str() > c))
                .take(limit + 1)
                .map(|name| ListedKey { metadata: self.metadata(&name), name })
                .collect();
            let more = keys.len() > limit;
            keys.truncate(limit);
            let cursor = if more { keys.last().map(|k| k.name.clone()) } else { None };
            Ok(ListedPage { keys, cursor })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    /// KV that answers reads from before the last writes, as Workers KV may
    /// in the seconds after a write (which the local KV never does).
    struct Lagging {
        now: MemoryStore,
        before: MemoryStore,
    }

    #[async_trait(?Send)]
    impl KvStore for Lagging {
        async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
            self.before.get(key).await
        }
        async fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), StoreError> {
            self.now.put(key, value, ttl).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.now.delete(key).await
        }
        async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<KeyPage, StoreError> {
            self.now.list(prefix, cursor).await
        }
    }

    #[test]
    fn what_was_written_is_read_back_for_a_while_but_never_resurrected() {
        let kv = Lagging { now: MemoryStore::new(100), before: MemoryStore::new(100) };
        block_on(kv.before.put("grant:u:g", "v1", None)).unwrap();
        let written = Written::default();
        let store = ReadYourWrites { inner: &kv, written: &written, now: 100 };
        block_on(store.put("grant:u:g", "v2", None)).unwrap();
        assert_eq!(block_on(kv.get("grant:u:g")).unwrap().as_deref(), Some("v1"), "the lag");
        assert_eq!(block_on(store.get("grant:u:g")).unwrap().as_deref(), Some("v2"));
        // Absent stays absent: a revocation elsewhere is never undone.
        block_on(kv.before.delete("grant:u:g")).unwrap();
        assert_eq!(block_on(store.get("grant:u:g")).unwrap(), None);
        // After KV's propagation time, KV alone answers.
        block_on(kv.before.put("grant:u:g", "v1", None)).unwrap();
        let later = ReadYourWrites { inner: &kv, written: &written, now: 100 + READ_YOUR_WRITES_SECS };
        assert_eq!(block_on(later.get("grant:u:g")).unwrap().as_deref(), Some("v1"));
    }

    #[test]
    fn what_it_deleted_stays_deleted_while_kv_still_serves_it() {
        let kv = Lagging { now: MemoryStore::new(100), before: MemoryStore::new(100) };
        block_on(kv.before.put("grant:u:g", "v1", None)).unwrap();
        let written = Written::default();
        let store = ReadYourWrites { inner: &kv, written: &written, now: 100 };
        block_on(store.put("grant:u:g", "v2", None)).unwrap();
        block_on(store.delete("grant:u:g")).unwrap();
        assert_eq!(block_on(kv.get("grant:u:g")).unwrap().as_deref(), Some("v1"), "the lag");
        // Neither the remembered write nor KV's stale copy brings it back.
        assert_eq!(block_on(store.get("grant:u:g")).unwrap(), None);
        let next = ReadYourWrites { inner: &kv, written: &written, now: 100 + READ_YOUR_WRITES_SECS - 1 };
        assert_eq!(block_on(next.get("grant:u:g")).unwrap(), None, "a later request of the same object");
        // Written again through the store (a new value), it reads back.
        block_on(next.put("grant:u:g", "v3", None)).unwrap();
        assert_eq!(block_on(next.get("grant:u:g")).unwrap().as_deref(), Some("v3"));
    }
}
