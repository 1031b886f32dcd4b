//! Downstreams with their own OAuth (`DOWNSTREAMS` entries with `auth:
//! "oauth"`): the Workers glue that ties sign-in, the token vault and the
//! gateway together.
//!
//! - After PingOne sign-in, when the MCP client is being authorized for such a
//!   downstream and the user's vault holds no usable token for it, the browser
//!   goes to the downstream's consent first ([`Connect`], login's
//!   `SignInExtension`), comes back to `/connect/callback`, the code is exchanged
//!   and stored, and only then is the MCP authorization completed. Every MCP
//!   client supports the browser authorization; URL-mode elicitation is not
//!   broadly supported; and no grant is issued for a downstream the user
//!   cannot use.
//! - The gateway asks the vault for the user's token on every call
//!   ([`token_for`]); a lost token ends the MCP grant so the client
//!   re-authorizes, which runs the connect step again.
//!
//! Discovery (the downstream's 401, its metadata, its authorization server's)
//! is kept per isolate for a few minutes; a dynamic registration once per
//! authorization server in KV.

use crate::login::connections::page::Section;
use crate::login::pages::{redirect, Failure, ADVICE_RESTART};
use crate::login::{Detour, SignInExtension};
use crate::oauth::{AuthRequest, CompleteAuthorization, Provider};
use crate::outbound::{HttpClient, OutboundError};
use crate::platform::fetch::{read_whole, FetchClient};
use crate::platform::http::to_worker;
use crate::platform::kv::Kv;
use crate::proxy::connect::{self, AsMetadata, Failed, Identity, Probe};
use crate::proxy::downstreams::{Auth, Named};
use crate::store::KvStore;
use crate::util::crypto::{b64url, constant_time_eq, random_token, sha256, sha256_hex};
use crate::util::time::now_secs;
use crate::vault::model::{AuthMethod, Client, Secret};
use crate::vault::oauth::{code_request, tokens_from, TokenError};
use crate::vault::object::{self as vault, Lookup};
use crate::vault::seal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use worker::Env;

/// Seconds a discovery is kept per isolate.
const DISCOVERY_TTL_SECS: u64 = 300;

fn log(line: &str) {
    worker::console_log!("connect: {line}");
}

/// What discovery found for a downstream.
#[derive(Debug, Clone)]
pub enum Found {
    /// It answered without asking for authorization: used with no token.
    Public,
    /// Its resource and authorization server.
    Protected { resource: String, meta: Rc<AsMetadata> },
}

thread_local! {
    static DISCOVERED: RefCell<HashMap<String, (Found, u64)>> = RefCell::new(HashMap::new());
}

