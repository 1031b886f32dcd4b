//! The whole sign-in flow natively: a fake authorization server, PingOne
//! faked at the HTTP level with ID tokens signed by a test RSA key, and the
//! in-memory KV store.

use super::authz::fake::FakeAuthServer;
use super::authz::{AuthServer, ClientInfo};
use super::cookies::{self, APPROVED_COOKIE, CSRF_COOKIE, STATE_COOKIE};
use super::discovery::tests::discovery_json;
use super::discovery::OidcCache;
use super::id_token::tests::{claims, jwks_of, key, other_key, sign, CLIENT, ISSUER, NOW};
use super::outbound::fake::FakeHttp;
use super::outbound::OutboundError;
use super::settings::Settings;
use super::Login;
use crate::store::MemoryStore;
use crate::util::crypto::{b64url, sha256, sha256_hex};
use futures::executor::block_on;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use url::Url;

const ORIGIN: &str = "https://mcp.example.com";
const CLIENT_REDIRECT: &str = "http://127.0.0.1:33418/callback";
const COOKIE_KEY: &str = "test-cookie-key-test-cookie-key-123456";

fn settings(state_ttl: &str) -> Settings {
    settings_with(&[("LOGIN_STATE_TTL_SECS", state_ttl)])
}

fn settings_with(extra: &[(&'static str, &str)]) -> Settings {
    let mut vars = BTreeMap::from([
        ("PINGONE_ISSUER", ISSUER.to_owned()),
        ("MCP_SERVER_CLIENT_ID", CLIENT.to_owned()),
        ("MCP_SERVER_CLIENT_SECRET", "upstream-secret".to_owned()),
        ("API_IDENTIFIER", "https://api.example.com".to_owned()),
        ("COOKIE_ENCRYPTION_KEY", COOKIE_KEY.to_owned()),
    ]);
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    Settings::from_lookup(|k| vars.get(k).cloned()).unwrap()
}

/// A browser's cookies for the worker's origin.
#[derive(Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn store(&mut self, res: &http::Response<Vec<u8>>) {
        for v in res.headers().get_all("set-cookie") {
            let line = v.to_str().unwrap();
            let (pair, attrs) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") || value.is_empty() {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}

struct World {
    settings: Settings,
    store: MemoryStore,
    http: FakeHttp,
    auth: FakeAuthServer,
    cache: OidcCache,
}

fn client_info(name: &str) -> ClientInfo {
    ClientInfo {
        client_id: "client-1".into(),
        client_name: Some(name.into()),
        redirect_uris: vec![CLIENT_REDIRECT.into()],
        ..Default::default()
    }
}

impl World {
    fn new() -> Self {
        Self::with_ttl("600")
    }
    fn with_ttl(ttl: &str) -> Self {
        let http = FakeHttp::default();
        http.json(&format!("{ISSUER}/.well-known/openid-configuration"), 200, discovery_json());
        http.json(&format!("{ISSUER}/jwks"), 200, jwks_of(&[key()]));
        http.json(
            &format!("{ISSUER}/userinfo"),
            200,
            json!({"sub": "user-1", "preferred_username": "alice", "email": "alice@example.com"}),
        );
        World {
            settings: settings(ttl),
            store: MemoryStore::new(NOW),
            http,
            auth: FakeAuthServer::with_client(client_info("Test client")),
            cache: OidcCache::default(),
        }
    }

    fn login(&self) -> Login<'_> {
        Login {
            settings: &self.settings,
            store: &self.store,
            auth: &self.auth,
            http: &self.http,
            cache: &self.cache,
            now: self.store.now(),
        }
    }

    fn send(&self, req: http::Request<Vec<u8>>, jar: &mut Jar) -> http::Response<Vec<u8>> {
        let res = block_on(self.login().handle(&req));
        jar.store(&res);
        res
    }

    fn get(&self, url: &str, jar: &mut Jar) -> http::Response<Vec<u8>> {
        let req = http::Request::get(url).header("cookie", jar.header()).body(Vec::new()).unwrap();
        self.send(req, jar)
    }

    fn post(&self, form: &[(&str, &str)], jar: &mut Jar) -> http::Response<Vec<u8>> {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let req = http::Request::post(format!("{ORIGIN}/authorize"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", jar.header())
            .body(body.into_bytes())
            .unwrap();
        self.send(req, jar)
    }

    /// The token endpoint answers with an ID token built from `claims`.
    fn token_answers(&self, id_token: &str) {
        self.http.json(
            &format!("{ISSUER}/token"),
            200,
            json!({
                "access_token": "pingone-access-token", "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": "pingone-refresh-token", "scope": "openid profile todo_api:read",
                "id_token": id_token,
            }),
        );
    }
}

fn authorize_url(state: &str) -> String {
    format!(
        "{ORIGIN}/authorize?response_type=code&client_id=client-1&redirect_uri={}&state={state}\
         &code_challenge=abc&code_challenge_method=S256&scope=todo_api%3Aread&resource={ORIGIN}/mcp",
        urlencode(CLIENT_REDIRECT)
    )
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn body(res: &http::Response<Vec<u8>>) -> String {
    String::from_utf8(res.body().clone()).unwrap()
}

fn location(res: &http::Response<Vec<u8>>) -> Url {
    Url::parse(res.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The hidden fields of the consent form.
fn form_fields(html: &str) -> (String, String) {
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap() + marker.len();
        html[start..].split('"').next().unwrap().to_owned()
    };
    (field("pending"), field("csrf_token"))
}

/// GET /authorize → consent → Approve; returns the redirect to PingOne.
fn approve(w: &World, jar: &mut Jar) -> http::Response<Vec<u8>> {
    let res = w.get(&authorize_url("client-state"), jar);
    assert_eq!(res.status(), 200, "{}", body(&res));
    let (pending, csrf) = form_fields(&body(&res));
    w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "approve")], jar)
}

/// Approve, then PingOne answers the callback with an ID token of `claims`
/// carrying the right nonce unless `claims` sets its own.
fn callback_with(w: &World, jar: &mut Jar, edit: impl FnOnce(&mut Value)) -> http::Response<Vec<u8>> {
    let to_idp = location(&approve(w, jar));
    let mut c = claims();
    c["nonce"] = json!(query(&to_idp, "nonce").unwrap());
    edit(&mut c);
    w.token_answers(&sign(&c, key(), Some("key-1")));
    let state = query(&to_idp, "state").unwrap();
    w.get(&format!("{ORIGIN}/callback?code=the-code&state={state}"), jar)
}

#[test]
fn consent_then_pingone_then_back_to_the_client() {
    let w = World::new();
    let mut jar = Jar::default();

    let res = w.get(&authorize_url("client-state"), &mut jar);
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action 'self' https://idp.example.com http://127.0.0.1:33418;"), "{csp}");
    assert!(jar.0.contains_key(CSRF_COOKIE));
    let (pending, csrf) = form_fields(&body(&res));
    assert_eq!(jar.0[CSRF_COOKIE], csrf);

    let res = w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "approve")], &mut jar);
    assert_eq!(res.status(), 302);
    assert!(!jar.0.contains_key(CSRF_COOKIE), "CSRF cookie cleared after use");
    assert!(jar.0.contains_key(APPROVED_COOKIE));

    // The authorization request to PingOne.
    let to_idp = location(&res);
    assert_eq!(to_idp.as_str().split('?').next().unwrap(), format!("{ISSUER}/authorize"));
    assert_eq!(query(&to_idp, "response_type").as_deref(), Some("code"));
    assert_eq!(query(&to_idp, "client_id").as_deref(), Some(CLIENT));
    assert_eq!(query(&to_idp, "redirect_uri").as_deref(), Some(&*format!("{ORIGIN}/callback")));
    // Only the API scopes the MCP client is being granted (read), plus OpenID's.
    assert_eq!(query(&to_idp, "scope").as_deref(), Some("openid profile todo_api:read"));
    assert_eq!(query(&to_idp, "resource").as_deref(), Some("https://api.example.com"));
    assert_eq!(query(&to_idp, "code_challenge_method").as_deref(), Some("S256"));
    let state = query(&to_idp, "state").unwrap();
    let nonce = query(&to_idp, "nonce").unwrap();
    assert!(state.len() >= 43 && nonce.len() >= 43);
    // The state is bound to this browser, and its record holds the PKCE verifier.
    assert_eq!(jar.0[STATE_COOKIE], sha256_hex(&state));
    let record: Value =
        serde_json::from_str(&w.store.raw(&format!("login:state:{}", sha256_hex(&state))).unwrap()).unwrap();
    let verifier = record["code_verifier"].as_str().unwrap();
    assert_eq!(query(&to_idp, "code_challenge").unwrap(), b64url(sha256(verifier)));
    assert_eq!(record["nonce"], nonce);
    assert!(w.store.ttls_requested.borrow().iter().all(|t| *t >= 60));

    // PingOne sends the browser back.
    let mut c = claims();
    c["nonce"] = json!(nonce);
    w.token_answers(&sign(&c, key(), Some("key-1")));
    let res = w.get(&format!("{ORIGIN}/callback?code=the-code&state={state}"), &mut jar);
    assert_eq!(res.status(), 302, "{}", body(&res));
    let back = location(&res);
    assert!(back.as_str().starts_with(CLIENT_REDIRECT));
    assert_eq!(query(&back, "code").as_deref(), Some("fake-code"));
    assert_eq!(query(&back, "state").as_deref(), Some("client-state"));
    assert!(!jar.0.contains_key(STATE_COOKIE), "state cookie cleared");
    assert!(w.store.keys().iter().all(|k| !k.starts_with("login:")), "records consumed: {:?}", w.store.keys());

    // The code exchange: client_secret_basic, the verifier, the same redirect_uri.
    let token_req = w
        .http
        .requests
        .borrow()
        .iter()
        .find(|r| r.uri().to_string() == format!("{ISSUER}/token"))
        .map(|r| (r.headers().get("authorization").cloned(), String::from_utf8(r.body().clone()).unwrap()))
        .unwrap();
    assert!(token_req.0.unwrap().to_str().unwrap().starts_with("Basic "));
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(token_req.1.as_bytes()).into_owned().collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "the-code");
    assert_eq!(form["code_verifier"], verifier);
    assert_eq!(form["redirect_uri"], format!("{ORIGIN}/callback"));
    assert!(!form.contains_key("client_secret"));
    // Userinfo is called with the access token.
    let ui = w
        .http
        .requests
        .borrow()
        .iter()
        .find(|r| r.uri().path().ends_with("/userinfo"))
        .map(|r| r.headers()["authorization"].clone())
        .unwrap();
    assert_eq!(ui, "Bearer pingone-access-token");

    // What the MCP grant gets.
    let done = w.auth.completed.borrow();
    let c = &done[0];
    assert_eq!(c.user_id, "user-1");
    assert_eq!(c.metadata["label"], "alice");
    // The PingOne refresh token is sealed into the metadata, never in clear.
    let sealed = c.metadata["upstream"].as_str().unwrap();
    assert!(!sealed.contains("pingone-refresh-token"));
    assert_eq!(super::upstream::open(&w.settings, sealed).as_deref(), Some("pingone-refresh-token"));
    assert_eq!(c.scope, ["todo_api:read"]);
    assert!(c.revoke_existing_grants);
    assert_eq!(c.request.state, "client-state");
    assert_eq!(c.props["subjectToken"], "pingone-access-token");
    assert_eq!(c.props["subjectTokenExpiresAt"], NOW + 3600);
    assert!(c.props.get("refreshToken").is_none());
    assert_eq!(c.props["scopes"], json!(["openid", "profile", "todo_api:read"]));
    assert_eq!(c.props["claims"]["sub"], "user-1");
    assert_eq!(c.props["claims"]["name"], "Alice Example");
    assert_eq!(c.props["claims"]["email"], "alice@example.com", "userinfo claims merged");
    for protocol in ["nonce", "iss", "aud", "exp", "iat"] {
        assert!(c.props["claims"].get(protocol).is_none(), "{protocol} kept in claims");
    }
}

