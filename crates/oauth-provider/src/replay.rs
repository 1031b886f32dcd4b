//! One-time values (the `jti` of client assertions and of enterprise
//! ID-JAGs): recorded in the application's [`SingleUse`](crate::SingleUse)
//! record when it installed one (strongly consistent), else as a KV marker
//! kept until the value expires (best effort across locations: KV may miss
//! a fresh marker elsewhere for about a minute).

use super::error::OAuthError;
use super::Provider;

impl Provider<'_> {
    /// Records `key` as used until `until` (seconds since the epoch):
    /// `Ok(true)` for its first use, `Ok(false)` for a replay.
    pub(crate) async fn first_use(&self, key: &str, until: u64) -> Result<bool, OAuthError> {
        if let Some(record) = self.single_use {
            return record.first_use(key, until).await;
        }
        if self.store.get(key).await?.is_some() {
            return Ok(false);
        }
        let ttl = until.saturating_sub(self.now).max(crate::store::MIN_TTL_SECS);
        self.store.put(key, &until.to_string(), Some(ttl)).await?;
        Ok(true)
    }
}
