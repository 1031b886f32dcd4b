//! Client authentication and the form body rules of the token endpoint.

use super::*;
use crate::records::ClientInfo;

/// Code exchange parameters for a confidential client without PKCE.
fn code_params(w: &World, c: &Client) -> Vec<(&'static str, String)> {
    let req = w.parse(&w.authorize_url(c, None, &[])).unwrap();
    let code = query_of(&w.complete(req, "alice", json!({})).unwrap())["code"].clone();
    vec![("grant_type", "authorization_code".to_owned()), ("code", code), ("redirect_uri", c.redirect.clone())]
}

fn refs<'a>(v: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn assert_invalid_client(res: &Response<Vec<u8>>, basic_challenge: bool) {
    assert_error(res, 401, "invalid_client");
    assert_eq!(json_of(res)["error_description"], "Client authentication failed");
    let www = header(res, "www-authenticate");
    if basic_challenge {
        assert_eq!(www, Some("Basic realm=\"OAuth\""));
    } else {
        assert_eq!(www, None);
    }
}

/// Marks a stored client's auth method as not explicit (as a default registration is).
fn make_implicit(w: &World, id: &str) {
    let key = format!("client:{id}");
    let mut c: ClientInfo = serde_json::from_str(&w.store.raw(&key).unwrap()).unwrap();
    c.auth_method_explicit = false;
    block_on(crate::store::KvStore::put(&*w.store, &key, &serde_json::to_string(&c).unwrap(), None)).unwrap();
}

#[test]
fn basic_and_post_each_work_as_registered() {
    let w = World::new();
    for method in ["client_secret_basic", "client_secret_post"] {
        let c = w.confidential(method);
        let params = code_params(&w, &c);
        let res = w.token(&c, &refs(&params));
        assert_eq!(res.status(), 200, "{method}: {}", String::from_utf8_lossy(res.body()));
    }
}

#[test]
fn explicit_method_must_be_used_exactly() {
    let w = World::new();
    let basic_client = w.confidential("client_secret_basic");
    let post_client = w.confidential("client_secret_post");
    let public = w.public_client();

    // Registered basic, presented post.
    let params = code_params(&w, &basic_client);
    let mut p = refs(&params);
    p.push(("client_id", &basic_client.id));
    let secret = basic_client.secret.clone().unwrap();
    p.push(("client_secret", &secret));
    assert_invalid_client(&w.post_form("/token", &p, &[]), false);
    // Registered basic, presented nothing.
    let mut p = refs(&params);
    p.push(("client_id", &basic_client.id));
    assert_invalid_client(&w.post_form("/token", &p, &[]), false);

    // Registered post, presented basic.
    let params = code_params(&w, &post_client);
    let auth = basic(&post_client.id, post_client.secret.as_deref().unwrap());
    assert_invalid_client(&w.post_form("/token", &refs(&params), &[("authorization", &auth)]), true);

    // Registered none, presented a secret either way.
    let (code, pkce) = w.code_for(&public, "alice", &[]);
    let p = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", &pkce.verifier),
        ("redirect_uri", REDIRECT),
    ];
    let auth = basic(&public.id, "whatever");
    assert_invalid_client(&w.post_form("/token", &p, &[("authorization", &auth)]), true);
    let mut with_secret = p.to_vec();
    with_secret.extend([("client_id", public.id.as_str()), ("client_secret", "whatever")]);
    assert_invalid_client(&w.post_form("/token", &with_secret, &[]), false);
    // None of the failures consumed anything: the codes still work the registered way.
    let mut ok = p.to_vec();
    ok.push(("client_id", &public.id));
    assert_eq!(w.post_form("/token", &ok, &[]).status(), 200);
}

#[test]
fn without_the_explicit_marker_basic_and_post_are_interchangeable() {
    let w = World::new();
    let c = w.confidential("client_secret_basic");
    make_implicit(&w, &c.id);
    let params = code_params(&w, &c);
    let mut p = refs(&params);
    let secret = c.secret.clone().unwrap();
    p.push(("client_id", &c.id));
    p.push(("client_secret", &secret));
    assert_eq!(w.post_form("/token", &p, &[]).status(), 200);
    // Never with none, though.
    let params = code_params(&w, &c);
    let mut p = refs(&params);
    p.push(("client_id", &c.id));
    assert_invalid_client(&w.post_form("/token", &p, &[]), false);
}

