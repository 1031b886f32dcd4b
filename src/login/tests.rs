//! The whole sign-in flow natively, against the real MCP authorization server:
//! `oauth::Provider` with the PingOne grant hooks on the in-memory store, passed
//! to sign-in as the Worker passes it (`entry::fetch` → `login::worker::serve`).
//! Clients register at `/register` and redeem their codes at `/token` as real
//! ones do. PingOne is faked at the HTTP level with ID tokens signed by a test
//! RSA key.

use super::authz::AuthServer;
use super::cookies::{self, APPROVED_COOKIE, CSRF_COOKIE, STATE_COOKIE};
use super::discovery::tests::discovery_json;
use super::discovery::OidcCache;
use super::id_token::tests::{claims, jwks_of, key, other_key, sign, CLIENT, ISSUER, NOW};
use super::settings::Settings;
use super::upstream::PingOneGrants;
use super::Login;
use crate::oauth::bearer::AuthContext;
use crate::oauth::records::client_key;
use crate::oauth::{Config, Provider};
use crate::outbound::fake::FakeHttp;
use crate::outbound::OutboundError;
use crate::store::{KvStore, MemoryStore};
use crate::util::crypto::{b64url, sha256, sha256_hex};
use futures::executor::block_on;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use url::Url;

const ORIGIN: &str = "https://mcp.example.com";
const CLIENT_REDIRECT: &str = "http://127.0.0.1:33418/callback";
const COOKIE_KEY: &str = "test-cookie-key-test-cookie-key-123456";
/// The MCP client's PKCE verifier (RFC 7636: 43–128 characters).
const VERIFIER: &str = "the-mcp-clients-pkce-verifier-0123456789-abcdefghijklmnop";

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
    /// The authorization server's settings, defaults as the Worker reads them.
    config: Config,
    /// `OAUTH_KV`: shared by sign-in and the authorization server, as in the Worker.
    store: MemoryStore,
    http: FakeHttp,
    cache: OidcCache,
    /// The MCP client "Test client" (public, PKCE), registered with `CLIENT_REDIRECT`.
    client_id: String,
}

impl World {
    fn new() -> Self {
        Self::build("600", &[CLIENT_REDIRECT])
    }
    fn with_ttl(ttl: &str) -> Self {
        Self::build(ttl, &[CLIENT_REDIRECT])
    }
    fn build(ttl: &str, redirect_uris: &[&str]) -> Self {
        let http = FakeHttp::default();
        http.json(&format!("{ISSUER}/.well-known/openid-configuration"), 200, discovery_json());
        http.json(&format!("{ISSUER}/jwks"), 200, jwks_of(&[key()]));
        http.json(
            &format!("{ISSUER}/userinfo"),
            200,
            json!({"sub": "user-1", "preferred_username": "alice", "email": "alice@example.com"}),
        );
        let mut w = World {
            settings: settings(ttl),
            config: Config::from_lookup(|_| None).unwrap(),
            store: MemoryStore::new(NOW),
            http,
            cache: OidcCache::default(),
            client_id: String::new(),
        };
        w.client_id = w.register("Test client", redirect_uris);
        w
    }

    /// The PingOne hooks the Worker gives the authorization server.
    fn hooks(&self) -> PingOneGrants<'_> {
        PingOneGrants { settings: &self.settings, http: &self.http, cache: &self.cache, gateway: false }
    }

    /// The authorization server for one request, as `entry::fetch` builds it.
    fn provider<'a>(&'a self, hooks: &'a PingOneGrants<'a>) -> Provider<'a> {
        Provider::new(&self.store, &self.config, self.store.now()).with_hooks(hooks)
    }

    /// A request to the authorization server's own endpoints (`/register`, `/token`).
    fn oauth(&self, req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let hooks = self.hooks();
        block_on(self.provider(&hooks).handle(&req))
    }

    /// Dynamic client registration of a public client; its id.
    fn register(&self, name: &str, redirect_uris: &[&str]) -> String {
        let doc = json!({"client_name": name, "redirect_uris": redirect_uris, "token_endpoint_auth_method": "none"});
        let req = http::Request::post(format!("{ORIGIN}/register"))
            .header("content-type", "application/json")
            .body(doc.to_string().into_bytes())
            .unwrap();
        let res = self.oauth(req);
        assert_eq!(res.status(), 201, "{}", body(&res));
        serde_json::from_slice::<Value>(res.body()).unwrap()["client_id"].as_str().unwrap().to_owned()
    }

    /// Changes the stored registration of `client_id` (what KV holds for it).
    fn edit_client(&self, client_id: &str, edit: impl FnOnce(&mut Value)) {
        let key = client_key(client_id);
        let mut record: Value = serde_json::from_str(&self.store.raw(&key).unwrap()).unwrap();
        edit(&mut record);
        block_on(self.store.put(&key, &record.to_string(), None)).unwrap();
    }

    fn login<'a>(&'a self, auth: &'a dyn AuthServer) -> Login<'a> {
        Login {
            settings: &self.settings,
            store: &self.store,
            auth,
            http: &self.http,
            cache: &self.cache,
            now: self.store.now(),
            extension: None,
        }
    }

    fn send(&self, req: http::Request<Vec<u8>>, jar: &mut Jar) -> http::Response<Vec<u8>> {
        let hooks = self.hooks();
        let provider = self.provider(&hooks);
        let res = block_on(self.login(&provider).handle(&req));
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
        self.token_answers_with(id_token, "openid profile todo_api:read", "pingone-refresh-token");
    }

    /// The token endpoint answers with `id_token`, PingOne granting `scope`
    /// and issuing `refresh_token`.
    fn token_answers_with(&self, id_token: &str, scope: &str, refresh_token: &str) {
        self.http.json(
            &format!("{ISSUER}/token"),
            200,
            json!({
                "access_token": "pingone-access-token", "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": refresh_token, "scope": scope, "id_token": id_token,
            }),
        );
    }

    /// The test client's `/authorize` URL (PKCE S256, `todo_api:read`, this server's `/mcp`).
    fn authorize_url(&self, state: &str) -> String {
        authorize_url_for(&self.client_id, state)
    }

    /// The MCP client redeems the code it was sent back with at `/token`, as a
    /// real client does (its PKCE verifier, the same redirect URI).
    fn redeem(&self, back: &Url) -> http::Response<Vec<u8>> {
        let code = query(back, "code").expect("a code in the redirect");
        let redirect_uri = back.as_str().split('?').next().unwrap();
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect_uri),
                ("client_id", &self.client_id),
                ("code_verifier", VERIFIER),
            ])
            .finish();
        let req = http::Request::post(format!("{ORIGIN}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.into_bytes())
            .unwrap();
        self.oauth(req)
    }

    /// The token response for the code in `back`, which must be redeemable.
    fn tokens(&self, back: &Url) -> Value {
        let res = self.redeem(back);
        assert_eq!(res.status(), 200, "{}", body(&res));
        serde_json::from_slice(res.body()).unwrap()
    }

    /// What the MCP routes see for a request to `/mcp` with `access_token`.
    fn bearer(&self, access_token: &str) -> Result<AuthContext, crate::oauth::bearer::BearerError> {
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {access_token}").parse().unwrap());
        let hooks = self.hooks();
        block_on(self.provider(&hooks).authenticate(&headers, &Url::parse(&format!("{ORIGIN}/mcp")).unwrap()))
    }

    /// The stored MCP grants (`grant:{user}:{id}` records).
    fn grants(&self) -> Vec<Value> {
        let keys = self.store.keys();
        keys.iter()
            .filter(|k| k.starts_with("grant:"))
            .map(|k| serde_json::from_str(&self.store.raw(k).unwrap()).unwrap())
            .collect()
    }
}

