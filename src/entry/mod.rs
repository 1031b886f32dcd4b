//! Workers entry points: routes each request to the module that owns it, and
//! runs the scheduled purge of expired grants.
//!
//! - authorization server endpoints (metadata, `/register`, `/token`, `/revoke`,
//!   the internal validation endpoint; paths per `oauth::Config::endpoints`) → `oauth`
//! - `/authorize`, `/callback` (consent and PingOne sign-in), `/connections`
//!   (a user's grants, ended at will) → `login`
//! - the paths the resource registry protects, `/mcp`, `/sse…` by default (after
//!   bearer validation) → `mcp` (which tells the protocol eras apart: a session
//!   Durable Object per session, modern requests answered statelessly),
//!   or with `DOWNSTREAM_MCP_URL` or the `DOWNSTREAM_MCP` binding set → `proxy`,
//!   forwarded to that MCP server
//! - refresh-token requests at `/token` → `oauth` inside the grant's `GrantRefresh`
//!   object, one at a time per grant

use crate::grant_props::Props;
use crate::login::upstream::PingOneGrants;
use crate::mcp::caller::Caller;
use crate::oauth::bearer::BearerError;
use crate::oauth::{self, AuthContext, Config, Provider};
use crate::platform::env::text as env_text;
use crate::platform::fetch::FetchClient;
use crate::platform::http::{from_http, into_http};
use crate::platform::kv::Kv;
use crate::util::time::now_secs;
use std::rc::Rc;
use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

mod connect;
mod grant_hooks;
mod refresh;
mod single_use;

/// The KV namespace binding holding clients, grants, tokens and sign-in state.
const KV_BINDING: &str = "OAUTH_KV";

/// The liveness check, answered before anything else.
const HEALTH_PATH: &str = "/health";

/// Logs why the authorization server refused a request: its status and the
/// internal reason (`category.check`), never a token, secret or parameter.
fn logged(path: &str, res: http::Response<Vec<u8>>) -> http::Response<Vec<u8>> {
    if let Some(reason) = oauth::error::Reason::of(&res) {
        worker::console_log!("oauth: {path} refused, {} {reason}", res.status().as_u16());
    }
    res
}

fn json(status: u16, body: serde_json::Value) -> Result<Response> {
    Ok(Response::from_json(&body)?.with_status(status))
}

thread_local! {
    /// The authorization server's settings, read once per isolate: vars and
    /// secrets are fixed for a deployment version (a change starts new isolates).
    static CONFIG: std::cell::OnceCell<std::result::Result<Rc<Config>, oauth::config::ConfigError>> =
        const { std::cell::OnceCell::new() };
}

/// The authorization server's settings (`Config::from_lookup` on the vars),
/// parsed on this isolate's first request and kept (about 20 reads through JS
/// saved per request).
fn oauth_config(env: &Env) -> std::result::Result<Rc<Config>, oauth::config::ConfigError> {
    CONFIG.with(|c| {
        c.get_or_init(|| {
            let mut config = Config::from_lookup(|name| env_text(env, name))?;
            named_resources(&mut config, env_text(env, crate::proxy::downstreams::SETTING).as_deref())?;
            // An OAUTH_*_PATH on one of the worker's own routes would never be reached.
            config.check_app_routes(&[
                HEALTH_PATH,
                crate::login::CALLBACK_PATH,
                crate::login::CONNECTIONS_PATH,
                crate::proxy::connect::CALLBACK_PATH,
                crate::proxy::connect::CLIENT_DOCUMENT_PATH,
            ])?;
            Ok(Rc::new(config))
        })
        .clone()
    })
}

/// Each named downstream (`DOWNSTREAMS`) is a protected resource of its own at
/// `/mcp/<name>`, needing what `/mcp` needs; a request naming no resource is
/// for `/mcp`, as before, unless `OAUTH_DEFAULT_RESOURCE` says otherwise.
fn named_resources(config: &mut Config, raw: Option<&str>) -> std::result::Result<(), oauth::config::ConfigError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else { return Ok(()) };
    let entries = crate::proxy::downstreams::parse(raw).map_err(|e| oauth::config::ConfigError(e.to_string()))?;
    if entries.is_empty() {
        return Ok(());
    }
    let required = config.resources[0].required_scopes.clone();
    for e in &entries {
        let name = format!("{} via {}", e.name, crate::SERVER_NAME);
        config
            .resources
            .push(oauth::ProtectedResource::new(e.mount()).with_required_scopes(required.clone()).with_name(name));
    }
    if config.default_resource.is_none() {
        config.default_resource = Some(config.resources[0].resource.clone());
    }
    config.validate()
}

