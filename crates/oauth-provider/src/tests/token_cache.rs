//! The per-isolate cache of validated access tokens: what it saves, and that
//! it never accepts what the provider ended or what expired.

use super::*;
use crate::store::Counting;
use crate::TokenCache;

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

/// A public client's access token for `user`, fresh from the code exchange.
fn signed_in(w: &World, user: &str) -> String {
    let c = w.public_client();
    s(&w.tokens(&c, user)["access_token"]).to_owned()
}

fn cached(ttl: u64) -> World {
    World { token_cache: Some(TokenCache::new(ttl, TokenCache::DEFAULT_CAPACITY)), ..World::new() }
}

/// Validates `token` at `MCP` through a store that counts its operations; the count.
fn reads_for(w: &World, token: &str) -> (Result<AuthContext, BearerError>, usize) {
    let counting = Counting::new(&*w.store);
    let mut p = Provider::new(&counting, &w.config, w.store.now());
    if let Some(c) = &w.token_cache {
        p = p.with_token_cache(c);
    }
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    let res = block_on(p.authenticate(&headers, &Url::parse(MCP).unwrap()));
    (res, counting.ops())
}

fn token_key_of(token: &str) -> String {
    let parts = crate::token_str::parse(token).unwrap();
    crate::records::token_key(parts.user_id, parts.grant_id, &crate::token_str::hash(token))
}

#[test]
fn a_validated_token_is_answered_from_memory_until_its_ttl_runs_out() {
    let w = cached(10);
    let access = signed_in(&w, "alice");
    let (first, reads) = reads_for(&w, &access);
    assert_eq!(reads, 1);
    let (again, reads) = reads_for(&w, &access);
    assert_eq!(reads, 0, "the second check skips the store");
    assert_eq!(again.unwrap(), first.unwrap(), "and gives the same user, scopes and props");
    w.advance(9);
    assert_eq!(reads_for(&w, &access).1, 0);
    w.advance(1);
    assert_eq!(reads_for(&w, &access).1, 1, "after the TTL the store is read again");
}

#[test]
fn without_a_cache_or_with_ttl_0_every_check_reads_the_store() {
    for w in [World::new(), cached(0)] {
        let access = signed_in(&w, "alice");
        for _ in 0..3 {
            assert_eq!(reads_for(&w, &access).1, 1);
        }
    }
}

#[test]
fn revoking_an_access_token_takes_effect_at_once() {
    let w = cached(60);
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let access = s(&t["access_token"]);
    assert!(w.bearer(access).is_ok());
    assert_eq!(w.form_as("/revoke", &c, &[("token", access)]).status(), 200);
    assert_eq!(w.bearer(access).unwrap_err().reason().to_string(), "bearer.token_not_found");
}

#[test]
fn every_way_a_grant_ends_here_drops_its_cached_tokens() {
    // Revoking the refresh token, revoking the grant through the API, reusing a code.
    for how in ["refresh_token", "revoke_grant", "code_reuse"] {
        let w = cached(60);
        let c = w.public_client();
        let (code, pkce) = w.code_for(&c, "alice", &[]);
        let t = json_of(&w.exchange(&c, &code, &pkce));
        let access = s(&t["access_token"]);
        assert!(w.bearer(access).is_ok(), "{how}");
        match how {
            "refresh_token" => assert_eq!(w.form_as("/revoke", &c, &[("token", s(&t["refresh_token"]))]).status(), 200),
            "revoke_grant" => block_on(w.p().revoke_grant("alice", access.split(':').nth(1).unwrap())).unwrap(),
            _ => assert_error(&w.exchange(&c, &code, &pkce), 400, "invalid_grant"),
        }
        assert!(w.bearer(access).is_err(), "{how}: the token still worked from the cache");
        assert_eq!(w.token_cache.as_ref().unwrap().len(), 0, "{how}");
    }
}

#[test]
fn a_validation_under_way_when_the_grant_ended_does_not_cache_it() {
    let w = cached(60);
    let access = signed_in(&w, "alice");
    let ctx = w.bearer(&access).unwrap();
    let cache = w.token_cache.as_ref().unwrap();
    let hash = crate::token_str::hash(&access);
    // The grant ends while another request's store read is in flight; then that request finishes.
    cache.grant_ended(&ctx.user_id, &ctx.grant_id, NOW);
    cache.put(&hash, &ctx, None, NOW);
    assert!(cache.is_empty());
    // Same for the one token.
    cache.token_ended(&hash, NOW);
    cache.put(&hash, &ctx, None, NOW + 1);
    assert!(cache.is_empty());
    // Once the TTL has passed, validations are cached again.
    cache.put(&hash, &ctx, None, NOW + 61);
    assert_eq!(cache.len(), 1);
}