fn pkce_challenge() -> String {
    b64url(sha256(VERIFIER))
}

fn authorize_url_for(client_id: &str, state: &str) -> String {
    format!(
        "{ORIGIN}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&state={state}\
         &code_challenge={}&code_challenge_method=S256&scope=todo_api%3Aread&resource={ORIGIN}/mcp",
        urlencode(CLIENT_REDIRECT),
        pkce_challenge()
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
    let res = w.get(&w.authorize_url("client-state"), jar);
    assert_eq!(res.status(), 200, "{}", body(&res));
    let (pending, csrf) = form_fields(&body(&res));
    w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "approve")], jar)
}

/// Approve, and have PingOne answer the code exchange with an ID token of
/// `claims` carrying the right nonce unless `edit` sets its own; the `state`
/// to come back to `/callback` with.
fn approve_and_answer(w: &World, jar: &mut Jar, edit: impl FnOnce(&mut Value)) -> String {
    let to_idp = location(&approve(w, jar));
    let mut c = claims();
    c["nonce"] = json!(query(&to_idp, "nonce").unwrap());
    edit(&mut c);
    w.token_answers(&sign(&c, key(), Some("key-1")));
    query(&to_idp, "state").unwrap()
}

/// [`approve_and_answer`], then the browser back at `/callback`.
fn callback_with(w: &World, jar: &mut Jar, edit: impl FnOnce(&mut Value)) -> http::Response<Vec<u8>> {
    let state = approve_and_answer(w, jar, edit);
    w.get(&format!("{ORIGIN}/callback?code=the-code&state={state}"), jar)
}

#[test]
fn consent_then_pingone_then_back_to_the_client() {
    let w = World::new();
    let mut jar = Jar::default();

    let res = w.get(&w.authorize_url("client-state"), &mut jar);
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
    assert!(query(&back, "code").is_some());
    assert_eq!(query(&back, "state").as_deref(), Some("client-state"));
    assert_eq!(query(&back, "iss").as_deref(), Some(ORIGIN));
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

    // What the MCP grant gets: one grant record, for this user and client.
    let grants = w.grants();
    assert_eq!(grants.len(), 1, "{grants:?}");
    let g = &grants[0];
    assert_eq!(g["userId"], "user-1");
    assert_eq!(g["clientId"], w.client_id.as_str());
    assert_eq!(g["scope"], json!(["todo_api:read"]));
    assert_eq!(g["metadata"]["label"], "alice");
    // The PingOne refresh token is sealed into the metadata, never in clear.
    let sealed = g["metadata"]["upstream"].as_str().unwrap();
    assert!(!sealed.contains("pingone-refresh-token"));
    assert_eq!(super::upstream::open(&w.settings, sealed, "user-1", "").as_deref(), Some("pingone-refresh-token"));
    for k in w.store.keys() {
        let raw = w.store.raw(&k).unwrap();
        assert!(!raw.contains("pingone-refresh-token") && !raw.contains("pingone-access-token"), "{k} holds a token");
    }

    // The client redeems the code: a token for the granted scope, living no
    // longer than the PingOne token behind it.
    let tokens = w.tokens(&back);
    assert_eq!(tokens["scope"], "todo_api:read");
    assert_eq!(tokens["expires_in"], 3600);
    assert!(tokens["refresh_token"].is_string());
    // The MCP routes see the user and the props sign-in stored.
    let ctx = w.bearer(tokens["access_token"].as_str().unwrap()).unwrap();
    assert_eq!((ctx.user_id.as_str(), ctx.client_id.as_str()), ("user-1", w.client_id.as_str()));
    assert_eq!(ctx.scopes, ["todo_api:read"]);
    assert_eq!(ctx.expires_at, NOW + 3600);
    let p = &ctx.props;
    assert_eq!(p["subjectToken"], "pingone-access-token");
    assert_eq!(p["subjectTokenExpiresAt"], NOW + 3600);
    assert!(p.get("refreshToken").is_none());
    assert_eq!(p["scopes"], json!(["openid", "profile", "todo_api:read"]));
    assert_eq!(p["claims"]["sub"], "user-1");
    assert_eq!(p["claims"]["name"], "Alice Example");
    assert_eq!(p["claims"]["email"], "alice@example.com", "userinfo claims merged");
    for protocol in ["nonce", "iss", "aud", "exp", "iat"] {
        assert!(p["claims"].get(protocol).is_none(), "{protocol} kept in claims");
    }
    // The code is single-use: a replay is refused and ends the grant it came from.
    assert_eq!(w.redeem(&back).status(), 400);
    assert!(w.bearer(tokens["access_token"].as_str().unwrap()).is_err());
}

