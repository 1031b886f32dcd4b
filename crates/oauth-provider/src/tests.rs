//! The authorization server natively, against the in-memory store: every
//! endpoint through [`Provider::handle`] (as the Worker calls it), sign-in's
//! API (`parse_auth_request`, `complete_authorization`) and bearer
//! validation. The submodules group the rules; this file holds the harness.

use super::authorize::{AuthRequest, AuthorizeError, CompleteAuthorization};
use super::bearer::{AuthContext, BearerError};
use super::config::Config;
use super::{GrantHooks, Provider};
use crate::crypto::{b64url, random_token, sha256};
use crate::store::{MemoryStore, MIN_TTL_SECS};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::executor::block_on;
use http::{HeaderMap, HeaderValue, Request, Response};
use serde_json::{json, Value};
use url::Url;

mod authorize;
mod bearer;
mod cimd;
mod client_assertion;
mod client_auth;
mod compat;
mod endpoints;
mod enterprise;
mod hooks;
mod lifecycle;
mod policy;
mod register;
mod resources;
mod revoke;
mod token;
mod token_cache;
mod token_exchange;

pub const ORIGIN: &str = "https://mcp.example.com";
pub const MCP: &str = "https://mcp.example.com/mcp";
pub const NOW: u64 = 1_750_000_000;
pub const REDIRECT: &str = "http://127.0.0.1:33418/callback";
pub const WEB_REDIRECT: &str = "https://app.example.com/oauth/callback";

/// A registered client as the tests use it.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: Option<String>,
    pub method: String,
    pub redirect: String,
}

/// A PKCE verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = random_token(64);
        let challenge = b64url(sha256(&verifier));
        Self { verifier, challenge }
    }
}

/// The store, the settings, a clock the test moves and the application's hooks.
pub struct World {
    pub store: std::rc::Rc<MemoryStore>,
    pub config: Config,
    pub hooks: Box<dyn GrantHooks>,
    /// The isolate's token cache, when a test gives it one.
    pub token_cache: Option<crate::TokenCache>,
    /// A strongly consistent single-use record, when a test gives it one.
    pub single_use: Option<Box<dyn crate::SingleUse>>,
}

pub fn json_of(res: &Response<Vec<u8>>) -> Value {
    serde_json::from_slice(res.body()).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(res.body())))
}

pub fn header<'a>(res: &'a Response<Vec<u8>>, name: &str) -> Option<&'a str> {
    res.headers().get(name).map(|v| v.to_str().unwrap())
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form(&[("x", s)])[2..].to_owned();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", enc(id), enc(secret))))
}

/// The query parameters of a redirect.
pub fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

/// A strongly consistent record shared by every "location" of a test.
#[derive(Clone, Default)]
pub struct SharedSingleUse(std::rc::Rc<std::cell::RefCell<Vec<(String, u64)>>>);

#[async_trait::async_trait(?Send)]
impl crate::SingleUse for SharedSingleUse {
    async fn first_use(&self, key: &str, expires_at: u64) -> Result<bool, crate::OAuthError> {
        let mut seen = self.0.borrow_mut();
        if seen.iter().any(|(k, _)| k == key) {
            return Ok(false);
        }
        seen.push((key.to_owned(), expires_at));
        Ok(true)
    }
}

