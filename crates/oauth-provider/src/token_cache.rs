//! Access tokens validated in the last few seconds, kept in memory so a
//! connector's next calls skip the KV read, the key unwrap and the props
//! decryption ([`Provider::with_token_cache`]).
//!
//! What a cached answer may get wrong is bounded by the time to live, which
//! is why it is short (a few seconds by default, at most
//! [`TokenCache::MAX_TTL_SECS`], what Workers KV itself may serve a stale
//! read for in another location):
//!
//! - a token is never accepted past its own expiry, and the audience is
//!   checked on every request as for a token read from KV;
//! - revocation and every grant end that go through a [`Provider`] holding
//!   the same cache take effect at once: the entries go, and a validation
//!   that was already under way when they went cannot put them back;
//! - a token deleted elsewhere (another isolate, another location, an
//!   operator deleting KV keys) may still be accepted here until its entry's
//!   time to live runs out.
//!
//! A Worker keeps one cache per isolate (a `thread_local`), as it keeps its
//! settings. The key is the SHA-256 of the token, which is the token's KV id
//! anyway; the token itself is never kept.

use crate::bearer::AuthContext;
use crate::records::Resource;
use crate::Provider;
use std::cell::RefCell;
use std::collections::HashMap;

/// Validated access tokens of the last few seconds, per isolate. See the
/// [module documentation](self) for what it trades. Its `Debug` shows the
/// settings and the count only: the entries hold decrypted grant props.
pub struct TokenCache {
    ttl_secs: u64,
    capacity: usize,
    inner: RefCell<Inner>,
}

#[derive(Default)]
struct Inner {
    /// By token hash.
    tokens: HashMap<String, Entry>,
    /// Tokens and grants that ended here recently (`t:<hash>`, `g:<user>:<grant>`),
    /// until when: a validation that read KV before they ended must not cache them.
    ended: HashMap<String, u64>,
}

struct Entry {
    ctx: AuthContext,
    /// The token record's audience, checked on every use.
    audience: Option<Resource>,
    /// Until when (seconds since the epoch) the entry may be used.
    fresh_until: u64,
}

fn ended_grant_key(user_id: &str, grant_id: &str) -> String {
    format!("g:{user_id}:{grant_id}")
}

fn ended_token_key(hash: &str) -> String {
    format!("t:{hash}")
}

impl TokenCache {
    /// The longest time to live accepted: what Workers KV may serve a stale
    /// read for in another location.
    pub const MAX_TTL_SECS: u64 = 60;
    /// The default time to live.
    pub const DEFAULT_TTL_SECS: u64 = 10;
    /// The default bound on entries (each holds a grant's props).
    pub const DEFAULT_CAPACITY: usize = 512;

    /// A cache keeping each validated token for `ttl_secs` (capped at
    /// [`Self::MAX_TTL_SECS`]; 0 keeps nothing) and at most `capacity` tokens.
    pub fn new(ttl_secs: u64, capacity: usize) -> Self {
        Self { ttl_secs: ttl_secs.min(Self::MAX_TTL_SECS), capacity, inner: RefCell::default() }
    }

    /// How long a validated token is kept, in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// How many tokens are kept now.
    pub fn len(&self) -> usize {
        self.inner.borrow().tokens.len()
    }

    /// Whether no token is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every token (what a new isolate starts with).
    pub fn clear(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.tokens.clear();
        inner.ended.clear();
    }

    /// The cached validation of the token hashing to `hash`, still fresh at `now`.
    pub(crate) fn get(&self, hash: &str, now: u64) -> Option<(AuthContext, Option<Resource>)> {
        let inner = self.inner.borrow();
        let e = inner.tokens.get(hash)?;
        (now < e.fresh_until).then(|| (e.ctx.clone(), e.audience.clone()))
    }

    /// Keeps a validation made at `now` from a token record read from the store.
    pub(crate) fn put(&self, hash: &str, ctx: &AuthContext, audience: Option<&Resource>, now: u64) {
        if self.ttl_secs == 0 || self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.borrow_mut();
        inner.ended.retain(|_, until| *until > now);
        let ended = |key: &str| inner.ended.contains_key(key);
        if ended(&ended_token_key(hash)) || ended(&ended_grant_key(&ctx.user_id, &ctx.grant_id)) {
            return;
        }
        if inner.tokens.len() >= self.capacity {
            inner.tokens.retain(|_, e| e.fresh_until > now);
        }
        if inner.tokens.len() >= self.capacity {
            // Still full of fresh entries: start over rather than track ages.
            inner.tokens.clear();
        }
        let fresh_until = (now + self.ttl_secs).min(ctx.expires_at);
        let entry = Entry { ctx: ctx.clone(), audience: audience.cloned(), fresh_until };
        inner.tokens.insert(hash.to_owned(), entry);
    }

    /// The token hashing to `hash` was revoked at `now`.
    pub(crate) fn token_ended(&self, hash: &str, now: u64) {
        let mut inner = self.inner.borrow_mut();
        inner.tokens.remove(hash);
        inner.ended.retain(|_, until| *until > now);
        inner.ended.insert(ended_token_key(hash), now + self.ttl_secs.max(1));
    }

    /// The grant `grant_id` of `user_id` ended at `now`, with all its tokens.
    pub(crate) fn grant_ended(&self, user_id: &str, grant_id: &str, now: u64) {
        let mut inner = self.inner.borrow_mut();
        inner.tokens.retain(|_, e| !(e.ctx.user_id == user_id && e.ctx.grant_id == grant_id));
        inner.ended.retain(|_, until| *until > now);
        inner.ended.insert(ended_grant_key(user_id, grant_id), now + self.ttl_secs.max(1));
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("ttl_secs", &self.ttl_secs)
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_TTL_SECS, Self::DEFAULT_CAPACITY)
    }
}

impl<'a> Provider<'a> {
    /// The same server keeping validated access tokens in `cache` (see
    /// [`TokenCache`]) and telling it of every revocation and grant end.
    pub fn with_token_cache(self, cache: &'a TokenCache) -> Self {
        Self { token_cache: Some(cache), ..self }
    }
}
