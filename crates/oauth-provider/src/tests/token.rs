//! The token endpoint: authorization code exchange (PKCE, redirect URI, single
//! use) and refresh (rotation with one retry, narrowing, resource pinning).

use super::*;
use crate::crypto::sha256_hex;
use crate::grants::ENDED_GRANT_RETENTION_SECS;

const DAY: u64 = 24 * 3600;

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

// ---- authorization_code ------------------------------------------------------------

#[test]
fn exchange_issues_tokens_and_stores_only_hashes() {
    let w = World::new();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[("scope", "todo_api:read")]);
    let res = w.exchange(&c, &code, &pkce);
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    assert_eq!(header(&res, "pragma"), Some("no-cache"));
    assert_eq!(header(&res, "content-type"), Some("application/json"));
    let t = json_of(&res);
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["expires_in"], 3600);
    assert_eq!(t["scope"], "todo_api:read");
    assert_eq!(t["resource"], MCP);
    let (access, refresh) = (s(&t["access_token"]), s(&t["refresh_token"]));
    let grant_id = code.split(':').nth(1).unwrap();
    for tok in [access, refresh] {
        let p: Vec<&str> = tok.split(':').collect();
        assert_eq!((p[0], p[1], p[2].len()), ("alice", grant_id, 32));
    }
    assert_ne!(access, refresh);

    // The grant: code consumed (its key gone, its hash kept for replay detection), PKCE dropped.
    let g = w.grant_of(&code).unwrap();
    assert!(g.get("authCodeWrappedKey").is_none());
    assert!(g.get("codeChallenge").is_none() && g.get("codeChallengeMethod").is_none());
    assert_eq!(g["authCodeId"], sha256_hex(&code));
    assert_eq!(g["refreshTokenId"], sha256_hex(refresh));
    assert_eq!(g["expiresAt"], NOW + 30 * DAY);
    // The access token record, under the hash of the whole token.
    let key = format!("token:alice:{grant_id}:{}", sha256_hex(access));
    let rec: Value = serde_json::from_str(&w.store.raw(&key).expect("token record")).unwrap();
    assert_eq!(rec["id"], sha256_hex(access));
    assert_eq!(rec["grantId"], grant_id);
    assert_eq!(rec["userId"], "alice");
    assert_eq!(rec["expiresAt"], NOW + 3600);
    assert_eq!(rec["audience"], MCP);
    assert_eq!(rec["scope"], json!(["todo_api:read"]));
    assert_eq!(rec["grant"]["clientId"], c.id);
    assert_eq!(STANDARD.decode(s(&rec["wrappedEncryptionKey"])).unwrap().len(), 40);
    // No secret anywhere in the store.
    let dump: String = w.store.keys().iter().map(|k| format!("{k}={}", w.store.raw(k).unwrap())).collect();
    for secret in [access, refresh, code.as_str(), "upstream-token"] {
        assert!(!dump.contains(secret), "{secret} stored in plaintext");
    }
    let ttls = w.store.ttls_requested.borrow().clone();
    // The grant, the access token, then the registration promoted from its unused lifetime.
    assert!(ttls.ends_with(&[30 * DAY + ENDED_GRANT_RETENTION_SECS, 3600, 90 * DAY]), "{ttls:?}");
    assert_ttls_ok(&w);

    let ctx = w.bearer(access).unwrap();
    assert_eq!(ctx.props, json!({"user": "alice", "secret": "upstream-token"}));
    assert_eq!(
        (ctx.user_id.as_str(), ctx.grant_id.as_str(), ctx.client_id.as_str()),
        ("alice", grant_id, c.id.as_str())
    );
    assert_eq!(ctx.scopes, vec!["todo_api:read"]);
}

#[test]
fn wrong_verifier_is_invalid_grant_and_does_not_consume_the_code() {
    let w = World::new();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    let other = Pkce::new();
    assert_error(&w.exchange(&c, &code, &other), 400, "invalid_grant");
    let mut short = pkce.clone();
    short.verifier = "tooshort".into();
    assert_error(&w.exchange(&c, &code, &short), 400, "invalid_grant");
    // The verifier must not equal the challenge (that would be plain).
    let mut plain = pkce.clone();
    plain.verifier = pkce.challenge.clone();
    assert_error(&w.exchange(&c, &code, &plain), 400, "invalid_grant");
    assert!(w.grant_of(&code).unwrap().get("authCodeWrappedKey").is_some());
    assert_eq!(w.exchange(&c, &code, &pkce).status(), 200);
}

