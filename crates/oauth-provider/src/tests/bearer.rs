//! Bearer validation of the protected routes and the 401 challenges.

use super::*;
use crate::bearer::challenge;

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

/// A request to `url` through `authenticate_request` (what the Worker does for /mcp, /sse).
#[allow(clippy::result_large_err)]
fn request(w: &World, url: &str, auth: Option<&str>, origin: Option<&str>) -> Result<AuthContext, Response<Vec<u8>>> {
    let mut req = Request::post(url);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    block_on(w.p().authenticate_request(&req.body(Vec::new()).unwrap()))
}

fn assert_invalid_token(res: &Response<Vec<u8>>, prm: &str) {
    assert_eq!(res.status(), 401);
    let www = header(res, "www-authenticate").unwrap();
    assert!(www.starts_with(&format!("Bearer realm=\"OAuth\", resource_metadata=\"{prm}\"")), "{www}");
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    assert_eq!(json_of(res)["error"], "invalid_token");
}

#[test]
fn a_valid_token_gives_props_user_grant_client_and_scopes() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let access = s(&t["access_token"]);
    for url in [
        MCP,
        "https://mcp.example.com/mcp/",
        "https://mcp.example.com/mcp/x/y",
        "https://mcp.example.com/sse",
        "https://mcp.example.com/sse/message?sessionId=1",
    ] {
        let ctx = request(&w, url, Some(&format!("Bearer {access}")), None)
            .unwrap_or_else(|r| panic!("{url}: {}", String::from_utf8_lossy(r.body())));
        assert_eq!(ctx.user_id, "alice");
        assert_eq!(ctx.client_id, c.id);
        assert_eq!(ctx.grant_id, access.split(':').nth(1).unwrap());
        assert_eq!(ctx.scopes, vec!["todo_api:read", "todo_api:write"]);
        assert_eq!(ctx.audience, vec![MCP.to_string()]);
        assert_eq!(ctx.expires_at, NOW + 3600);
        assert_eq!(ctx.props, json!({"user": "alice", "secret": "upstream-token"}));
    }
    // The scheme is case-insensitive.
    assert!(request(&w, MCP, Some(&format!("bearer {access}")), None).is_ok());
    // Validation reads the store once and writes nothing.
    let before = w.store.ttls_requested.borrow().len();
    let keys = w.store.keys();
    assert!(w.bearer(access).is_ok());
    assert_eq!(w.store.ttls_requested.borrow().len(), before);
    assert_eq!(w.store.keys(), keys);
}

#[test]
fn missing_credentials_get_a_bare_challenge() {
    let w = World::new();
    for auth in [None, Some("Basic dXNlcjpwYXNz"), Some("Bearer"), Some("Bearer   "), Some("Token abc")] {
        let res = request(&w, MCP, auth, None).unwrap_err();
        assert_eq!(res.status(), 401, "{auth:?}");
        assert_eq!(
            header(&res, "www-authenticate"),
            Some("Bearer realm=\"OAuth\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"todo_api:read todo_api:write\"")
        );
        // An OAuth error: never cached.
        assert_eq!(header(&res, "cache-control"), Some("no-store"));
    }
    let res = request(&w, "https://mcp.example.com/sse", None, None).unwrap_err();
    let www = header(&res, "www-authenticate").unwrap();
    assert!(
        www.contains("resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/sse\""),
        "{www}"
    );
    assert!(!www.contains("error="));
}

#[test]
fn unknown_malformed_expired_and_revoked_tokens_are_invalid_token() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let access = s(&t["access_token"]).to_owned();
    let prm = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
    let last = if access.ends_with('A') { "B" } else { "A" };
    let tampered = format!("{}{last}", &access[..access.len() - 1]);
    for bad in ["nonsense", "a:b:c", "a:b:c:d", tampered.as_str(), s(&t["refresh_token"])] {
        let res = request(&w, MCP, Some(&format!("Bearer {bad}")), None).unwrap_err();
        assert_invalid_token(&res, prm);
    }
    // Expired: the record outlived its expiry (KV expiry is lazy).
    w.advance(3599);
    assert!(w.bearer(&access).is_ok());
    w.advance(1);
    assert!(matches!(w.bearer(&access), Err(BearerError::Invalid(..))));

    // Revoked (grant revoked through the refresh token).
    let t = w.tokens(&c, "bob");
    let res = w.form_as("/revoke", &c, &[("token", s(&t["refresh_token"]))]);
    assert_eq!(res.status(), 200);
    let res = request(&w, MCP, Some(&format!("Bearer {}", s(&t["access_token"]))), None).unwrap_err();
    assert_invalid_token(&res, prm);
}

