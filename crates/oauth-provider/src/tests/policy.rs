//! Configuration and registration policy: lifetimes checked when the
//! configuration is built.

use super::*;
use crate::OAuthError;
use http::StatusCode;

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

fn config_err(pairs: &[(&str, &str)]) -> String {
    Config::from_lookup(vars(pairs)).expect_err("refused").0
}

#[test]
fn lifetimes_under_sixty_seconds_are_refused_naming_the_setting() {
    for (name, value) in [
        ("OAUTH_ACCESS_TOKEN_TTL", "59"),
        ("OAUTH_ACCESS_TOKEN_TTL", "0"),
        ("OAUTH_REFRESH_TOKEN_TTL", "30"),
        ("OAUTH_REFRESH_TOKEN_TTL", "119"),
        ("OAUTH_CLIENT_TTL", "59"),
        ("OAUTH_ACCESS_TOKEN_TTL", "-5"),
        ("OAUTH_ACCESS_TOKEN_TTL", "1e3"),
        ("OAUTH_CLIENT_TTL", "999999999999"),
    ] {
        let err = config_err(&[(name, value)]);
        assert!(err.starts_with(name), "{name}={value}: {err}");
        assert!(!err.contains(&format!(" {value}")), "never echoes the value: {err}");
    }
    // The boundaries themselves are accepted.
    let c = Config::from_lookup(vars(&[("OAUTH_ACCESS_TOKEN_TTL", "60"), ("OAUTH_REFRESH_TOKEN_TTL", "120")])).unwrap();
    assert_eq!((c.access_token_ttl, c.refresh_token_ttl), (60, 120));
}

#[test]
fn refresh_tokens_must_outlive_access_tokens() {
    let err = config_err(&[("OAUTH_ACCESS_TOKEN_TTL", "7200"), ("OAUTH_REFRESH_TOKEN_TTL", "3600")]);
    assert!(err.contains("OAUTH_REFRESH_TOKEN_TTL") && err.contains("OAUTH_ACCESS_TOKEN_TTL"), "{err}");
    // Equal is fine; 0 (no refresh tokens) is fine whatever the access lifetime.
    Config::from_lookup(vars(&[("OAUTH_ACCESS_TOKEN_TTL", "7200"), ("OAUTH_REFRESH_TOKEN_TTL", "7200")])).unwrap();
    let c = Config::from_lookup(vars(&[("OAUTH_ACCESS_TOKEN_TTL", "7200"), ("OAUTH_REFRESH_TOKEN_TTL", "0")])).unwrap();
    assert_eq!(c.refresh_token_ttl, 0);
}

#[test]
fn a_configuration_built_in_code_is_checked_the_same_way() {
    assert_eq!(Config::default().validate(), Ok(()));
    let bad = |f: fn(&mut Config)| {
        let mut c = Config::default();
        f(&mut c);
        c.validate().expect_err("refused").0
    };
    assert!(bad(|c| c.access_token_ttl = 10).starts_with("OAUTH_ACCESS_TOKEN_TTL"));
    assert!(bad(|c| c.refresh_token_ttl = 100).starts_with("OAUTH_REFRESH_TOKEN_TTL"));
    assert!(bad(|c| c.refresh_token_ttl = 1800).starts_with("OAUTH_REFRESH_TOKEN_TTL"));
    assert!(bad(|c| c.code_ttl = 30).contains("code_ttl"));
    assert!(bad(|c| c.scopes_supported.clear()).starts_with("MCP_SCOPES"));
}

#[test]
fn registration_and_public_client_switches_are_read_and_checked() {
    let c = Config::from_lookup(vars(&[])).unwrap();
    assert!(c.dynamic_registration && c.allow_public_clients, "today's behaviour is the default");
    let c = Config::from_lookup(vars(&[
        ("OAUTH_DYNAMIC_REGISTRATION", "false"),
        ("OAUTH_ALLOW_PUBLIC_CLIENTS", " FALSE "),
    ]))
    .unwrap();
    assert!(!c.dynamic_registration && !c.allow_public_clients);
    for name in ["OAUTH_DYNAMIC_REGISTRATION", "OAUTH_ALLOW_PUBLIC_CLIENTS"] {
        let err = config_err(&[(name, "no")]);
        assert_eq!(err, format!("{name} must be true or false"));
    }
}