/// Sends `req` to the downstream itself (through its service binding when it has one).
async fn to_downstream(
    env: &Env,
    named: &Named,
    req: http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>, OutboundError> {
    if !named.downstream.bound {
        return FetchClient.send(req).await;
    }
    let unreachable = |e: worker::Error| OutboundError::Unreachable(e.to_string());
    let fetcher = env.service(&named.downstream.binding).map_err(unreachable)?;
    let res = fetcher.fetch_request(to_worker(&req).map_err(unreachable)?).await.map_err(unreachable)?;
    read_whole(res, unreachable).await
}

async fn get_json(url: &str) -> Option<Vec<u8>> {
    let req = crate::outbound::get_json_request(url, None).ok()?;
    let res = FetchClient.send(req).await.ok()?;
    res.status().is_success().then(|| res.into_body())
}

/// The downstream's authorization needs (cached per isolate).
pub async fn discover(env: &Env, named: &Named) -> Result<Found, Failed> {
    let now = now_secs();
    let name = &named.entry.name;
    if let Some((found, at)) = DISCOVERED.with(|d| d.borrow().get(name).cloned()) {
        if now < at + DISCOVERY_TTL_SECS {
            return Ok(found);
        }
    }
    let url = &named.entry.url;
    let probe = to_downstream(env, named, connect::probe_request(url))
        .await
        .map_err(|e| Failed(format!("the downstream could not be reached ({e})")))?;
    let challenges: Vec<&str> =
        probe.headers().get_all("www-authenticate").iter().filter_map(|v| v.to_str().ok()).collect();
    let found = match connect::read_probe(probe.status().as_u16(), &challenges) {
        Probe::Public => Found::Public,
        Probe::Protected { resource_metadata } => {
            let mut prm = None;
            for candidate in connect::prm_urls(url, resource_metadata.as_deref()) {
                if let Some(body) = get_json(&candidate).await {
                    prm = Some(connect::read_prm(&body, url)?);
                    break;
                }
            }
            let (resource, issuer) = prm.ok_or(Failed("it has no protected-resource metadata".into()))?;
            let mut meta = None;
            for candidate in connect::as_metadata_urls(&issuer) {
                if let Some(body) = get_json(&candidate).await {
                    meta = Some(connect::read_as(&body, &issuer)?);
                    break;
                }
            }
            let meta = meta.ok_or(Failed("its authorization server has no metadata".into()))?;
            Found::Protected { resource, meta: Rc::new(meta) }
        }
    };
    DISCOVERED.with(|d| d.borrow_mut().insert(name.clone(), (found.clone(), now)));
    Ok(found)
}

fn vault_key(env: &Env) -> Option<aes_gcm::Aes256Gcm> {
    crate::platform::env::text(env, "COOKIE_ENCRYPTION_KEY").map(|k| seal::key(k.as_bytes()))
}

/// This worker's client at the downstream's authorization server.
async fn client_for(env: &Env, kv: &Kv, named: &Named, meta: &AsMetadata, origin: &str) -> Result<Client, Failed> {
    let configured = named.entry.client_id.as_deref().map(|id| (id, named.client_secret.as_deref()));
    match connect::choose_identity(configured, meta, origin) {
        None => Err(Failed("its authorization server offers no way to register this worker".into())),
        Some(Identity::Configured(c)) => Ok(c),
        Some(Identity::Document(url)) => Ok(connect::client(meta, &url, None, AuthMethod::None)),
        Some(Identity::Register(endpoint)) => {
            let key = vault_key(env).ok_or(Failed("COOKIE_ENCRYPTION_KEY is missing".into()))?;
            let record = registration_record(&meta.issuer, origin);
            let aad = json!(["downstream-client", meta.issuer]).to_string();
            if let Ok(Some(sealed)) = kv.get(&record).await {
                if let Some(c) = seal::open_json::<Client>(&key, &sealed, aad.as_bytes()) {
                    return Ok(c);
                }
            }
            // Two sign-ins registering at once make two clients: harmless, the later one is kept.
            let body = connect::client_metadata(origin, None).to_string();
            let req = http::Request::post(endpoint.as_str())
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .body(body.into_bytes())
                .map_err(|_| Failed("its registration endpoint is not a URL".into()))?;
            let res = FetchClient.send(req).await.map_err(|e| Failed(format!("registration failed ({e})")))?;
            let client = connect::read_registration(res.status().as_u16(), res.body(), meta)?;
            if let Err(e) = kv.put(&record, &seal::seal_json(&key, &client, aad.as_bytes()), None).await {
                log(&format!("the registration could not be kept ({e}); registering again next time"));
            }
            log("registered this worker at a downstream's authorization server");
            Ok(client)
        }
    }
}

/// The KV key of this worker's dynamic registration at `issuer`.
fn registration_record(issuer: &str, origin: &str) -> String {
    let redirect_uri = format!("{origin}{}", connect::CALLBACK_PATH);
    format!("downstream-client:{}", sha256_hex(format!("{issuer}\n{redirect_uri}")))
}

/// A connect step between the downstream's consent and the MCP authorization's completion.
#[derive(Serialize, Deserialize)]
struct Pending {
    name: String,
    issuer: String,
    resource: String,
    code_verifier: String,
    redirect_uri: String,
    client: Client,
    expires_at: u64,
    // What sign-in would have completed.
    request: AuthRequest,
    user_id: String,
    metadata: serde_json::Value,
    scope: Vec<String>,
    props: serde_json::Value,
    revoke_existing_grants: bool,
}

fn pending_key(state: &str) -> String {
    format!("connect:{}", sha256_hex(state))
}

fn pending_aad(state: &str) -> Vec<u8> {
    json!(["connect", sha256_hex(state)]).to_string().into_bytes()
}

/// The named `oauth` downstream an authorization request's resource names.
pub fn oauth_downstream<'a>(named: &'a [Named], origin: &str, resource: &str) -> Option<&'a Named> {
    let resource = resource.trim_end_matches('/');
    named.iter().find(|n| n.entry.auth == Auth::OAuth && format!("{origin}{}", n.entry.mount()) == resource)
}

