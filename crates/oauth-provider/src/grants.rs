//! Reading, saving, listing and revoking grants, and the scheduled purge of
//! what KV's own expiry missed.

use super::records::{
    grant_ended_key, grant_key, grant_prefix, parse_grant_key, token_prefix, Grant, GrantKeyMetadata,
    GRANT_ENDED_TTL_SECS,
};
use super::Provider;
use crate::store::{KvStore, StoreError, MIN_TTL_SECS};

/// Grants checked per batch of [`Provider::purge_expired_batch`] by default
/// (as workers-oauth-provider 1.x).
pub const PURGE_BATCH: usize = 50;

/// Where a batch of the purge got to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeProgress {
    /// Grant keys looked at in this batch.
    pub checked: usize,
    /// Grants ended in this batch.
    pub purged: usize,
    /// Pass to the next batch to go on; `None` once the sweep has covered
    /// every grant (the next batch then starts a new sweep). Same format as
    /// workers-oauth-provider 1.x's `purgeExpiredData` cursor (`grants:…`).
    pub cursor: Option<String>,
}

/// What one [`Provider::purge_run`] may do. A Worker invocation may make
/// 1000 KV operations and a limited number of subrequests (each grant ended
/// may cost the application's grant-end hook an upstream call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeLimits {
    /// Grant keys looked at.
    pub grants: usize,
    /// Grants ended.
    pub ended: usize,
    /// Store operations, roughly (a batch is not started without room for it).
    pub store_ops: usize,
}

impl Default for PurgeLimits {
    fn default() -> Self {
        Self { grants: 400, ended: 40, store_ops: 500 }
    }
}

/// What one [`Provider::purge_run`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeRun {
    /// Grant keys looked at in this run.
    pub checked: usize,
    /// Grants ended in this run.
    pub purged: usize,
    /// The sweep covered every grant (no cursor is left for the next run).
    pub complete: bool,
}

/// A [`Provider::purge_run`] that stopped at a store failure: what it had
/// done by then (kept: its cursor was saved) and the first failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeFailed {
    /// What the run did before it stopped.
    pub run: PurgeRun,
    /// The first store failure.
    pub error: StoreError,
}

impl std::fmt::Display for PurgeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (after checking {} grants and ending {} expired ones; the next run goes on from there)",
            self.error, self.run.checked, self.run.purged
        )
    }
}

impl std::error::Error for PurgeFailed {}

/// The KV cursor inside a purge cursor. A 1.x cursor past its grant phase
/// (`tokens:…`), or anything unreadable, starts a new sweep.
fn kv_cursor(cursor: Option<&str>) -> Option<&str> {
    cursor.and_then(|c| c.strip_prefix("grants:")).filter(|c| !c.is_empty())
}

/// Two resource indicators name the same resource (scheme and host compared
/// case-insensitively, as URLs; otherwise exactly).
fn same_resource(a: &str, b: &str) -> bool {
    a == b || matches!((url::Url::parse(a), url::Url::parse(b)), (Ok(x), Ok(y)) if x == y)
}

/// A grant as listed to its user (no secrets, no props).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GrantSummary {
    /// The grant's id (pass it to [`Provider::revoke_grant`]).
    pub id: String,
    /// The client the grant was given to.
    pub client_id: String,
    /// The user who gave it.
    pub user_id: String,
    /// The scopes granted.
    pub scope: Vec<String>,
    /// The grant's application metadata (stored in clear).
    pub metadata: serde_json::Value,
    /// When the grant was made (seconds since the epoch).
    pub created_at: u64,
    /// When it ends (seconds since the epoch), if ever.
    pub expires_at: Option<u64>,
    /// The redirect URI the grant was made through (not in grants from before 1.x).
    pub redirect_uri: Option<String>,
    /// When tokens were last issued under it ([`Grant::tokens_issued_at`]).
    pub tokens_issued_at: Option<u64>,
}

/// How long a grant's record outlives the grant in KV: longer than the
/// daily purge's period, so the purge sees every grant that runs out and the
/// application hears of its end (PingOne refresh-token revocation). A grant
/// past its end is refused whatever KV still holds.
pub const ENDED_GRANT_RETENTION_SECS: u64 = 2 * 24 * 3600;