#[test]
fn an_expired_record_still_in_the_store_is_refused() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let access = s(&t["access_token"]);
    // KV may serve a record after its expiry: the recorded expiry decides.
    let key = w.keys("token:").pop().unwrap();
    let raw = w.store.raw(&key).unwrap();
    block_on(crate::store::KvStore::put(&*w.store, &key, &raw, None)).unwrap();
    w.advance(3600);
    assert!(w.store.raw(&key).is_some());
    assert!(matches!(w.bearer(access), Err(BearerError::Invalid(..))));
}

#[test]
fn audience_is_checked_on_path_boundaries_and_origin() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let access = s(&t["access_token"]);
    for wrong in [
        "https://mcp.example.com/mcp-other",
        "https://mcp.example.com/mcpx",
        "https://mcp.example.com/other",
        "https://other.example.com/mcp",
        "http://mcp.example.com/mcp",
        "https://mcp.example.com:8443/mcp",
    ] {
        match w.bearer_at(Some(access), wrong) {
            Err(BearerError::Invalid(why, _)) => assert!(why.contains("audience"), "{wrong}: {why}"),
            other => panic!("{wrong}: {other:?}"),
        }
    }
    let res = request(&w, "https://mcp.example.com/mcp-other", Some(&format!("Bearer {access}")), None).unwrap_err();
    assert_invalid_token(&res, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp-other");
}

#[test]
fn tokens_without_audience_are_good_on_the_protected_routes_only() {
    use crate::bearer::audience_ok;
    use crate::records::Resource;
    let u = |s: &str| Url::parse(s).unwrap();
    let c = &Config::default();
    for ok in ["https://h/mcp", "https://h/mcp/x", "https://h/sse", "https://h/sse/message"] {
        assert!(audience_ok(c, None, &u(ok)), "{ok}");
    }
    for bad in ["https://h/mcp-other", "https://h/", "https://h/ssex", "https://h/token"] {
        assert!(!audience_ok(c, None, &u(bad)), "{bad}");
    }
    let many = Resource::Many(vec!["https://h/sse".into(), "https://h/mcp".into()]);
    assert!(audience_ok(c, Some(&many), &u("https://h/mcp")) && audience_ok(c, Some(&many), &u("https://h/sse")));
    assert!(!audience_ok(c, Some(&many), &u("https://h/mcp-other")));
}

#[test]
fn challenges_carry_cors_headers_and_storage_errors_are_not_401() {
    let w = World::new();
    let res = request(&w, MCP, None, Some("https://inspector.example")).unwrap_err();
    assert_eq!(header(&res, "access-control-allow-origin"), Some("https://inspector.example"));
    let expose = header(&res, "access-control-expose-headers").unwrap().to_ascii_lowercase();
    assert!(expose.contains("www-authenticate") && expose.contains("mcp-session-id"), "{expose}");
    let url = Url::parse(MCP).unwrap();
    let res = challenge(url.as_str(), &BearerError::Unavailable(crate::error::Reason::STORAGE_UNAVAILABLE), &[]);
    assert_eq!(res.status(), 503);
    assert!(header(&res, "www-authenticate").is_none());
}

#[test]
fn challenges_below_a_transport_name_that_transports_metadata() {
    use crate::bearer::resource_metadata_url;
    let u = |s: &str| url::Url::parse(s).unwrap();
    let prm = "https://h/.well-known/oauth-protected-resource";
    let c = &Config::default();
    assert_eq!(resource_metadata_url(c, &u("https://h/sse/message?sessionId=1")), format!("{prm}/sse"));
    assert_eq!(resource_metadata_url(c, &u("https://h/sse")), format!("{prm}/sse"));
    assert_eq!(resource_metadata_url(c, &u("https://h/mcp")), format!("{prm}/mcp"));
    assert_eq!(resource_metadata_url(c, &u("https://h/mcp/x")), format!("{prm}/mcp"));
}

/// The internal reason of a refusal of `token` at the MCP resource, read
/// back from the complete answer as the Worker logs it.
fn refusal_reason(w: &World, token: Option<&str>) -> String {
    let auth = token.map(|t| format!("Bearer {t}"));
    let res = request(w, MCP, auth.as_deref(), None).expect_err("refused");
    crate::error::Reason::of(&res).expect("a reason").to_string()
}

