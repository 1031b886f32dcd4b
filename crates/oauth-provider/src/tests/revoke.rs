//! Token revocation (RFC 7009).

use super::*;

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn revoke(w: &World, c: &Client, token: &str, hint: Option<&str>) -> Response<Vec<u8>> {
    let mut p = vec![("token", token)];
    if let Some(h) = hint {
        p.push(("token_type_hint", h));
    }
    let res = w.form_as("/revoke", c, &p);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    assert!(res.body().is_empty());
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    res
}

#[test]
fn revoking_an_access_token_keeps_the_grant_and_refresh_token() {
    for hint in [None, Some("access_token"), Some("refresh_token")] {
        let w = World::new();
        let c = w.public_client();
        let t = w.tokens(&c, "alice");
        revoke(&w, &c, s(&t["access_token"]), hint);
        assert!(matches!(w.bearer(s(&t["access_token"])), Err(BearerError::Invalid(..))), "{hint:?}");
        let t2 = json_of(&w.refresh(&c, s(&t["refresh_token"]), &[]));
        assert!(w.bearer(s(&t2["access_token"])).is_ok());
    }
}

#[test]
fn revoking_a_refresh_token_revokes_the_grant_and_every_access_token() {
    for hint in [None, Some("refresh_token"), Some("access_token")] {
        let w = World::new();
        let c = w.public_client();
        let t = w.tokens(&c, "alice");
        let t2 = json_of(&w.refresh(&c, s(&t["refresh_token"]), &[]));
        let keep = w.tokens(&w.public_client(), "alice");
        revoke(&w, &c, s(&t2["refresh_token"]), hint);
        assert!(w.grant_of(s(&t["access_token"])).is_none());
        assert!(w.bearer(s(&t["access_token"])).is_err() && w.bearer(s(&t2["access_token"])).is_err());
        assert_error(&w.refresh(&c, s(&t["refresh_token"]), &[]), 400, "invalid_grant");
        assert_error(&w.refresh(&c, s(&t2["refresh_token"]), &[]), 400, "invalid_grant");
        assert!(w.bearer(s(&keep["access_token"])).is_ok(), "another grant is untouched");
    }
    // The previous refresh token (still valid for one retry) revokes too.
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let t2 = json_of(&w.refresh(&c, s(&t["refresh_token"]), &[]));
    revoke(&w, &c, s(&t["refresh_token"]), None);
    assert!(w.bearer(s(&t2["access_token"])).is_err());
}

#[test]
fn another_clients_token_is_ignored() {
    let w = World::new();
    let c = w.public_client();
    let other = w.public_client();
    let t = w.tokens(&c, "alice");
    for hint in [None, Some("refresh_token")] {
        revoke(&w, &other, s(&t["access_token"]), hint);
        revoke(&w, &other, s(&t["refresh_token"]), hint);
    }
    assert!(w.bearer(s(&t["access_token"])).is_ok());
    assert_eq!(w.refresh(&c, s(&t["refresh_token"]), &[]).status(), 200);
}

#[test]
fn unknown_tokens_are_fine_and_client_auth_is_required() {
    let w = World::new();
    let c = w.confidential("client_secret_basic");
    for junk in ["junk", "a:b:c", "", "x:y:z:w"] {
        if junk.is_empty() {
            assert_error(&w.form_as("/revoke", &c, &[("token", junk)]), 400, "invalid_request");
        } else {
            revoke(&w, &c, junk, Some("whatever"));
        }
    }
    assert_error(&w.form_as("/revoke", &c, &[]), 400, "invalid_request");
    let res = w.post_form("/revoke", &[("token", "a:b:c"), ("client_id", &c.id)], &[]);
    assert_error(&res, 401, "invalid_client");
    let res = w.post_form("/revoke", &[("token", "a:b:c")], &[("authorization", &basic(&c.id, "wrong"))]);
    assert_error(&res, 401, "invalid_client");
    assert_eq!(header(&res, "www-authenticate"), Some("Basic realm=\"OAuth\""));
    let res = w.post("/revoke", "token=a:b:c", &[("content-type", "application/json")]);
    assert_error(&res, 400, "invalid_request");
    let res = w.send(Request::get(format!("{ORIGIN}/revoke")).body(Vec::new()).unwrap());
    assert_error(&res, 405, "invalid_request");
}

#[test]
fn a_failed_client_authentication_revokes_nothing() {
    let w = World::new();
    let c = w.confidential("client_secret_post");
    let req = w.parse(&w.authorize_url(&c, None, &[])).unwrap();
    let code = query_of(&w.complete(req, "alice", json!({})).unwrap())["code"].clone();
    let t =
        json_of(&w.token(&c, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", WEB_REDIRECT)]));
    let res = w.post_form(
        "/revoke",
        &[("token", s(&t["refresh_token"])), ("client_id", &c.id), ("client_secret", "wrong")],
        &[],
    );
    assert_error(&res, 401, "invalid_client");
    // Presented the wrong way (Basic for a post client): refused before revoking.
    let res = w.post_form(
        "/revoke",
        &[("token", s(&t["refresh_token"]))],
        &[("authorization", &basic(&c.id, c.secret.as_deref().unwrap()))],
    );
    assert_error(&res, 401, "invalid_client");
    assert!(w.bearer(s(&t["access_token"])).is_ok());
}

#[test]
fn the_token_endpoint_also_revokes_when_given_only_a_token() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let res = w.token(&c, &[("token", s(&t["access_token"]))]);
    assert_eq!(res.status(), 200);
    assert!(w.bearer(s(&t["access_token"])).is_err());
}