#[test]
fn missing_verifier_is_invalid_request_and_unexpected_verifier_too() {
    let w = World::new();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    let res = w.token(&c, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]);
    assert_error(&res, 400, "invalid_request");
    assert_eq!(w.exchange(&c, &code, &pkce).status(), 200);

    // A confidential client that used no PKCE must not send a verifier.
    let conf = w.confidential("client_secret_basic");
    let req = w.parse(&w.authorize_url(&conf, None, &[])).unwrap();
    let code = query_of(&w.complete(req, "bob", json!({})).unwrap())["code"].clone();
    let res = w.token(
        &conf,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", &pkce.verifier),
        ],
    );
    assert_error(&res, 400, "invalid_request");
    // Without PKCE the redirect_uri is required.
    let res = w.token(&conf, &[("grant_type", "authorization_code"), ("code", &code)]);
    assert_error(&res, 400, "invalid_request");
    let res = w.token(&conf, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", WEB_REDIRECT)]);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
}

#[test]
fn redirect_uri_must_be_the_one_of_that_authorization() {
    let w = World::new();
    let c = w.client_with("none", REDIRECT, json!({"redirect_uris": [REDIRECT, "https://app.example.com/cb"]}));
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    // Registered, but not the one this code was issued for.
    for other in ["https://app.example.com/cb", "http://127.0.0.1:40000/callback", "https://evil.example.com/cb"] {
        let res = w.token(
            &c,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", other),
                ("code_verifier", &pkce.verifier),
            ],
        );
        assert_error(&res, 400, "invalid_grant");
    }
    // With PKCE it may be left out.
    let res = w.token(&c, &[("grant_type", "authorization_code"), ("code", &code), ("code_verifier", &pkce.verifier)]);
    assert_eq!(res.status(), 200);

    // A loopback redirect on another port must be repeated with that port.
    let mut c2 = w.public_client();
    c2.redirect = "http://127.0.0.1:51000/callback".into();
    let (code, pkce) = w.code_for(&c2, "alice", &[]);
    let mut as_registered = c2.clone();
    as_registered.redirect = REDIRECT.into();
    assert_error(&w.exchange(&as_registered, &code, &pkce), 400, "invalid_grant");
    assert_eq!(w.exchange(&c2, &code, &pkce).status(), 200);
}

#[test]
fn code_used_by_another_client_fails_and_leaves_the_grant_alone() {
    let w = World::new();
    let c = w.public_client();
    let thief = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    let mut as_thief = thief.clone();
    as_thief.redirect = REDIRECT.into();
    assert_error(&w.exchange(&as_thief, &code, &pkce), 400, "invalid_grant");
    assert!(w.grant_of(&code).unwrap().get("authCodeWrappedKey").is_some(), "not consumed, not revoked");
    assert_eq!(w.exchange(&c, &code, &pkce).status(), 200);
}

#[test]
fn a_replayed_code_revokes_the_grant_and_its_tokens() {
    let w = World::new();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    let t = json_of(&w.exchange(&c, &code, &pkce));
    let t2 = json_of(&w.refresh(&c, s(&t["refresh_token"]), &[]));
    assert!(w.bearer(s(&t["access_token"])).is_ok() && w.bearer(s(&t2["access_token"])).is_ok());
    assert_error(&w.exchange(&c, &code, &pkce), 400, "invalid_grant");
    assert!(w.grant_of(&code).is_none());
    assert!(w.keys("token:").is_empty(), "every access token of the grant is gone");
    assert!(w.bearer(s(&t["access_token"])).is_err() && w.bearer(s(&t2["access_token"])).is_err());
    assert_error(&w.refresh(&c, s(&t2["refresh_token"]), &[]), 400, "invalid_grant");
}

#[test]
fn replay_by_someone_without_the_code_revokes_nothing() {
    let w = World::new();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    let t = json_of(&w.exchange(&c, &code, &pkce));
    // Right user and grant ids, wrong secret: not the code, so no replay handling.
    let forged = format!("{}:{}", code.rsplit_once(':').unwrap().0, "A".repeat(32));
    assert_error(&w.exchange(&c, &forged, &pkce), 400, "invalid_grant");
    // Another client replaying the real code: not its code either.
    let other = w.public_client();
    let mut as_other = other.clone();
    as_other.redirect = REDIRECT.into();
    assert_error(&w.exchange(&as_other, &code, &pkce), 400, "invalid_grant");
    assert!(w.bearer(s(&t["access_token"])).is_ok());
    assert!(w.grant_of(&code).is_some());
}

