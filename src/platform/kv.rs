//! Workers KV as a [`KvStore`].

use crate::store::{KeyPage, KvStore, StoreError, MIN_TTL_SECS};
use async_trait::async_trait;
use worker::kv::{KvError, KvStore as WorkersKv};

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
        let mut put = self.0.put(key, value).map_err(map_err)?;
        if let Some(ttl) = ttl {
            put = put.expiration_ttl(ttl.max(MIN_TTL_SECS));
        }
        put.execute().await.map_err(map_err)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.delete(key).await.map_err(map_err)
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<KeyPage, StoreError> {
        let mut list = self.0.list().prefix(prefix.to_owned());
        if let Some(c) = cursor {
            list = list.cursor(c.to_owned());
        }
        let page = list.execute().await.map_err(map_err)?;
        Ok(KeyPage {
            keys: page.keys.into_iter().map(|k| k.name).collect(),
            cursor: if page.list_complete { None } else { page.cursor },
        })
    }
}