#[test]
fn each_bearer_refusal_carries_its_own_reason_and_the_wire_stays_generic() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let access = s(&t["access_token"]).to_owned();
    let grant = access.split(':').nth(1).unwrap().to_owned();
    let key = w.keys("token:").pop().unwrap();
    let record: Value = serde_json::from_str(&w.store.raw(&key).unwrap()).unwrap();
    // A record planted under the key of `token`, edited by `edit`.
    let plant = |token: &str, edit: &dyn Fn(&mut Value)| {
        let mut r = record.clone();
        edit(&mut r);
        let k = format!("token:alice:{grant}:{}", crate::token_str::hash(token));
        block_on(crate::store::KvStore::put(&*w.store, &k, &r.to_string(), None)).unwrap();
    };
    let other = |n: &str| format!("alice:{grant}:{n}");
    plant(&other("mismatch"), &|_| {});
    plant(&other("garbage"), &|r| *r = json!({"not": "a record"}));
    let unwrap = other("unwrap");
    plant(&unwrap, &|r| r["id"] = json!(crate::token_str::hash(&unwrap)));
    plant(&access, &|r| r["grant"]["encryptedProps"] = json!("AAAA"));
    let props = access.clone();

    let cases = [
        (None, "bearer.missing"),
        (Some("not-one-of-ours".to_owned()), "bearer.malformed"),
        (Some(other("unknown")), "bearer.token_not_found"),
        (Some(other("mismatch")), "bearer.token_mismatch"),
        (Some(other("garbage")), "bearer.record_unreadable"),
        (Some(unwrap), "bearer.key_unwrap_failed"),
        (Some(props), "bearer.props_unreadable"),
    ];
    let mut seen = std::collections::HashSet::new();
    for (token, reason) in cases {
        let res = request(&w, MCP, token.as_deref().map(|t| format!("Bearer {t}")).as_deref(), None).unwrap_err();
        assert_eq!(crate::error::Reason::of(&res).map(|r| r.to_string()).as_deref(), Some(reason), "{token:?}");
        assert!(seen.insert(reason));
        // What the client sees names no check.
        let body = String::from_utf8_lossy(res.body()).into_owned();
        let www = header(&res, "www-authenticate").unwrap().to_owned();
        let check = reason.split('.').nth(1).unwrap();
        assert!(!body.contains(check) && !www.contains(check), "{reason}: {body} {www}");
        if token.is_some() {
            assert_eq!(json_of(&res)["error_description"], crate::bearer::UNKNOWN_TOKEN, "{reason}");
        }
    }

    // Audience and expiry, with a fresh token.
    let t = w.tokens(&c, "bob");
    let fresh = s(&t["access_token"]);
    let res = request(&w, "https://mcp.example.com/other", Some(&format!("Bearer {fresh}")), None).unwrap_err();
    assert_eq!(crate::error::Reason::of(&res).unwrap().to_string(), "bearer.audience_mismatch");
    let key = w.keys("token:bob:").pop().unwrap();
    let raw = w.store.raw(&key).unwrap();
    block_on(crate::store::KvStore::put(&*w.store, &key, &raw, None)).unwrap();
    w.advance(3600);
    assert_eq!(refusal_reason(&w, Some(fresh)), "bearer.token_expired");
}

/// The application's resolution of other issuers' tokens, for the tests:
/// `partner-ok` is accepted, `partner-reader` lacks a scope, `partner-elsewhere`
/// is for another resource, `partner-down` cannot be checked now; it records
/// every token it is shown.
#[derive(Default)]
struct Partner {
    shown: std::cell::RefCell<Vec<String>>,
}

#[async_trait::async_trait(?Send)]
impl crate::ExternalTokens for Partner {
    async fn resolve(&self, token: &str, url: &Url) -> Result<Option<AuthContext>, BearerError> {
        self.shown.borrow_mut().push(token.to_owned());
        let ctx = |audience: &str| AuthContext {
            user_id: "partner-user".into(),
            grant_id: String::new(),
            client_id: "partner".into(),
            scopes: vec!["todo_api:read".into()],
            audience: vec![audience.into()],
            expires_at: NOW + 60,
            props: json!({"issuer": "partner", "at": url.path()}),
        };
        match token {
            "partner-ok" => Ok(Some(ctx(MCP))),
            "partner-elsewhere" => Ok(Some(ctx("https://other.example.com/mcp"))),
            "partner-reader" => Err(BearerError::insufficient_scope(
                ["todo_api:read", "todo_api:write", "todo_api:read"],
                "The partner token lacks \"todo_api:write\"",
                crate::error::Reason::new("external_token", "partner_scope_missing"),
            )),
            "partner-revoked" => Err(BearerError::invalid(
                "The partner token was revoked",
                crate::error::Reason::new("external_token", "partner_revoked"),
            )),
            "partner-down" => {
                Err(BearerError::Unavailable(crate::error::Reason::new("external_token", "partner_down")))
            }
            _ => Ok(None),
        }
    }
}

