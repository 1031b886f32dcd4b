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
    assert!(matches!(w.bearer(&access), Err(BearerError::Invalid(_))));

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
    assert!(matches!(w.bearer(access), Err(BearerError::Invalid(_))));
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
            Err(BearerError::Invalid(why)) => assert!(why.contains("audience"), "{wrong}: {why}"),
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
    let res = challenge(url.as_str(), &BearerError::Unavailable, &[]);
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