impl Provider<'_> {
    /// The grant `grant_id` of `user_id`; `None` when absent or unreadable.
    pub async fn get_grant(&self, user_id: &str, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        Ok(self.store.get(&grant_key(user_id, grant_id)).await?.and_then(|raw| serde_json::from_str(&raw).ok()))
    }

    /// Writes a grant's record for `ttl_secs` (`None`: no KV expiry) with the
    /// key metadata 1.x writes ([`Grant::key_metadata`]). Every grant write
    /// goes through here, so the metadata never drifts from the record.
    pub(crate) async fn put_grant(&self, grant: &Grant, ttl_secs: Option<u64>) -> Result<(), StoreError> {
        let raw = serde_json::to_string(grant).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let key = grant_key(&grant.user_id, &grant.id);
        self.store.put_with_metadata(&key, &raw, ttl_secs, grant.key_metadata().as_ref()).await
    }

    /// Saves a grant that has been exchanged: it lives until `expires_at`.
    pub(crate) async fn save_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        let ttl = grant.expires_at.map(|e| e.saturating_sub(self.now).max(MIN_TTL_SECS) + ENDED_GRANT_RETENTION_SECS);
        self.put_grant(grant, ttl).await
    }

    /// Ends a grant: its record goes first, so nothing can use or refresh it
    /// even if deleting a token fails later; then every access token issued
    /// under it, continuing past failures (an access token left behind dies
    /// at its own expiry); then the application hears of it. The first
    /// storage error is returned after all of that was tried.
    pub(crate) async fn end_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        self.end_grant_marked(grant, true).await
    }

    /// [`Self::end_grant`]; `mark`: leave the end marker first (not needed
    /// for a grant that is over, which no refresh can be using).
    async fn end_grant_marked(&self, grant: &Grant, mark: bool) -> Result<(), StoreError> {
        let marked = if mark { self.mark_ended(&grant.user_id, &grant.id).await } else { Ok(()) };
        self.store.delete(&grant_key(&grant.user_id, &grant.id)).await?;
        let tokens = self.delete_tokens(&grant.user_id, &grant.id).await;
        self.hooks.grant_ended(grant).await;
        marked.and(tokens)
    }

    /// Leaves the marker ([`grant_ended_key`]) a refresh in flight checks
    /// after writing the grant back; written before the grant is deleted.
    async fn mark_ended(&self, user_id: &str, grant_id: &str) -> Result<(), StoreError> {
        let key = grant_ended_key(user_id, grant_id);
        self.store.put(&key, &self.now.to_string(), Some(GRANT_ENDED_TTL_SECS)).await
    }

    /// Whether the grant's end was marked ([`Self::end_grant`]).
    pub(crate) async fn grant_ended(&self, user_id: &str, grant_id: &str) -> Result<bool, StoreError> {
        Ok(self.store.get(&grant_ended_key(user_id, grant_id)).await?.is_some())
    }

    /// Ends the grant `grant_id` of `user_id` (its record first, then its access tokens, then
    /// [`GrantHooks::grant_ended`](crate::GrantHooks::grant_ended)); a grant
    /// whose record is gone or unreadable still loses its tokens.
    pub async fn revoke_grant(&self, user_id: &str, grant_id: &str) -> Result<(), StoreError> {
        match self.get_grant(user_id, grant_id).await? {
            Some(g) => self.end_grant(&g).await,
            None => {
                let marked = self.mark_ended(user_id, grant_id).await;
                self.store.delete(&grant_key(user_id, grant_id)).await?;
                marked.and(self.delete_tokens(user_id, grant_id).await)
            }
        }
    }

    pub(crate) async fn delete_tokens(&self, user_id: &str, grant_id: &str) -> Result<(), StoreError> {
        if let Some(cache) = self.token_cache {
            cache.grant_ended(user_id, grant_id, self.now);
        }
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
                redirect_uri: g.redirect_uri,
                tokens_issued_at: g.tokens_issued_at,
            })
            .collect())
    }

    /// Ids of the user's grants whose key metadata satisfies `matches`. Keys
    /// carrying 1.x key metadata are judged from the listing alone; others
    /// (written by 0.x, or whose metadata would not fit) are read.
    pub(crate) async fn find_grants(
        &self,
        user_id: &str,
        matches: impl Fn(&GrantKeyMetadata) -> bool,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.store.list_keys(&grant_prefix(user_id), cursor.as_deref(), None).await?;
            for key in &page.keys {
                let Some((owner, grant_id)) = parse_grant_key(&key.name) else { continue };
                if owner != user_id {
                    continue;
                }
                let meta = match GrantKeyMetadata::parse(key.metadata.as_ref()) {
                    Some(m) => m,
                    None => match self.store.get(&key.name).await? {
                        Some(raw) => match serde_json::from_str::<Grant>(&raw) {
                            Ok(g) => GrantKeyMetadata::of(&g),
                            Err(_) => continue,
                        },
                        None => continue,
                    },
                };
                if matches(&meta) {
                    out.push(grant_id.to_owned());
                }
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(out)
    }

    /// One grant per user, client and resource: ends the user's other grants
    /// for `grant`'s client that share a resource with it (a grant recorded
    /// without a resource, from before resource indicators, counts as
    /// `legacy_resource`). A Client ID Metadata Document client's id is shared
    /// by every installation of it, so for one only grants made through the
    /// same redirect URI are replaced. Returns how many were ended; tries
    /// them all and returns the first storage error.
    pub(crate) async fn replace_older_grants(&self, grant: &Grant, legacy_resource: &str) -> Result<usize, StoreError> {
        let cimd = super::cimd::is_metadata_url(&grant.client_id);
        let mut new_resources = grant.resources();
        if new_resources.is_empty() {
            new_resources.push(legacy_resource.to_owned());
        }
        let ids = self
            .find_grants(&grant.user_id, |old| {
                let old_resources = match &old.resource {
                    Some(r) => r.to_list(),
                    None => vec![legacy_resource.to_owned()],
                };
                old.client_id == grant.client_id
                    && (!cimd || old.redirect_uri.is_some() && old.redirect_uri == grant.redirect_uri)
                    && old_resources.iter().any(|o| new_resources.iter().any(|n| same_resource(o, n)))
            })
            .await?;
        let mut ended = 0;
        let mut first_error = None;
        for id in ids.iter().filter(|id| **id != grant.id) {
            match self.revoke_grant(&grant.user_id, id).await {
                Ok(()) => ended += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(ended), Err)
    }

    /// Whether a grant is over: past its end, or never exchanged and its code long gone.
    fn is_over(&self, g: &Grant) -> bool {
        match g.expires_at {
            Some(e) => e <= self.now,
            None => g.auth_code_wrapped_key.is_some() && g.created_at + self.config.code_ttl + MIN_TTL_SECS <= self.now,
        }
    }

    /// One batch of the purge: looks at up to `batch` grant keys from
    /// `cursor` (`None`: from the first) and ends the grants whose lifetime
    /// is over but whose records are still in the store (KV expiry is lazy
    /// and best effort), like [`Self::revoke_grant`], so the application
    /// hears of each end. Costs one `list` and one read per grant, plus the
    /// deletions of what it ends. A long namespace is covered over several
    /// batches by passing each [`PurgeProgress::cursor`] to the next.
    pub async fn purge_expired_batch(&self, cursor: Option<&str>, batch: usize) -> Result<PurgeProgress, StoreError> {
        let batch = batch.max(1);
        let mut progress = PurgeProgress::default();
        let mut kv = kv_cursor(cursor).map(str::to_owned);
        while progress.checked < batch {
            let page = self.store.list_keys("grant:", kv.as_deref(), Some(batch - progress.checked)).await?;
            for key in &page.keys {
                progress.checked += 1;
                let Some(raw) = self.store.get(&key.name).await? else { continue };
                let Ok(g) = serde_json::from_str::<Grant>(&raw) else { continue };
                // The key, not the record, says whose grant it is.
                if self.is_over(&g) && key.name == grant_key(&g.user_id, &g.id) {
                    // Past its end: no refresh can be using it, so no end marker.
                    self.end_grant_marked(&g, false).await?;
                    progress.purged += 1;
                }
            }
            match page.cursor {
                Some(c) => kv = Some(c),
                None => return Ok(progress),
            }
        }
        progress.cursor = kv.map(|c| format!("grants:{c}"));
        Ok(progress)
    }

    /// One scheduled run of the purge that a large namespace needs: goes on
    /// from the cursor the last run left under `cursor_key` in the store, in
    /// batches of [`PURGE_BATCH`], until the sweep is complete or `limits` is
    /// spent, and leaves the cursor for the next run (deleted once a sweep is
    /// complete). The cursor is saved even when a batch fails: what was done
    /// stays done. The error is the first failure, after the cursor was saved,
    /// with what the run did before it.
    pub async fn purge_run(&self, cursor_key: &str, limits: PurgeLimits) -> Result<PurgeRun, PurgeFailed> {
        let counted = crate::store::Counting::new(self.store);
        let provider = Provider { store: &counted, cimd_memo: Default::default(), ..*self };
        let started_from =
            counted.get(cursor_key).await.map_err(|error| PurgeFailed { run: PurgeRun::default(), error })?;
        let mut cursor = started_from.clone();
        let mut run = PurgeRun::default();
        let mut failure = None;
        loop {
            // A batch ends at most as many grants as it looks at, so capping it by the
            // ends left keeps the run within `limits.ended` (each end may cost the hook a
            // subrequest, and a failed one is never retried).
            let left = limits.grants.saturating_sub(run.checked).min(limits.ended.saturating_sub(run.purged));
            let batch = PURGE_BATCH.min(left).max(1);
            match provider.purge_expired_batch(cursor.as_deref(), batch).await {
                Ok(p) => {
                    run.checked += p.checked;
                    run.purged += p.purged;
                    cursor = p.cursor;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            // A batch costs a list and a read per grant, plus the deletions of what it ends.
            let store_left = counted.ops() + 2 * PURGE_BATCH < limits.store_ops;
            if cursor.is_none() || run.checked >= limits.grants || run.purged >= limits.ended || !store_left {
                break;
            }
        }
        let saved = match &cursor {
            Some(c) => self.store.put(cursor_key, c, None).await,
            None if started_from.is_some() => self.store.delete(cursor_key).await,
            None => Ok(()),
        };
        run.complete = cursor.is_none();
        match failure.or(saved.err()) {
            Some(error) => Err(PurgeFailed { run, error }),
            None => Ok(run),
        }
    }

    /// The whole purge in one go (see [`Self::purge_expired_batch`]); for a
    /// large namespace, run batches from a stored cursor instead. Returns how
    /// many grants were ended.
    pub async fn purge_expired(&self) -> Result<usize, StoreError> {
        let mut purged = 0;
        let mut cursor: Option<String> = None;
        loop {
            let p = self.purge_expired_batch(cursor.as_deref(), PURGE_BATCH).await?;
            purged += p.purged;
            match p.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(purged),
            }
        }
    }
}