#[test]
fn expired_code() {
    let w = World::new();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    w.advance(600);
    assert_error(&w.exchange(&c, &code, &pkce), 400, "invalid_grant");

    let (code, pkce) = w.code_for(&c, "alice", &[]);
    w.advance(599);
    assert_eq!(w.exchange(&c, &code, &pkce).status(), 200);
}

#[test]
fn garbage_codes_and_missing_parameters() {
    let w = World::new();
    let c = w.public_client();
    let (_code, pkce) = w.code_for(&c, "alice", &[]);
    for bad in ["nonsense", "a:b", "a:b:c:d", "alice:nogrant:secret", &"x".repeat(5000)] {
        assert_error(&w.exchange(&c, bad, &pkce), 400, "invalid_grant");
    }
    assert_error(&w.token(&c, &[("grant_type", "authorization_code")]), 400, "invalid_request");
    assert_error(&w.token(&c, &[("code", "x")]), 400, "invalid_request");
    assert_error(&w.token(&c, &[("grant_type", "client_credentials")]), 400, "unsupported_grant_type");
    assert_error(
        &w.token(&c, &[("grant_type", "password"), ("username", "a"), ("password", "b")]),
        400,
        "unsupported_grant_type",
    );
    let res = w.send(Request::get(format!("{ORIGIN}/token")).body(Vec::new()).unwrap());
    assert_error(&res, 405, "invalid_request");
}

#[test]
fn resource_at_the_token_endpoint_must_be_part_of_the_grant() {
    let w = World::new();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    let exchange_with = |resource: &str| {
        w.token(
            &c,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &pkce.verifier),
                ("resource", resource),
            ],
        )
    };
    for bad in [
        "https://mcp.example.com/",
        "https://mcp.example.com/mcp-other",
        "https://evil.example.com/mcp",
        "https://mcp.example.com/mcp#frag",
        "not a url",
    ] {
        assert_error(&exchange_with(bad), 400, "invalid_target");
    }
    assert!(w.grant_of(&code).unwrap().get("authCodeWrappedKey").is_some(), "validated before the code is consumed");
    let t = json_of(&exchange_with(MCP));
    assert_eq!(t["resource"], MCP);
    let access = s(&t["access_token"]);
    assert!(w.bearer(access).is_ok());

    // A narrower resource binds the token to it.
    let c2 = w.public_client();
    let (code, pkce) = w.code_for(&c2, "bob", &[]);
    let res = w.token(
        &c2,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
            ("resource", "https://mcp.example.com/mcp/tools"),
        ],
    );
    let t = json_of(&res);
    assert_eq!(t["resource"], "https://mcp.example.com/mcp/tools");
    assert!(w.bearer_at(Some(s(&t["access_token"])), "https://mcp.example.com/mcp/tools/x").is_ok());
    assert!(matches!(w.bearer(s(&t["access_token"])), Err(BearerError::Invalid(..))));
}

#[test]
fn a_grant_for_the_sse_endpoint_is_not_good_at_mcp() {
    let w = World::new();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[("resource", "https://mcp.example.com/sse")]);
    let t = json_of(&w.exchange(&c, &code, &pkce));
    assert_eq!(t["resource"], "https://mcp.example.com/sse");
    let access = s(&t["access_token"]);
    assert!(w.bearer_at(Some(access), "https://mcp.example.com/sse").is_ok());
    assert!(matches!(w.bearer_at(Some(access), MCP), Err(BearerError::Invalid(..))));
    // Nor can it be widened to the canonical resource on refresh.
    assert_error(&w.refresh(&c, s(&t["refresh_token"]), &[("resource", MCP)]), 400, "invalid_target");
}

#[test]
fn clients_without_the_refresh_grant_get_no_refresh_token() {
    let w = World::new();
    let c = w.client_with("none", REDIRECT, json!({"grant_types": ["authorization_code"]}));
    let t = w.tokens(&c, "alice");
    assert!(t.get("refresh_token").is_none(), "{t}");
    assert!(w.bearer(s(&t["access_token"])).is_ok());
    let g = w.grant_of(s(&t["access_token"])).unwrap();
    assert!(g.get("refreshTokenId").is_none());
    assert_eq!(g["expiresAt"], NOW + 3600, "the grant lives as long as its access token");
    assert_error(&w.refresh(&c, "alice:x:y", &[]), 400, "unauthorized_client");
    assert_ttls_ok(&w);
}

