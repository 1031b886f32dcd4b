//! The issuer's signing keys: parsing the JWKS document and the caching
//! policy the Worker follows (one cache per isolate, see `runtime`).
//!
//! - The first token fetches the JWKS; it is kept for [`MAX_AGE_MS`].
//! - A token whose `kid` is not in the cache triggers one refetch (key
//!   rotation), but refetches are at most one per [`REFETCH_COOLDOWN_MS`], so
//!   tokens with made-up `kid`s cannot make the Worker hammer the issuer.
//! - When a refetch fails, the keys already known are used.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde::Deserialize;
use serde_json::Value;

/// How long fetched keys are used before they are fetched again.
pub const MAX_AGE_MS: u64 = 10 * 60 * 1000;
/// Least time between two fetches (also after a failed one).
pub const REFETCH_COOLDOWN_MS: u64 = 5 * 1000;
/// Largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Parses a JWKS document, skipping keys jsonwebtoken cannot read (so one
/// unusual key does not hide the others). `None` when it is not a JWKS at all.
pub fn parse(body: &[u8]) -> Option<JwkSet> {
    #[derive(Deserialize)]
    struct Doc {
        keys: Vec<Value>,
    }
    if body.len() > MAX_JWKS_BYTES {
        return None;
    }
    let doc: Doc = serde_json::from_slice(body).ok()?;
    let keys = doc.keys.into_iter().filter_map(|k| serde_json::from_value::<Jwk>(k).ok()).collect();
    Some(JwkSet { keys })
}

/// Whether `keys` has a key for a token with this `kid` (a token without a
/// `kid` may use any key, so it never triggers a refetch).
pub fn has_kid(keys: &JwkSet, kid: Option<&str>) -> bool {
    match kid {
        Some(kid) => keys.keys.iter().any(|k| k.common.key_id.as_deref() == Some(kid)),
        None => true,
    }
}

#[derive(Debug, Default)]
pub struct JwksCache {
    keys: Option<JwkSet>,
    fetched_at_ms: u64,
    last_attempt_ms: Option<u64>,
}

impl JwksCache {
    pub const fn new() -> Self {
        JwksCache { keys: None, fetched_at_ms: 0, last_attempt_ms: None }
    }

    /// The keys known, fresh or not.
    pub fn keys(&self) -> Option<&JwkSet> {
        self.keys.as_ref()
    }

    /// Whether to fetch the JWKS before verifying a token with `kid` at `now_ms`.
    pub fn should_fetch(&self, kid: Option<&str>, now_ms: u64) -> bool {
        let cooled = self.last_attempt_ms.is_none_or(|t| now_ms >= t.saturating_add(REFETCH_COOLDOWN_MS));
        if !cooled {
            return false;
        }
        match &self.keys {
            None => true,
            Some(_) if now_ms >= self.fetched_at_ms.saturating_add(MAX_AGE_MS) => true,
            Some(keys) => !has_kid(keys, kid),
        }
    }

    /// Records that a fetch starts now (before awaiting it).
    pub fn attempt(&mut self, now_ms: u64) {
        self.last_attempt_ms = Some(now_ms);
    }

    /// Keeps the keys of a successful fetch.
    pub fn store(&mut self, keys: JwkSet, now_ms: u64) {
        self.keys = Some(keys);
        self.fetched_at_ms = now_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(kids: &[&str]) -> JwkSet {
        let keys: Vec<_> = kids
            .iter()
            .map(|kid| json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": "sXch", "e": "AQAB"}))
            .collect();
        parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn parses_and_skips_unreadable_keys() {
        let doc = json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": "sXch", "e": "AQAB"},
            {"kty": "weird", "kid": "b"},
            {"kid": "c"},
            {"kty": "RSA", "kid": "d", "n": "sXch", "e": "AQAB", "alg": "RS256", "use": "sig"}
        ]});
        let keys = parse(doc.to_string().as_bytes()).unwrap();
        let rsa: Vec<_> = keys
            .keys
            .iter()
            .filter(|k| matches!(k.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)))
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        assert_eq!(rsa, vec!["a".to_string(), "d".to_string()]);
        assert!(parse(b"not json").is_none());
        assert!(parse(b"{\"nokeys\": []}").is_none());
        assert!(parse(&vec![b' '; MAX_JWKS_BYTES + 1]).is_none());
    }

    #[test]
    fn first_use_fetches_then_keys_are_cached() {
        let mut c = JwksCache::new();
        assert!(c.should_fetch(Some("a"), 1_000));
        c.attempt(1_000);
        c.store(set(&["a"]), 1_000);
        assert!(!c.should_fetch(Some("a"), 2_000));
        assert!(!c.should_fetch(None, 2_000));
        // Stale after MAX_AGE_MS.
        assert!(c.should_fetch(Some("a"), 1_000 + MAX_AGE_MS));
    }

    #[test]
    fn unknown_kid_refetches_once_per_cooldown() {
        let mut c = JwksCache::new();
        c.attempt(0);
        c.store(set(&["a"]), 0);
        // Right after a fetch, a new kid waits for the cooldown.
        assert!(!c.should_fetch(Some("b"), REFETCH_COOLDOWN_MS - 1));
        assert!(c.should_fetch(Some("b"), REFETCH_COOLDOWN_MS));
        c.attempt(REFETCH_COOLDOWN_MS);
        c.store(set(&["b", "a"]), REFETCH_COOLDOWN_MS);
        assert!(!c.should_fetch(Some("b"), REFETCH_COOLDOWN_MS + 1));
        // A made-up kid: one refetch, then none until the cooldown has passed.
        let t = 10 * REFETCH_COOLDOWN_MS;
        assert!(c.should_fetch(Some("bogus"), t));
        c.attempt(t);
        for dt in [0, 1, REFETCH_COOLDOWN_MS / 2, REFETCH_COOLDOWN_MS - 1] {
            assert!(!c.should_fetch(Some("bogus"), t + dt));
        }
    }

    #[test]
    fn failed_fetches_are_retried_after_the_cooldown() {
        let mut c = JwksCache::new();
        c.attempt(0);
        assert!(c.keys().is_none());
        assert!(!c.should_fetch(Some("a"), 1));
        assert!(c.should_fetch(Some("a"), REFETCH_COOLDOWN_MS));
    }
}