thread_local! {
    /// Access tokens validated in the last few seconds (`OAUTH_TOKEN_CACHE_TTL`),
    /// shared by every request of this isolate; leaked once, it lives as long as the isolate.
    static TOKEN_CACHE: std::cell::OnceCell<&'static oauth::TokenCache> = const { std::cell::OnceCell::new() };
}

/// This isolate's token cache: every `Provider` here uses it, so a revocation
/// or grant end in this isolate also clears what it holds.
fn token_cache(config: &Config) -> &'static oauth::TokenCache {
    TOKEN_CACHE.with(|c| {
        *c.get_or_init(|| {
            Box::leak(Box::new(oauth::TokenCache::new(config.token_cache_ttl, oauth::TokenCache::DEFAULT_CAPACITY)))
        })
    })
}

thread_local! {
    /// Fetches of client metadata documents not in the cache, counted per
    /// minute for this isolate (overall and per caller IP).
    static FETCH_BUDGET: std::cell::OnceCell<&'static oauth::FetchBudget> = const { std::cell::OnceCell::new() };
}

fn fetch_budget() -> &'static oauth::FetchBudget {
    FETCH_BUDGET.with(|b| *b.get_or_init(|| Box::leak(Box::new(oauth::FetchBudget::default()))))
}

/// Details the authorization server keeps from its answers (why a metadata
/// document was refused), for the operator.
fn operator_log(line: &str) {
    worker::console_log!("oauth: {line}");
}

/// The PingOne access token sealed in the props has expired (tokens issued
/// before lifetimes were capped at it can outlive it).
fn upstream_expired(ctx: &AuthContext, now: u64) -> bool {
    Props::from_value(&ctx.props).subject_token_expires_at.is_some_and(|at| at <= now)
}

/// The authorization server for this request, with the PingOne grant hooks
/// when the sign-in settings are usable.
fn provider<'a>(
    kv: &'a dyn crate::store::KvStore,
    config: &'a Config,
    hooks: Option<&'a grant_hooks::Hooks<'a>>,
    jti_record: Option<&'a single_use::DurableSingleUse<'a>>,
) -> Provider<'a> {
    // Client ID Metadata Documents are fetched with the Workers fetch, within
    // this isolate's budget; why one was refused goes to the log only.
    let provider = Provider::new(kv, config, now_secs())
        .with_metadata_fetcher(&oauth::workers::WorkersMetadataFetcher)
        .with_fetch_budget(fetch_budget())
        .with_operator_log(&operator_log)
        // Resources in other workers get the user's claims, not the PingOne token.
        .with_resource_props(&crate::grant_props::ClaimsOnly)
        .with_token_cache(token_cache(config));
    let provider = match jti_record {
        Some(record) => provider.with_single_use(record),
        None => provider,
    };
    match hooks {
        Some(h) => provider.with_hooks(h),
        None => provider,
    }
}

/// The answer at the token endpoint while the sign-in settings do not parse:
/// 500 `server_error` naming the setting (never its value), nothing used up.
fn sign_in_unusable(e: &crate::login::settings::SettingError, origin: Option<&str>) -> http::Response<Vec<u8>> {
    worker::console_error!("configuration: {e}; no tokens are issued until it is fixed");
    let mut res = oauth::OAuthError::new(
        http::StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        format!("The server is misconfigured: {e}; no tokens are issued until it is fixed (the sign-in is kept)"),
    )
    .because(oauth::error::Reason::new("config", "sign_in_settings"))
    .into_response();
    oauth::cors::apply(origin, res.headers_mut());
    res
}

fn origin_of(req: &http::Request<Vec<u8>>) -> Option<&str> {
    req.headers().get("origin").and_then(|v| v.to_str().ok())
}

fn caller(ctx: AuthContext) -> Caller {
    Caller {
        user_id: ctx.user_id,
        grant_id: ctx.grant_id,
        client_id: ctx.client_id,
        scopes: ctx.scopes,
        audience: ctx.audience.into_iter().next(),
        expires_at: ctx.expires_at,
        props: ctx.props,
    }
}

