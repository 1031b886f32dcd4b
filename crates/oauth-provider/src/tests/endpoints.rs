//! Discovery documents, routing, CORS, grant listing and the scheduled purge.

use super::*;
use crate::is_endpoint;

const DAY: u64 = 24 * 3600;

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn authorization_server_metadata() {
    let w = World::new();
    let res = w.get("/.well-known/oauth-authorization-server");
    assert_eq!(res.status(), 200);
    assert!(header(&res, "cache-control").unwrap().contains("max-age"));
    let m = json_of(&res);
    assert_eq!(m["issuer"], ORIGIN);
    assert_eq!(m["authorization_endpoint"], format!("{ORIGIN}/authorize"));
    assert_eq!(m["token_endpoint"], format!("{ORIGIN}/token"));
    assert_eq!(m["registration_endpoint"], format!("{ORIGIN}/register"));
    assert_eq!(m["revocation_endpoint"], format!("{ORIGIN}/revoke"));
    assert_eq!(m["response_types_supported"], json!(["code"]));
    assert_eq!(m["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(m["scopes_supported"], json!(["todo_api:read", "todo_api:write", "offline_access"]));
    // The issuer follows the origin the request came to.
    let res =
        w.send(Request::get("http://127.0.0.1:8787/.well-known/oauth-authorization-server").body(Vec::new()).unwrap());
    assert_eq!(json_of(&res)["issuer"], "http://127.0.0.1:8787");
    let res = w.post("/.well-known/oauth-authorization-server", "", &[]);
    assert_error(&res, 405, "invalid_request");
}

/// Every resource a PRM document names can be authorized, and its token is
/// accepted at the URLs that resource covers (and nowhere else).
#[test]
fn every_resource_named_in_metadata_is_one_tokens_are_accepted_for() {
    let w = World::new();
    let c = w.public_client();
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "",
            &[
                MCP,
                "https://mcp.example.com/mcp/x",
                "https://mcp.example.com/sse",
                "https://mcp.example.com/sse/message?sessionId=1",
            ],
            &["https://other.example.com/mcp"],
        ),
        ("/mcp", &[MCP, "https://mcp.example.com/sse"], &["https://mcp.example.com/mcp-other"]),
        ("/sse", &["https://mcp.example.com/sse", "https://mcp.example.com/sse/message"], &[MCP]),
    ];
    for (suffix, good, bad) in cases {
        let named = json_of(&w.get(&format!("/.well-known/oauth-protected-resource{suffix}")))["resource"]
            .as_str()
            .unwrap()
            .to_owned();
        let (code, pkce) = w.code_for(&c, "alice", &[("resource", &named)]);
        let t = json_of(&w.exchange(&c, &code, &pkce));
        assert_eq!(t["resource"], named.as_str(), "{suffix}");
        let token = t["access_token"].as_str().unwrap();
        for url in good {
            assert!(w.bearer_at(Some(token), url).is_ok(), "token for {named} refused at {url}");
        }
        for url in bad {
            assert!(w.bearer_at(Some(token), url).is_err(), "token for {named} accepted at {url}");
        }
    }
}

#[test]
fn protected_resource_metadata_bare_and_path_aware() {
    let w = World::new();
    for (path, resource) in [
        ("/.well-known/oauth-protected-resource", ORIGIN),
        ("/.well-known/oauth-protected-resource/", ORIGIN),
        ("/.well-known/oauth-protected-resource/mcp", MCP),
        ("/.well-known/oauth-protected-resource/sse", "https://mcp.example.com/sse"),
    ] {
        let res = w.get(path);
        assert_eq!(res.status(), 200, "{path}");
        let m = json_of(&res);
        assert_eq!(m["resource"], resource, "{path}");
        assert_eq!(m["authorization_servers"], json!([ORIGIN]));
        assert_eq!(m["bearer_methods_supported"], json!(["header"]));
        assert_eq!(
            m["scopes_supported"],
            json!(["todo_api:read", "todo_api:write"]),
            "offline_access is for the AS only"
        );
        assert_eq!(m["resource_name"], "PingOne Todo MCP server");
    }
    for path in ["/.well-known/oauth-protected-resource/mcp-other", "/.well-known/oauth-protected-resource/other"] {
        assert_error(&w.get(path), 404, "not_found");
    }
    assert!(!is_endpoint(&Config::default(), "/.well-known/oauth-protected-resourcex"));
    assert!(is_endpoint(&Config::default(), "/.well-known/oauth-protected-resource/mcp"));
    for p in ["/token", "/register", "/revoke", "/.well-known/oauth-authorization-server"] {
        assert!(is_endpoint(&Config::default(), p), "{p}");
    }
    for p in ["/authorize", "/mcp", "/tokens", "/token/x", "/"] {
        assert!(!is_endpoint(&Config::default(), p), "{p}");
    }
}