#[test]
fn an_approved_browser_skips_consent_until_cookies_are_cleared() {
    let w = World::new();
    let mut jar = Jar::default();
    callback_with(&w, &mut jar, |_| {});
    let res = w.get(&authorize_url("second"), &mut jar);
    assert_eq!(res.status(), 302);
    assert!(location(&res).as_str().starts_with(&format!("{ISSUER}/authorize?")));
    assert!(jar.0.contains_key(STATE_COOKIE));

    // Another client is not covered by this approval.
    w.auth.clients.borrow_mut().push(ClientInfo { client_id: "client-2".into(), ..client_info("Other") });
    let res = w.get(&authorize_url("x").replace("client_id=client-1", "client_id=client-2"), &mut jar);
    assert_eq!(res.status(), 200);

    let res = w.get(&authorize_url("third"), &mut Jar::default());
    assert_eq!(res.status(), 200, "a browser without cookies sees consent again");
}

#[test]
fn tampered_foreign_or_old_format_approval_cookies_bring_consent_back() {
    let w = World::new();
    let scope = vec!["todo_api:read".to_owned()];
    let mine = cookies::Approval::new("client-1", CLIENT_REDIRECT, &scope);
    let forged = cookies::approve(vec![], mine.clone(), b"some-other-key-some-other-key-1234", NOW).unwrap();
    let mut jar = Jar::default();
    jar.0.insert(APPROVED_COOKIE.into(), forged);
    assert_eq!(w.get(&authorize_url("s"), &mut jar).status(), 200);

    let genuine = cookies::approve(
        vec![],
        cookies::Approval::new("client-2", CLIENT_REDIRECT, &scope),
        COOKIE_KEY.as_bytes(),
        NOW,
    )
    .unwrap();
    let (_, sig) = genuine.split_once('.').unwrap();
    let payload = b64url(serde_json::to_vec(&json!({"v": 2, "a": [mine], "exp": 9_999_999_999u64})).unwrap());
    let mut jar = Jar::default();
    jar.0.insert(APPROVED_COOKIE.into(), format!("{payload}.{sig}"));
    assert_eq!(w.get(&authorize_url("s"), &mut jar).status(), 200);

    // A genuine cookie of the old format (a list of client ids) is no approval, and no error.
    let payload = b64url(br#"{"c":["client-1"],"exp":9999999999}"#);
    let sig = {
        use hmac::{Hmac, Mac};
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(COOKIE_KEY.as_bytes()).unwrap();
        m.update(payload.as_bytes());
        b64url(m.finalize().into_bytes())
    };
    let mut jar = Jar::default();
    jar.0.insert(APPROVED_COOKIE.into(), format!("{payload}.{sig}"));
    let res = w.get(&authorize_url("s"), &mut jar);
    assert_eq!(res.status(), 200, "{}", body(&res));
    assert!(body(&res).contains("value=\"approve\""));
}

#[test]
fn an_approval_is_bound_to_the_redirect_uri_and_the_scopes() {
    let w = World::new();
    let other_redirect = "http://127.0.0.1:33418/other-callback";
    w.auth.clients.borrow_mut()[0].redirect_uris.push(other_redirect.into());
    let mut jar = Jar::default();
    // Approves todo_api:read for CLIENT_REDIRECT.
    assert_eq!(approve(&w, &mut jar).status(), 302);
    let silent = |url: &str, jar: &mut Jar| {
        let res = w.get(url, jar);
        assert!(matches!(res.status().as_u16(), 200 | 302), "{}", body(&res));
        res.status() == 302
    };
    assert!(silent(&authorize_url("same"), &mut jar), "the same request skips consent");
    let read_write =
        authorize_url("wider").replace("scope=todo_api%3Aread", "scope=todo_api%3Aread%20todo_api%3Awrite");
    assert!(!silent(&read_write, &mut jar), "more scopes than approved ask again");
    let elsewhere = authorize_url("elsewhere").replace(&urlencode(CLIENT_REDIRECT), &urlencode(other_redirect));
    assert!(!silent(&elsewhere, &mut jar), "another redirect URI asks again");

    // Approving read+write covers read alone and read+write, still only for that redirect.
    let res = w.get(&read_write, &mut jar);
    let (pending, csrf) = form_fields(&body(&res));
    assert_eq!(w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "approve")], &mut jar).status(), 302);
    assert!(silent(&read_write, &mut jar));
    assert!(silent(&authorize_url("narrower"), &mut jar));
    assert!(!silent(&elsewhere, &mut jar));
}