/// Who a forwarded request is for (identity gateway).
fn proxy_user(ctx: AuthContext, config: &Config, url: &url::Url) -> crate::proxy::User {
    crate::proxy::User {
        props: Props::from_value(&ctx.props),
        user_id: ctx.user_id,
        client_id: ctx.client_id,
        grant_id: ctx.grant_id,
        resource_metadata: oauth::bearer::resource_metadata_url(config, url),
        scopes: ctx.scopes,
        vault_token: None,
    }
}

/// Who answers a request, from its path alone: the front door at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    /// `/authorize` (the configured path), `/callback` and `/connections`:
    /// consent, PingOne sign-in, the user's connections.
    Login,
    /// The paths the resource registry protects (`/mcp`, `/sse…`): the built-in
    /// MCP server, or in proxy mode the downstream one.
    Mcp,
    /// The authorization server's endpoints (metadata, `/register`, `/token`, …).
    OAuth,
    /// `/connect/callback` and `/downstream-client.json`: this worker as the
    /// user's OAuth client of downstreams with their own authorization.
    Connect,
}

/// The route table, after [`HEALTH_PATH`] (answered before the settings are
/// read): the paths follow the authorization server's configuration.
fn area(config: &Config, path: &str) -> Option<Area> {
    if crate::login::owns(&config.endpoints.authorize, path) {
        Some(Area::Login)
    } else if crate::mcp::gateway::owns(config, path) {
        Some(Area::Mcp)
    } else if oauth::is_endpoint(config, path) {
        Some(Area::OAuth)
    } else if path == crate::proxy::connect::CALLBACK_PATH || path == crate::proxy::connect::CLIENT_DOCUMENT_PATH {
        Some(Area::Connect)
    } else {
        None
    }
}

fn misconfigured(e: impl std::fmt::Display) -> Result<Response> {
    worker::console_error!("configuration: {e}");
    let why = format!("The server is misconfigured: {e}");
    json(500, serde_json::json!({"error": "server_error", "error_description": why}))
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    // ID-token signatures are checked with WebCrypto (no-op after the first request).
    crate::login::webcrypto::install();
    let path = req.path();
    if path == HEALTH_PATH {
        let health = serde_json::json!({"name": crate::SERVER_NAME, "version": crate::SERVER_VERSION, "status": "ok"});
        return json(200, health);
    }
    let config = match oauth_config(&env) {
        Ok(c) => c,
        Err(e) => return misconfigured(e),
    };
    let Some(area) = area(&config, &path) else {
        return json(404, serde_json::json!({"error": "not_found", "error_description": "No such endpoint"}));
    };
    let Ok(kv) = env.kv(KV_BINDING).map(Kv) else {
        return misconfigured(format!("the KV namespace binding {KV_BINDING} is missing"));
    };
    match area {
        Area::Login | Area::OAuth | Area::Connect => authorization(req, &env, &kv, &config, area, &path).await,
        Area::Mcp => mcp(req, &env, &kv, &config, &path).await,
    }
}

