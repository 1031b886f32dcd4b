//! Workers glue for `/authorize` and `/callback`: settings from the
//! environment, Workers KV, the fetch API and a per-isolate discovery cache.

use super::authz::AuthServer;
use super::discovery::OidcCache;
use super::flow::{config_failure, Login};
use super::pages::{wants_json, Failure, ADVICE_RESTART};
use super::settings::Settings;
use crate::platform::fetch::FetchClient;
use crate::platform::http::{from_http, into_http};
use crate::store::KvStore;
use std::rc::Rc;
use worker::{Env, Request, Response, Result};

thread_local! {
    // Discovery and JWKS survive across requests handled by this isolate.
    static CACHE: Rc<OidcCache> = Rc::new(OidcCache::default());
    // The settings, read on the isolate's first request that needs them: vars
    // and secrets are fixed for a deployment version (a change starts new isolates).
    static SETTINGS: std::cell::OnceCell<std::result::Result<Rc<Settings>, super::settings::SettingError>> =
        const { std::cell::OnceCell::new() };
}

/// This isolate's discovery and JWKS cache.
pub fn cache() -> Rc<OidcCache> {
    CACHE.with(Rc::clone)
}

/// The sign-in settings from vars and secrets, read once per isolate.
pub fn settings(env: &Env) -> std::result::Result<Rc<Settings>, super::settings::SettingError> {
    SETTINGS.with(|s| {
        s.get_or_init(|| Settings::from_lookup(|name| crate::platform::env::text(env, name)).map(Rc::new)).clone()
    })
}

/// Serves `/authorize` (GET, POST) and `/callback` (see [`super::owns`]).
/// `store` is `OAUTH_KV`; `auth` is the MCP authorization server; `extension`
/// what the application adds to sign-in, if anything.
pub async fn serve(
    req: Request,
    env: &Env,
    store: &dyn KvStore,
    auth: &dyn AuthServer,
    extension: Option<&dyn super::SignInExtension>,
) -> Result<Response> {
    let Some(req) = into_http(req).await? else {
        let f =
            Failure::new(413, "invalid_request", "Request too large", "The request body is too large.", ADVICE_RESTART);
        return from_http(f.respond(false));
    };
    let settings = match settings(env) {
        Ok(s) => s,
        Err(e) => return from_http(config_failure(&e).respond(wants_json(&req))),
    };
    let cache = CACHE.with(Rc::clone);
    let login = Login {
        settings: &settings,
        store,
        auth,
        http: &FetchClient,
        cache: &cache,
        now: crate::util::time::now_secs(),
        extension,
    };
    from_http(login.handle(&req).await)
}