/// Signing in again with the same client replaces its older grant, whose
/// tokens stop working and whose PingOne refresh token is revoked.
#[test]
fn a_new_sign_in_replaces_the_clients_older_grant() {
    let w = restricted(&[]);
    let first = w.tokens(&location(&callback_with(&w, &mut Jar::default(), |_| {})));
    assert!(w.bearer(first["access_token"].as_str().unwrap()).is_ok());

    let mut jar = Jar::default();
    let to_idp = location(&approve(&w, &mut jar));
    let mut c = claims();
    c["nonce"] = json!(query(&to_idp, "nonce").unwrap());
    w.token_answers_with(&sign(&c, key(), Some("key-1")), "openid profile todo_api:read", "second-refresh-token");
    let res = w.get(&format!("{ORIGIN}/callback?code=c2&state={}", query(&to_idp, "state").unwrap()), &mut jar);
    assert_eq!(res.status(), 302, "{}", body(&res));
    let second = w.tokens(&location(&res));

    assert_eq!(w.grants().len(), 1);
    assert!(w.bearer(first["access_token"].as_str().unwrap()).is_err(), "the older grant's token is dead");
    assert!(w.bearer(second["access_token"].as_str().unwrap()).is_ok());
    let revoked: Vec<String> = w
        .http
        .requests
        .borrow()
        .iter()
        .filter(|r| r.uri().to_string() == format!("{ISSUER}/revoke"))
        .map(|r| String::from_utf8(r.body().clone()).unwrap())
        .collect();
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert!(revoked[0].contains("token=pingone-refresh-token"), "{}", revoked[0]);
}

#[test]
fn an_approved_browser_skips_consent_until_cookies_are_cleared() {
    let w = World::new();
    let mut jar = Jar::default();
    callback_with(&w, &mut jar, |_| {});
    let res = w.get(&w.authorize_url("second"), &mut jar);
    assert_eq!(res.status(), 302);
    assert!(location(&res).as_str().starts_with(&format!("{ISSUER}/authorize?")));
    assert!(jar.0.contains_key(STATE_COOKIE));

    // Another client is not covered by this approval.
    let other = w.register("Other", &[CLIENT_REDIRECT]);
    let res = w.get(&authorize_url_for(&other, "x"), &mut jar);
    assert_eq!(res.status(), 200);

    let res = w.get(&w.authorize_url("third"), &mut Jar::default());
    assert_eq!(res.status(), 200, "a browser without cookies sees consent again");
}

#[test]
fn tampered_foreign_or_old_format_approval_cookies_bring_consent_back() {
    let w = World::new();
    let scope = vec!["todo_api:read".to_owned()];
    let mine = cookies::Approval::new(&w.client_id, CLIENT_REDIRECT, &scope);
    let forged = cookies::approve(vec![], mine.clone(), b"some-other-key-some-other-key-1234", NOW).unwrap();
    let mut jar = Jar::default();
    jar.0.insert(APPROVED_COOKIE.into(), forged);
    assert_eq!(w.get(&w.authorize_url("s"), &mut jar).status(), 200);

    let genuine = cookies::approve(
        vec![],
        cookies::Approval::new(&w.register("Other", &[CLIENT_REDIRECT]), CLIENT_REDIRECT, &scope),
        COOKIE_KEY.as_bytes(),
        NOW,
    )
    .unwrap();
    let (_, sig) = genuine.split_once('.').unwrap();
    let payload = b64url(serde_json::to_vec(&json!({"v": 2, "a": [mine], "exp": 9_999_999_999u64})).unwrap());
    let mut jar = Jar::default();
    jar.0.insert(APPROVED_COOKIE.into(), format!("{payload}.{sig}"));
    assert_eq!(w.get(&w.authorize_url("s"), &mut jar).status(), 200);

    // A genuine cookie of the old format (a list of client ids) is no approval, and no error.
    let payload = b64url(json!({"c": [w.client_id], "exp": 9_999_999_999u64}).to_string());
    let sig = {
        use hmac::{Hmac, Mac};
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(COOKIE_KEY.as_bytes()).unwrap();
        m.update(payload.as_bytes());
        b64url(m.finalize().into_bytes())
    };
    let mut jar = Jar::default();
    jar.0.insert(APPROVED_COOKIE.into(), format!("{payload}.{sig}"));
    let res = w.get(&w.authorize_url("s"), &mut jar);
    assert_eq!(res.status(), 200, "{}", body(&res));
    assert!(body(&res).contains("value=\"approve\""));
}

#[test]
fn an_approval_is_bound_to_the_redirect_uri_and_the_scopes() {
    let other_redirect = "http://127.0.0.1:33418/other-callback";
    let w = World::build("600", &[CLIENT_REDIRECT, other_redirect]);
    let mut jar = Jar::default();
    // Approves todo_api:read for CLIENT_REDIRECT.
    assert_eq!(approve(&w, &mut jar).status(), 302);
    let silent = |url: &str, jar: &mut Jar| {
        let res = w.get(url, jar);
        assert!(matches!(res.status().as_u16(), 200 | 302), "{}", body(&res));
        res.status() == 302
    };
    assert!(silent(&w.authorize_url("same"), &mut jar), "the same request skips consent");
    let read_write =
        w.authorize_url("wider").replace("scope=todo_api%3Aread", "scope=todo_api%3Aread%20todo_api%3Awrite");
    assert!(!silent(&read_write, &mut jar), "more scopes than approved ask again");
    let elsewhere = w.authorize_url("elsewhere").replace(&urlencode(CLIENT_REDIRECT), &urlencode(other_redirect));
    assert!(!silent(&elsewhere, &mut jar), "another redirect URI asks again");

    // Approving read+write covers read alone and read+write, still only for that redirect.
    let res = w.get(&read_write, &mut jar);
    let (pending, csrf) = form_fields(&body(&res));
    assert_eq!(w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "approve")], &mut jar).status(), 302);
    assert!(silent(&read_write, &mut jar));
    assert!(silent(&w.authorize_url("narrower"), &mut jar));
    assert!(!silent(&elsewhere, &mut jar));
}

/// Shows the consent page for `url` and approves it; the redirect to PingOne.
fn consent_to(w: &World, url: &str, jar: &mut Jar) -> Url {
    let res = w.get(url, jar);
    assert_eq!(res.status(), 200, "{}", body(&res));
    let (pending, csrf) = form_fields(&body(&res));
    let res = w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "approve")], jar);
    assert_eq!(res.status(), 302, "{}", body(&res));
    location(&res)
}

