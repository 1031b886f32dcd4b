//! Authorization requests (`parse_auth_request`) and their completion.

use super::*;

fn local_err(r: Result<AuthRequest, AuthorizeError>) -> (u16, String, String) {
    match r {
        Err(AuthorizeError { status, error, description, back: None, .. }) => (status, error, description),
        other => panic!("expected a local error without a way back, got {other:?}"),
    }
}

/// An error found after the client and its redirect URI checked out: shown
/// locally (never a redirect), naming the client, with a link back to
/// `redirect` carrying the error, `state` and `iss`. Returns the error and
/// its description.
fn shown_with_link_back(r: Result<AuthRequest, AuthorizeError>, redirect: &str) -> (String, String) {
    match r {
        Err(e @ AuthorizeError { back: Some(_), .. }) => {
            let AuthorizeError { status, ref error, ref description, ref client_name, .. } = e;
            let (error, description) = (error.clone(), description.clone());
            let url = e.back_url().expect("a URL");
            let back = e.back.as_ref().unwrap();
            assert_eq!((&back.error, &back.description, back.iss.as_str()), (&error, &description, ORIGIN));
            assert_eq!(back.state.as_deref(), Some("st-1"));
            assert_eq!(status, 400);
            assert_eq!(client_name.as_deref(), Some("Test client"));
            assert!(url.starts_with(&format!("{redirect}?")), "{url}");
            let q = query_of(&url);
            assert_eq!(q.get("state").map(String::as_str), Some("st-1"), "{url}");
            assert_eq!(q.get("iss").map(String::as_str), Some(ORIGIN), "{url}");
            assert!(!q.contains_key("code"));
            assert_eq!((&q["error"], &q["error_description"]), (&error, &description));
            (error, description)
        }
        other => panic!("expected a local error with a link back, got {other:?}"),
    }
}