#[test]
fn without_refresh_tokens_the_grant_still_expires() {
    let w = World::with_config(Config { refresh_token_ttl: 0, ..Config::default() });
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    assert!(t.get("refresh_token").is_none());
    let g = w.grant_of(s(&t["access_token"])).unwrap();
    assert_eq!(g["expiresAt"], NOW + 3600);
    w.advance(3600);
    assert!(w.bearer(s(&t["access_token"])).is_err());
    // Kept a while for the purge to see, but not forever.
    w.advance(ENDED_GRANT_RETENTION_SECS);
    assert!(w.keys("grant:").is_empty(), "nothing is kept forever");
    assert_ttls_ok(&w);
}

#[test]
fn access_tokens_never_outlive_their_grant() {
    let w = World::with_config(Config { refresh_token_ttl: 600, access_token_ttl: 3600, ..Config::default() });
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    assert_eq!(t["expires_in"], 600);
    let g = w.grant_of(s(&t["access_token"])).unwrap();
    assert_eq!(g["expiresAt"], NOW + 600);
    w.advance(600);
    assert!(w.bearer(s(&t["access_token"])).is_err());
    assert_ttls_ok(&w);
}

// ---- refresh_token -------------------------------------------------------------------

#[test]
fn refresh_rotates_and_the_previous_token_works_until_the_new_one_is_used() {
    let w = World::new();
    let c = w.public_client();
    let t0 = w.tokens(&c, "alice");
    let r0 = s(&t0["refresh_token"]).to_owned();
    w.advance(100);
    let res = w.refresh(&c, &r0, &[]);
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    let t1 = json_of(&res);
    let r1 = s(&t1["refresh_token"]).to_owned();
    assert_ne!(r1, r0);
    assert_ne!(t1["access_token"], t0["access_token"]);
    assert_eq!(t1["scope"], t0["scope"]);
    assert_eq!(t1["resource"], MCP);
    let g = w.grant_of(&r1).unwrap();
    assert_eq!(g["refreshTokenId"], sha256_hex(&r1));
    assert_eq!(g["previousRefreshTokenId"], sha256_hex(&r0));
    assert_eq!(g["expiresAt"], NOW + 30 * DAY, "rotation never extends the grant");

    // The response was lost: r0 still works (once more), giving r2.
    let t2 = json_of(&w.refresh(&c, &r0, &[]));
    let r2 = s(&t2["refresh_token"]).to_owned();
    // Now the client uses r2: r0 is finished for good.
    let t3 = json_of(&w.refresh(&c, &r2, &[]));
    let r3 = s(&t3["refresh_token"]).to_owned();
    assert_error(&w.refresh(&c, &r0, &[]), 400, "invalid_grant");
    // r1 was superseded by the retry and never used: gone too.
    assert_error(&w.refresh(&c, &r1, &[]), 400, "invalid_grant");
    // r2 (previous) still works until r3 is used.
    let t4 = json_of(&w.refresh(&c, &r3, &[]));
    assert_error(&w.refresh(&c, &r2, &[]), 400, "invalid_grant");
    // Every access token issued stays good until it expires; props survive rotation.
    for t in [&t0, &t1, &t2, &t3, &t4] {
        assert_eq!(w.bearer(s(&t["access_token"])).unwrap().props["secret"], "upstream-token");
    }
    assert_ttls_ok(&w);
}

#[test]
fn refresh_may_narrow_scope_but_not_broaden_it() {
    let w = World::new();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[("scope", "todo_api:read")]);
    let t = json_of(&w.exchange(&c, &code, &pkce));
    let r = s(&t["refresh_token"]).to_owned();
    for broader in ["todo_api:read todo_api:write", "todo_api:write", "admin"] {
        assert_error(&w.refresh(&c, &r, &[("scope", broader)]), 400, "invalid_scope");
    }
    assert_eq!(w.grant_of(&r).unwrap()["refreshTokenId"], sha256_hex(&r), "refused before rotation");

    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    assert_eq!(t["scope"], "todo_api:read todo_api:write");
    let narrowed = json_of(&w.refresh(&c, s(&t["refresh_token"]), &[("scope", "todo_api:read")]));
    assert_eq!(narrowed["scope"], "todo_api:read");
    assert_eq!(w.bearer(s(&narrowed["access_token"])).unwrap().scopes, vec!["todo_api:read"]);
    // The grant keeps its scope: a later refresh without `scope` gets it all again.
    let again = json_of(&w.refresh(&c, s(&narrowed["refresh_token"]), &[]));
    assert_eq!(again["scope"], "todo_api:read todo_api:write");
}