/// PingOne signs the user in, granting `scope`; the worker's answer to the callback.
fn pingone_returns(w: &World, to_idp: &Url, scope: &str, jar: &mut Jar) -> http::Response<Vec<u8>> {
    let mut c = claims();
    c["nonce"] = json!(query(to_idp, "nonce").unwrap());
    w.token_answers_with(&sign(&c, key(), Some("key-1")), scope, "pingone-refresh-token");
    w.get(&format!("{ORIGIN}/callback?code=the-code&state={}", query(to_idp, "state").unwrap()), jar)
}

/// Scopes go through the authorization server's rules before anyone is asked:
/// one it does not offer is dropped, none at all means all it offers. PingOne
/// is asked for exactly those API scopes, and what PingOne grants bounds the grant.
#[test]
fn requested_scopes_are_the_servers_and_bounded_by_pingone() {
    let w = World::new();
    let mut jar = Jar::default();
    let unknown = w.authorize_url("s").replace("scope=todo_api%3Aread", "scope=todo_api%3Aread%20admin%3Aall");
    let page = body(&w.get(&unknown, &mut jar.clone()));
    assert!(!page.contains("admin:all"), "{page}");
    let to_idp = consent_to(&w, &unknown, &mut jar);
    assert_eq!(query(&to_idp, "scope").as_deref(), Some("openid profile todo_api:read"));
    let res = pingone_returns(&w, &to_idp, "openid profile todo_api:read", &mut jar);
    assert_eq!(w.tokens(&location(&res))["scope"], "todo_api:read");

    // No scope: all the server offers, and PingOne is asked for all of it.
    let all = w.authorize_url("s").replace("&scope=todo_api%3Aread", "");
    let mut jar = Jar::default();
    let to_idp = consent_to(&w, &all, &mut jar);
    assert_eq!(query(&to_idp, "scope").as_deref(), Some("openid profile todo_api:read todo_api:write"));
    let res = pingone_returns(&w, &to_idp, "openid profile todo_api:read todo_api:write", &mut jar);
    assert_eq!(w.tokens(&location(&res))["scope"], "todo_api:read todo_api:write");

    // PingOne granting less: the MCP client gets no more than PingOne granted.
    let mut jar = Jar::default();
    let to_idp = consent_to(&w, &all, &mut jar);
    let res = pingone_returns(&w, &to_idp, "openid profile todo_api:read", &mut jar);
    let tokens = w.tokens(&location(&res));
    assert_eq!(tokens["scope"], "todo_api:read");
    let ctx = w.bearer(tokens["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(ctx.scopes, ["todo_api:read"]);
}

/// A native client listening on loopback may come back on any port (RFC 8252
/// §7.3), never on another path or host. An approval covers only the exact
/// redirect URI it was given for, so another port asks again.
#[test]
fn a_loopback_client_may_come_back_on_another_port() {
    let w = World::new();
    let mut jar = Jar::default();
    assert_eq!(callback_with(&w, &mut jar, |_| {}).status(), 302);
    let port = "http://127.0.0.1:50123/callback";
    let url = w.authorize_url("p").replace(&urlencode(CLIENT_REDIRECT), &urlencode(port));
    let res = w.get(&url, &mut jar.clone());
    assert_eq!(res.status(), 200, "consent again: {}", body(&res));
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("http://127.0.0.1:50123"), "Cancel may go back to that port: {csp}");
    let to_idp = consent_to(&w, &url, &mut jar);
    let res = pingone_returns(&w, &to_idp, "openid profile todo_api:read", &mut jar);
    assert_eq!(res.status(), 302, "{}", body(&res));
    let back = location(&res);
    assert!(back.as_str().starts_with(port), "{back}");
    assert_eq!(query(&back, "state").as_deref(), Some("p"));
    assert_eq!(w.tokens(&back)["scope"], "todo_api:read");

    for bad in ["http://127.0.0.1:50123/other", "http://localhost:33418/callback", "https://127.0.0.1:33418/callback"] {
        let res = w.get(&w.authorize_url("p").replace(&urlencode(CLIENT_REDIRECT), &urlencode(bad)), &mut jar.clone());
        assert_eq!(res.status(), 400, "{bad}");
        assert!(res.headers().get("location").is_none());
        assert!(body(&res).contains("Invalid redirect URI"), "{bad}");
    }
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
    assert!(w.grants().is_empty());
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
    w.tokens(&location(&res));
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
    assert_eq!(w.grants().len(), 1);

    // By username, ignoring case; either list admits.
    let w = restricted(&[("ALLOWED_USERS", "bob, ALICE"), ("ALLOWED_GROUPS", "admins")]);
    assert_eq!(callback_with(&w, &mut Jar::default(), |_| {}).status(), 302);
    let w = restricted(&[("ALLOWED_USERS", "bob")]);
    assert_eq!(callback_with(&w, &mut Jar::default(), |_| {}).status(), 403);
    // By PingOne user id (a UUID entry is a sub, matched exactly).
    let id = "0f6b1a2c-3d4e-4f50-8a6b-7c8d9e0f1a2b";
    let w = restricted(&[("ALLOWED_USERS", id)]);
    w.http.json(&format!("{ISSUER}/userinfo"), 200, json!({"sub": id, "preferred_username": "alice"}));
    assert_eq!(callback_with(&w, &mut Jar::default(), |c| c["sub"] = json!(id)).status(), 302, "by sub");
    // An entry that is not in PingOne's id form is a username, never a sub.
    let w = restricted(&[("ALLOWED_USERS", "user-1")]);
    assert_eq!(callback_with(&w, &mut Jar::default(), |_| {}).status(), 403, "user-1 is a username");
    // An address matches only a verified email, never a username spelled like it.
    let w = restricted(&[("ALLOWED_USERS", "alice@example.com")]);
    w.http.json(
        &format!("{ISSUER}/userinfo"),
        200,
        json!({"sub": "user-1", "preferred_username": "alice@example.com", "email": "alice@example.com"}),
    );
    assert_eq!(callback_with(&w, &mut Jar::default(), |_| {}).status(), 403, "email_verified missing");
    w.http.json(
        &format!("{ISSUER}/userinfo"),
        200,
        json!({"sub": "user-1", "email": "alice@example.com", "email_verified": true}),
    );
    assert_eq!(callback_with(&w, &mut Jar::default(), |_| {}).status(), 302, "verified email");
}

#[test]
fn cancel_returns_access_denied_with_state_and_iss() {
    let w = World::new();
    let mut jar = Jar::default();
    let res = w.get(&w.authorize_url("client-state"), &mut jar);
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
    let (pending, csrf) = form_fields(&body(&w.get(&w.authorize_url("s"), &mut jar)));

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
    let (victim_pending, victim_csrf) = form_fields(&body(&w.get(&w.authorize_url("v"), &mut victim)));
    let mut attacker = Jar::default();
    let (_, attacker_csrf) = form_fields(&body(&w.get(&w.authorize_url("a"), &mut attacker)));
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
    let (pending, csrf) = form_fields(&body(&w.get(&w.authorize_url("s"), &mut jar)));
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
    let (pending, csrf) = form_fields(&body(&w.get(&w.authorize_url("s"), &mut jar)));
    // The client's registration changed in the meantime: that redirect URI is gone.
    w.edit_client(&w.client_id, |c| c["redirectUris"] = json!(["https://other.example/cb"]));
    let res = w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "approve")], &mut jar);
    assert_eq!(res.status(), 400);
    assert!(body(&res).contains("Invalid redirect URI"));
    assert!(res.headers().get("location").is_none());

    // Or the registration expired.
    w.edit_client(&w.client_id, |c| c["redirectUris"] = json!([CLIENT_REDIRECT]));
    let mut jar = Jar::default();
    let (pending, csrf) = form_fields(&body(&w.get(&w.authorize_url("s"), &mut jar)));
    w.store.remove(&client_key(&w.client_id));
    let res = w.post(&[("pending", &pending), ("csrf_token", &csrf), ("action", "approve")], &mut jar);
    assert_eq!(res.status(), 400);
    assert!(body(&res).contains("Invalid client_id"));
    assert!(w.grants().is_empty());
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
    let state = approve_and_answer(&w, &mut jar, |_| {});
    let url = format!("{ORIGIN}/callback?code=the-code&state={state}");
    let saved = jar.clone();
    assert_eq!(w.get(&url, &mut jar).status(), 302);
    assert_eq!(w.get(&url, &mut saved.clone()).status(), 400);
    assert_eq!(w.grants().len(), 1);
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
    assert!(w.grants().is_empty());
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
        assert!(w.grants().is_empty());
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
    assert!(w.grants().is_empty());
}