/// Sign-in and the authorization server's endpoints, with the PingOne grant
/// hooks (refresh, revocation) when the sign-in settings are usable.
async fn authorization(req: Request, env: &Env, kv: &Kv, config: &Config, area: Area, path: &str) -> Result<Response> {
    // PingOne refresh and revocation ride on the grant's life (login::upstream).
    let settings = match crate::login::worker::settings(env) {
        Ok(settings) => Some(settings),
        // Without them a token would skip the allow-list, the lifetime cap and
        // the PingOne refresh: no tokens at all (grants and codes stay).
        Err(e) if path == config.endpoints.token => {
            return from_http(sign_in_unusable(&e, req.headers().get("origin").ok().flatten().as_deref()));
        }
        // Sign-in shows its own page naming the setting.
        Err(_) if area == Area::Login => None,
        // Anything else goes on (a revocation still ends the grant; PingOne is not told).
        Err(e) => {
            worker::console_error!("configuration: {e}; PingOne refresh tokens are not revoked");
            None
        }
    };
    let cache = crate::login::worker::cache();
    // Proxy mode refuses enterprise grants (no PingOne token to forward).
    let gateway = matches!(crate::proxy::worker::downstream(env), Ok(Some(_)));
    let pingone =
        settings.as_ref().map(|settings| PingOneGrants { settings, http: &FetchClient, cache: &cache, gateway });
    let hooks = grant_hooks::Hooks { pingone: pingone.as_ref(), env };
    // The caller, for the per-source bound on metadata-document fetches (set by
    // Cloudflare's edge on every request from outside; absent ones share a count).
    let source = req.headers().get("cf-connecting-ip").ok().flatten();
    let jti_record = single_use::record(env);
    let provider = provider(kv, config, Some(&hooks), jti_record.as_ref());
    let provider = match source.as_deref() {
        Some(ip) => provider.with_source(ip),
        None => provider,
    };
    if area == Area::Connect {
        return connect_area(req, env, kv, &provider, path).await;
    }
    if area == Area::Login {
        // With downstreams that have their own OAuth, sign-in may detour to their consent;
        // with DOWNSTREAMS unusable, a sign-in for one of them is refused, naming why.
        let (mut connect, mut misconfigured) = (None, None);
        match crate::proxy::worker::named(env) {
            Ok(named) if grant_hooks::vault_in_use(env) => {
                connect = Some(connect::Connect { env, kv, named, provider: &provider })
            }
            Ok(_) => {}
            Err(e) => misconfigured = Some(connect::Misconfigured { env, provider: &provider, why: e.to_string() }),
        }
        let after = match (&connect, &misconfigured) {
            (Some(c), _) => Some(c as &dyn crate::login::SignInExtension),
            (_, Some(m)) => Some(m as &dyn crate::login::SignInExtension),
            _ => None,
        };
        return crate::login::worker::serve(req, env, kv, &provider, after).await;
    }
    let Some(http_req) = into_http(req).await? else { return too_large() };
    // Refreshes are answered one at a time per grant, in its GrantRefresh object.
    if let Some(grant) = oauth::refresh_gate::grant_of_at(&http_req, &config.endpoints.token) {
        return refresh::forward(env, &grant, &http_req, &provider).await;
    }
    from_http(logged(path, provider.handle(&http_req).await))
}

/// `/connect/callback` (the downstream's answer) and `/downstream-client.json`.
async fn connect_area(req: Request, env: &Env, kv: &Kv, provider: &Provider<'_>, path: &str) -> Result<Response> {
    let Some(http_req) = into_http(req).await? else { return too_large() };
    if !grant_hooks::vault_in_use(env) {
        return json(404, serde_json::json!({"error": "not_found", "error_description": "No such endpoint"}));
    }
    if http_req.method() != http::Method::GET {
        return json(405, serde_json::json!({"error": "invalid_request", "error_description": "Use GET"}));
    }
    if path == crate::proxy::connect::CLIENT_DOCUMENT_PATH {
        let origin = url::Url::parse(&http_req.uri().to_string())
            .map(|u| u.origin().ascii_serialization())
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        return json(200, connect::client_document(&origin));
    }
    from_http(connect::callback(env, kv, provider, &http_req).await)
}

fn too_large() -> Result<Response> {
    json(413, serde_json::json!({"error": "invalid_request", "error_description": "Request body too large"}))
}