impl World {
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        Self {
            store: std::rc::Rc::new(MemoryStore::new(NOW)),
            config,
            hooks: Box::new(super::hooks::NoHooks),
            token_cache: None,
            single_use: None,
        }
    }

    pub fn p(&self) -> Provider<'_> {
        let mut p = Provider::new(&*self.store, &self.config, self.store.now()).with_hooks(self.hooks.as_ref());
        if let Some(record) = &self.single_use {
            p = p.with_single_use(record.as_ref());
        }
        match &self.token_cache {
            Some(cache) => p.with_token_cache(cache),
            None => p,
        }
    }

    pub fn advance(&self, secs: u64) {
        self.store.set_now(self.store.now() + secs);
    }

    /// Any request through the router, as the Worker sends it.
    pub fn send(&self, req: Request<Vec<u8>>) -> Response<Vec<u8>> {
        block_on(self.p().handle(&req))
    }

    /// `POST <path>` with `body` and `headers` (content type included by the caller).
    pub fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Response<Vec<u8>> {
        let mut req = Request::post(format!("{ORIGIN}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(body.as_bytes().to_vec()).unwrap())
    }

    pub fn post_form(&self, path: &str, pairs: &[(&str, &str)], headers: &[(&str, &str)]) -> Response<Vec<u8>> {
        let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
        h.extend_from_slice(headers);
        self.post(path, &form(pairs), &h)
    }

    pub fn get(&self, path: &str) -> Response<Vec<u8>> {
        self.send(Request::get(format!("{ORIGIN}{path}")).body(Vec::new()).unwrap())
    }

    pub fn register(&self, doc: &Value) -> Response<Vec<u8>> {
        self.post("/register", &doc.to_string(), &[("content-type", "application/json")])
    }

    /// Registers a client with `token_endpoint_auth_method` = `method` (explicit).
    pub fn client_with(&self, method: &str, redirect: &str, extra: Value) -> Client {
        let mut doc = json!({
            "client_name": "Test client",
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": method,
        });
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        let res = self.register(&doc);
        assert_eq!(res.status(), 201, "{}", String::from_utf8_lossy(res.body()));
        let body = json_of(&res);
        Client {
            id: body["client_id"].as_str().unwrap().to_owned(),
            secret: body["client_secret"].as_str().map(str::to_owned),
            method: body["token_endpoint_auth_method"].as_str().unwrap().to_owned(),
            redirect: redirect.to_owned(),
        }
    }

    pub fn public_client(&self) -> Client {
        self.client_with("none", REDIRECT, json!({}))
    }

    pub fn confidential(&self, method: &str) -> Client {
        self.client_with(method, WEB_REDIRECT, json!({}))
    }

    /// An `/authorize` URL for `client` with PKCE and the given extra parameters.
    pub fn authorize_url(&self, client: &Client, pkce: Option<&Pkce>, extra: &[(&str, &str)]) -> Url {
        let mut url = Url::parse(&format!("{ORIGIN}/authorize")).unwrap();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", &client.id);
            q.append_pair("redirect_uri", &client.redirect);
            q.append_pair("state", "st-1");
            if let Some(p) = pkce {
                q.append_pair("code_challenge", &p.challenge);
                q.append_pair("code_challenge_method", "S256");
            }
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        url
    }

    pub fn parse(&self, url: &Url) -> Result<AuthRequest, AuthorizeError> {
        block_on(self.p().parse_auth_request(url))
    }

    /// What sign-in does once `user` signed in: complete with the request's scope.
    pub fn complete(&self, req: AuthRequest, user: &str, props: Value) -> Result<String, AuthorizeError> {
        let c = CompleteAuthorization {
            user_id: user.into(),
            metadata: json!({"label": user}),
            scope: req.scope.clone(),
            props,
            request: req,
            revoke_existing_grants: true,
        };
        block_on(self.p().complete_authorization(ORIGIN, c))
    }

    /// Authorizes `client` for `user` (PKCE S256) and returns the code and the verifier.
    pub fn code_for(&self, client: &Client, user: &str, extra: &[(&str, &str)]) -> (String, Pkce) {
        let pkce = Pkce::new();
        let req = self.parse(&self.authorize_url(client, Some(&pkce), extra)).expect("authorization request");
        let to = self.complete(req, user, json!({"user": user, "secret": "upstream-token"})).expect("complete");
        let code = query_of(&to).remove("code").expect("code in redirect");
        (code, pkce)
    }

    /// Client authentication for a token/revocation request, per the client's method.
    pub fn with_auth<'a>(&self, client: &'a Client, pairs: &mut Vec<(&'a str, String)>) -> Vec<(&'static str, String)> {
        match client.method.as_str() {
            "client_secret_basic" => vec![("authorization", basic(&client.id, client.secret.as_deref().unwrap()))],
            "client_secret_post" => {
                pairs.push(("client_id", client.id.clone()));
                pairs.push(("client_secret", client.secret.clone().unwrap()));
                vec![]
            }
            _ => {
                pairs.push(("client_id", client.id.clone()));
                vec![]
            }
        }
    }

    /// `POST /token` (or another form endpoint) as `client`, authenticated the registered way.
    pub fn form_as(&self, path: &str, client: &Client, params: &[(&str, &str)]) -> Response<Vec<u8>> {
        let mut pairs: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let headers = self.with_auth(client, &mut pairs);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post_form(path, &pairs, &headers)
    }

    pub fn token(&self, client: &Client, params: &[(&str, &str)]) -> Response<Vec<u8>> {
        self.form_as("/token", client, params)
    }

    pub fn exchange(&self, client: &Client, code: &str, pkce: &Pkce) -> Response<Vec<u8>> {
        self.token(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &client.redirect),
                ("code_verifier", &pkce.verifier),
            ],
        )
    }

    /// A full sign-in and code exchange; the token response.
    pub fn tokens(&self, client: &Client, user: &str) -> Value {
        let (code, pkce) = self.code_for(client, user, &[]);
        let res = self.exchange(client, &code, &pkce);
        assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
        json_of(&res)
    }

    pub fn refresh(&self, client: &Client, refresh_token: &str, extra: &[(&str, &str)]) -> Response<Vec<u8>> {
        let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        params.extend_from_slice(extra);
        self.token(client, &params)
    }

    /// Bearer validation of `token` for a request to `url`.
    pub fn bearer_at(&self, token: Option<&str>, url: &str) -> Result<AuthContext, BearerError> {
        let mut headers = HeaderMap::new();
        if let Some(t) = token {
            headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {t}")).unwrap());
        }
        block_on(self.p().authenticate(&headers, &Url::parse(url).unwrap()))
    }

    pub fn bearer(&self, token: &str) -> Result<AuthContext, BearerError> {
        self.bearer_at(Some(token), MCP)
    }

    /// Keys in the store starting with `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.store.keys().into_iter().filter(|k| k.starts_with(prefix)).collect()
    }

    /// The stored grant of a token or code string.
    pub fn grant_of(&self, token: &str) -> Option<Value> {
        let mut it = token.split(':');
        let (u, g) = (it.next().unwrap(), it.next().unwrap());
        self.store.raw(&format!("grant:{u}:{g}")).map(|raw| serde_json::from_str(&raw).unwrap())
    }
}