/// Login's step after sign-in: the detour to the downstream's consent.
pub struct Connect<'a> {
    pub env: &'a Env,
    pub kv: &'a Kv,
    pub named: Rc<Vec<Named>>,
    pub provider: &'a Provider<'a>,
}

#[async_trait::async_trait(?Send)]
impl SignInExtension for Connect<'_> {
    async fn sections(&self, user_id: &str) -> Vec<Section> {
        let listed = match vault::call(self.env, user_id, "list", json!({})).await {
            Ok(v) => v,
            Err(e) => {
                log(&format!("the token vault could not be listed: {e}"));
                return vec![Section {
                    heading: "MCP servers connected through this gateway".into(),
                    entries: vec![("Unavailable".into(), "They could not be listed; try again later.".into())],
                    ids: None,
                    remove: None,
                }];
            }
        };
        let mut entries = Vec::new();
        let mut ids = Vec::new();
        for e in listed["entries"].as_array().into_iter().flatten() {
            let Some(resource) = e["resource"].as_str() else { continue };
            let name = self.name_of(resource).await.unwrap_or_else(|| resource.to_owned());
            entries.push((name, format!("{resource}: its token for you is kept here")));
            ids.push(resource.to_owned());
        }
        if entries.is_empty() {
            return Vec::new();
        }
        vec![Section {
            heading: "MCP servers connected through this gateway".into(),
            entries,
            ids: Some(ids),
            remove: Some((DISCONNECT.into(), "Disconnect".into())),
        }]
    }

    async fn remove(&self, user_id: &str, action: &str, entry: &str) -> Option<bool> {
        if action != DISCONNECT {
            return None;
        }
        match vault::call(self.env, user_id, "drop", json!({"resource": entry})).await {
            Ok(v) => {
                let dropped = v["dropped"] == json!(true);
                if dropped {
                    log("a user disconnected a downstream; its token is dropped and revoked there");
                }
                Some(dropped)
            }
            Err(e) => {
                log(&format!("disconnecting a downstream failed: {e}"));
                Some(false)
            }
        }
    }

    async fn before_completion(&self, origin: &str, complete: CompleteAuthorization) -> Detour {
        let Some(named) = complete.request.resource.first().and_then(|r| oauth_downstream(&self.named, origin, r))
        else {
            return Detour::Complete(complete);
        };
        match self.detour(origin, named, &complete).await {
            Ok(Some(res)) => Detour::Respond(res),
            Ok(None) => Detour::Complete(complete),
            Err(Failed(why)) => {
                log(&format!("downstream '{}' cannot be connected: {why}", named.entry.name));
                abandon_sign_in(self.env, &complete.metadata, &complete.user_id).await;
                let to = self.provider.error_redirect(
                    origin,
                    &complete.request,
                    "temporarily_unavailable",
                    "The MCP server behind this gateway cannot be connected right now; try again later",
                );
                Detour::Respond(redirect(&to.to_url(), &[]))
            }
        }
    }
}

/// No grant comes of this sign-in (`metadata` and `user_id` of its
/// authorization): its PingOne refresh token is revoked, best effort.
async fn abandon_sign_in(env: &Env, metadata: &serde_json::Value, user_id: &str) {
    let Ok(settings) = crate::login::worker::settings(env) else { return };
    let cache = crate::login::worker::cache();
    let revoked =
        crate::login::upstream::revoke_abandoned(&settings, &FetchClient, &cache, metadata, user_id, now_secs()).await;
    if let Err(why) = revoked {
        log(&format!("revoking the abandoned sign-in's PingOne refresh token failed: {why}"));
    }
}

/// Login's step after sign-in while `DOWNSTREAMS` cannot be used (a client
/// secret it names is not set): an authorization for one of its downstreams
/// is refused with `server_error` naming the setting, rather than completed
/// into a grant that every call would then refuse.
pub struct Misconfigured<'a> {
    pub env: &'a Env,
    pub provider: &'a Provider<'a>,
    /// The configuration error (names settings and entries, never values).
    pub why: String,
}

