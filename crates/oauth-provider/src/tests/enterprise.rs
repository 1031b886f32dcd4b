//! Enterprise-Managed Authorization: the jwt-bearer grant redeeming ID-JAGs.

use super::client_assertion::{jws, Key};
use super::*;
use crate::enterprise::{EnterpriseAssertion, EnterpriseGrant, EnterpriseIdp, ID_JAG_TYP, JWT_BEARER_GRANT};
use crate::error::{OAuthError, Reason};
use async_trait::async_trait;

const IDP: &str = "https://idp.example.org";

/// Maps the IdP's user to `ema-{sub}` with the claims as props.
struct Mapping;

#[async_trait(?Send)]
impl GrantHooks for Mapping {
    async fn enterprise_grant(&self, a: EnterpriseAssertion<'_>) -> Result<EnterpriseGrant, OAuthError> {
        Ok(EnterpriseGrant {
            user_id: format!("ema-{}", a.subject),
            props: json!({"issuer": a.issuer, "sub": a.subject, "email": a.claims.get("email")}),
            metadata: json!({"enterprise": true}),
            access_token_ttl: None,
        })
    }
}

struct Ema {
    w: World,
    key: Key,
    client: Client,
}

fn setup(hooks: bool) -> Ema {
    let key = Key::ec();
    let mut w = World::new();
    let client = w.confidential("client_secret_basic");
    w.config.enterprise = Some(EnterpriseIdp {
        issuer: IDP.into(),
        jwks_uri: None,
        jwks: Some(json!({"keys": [key.jwk("k1")]})),
        allowed_clients: vec![client.id.clone()],
    });
    w.config.validate().unwrap();
    if hooks {
        w.hooks = Box::new(Mapping);
    }
    Ema { w, key, client }
}

impl Ema {
    fn claims(&self) -> Value {
        let now = self.w.store.now();
        json!({"iss": IDP, "sub": "u-42", "aud": ORIGIN, "client_id": self.client.id, "resource": MCP,
               "scope": "todo_api:read", "iat": now, "exp": now + 120, "jti": random_token(16), "email": "a@example.org"})
    }
    fn jag(&self, edit: impl Fn(&mut Value, &mut Value)) -> String {
        let mut header = json!({"alg": self.key.alg(), "typ": ID_JAG_TYP, "kid": "k1"});
        let mut claims = self.claims();
        edit(&mut header, &mut claims);
        jws(&self.key, &header, &claims)
    }
    fn redeem(&self, jag: &str) -> Response<Vec<u8>> {
        self.w.token(&self.client, &[("grant_type", JWT_BEARER_GRANT), ("assertion", jag)])
    }
}

fn why(res: &Response<Vec<u8>>) -> String {
    Reason::of(res).expect("a reason").to_string()
}

