//! Workers glue for `oauth::refresh_gate`: every refresh of a grant is
//! answered inside that grant's [`GrantRefresh`] Durable Object, so two
//! concurrent refreshes (and the PingOne refresh behind them) run one after
//! the other and identical ones get one answer.

use super::{oauth_config, provider, KV_BINDING};
use crate::login::upstream::PingOneGrants;
use crate::oauth::error::OAuthError;
use crate::oauth::refresh_gate::RefreshGate;
use crate::oauth::{cors, Provider};
use crate::platform::fetch::FetchClient;
use crate::platform::http::{from_http, into_http, to_worker};
use crate::platform::kv::Kv;
use crate::store::{ReadYourWrites, Written};
use crate::util::crypto::sha256_hex;
use crate::util::time::now_secs;
use http::StatusCode;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// The Durable Object namespace binding in `wrangler.toml`.
const BINDING: &str = "GRANT_REFRESH";

/// Answers a refresh (`grant` from `refresh_gate::grant_of`) in the grant's
/// object. A deployment whose configuration lacks the binding is answered
/// here, unserialized, as before the object existed.
pub async fn forward(env: &Env, grant: &str, req: &http::Request<Vec<u8>>, here: &Provider<'_>) -> Result<Response> {
    let Ok(namespace) = env.durable_object(BINDING) else {
        worker::console_warn!(
            "configuration: no {BINDING} Durable Object binding; concurrent refreshes are not serialized"
        );
        return from_http(super::logged(req.uri().path(), here.handle(req).await));
    };
    // Hashed: the object's name shows in dashboards, the user id need not.
    let answer = async { namespace.get_by_name(&sha256_hex(grant))?.fetch_with_request(to_worker(req)?).await };
    match answer.await {
        Ok(res) => Ok(res),
        Err(e) => {
            worker::console_error!("token: the grant's refresh object failed: {e}");
            let mut res =
                OAuthError::temporarily_unavailable("The refresh could not be completed; try again").into_response();
            cors::apply(req.headers().get("origin").and_then(|v| v.to_str().ok()), res.headers_mut());
            from_http(res)
        }
    }
}

/// The serialization point of one grant's refreshes; it keeps nothing in
/// storage, only the answers of the last few seconds in memory.
#[durable_object]
pub struct GrantRefresh {
    gate: RefreshGate,
    /// The grant as this object last wrote it (KV may lag behind; see `store::ReadYourWrites`).
    written: Written,
    env: Env,
}

impl DurableObject for GrantRefresh {
    fn new(_state: State, env: Env) -> Self {
        Self { gate: RefreshGate::default(), written: Written::default(), env }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let Some(req) = into_http(req).await? else {
            return Response::error("Request too large", 413);
        };
        from_http(self.gate.run(&req, now_secs, || answer(&self.env, &self.written, &req)).await)
    }
}

/// The authorization server's answer, built as the Worker builds it (the
/// clock read now, after the wait for earlier refreshes).
async fn answer(env: &Env, written: &Written, req: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    let (Ok(config), Ok(kv)) = (oauth_config(env), env.kv(KV_BINDING).map(Kv)) else {
        worker::console_error!("token: the refresh object cannot read the configuration");
        return OAuthError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "The server is misconfigured")
            .into_response();
    };
    // Fail closed: without the sign-in settings a refresh would skip the
    // allow-list, the lifetime cap and the PingOne refresh.
    let settings = match crate::login::worker::settings(env) {
        Ok(s) => s,
        Err(e) => {
            let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
            return super::sign_in_unusable(&e, origin);
        }
    };
    let cache = crate::login::worker::cache();
    // Refreshes make no enterprise grants: `gateway` does not matter.
    let pingone = PingOneGrants { settings: &settings, http: &FetchClient, cache: &cache, gateway: false };
    let hooks = super::grant_hooks::Hooks { pingone: Some(&pingone), env };
    let store = ReadYourWrites { inner: &kv, written, now: now_secs() };
    // A refresh may carry a `private_key_jwt` client assertion.
    let jti_record = super::single_use::record(env);
    super::logged(req.uri().path(), provider(&store, &config, Some(&hooks), jti_record.as_ref()).handle(req).await)
}
