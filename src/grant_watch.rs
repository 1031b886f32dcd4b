//! Whether the grant behind a long-lived stream still exists. A request with
//! a token of a revoked grant is refused at the front door, but a stream
//! opened before lives on by itself; both the built-in server's legacy stream
//! (`mcp::stream_watch`) and the gateway's relayed streams (`proxy`) look the
//! grant up every [`GRANT_CHECK_SECS`] (`SSE_GRANT_CHECK_SECS`) and end the
//! stream once it is gone.

use crate::oauth::records::{grant_key, Grant};
use crate::store::{KvStore, StoreError};
use async_trait::async_trait;

/// How often, by default, an open stream's grant is looked up while nothing else happens.
pub const GRANT_CHECK_SECS: u64 = 60;

/// `SSE_GRANT_CHECK_SECS` when it is a positive whole number, else [`GRANT_CHECK_SECS`].
pub fn check_secs(setting: Option<&str>) -> u64 {
    setting.and_then(|v| v.trim().parse::<u64>().ok()).filter(|s| *s > 0).unwrap_or(GRANT_CHECK_SECS)
}

/// Whether a grant still exists, as a watcher sees it.
#[async_trait(?Send)]
pub trait Grants {
    async fn alive(&self, user_id: &str, grant_id: &str, now: u64) -> Result<bool, StoreError>;
}

/// The authorization server's grant records in KV: alive while the record is
/// there and not past its expiry.
pub struct KvGrants<'a>(pub &'a dyn KvStore);

#[async_trait(?Send)]
impl Grants for KvGrants<'_> {
    async fn alive(&self, user_id: &str, grant_id: &str, now: u64) -> Result<bool, StoreError> {
        let Some(raw) = self.0.get(&grant_key(user_id, grant_id)).await? else { return Ok(false) };
        // A record this version cannot read is not evidence that the grant ended.
        Ok(serde_json::from_str::<Grant>(&raw).map_or(true, |g| g.expires_at.is_none_or(|e| e > now)))
    }
}

/// Whether a stream of this grant must end: only evidence ends it, so a
/// storage failure keeps the stream (and the next check looks again).
pub async fn ended(grants: &dyn Grants, user_id: &str, grant_id: &str, now: u64) -> bool {
    matches!(grants.alive(user_id, grant_id, now).await, Ok(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use futures::executor::block_on;

    #[test]
    fn the_check_interval_falls_back_to_the_default() {
        assert_eq!(check_secs(None), GRANT_CHECK_SECS);
        assert_eq!(check_secs(Some(" 2 ")), 2);
        for bad in ["0", "-1", "soon", ""] {
            assert_eq!(check_secs(Some(bad)), GRANT_CHECK_SECS, "{bad:?}");
        }
    }

    struct Down;
    #[async_trait(?Send)]
    impl Grants for Down {
        async fn alive(&self, _: &str, _: &str, _: u64) -> Result<bool, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
    }

    #[test]
    fn only_a_missing_or_expired_grant_ends_a_stream() {
        let kv = MemoryStore::new(100);
        let key = grant_key("alice", "g1");
        block_on(async {
            assert!(ended(&KvGrants(&kv), "alice", "g1", 100).await, "no record");
            kv.put(&key, "not a grant this version reads", None).await.unwrap();
            assert!(!ended(&KvGrants(&kv), "alice", "g1", 100).await, "unreadable is not evidence");
            assert!(!ended(&Down, "alice", "g1", 100).await, "KV down is not evidence");
        });
    }
}
