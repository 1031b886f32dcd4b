//! Tokens verified already, per isolate: a client sends the same PingOne
//! token with every call for as long as it lives, and the RSA verification is
//! most of a call's CPU. A hit gives the claims of the earlier verification
//! without checking the signature again.
//!
//! - Keyed by the SHA-256 of the token (the token itself is not kept).
//! - Only successful verifications are kept, and only until the token's `exp`
//!   (never within the leeway past it: those are verified afresh each time).
//! - Bounded: at [`CAPACITY`] entries, expired ones go first, then the one
//!   expiring soonest.
//! - Emptied whenever the issuer's keys are fetched again, so a key the
//!   issuer stops publishing stops being trusted with its next fetch.

use crate::auth::{self, AuthError, Claims};
use crate::config::Config;
use jsonwebtoken::jwk::JwkSet;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Most tokens kept per isolate.
pub const CAPACITY: usize = 1024;

type Key = [u8; 32];

#[derive(Debug, Default)]
pub struct VerifiedTokens {
    entries: HashMap<Key, Claims>,
}

fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

impl VerifiedTokens {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The claims `token` was verified with, if it was and `now` (Unix
    /// seconds) is before its `exp`. An expired entry is dropped.
    pub fn get(&mut self, token: &str, now: u64) -> Option<Claims> {
        let k = key(token);
        match self.entries.get(&k) {
            Some(claims) if now < claims.expires_at => Some(claims.clone()),
            Some(_) => {
                self.entries.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Keeps what verifying `token` at `now` gave (unless it expires by then).
    pub fn insert(&mut self, token: &str, claims: &Claims, now: u64) {
        if now >= claims.expires_at {
            return;
        }
        let k = key(token);
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&k) {
            self.entries.retain(|_, c| now < c.expires_at);
            if self.entries.len() >= CAPACITY {
                let soonest = self.entries.iter().min_by_key(|(_, c)| c.expires_at).map(|(k, _)| *k);
                if let Some(s) = soonest {
                    self.entries.remove(&s);
                }
            }
        }
        self.entries.insert(k, claims.clone());
    }

    /// Forgets every token (the issuer's keys were fetched again).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// [`auth::verify`], answered from `cache` when `token` was verified before
/// (and has not expired); a success is kept for the next call.
pub fn verify_cached(
    cache: &mut VerifiedTokens,
    token: &str,
    keys: &JwkSet,
    config: &Config,
    now: u64,
) -> Result<Claims, AuthError> {
    if let Some(claims) = cache.get(token, now) {
        return Ok(claims);
    }
    let claims = auth::verify(token, keys, config, now)?;
    cache.insert(token, &claims, now);
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, expires_at: u64) -> Claims {
        Claims { sub: sub.into(), scopes: vec!["todo_api:read".into()], expires_at }
    }

    #[test]
    fn a_verified_token_is_known_until_its_exp_and_never_after() {
        let mut c = VerifiedTokens::new();
        c.insert("a.b.c", &claims("alice", 1_000), 900);
        assert_eq!(c.get("a.b.c", 900), Some(claims("alice", 1_000)));
        assert_eq!(c.get("a.b.c", 999), Some(claims("alice", 1_000)));
        assert_eq!(c.get("a.b.C", 999), None, "another token");
        assert_eq!(c.get("a.b.c", 1_000), None, "at exp it must be verified again");
        assert!(c.is_empty(), "the expired entry is dropped");
        // Still valid within the leeway? Then verification says so, not the cache.
        c.insert("x.y.z", &claims("bob", 1_000), 1_010);
        assert!(c.is_empty(), "a token past exp is never kept");
    }

    #[test]
    fn keyed_by_a_hash_not_the_token() {
        let mut c = VerifiedTokens::new();
        c.insert("secret-token", &claims("alice", 10), 0);
        assert!(!format!("{:?}", c).contains("secret-token"));
    }

    #[test]
    fn bounded_expired_first_then_the_soonest_to_expire() {
        let mut c = VerifiedTokens::new();
        for i in 0..CAPACITY as u64 {
            c.insert(&format!("t{i}"), &claims("u", 100 + i), 0);
        }
        assert_eq!(c.len(), CAPACITY);
        // At 149 the first 50 (exp 100..=149) have expired: all of them go, the new one stays.
        c.insert("new", &claims("u", 10_000), 149);
        assert_eq!(c.len(), CAPACITY - 50 + 1);
        assert!(c.get("t49", 149).is_none() && c.get("t50", 149).is_some());
        // Fill up again: the one expiring soonest (t50) makes room.
        for i in 0..49 {
            c.insert(&format!("more{i}"), &claims("u", 20_000), 149);
        }
        assert_eq!(c.len(), CAPACITY);
        c.insert("last", &claims("u", 20_000), 149);
        assert_eq!(c.len(), CAPACITY);
        assert!(c.get("t50", 149).is_none());
        assert!(c.get("t51", 149).is_some() && c.get("last", 149).is_some() && c.get("new", 149).is_some());
        // Re-inserting a known token never evicts another.
        c.insert("t51", &claims("u", 151), 149);
        assert_eq!(c.len(), CAPACITY);
    }

    #[test]
    fn cleared_when_the_keys_are_fetched_again() {
        let mut c = VerifiedTokens::new();
        c.insert("a", &claims("alice", 10), 0);
        c.clear();
        assert_eq!(c.get("a", 1), None);
    }
}