/// A world whose settings restrict access, with a revocation endpoint at PingOne.
fn restricted(extra: &[(&'static str, &str)]) -> World {
    let mut w = World::new();
    w.settings = settings_with(extra);
    let mut d = discovery_json();
    d["revocation_endpoint"] = json!(format!("{ISSUER}/revoke"));
    w.http.json(&format!("{ISSUER}/.well-known/openid-configuration"), 200, d);
    w.http.json(&format!("{ISSUER}/revoke"), 200, json!({}));
    w
}

#[test]
fn a_user_not_admitted_gets_a_403_page_leading_back_to_the_client_and_no_grant() {
    let w = restricted(&[("ALLOWED_GROUPS", "todo-users")]);
    let mut jar = Jar::default();
    let res = callback_with(&w, &mut jar, |c| c["groups"] = json!(["admins"]));
    assert_eq!(res.status(), 403, "{}", body(&res));
    let page = body(&res);
    assert!(page.contains("<h1>Access denied</h1>"));
    assert!(page.contains("<strong>alice</strong>") && page.contains("<code>user-1</code>"));
    assert!(page.contains("operator"));
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    // Its primary action: the client's redirect URI with error, state and iss.
    let href = page.split("class=\"button primary\" href=\"").nth(1).unwrap().split('"').next().unwrap();
    let back = Url::parse(&href.replace("&amp;", "&")).unwrap();
    assert!(back.as_str().starts_with(CLIENT_REDIRECT));
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "state").as_deref(), Some("client-state"));
    assert_eq!(query(&back, "iss").as_deref(), Some(ORIGIN));
    assert!(page.contains("Return to Test client</a>"));
    // Nothing was granted, the state is gone, and PingOne's refresh token was revoked.
    assert!(w.auth.completed.borrow().is_empty());
    assert!(!jar.0.contains_key(STATE_COOKIE));
    assert!(w.store.keys().iter().all(|k| !k.starts_with("login:state:")), "{:?}", w.store.keys());
    assert_eq!(w.http.calls_to(&format!("{ISSUER}/revoke")), 1);
}