/// `/mcp` and `/sse…`: preflight, the bearer token (and the PingOne token
/// behind it), then the built-in MCP server or, in proxy mode, the
/// downstream one. The bearer path never needs the sign-in settings.
async fn mcp(req: Request, env: &Env, kv: &Kv, config: &Config, path: &str) -> Result<Response> {
    let Some(http_req) = into_http(req).await? else { return too_large() };
    // Preflights come before authentication (browsers send no credentials with them).
    if http_req.method() == http::Method::OPTIONS {
        return from_http(crate::mcp::http_rules::preflight(http_req.headers()));
    }
    let provider = provider(kv, config, None, None);
    let url = url::Url::parse(&http_req.uri().to_string()).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let origin = origin_of(&http_req);
    // The URL parsed above serves the bearer check too.
    let ctx = match provider.authenticate_request_at(&http_req, &url).await {
        Ok(ctx) => ctx,
        Err(res) => return from_http(logged(path, res)),
    };
    if upstream_expired(&ctx, provider.now) {
        // No tool may run with a dead PingOne token: the client's auth layer
        // answers this 401 with a refresh, which refreshes PingOne too.
        let why = BearerError::invalid(
            "The upstream sign-in behind this token has expired; refresh the token",
            oauth::error::Reason::new("upstream", "token_expired"),
        );
        let mut res = provider.challenge(&url, &why);
        oauth::cors::apply(origin, res.headers_mut());
        return from_http(logged(path, res));
    }
    // A tool call beyond the token's scopes: the MCP 2025-11-25 step-up challenge.
    let step_up = |scopes: &[String], why: &str| {
        let mut res = provider.insufficient_scope(&url, scopes, why);
        oauth::cors::apply(origin, res.headers_mut());
        logged(path, res)
    };
    // A named downstream (DOWNSTREAMS) at /mcp/<name>.
    if path.starts_with(crate::proxy::downstreams::MOUNT_PREFIX) {
        let named = match crate::proxy::worker::named(env) {
            Ok(named) => named,
            Err(e) => return misconfigured(e),
        };
        if let Some(named) = crate::proxy::downstreams::at(&named, path) {
            // Only a grant for this downstream itself is ended when its token is lost
            // (an origin-wide grant also serves the other resources).
            let own_grant = ctx.audience.iter().any(|a| a.trim_end_matches('/') == url_without_query(&url));
            let mut user = proxy_user(ctx, config, &url);
            let grants = Kv(kv.0.clone());
            if named.entry.auth != crate::proxy::downstreams::Auth::OAuth {
                return crate::proxy::worker::serve(&http_req, &user, &named.downstream, env, grants, step_up).await;
            }
            let reconnect = |why: &'static str| {
                let why = BearerError::invalid(why, oauth::error::Reason::new("downstream", "not_connected"));
                let mut res = provider.challenge(&url, &why);
                oauth::cors::apply(origin, res.headers_mut());
                logged(path, res)
            };
            let unavailable = |why: &str| {
                worker::console_error!("proxy: downstream '{}' unavailable: {why}", named.entry.name);
                from_http(crate::proxy::forward::unreachable(origin))
            };
            // A macro, not a closure: each call lends `user` anew (it changes in between).
            macro_rules! serve {
                ($user:expr) => {
                    crate::proxy::worker::serve(&http_req, $user, &named.downstream, env, Kv(kv.0.clone()), step_up)
                };
            }
            // The block answers, or breaks with `client_gone` when the user must connect again.
            let client_gone = 'lost: {
                let resource = match connect::token_for(env, named, &user.user_id, &user.grant_id).await {
                    connect::Token::Public => return serve!(&user).await,
                    connect::Token::Use { access_token, resource } => {
                        user.vault_token = Some(access_token);
                        resource
                    }
                    connect::Token::Reconnect { client_gone } => break 'lost client_gone,
                    connect::Token::Unavailable(why) => return unavailable(&why),
                };
                let res = serve!(&user).await?;
                if res.status_code() != 401 {
                    return Ok(res);
                }
                // Refused before it ran out (revoked, or the server lost its access tokens):
                // the vault refreshes it once and the call is made again with the new token.
                let refused = user.vault_token.take().unwrap_or_default();
                match connect::after_refusal(env, &user.user_id, &resource, &refused).await {
                    connect::Token::Use { access_token, .. } if access_token != refused => {
                        user.vault_token = Some(access_token);
                        let res = serve!(&user).await?;
                        if res.status_code() != 401 {
                            return Ok(res);
                        }
                        worker::console_log!("proxy: downstream '{}' refused a fresh token", named.entry.name);
                        connect::drop_token(env, &user.user_id, &resource).await;
                        false
                    }
                    connect::Token::Use { .. } | connect::Token::Public => {
                        connect::drop_token(env, &user.user_id, &resource).await;
                        false
                    }
                    connect::Token::Reconnect { client_gone } => client_gone,
                    connect::Token::Unavailable(why) => return unavailable(&why),
                }
            };
            worker::console_log!("proxy: downstream '{}' must be connected again", named.entry.name);
            if client_gone {
                // invalid_client: the next connect step registers this worker again.
                connect::forget_registration(env, kv, named, &url.origin().ascii_serialization()).await;
            }
            if own_grant {
                end_grant(env, kv, config, &user).await;
            }
            return from_http(reconnect("The MCP server behind this gateway must be connected again; sign in again"));
        }
    }
    // Proxy mode (DOWNSTREAM_MCP_URL or DOWNSTREAM_MCP): forwarded to another MCP server.
    match crate::proxy::worker::downstream(env) {
        Ok(Some(downstream)) => {
            let user = proxy_user(ctx, config, &url);
            if user.props.enterprise {
                // Issued before proxy mode was switched on: there is no PingOne token to forward
                // (the token endpoint now refuses such grants, so the client is told why there).
                let why = BearerError::invalid(
                    "This token came from an enterprise assertion and carries no PingOne token, which this \
                     server forwards; sign in through the browser",
                    oauth::error::Reason::new("enterprise", "gateway_needs_pingone_token"),
                );
                let mut res = provider.challenge(&url, &why);
                oauth::cors::apply(origin, res.headers_mut());
                return from_http(logged(path, res));
            }
            // The same binding again, owned (the relay keeps it while its streams last).
            let grants = Kv(kv.0.clone());
            crate::proxy::worker::serve(&http_req, &user, &downstream, env, grants, step_up).await
        }
        Ok(None) => crate::mcp::worker::serve(&http_req, &caller(ctx), env, step_up).await,
        Err(e) => misconfigured(e),
    }
}