/// Two requests of one isolate at once: a bearer check whose store read began
/// before another request revoked the grant finishes (it read the token as it
/// was), but does not put the token in the cache, so the next check refuses it.
#[test]
fn a_check_in_flight_during_a_revocation_does_not_cache_the_revoked_token() {
    let w = cached(60);
    let access = signed_in(&w, "alice");
    let parts = crate::token_str::parse(&access).unwrap();
    let held = Meddled::new(&w.store).holding_reads_of("token:");
    let cache = w.token_cache.as_ref().unwrap();
    let checking = Provider::new(&held, &w.config, w.store.now()).with_token_cache(cache);
    let revoking = w.p();
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {access}")).unwrap());
    let url = Url::parse(MCP).unwrap();
    let revoke = async {
        let revoked = revoking.revoke_grant(parts.user_id, parts.grant_id).await;
        held.open.set(true);
        revoked
    };
    let (checked, revoked) = block_on(futures::future::join(checking.authenticate(&headers, &url), revoke));
    revoked.unwrap();
    assert!(checked.is_ok(), "the check read the token before the revocation");
    let (again, reads) = reads_for(&w, &access);
    assert!(matches!(again, Err(BearerError::Invalid(..))), "{again:?}");
    assert_eq!(reads, 1, "refused from the store, not accepted from the cache");
}

#[test]
fn what_was_deleted_elsewhere_is_accepted_until_the_ttl_and_never_past_expiry() {
    let w = cached(10);
    let access = signed_in(&w, "alice");
    assert!(w.bearer(&access).is_ok());
    // Another isolate revoked it: this one learns within the TTL (the documented trade).
    w.store.remove(&token_key_of(&access));
    assert!(w.bearer(&access).is_ok());
    w.advance(10);
    assert_eq!(w.bearer(&access).unwrap_err().reason().to_string(), "bearer.token_not_found");

    // A token with 5 s left is kept 5 s, not 10.
    let w = cached(10);
    let access = signed_in(&w, "bob");
    w.advance(3595);
    assert!(w.bearer(&access).is_ok());
    w.advance(5);
    // Refused by the store (whose record expired with the token), not answered from memory.
    let (res, reads) = reads_for(&w, &access);
    assert!(res.is_err());
    assert_eq!(reads, 1);
}

#[test]
fn the_audience_is_checked_on_every_cached_use() {
    let w = cached(60);
    let access = signed_in(&w, "alice");
    assert!(w.bearer(&access).is_ok());
    let elsewhere = w.bearer_at(Some(&access), "https://other.example.com/mcp").unwrap_err();
    assert_eq!(elsewhere.reason().to_string(), "bearer.audience_mismatch");
    assert!(w.bearer(&access).is_ok());
}

#[test]
fn the_cache_stays_within_its_capacity() {
    let w = World { token_cache: Some(TokenCache::new(60, 2)), ..World::new() };
    for user in ["a", "b", "c", "d", "e"] {
        let access = signed_in(&w, user);
        assert!(w.bearer(&access).is_ok());
        assert!(w.token_cache.as_ref().unwrap().len() <= 2);
    }
}

#[test]
fn the_ttl_setting_is_bounded() {
    let lookup = |v: &'static str| move |name: &str| (name == "OAUTH_TOKEN_CACHE_TTL").then(|| v.to_owned());
    assert_eq!(Config::from_lookup(|_| None).unwrap().token_cache_ttl, TokenCache::DEFAULT_TTL_SECS);
    assert_eq!(Config::from_lookup(lookup("0")).unwrap().token_cache_ttl, 0);
    assert_eq!(Config::from_lookup(lookup("60")).unwrap().token_cache_ttl, 60);
    for bad in ["61", "-1", "soon"] {
        let e = Config::from_lookup(lookup(bad)).unwrap_err();
        assert!(e.0.starts_with("OAUTH_TOKEN_CACHE_TTL"), "{bad}: {e}");
    }
    assert_eq!(TokenCache::new(3600, 1).ttl_secs(), TokenCache::MAX_TTL_SECS);
}