#[test]
fn admitted_users_and_group_members_complete_the_authorization() {
    // By group in the ID token.
    let w = restricted(&[("ALLOWED_GROUPS", "todo-users, admins")]);
    let res = callback_with(&w, &mut Jar::default(), |c| c["groups"] = json!(["todo-users"]));
    assert_eq!(res.status(), 302, "{}", body(&res));
    assert_eq!(query(&location(&res), "code").as_deref(), Some("fake-code"));
    assert_eq!(w.http.calls_to(&format!("{ISSUER}/revoke")), 0);

    // By group in userinfo only, as a single string, under another claim name.
    let w = restricted(&[("ALLOWED_GROUPS", "todo-users"), ("GROUPS_CLAIM", "memberOfGroupNames")]);
    w.http.json(
        &format!("{ISSUER}/userinfo"),
        200,
        json!({"sub": "user-1", "preferred_username": "alice", "memberOfGroupNames": "todo-users"}),
    );
    let res = callback_with(&w, &mut Jar::default(), |c| c["groups"] = json!(["nope"]));
    assert_eq!(res.status(), 302, "{}", body(&res));
    assert_eq!(w.auth.completed.borrow().len(), 1);

    // By username, ignoring case; either list admits.
    let w = restricted(&[("ALLOWED_USERS", "bob, ALICE"), ("ALLOWED_GROUPS", "admins")]);
    assert_eq!(callback_with(&w, &mut Jar::default(), |_| {}).status(), 302);
    let w = restricted(&[("ALLOWED_USERS", "bob")]);
    assert_eq!(callback_with(&w, &mut Jar::default(), |_| {}).status(), 403);
    let w = restricted(&[("ALLOWED_USERS", "user-1")]);
    assert_eq!(callback_with(&w, &mut Jar::default(), |_| {}).status(), 302, "by sub");
}

