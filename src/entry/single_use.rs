//! Workers glue for `oauth::SingleUse`: the `jti` of an enterprise ID-JAG or
//! of a `private_key_jwt` client assertion is marked used in a Durable Object
//! of its own (named by the marker, a hash),
//! not in KV. A Durable Object is one instance worldwide with transactional
//! storage, and its read and write below run with no other event in
//! between (the input gate), so of two uses of one assertion, in any
//! locations, exactly one sees "not used". KV could not promise that: a read
//! in another location may miss a marker for up to a minute. The object
//! erases itself by an alarm once the assertion has expired.

use crate::oauth::error::Reason;
use crate::oauth::{OAuthError, SingleUse};
use crate::util::time::now_secs;
use async_trait::async_trait;
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, ScheduledTime, State,
};

/// The Durable Object namespace binding in `wrangler.toml`.
pub const BINDING: &str = "ASSERTION_JTI";
/// The storage key holding until when the value is used.
const UNTIL: &str = "until";

/// The record, reached through [`BINDING`].
pub struct DurableSingleUse<'a> {
    pub env: &'a Env,
}

/// The record when the binding is there; without it assertions are marked in
/// KV only (best effort across locations), which the log says.
pub fn record(env: &Env) -> Option<DurableSingleUse<'_>> {
    if env.durable_object(BINDING).is_err() {
        worker::console_warn!(
            "configuration: no {BINDING} Durable Object binding; assertions are single-use through KV only \
             (best effort across locations)"
        );
        return None;
    }
    Some(DurableSingleUse { env })
}

fn unavailable(e: impl std::fmt::Display) -> OAuthError {
    worker::console_error!("token: the assertion's single-use object failed: {e}");
    OAuthError::temporarily_unavailable("The assertion could not be checked; try again")
        .because(Reason::new("assertion", "single_use_unavailable"))
}

#[async_trait(?Send)]
impl SingleUse for DurableSingleUse<'_> {
    async fn first_use(&self, key: &str, expires_at: u64) -> std::result::Result<bool, OAuthError> {
        let namespace = self.env.durable_object(BINDING).map_err(unavailable)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(expires_at.to_string().into()));
        let req = Request::new_with_init("https://single-use.internal/", &init).map_err(unavailable)?;
        let mut res =
            namespace.get_by_name(key).map_err(unavailable)?.fetch_with_request(req).await.map_err(unavailable)?;
        match res.status_code() {
            200 => Ok(true),
            409 => Ok(false),
            other => Err(unavailable(format!("status {other}: {}", res.text().await.unwrap_or_default()))),
        }
    }
}

/// One used value: 200 the first time it is presented, 409 after.
#[durable_object]
pub struct AssertionJti {
    state: State,
}

impl DurableObject for AssertionJti {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let Ok(until) = req.text().await?.trim().parse::<u64>() else {
            return Response::error("expected the expiry in seconds", 400);
        };
        let storage = self.state.storage();
        if storage.get::<u64>(UNTIL).await?.is_some() {
            return Response::error("used", 409);
        }
        storage.put(UNTIL, until).await?;
        // Erased after the assertion's end (an alarm in the past fires at once).
        let at = worker::js_sys::Date::new(&((until.max(now_secs()) as f64 + 1.0) * 1000.0).into());
        storage.set_alarm(ScheduledTime::new(at)).await?;
        Response::ok("first")
    }

    async fn alarm(&self) -> Result<Response> {
        self.state.storage().delete_all().await?;
        Response::ok("erased")
    }
}
