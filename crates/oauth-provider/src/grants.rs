//! Reading, saving, listing and revoking grants, and the scheduled purge of
//! what KV's own expiry missed.

use super::records::{grant_key, grant_prefix, token_prefix, Grant};
use super::Provider;
use crate::store::{StoreError, MIN_TTL_SECS};

/// A grant as listed to its user (no secrets, no props).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GrantSummary {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: Vec<String>,
    pub metadata: serde_json::Value,
    pub created_at: u64,
    pub expires_at: Option<u64>,
}

/// How long a grant's record outlives the grant in KV: longer than the
/// daily purge's period, so the purge sees every grant that runs out and the
/// application hears of its end (PingOne refresh-token revocation). A grant
/// past its end is refused whatever KV still holds.
pub const ENDED_GRANT_RETENTION_SECS: u64 = 2 * 24 * 3600;

impl Provider<'_> {
    pub async fn get_grant(&self, user_id: &str, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        Ok(self.store.get(&grant_key(user_id, grant_id)).await?.and_then(|raw| serde_json::from_str(&raw).ok()))
    }

    /// Saves a grant that has been exchanged: it lives until `expires_at`.
    pub async fn save_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        let raw = serde_json::to_string(grant).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let ttl = grant.expires_at.map(|e| e.saturating_sub(self.now).max(MIN_TTL_SECS) + ENDED_GRANT_RETENTION_SECS);
        self.store.put(&grant_key(&grant.user_id, &grant.id), &raw, ttl).await
    }

    /// Ends a grant: its record goes first, so nothing can use or refresh it
    /// even if deleting a token fails later; then every access token issued
    /// under it, continuing past failures (an access token left behind dies
    /// at its own expiry); then the application hears of it. The first
    /// storage error is returned after all of that was tried.
    pub async fn end_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        self.store.delete(&grant_key(&grant.user_id, &grant.id)).await?;
        let tokens = self.delete_tokens(&grant.user_id, &grant.id).await;
        self.hooks.grant_ended(grant).await;
        tokens
    }

    /// Ends the grant `grant_id` of `user_id` (see [`Self::end_grant`]); a grant
    /// whose record is gone or unreadable still loses its tokens.
    pub async fn revoke_grant(&self, user_id: &str, grant_id: &str) -> Result<(), StoreError> {
        match self.get_grant(user_id, grant_id).await? {
            Some(g) => self.end_grant(&g).await,
            None => {
                self.store.delete(&grant_key(user_id, grant_id)).await?;
                self.delete_tokens(user_id, grant_id).await
            }
        }
    }

    async fn delete_tokens(&self, user_id: &str, grant_id: &str) -> Result<(), StoreError> {
        let prefix = token_prefix(user_id, grant_id);
        let mut first_error = None;
        let mut cursor: Option<String> = None;
        loop {
            let page = match self.store.list(&prefix, cursor.as_deref()).await {
                Ok(p) => p,
                Err(e) => return Err(first_error.unwrap_or(e)),
            };
            for key in &page.keys {
                if let Err(e) = self.store.delete(key).await {
                    first_error.get_or_insert(e);
                }
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Every grant of a user (readable ones only).
    pub async fn list_grants(&self, user_id: &str) -> Result<Vec<Grant>, StoreError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.store.list(&grant_prefix(user_id), cursor.as_deref()).await?;
            for key in &page.keys {
                if let Some(g) = self.store.get(key).await?.and_then(|raw| serde_json::from_str::<Grant>(&raw).ok()) {
                    out.push(g);
                }
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(out)
    }

    /// A user's grants without their secrets, for listing.
    pub async fn list_user_grants(&self, user_id: &str) -> Result<Vec<GrantSummary>, StoreError> {
        Ok(self
            .list_grants(user_id)
            .await?
            .into_iter()
            .map(|g| GrantSummary {
                id: g.id,
                client_id: g.client_id,
                user_id: g.user_id,
                scope: g.scope,
                metadata: g.metadata,
                created_at: g.created_at,
                expires_at: g.expires_at,
            })
            .collect())
    }

    /// Revokes the user's grants for `client_id`, except `keep`; with
    /// `redirect_uri`, only those made through that redirect URI.
    pub async fn revoke_client_grants(
        &self,
        user_id: &str,
        client_id: &str,
        keep: Option<&str>,
        redirect_uri: Option<&str>,
    ) -> Result<(), StoreError> {
        for g in self.list_grants(user_id).await? {
            if g.client_id == client_id
                && Some(g.id.as_str()) != keep
                && redirect_uri.is_none_or(|r| g.redirect_uri.as_deref() == Some(r))
            {
                self.end_grant(&g).await?;
            }
        }
        Ok(())
    }

    /// Revokes grants whose lifetime is over but whose records are still in
    /// the store (KV expiry is lazy and best effort). Returns how many.
    pub async fn purge_expired(&self) -> Result<usize, StoreError> {
        let mut purged = 0;
        let mut cursor: Option<String> = None;
        loop {
            let page = self.store.list("grant:", cursor.as_deref()).await?;
            for key in &page.keys {
                let Some(raw) = self.store.get(key).await? else { continue };
                let Ok(g) = serde_json::from_str::<Grant>(&raw) else { continue };
                let expired = match g.expires_at {
                    Some(e) => e <= self.now,
                    // Never exchanged: the code is long gone.
                    None => {
                        g.auth_code_wrapped_key.is_some()
                            && g.created_at + self.config.code_ttl + MIN_TTL_SECS <= self.now
                    }
                };
                // The key, not the record, says whose grant it is.
                if expired && key == &super::records::grant_key(&g.user_id, &g.id) {
                    self.end_grant(&g).await?;
                    purged += 1;
                }
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(purged)
    }
}