#[test]
fn code_exchange_scope_naming_scopes_the_grant_lacks_is_invalid_scope_and_keeps_the_code() {
    let w = World::new();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[("scope", "todo_api:read")]);
    let with_scope = |scope: &str| {
        w.token(
            &c,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &c.redirect),
                ("code_verifier", &pkce.verifier),
                ("scope", scope),
            ],
        )
    };
    // Only scopes the grant lacks (known but not granted, or unknown), or a mixture.
    for lacking in ["todo_api:write", "admin", "todo_api:write admin", "todo_api:read todo_api:write"] {
        let res = with_scope(lacking);
        assert_error(&res, 400, "invalid_scope");
        assert!(json_of(&res)["error_description"].as_str().unwrap().contains("was not granted"), "{lacking}");
    }
    let g = w.grant_of(&code).unwrap();
    assert!(g.get("authCodeWrappedKey").is_some(), "refused before the code was used");
    assert_eq!(g["scope"], json!(["todo_api:read"]));
    // An empty scope is no scope: the whole grant, which is not emptied.
    let t = json_of(&with_scope(" "));
    assert_eq!(t["scope"], "todo_api:read");
    assert_eq!(w.grant_of(&code).unwrap()["scope"], json!(["todo_api:read"]));
}

#[test]
fn refresh_with_an_empty_scope_gets_the_whole_grant() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let again = json_of(&w.refresh(&c, s(&t["refresh_token"]), &[("scope", "")]));
    assert_eq!(again["scope"], "todo_api:read todo_api:write");
    assert_eq!(w.bearer(s(&again["access_token"])).unwrap().scopes, vec!["todo_api:read", "todo_api:write"]);
}

#[test]
fn refresh_resource_is_pinned_and_checked_before_rotation() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let r = s(&t["refresh_token"]).to_owned();
    for bad in [
        "https://mcp.example.com/other",
        "https://mcp.example.com/",
        "https://evil.example.com/mcp",
        "https://mcp.example.com/mcp#x",
    ] {
        assert_error(&w.refresh(&c, &r, &[("resource", bad)]), 400, "invalid_target");
    }
    assert_eq!(w.grant_of(&r).unwrap()["refreshTokenId"], sha256_hex(&r));
    assert!(w.grant_of(&r).unwrap().get("previousRefreshTokenId").is_none());
    let t2 = json_of(&w.refresh(&c, &r, &[("resource", MCP)]));
    assert_eq!(t2["resource"], MCP);
}

#[test]
fn refresh_near_or_after_grant_expiry() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    w.advance(30 * DAY - 120);
    let t2 = json_of(&w.refresh(&c, s(&t["refresh_token"]), &[]));
    assert_eq!(t2["expires_in"], 120, "capped at the grant's remaining life");
    w.advance(61);
    assert_error(&w.refresh(&c, s(&t2["refresh_token"]), &[]), 400, "invalid_grant");
    assert_ttls_ok(&w);
    w.advance(59);
    assert_error(&w.refresh(&c, s(&t2["refresh_token"]), &[]), 400, "invalid_grant");
    w.advance(ENDED_GRANT_RETENTION_SECS);
    assert!(w.keys("grant:").is_empty());
}

#[test]
fn refresh_by_another_client_or_with_junk_fails_without_effect() {
    let w = World::new();
    let c = w.public_client();
    let other = w.public_client();
    let t = w.tokens(&c, "alice");
    let r = s(&t["refresh_token"]);
    assert_error(&w.refresh(&other, r, &[]), 400, "invalid_grant");
    assert_error(&w.refresh(&c, s(&t["access_token"]), &[]), 400, "invalid_grant");
    for junk in ["junk", "alice:nogrant:x", &format!("{}x", r)] {
        assert_error(&w.refresh(&c, junk, &[]), 400, "invalid_grant");
    }
    assert_error(&w.token(&c, &[("grant_type", "refresh_token")]), 400, "invalid_request");
    assert!(w.grant_of(r).unwrap().get("previousRefreshTokenId").is_none());
    assert_eq!(w.refresh(&c, r, &[]).status(), 200);
}