#[test]
fn unreachable_pingone_gives_a_clear_502() {
    let w = World::new();
    w.http.fail(&format!("{ISSUER}/.well-known/openid-configuration"), OutboundError::Timeout);
    let res = w.get(&w.authorize_url("s"), &mut Jar::default());
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
    let res = w.get(&w.authorize_url("s").replace(&w.client_id, "nobody"), &mut Jar::default());
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(body(&res).contains("Invalid client_id"));
    // Programs asking for JSON get OAuth JSON.
    let json_get = |url: String| {
        let req = http::Request::get(url).header("accept", "application/json").body(Vec::new()).unwrap();
        w.send(req, &mut Jar::default())
    };
    let res = json_get(w.authorize_url("s").replace(&w.client_id, "nobody"));
    assert_eq!(res.status(), 400);
    let v: Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(v["error"], "invalid_request");

    // Errors after the client and its redirect URI checked out: still shown here
    // (the person decided nothing), naming the client, with the way back to it.
    let plain = w.authorize_url("s").replace("code_challenge_method=S256", "code_challenge_method=plain");
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
    assert_eq!(v["error"], "invalid_request");
    assert!(v["error_description"].as_str().unwrap().contains("PKCE"), "{v}");
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
    // Registration accepts it (it is printable text); the page must escape it.
    let hostile = w.register("<script>alert(1)</script>", &[CLIENT_REDIRECT]);
    let res = w.get(&authorize_url_for(&hostile, "s"), &mut Jar::default());
    assert_eq!(res.status(), 200);
    let html = body(&res);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>"));
}

/// Sign-in keeps the validated request and validates it again on Approve from
/// the URL `authz::authorize_url` rebuilds: the authorization server must read
/// back exactly the request it validated, every field sign-in relies on.
#[test]
fn a_stored_request_rebuilds_to_the_same_request() {
    let w = World::new();
    let hooks = w.hooks();
    let auth: &dyn AuthServer = &w.provider(&hooks);
    let parse = |url: &Url| block_on(auth.parse_auth_request(url));
    let state = "st &=?#+%é";
    let urls = [
        w.authorize_url("st"),
        // Two resources, both scopes, a state needing escapes.
        format!(
            "{}&resource={ORIGIN}",
            authorize_url_for(&w.client_id, &urlencode(state))
                .replace("todo_api%3Aread", "todo_api%3Aread+todo_api%3Awrite")
        ),
        // No resource (the canonical one is filled in), no scope (all of ours).
        w.authorize_url("st").replace(&format!("&resource={ORIGIN}/mcp"), "").replace("&scope=todo_api%3Aread", ""),
    ];
    for url in urls {
        let req = parse(&Url::parse(&url).unwrap()).unwrap_or_else(|e| panic!("{url}: {e:?}"));
        let again = super::authz::authorize_url(ORIGIN, &req).unwrap();
        assert_eq!(parse(&again).unwrap(), req, "{again}");
    }
    let two =
        parse(&Url::parse(&format!("{}&resource={ORIGIN}", w.authorize_url(&urlencode(state)))).unwrap()).unwrap();
    assert_eq!(two.resource, [format!("{ORIGIN}/mcp"), ORIGIN.to_owned()]);
    assert_eq!(two.state, state);
    assert_eq!(two.code_challenge.as_deref(), Some(pkce_challenge().as_str()));
    let bare = parse(&Url::parse(&w.authorize_url("st").replace(&format!("&resource={ORIGIN}/mcp"), "")).unwrap());
    assert_eq!(bare.unwrap().resource, [format!("{ORIGIN}/mcp")]);
}