#[test]
fn an_id_jag_is_redeemed_once_for_an_access_token_of_its_resource() {
    let e = setup(true);
    let m = json_of(&e.w.get("/.well-known/oauth-authorization-server"));
    assert_eq!(m["grant_types_supported"], json!(["authorization_code", "refresh_token", JWT_BEARER_GRANT]));
    let jag = e.jag(|_, _| {});
    let res = e.redeem(&jag);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    let t = json_of(&res);
    assert_eq!(t["scope"], "todo_api:read");
    assert_eq!(t["resource"], MCP);
    assert!(t.get("refresh_token").is_none());
    let ctx = e.w.bearer(t["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(ctx.user_id, "ema-u-42");
    assert_eq!(ctx.client_id, e.client.id);
    assert_eq!(ctx.props["email"], "a@example.org");
    // Replayed: refused.
    let again = e.redeem(&jag);
    assert_error(&again, 400, "invalid_grant");
    assert_eq!(why(&again), "enterprise.replayed");
    assert_ttls_ok(&e.w);
}

#[test]
fn each_check_refuses() {
    let e = setup(true);
    let other = Key::ec();
    let cases: Vec<(String, &str)> = vec![
        (e.jag(|h, _| h["typ"] = json!("JWT")), "enterprise.typ_mismatch"),
        (e.jag(|_, c| c["iss"] = json!("https://other-idp.example.org")), "enterprise.issuer_unknown"),
        (e.jag(|_, c| c["aud"] = json!("https://other.example.com")), "enterprise.aud_mismatch"),
        (e.jag(|_, c| c["aud"] = json!([ORIGIN, "https://x.example"])), "enterprise.aud_mismatch"),
        (e.jag(|_, c| c["client_id"] = json!("someone-else")), "enterprise.client_id_mismatch"),
        (e.jag(|_, c| c.as_object_mut().unwrap().remove("sub").map(|_| ()).unwrap()), "enterprise.sub_missing"),
        (e.jag(|_, c| c["cnf"] = json!({"jkt": "x"})), "enterprise.unsupported_claims"),
        (e.jag(|_, c| c["exp"] = json!(NOW - 120)), "enterprise.expired"),
        (e.jag(|_, c| c["exp"] = json!(NOW + 3600)), "enterprise.lifetime"),
        (e.jag(|_, c| c["iat"] = json!(NOW + 600)), "enterprise.iat_future"),
        (e.jag(|_, c| c.as_object_mut().unwrap().remove("jti").map(|_| ()).unwrap()), "enterprise.jti_missing"),
        (e.jag(|_, c| c["scope"] = json!("todo_api:read admin")), ""),
        (
            jws(&other, &json!({"alg": "ES256", "typ": ID_JAG_TYP, "kid": "k1"}), &e.claims()),
            "enterprise.signature_failed",
        ),
        ("not-a-jwt".into(), "enterprise.assertion_malformed"),
    ];
    for (jag, reason) in cases {
        let res = e.redeem(&jag);
        if reason.is_empty() {
            // Unknown scopes in the assertion are dropped, not granted.
            assert_eq!(json_of(&res)["scope"], "todo_api:read");
            continue;
        }
        assert_error(&res, 400, "invalid_grant");
        assert_eq!(why(&res), reason);
    }
    let res = e.redeem(&e.jag(|_, c| c["resource"] = json!("https://evil.example.com/mcp")));
    assert_error(&res, 400, "invalid_target");
    // A wider scope than the assertion's: invalid_scope.
    let res = e.w.token(
        &e.client,
        &[("grant_type", JWT_BEARER_GRANT), ("assertion", &e.jag(|_, _| {})), ("scope", "todo_api:write")],
    );
    assert_error(&res, 400, "invalid_scope");
    // A client not allowed, and a public client.
    let stranger = e.w.confidential("client_secret_post");
    let jag = e.jag(|_, c| c["client_id"] = json!(stranger.id));
    let res = e.w.token(&stranger, &[("grant_type", JWT_BEARER_GRANT), ("assertion", &jag)]);
    assert_error(&res, 400, "unauthorized_client");
}

#[test]
fn off_unless_configured_and_refused_without_a_mapping_hook() {
    let w = World::new();
    let c = w.confidential("client_secret_basic");
    let res = w.token(&c, &[("grant_type", JWT_BEARER_GRANT), ("assertion", "x.y.z")]);
    assert_error(&res, 400, "unsupported_grant_type");
    let e = setup(false);
    let res = e.redeem(&e.jag(|_, _| {}));
    assert_error(&res, 400, "invalid_grant");
    assert_eq!(why(&res), "enterprise.no_mapping");
    // Settings.
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned())
    };
    assert!(Config::from_lookup(env(&[("OAUTH_EMA_CLIENTS", "a")])).is_err());
    assert!(Config::from_lookup(env(&[("OAUTH_EMA_ISSUER", IDP)])).is_err());
    let c = Config::from_lookup(env(&[
        ("OAUTH_EMA_ISSUER", IDP),
        ("OAUTH_EMA_JWKS_URL", "https://idp.example.org/jwks"),
        ("OAUTH_EMA_CLIENTS", "a b"),
    ]))
    .unwrap();
    assert_eq!(c.enterprise.unwrap().allowed_clients, ["a", "b"]);
}

#[test]
fn with_a_single_use_record_a_replay_is_refused_even_where_kv_has_not_seen_the_marker() {
    let mut e = setup(true);
    let record = SharedSingleUse::default();
    e.w.single_use = Some(Box::new(record.clone()));
    let jag = e.jag(|_, _| {});
    let res = e.redeem(&jag);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    // The marker is the record's, not KV's: a location whose KV lags sees nothing there.
    assert!(!e.w.store.keys().iter().any(|k| k.starts_with("ema_jti:")));
    let (key, until) = record.0.borrow()[0].clone();
    assert!(key.starts_with("ema_jti:") && key.len() <= 80, "{key}");
    assert_eq!(until, e.w.store.now() + 120 + crate::enterprise::CLOCK_SKEW_SECS);
    let again = e.redeem(&jag);
    assert_error(&again, 400, "invalid_grant");
    assert_eq!(why(&again), "enterprise.replayed");
}