pub fn assert_error(res: &Response<Vec<u8>>, status: u16, error: &str) {
    let body = String::from_utf8_lossy(res.body()).into_owned();
    assert_eq!(res.status(), status, "{body}");
    assert_eq!(json_of(res)["error"], error, "{body}");
    assert_eq!(header(res, "cache-control"), Some("no-store"), "errors are never cached");
}

/// Every test ends by checking that no expiry under KV's minimum was asked for.
pub fn assert_ttls_ok(w: &World) {
    let ttls = w.store.ttls_requested.borrow();
    assert!(!ttls.is_empty());
    assert!(ttls.iter().all(|t| *t >= MIN_TTL_SECS), "a KV expiry under {MIN_TTL_SECS} s was requested: {ttls:?}");
}

/// The world's store with the two failures the in-memory store cannot
/// produce by itself: key listings under `fail_listing` that fail after the
/// first, and reads under `hold_reads` that take the stored value at once but
/// answer only when `open` is set (a read in flight while another request
/// writes).
pub struct Meddled<'a> {
    inner: &'a MemoryStore,
    fail_listing: Option<&'static str>,
    hold_reads: Option<&'static str>,
    pub open: std::cell::Cell<bool>,
    listings: std::cell::Cell<u32>,
}

impl<'a> Meddled<'a> {
    pub fn new(inner: &'a MemoryStore) -> Self {
        Self { inner, fail_listing: None, hold_reads: None, open: Default::default(), listings: Default::default() }
    }