/// A grant of the original TypeScript worker: PingOne token in `tokenSet`, no
/// PingOne refresh token. Its MCP tokens live as long as that token, then the
/// grant ends (the user signs in again) — PingOne is never called.
#[test]
fn grants_of_the_original_worker_live_as_long_as_their_pingone_token() {
    use crate::oauth::{Exchange, ExchangeError, GrantHooks, GrantType};
    let w = World::new();
    let hooks = w.hooks();
    let original = |exp: u64| {
        let jwt = format!("{}.{}.sig", b64url(r#"{"alg":"RS256"}"#), b64url(format!(r#"{{"exp":{exp}}}"#)));
        json!({"sub": "user-1", "preferred_username": "alice",
               "tokenSet": {"access_token": jwt, "token_type": "Bearer", "expires_in": 3600, "scope": "openid todo_api:read"}})
    };
    let scope = vec!["todo_api:read".to_owned()];
    let run = |grant_type, props: &Value| {
        block_on(hooks.exchange(Exchange {
            grant_type,
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
    let refresh = |props: &Value| run(GrantType::RefreshToken, props);
    // An RFC 8693 exchange (OAUTH_TOKEN_EXCHANGE) never calls PingOne, even with a PingOne
    // token about to end: it is capped at that token's life and the grant is not touched.
    let exchange = |props: &Value| run(GrantType::TokenExchange, props);
    let xchg = exchange(&original(NOW + 90)).expect("an exchange never ends the grant");
    assert_eq!((xchg.access_token_ttl, xchg.props, xchg.metadata), (Some(90), None, None));
    assert_eq!(exchange(&original(NOW - 1)).unwrap().access_token_ttl, Some(0), "too short: refused by the crate");
    let live = refresh(&original(NOW + 600)).expect("a live PingOne token keeps the grant");
    assert_eq!(live.access_token_ttl, Some(600), "capped at the PingOne token's life");
    assert!(matches!(refresh(&original(NOW - 1)), Err(ExchangeError::GrantDead(_))));
    assert!(w.http.requests.borrow().is_empty(), "nothing to refresh PingOne with");
}

/// The PingOne refresh token's seal is bound to its grant (user and grant id
/// as associated data): sealed for the user at sign-in, bound to the grant
/// at the code exchange, and opened for no other grant or user; seals from
/// before the binding still open.
#[test]
fn the_sealed_pingone_refresh_token_opens_only_for_its_grant() {
    use super::upstream::{open, seal, seal_unbound, SEALED_FIELD};
    let w = World::new();
    let back = location(&callback_with(&w, &mut Jar::default(), |_| {}));
    let at_sign_in = w.grants()[0]["metadata"][SEALED_FIELD].as_str().unwrap().to_owned();
    assert_eq!(open(&w.settings, &at_sign_in, "user-1", "").as_deref(), Some("pingone-refresh-token"));
    assert_eq!(open(&w.settings, &at_sign_in, "user-2", ""), None, "bound to the user from sign-in on");
    w.tokens(&back);
    let grant = &w.grants()[0];
    let id = grant["id"].as_str().unwrap();
    let sealed = grant["metadata"][SEALED_FIELD].as_str().unwrap();
    assert_ne!(sealed, at_sign_in, "sealed again at the code exchange");
    assert_eq!(open(&w.settings, sealed, "user-1", id).as_deref(), Some("pingone-refresh-token"));
    assert_eq!(open(&w.settings, sealed, "user-1", "another-grant"), None, "another grant of the same user");
    assert_eq!(open(&w.settings, sealed, "user-2", id), None, "another user");
    assert_eq!(open(&w.settings, sealed, "user-1", ""), None, "no longer a sign-in seal");
    // A seal from before the binding opens for any grant (and is bound at the next PingOne refresh).
    let old = seal_unbound(&w.settings, "old-refresh-token");
    assert_eq!(open(&w.settings, &old, "user-1", id).as_deref(), Some("old-refresh-token"));
    assert_eq!(open(&w.settings, &seal(&w.settings, "rt", "u", "g"), "u", "g").as_deref(), Some("rt"));
    assert_eq!(open(&w.settings, "v2.not-base64!", "u", "g"), None);
}

/// A PingOne refresh through the hook: a seal copied from another grant does
/// not open (PingOne is not called with it), an old unbound seal works and
/// is bound to the grant, and with the access policy open a refreshed token
/// whose userinfo names another user ends the grant (and is revoked).
#[test]
fn a_pingone_refresh_uses_only_the_grants_own_seal_and_the_grants_own_user() {
    use super::upstream::{open, seal, seal_unbound, SEALED_FIELD};
    use crate::oauth::{Exchange, ExchangeError, GrantHooks, GrantType};
    let mut w = World::new();
    w.settings = settings_with(&[]);
    let mut d = discovery_json();
    d["revocation_endpoint"] = json!(format!("{ISSUER}/revoke"));
    w.http.json(&format!("{ISSUER}/.well-known/openid-configuration"), 200, d);
    w.http.json(&format!("{ISSUER}/revoke"), 200, json!({}));
    w.http.json(
        &format!("{ISSUER}/token"),
        200,
        json!({"access_token": "fresh-access-token", "token_type": "Bearer", "expires_in": 3600,
               "refresh_token": "rotated-refresh-token", "scope": "openid profile todo_api:read"}),
    );
    assert!(w.settings.access.is_open());
    let hooks = w.hooks();
    let scope = vec!["todo_api:read".to_owned()];
    // The PingOne token has expired: the refresh must ask PingOne.
    let props = json!({"subjectToken": "old", "subjectTokenExpiresAt": NOW - 1, "claims": {"sub": "user-1"}});
    let refresh = |metadata: &Value| {
        block_on(hooks.exchange(Exchange {
            grant_type: GrantType::RefreshToken,
            client_id: "client-1",
            user_id: "user-1",
            grant_id: "grant-1",
            scope: &scope,
            token_scope: &scope,
            props: &props,
            metadata,
            access_token_ttl: 3600,
            now: NOW,
        }))
    };
    let token_calls = || w.http.calls_to(&format!("{ISSUER}/token"));

    let foreign = json!({ SEALED_FIELD: seal(&w.settings, "someone-elses-token", "user-1", "grant-2") });
    assert!(matches!(refresh(&foreign), Err(ExchangeError::GrantDead(_))));
    assert_eq!(token_calls(), 0, "PingOne was never sent a token sealed for another grant");

    let old = json!({ SEALED_FIELD: seal_unbound(&w.settings, "old-refresh-token") });
    let ok = refresh(&old).expect("an unbound seal from before still refreshes");
    assert_eq!(token_calls(), 1);
    let sealed = ok.metadata.unwrap()[SEALED_FIELD].as_str().unwrap().to_owned();
    assert_eq!(open(&w.settings, &sealed, "user-1", "grant-1").as_deref(), Some("rotated-refresh-token"));
    assert_eq!(open(&w.settings, &sealed, "user-1", "grant-2"), None, "now bound to the grant");

    // Open policy: PingOne's token for someone else never becomes this user's.
    w.http.json(&format!("{ISSUER}/userinfo"), 200, json!({"sub": "someone-else", "preferred_username": "eve"}));
    let own = json!({ SEALED_FIELD: seal(&w.settings, "own-refresh-token", "user-1", "grant-1") });
    assert!(matches!(refresh(&own), Err(ExchangeError::GrantDead(_))));
    assert_eq!(token_calls(), 2);
    assert_eq!(w.http.calls_to(&format!("{ISSUER}/revoke")), 1, "its PingOne refresh token is revoked");
}

#[test]
fn a_narrowed_token_gets_a_pingone_token_of_its_own_scopes_and_the_whole_grant_gets_them_back() {
    use super::upstream::{seal, SEALED_FIELD};
    use crate::oauth::{Exchange, GrantHooks, GrantType};
    let w = World::new();
    let answer = |scope: Option<&str>| {
        let mut body =
            json!({"access_token": "fresh", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-2"});
        if let Some(s) = scope {
            body["scope"] = json!(s);
        }
        w.http.json(&format!("{ISSUER}/token"), 200, body);
    };
    let hooks = w.hooks();
    let both = vec!["todo_api:read".to_owned(), "todo_api:write".to_owned()];
    let read = vec!["todo_api:read".to_owned()];
    let metadata = json!({ SEALED_FIELD: seal(&w.settings, "rt-1", "user-1", "grant-1") });
    // A PingOne token still fresh for an hour, of both API scopes.
    let wide = json!({"subjectToken": "wide", "subjectTokenExpiresAt": NOW + 3600,
                      "scopes": ["openid", "profile", "todo_api:read", "todo_api:write"], "claims": {"sub": "user-1"}});
    let exchange = |grant_type, props: &Value, token_scope: &[String]| {
        block_on(hooks.exchange(Exchange {
            grant_type,
            client_id: "client-1",
            user_id: "user-1",
            grant_id: "grant-1",
            scope: &both,
            token_scope,
            props,
            metadata: &metadata,
            access_token_ttl: 600,
            now: NOW,
        }))
        .unwrap()
    };
    let last_scope = || {
        let reqs = w.http.requests.borrow();
        let body =
            String::from_utf8(reqs.iter().rev().find(|r| r.uri().path().ends_with("/token")).unwrap().body().clone())
                .unwrap();
        url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "scope").map(|(_, v)| v.into_owned())
    };
    let calls = || w.http.calls_to(&format!("{ISSUER}/token"));
    // The whole grant, PingOne token fresh: PingOne is not asked.
    assert!(exchange(GrantType::RefreshToken, &wide, &both).props.is_none());
    assert_eq!(calls(), 0);
    // Narrowed to read at a refresh: PingOne is asked for read only, though its token is fresh.
    answer(None);
    let narrowed = exchange(GrantType::RefreshToken, &wide, &read).props.unwrap();
    assert_eq!(calls(), 1);
    let asked = last_scope().unwrap();
    assert!(asked.contains("todo_api:read") && !asked.contains("todo_api:write"), "{asked}");
    assert_eq!(narrowed["subjectToken"], "fresh");
    assert_eq!(narrowed["scopes"], json!(asked.split(' ').collect::<Vec<_>>()), "PingOne left out scope: as asked");
    // Narrowed at the code exchange too.
    answer(Some("openid profile todo_api:read"));
    exchange(GrantType::AuthorizationCode, &wide, &read);
    assert_eq!(calls(), 2);
    assert!(!last_scope().unwrap().contains("todo_api:write"));
    // An RFC 8693 exchange cannot narrow the PingOne token (it writes no grant, and a PingOne
    // refresh would rotate the grant's refresh token): a narrower exchange is refused.
    let before = calls();
    let refused = block_on(hooks.exchange(Exchange {
        grant_type: GrantType::TokenExchange,
        client_id: "client-1",
        user_id: "user-1",
        grant_id: "grant-1",
        scope: &both,
        token_scope: &read,
        props: &wide,
        metadata: &metadata,
        access_token_ttl: 600,
        now: NOW,
    }));
    assert!(matches!(refused, Err(crate::oauth::ExchangeError::Refused(_))), "{refused:?}");
    assert_eq!(calls(), before);
    // The whole grant again after narrowing: PingOne is asked for both back.
    answer(Some("openid profile todo_api:read todo_api:write"));
    let widened = exchange(GrantType::RefreshToken, &narrowed, &both).props.unwrap();
    assert_eq!(calls(), 3);
    assert!(last_scope().unwrap().contains("todo_api:write"));
    assert_eq!(widened["scopes"], json!(["openid", "profile", "todo_api:read", "todo_api:write"]));
}

/// `POST /connections` with `form`, the jar's cookies and `origin`.
fn post_connections(w: &World, form: &[(&str, &str)], origin: Option<&str>, jar: &mut Jar) -> http::Response<Vec<u8>> {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let mut req = http::Request::post(format!("{ORIGIN}/connections"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", jar.header());
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    w.send(req.body(body.into_bytes()).unwrap(), jar)
}

fn revocations_at_pingone(w: &World) -> Vec<String> {
    let requests = w.http.requests.borrow();
    let revokes = requests.iter().filter(|r| r.uri().to_string() == format!("{ISSUER}/revoke"));
    revokes.map(|r| String::from_utf8(r.body().clone()).unwrap()).collect()
}

/// The connections page end to end over the real authorization server: its
/// own PingOne round trip through `/callback`, only the user's own grants,
/// and a revocation that needs the session's CSRF token, our Origin and one
/// of the user's grant ids, and ends the grant's tokens and its PingOne
/// refresh token.
#[test]
fn the_connections_page_lists_and_ends_only_the_signed_in_users_grants() {
    let w = restricted(&[]);
    let mcp = w.tokens(&location(&callback_with(&w, &mut Jar::default(), |_| {})));
    let own_grant = mcp["access_token"].as_str().unwrap().split(':').nth(1).unwrap().to_owned();
    // Someone else's grant, as the authorization server stores it.
    let other = json!({"id": "other-grant", "clientId": w.client_id, "userId": "user-2", "scope": [],
        "metadata": {}, "encryptedProps": "", "createdAt": NOW});
    block_on(w.store.put("grant:user-2:other-grant", &other.to_string(), None)).unwrap();

    // Not signed in: off to PingOne, asking for OpenID's scopes only, the state bound to this browser.
    let mut jar = Jar::default();
    let res = w.get(&format!("{ORIGIN}/connections"), &mut jar);
    assert_eq!(res.status(), 302, "{}", body(&res));
    let to_idp = location(&res);
    assert_eq!(query(&to_idp, "scope").as_deref(), Some("openid profile"));
    assert_eq!(query(&to_idp, "redirect_uri").as_deref(), Some(&*format!("{ORIGIN}/callback")));
    let state = query(&to_idp, "state").unwrap();
    assert_eq!(jar.0.get(super::connections::session::STATE_COOKIE), Some(&sha256_hex(&state)));
    let mut c = claims();
    c["nonce"] = json!(query(&to_idp, "nonce").unwrap());
    w.token_answers_with(&sign(&c, key(), Some("key-1")), "openid profile", "page-refresh-token");
    let callback = format!("{ORIGIN}/callback?code=page-code&state={state}");
    let mut replay = jar.clone();
    let res = w.get(&callback, &mut jar);
    assert_eq!(res.status(), 302, "{}", body(&res));
    assert_eq!(res.headers()["location"], "/connections");
    assert!(jar.0.contains_key(super::connections::session::SESSION_COOKIE));
    assert!(!jar.0.contains_key(super::connections::session::STATE_COOKIE));
    // The page keeps no PingOne token: the sign-in's refresh token is revoked at once.
    assert!(revocations_at_pingone(&w).iter().any(|r| r.contains("token=page-refresh-token")));
    assert_eq!(w.get(&callback, &mut replay).status(), 400, "the state is single-use");

    let res = w.get(&format!("{ORIGIN}/connections"), &mut jar);
    assert_eq!(res.status(), 200, "{}", body(&res));
    let page = body(&res);
    assert!(page.contains("Test client") && page.contains(&format!("value=\"{own_grant}\"")), "{page}");
    assert!(!page.contains("other-grant"));
    let csrf = {
        let marker = "name=\"csrf_token\" value=\"";
        let start = page.find(marker).unwrap() + marker.len();
        page[start..].split('"').next().unwrap().to_owned()
    };

    fn revoke<'a>(grant: &'a str, token: &'a str) -> [(&'a str, &'a str); 3] {
        [("action", "revoke"), ("grant", grant), ("csrf_token", token)]
    }
    let refusals = [
        (revoke(&own_grant, ""), Some(ORIGIN), 403),
        (revoke(&own_grant, "forged"), Some(ORIGIN), 403),
        (revoke(&own_grant, &csrf), Some("https://evil.example"), 403),
        (revoke(&own_grant, &csrf), None, 403),
        (revoke("other-grant", &csrf), Some(ORIGIN), 404),
        (revoke("", &csrf), Some(ORIGIN), 404),
    ];
    for (form, origin, status) in refusals {
        let res = post_connections(&w, &form, origin, &mut jar);
        assert_eq!(res.status(), status, "{form:?} from {origin:?}: {}", body(&res));
    }
    assert!(w.store.raw("grant:user-2:other-grant").is_some(), "the other user's grant is untouched");
    assert!(w.bearer(mcp["access_token"].as_str().unwrap()).is_ok());
    // Without the session cookie nothing is ended either.
    let res = post_connections(&w, &revoke(&own_grant, &csrf), Some(ORIGIN), &mut Jar::default());
    assert_eq!(res.status(), 401);

    let res = post_connections(&w, &revoke(&own_grant, &csrf), Some(ORIGIN), &mut jar);
    assert_eq!(res.status(), 303, "{}", body(&res));
    assert_eq!(res.headers()["location"], format!("/connections?ended={own_grant}").as_str());
    assert!(w.bearer(mcp["access_token"].as_str().unwrap()).is_err(), "the grant's tokens end with it");
    assert!(revocations_at_pingone(&w).iter().any(|r| r.contains("token=pingone-refresh-token")));
    let page = body(&w.get(&format!("{ORIGIN}/connections?ended={own_grant}"), &mut jar));
    assert!(page.contains("The connection was ended") && page.contains("No application is connected"), "{page}");
}

/// Holds what sign-in would complete and sends the browser elsewhere first.
struct Hold(std::cell::RefCell<Option<crate::oauth::CompleteAuthorization>>);

#[async_trait::async_trait(?Send)]
impl super::SignInExtension for Hold {
    async fn before_completion(&self, _origin: &str, c: crate::oauth::CompleteAuthorization) -> super::Detour {
        *self.0.borrow_mut() = Some(c);
        super::Detour::Respond(super::pages::redirect("https://downstream.example/authorize", &[]))
    }
}

#[test]
fn a_step_after_sign_in_holds_the_completion_until_the_application_completes_it() {
    let w = World::new();
    let mut jar = Jar::default();
    let state = approve_and_answer(&w, &mut jar, |_| {});
    let hooks = w.hooks();
    let provider = w.provider(&hooks);
    let hold = Hold(Default::default());
    let login = Login { extension: Some(&hold), ..w.login(&provider) };
    let req = http::Request::get(format!("{ORIGIN}/callback?code=the-code&state={state}"))
        .header("cookie", jar.header())
        .body(Vec::new())
        .unwrap();
    let res = block_on(login.handle(&req));
    // The application's answer, with sign-in's state cookie cleared; no code for the client yet.
    assert_eq!(location(&res).as_str(), "https://downstream.example/authorize");
    jar.store(&res);
    assert!(!jar.0.contains_key(STATE_COOKIE));
    let held = hold.0.borrow_mut().take().expect("the completion was handed over");
    assert_eq!(held.user_id, "user-1");
    assert_eq!(held.props["subjectToken"], "pingone-access-token");
    // The application completes it later: then the client gets its code.
    let to_client = block_on(provider.complete_authorization(ORIGIN, held)).unwrap();
    let to_client = Url::parse(&to_client).unwrap();
    assert!(to_client.as_str().starts_with(CLIENT_REDIRECT));
    assert_eq!(query(&to_client, "state").as_deref(), Some("client-state"));
    assert!(query(&to_client, "code").is_some());
}