#[async_trait::async_trait(?Send)]
impl SignInExtension for Misconfigured<'_> {
    async fn before_completion(&self, origin: &str, complete: CompleteAuthorization) -> Detour {
        let mount = format!("{origin}{}", crate::proxy::downstreams::MOUNT_PREFIX);
        if !complete.request.resource.iter().any(|r| r.starts_with(&mount)) {
            return Detour::Complete(complete);
        }
        log(&format!("sign-in for a named downstream refused: {}", self.why));
        abandon_sign_in(self.env, &complete.metadata, &complete.user_id).await;
        let why = format!("The server is misconfigured: {}", self.why);
        let to = self.provider.error_redirect(origin, &complete.request, "server_error", &why);
        Detour::Respond(redirect(&to.to_url(), &[]))
    }
}

/// The connections page's section of connected downstreams, and its button.
const DISCONNECT: &str = "disconnect-downstream";

impl Connect<'_> {
    /// The named downstream whose discovered resource is `resource` (its name
    /// for the page), if discovery knows it.
    async fn name_of(&self, resource: &str) -> Option<String> {
        for n in self.named.iter().filter(|n| n.entry.auth == Auth::OAuth) {
            if let Ok(Found::Protected { resource: r, .. }) = discover(self.env, n).await {
                if r == resource {
                    return Some(n.entry.name.clone());
                }
            }
        }
        None
    }

    /// `None`: nothing to connect (public downstream, or the vault has a usable token).
    async fn detour(
        &self,
        origin: &str,
        named: &Named,
        complete: &CompleteAuthorization,
    ) -> Result<Option<http::Response<Vec<u8>>>, Failed> {
        let (resource, meta) = match discover(self.env, named).await? {
            Found::Public => return Ok(None),
            Found::Protected { resource, meta } => (resource, meta),
        };
        let unavailable = |e: worker::Error| Failed(format!("the token vault failed ({e})"));
        let claimed = vault::call(self.env, &complete.user_id, "claim", json!({"resource": resource}))
            .await
            .map_err(unavailable)?;
        if claimed["usable"] == json!(true) {
            log(&format!("downstream '{}' already connected for this user", named.entry.name));
            return Ok(None);
        }
        let client = client_for(self.env, self.kv, named, &meta, origin).await?;
        let key = vault_key(self.env).ok_or(Failed("COOKIE_ENCRYPTION_KEY is missing".into()))?;
        let (state, code_verifier) = (random_token(43), random_token(64));
        let redirect_uri = format!("{origin}{}", connect::CALLBACK_PATH);
        let to = connect::authorize_url(
            &meta,
            &client.client_id,
            &redirect_uri,
            &state,
            &b64url(sha256(&code_verifier)),
            &resource,
            named.entry.scopes.as_deref(),
        )?;
        let pending = Pending {
            name: named.entry.name.clone(),
            issuer: meta.issuer.clone(),
            resource,
            code_verifier,
            redirect_uri,
            client,
            expires_at: now_secs() + connect::STATE_TTL_SECS,
            request: complete.request.clone(),
            user_id: complete.user_id.clone(),
            metadata: complete.metadata.clone(),
            scope: complete.scope.clone(),
            props: complete.props.clone(),
            revoke_existing_grants: complete.revoke_existing_grants,
        };
        // Sealed: it holds the PingOne tokens sign-in got.
        let sealed = seal::seal_json(&key, &pending, &pending_aad(&state));
        self.kv
            .put(&pending_key(&state), &sealed, Some(connect::STATE_TTL_SECS))
            .await
            .map_err(|e| Failed(format!("storage failed ({e})")))?;
        log(&format!("sending the user to downstream '{}' to connect it", named.entry.name));
        let cookie =
            crate::login::cookies::set(connect::STATE_COOKIE, &sha256_hex(&state), connect::STATE_TTL_SECS, false);
        Ok(Some(crate::login::pages::add_cookies(onward(&named.entry.name, to.as_str()), &[cookie])))
    }
}

/// A page sending the browser on to the downstream's consent (the `Refresh`
/// header, no script), with a link. Not a 302: when PingOne skips its login
/// page, the browser is still in the redirect chain of the consent form's
/// POST, and that page's CSP `form-action` (this origin and PingOne's) would
/// refuse a redirect to the downstream.
fn onward(name: &str, to: &str) -> http::Response<Vec<u8>> {
    use crate::util::html::escape;
    let nonce = random_token(22);
    let body = format!(
        "<h1>Connect {name}</h1><div class=\"card\"><p>Signed in. Next, sign in to <strong>{name}</strong> \
         and allow this gateway to use it for you.</p></div>\
         <p><a class=\"button\" href=\"{to}\" rel=\"noreferrer\">Continue to {name}</a></p>",
        name = escape(name),
        to = escape(to),
    );
    let mut res = crate::login::pages::html("Connect", &body, &nonce, &crate::login::pages::csp(&nonce, &[]));
    if let Ok(v) = http::HeaderValue::from_str(&format!("0; url={to}")) {
        res.headers_mut().insert("refresh", v);
    }
    res
}