#[allow(clippy::result_large_err)]
fn with_partner<'a>(
    w: &'a World,
    hook: &'a Partner,
    token: &str,
    origin: Option<&str>,
) -> Result<AuthContext, Response<Vec<u8>>> {
    let mut req = Request::post(MCP).header("authorization", format!("Bearer {token}"));
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    block_on(w.p().with_external_tokens(hook).authenticate_request(&req.body(Vec::new()).unwrap()))
}

#[test]
fn a_foreign_token_is_resolved_by_the_applications_hook() {
    let w = World::new();
    let hook = Partner::default();
    let ctx = with_partner(&w, &hook, "partner-ok", None).unwrap();
    assert_eq!((ctx.user_id.as_str(), ctx.client_id.as_str()), ("partner-user", "partner"));
    assert_eq!(ctx.props, json!({"issuer": "partner", "at": "/mcp"}));
    assert_eq!(*hook.shown.borrow(), ["partner-ok"]);
    // Without the hook the same token is just unknown.
    let res = request(&w, MCP, Some("Bearer partner-ok"), None).unwrap_err();
    assert_invalid_token(&res, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
}

#[test]
fn the_hook_can_answer_403_insufficient_scope_with_the_scopes_to_ask_for() {
    let w = World::new();
    let hook = Partner::default();
    let res = with_partner(&w, &hook, "partner-reader", Some("https://inspector.example")).unwrap_err();
    assert_eq!(res.status(), 403);
    assert_eq!(
        header(&res, "www-authenticate"),
        Some(
            "Bearer realm=\"OAuth\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", \
             scope=\"todo_api:read todo_api:write\", error=\"insufficient_scope\", \
             error_description=\"The partner token lacks todo_api:write\""
        ),
        "scopes deduplicated, quotes dropped from the description"
    );
    assert_eq!(json_of(&res)["error"], "insufficient_scope");
    assert_eq!(header(&res, "access-control-allow-origin"), Some("https://inspector.example"));
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    assert_eq!(crate::error::Reason::of(&res).unwrap().to_string(), "external_token.partner_scope_missing");
}

#[test]
fn the_hook_can_refuse_and_what_it_accepts_must_be_for_this_resource() {
    let w = World::new();
    let hook = Partner::default();
    let prm = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
    for (token, reason, description) in [
        ("partner-revoked", "external_token.partner_revoked", "The partner token was revoked"),
        ("partner-elsewhere", "external_token.audience_mismatch", crate::bearer::WRONG_AUDIENCE),
        ("someone-else", "external_token.not_recognized", crate::bearer::UNKNOWN_TOKEN),
    ] {
        let res = with_partner(&w, &hook, token, None).unwrap_err();
        assert_invalid_token(&res, prm);
        assert_eq!(json_of(&res)["error_description"], description, "{token}");
        assert_eq!(crate::error::Reason::of(&res).unwrap().to_string(), reason, "{token}");
    }
    let res = with_partner(&w, &hook, "partner-down", None).unwrap_err();
    assert_eq!(res.status(), 503);
}

#[test]
fn tokens_in_this_servers_shape_never_reach_the_hook() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let hook = Partner::default();
    // Ours and good: validated here, the hook is not asked.
    assert!(with_partner(&w, &hook, s(&t["access_token"]), None).is_ok());
    // Ours in shape but unknown, or revoked: refused here, never forwarded.
    let res = with_partner(&w, &hook, "alice:nogrant:secret", None).unwrap_err();
    assert_eq!(crate::error::Reason::of(&res).unwrap().to_string(), "bearer.token_not_found");
    let res = w.form_as("/revoke", &c, &[("token", s(&t["refresh_token"]))]);
    assert_eq!(res.status(), 200);
    assert!(with_partner(&w, &hook, s(&t["access_token"]), None).is_err());
    assert!(hook.shown.borrow().is_empty(), "{:?}", hook.shown.borrow());
}