#[test]
fn cancel_returns_access_denied_with_state_and_iss() {
    let w = World::new();
    let mut jar = Jar::default();
    let res = w.get(&authorize_url("client-state"), &mut jar);
    let (pending, csrf) = form_fields(&body(&res));
    let res = w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "cancel")], &mut jar);
    assert_eq!(res.status(), 302);
    let back = location(&res);
    assert!(back.as_str().starts_with(CLIENT_REDIRECT));
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "state").as_deref(), Some("client-state"));
    assert_eq!(query(&back, "iss").as_deref(), Some(ORIGIN));
    assert!(!jar.0.contains_key(APPROVED_COOKIE));
}

#[test]
fn csrf_missing_mismatched_or_replayed_is_refused() {
    let w = World::new();
    let mut jar = Jar::default();
    let (pending, csrf) = form_fields(&body(&w.get(&authorize_url("s"), &mut jar)));

    // Missing form field; then missing cookie; then a different value.
    let mut j = jar.clone();
    assert_eq!(w.post(&[("pending", &pending), ("action", "approve")], &mut j).status(), 403);
    let mut j = Jar::default();
    assert_eq!(w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "approve")], &mut j).status(), 403);
    let mut j = jar.clone();
    j.0.insert(CSRF_COOKIE.into(), "forged".into());
    assert_eq!(w.post(&[("pending", &pending), ("csrf_token", "forged"), ("action", "approve")], &mut j).status(), 403);

    // None of the refusals consumed the request: the genuine form still works once…
    let mut j = jar.clone();
    assert_eq!(w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "approve")], &mut j).status(), 302);
    // …and only once, even with the cookie put back.
    let mut j = jar.clone();
    let res = w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "approve")], &mut j);
    assert_eq!(res.status(), 400);
    assert!(body(&res).contains("no longer valid"));
}

#[test]
fn a_csrf_pair_from_another_consent_page_does_not_unlock_this_one() {
    let w = World::new();
    let mut victim = Jar::default();
    let (victim_pending, victim_csrf) = form_fields(&body(&w.get(&authorize_url("v"), &mut victim)));
    let mut attacker = Jar::default();
    let (_, attacker_csrf) = form_fields(&body(&w.get(&authorize_url("a"), &mut attacker)));
    let res =
        w.post(&[("pending", &victim_pending), ("csrf_token", &attacker_csrf), ("action", "approve")], &mut attacker);
    assert_eq!(res.status(), 403);
    // The attempt did not burn the victim's request.
    let res = w.post(&[("pending", &victim_pending), ("csrf_token", &victim_csrf), ("action", "approve")], &mut victim);
    assert_eq!(res.status(), 302);
}

#[test]
fn a_tampered_pending_id_or_unknown_action_is_refused() {
    let w = World::new();
    let mut jar = Jar::default();
    let (pending, csrf) = form_fields(&body(&w.get(&authorize_url("s"), &mut jar)));
    for bad in ["x".repeat(32), format!("{pending}x"), "../../etc".into(), String::new()] {
        let mut j = jar.clone();
        assert_eq!(
            w.post(&[("pending", &bad), ("csrf_token", &csrf), ("action", "approve")], &mut j).status(),
            400,
            "{bad}"
        );
    }
    let mut j = jar.clone();
    assert_eq!(w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "yes-please")], &mut j).status(), 400);
}

#[test]
fn the_consent_request_is_validated_again_on_approve() {
    let w = World::new();
    let mut jar = Jar::default();
    let (pending, csrf) = form_fields(&body(&w.get(&authorize_url("s"), &mut jar)));
    // The client re-registered without that redirect URI in the meantime.
    w.auth.clients.borrow_mut()[0].redirect_uris = vec!["https://other.example/cb".into()];
    let res = w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "approve")], &mut jar);
    assert_eq!(res.status(), 400);
    assert!(body(&res).contains("Invalid redirect URI"));
}