fn page(status: u16, title: &'static str, detail: &str) -> http::Response<Vec<u8>> {
    Failure::new(status, "invalid_request", title, detail, ADVICE_RESTART).respond(false)
}

/// `GET /connect/callback`: the downstream's answer; the code exchanged and
/// stored, then the MCP authorization completed.
pub async fn callback(
    env: &Env,
    kv: &Kv,
    provider: &Provider<'_>,
    req: &http::Request<Vec<u8>>,
) -> http::Response<Vec<u8>> {
    let Ok(url) = url::Url::parse(&req.uri().to_string()) else {
        return page(400, "Connecting failed", "The request URL is malformed.");
    };
    let origin = url.origin().ascii_serialization();
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    let clear = vec![crate::login::cookies::clear(connect::STATE_COOKIE)];
    let Some(state) = param("state").filter(|s| !s.is_empty()) else {
        return page(400, "Connecting failed", "The answer has no state.");
    };
    let cookie = req
        .headers()
        .get(http::header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| crate::login::cookies::get(Some(c), connect::STATE_COOKIE));
    if !cookie.is_some_and(|c| constant_time_eq(c, sha256_hex(&state))) {
        log("callback refused: state not bound to this browser");
        return page(400, "Connecting failed", "This step was started in another browser or its cookie is missing.");
    }
    let Some(key) = vault_key(env) else { return page(500, "Connecting failed", "The server is misconfigured.") };
    let record = pending_key(&state);
    let sealed = match kv.get(&record).await {
        Ok(Some(s)) => s,
        Ok(None) => return page(400, "Connecting failed", "This step is unknown, expired or was already completed."),
        Err(_) => return page(503, "Connecting failed", "Storage is unavailable; try again."),
    };
    let _ = kv.delete(&record).await;
    let Some(p) = seal::open_json::<Pending>(&key, &sealed, &pending_aad(&state)).filter(|p| p.expires_at > now_secs())
    else {
        return page(400, "Connecting failed", "This step has expired.");
    };
    let fail = |error: &str, why: &str| {
        let to = provider.error_redirect(&origin, &p.request, error, why);
        crate::login::pages::add_cookies(redirect(&to.to_url(), &[]), &clear)
    };
    let abandon = || abandon_sign_in(env, &p.metadata, &p.user_id);
    if let Some(error) = param("error") {
        log(&format!(
            "downstream '{}' answered {}",
            p.name,
            error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect::<String>()
        ));
        abandon().await;
        return fail("access_denied", "The MCP server behind this gateway was not connected");
    }
    let Some(code) = param("code").filter(|c| !c.is_empty()) else {
        abandon().await;
        return fail("server_error", "The MCP server behind this gateway sent no authorization code");
    };
    let exchanged = match code_request(&p.client, &code, &p.redirect_uri, &p.code_verifier, &p.resource) {
        Ok(r) => FetchClient.send(r).await.map_err(|e| e.to_string()),
        Err(_) => Err("the token endpoint is not a URL".into()),
    };
    let tokens = match exchanged {
        Ok(res) => tokens_from(res.status().as_u16(), res.body(), now_secs(), None),
        Err(e) => Err(TokenError::Failed(e)),
    };
    if tokens == Err(TokenError::InvalidClient) {
        // The server forgot this worker's registration: the next sign-in registers again.
        let _ = kv.delete(&registration_record(&p.issuer, &origin)).await;
    }
    let tokens = tokens.map_err(|e| format!("{e:?}"));
    let tokens = match tokens {
        Ok(t) => t,
        Err(why) => {
            log(&format!("exchanging the code of downstream '{}' failed: {why}", p.name));
            abandon().await;
            return fail("temporarily_unavailable", "The MCP server behind this gateway could not be connected");
        }
    };
    let secret = Secret { tokens, client: p.client.clone() };
    let stored = vault::call(env, &p.user_id, "put", json!({"resource": p.resource, "secret": secret})).await;
    if let Err(e) = stored {
        log(&format!("storing the token of downstream '{}' failed: {e}", p.name));
        abandon().await;
        return fail("temporarily_unavailable", "The connection could not be stored; try again");
    }
    log(&format!("downstream '{}' connected", p.name));
    let complete = CompleteAuthorization {
        request: p.request.clone(),
        user_id: p.user_id.clone(),
        metadata: p.metadata.clone(),
        scope: p.scope.clone(),
        props: p.props.clone(),
        revoke_existing_grants: p.revoke_existing_grants,
    };
    match provider.complete_authorization(&origin, complete).await {
        Ok(to) => crate::login::pages::add_cookies(redirect(&to, &[]), &clear),
        Err(e) => {
            log(&format!("completing the authorization failed: {}", e.reason));
            fail("server_error", "The authorization could not be completed")
        }
    }
}