#[test]
fn cors_preflight_and_headers() {
    let w = World::new();
    for path in [
        "/token",
        "/register",
        "/revoke",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let req = Request::options(format!("{ORIGIN}{path}"))
            .header("origin", "https://inspector.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type, mcp-protocol-version")
            .body(Vec::new())
            .unwrap();
        let res = w.send(req);
        assert_eq!(res.status(), 204, "{path}");
        assert_eq!(header(&res, "access-control-allow-origin"), Some("https://inspector.example"));
        let allow = header(&res, "access-control-allow-headers").unwrap().to_ascii_lowercase();
        for h in ["authorization", "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id"] {
            assert!(allow.contains(h), "{h} in {allow}");
        }
        assert!(header(&res, "access-control-allow-methods").unwrap().contains("POST"));
        assert!(header(&res, "access-control-allow-credentials").is_none());
    }
    // Actual responses (errors included) carry the origin and the exposed headers.
    let req = Request::post(format!("{ORIGIN}/token"))
        .header("origin", "https://inspector.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"grant_type=authorization_code".to_vec())
        .unwrap();
    let res = w.send(req);
    assert_eq!(res.status(), 401);
    assert_eq!(header(&res, "access-control-allow-origin"), Some("https://inspector.example"));
    let expose = header(&res, "access-control-expose-headers").unwrap().to_ascii_lowercase();
    assert!(expose.contains("www-authenticate") && expose.contains("mcp-session-id"));
    // No Origin, no CORS headers.
    let res = w.get("/.well-known/oauth-authorization-server");
    assert!(header(&res, "access-control-allow-origin").is_none());
}

#[test]
fn grants_are_listed_without_secrets() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let list = block_on(w.p().list_user_grants("alice")).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].client_id, c.id);
    assert_eq!(list[0].metadata, json!({"label": "alice"}));
    let dump = serde_json::to_string(&list).unwrap();
    assert!(!dump.contains("encrypted") && !dump.contains("refreshToken") && !dump.contains(s(&t["refresh_token"])));
    assert!(block_on(w.p().list_user_grants("bob")).unwrap().is_empty());
    block_on(w.p().revoke_grant("alice", &list[0].id)).unwrap();
    // What is left: the client and the grant's end marker (a time, no secret).
    let ended = format!("grant_ended:alice:{}", list[0].id);
    assert!(w.store.keys().iter().all(|k| k.starts_with("client:") || *k == ended), "{:?}", w.store.keys());
    assert_eq!(w.store.raw(&ended).as_deref(), Some(NOW.to_string().as_str()));
}

#[test]
fn purge_removes_what_kv_expiry_missed_and_nothing_else() {
    let w = World::new();
    let c = w.public_client();
    let live = w.tokens(&c, "alice");
    let other = w.public_client();
    let ended = w.tokens(&other, "bob");
    let (pending_code, _) = w.code_for(&w.public_client(), "carol", &[]);
    // Simulate KV keeping records past their expiry: rewrite them without TTL.
    for k in w.store.keys() {
        let raw = w.store.raw(&k).unwrap();
        block_on(crate::store::KvStore::put(&*w.store, &k, &raw, None)).unwrap();
    }
    assert_eq!(block_on(w.p().purge_expired()).unwrap(), 0, "nothing is due yet");
    // bob's grant ends; carol's code was never exchanged.
    let bob_key = format!("grant:bob:{}", s(&ended["access_token"]).split(':').nth(1).unwrap());
    let mut g: Value = serde_json::from_str(&w.store.raw(&bob_key).unwrap()).unwrap();
    g["expiresAt"] = json!(NOW + DAY);
    block_on(crate::store::KvStore::put(&*w.store, &bob_key, &g.to_string(), None)).unwrap();
    w.advance(DAY);
    assert_eq!(block_on(w.p().purge_expired()).unwrap(), 2);
    assert!(w.grant_of(s(&ended["access_token"])).is_none());
    assert!(w.keys("token:bob:").is_empty(), "the grant's tokens go with it");
    assert!(w.grant_of(&pending_code).is_none());
    assert!(w.grant_of(s(&live["access_token"])).is_some());
    assert!(!w.keys("token:alice:").is_empty());
    // Unreadable records are left alone.
    block_on(crate::store::KvStore::put(&*w.store, "grant:x:y", "{broken", None)).unwrap();
    assert_eq!(block_on(w.p().purge_expired()).unwrap(), 0);
    assert!(w.store.raw("grant:x:y").is_some());
}