#[test]
fn state_must_be_present_known_unused_unexpired_and_bound_to_the_browser() {
    let w = World::with_ttl("5");
    let mut jar = Jar::default();
    let to_idp = location(&approve(&w, &mut jar));
    let state = query(&to_idp, "state").unwrap();
    let cb = |s: &str| format!("{ORIGIN}/callback?code=c&state={s}");

    assert_eq!(w.get(&format!("{ORIGIN}/callback?code=c"), &mut jar.clone()).status(), 400);
    // Without the cookie, or with another browser's cookie.
    assert_eq!(w.get(&cb(&state), &mut Jar::default()).status(), 400);
    let mut other = Jar::default();
    approve(&w, &mut other);
    let res = w.get(&cb(&state), &mut other.clone());
    assert_eq!(res.status(), 400);
    assert!(body(&res).contains("another browser"));
    // A state we never issued, with a cookie matching it.
    let mut j = Jar::default();
    j.0.insert(STATE_COOKIE.into(), sha256_hex("made-up"));
    assert!(body(&w.get(&cb("made-up"), &mut j)).contains("unknown or was already completed"));

    // Expired: past the 5 s attempt lifetime but still in KV (60 s minimum).
    w.store.set_now(NOW + 6);
    let res = w.get(&cb(&state), &mut jar.clone());
    assert_eq!(res.status(), 400);
    assert!(body(&res).contains("expired"));
    // …and it is gone now, so a replay is unknown.
    assert!(body(&w.get(&cb(&state), &mut jar.clone())).contains("unknown or was already completed"));
}

#[test]
fn a_completed_state_cannot_be_replayed() {
    let w = World::new();
    let mut jar = Jar::default();
    let to_idp = location(&approve(&w, &mut jar));
    let mut c = claims();
    c["nonce"] = json!(query(&to_idp, "nonce").unwrap());
    w.token_answers(&sign(&c, key(), Some("key-1")));
    let url = format!("{ORIGIN}/callback?code=the-code&state={}", query(&to_idp, "state").unwrap());
    let saved = jar.clone();
    assert_eq!(w.get(&url, &mut jar).status(), 302);
    assert_eq!(w.get(&url, &mut saved.clone()).status(), 400);
    assert_eq!(w.auth.completed.borrow().len(), 1);
}

#[test]
fn an_idp_error_is_shown_and_offered_back_to_the_client() {
    let w = World::new();
    let mut jar = Jar::default();
    let to_idp = location(&approve(&w, &mut jar));
    let state = query(&to_idp, "state").unwrap();
    let res = w.get(
        &format!(
            "{ORIGIN}/callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state={state}"
        ),
        &mut jar,
    );
    assert_eq!(res.status(), 403);
    let html = body(&res);
    assert!(html.contains("access_denied") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>"));
    let href = html.split("href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let back = Url::parse(&href).unwrap();
    assert!(back.as_str().starts_with(CLIENT_REDIRECT));
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "state").as_deref(), Some("client-state"));
    assert!(!jar.0.contains_key(STATE_COOKIE));
    assert!(w.auth.completed.borrow().is_empty());
}

#[test]
fn invalid_id_tokens_are_refused_with_a_502_page() {
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("nonce", Box::new(|c| c["nonce"] = json!("other-nonce"))),
        ("aud", Box::new(|c| c["aud"] = json!("another-client"))),
        ("another issuer", Box::new(|c| c["iss"] = json!("https://evil.example.com/as"))),
        ("expired", Box::new(|c| c["exp"] = json!(NOW - 3600))),
    ];
    for (expected, edit) in cases {
        let w = World::new();
        let res = callback_with(&w, &mut Jar::default(), |c| edit(c));
        assert_eq!(res.status(), 502, "{expected}");
        assert!(body(&res).contains(expected), "{expected}: {}", body(&res));
        assert!(w.auth.completed.borrow().is_empty());
    }
}