    pub fn failing_listings_of(self, prefix: &'static str) -> Self {
        Self { fail_listing: Some(prefix), ..self }
    }

    pub fn holding_reads_of(self, prefix: &'static str) -> Self {
        Self { hold_reads: Some(prefix), ..self }
    }
}

#[async_trait::async_trait(?Send)]
impl crate::store::KvStore for Meddled<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, crate::store::StoreError> {
        let value = self.inner.get(key).await;
        if self.hold_reads.is_some_and(|p| key.starts_with(p)) {
            futures::future::poll_fn(|cx| {
                if self.open.get() {
                    return std::task::Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            })
            .await;
        }
        value
    }
    async fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), crate::store::StoreError> {
        self.inner.put(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<(), crate::store::StoreError> {
        self.inner.delete(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
    ) -> Result<crate::store::KeyPage, crate::store::StoreError> {
        self.inner.list(prefix, cursor).await
    }
    async fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<crate::store::ListedPage, crate::store::StoreError> {
        if self.fail_listing.is_some_and(|p| prefix.starts_with(p)) {
            self.listings.set(self.listings.get() + 1);
            if self.listings.get() > 1 {
                return Err(crate::store::StoreError::Unavailable("list failed".into()));
            }
        }
        self.inner.list_keys(prefix, cursor, limit).await
    }
}

/// The world's store with something else happening between two of a
/// request's store operations: `meddle` runs once, right after the
/// operation numbered `after` (from 0) completed. Driving `after` over every
/// operation of a request plays every interleaving of that request with
/// another one (a revocation, say) that KV could produce, deterministically.
pub struct Interleaved<'a> {
    inner: &'a dyn crate::store::KvStore,
    after: usize,
    ops: std::cell::Cell<usize>,
    meddle: std::cell::RefCell<Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>>>,
}

impl<'a> Interleaved<'a> {
    pub fn new(
        inner: &'a dyn crate::store::KvStore,
        after: usize,
        meddle: impl std::future::Future<Output = ()> + 'a,
    ) -> Self {
        Self { inner, after, ops: Default::default(), meddle: std::cell::RefCell::new(Some(Box::pin(meddle))) }
    }

    /// Whether the meddling ran (the request had more than `after` operations).
    pub fn meddled(&self) -> bool {
        self.meddle.borrow().is_none()
    }

    async fn step(&self) {
        let n = self.ops.get();
        self.ops.set(n + 1);
        if n == self.after {
            let meddle = self.meddle.borrow_mut().take();
            if let Some(f) = meddle {
                f.await;
            }
        }
    }
}

#[async_trait::async_trait(?Send)]
impl crate::store::KvStore for Interleaved<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, crate::store::StoreError> {
        let r = self.inner.get(key).await;
        self.step().await;
        r
    }
    async fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), crate::store::StoreError> {
        let r = self.inner.put(key, value, ttl).await;
        self.step().await;
        r
    }
    async fn put_with_metadata(
        &self,
        key: &str,
        value: &str,
        ttl: Option<u64>,
        metadata: Option<&Value>,
    ) -> Result<(), crate::store::StoreError> {
        let r = self.inner.put_with_metadata(key, value, ttl, metadata).await;
        self.step().await;
        r
    }
    async fn delete(&self, key: &str) -> Result<(), crate::store::StoreError> {
        let r = self.inner.delete(key).await;
        self.step().await;
        r
    }
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
    ) -> Result<crate::store::KeyPage, crate::store::StoreError> {
        let r = self.inner.list(prefix, cursor).await;
        self.step().await;
        r
    }
    async fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<crate::store::ListedPage, crate::store::StoreError> {
        let r = self.inner.list_keys(prefix, cursor, limit).await;
        self.step().await;
        r
    }
}