#[test]
fn wrong_secret_or_unknown_client() {
    let w = World::new();
    let c = w.confidential("client_secret_basic");
    let params = code_params(&w, &c);
    let auth = basic(&c.id, "wrong-secret");
    assert_invalid_client(&w.post_form("/token", &refs(&params), &[("authorization", &auth)]), true);
    let auth = basic("nobody", c.secret.as_deref().unwrap());
    assert_invalid_client(&w.post_form("/token", &refs(&params), &[("authorization", &auth)]), true);
    let mut p = refs(&params);
    p.extend([("client_id", "nobody")]);
    assert_invalid_client(&w.post_form("/token", &p, &[]), false);
    // No client at all.
    assert_invalid_client(&w.post_form("/token", &refs(&params), &[]), false);
    // The code was not consumed by any of this.
    assert_eq!(w.token(&c, &refs(&params)).status(), 200);
}

#[test]
fn basic_credentials_are_form_url_decoded_and_the_scheme_case_insensitive() {
    let w = World::new();
    let c = w.confidential("client_secret_basic");
    let params = code_params(&w, &c);
    let raw = format!("bAsIc {}", STANDARD.encode(format!("{}:{}", c.id, c.secret.as_deref().unwrap())));
    assert_eq!(w.post_form("/token", &refs(&params), &[("authorization", &raw)]).status(), 200);
    // A client_id in the body that agrees with Basic is fine.
    let params = code_params(&w, &c);
    let mut p = refs(&params);
    p.push(("client_id", &c.id));
    let auth = basic(&c.id, c.secret.as_deref().unwrap());
    assert_eq!(w.post_form("/token", &p, &[("authorization", &auth)]).status(), 200);
    // One that disagrees is not.
    let params = code_params(&w, &c);
    let mut p = refs(&params);
    p.push(("client_id", "someone-else"));
    assert_invalid_client(&w.post_form("/token", &p, &[("authorization", &auth)]), true);
    // An unencoded '&' in the secret must not cut it short.
    let amp = format!("Basic {}", STANDARD.encode(format!("{}:{}&x=y", c.id, c.secret.as_deref().unwrap())));
    assert_invalid_client(&w.post_form("/token", &refs(&params), &[("authorization", &amp)]), true);
}

#[test]
fn malformed_basic_is_401_with_a_basic_challenge() {
    let w = World::new();
    let c = w.confidential("client_secret_basic");
    let params = code_params(&w, &c);
    let no_colon = format!("Basic {}", STANDARD.encode(&c.id));
    let not_utf8 = format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', b'x']));
    for bad in ["Basic", "Basic ", "Basic !!!not-base64!!!", no_colon.as_str(), not_utf8.as_str(), "Basicxyz"] {
        assert_invalid_client(&w.post_form("/token", &refs(&params), &[("authorization", bad)]), true);
    }
    // Another scheme: not client authentication at all.
    assert_invalid_client(&w.post_form("/token", &refs(&params), &[("authorization", "Bearer abc")]), false);
    assert_eq!(w.token(&c, &refs(&params)).status(), 200);
}

#[test]
fn both_methods_at_once_is_a_bad_request() {
    let w = World::new();
    let c = w.confidential("client_secret_basic");
    let params = code_params(&w, &c);
    let mut p = refs(&params);
    let secret = c.secret.clone().unwrap();
    p.push(("client_secret", &secret));
    let auth = basic(&c.id, &secret);
    assert_error(&w.post_form("/token", &p, &[("authorization", &auth)]), 400, "invalid_request");
}

