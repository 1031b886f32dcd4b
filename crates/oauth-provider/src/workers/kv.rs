//! Workers KV as a [`KvStore`], key metadata included.

use crate::store::{KeyPage, KvStore, ListedKey, ListedPage, StoreError, MIN_TTL_SECS};
use async_trait::async_trait;
use worker::kv::{KvError, KvStore as WorkersKv};

/// A Workers KV namespace binding (`Kv(env.kv("NAME")?)`) as the provider's store.
pub struct Kv(pub WorkersKv);

fn map_err(e: KvError) -> StoreError {
    let msg = e.to_string();
    if msg.contains("429") || msg.to_ascii_lowercase().contains("too many requests") {
        StoreError::RateLimited
    } else {
        StoreError::Unavailable(msg)
    }
}

#[async_trait(?Send)]
impl KvStore for Kv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.0.get(key).text().await.map_err(map_err)
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
        let mut put = self.0.put(key, value).map_err(map_err)?;
        if let Some(ttl) = ttl {
            put = put.expiration_ttl(ttl.max(MIN_TTL_SECS));
        }
        if let Some(m) = metadata {
            put = put.metadata(m).map_err(map_err)?;
        }
        put.execute().await.map_err(map_err)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.delete(key).await.map_err(map_err)
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<KeyPage, StoreError> {
        let page = self.list_keys(prefix, cursor, None).await?;
        Ok(KeyPage { keys: page.keys.into_iter().map(|k| k.name).collect(), cursor: page.cursor })
    }

    async fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListedPage, StoreError> {
        let mut list = self.0.list().prefix(prefix.to_owned());
        if let Some(c) = cursor {
            list = list.cursor(c.to_owned());
        }
        if let Some(n) = limit {
            list = list.limit(n.clamp(1, 1000) as u64);
        }
        let page = list.execute().await.map_err(map_err)?;
        Ok(ListedPage {
            keys: page.keys.into_iter().map(|k| ListedKey { name: k.name, metadata: k.metadata }).collect(),
            cursor: if page.list_complete { None } else { page.cursor },
        })
    }
}