fn no_dcr() -> World {
    World::with_config(Config { dynamic_registration: false, ..Config::default() })
}

fn no_public() -> World {
    World::with_config(Config { allow_public_clients: false, ..Config::default() })
}

#[test]
fn with_registration_off_register_is_refused_and_not_advertised() {
    let w = no_dcr();
    let m = json_of(&w.get("/.well-known/oauth-authorization-server"));
    assert!(m.get("registration_endpoint").is_none(), "{m}");
    assert_eq!(m["token_endpoint"], format!("{ORIGIN}/token"), "the rest of the document is unchanged");
    let res = w.register(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}));
    assert_error(&res, 403, "access_denied");
    assert!(json_of(&res)["error_description"].as_str().unwrap().contains("registration is disabled"));
    assert!(w.keys("client:").is_empty(), "nothing stored");
    // Any method: the endpoint is off, not just POST.
    assert_error(&w.get("/register"), 403, "access_denied");
    // On (the default) it is advertised.
    let m = json_of(&World::new().get("/.well-known/oauth-authorization-server"));
    assert_eq!(m["registration_endpoint"], format!("{ORIGIN}/register"));
}

#[test]
fn with_public_clients_off_none_is_refused_at_registration_and_not_advertised() {
    let w = no_public();
    let res = w.register(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}));
    assert_error(&res, 400, "invalid_client_metadata");
    assert!(json_of(&res)["error_description"].as_str().unwrap().contains("public client"));
    assert!(w.keys("client:").is_empty());
    let m = json_of(&w.get("/.well-known/oauth-authorization-server"));
    assert_eq!(m["token_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post"]));
    assert_eq!(m["revocation_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post"]));
    // Confidential clients register and work as before.
    let conf = w.confidential("client_secret_basic");
    let t = w.tokens(&conf, "alice");
    assert!(w.bearer(t["access_token"].as_str().unwrap()).is_ok());
    assert_ttls_ok(&w);
}

#[test]
fn a_public_client_registered_before_the_switch_is_refused_everywhere() {
    let w = World::new();
    let public = w.public_client();
    let t = w.tokens(&public, "alice");
    let (code, pkce) = w.code_for(&public, "bob", &[]);
    let w = World { config: Config { allow_public_clients: false, ..Config::default() }, ..w };
    let err = w.parse(&w.authorize_url(&public, Some(&Pkce::new()), &[])).expect_err("refused");
    assert_eq!(err.error, "unauthorized_client");
    assert!(err.back.is_none(), "shown locally, no link back: {err:?}");
    assert_error(&w.exchange(&public, &code, &pkce), 401, "invalid_client");
    assert_error(&w.refresh(&public, t["refresh_token"].as_str().unwrap(), &[]), 401, "invalid_client");
}