/// The Client ID Metadata Document this worker publishes (`GET /downstream-client.json`).
pub fn client_document(origin: &str) -> serde_json::Value {
    connect::client_metadata(origin, Some(&format!("{origin}{}", connect::CLIENT_DOCUMENT_PATH)))
}

/// The user's token for an `oauth` downstream, for one gateway call.
pub enum Token {
    /// Send this (from the entry of `resource`).
    Use { access_token: String, resource: String },
    /// The downstream needs none.
    Public,
    /// None usable: the client must re-authorize (`client_gone`: and this
    /// worker register again at the downstream's server first).
    Reconnect { client_gone: bool },
    /// The downstream, its authorization server or the vault failed.
    Unavailable(String),
}

/// The vault's token for `user` at `named` (noting that `grant` uses it).
pub async fn token_for(env: &Env, named: &Named, user: &str, grant: &str) -> Token {
    let resource = match discover(env, named).await {
        Ok(Found::Public) => return Token::Public,
        Ok(Found::Protected { resource, .. }) => resource,
        Err(Failed(why)) => return Token::Unavailable(why),
    };
    let answer = vault::call(env, user, "token", json!({"resource": resource, "grant": grant})).await;
    token_from(answer)
}

/// The downstream refused `access_token`, the vault's token for `resource`,
/// with a 401: the vault refreshes it once, so a server that ended only its
/// access tokens is retried without the user; `Reconnect` tells a revoked
/// grant from a forgotten client (`client_gone`).
pub async fn after_refusal(env: &Env, user: &str, resource: &str, access_token: &str) -> Token {
    let answer = vault::call(env, user, "refused", json!({"resource": resource, "access_token": access_token})).await;
    token_from(answer)
}

fn token_from(answer: worker::Result<serde_json::Value>) -> Token {
    match answer {
        Ok(v) => match Lookup::from_json(&v) {
            Some(Lookup::Token { access_token, resource }) => Token::Use { access_token, resource },
            Some(Lookup::None | Lookup::Reconnect) => Token::Reconnect { client_gone: false },
            Some(Lookup::ClientGone) => Token::Reconnect { client_gone: true },
            Some(Lookup::Unavailable) => Token::Unavailable("the downstream's token endpoint failed".into()),
            None => Token::Unavailable("the token vault's answer is unreadable".into()),
        },
        Err(e) => Token::Unavailable(format!("the token vault failed ({e})")),
    }
}

/// Forgets this worker's dynamic registration at `named`'s authorization
/// server (it answered `invalid_client`), so the next connect
/// step registers again; a configured client is not touched.
pub async fn forget_registration(env: &Env, kv: &Kv, named: &Named, origin: &str) {
    if named.entry.client_id.is_some() {
        return;
    }
    if let Ok(Found::Protected { meta, .. }) = discover(env, named).await {
        if let Err(e) = kv.delete(&registration_record(&meta.issuer, origin)).await {
            log(&format!("forgetting a registration failed: {e}"));
        }
    }
}

/// Drops the vault entry of `resource` (the downstream refuses its tokens).
pub async fn drop_token(env: &Env, user: &str, resource: &str) {
    if let Err(e) = vault::call(env, user, "drop", json!({"resource": resource})).await {
        log(&format!("dropping a refused downstream token failed: {e}"));
    }
}

/// Tells the user's vault that `grant` ended (entries no grant uses are dropped).
pub async fn grant_ended(env: &Env, user: &str, grant: &str) {
    if let Err(e) = vault::call(env, user, "grant-ended", json!({"grant": grant})).await {
        log(&format!("telling the token vault of a grant's end failed: {e}"));
    }
}
