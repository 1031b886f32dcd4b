//! RFC 8693 token exchange (`Config::token_exchange`): off by default, the
//! same client only, never wider in scope, audience or life, no refresh token.

use super::*;
use crate::config::Config;
use crate::error::Reason;
use crate::hooks::{Exchange, ExchangeError, ExchangeResult, GrantType};
use crate::resource::ProtectedResource;
use crate::{ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT};
use async_trait::async_trait;

const CALENDAR: &str = "https://calendar.example.net/mcp";

fn on() -> Config {
    Config { token_exchange: true, ..Config::default() }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn reason(res: &Response<Vec<u8>>) -> String {
    Reason::of(res).expect("a reason").to_string()
}

fn xchg(w: &World, c: &Client, subject: &str, extra: &[(&str, &str)]) -> Response<Vec<u8>> {
    let mut p = vec![
        ("grant_type", TOKEN_EXCHANGE_GRANT),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ];
    p.extend_from_slice(extra);
    w.token(c, &p)
}

#[test]
fn off_by_default_unsupported_and_not_advertised() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let res = xchg(&w, &c, s(&t["access_token"]), &[]);
    assert_error(&res, 400, "unsupported_grant_type");
    let m = json_of(&w.get("/.well-known/oauth-authorization-server"));
    assert_eq!(m["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
    let on = World::with_config(on());
    let m = json_of(&on.get("/.well-known/oauth-authorization-server"));
    assert_eq!(m["grant_types_supported"], json!(["authorization_code", "refresh_token", TOKEN_EXCHANGE_GRANT]));
    let env = |name: &str| (name == "OAUTH_TOKEN_EXCHANGE").then(|| "true".to_owned());
    assert!(Config::from_lookup(env).unwrap().token_exchange);
    assert!(!Config::from_lookup(|_| None).unwrap().token_exchange);
    assert!(Config::from_lookup(|n: &str| (n == "OAUTH_TOKEN_EXCHANGE").then(|| "yes".to_owned())).is_err());
}

#[test]
fn exchanges_for_a_narrower_token_without_refresh_token() {
    let w = World::with_config(on());
    let c = w.public_client();
    // Registrations default to the grant while it is on.
    let reg = json_of(
        &w.register(&json!({"client_name": "x", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})),
    );
    assert_eq!(reg["grant_types"], json!(["authorization_code", "refresh_token", TOKEN_EXCHANGE_GRANT]));
    let t = w.tokens(&c, "alice");
    let subject = s(&t["access_token"]);
    w.advance(600);
    let res = xchg(&w, &c, subject, &[("scope", "todo_api:read"), ("resource", MCP)]);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    let n = json_of(&res);
    assert_eq!(n["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(n["token_type"], "bearer");
    assert_eq!(n["scope"], "todo_api:read");
    assert_eq!(n["resource"], MCP);
    assert!(n.get("refresh_token").is_none());
    // Never outliving the subject token (3600 s from the code exchange, 600 s gone).
    assert_eq!(n["expires_in"], 3000);
    let new = s(&n["access_token"]);
    assert_ne!(new, subject);
    let ctx = w.bearer(new).unwrap();
    assert_eq!(ctx.scopes, vec!["todo_api:read"]);
    assert_eq!(ctx.props, json!({"user": "alice", "secret": "upstream-token"}));
    assert_eq!(ctx.expires_at, NOW + 3600);
    assert_eq!((ctx.client_id.as_str(), ctx.user_id.as_str()), (c.id.as_str(), "alice"));
    // The subject token still works; the grant was not touched.
    assert!(w.bearer(subject).is_ok());
    // Exchanging the narrowed token for more is refused; for the same is fine.
    assert_error(&xchg(&w, &c, new, &[("scope", "todo_api:read todo_api:write")]), 400, "invalid_scope");
    assert_eq!(xchg(&w, &c, new, &[]).status(), 200);
    // Revoking the grant revokes the exchanged token too.
    let grant_id = subject.split(':').nth(1).unwrap();
    block_on(w.p().revoke_grant("alice", grant_id)).unwrap();
    assert!(w.bearer(new).is_err());
    let res = xchg(&w, &c, subject, &[]);
    assert_error(&res, 400, "invalid_request");
    assert_eq!(reason(&res), "token_exchange.subject_token_not_found");
    assert_ttls_ok(&w);
}

#[test]
fn refusals_follow_rfc_8693() {
    let w = World::with_config(on());
    let c = w.confidential("client_secret_post");
    let other = w.confidential("client_secret_basic");
    let t = w.tokens(&c, "alice");
    let subject = s(&t["access_token"]);
    let refresh = s(&t["refresh_token"]);
    let cases: Vec<(Response<Vec<u8>>, &str, &str)> = vec![
        (
            w.token(&c, &[("grant_type", TOKEN_EXCHANGE_GRANT)]),
            "invalid_request",
            "token_exchange.subject_token_missing",
        ),
        (
            w.token(&c, &[("grant_type", TOKEN_EXCHANGE_GRANT), ("subject_token", subject)]),
            "invalid_request",
            "token_exchange.subject_token_type_missing",
        ),
        (
            w.token(
                &c,
                &[
                    ("grant_type", TOKEN_EXCHANGE_GRANT),
                    ("subject_token", refresh),
                    ("subject_token_type", "urn:ietf:params:oauth:token-type:refresh_token"),
                ],
            ),
            "invalid_request",
            "token_exchange.subject_token_type_unsupported",
        ),
        (
            xchg(&w, &c, subject, &[("requested_token_type", "urn:ietf:params:oauth:token-type:id_token")]),
            "invalid_request",
            "token_exchange.requested_token_type_unsupported",
        ),
        (xchg(&w, &c, refresh, &[]), "invalid_request", "token_exchange.subject_token_not_found"),
        (
            xchg(&w, &c, "alice:nope:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", &[]),
            "invalid_request",
            "token_exchange.subject_token_not_found",
        ),
        (xchg(&w, &c, "garbage", &[]), "invalid_request", "token_exchange.subject_token_malformed"),
        (xchg(&w, &other, subject, &[]), "invalid_request", "token_exchange.cross_client_subject_token"),
        (xchg(&w, &c, subject, &[("scope", "todo_api:read admin")]), "invalid_scope", "token.scope_not_granted"),
        (
            xchg(&w, &c, subject, &[("resource", "https://evil.example.com/mcp")]),
            "invalid_target",
            "token_exchange.resource_not_registered",
        ),
        (
            xchg(&w, &c, subject, &[("audience", "calendar")]),
            "invalid_target",
            "token_exchange.resource_not_registered",
        ),
        (
            xchg(&w, &c, subject, &[("actor_token", subject), ("actor_token_type", ACCESS_TOKEN_TYPE)]),
            "invalid_request",
            "token_exchange.actor_token_unsupported",
        ),
    ];
    for (res, error, why) in cases {
        assert_error(&res, if error == "invalid_client" { 401 } else { 400 }, error);
        assert_eq!(reason(&res), why);
    }
    // Without client authentication: invalid_client, as for any grant.
    let res = w.post_form(
        "/token",
        &[
            ("grant_type", TOKEN_EXCHANGE_GRANT),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("client_id", &c.id),
        ],
        &[],
    );
    assert_error(&res, 401, "invalid_client");
    // A client registered without the grant type: unauthorized_client.
    let narrow = w.client_with("none", REDIRECT, json!({"grant_types": ["authorization_code", "refresh_token"]}));
    let nt = w.tokens(&narrow, "bob");
    let res = xchg(&w, &narrow, s(&nt["access_token"]), &[]);
    assert_error(&res, 400, "unauthorized_client");
    // Near expiry (less than a minute left): invalid_request; expired: likewise.
    w.advance(3600 - 30);
    let res = xchg(&w, &c, subject, &[]);
    assert_error(&res, 400, "invalid_request");
    assert_eq!(reason(&res), "token_exchange.subject_token_near_expiry");
    w.advance(60);
    // Expired: gone from the store (KV's expiry), or refused by its expiresAt.
    assert_eq!(reason(&xchg(&w, &c, subject, &[])), "token_exchange.subject_token_not_found");
}

#[test]
fn the_audience_may_move_to_another_resource_the_grant_covers_only() {
    let config = Config {
        token_exchange: true,
        scopes_supported: vec!["todo_api:read".into(), "calendar:read".into()],
        resources: vec![
            ProtectedResource::new("/mcp").with_required_scopes(["todo_api:read"]),
            ProtectedResource::new(CALENDAR).with_required_scopes(["calendar:read"]),
            ProtectedResource::new("/files"),
        ],
        ..Config::default()
    };
    let w = World::with_config(config);
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[("resource", MCP), ("resource", CALENDAR)]);
    let t = json_of(&w.token(
        &c,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &c.redirect),
            ("code_verifier", &pkce.verifier),
            ("resource", MCP),
        ],
    ));
    assert_eq!(t["resource"], MCP);
    let subject = s(&t["access_token"]);
    // The calendar, named as RFC 8693's audience: granted, so allowed.
    let n = json_of(&xchg(&w, &c, subject, &[("audience", CALENDAR)]));
    assert_eq!(n["resource"], CALENDAR, "{n}");
    assert!(w.bearer_at(Some(s(&n["access_token"])), MCP).is_err());
    assert!(w.bearer_at(Some(s(&n["access_token"])), CALENDAR).is_ok());
    // /files is registered but not granted: invalid_target.
    let res = xchg(&w, &c, subject, &[("resource", &format!("{ORIGIN}/files"))]);
    assert_error(&res, 400, "invalid_target");
    assert_eq!(reason(&res), "token.resource_not_granted");
    // The bare origin is wider than the grant: refused as well.
    assert_error(&xchg(&w, &c, subject, &[("resource", ORIGIN)]), 400, "invalid_target");
}

/// A hook that caps the exchanged token and replaces its props.
struct Capping;

#[async_trait(?Send)]
impl GrantHooks for Capping {
    async fn exchange(&self, e: Exchange<'_>) -> Result<ExchangeResult, ExchangeError> {
        if e.grant_type != GrantType::TokenExchange {
            return Ok(ExchangeResult::default());
        }
        assert_eq!(e.token_scope, ["todo_api:read"]);
        Ok(ExchangeResult {
            props: Some(json!({"narrowed": true})),
            metadata: Some(json!({"ignored": true})),
            access_token_ttl: Some(120),
        })
    }
}

#[test]
fn the_hook_caps_and_sets_props_of_the_new_token_only() {
    let mut w = World::with_config(on());
    w.hooks = Box::new(Capping);
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let subject = s(&t["access_token"]);
    let n = json_of(&xchg(&w, &c, subject, &[("scope", "todo_api:read")]));
    assert_eq!(n["expires_in"], 120);
    assert_eq!(w.bearer(s(&n["access_token"])).unwrap().props, json!({"narrowed": true}));
    assert_eq!(w.bearer(subject).unwrap().props, json!({"user": "alice", "secret": "upstream-token"}));
    let g = w.grant_of(subject).unwrap();
    assert_eq!(g["metadata"], json!({"label": "alice"}));
    // A refresh still opens the grant's own props (the grant's key was not replaced).
    let r = json_of(&w.refresh(&c, s(&t["refresh_token"]), &[]));
    assert_eq!(w.bearer(s(&r["access_token"])).unwrap().props, json!({"user": "alice", "secret": "upstream-token"}));
}