#[test]
fn with_public_clients_off_metadata_document_clients_are_refused_without_a_fetch() {
    use crate::cimd::fake::FakeFetcher;
    let url = "https://client.example.com/oauth/client.json";
    let f = FakeFetcher::default();
    f.serve(
        url,
        200,
        None,
        &json!({"client_id": url, "client_name": "Doc", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
            .to_string(),
    );
    let w = no_public();
    let p = w.p().with_metadata_fetcher(&f);
    let m = json_of(&block_on(
        p.handle(&Request::get(format!("{ORIGIN}/.well-known/oauth-authorization-server")).body(Vec::new()).unwrap()),
    ));
    assert!(m.get("client_id_metadata_document_supported").is_none(), "{m}");
    let client = Client { id: url.into(), secret: None, method: "none".into(), redirect: REDIRECT.into() };
    let err = block_on(p.parse_auth_request(&w.authorize_url(&client, Some(&Pkce::new()), &[]))).expect_err("refused");
    assert_eq!(err.error, "unauthorized_client");
    assert!(err.back.is_none());
    let res = block_on(
        p.handle(
            &Request::post(format!("{ORIGIN}/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[("grant_type", "authorization_code"), ("code", "a:b:c"), ("client_id", url)]).into_bytes())
                .unwrap(),
        ),
    );
    assert_error(&res, 401, "invalid_client");
    assert_eq!(f.calls_to(url), 0, "the document is never fetched");
    // Allowed (the default), the same document is a client.
    let w = World::new();
    let p = w.p().with_metadata_fetcher(&f);
    assert!(block_on(p.parse_auth_request(&w.authorize_url(&client, Some(&Pkce::new()), &[]))).is_ok());
}

const ADMIN: &str = "an-admin-token-of-at-least-32-characters";

fn admin_world(dcr: bool) -> World {
    World::with_config(Config {
        dynamic_registration: dcr,
        admin_token: Some(crate::config::Secret::new(ADMIN)),
        ..Config::default()
    })
}

fn admin_post(w: &World, auth: Option<&str>, body: &Value) -> Response<Vec<u8>> {
    let mut h = vec![("content-type", "application/json")];
    if let Some(a) = auth {
        h.push(("authorization", a));
    }
    w.post("/admin/clients", &body.to_string(), &h)
}

#[test]
fn the_admin_token_is_read_checked_and_never_shown() {
    let c = Config::from_lookup(vars(&[("OAUTH_ADMIN_TOKEN", ADMIN)])).unwrap();
    assert_eq!(c.admin_token.as_ref().map(|t| t.expose()), Some(ADMIN));
    assert!(!format!("{c:?}").contains(ADMIN), "Debug output redacts it");
    assert!(Config::from_lookup(vars(&[("OAUTH_ADMIN_TOKEN", "  ")])).unwrap().admin_token.is_none());
    let err = config_err(&[("OAUTH_ADMIN_TOKEN", "short-token")]);
    assert_eq!(err, "OAUTH_ADMIN_TOKEN must be at least 32 characters");
}

#[test]
fn register_client_admin_returns_the_secret_once_and_works_with_registration_off() {
    let w = admin_world(false);
    let (client, secret) = block_on(w.p().register_client_admin(&json!({
        "client_name": "Pre-registered",
        "redirect_uris": [WEB_REDIRECT],
    })))
    .unwrap();
    let secret = secret.expect("a confidential client gets a secret");
    assert_eq!(client.token_endpoint_auth_method, "client_secret_basic");
    assert!(client.auth_method_explicit, "Basic and post are not interchangeable for it");
    let raw = w.store.raw(&format!("client:{}", client.client_id)).unwrap();
    assert!(!raw.contains(&secret), "only the hash is stored");
    assert!(w.store.ttls_requested.borrow().is_empty(), "a pre-registered client does not expire");
    // It signs in and refreshes end to end.
    let c = Client {
        id: client.client_id,
        secret: Some(secret),
        method: "client_secret_basic".into(),
        redirect: WEB_REDIRECT.into(),
    };
    let t = w.tokens(&c, "alice");
    assert!(w.bearer(t["access_token"].as_str().unwrap()).is_ok());
    assert_eq!(w.refresh(&c, t["refresh_token"].as_str().unwrap(), &[]).status(), 200);
    // Bad metadata is refused as /register refuses it.
    let e = block_on(w.p().register_client_admin(&json!({"redirect_uris": ["javascript:alert(1)"]}))).unwrap_err();
    assert_eq!(e.error, "invalid_redirect_uri");
    // Public clients follow the switch.
    let w = World::with_config(Config { allow_public_clients: false, ..Config::default() });
    let e = block_on(
        w.p().register_client_admin(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})),
    )
    .unwrap_err();
    assert_eq!(e.error, "invalid_client_metadata");
}

#[test]
fn the_admin_endpoint_needs_the_token_and_answers_the_secret() {
    let doc = json!({"client_name": "Ops client", "redirect_uris": [WEB_REDIRECT], "token_endpoint_auth_method": "client_secret_post"});
    // Off unless the token is set: no such endpoint.
    let w = World::with_config(Config { dynamic_registration: false, ..Config::default() });
    assert_error(&admin_post(&w, Some(&format!("Bearer {ADMIN}")), &doc), 404, "not_found");
    let w = admin_world(false);
    for auth in [None, Some("Bearer wrong"), Some(&format!("Basic {ADMIN}")[..]), Some(&format!("Bearer {ADMIN}x")[..])]
    {
        let res = admin_post(&w, auth, &doc);
        assert_error(&res, 401, "invalid_token");
        assert_eq!(header(&res, "www-authenticate"), Some("Bearer realm=\"admin\""));
        assert!(!String::from_utf8_lossy(res.body()).contains(ADMIN));
    }
    assert!(w.keys("client:").is_empty(), "nothing created without the token");
    let bearer = format!("Bearer {ADMIN}");
    let mut req = Request::patch(format!("{ORIGIN}/admin/clients")).header("authorization", &bearer);
    req = req.header("origin", "https://evil.example");
    let res = w.send(req.body(Vec::new()).unwrap());
    assert_error(&res, 405, "invalid_request");
    assert!(header(&res, "access-control-allow-origin").is_none(), "no CORS on the admin endpoint");
    assert_error(&admin_post(&w, Some(&bearer), &json!({"redirect_uris": []})), 400, "invalid_redirect_uri");
    assert_error(&w.post("/admin/clients", "{", &[("authorization", &bearer)]), 400, "invalid_request");

    let res = admin_post(&w, Some(&bearer), &doc);
    assert_eq!(res.status(), 201, "{}", String::from_utf8_lossy(res.body()));
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    let body = json_of(&res);
    assert_eq!(body["client_secret_expires_at"], 0, "never expires");
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_post");
    let c = Client {
        id: body["client_id"].as_str().unwrap().into(),
        secret: Some(body["client_secret"].as_str().unwrap().into()),
        method: "client_secret_post".into(),
        redirect: WEB_REDIRECT.into(),
    };
    let t = w.tokens(&c, "alice");
    assert!(w.bearer(t["access_token"].as_str().unwrap()).is_ok());
    // The registration stays closed to everyone else.
    assert_error(&w.register(&doc), 403, "access_denied");
}

/// Accepts clients whose name starts with "Acme"; refuses others, with its
/// own reason when the name is missing. Records what it saw.
struct AcmeOnly(std::cell::RefCell<Vec<Value>>);

#[async_trait::async_trait(?Send)]
impl crate::RegistrationPolicy for AcmeOnly {
    async fn check(&self, metadata: &Value, req: &Request<Vec<u8>>) -> Result<(), OAuthError> {
        assert_eq!(req.uri().path(), "/register");
        self.0.borrow_mut().push(metadata.clone());
        match metadata["client_name"].as_str() {
            Some(n) if n.starts_with("Acme") => Ok(()),
            Some(_) => {
                Err(OAuthError::new(StatusCode::FORBIDDEN, "access_denied", "Client registration is not permitted"))
            }
            None => Err(OAuthError::invalid_client_metadata("client_name is required here")
                .because(crate::Reason::new("acme", "unnamed"))),
        }
    }
}

#[test]
fn a_registration_policy_decides_on_dynamic_registrations_only() {
    let w = World::new();
    let policy = AcmeOnly(Default::default());
    let register = |doc: &Value| {
        let req = Request::post(format!("{ORIGIN}/register"))
            .header("content-type", "application/json")
            .body(doc.to_string().into_bytes())
            .unwrap();
        block_on(w.p().with_registration_policy(&policy).handle(&req))
    };
    let ok = register(&json!({"client_name": "Acme desktop", "redirect_uris": [REDIRECT], "software_id": "x"}));
    assert_eq!(ok.status(), 201);
    assert!(w.store.raw(&format!("client:{}", json_of(&ok)["client_id"].as_str().unwrap())).is_some());
    // The policy sees the document as sent, fields the server ignores included.
    assert_eq!(policy.0.borrow()[0]["software_id"], "x");

    let before = w.store.keys().len();
    let refused = register(&json!({"client_name": "Other", "redirect_uris": [REDIRECT]}));
    assert_eq!(refused.status(), 403);
    assert_eq!(json_of(&refused)["error"], "access_denied");
    assert_eq!(crate::Reason::of(&refused).map(|r| r.to_string()).as_deref(), Some("register.policy_refused"));
    let unnamed = register(&json!({"redirect_uris": [REDIRECT]}));
    assert_eq!(
        (unnamed.status().as_u16(), json_of(&unnamed)["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
    assert_eq!(crate::Reason::of(&unnamed).map(|r| r.to_string()).as_deref(), Some("acme.unnamed"));
    assert_eq!(w.store.keys().len(), before, "nothing stored for a refused registration");

    // The operator's clients are not the policy's business.
    let asked = policy.0.borrow().len();
    let p = w.p().with_registration_policy(&policy);
    assert!(block_on(p.register_client_admin(&json!({"client_name": "Other", "redirect_uris": [REDIRECT]}))).is_ok());
    assert_eq!(policy.0.borrow().len(), asked);
}

fn admin_send(w: &World, method: &str, path_and_query: &str, body: Option<&Value>) -> Response<Vec<u8>> {
    let req = Request::builder()
        .method(method)
        .uri(format!("{ORIGIN}/admin/clients{path_and_query}"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json");
    w.send(req.body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default()).unwrap())
}

/// Client administration through the crate's API and the admin endpoint:
/// list, read, update and delete clients; a user's grants listed, one ended,
/// or all of them to one client.
#[test]
fn clients_and_a_users_grants_are_administered_through_the_api_and_the_endpoint() {
    let w = admin_world(true);
    let a = w.public_client();
    let b = w.confidential("client_secret_basic");
    // List (no secrets), read.
    let page = block_on(w.p().list_clients(None)).unwrap();
    assert_eq!(page.clients.len(), 2);
    assert!(page.cursor.is_none());
    let res = admin_send(&w, "GET", "", None);
    assert_eq!(res.status(), 200);
    let listed = json_of(&res);
    let ids: Vec<&str> =
        listed["clients"].as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&a.id.as_str()) && ids.contains(&b.id.as_str()));
    let text = String::from_utf8_lossy(res.body()).into_owned();
    assert!(
        !text.contains(b.secret.as_deref().unwrap())
            && !text.contains("clientSecret")
            && !text.contains("\"client_secret\"")
    );
    let one = json_of(&admin_send(&w, "GET", &format!("/{}", b.id), None));
    assert_eq!(one["client_id"], b.id.as_str());
    assert_eq!(one["has_client_secret"], true);
    assert_error(&admin_send(&w, "GET", "/nobody", None), 404, "not_found");

    // Update: metadata replaced, id, secret and lifetime kept; public <-> confidential refused.
    let expires = w.store.expires_at(&format!("client:{}", b.id));
    let res = admin_send(
        &w,
        "PUT",
        &format!("/{}", b.id),
        Some(&json!({"client_name": "Renamed", "redirect_uris": [WEB_REDIRECT, "https://app.example.com/second"]})),
    );
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    let updated = block_on(w.p().get_client(&b.id)).unwrap().unwrap();
    assert_eq!(updated.client_name.as_deref(), Some("Renamed"));
    assert_eq!(updated.redirect_uris.len(), 2);
    assert_eq!(updated.token_endpoint_auth_method, "client_secret_basic");
    assert_eq!(w.store.expires_at(&format!("client:{}", b.id)), expires);
    let t = w.tokens(&b, "alice");
    assert!(w.bearer(t["access_token"].as_str().unwrap()).is_ok(), "the secret still works");
    let res = admin_send(
        &w,
        "PUT",
        &format!("/{}", b.id),
        Some(&json!({"redirect_uris": [WEB_REDIRECT], "token_endpoint_auth_method": "none"})),
    );
    assert_error(&res, 400, "invalid_client_metadata");
    assert_error(
        &admin_send(&w, "PUT", &format!("/{}", b.id), Some(&json!({"redirect_uris": ["javascript:x"]}))),
        400,
        "invalid_redirect_uri",
    );
    assert_error(&admin_send(&w, "PUT", "/nobody", Some(&json!({"redirect_uris": [WEB_REDIRECT]}))), 404, "not_found");

    // A user's grants: listed (all, or to one client), one ended, all to one client ended.
    let ta = w.tokens(&a, "alice");
    // A second grant to the same client, kept beside the first (no replacement).
    let (code, pkce) = w.code_for(&a, "alice", &[]);
    let key = format!("grant:alice:{}", code.split(':').nth(1).unwrap());
    let mut rec: Value = serde_json::from_str(&w.store.raw(&key).unwrap()).unwrap();
    rec.as_object_mut().unwrap().remove("replacesOlderGrants");
    block_on(crate::KvStore::put(&*w.store, &key, &rec.to_string(), None)).unwrap();
    let ta2 = json_of(&w.exchange(&a, &code, &pkce));
    w.tokens(&a, "bob");
    let all = json_of(&admin_send(&w, "GET", "/grants?user_id=alice", None));
    assert_eq!(all["grants"].as_array().unwrap().len(), 3, "{all}");
    let to_a = json_of(&admin_send(&w, "GET", &format!("/grants?user_id=alice&client_id={}", a.id), None));
    assert_eq!(to_a["grants"].as_array().unwrap().len(), 2);
    assert!(!to_a.to_string().contains("encryptedProps"), "no secrets or props");
    assert_error(&admin_send(&w, "GET", "/grants", None), 400, "invalid_request");
    let grant_of_b = all["grants"].as_array().unwrap().iter().find(|g| g["client_id"] == b.id.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(admin_send(&w, "DELETE", &format!("/grants/{grant_of_b}?user_id=alice"), None).status(), 204);
    assert!(w.bearer(t["access_token"].as_str().unwrap()).is_err(), "its tokens ended with it");
    assert_error(&admin_send(&w, "DELETE", &format!("/grants/{grant_of_b}?user_id=alice"), None), 404, "not_found");
    let res = admin_send(&w, "DELETE", &format!("/grants?user_id=alice&client_id={}", a.id), None);
    assert_eq!(json_of(&res)["revoked"], 2);
    for t in [&ta, &ta2] {
        assert!(w.bearer(t["access_token"].as_str().unwrap()).is_err());
    }
    assert_eq!(block_on(w.p().list_user_grants("bob")).unwrap().len(), 1, "another user's grant is untouched");
    assert_eq!(block_on(w.p().revoke_client_grants("bob", &a.id)).unwrap(), 1);

    // Delete: the client's token requests get 401 invalid_client (it registers again).
    let tb = w.tokens(&b, "carol");
    assert_eq!(admin_send(&w, "DELETE", &format!("/{}", b.id), None).status(), 204);
    assert!(block_on(w.p().get_client(&b.id)).unwrap().is_none());
    assert_error(&w.refresh(&b, tb["refresh_token"].as_str().unwrap(), &[]), 401, "invalid_client");
    assert_error(&admin_send(&w, "DELETE", &format!("/{}", b.id), None), 404, "not_found");
    // Every sub-path needs the token too.
    let res = w.send(Request::get(format!("{ORIGIN}/admin/clients/{}", a.id)).body(Vec::new()).unwrap());
    assert_error(&res, 401, "invalid_token");
    assert!(crate::is_endpoint(&w.config, "/admin/clients/x/y") && !crate::is_endpoint(&w.config, "/admin/clientsx"));
}

#[test]
fn scopes_given_twice_in_code_are_listed_once() {
    use crate::resource::ProtectedResource;
    let mut config = Config {
        scopes_supported: vec!["todo_api:read".into(), "todo_api:write".into(), "todo_api:read".into()],
        resources: vec![ProtectedResource::new("/mcp").with_alias("/sse")],
        ..Config::default()
    };
    config.resources[0].required_scopes = vec!["todo_api:read".into(), "todo_api:read".into(), "todo_api:write".into()];
    config.validate().unwrap();
    assert_eq!(config.scopes_supported, ["todo_api:read", "todo_api:write"]);
    assert_eq!(config.resources[0].required_scopes, ["todo_api:read", "todo_api:write"]);
    // The builder keeps each scope once too.
    let r = ProtectedResource::new("/x").with_required_scopes(["a", "b", "a"]);
    assert_eq!(r.required_scopes, ["a", "b"]);
    let w = World::with_config(config);
    let prm = json_of(&w.get("/.well-known/oauth-protected-resource/mcp"));
    assert_eq!(prm["scopes_supported"], json!(["todo_api:read", "todo_api:write"]));
    let asm = json_of(&w.get("/.well-known/oauth-authorization-server"));
    assert_eq!(asm["scopes_supported"], json!(["todo_api:read", "todo_api:write", "offline_access"]));
    let req = Request::post(MCP).body(Vec::new()).unwrap();
    let res = block_on(w.p().authenticate_request(&req)).unwrap_err();
    let www = header(&res, "www-authenticate").unwrap();
    assert!(www.ends_with("scope=\"todo_api:read todo_api:write\""), "{www}");
}