fn url_with(pairs: &[(&str, &str)]) -> Url {
    let mut url = Url::parse(&format!("{ORIGIN}/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url
}

#[test]
fn a_good_request_is_parsed_and_defaults_to_the_canonical_resource() {
    let w = World::new();
    let c = w.public_client();
    let pkce = Pkce::new();
    let req = w.parse(&w.authorize_url(&c, Some(&pkce), &[("scope", "todo_api:read")])).unwrap();
    assert_eq!(req.client_id, c.id);
    assert_eq!(req.redirect_uri, REDIRECT);
    assert_eq!(req.state, "st-1");
    assert_eq!(req.scope, vec!["todo_api:read"]);
    assert_eq!(req.code_challenge.as_deref(), Some(pkce.challenge.as_str()));
    assert_eq!(req.resource, vec![MCP.to_string()], "omitted resource defaults to <origin>/mcp");
    // The canonical resource itself (what spec-following clients send since 2025-06-18).
    let req = w.parse(&w.authorize_url(&c, Some(&pkce), &[("resource", MCP)])).unwrap();
    assert_eq!(req.resource, vec![MCP.to_string()]);
    // Below it, and the legacy SSE endpoint, on path boundaries.
    for ok in ["https://mcp.example.com/mcp/sub", "https://mcp.example.com/sse", "https://MCP.example.com:443/mcp"] {
        assert!(w.parse(&w.authorize_url(&c, Some(&pkce), &[("resource", ok)])).is_ok(), "{ok}");
    }
}

#[test]
fn unknown_client_or_bad_redirect_is_shown_locally_never_shown_with_link_back() {
    let w = World::new();
    let c = w.public_client();
    let pkce = Pkce::new();
    let (status, error, description) = local_err(w.parse(&url_with(&[
        ("response_type", "code"),
        ("client_id", "no-such-client"),
        ("redirect_uri", REDIRECT),
        ("state", "st-1"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ])));
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    assert!(description.contains("Invalid client_id"), "{description}");
    // Missing client_id.
    local_err(w.parse(&url_with(&[("response_type", "code"), ("redirect_uri", REDIRECT)])));
    for bad in [
        "https://evil.example.com/callback",
        "http://127.0.0.1:33418/callback/x",
        "http://127.0.0.1:33418/callback?x=1",
        "http://localhost:33418/callback",
        "http://evil@127.0.0.1:33418/callback",
        "http://127.0.0.1:33418/callback#f",
        "javascript:alert(1)",
    ] {
        let mut c2 = c.clone();
        c2.redirect = bad.into();
        let (_, _, description) = local_err(w.parse(&w.authorize_url(&c2, Some(&pkce), &[])));
        assert!(description.contains("Invalid redirect URI"), "{bad}: {description}");
    }
    // Even when everything else is wrong too, the bad redirect wins: no redirect at all.
    let mut c2 = c.clone();
    c2.redirect = "https://evil.example.com/cb".into();
    local_err(w.parse(&w.authorize_url(
        &c2,
        None,
        &[("response_type", "token"), ("resource", "https://evil.example.com/")],
    )));
    // A repeated parameter is refused before anything else (and not redirected).
    let mut url = w.authorize_url(&c, Some(&pkce), &[]);
    url.query_pairs_mut().append_pair("state", "again");
    local_err(w.parse(&url));
}

#[test]
fn loopback_redirects_may_use_any_port() {
    let w = World::new();
    let c = w.public_client();
    let mut c2 = c.clone();
    c2.redirect = "http://127.0.0.1:50123/callback".into();
    let req = w.parse(&w.authorize_url(&c2, Some(&Pkce::new()), &[])).unwrap();
    assert_eq!(req.redirect_uri, "http://127.0.0.1:50123/callback");
    // Non-loopback redirects match exactly only.
    let web = w.confidential("client_secret_basic");
    let mut w2 = web.clone();
    w2.redirect = "https://app.example.com:8443/oauth/callback".into();
    local_err(w.parse(&w.authorize_url(&w2, None, &[])));
}

#[test]
fn omitted_redirect_uri_is_the_single_registered_one() {
    let w = World::new();
    let c = w.public_client();
    let pkce = Pkce::new();
    let url = url_with(&[
        ("response_type", "code"),
        ("client_id", &c.id),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    assert_eq!(w.parse(&url).unwrap().redirect_uri, REDIRECT);
    // With two registered, it must be named.
    let two = w.client_with("none", REDIRECT, json!({"redirect_uris": [REDIRECT, "https://app.example.com/cb"]}));
    let url = url_with(&[
        ("response_type", "code"),
        ("client_id", &two.id),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    local_err(w.parse(&url));
}

#[test]
fn later_errors_are_redirected_with_error_state_and_iss() {
    let w = World::new();
    let c = w.public_client();
    let pkce = Pkce::new();
    let mut url = w.authorize_url(&c, Some(&pkce), &[]);
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().filter(|(k, _)| k != "response_type").collect();
    url.query_pairs_mut().clear().extend_pairs(&pairs);
    assert_eq!(shown_with_link_back(w.parse(&url), REDIRECT).0, "invalid_request", "missing response_type");

    let mut url = w.authorize_url(&c, Some(&pkce), &[]);
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| if k == "response_type" { (k, "token".into()) } else { (k, v) })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(&pairs);
    assert_eq!(shown_with_link_back(w.parse(&url), REDIRECT).0, "unsupported_response_type");

    let long_state = "s".repeat(3000);
    match w.parse(
        &w.authorize_url(&c, Some(&pkce), &[])
            .as_str()
            .replace("state=st-1", &format!("state={long_state}"))
            .parse()
            .unwrap(),
    ) {
        Err(e @ AuthorizeError { back: Some(_), .. }) => {
            assert_eq!(e.back.as_ref().unwrap().state, None, "the over-long state is dropped");
            assert_eq!(e.reason.to_string(), "authorize.state_too_long");
            let url = e.back_url().unwrap();
            assert_eq!(query_of(&url)["error"], "invalid_request");
            assert!(!url.contains(&long_state), "the over-long state is not echoed");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pkce_rules() {
    let w = World::new();
    let public = w.public_client();
    let confidential = w.confidential("client_secret_basic");
    let pkce = Pkce::new();
    // Public clients must use PKCE.
    let (error, description) = shown_with_link_back(w.parse(&w.authorize_url(&public, None, &[])), REDIRECT);
    assert_eq!(error, "invalid_request");
    assert!(description.contains("PKCE"), "{description}");
    let with_method = |c: &Client, method: Option<&str>| {
        let mut url = w.authorize_url(c, None, &[("code_challenge", &pkce.challenge)]);
        if let Some(m) = method {
            url.query_pairs_mut().append_pair("code_challenge_method", m);
        }
        w.parse(&url)
    };
    for c in [&public, &confidential] {
        // plain, and an omitted method (which means plain), are refused.
        let (error, description) = shown_with_link_back(with_method(c, Some("plain")), &c.redirect);
        assert_eq!(error, "invalid_request");
        assert!(description.contains("plain PKCE method is not allowed"), "{description}");
        let (_, description) = shown_with_link_back(with_method(c, None), &c.redirect);
        assert!(description.contains("plain PKCE method is not allowed"), "{description}");
        // Unknown methods are never treated as plain.
        for m in ["S512", "s256", "RS256", ""] {
            let (error, description) = shown_with_link_back(with_method(c, Some(m)), &c.redirect);
            assert_eq!(error, "invalid_request");
            assert!(description.contains("Unsupported PKCE code_challenge_method"), "{m}: {description}");
        }
        // A method without a challenge.
        let url = w.authorize_url(c, None, &[("code_challenge_method", "S256")]);
        assert_eq!(shown_with_link_back(w.parse(&url), &c.redirect).0, "invalid_request");
        // A malformed challenge.
        let url = w.authorize_url(c, None, &[("code_challenge", "short"), ("code_challenge_method", "S256")]);
        assert_eq!(shown_with_link_back(w.parse(&url), &c.redirect).0, "invalid_request");
        assert!(w.parse(&w.authorize_url(c, Some(&pkce), &[])).is_ok());
    }
    // A confidential client may go without PKCE (it authenticates at the token endpoint).
    assert!(w.parse(&w.authorize_url(&confidential, None, &[])).is_ok());
}

#[test]
fn resource_must_name_this_servers_mcp_endpoint() {
    let w = World::new();
    let c = w.public_client();
    let pkce = Pkce::new();
    for bad in [
        "https://mcp.example.com/mcp-other",
        "https://mcp.example.com/mcpx",
        "https://mcp.example.com/other",
        "https://mcp.example.com/mcp#frag",
        "https://mcp.example.com/mcp#",
        "https://mcp.example.com/mcp?x=1#",
        "https://mcp.example.com/other?x=1",
        "https://evil.example.com/mcp",
        "http://mcp.example.com/mcp",
        "https://mcp.example.com:8443/mcp",
        "urn:example:mcp",
        "/mcp",
        "",
    ] {
        let (error, _) =
            shown_with_link_back(w.parse(&w.authorize_url(&c, Some(&pkce), &[("resource", bad)])), REDIRECT);
        assert_eq!(error, "invalid_target", "{bad}");
    }
    // Every one of several must be good.
    let url = w.authorize_url(&c, Some(&pkce), &[("resource", MCP), ("resource", "https://evil.example.com/mcp")]);
    assert_eq!(shown_with_link_back(w.parse(&url), REDIRECT).0, "invalid_target");
    // Extra query parameters are ignored (WOP 1.2.3; tests/resources.rs).
    let url = w.authorize_url(&c, Some(&pkce), &[("resource", "https://mcp.example.com/mcp?x=1")]);
    assert_eq!(w.parse(&url).unwrap().resource, [MCP]);
}

#[test]
fn scopes_unknown_are_dropped_duplicates_removed_none_means_all() {
    let w = World::new();
    let c = w.public_client();
    let pkce = Pkce::new();
    let scope_of = |s: &str| w.parse(&w.authorize_url(&c, Some(&pkce), &[("scope", s)])).unwrap().scope;
    assert_eq!(scope_of("todo_api:read admin"), vec!["todo_api:read"]);
    assert_eq!(scope_of("todo_api:read todo_api:write todo_api:read"), vec!["todo_api:read", "todo_api:write"]);
    assert_eq!(scope_of("todo_api:write todo_api:write"), vec!["todo_api:write"]);
    let all = vec!["todo_api:read".to_string(), "todo_api:write".to_string()];
    assert_eq!(w.parse(&w.authorize_url(&c, Some(&pkce), &[])).unwrap().scope, all);
    assert_eq!(scope_of("admin"), all);
}

#[test]
fn completing_stores_a_grant_and_redirects_with_code_state_iss() {
    let w = World::new();
    let c = w.public_client();
    let pkce = Pkce::new();
    let req = w.parse(&w.authorize_url(&c, Some(&pkce), &[("scope", "todo_api:read")])).unwrap();
    let to = w.complete(req, "user-1", json!({"upstream": "secret-props"})).unwrap();
    assert!(to.starts_with(&format!("{REDIRECT}?")), "{to}");
    let q = query_of(&to);
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], ORIGIN);
    let code = &q["code"];
    let parts: Vec<&str> = code.split(':').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], "user-1");
    assert_eq!((parts[1].len(), parts[2].len()), (16, 32));

    let key = format!("grant:user-1:{}", parts[1]);
    assert_eq!(w.keys("grant:"), vec![key.clone()]);
    assert_eq!(
        *w.store.ttls_requested.borrow().last().unwrap(),
        600 + crate::grants::ENDED_GRANT_RETENTION_SECS,
        "grant TTL: the code lifetime, then kept for the purge"
    );
    let raw = w.store.raw(&key).unwrap();
    assert!(!raw.contains(code.as_str()) && !raw.contains(parts[2]), "the code is stored only hashed");
    assert!(!raw.contains("secret-props"), "props are encrypted");
    let g: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(g["clientId"], c.id);
    assert_eq!(g["userId"], "user-1");
    assert_eq!(g["scope"], json!(["todo_api:read"]));
    assert_eq!(g["metadata"], json!({"label": "user-1"}));
    assert_eq!(g["authCodeId"], crate::crypto::sha256_hex(code));
    assert_eq!(g["codeChallenge"], pkce.challenge);
    assert_eq!(g["codeChallengeMethod"], "S256");
    assert_eq!(g["resource"], MCP);
    assert_eq!(g["redirectUri"], REDIRECT);
    assert_eq!(g["createdAt"], NOW);
    assert!(g.get("expiresAt").is_none());
    // The code dies after ten minutes (see token::expired_code); the purge then ends its grant.
    w.advance(600 + crate::store::MIN_TTL_SECS);
    assert_eq!(block_on(w.p().purge_expired()).unwrap(), 1);
    assert!(w.keys("grant:").is_empty());
}

#[test]
fn no_state_no_state_parameter() {
    let w = World::new();
    let c = w.public_client();
    let pkce = Pkce::new();
    let url = w.authorize_url(&c, Some(&pkce), &[]).as_str().replace("&state=st-1", "").parse().unwrap();
    let req = w.parse(&url).unwrap();
    let to = w.complete(req, "u", json!({})).unwrap();
    let q = query_of(&to);
    assert!(!q.contains_key("state"));
    assert_eq!(q["iss"], ORIGIN);
}

#[test]
fn granted_scope_is_never_more_than_requested() {
    let w = World::new();
    let c = w.public_client();
    let req = w.parse(&w.authorize_url(&c, Some(&Pkce::new()), &[("scope", "todo_api:read")])).unwrap();
    let comp = CompleteAuthorization {
        user_id: "u".into(),
        metadata: json!({}),
        scope: vec!["todo_api:read".into(), "todo_api:write".into(), "admin".into()],
        props: json!({}),
        request: req,
        revoke_existing_grants: false,
    };
    let to = block_on(w.p().complete_authorization(ORIGIN, comp)).unwrap();
    assert_eq!(w.grant_of(&query_of(&to)["code"]).unwrap()["scope"], json!(["todo_api:read"]));
}

#[test]
fn completing_revalidates_and_refuses_bad_user_ids() {
    let w = World::new();
    let c = w.public_client();
    let req = w.parse(&w.authorize_url(&c, Some(&Pkce::new()), &[])).unwrap();
    for bad in ["", "a:b", &"u".repeat(300)] {
        match w.complete(req.clone(), bad, json!({})) {
            Err(AuthorizeError { status: 500, back: None, .. }) => {}
            other => panic!("{bad}: {other:?}"),
        }
    }
    // The client's registration went away meanwhile: nothing is stored.
    let mut gone = req.clone();
    gone.client_id = "deleted".into();
    assert!(matches!(w.complete(gone, "u", json!({})), Err(AuthorizeError { back: None, .. })));
    // A tampered request (redirect) is refused before anything is stored.
    let mut tampered = req;
    tampered.redirect_uri = "https://evil.example.com/cb".into();
    assert!(matches!(w.complete(tampered, "u", json!({})), Err(AuthorizeError { back: None, .. })));
    assert!(w.keys("grant:").is_empty());
}

#[test]
fn exchanging_the_new_code_revokes_the_users_older_grants_for_that_client_only() {
    let w = World::new();
    let c = w.public_client();
    let other = w.public_client();
    let first = w.tokens(&c, "alice");
    let other_tokens = w.tokens(&other, "alice");
    let bobs = w.tokens(&c, "bob");
    let first_access = first["access_token"].as_str().unwrap();
    assert!(w.bearer(first_access).is_ok());
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    // A code nobody exchanged (a sign-in another page started in alice's
    // browser, its code sent where that page cannot use it) ends nothing.
    assert!(w.bearer(first_access).is_ok(), "the working grant outlives an authorization not yet exchanged");
    assert!(w.grant_of(&code).is_some());
    assert_eq!(w.exchange(&c, &code, &pkce).status(), 200);
    // alice's older grant for c (and its access token) is gone now.
    assert!(w.bearer(first_access).is_err());
    assert!(w.grant_of(first["refresh_token"].as_str().unwrap()).is_none());
    assert_eq!(w.refresh(&c, first["refresh_token"].as_str().unwrap(), &[]).status(), 400);
    // Other clients' and other users' grants stay.
    assert!(w.bearer(other_tokens["access_token"].as_str().unwrap()).is_ok());
    assert!(w.bearer(bobs["access_token"].as_str().unwrap()).is_ok());
    assert_eq!(w.keys("grant:alice:").len(), 2);
}

#[test]
fn authorizations_never_exchanged_leave_the_working_grant_alone() {
    let w = World::new();
    let c = w.public_client();
    let live = w.tokens(&c, "alice");
    // A foreign page can send alice's browser through /authorize again and again.
    for _ in 0..3 {
        w.code_for(&c, "alice", &[]);
    }
    assert!(w.bearer(live["access_token"].as_str().unwrap()).is_ok());
    assert_eq!(w.refresh(&c, live["refresh_token"].as_str().unwrap(), &[]).status(), 200);
}

#[test]
fn error_redirect_helper_carries_state_and_iss() {
    let w = World::new();
    let c = w.public_client();
    let req = w.parse(&w.authorize_url(&c, Some(&Pkce::new()), &[])).unwrap();
    let back = w.p().error_redirect(ORIGIN, &req, "access_denied", "The user said no");
    assert_eq!(
        (back.error.as_str(), back.description.as_str(), back.state.as_deref(), back.iss.as_str()),
        ("access_denied", "The user said no", Some("st-1"), ORIGIN)
    );
    assert_eq!(back.redirect_uri, REDIRECT);
    let to = back.to_url();
    let q = query_of(&to);
    assert_eq!((q["error"].as_str(), q["state"].as_str(), q["iss"].as_str()), ("access_denied", "st-1", ORIGIN));
    assert!(to.starts_with(REDIRECT));
}

/// Every way an authorization request is refused names its own check in
/// `reason` (for the logs), while what the person and the client see is the
/// same generic error as before.
#[test]
fn each_refusal_carries_its_own_reason() {
    let w = World::new();
    let c = w.public_client();
    let pkce = Pkce::new();
    let good = |extra: &[(&str, &str)]| w.authorize_url(&c, Some(&pkce), extra);
    let replace = |from: &str, to: &str| -> Url { good(&[]).as_str().replace(from, to).parse().unwrap() };
    let no_pkce = w.authorize_url(&c, None, &[]);
    let cases: Vec<(Url, &str)> = vec![
        (good(&[("state", "again")]), "repeated_parameter"),
        (replace(&format!("client_id={}", c.id), "client_id=nobody"), "client_not_found"),
        (replace("%2Fcallback", "%2Fother"), "redirect_uri_not_registered"),
        (replace("state=st-1", &format!("state={}", "s".repeat(3000))), "state_too_long"),
        (good(&[("resource", "https://elsewhere.example/mcp")]), "resource_refused"),
        (replace("response_type=code", "response_type="), "response_type_missing"),
        (replace("response_type=code", "response_type=token"), "response_type_unsupported"),
        (replace(&format!("code_challenge={}", pkce.challenge), "code_challenge=short"), "pkce_challenge_malformed"),
        (replace("code_challenge_method=S256", "code_challenge_method=plain"), "pkce_plain"),
        (replace("code_challenge_method=S256", "code_challenge_method=S512"), "pkce_method_unsupported"),
        (w.authorize_url(&c, None, &[("code_challenge_method", "S256")]), "pkce_method_without_challenge"),
        (no_pkce, "pkce_required"),
    ];
    let mut seen = std::collections::HashSet::new();
    for (url, check) in cases {
        let e = w.parse(&url).expect_err(check);
        assert_eq!(e.reason, crate::error::Reason::new("authorize", check), "{url}: {e:?}");
        assert!(seen.insert(e.reason), "{check} twice");
        // The reason never reaches the page, the JSON or the way back.
        assert!(!e.description.contains(check), "{check}: {}", e.description);
        assert!(!e.back_url().unwrap_or_default().contains(check));
    }
    // A user id sign-in cannot use, at completion.
    let req = w.parse(&good(&[])).unwrap();
    let e = w.complete(req, "a:b", json!({})).unwrap_err();
    assert_eq!(e.reason.to_string(), "authorize.user_id_unusable");
    // The store failing is the store's reason.
    let down = Down;
    let e = block_on(Provider::new(&down, &w.config, NOW).parse_auth_request(&good(&[]))).unwrap_err();
    assert_eq!((e.status, e.reason), (503, crate::error::Reason::STORAGE_UNAVAILABLE));
}

/// A store that is down.
struct Down;

#[async_trait::async_trait(?Send)]
impl crate::store::KvStore for Down {
    async fn get(&self, _: &str) -> Result<Option<String>, crate::store::StoreError> {
        Err(crate::store::StoreError::Unavailable("down".into()))
    }
    async fn put(&self, _: &str, _: &str, _: Option<u64>) -> Result<(), crate::store::StoreError> {
        Err(crate::store::StoreError::Unavailable("down".into()))
    }
    async fn delete(&self, _: &str) -> Result<(), crate::store::StoreError> {
        Err(crate::store::StoreError::Unavailable("down".into()))
    }
    async fn list(&self, _: &str, _: Option<&str>) -> Result<crate::store::KeyPage, crate::store::StoreError> {
        Err(crate::store::StoreError::Unavailable("down".into()))
    }
}

/// WOP 1.2.1: a registration may list redirect URIs this server never sends a
/// code to beside a usable one; only a request using one is refused, shown
/// locally with the usual words. Private-use schemes are usable by default,
/// and refused when `allow_private_use_schemes` is off.
#[test]
fn listed_but_unusable_redirect_uris_are_refused_only_when_used() {
    const REMOTE_HTTP: &str = "http://app.example.com/callback";
    const CURSOR: &str = "cursor://anysphere.cursor-mcp/oauth/callback";
    for allow_private_use in [true, false] {
        let w = World::with_config(Config { allow_private_use_schemes: allow_private_use, ..Config::default() });
        let c = w.client_with("none", REDIRECT, json!({"redirect_uris": [REDIRECT, REMOTE_HTTP, CURSOR]}));
        let pkce = Pkce::new();
        assert!(w.parse(&w.authorize_url(&c, Some(&pkce), &[])).is_ok());
        let at = |redirect: &str| Client { redirect: redirect.into(), ..c.clone() };
        let (status, error, description) = local_err(w.parse(&w.authorize_url(&at(REMOTE_HTTP), Some(&pkce), &[])));
        assert_eq!((status, error.as_str()), (400, "invalid_request"));
        assert!(description.contains("Invalid redirect URI") && description.contains("loopback"), "{description}");
        let cursor = w.parse(&w.authorize_url(&at(CURSOR), Some(&pkce), &[]));
        if allow_private_use {
            let req = cursor.expect("a private-use scheme is usable by default");
            let to = w.complete(req, "alice", json!({})).unwrap();
            assert!(to.starts_with(&format!("{CURSOR}?code=")), "{to}");
        } else {
            let (_, _, description) = local_err(cursor);
            assert!(
                description.contains("Invalid redirect URI") && description.contains("private-use"),
                "{description}"
            );
            // Listed alone, nothing could ever receive a code: refused at registration.
            let res = w.register(&json!({"client_name": "App", "redirect_uris": [CURSOR]}));
            assert_error(&res, 400, "invalid_redirect_uri");
        }
    }
}