/// `url` as a resource names it: origin and path, no query.
fn url_without_query(url: &url::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path().trim_end_matches('/'))
}

/// Ends the MCP grant behind a request (its downstream token is gone), with
/// the grant hooks: PingOne's refresh token revoked, the vault told.
async fn end_grant(env: &Env, kv: &Kv, config: &Config, user: &crate::proxy::User) {
    let settings = crate::login::worker::settings(env).ok();
    let cache = crate::login::worker::cache();
    let pingone =
        settings.as_ref().map(|settings| PingOneGrants { settings, http: &FetchClient, cache: &cache, gateway: false });
    let hooks = grant_hooks::Hooks { pingone: pingone.as_ref(), env };
    if let Err(e) = provider(kv, config, Some(&hooks), None).revoke_grant(&user.user_id, &user.grant_id).await {
        worker::console_error!("proxy: ending the grant failed: {e}");
    }
}

/// Where the purge stopped, kept between cron runs (the key 1.x's documentation uses).
const PURGE_CURSOR_KEY: &str = "purge-cursor";

/// The daily purge, resumable (`Provider::purge_run`): each run goes on from
/// the cursor the last one left, within `PURGE_GRANTS_PER_RUN` grant keys and
/// the invocation's KV and subrequest limits. A large namespace is swept over
/// several days; KV's own expiry removes most records long before.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let run =
        async {
            let config = oauth_config(&env).map_err(|e| worker::Error::RustError(e.to_string()))?;
            let mut limits = oauth::grants::PurgeLimits::default();
            if let Some(v) = env_text(&env, "PURGE_GRANTS_PER_RUN") {
                limits.grants =
                    v.trim().parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                        worker::Error::RustError("PURGE_GRANTS_PER_RUN must be a positive number".into())
                    })?;
            }
            let kv = Kv(env.kv(KV_BINDING)?);
            // Broken sign-in settings must not stop the purge; PingOne is then not told.
            let settings = crate::login::worker::settings(&env)
                .map_err(|e| worker::console_error!("purge: {e}; PingOne refresh tokens are not revoked"))
                .ok();
            let cache = crate::login::worker::cache();
            // The purge makes no grants: `gateway` does not matter.
            let pingone = settings.as_ref().map(|settings| PingOneGrants {
                settings,
                http: &FetchClient,
                cache: &cache,
                gateway: false,
            });
            let hooks = grant_hooks::Hooks { pingone: pingone.as_ref(), env: &env };
            let run = provider(&kv, &config, Some(&hooks), None)
                .purge_run(PURGE_CURSOR_KEY, limits)
                .await
                .map_err(|e| worker::Error::RustError(e.to_string()))?;
            let state = if run.complete { "sweep complete" } else { "continues next run" };
            worker::console_log!("purge: checked {} grants, revoked {} expired ones; {state}", run.checked, run.purged);
            Ok::<(), worker::Error>(())
        };
    if let Err(e) = run.await {
        worker::console_error!("purge failed: {e}");
    }
}