#[test]
fn body_rules_content_type_repeats_encoding() {
    let w = World::new();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    let good = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("code_verifier", &pkce.verifier),
        ("client_id", &c.id),
    ]);
    for ct in [
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        Some("application/x-www-form-urlencoded-evil"),
    ] {
        let mut h = vec![];
        if let Some(ct) = ct {
            h.push(("content-type", ct));
        }
        assert_error(&w.post("/token", &good, &h), 400, "invalid_request");
    }
    let json_body = json!({"grant_type": "authorization_code", "code": code, "client_id": c.id}).to_string();
    assert_error(&w.post("/token", &json_body, &[("content-type", "application/json")]), 400, "invalid_request");
    // Repeated parameters (resource excepted).
    for dup in ["grant_type=authorization_code", "code=x", "client_id=x", "code_verifier=x"] {
        assert_error(
            &w.post("/token", &format!("{good}&{dup}"), &[("content-type", "application/x-www-form-urlencoded")]),
            400,
            "invalid_request",
        );
    }
    // Not UTF-8.
    let mut bytes = good.clone().into_bytes();
    bytes.extend_from_slice(b"&x=\xff\xfe");
    let req = Request::post(format!("{ORIGIN}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(bytes)
        .unwrap();
    assert_error(&w.send(req), 400, "invalid_request");
    // The media type may carry a charset and any case; the code is still good after all the above.
    let res = w.post("/token", &good, &[("content-type", "Application/X-WWW-Form-Urlencoded; charset=UTF-8")]);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
}

#[test]
fn client_auth_comes_before_everything_else() {
    let w = World::new();
    let c = w.confidential("client_secret_post");
    let params = [("grant_type", "made_up"), ("client_id", c.id.as_str()), ("client_secret", "wrong")];
    assert_invalid_client(&w.post_form("/token", &params, &[]), false);
}

/// Every refusal of the token, registration and revocation endpoints (and
/// of client authentication) names its own check in the response's reason,
/// for the logs; none is left unspecified, no two share one.
#[test]
fn each_endpoint_refusal_carries_its_own_reason() {
    use crate::error::Reason;
    let w = World::new();
    let public = w.public_client();
    let basic_client = w.confidential("client_secret_basic");
    let other = w.public_client();
    let secret = basic_client.secret.clone().unwrap();
    let no_refresh = w.client_with("none", REDIRECT, json!({"grant_types": ["authorization_code"]}));
    let mut got: Vec<(String, Response<Vec<u8>>)> = Vec::new();
    let mut check = |expected: &str, res: Response<Vec<u8>>| got.push((expected.to_owned(), res));
    let tok = |pairs: &[(&str, &str)], headers: &[(&str, &str)]| w.post_form("/token", pairs, headers);

    // The request itself.
    check("request.method_not_allowed", w.get("/token"));
    check("request.content_type", w.post("/token", "grant_type=x", &[("content-type", "text/plain")]));
    check("request.repeated_parameter", w.post_form("/token", &[("a", "1"), ("a", "2")], &[]));
    // Client authentication.
    let b = basic(&basic_client.id, &secret);
    check("client_auth.basic_malformed", tok(&[("grant_type", "refresh_token")], &[("authorization", "Basic !!!")]));
    check("client_auth.multiple_methods", tok(&[("client_secret", "x")], &[("authorization", &b)]));
    check("client_auth.client_id_mismatch", tok(&[("client_id", &public.id)], &[("authorization", &b)]));
    check("client_auth.unsupported_scheme", tok(&[], &[("authorization", "Bearer x")]));
    check("client_auth.client_id_missing", tok(&[("grant_type", "refresh_token")], &[]));
    check("client_auth.client_not_found", tok(&[("client_id", "nobody")], &[]));
    check("client_auth.method_mismatch", tok(&[("client_id", &public.id), ("client_secret", "x")], &[]));
    check("client_auth.secret_mismatch", tok(&[], &[("authorization", &basic(&basic_client.id, "wrong"))]));
    // The token endpoint.
    check("token.grant_type_missing", w.token(&public, &[]));
    check("token.grant_type_unsupported", w.token(&public, &[("grant_type", "password")]));
    fn code_grant<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut p = vec![("grant_type", "authorization_code")];
        p.extend_from_slice(extra);
        p
    }
    check("refresh_token.grant_type_not_registered", w.refresh(&no_refresh, "a:b:c", &[]));
    check("authorization_code.code_missing", w.token(&public, &code_grant(&[])));
    check("authorization_code.code_malformed", w.token(&public, &code_grant(&[("code", "x")])));
    check("authorization_code.grant_not_found", w.token(&public, &code_grant(&[("code", "a:b:c")])));
    let (code, pkce) = w.code_for(&public, "alice", &[]);
    let forged = format!("{}:forged", code.rsplit_once(':').unwrap().0);
    check("authorization_code.code_mismatch", w.exchange(&public, &forged, &pkce));
    check("authorization_code.client_mismatch", w.exchange(&other, &code, &pkce));
    let with = |extra: &[(&str, &str)]| {
        let mut p = vec![("code", code.as_str()), ("redirect_uri", REDIRECT), ("code_verifier", &pkce.verifier)];
        for (k, v) in extra {
            p.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                p.push((k, v));
            }
        }
        w.token(&public, &code_grant(&p))
    };
    check("authorization_code.redirect_uri_mismatch", with(&[("redirect_uri", "http://127.0.0.1:1/other")]));
    check("authorization_code.code_verifier_missing", with(&[("code_verifier", "")]));
    check("authorization_code.pkce_mismatch", with(&[("code_verifier", &Pkce::new().verifier)]));
    check("token.scope_not_granted", with(&[("scope", "todo_api:admin")]));
    check("token.resource_not_granted", with(&[("resource", "https://other.example.com/mcp")]));
    assert_eq!(with(&[]).status(), 200);
    check("authorization_code.code_replayed", with(&[]));
    let (late, late_pkce) = w.code_for(&public, "alice", &[]);
    w.advance(w.config.code_ttl);
    check("authorization_code.code_expired", w.exchange(&public, &late, &late_pkce));
    // Refresh.
    let t = w.tokens(&public, "bob");
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |c: &Client, token: &str| w.refresh(c, token, &[]);
    check("refresh_token.refresh_token_missing", w.token(&public, &[("grant_type", "refresh_token")]));
    check("refresh_token.refresh_token_malformed", refresh(&public, "x"));
    check("refresh_token.grant_not_found", refresh(&public, "a:b:c"));
    check("refresh_token.client_mismatch", refresh(&other, &rt));
    check(
        "refresh_token.refresh_token_mismatch",
        refresh(&public, &format!("{}:forged", rt.rsplit_once(':').unwrap().0)),
    );
    // Revocation and registration.
    check("revoke.token_missing", w.form_as("/revoke", &public, &[]));
    check("register.json_malformed", w.post("/register", "{", &[("content-type", "application/json")]));
    let big = "x".repeat(crate::register::MAX_REGISTRATION_BYTES + 1);
    check("register.payload_too_large", w.post("/register", &big, &[("content-type", "application/json")]));
    check("register.metadata_invalid", w.register(&json!({"redirect_uris": [REDIRECT], "client_name": 7})));
    check("register.redirect_uris_missing", w.register(&json!({"redirect_uris": []})));
    check("register.redirect_uri_invalid", w.register(&json!({"redirect_uris": ["javascript:alert(1)"]})));

    let mut closed = World::with_config(Config { dynamic_registration: false, ..Config::default() });
    check("register.disabled", closed.register(&json!({"redirect_uris": [REDIRECT]})));
    closed.config.dynamic_registration = true;
    let earlier_public = closed.public_client();
    closed.config.allow_public_clients = false;
    check(
        "register.public_client_refused",
        closed.register(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})),
    );
    check("client_auth.public_clients_disabled", closed.token(&earlier_public, &[("grant_type", "refresh_token")]));

    let mut seen = std::collections::HashSet::new();
    for (expected, res) in &got {
        assert!(res.status().is_client_error(), "{expected}: {}", res.status());
        let reason = Reason::of(res).unwrap_or_else(|| panic!("{expected}: no reason"));
        assert_eq!(&reason.to_string(), expected, "{}", String::from_utf8_lossy(res.body()));
        assert_ne!(reason, Reason::UNSPECIFIED);
        assert!(seen.insert(reason), "{expected} twice");
        // The reason is not sent (its words may be the description's, as "disabled").
        let sent = format!("{}{:?}", String::from_utf8_lossy(res.body()), res.headers());
        let slug = reason.check.contains('_').then_some(reason.check);
        assert!(
            !sent.contains(expected.as_str()) && !slug.is_some_and(|c| sent.contains(c)),
            "{expected} leaks: {sent}"
        );
    }
}