#[test]
fn unsigned_and_foreign_signed_id_tokens_are_refused() {
    let w = World::new();
    let mut jar = Jar::default();
    let to_idp = location(&approve(&w, &mut jar));
    let mut c = claims();
    c["nonce"] = json!(query(&to_idp, "nonce").unwrap());
    let none = format!("{}.{}.", b64url(r#"{"alg":"none"}"#), b64url(c.to_string()));
    w.token_answers(&none);
    let res = w.get(&format!("{ORIGIN}/callback?code=x&state={}", query(&to_idp, "state").unwrap()), &mut jar);
    assert_eq!(res.status(), 502);
    assert!(body(&res).contains("disallowed algorithm (none)"));

    let w = World::new();
    let mut jar = Jar::default();
    let to_idp = location(&approve(&w, &mut jar));
    c["nonce"] = json!(query(&to_idp, "nonce").unwrap());
    w.token_answers(&sign(&c, other_key(), Some("key-1")));
    let res = w.get(&format!("{ORIGIN}/callback?code=x&state={}", query(&to_idp, "state").unwrap()), &mut jar);
    assert_eq!(res.status(), 502);
    assert!(body(&res).contains("signature is invalid"));
}

#[test]
fn an_unknown_kid_refetches_the_jwks_once() {
    let w = World::new();
    let mut jar = Jar::default();
    let to_idp = location(&approve(&w, &mut jar));
    // Prime the cache with the old key set, then PingOne rotates to key-2.
    let d = block_on(w.cache.discovery(&w.http, ISSUER, NOW)).unwrap();
    block_on(w.cache.jwks(&w.http, &d, NOW, false)).unwrap();
    w.http.json(&format!("{ISSUER}/jwks"), 200, jwks_of(&[key(), other_key()]));
    let mut c = claims();
    c["nonce"] = json!(query(&to_idp, "nonce").unwrap());
    w.token_answers(&sign(&c, other_key(), Some("key-2")));
    let res = w.get(&format!("{ORIGIN}/callback?code=x&state={}", query(&to_idp, "state").unwrap()), &mut jar);
    assert_eq!(res.status(), 302, "{}", body(&res));
    assert_eq!(w.http.calls_to(&format!("{ISSUER}/jwks")), 2);

    // A kid PingOne never publishes fails after exactly one more refetch.
    let w = World::new();
    let mut c2 = claims();
    let mut jar = Jar::default();
    let to_idp = location(&approve(&w, &mut jar));
    c2["nonce"] = json!(query(&to_idp, "nonce").unwrap());
    w.token_answers(&sign(&c2, other_key(), Some("key-9")));
    let res = w.get(&format!("{ORIGIN}/callback?code=x&state={}", query(&to_idp, "state").unwrap()), &mut jar);
    assert_eq!(res.status(), 502);
    assert_eq!(w.http.calls_to(&format!("{ISSUER}/jwks")), 2);
}

#[test]
fn a_userinfo_for_another_user_is_refused() {
    let w = World::new();
    w.http.json(&format!("{ISSUER}/userinfo"), 200, json!({"sub": "someone-else"}));
    let res = callback_with(&w, &mut Jar::default(), |_| {});
    assert_eq!(res.status(), 502);
    assert!(body(&res).contains("different user"));
    assert!(w.auth.completed.borrow().is_empty());
}

#[test]
fn unreachable_pingone_gives_a_clear_502() {
    let w = World::new();
    w.http.fail(&format!("{ISSUER}/.well-known/openid-configuration"), OutboundError::Timeout);
    let res = w.get(&authorize_url("s"), &mut Jar::default());
    assert_eq!(res.status(), 502);
    let html = body(&res);
    assert!(html.contains("PingOne could not be reached") && html.contains("no answer within 10 s"));
    assert!(!html.to_lowercase().contains("panicked"));

    let w = World::new();
    let mut jar = Jar::default();
    let to_idp = location(&approve(&w, &mut jar));
    w.http.fail(&format!("{ISSUER}/token"), OutboundError::Unreachable("connection refused".into()));
    let res = w.get(&format!("{ORIGIN}/callback?code=x&state={}", query(&to_idp, "state").unwrap()), &mut jar);
    assert_eq!(res.status(), 502);
    assert!(body(&res).contains("token endpoint did not answer"));

    let w = World::new();
    let mut jar = Jar::default();
    let to_idp = location(&approve(&w, &mut jar));
    let mut c = claims();
    c["nonce"] = json!(query(&to_idp, "nonce").unwrap());
    w.token_answers(&sign(&c, key(), Some("key-1")));
    w.http.fail(&format!("{ISSUER}/jwks"), OutboundError::Timeout);
    let res = w.get(&format!("{ORIGIN}/callback?code=x&state={}", query(&to_idp, "state").unwrap()), &mut jar);
    assert_eq!(res.status(), 502);
    assert!(body(&res).contains("JSON Web Key Set"));
}

#[test]
fn pingone_refusing_the_code_is_reported() {
    let w = World::new();
    let mut jar = Jar::default();
    let to_idp = location(&approve(&w, &mut jar));
    w.http.json(&format!("{ISSUER}/token"), 400, json!({"error": "invalid_grant"}));
    let res = w.get(&format!("{ORIGIN}/callback?code=x&state={}", query(&to_idp, "state").unwrap()), &mut jar);
    assert_eq!(res.status(), 502);
    assert!(body(&res).contains("invalid_grant"));
}

#[test]
fn invalid_authorization_requests_are_answered_locally_never_redirected() {
    let w = World::new();
    let res = w.get(&authorize_url("s").replace("client-1", "nobody"), &mut Jar::default());
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(body(&res).contains("Invalid client_id"));
    // Programs asking for JSON get OAuth JSON.
    let json_get = |url: String| {
        let req = http::Request::get(url).header("accept", "application/json").body(Vec::new()).unwrap();
        w.send(req, &mut Jar::default())
    };
    let res = json_get(authorize_url("s").replace("client-1", "nobody"));
    assert_eq!(res.status(), 400);
    let v: Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(v["error"], "invalid_request");

    // Errors after the client and its redirect URI checked out: still shown here
    // (the person decided nothing), naming the client, with the way back to it.
    let plain = authorize_url("s").replace("code_challenge_method=S256", "code_challenge_method=plain");
    let res = w.get(&plain, &mut Jar::default());
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none(), "never redirected");
    let html = body(&res);
    assert!(html.contains("<strong>Test client</strong> sent a request this server cannot accept"), "{html}");
    let href = html.split("class=\"button\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let back = Url::parse(&href).unwrap();
    assert!(href.starts_with(CLIENT_REDIRECT), "{href}");
    assert_eq!(query(&back, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query(&back, "state").as_deref(), Some("s"));
    assert_eq!(query(&back, "iss").as_deref(), Some(ORIGIN));
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    // The same as JSON, for a program that asked for it.
    let res = json_get(plain);
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    let v: Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!((v["error"].as_str(), v["error_description"].as_str()), (Some("invalid_request"), Some("PKCE")));
}

#[test]
fn other_methods_are_405() {
    let w = World::new();
    let req = http::Request::delete(format!("{ORIGIN}/authorize")).body(Vec::new()).unwrap();
    let res = w.send(req, &mut Jar::default());
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, POST");
    let req = http::Request::post(format!("{ORIGIN}/callback")).body(Vec::new()).unwrap();
    assert_eq!(w.send(req, &mut Jar::default()).status(), 405);
}

#[test]
fn a_misconfiguration_is_a_500_page_naming_the_setting() {
    let e = Settings::from_lookup(|k| (k == "PINGONE_ISSUER").then(|| "https://x.example/as".to_owned())).unwrap_err();
    let res = super::flow::config_failure(&e).respond(false);
    assert_eq!(res.status(), 500);
    assert!(body(&res).contains("MCP_SERVER_CLIENT_ID is missing"));
}

#[test]
fn the_consent_page_escapes_a_hostile_client_name() {
    let w = World::new();
    w.auth.clients.borrow_mut()[0].client_name = Some("<script>alert(1)</script>".into());
    let res = w.get(&authorize_url("s"), &mut Jar::default());
    let html = body(&res);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>"));
}

#[test]
fn the_auth_server_sees_what_it_expects() {
    // Guard for the adapter: the fake behaves like the real server on the
    // fields sign-in depends on.
    let w = World::new();
    let req = block_on(w.auth.parse_auth_request(&Url::parse(&authorize_url("st")).unwrap())).unwrap();
    assert_eq!(req.resource, [format!("{ORIGIN}/mcp")]);
    let again = super::authz::authorize_url(ORIGIN, &req).unwrap();
    assert_eq!(block_on(w.auth.parse_auth_request(&again)).unwrap(), req);
}

/// A grant of the original TypeScript worker: PingOne token in `tokenSet`, no
/// PingOne refresh token. Its MCP tokens live as long as that token, then the
/// grant ends (the user signs in again) — PingOne is never called.
#[test]
fn grants_of_the_original_worker_live_as_long_as_their_pingone_token() {
    use crate::oauth::{Exchange, ExchangeError, GrantHooks, GrantType};
    let w = World::new();
    let hooks = super::upstream::PingOneGrants { settings: &w.settings, http: &w.http, cache: &w.cache };
    let original = |exp: u64| {
        let jwt = format!("{}.{}.sig", b64url(r#"{"alg":"RS256"}"#), b64url(format!(r#"{{"exp":{exp}}}"#)));
        json!({"sub": "user-1", "preferred_username": "alice",
               "tokenSet": {"access_token": jwt, "token_type": "Bearer", "expires_in": 3600, "scope": "openid todo_api:read"}})
    };
    let scope = vec!["todo_api:read".to_owned()];
    let refresh = |props: &Value| {
        block_on(hooks.exchange(Exchange {
            grant_type: GrantType::RefreshToken,
            client_id: "client-1",
            user_id: "user-1",
            grant_id: "grant-1",
            scope: &scope,
            token_scope: &scope,
            props,
            metadata: &json!({}),
            access_token_ttl: 3600,
            now: NOW,
        }))
    };
    let live = refresh(&original(NOW + 600)).expect("a live PingOne token keeps the grant");
    assert_eq!(live.access_token_ttl, Some(600), "capped at the PingOne token's life");
    assert!(matches!(refresh(&original(NOW - 1)), Err(ExchangeError::GrantDead(_))));
    assert!(w.http.requests.borrow().is_empty(), "nothing to refresh PingOne with");
}