#[test]
fn a_grant_that_runs_out_is_still_there_for_the_purge_to_end() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let grant = w.grant_of(s(&t["refresh_token"])).unwrap();
    let ends = grant["expiresAt"].as_u64().unwrap();
    w.advance(ends - NOW);
    assert_error(&w.refresh(&c, s(&t["refresh_token"]), &[]), 400, "invalid_grant");
    // The daily purge runs up to a day later: the record is still in KV then, and is ended.
    w.advance(DAY);
    assert!(w.grant_of(s(&t["refresh_token"])).is_some());
    assert_eq!(block_on(w.p().purge_expired()).unwrap(), 1);
    assert!(w.grant_of(s(&t["refresh_token"])).is_none());
}

#[test]
fn no_kv_expiry_under_sixty_seconds_is_ever_requested() {
    // Short lifetimes everywhere, and a refresh right at the edge of the grant's life.
    let w = World::with_config(Config {
        access_token_ttl: 60,
        refresh_token_ttl: 120,
        client_ttl: 3600,
        ..Config::default()
    });
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    w.advance(59);
    let t2 = json_of(&w.refresh(&c, s(&t["refresh_token"]), &[]));
    assert_eq!(t2["expires_in"], 60);
    w.advance(2);
    assert_error(&w.refresh(&c, s(&t2["refresh_token"]), &[]), 400, "invalid_grant");
    let conf = w.confidential("client_secret_basic");
    let req = w.parse(&w.authorize_url(&conf, None, &[])).unwrap();
    let code = query_of(&w.complete(req, "bob", json!({})).unwrap())["code"].clone();
    let t3 = json_of(
        &w.token(&conf, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", WEB_REDIRECT)]),
    );
    w.form_as("/revoke", &conf, &[("token", s(&t3["access_token"]))]);
    block_on(w.p().purge_expired()).unwrap();
    assert_ttls_ok(&w);
    assert!(w.store.ttls_requested.borrow().len() >= 8);
}

#[test]
fn config_from_variables() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    };
    let c = Config::from_lookup(vars(&[])).unwrap();
    assert_eq!((c.access_token_ttl, c.refresh_token_ttl, c.client_ttl, c.code_ttl), (3600, 30 * DAY, 90 * DAY, 600));
    let c = Config::from_lookup(vars(&[
        ("OAUTH_ACCESS_TOKEN_TTL", "120"),
        ("OAUTH_REFRESH_TOKEN_TTL", "0"),
        ("MCP_SCOPES", "a b"),
    ]))
    .unwrap();
    assert_eq!((c.access_token_ttl, c.refresh_token_ttl), (120, 0));
    assert_eq!(c.scopes_supported, vec!["a", "b"]);
    for bad in [
        &[("OAUTH_ACCESS_TOKEN_TTL", "59")][..],
        &[("OAUTH_ACCESS_TOKEN_TTL", "x")][..],
        &[("OAUTH_REFRESH_TOKEN_TTL", "100")][..],
        &[("OAUTH_CLIENT_TTL", "10")][..],
        &[("MCP_SCOPES", "  ")][..],
        &[("MCP_SCOPES", "a \"b\"")][..],
    ] {
        let err = Config::from_lookup(vars(bad)).unwrap_err();
        assert!(!err.0.contains("\"b\""), "never echoes the value");
    }
}
