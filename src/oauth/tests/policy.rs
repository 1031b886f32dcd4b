//! Configuration and registration policy: lifetimes checked when the
//! configuration is built.

use super::*;

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
    use crate::oauth::cimd::fake::FakeFetcher;
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
