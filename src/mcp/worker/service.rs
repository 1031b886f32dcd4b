//! How the session object reaches the Todo API: through the `TODO_API`
//! service binding when the Worker has one (the call stays inside Cloudflare,
//! no public round trip), else by `fetch` to `API_URL`. Both give up after
//! [`TIMEOUT_MS`] and refuse bodies over [`MAX_RESPONSE_BYTES`](crate::outbound::MAX_RESPONSE_BYTES).

use crate::outbound::{HttpClient, OutboundError, TIMEOUT_MS};
use crate::platform::fetch::{read_whole, FetchClient};
use crate::platform::http::to_worker;
use async_trait::async_trait;
use futures_util::future::{select, Either};
use std::rc::Rc;
use std::time::Duration;
use worker::{Delay, Env, Fetcher};

/// The service binding to the Todo API in `wrangler.toml`.
pub const BINDING: &str = "TODO_API";

/// The base URL of Todo API calls through the binding when `API_URL` is not set.
pub const BOUND_URL: &str = "https://todo-api.internal";

/// The client for Todo API calls, and whether it is the service binding.
pub fn todo_api_client(env: &Env) -> (Rc<dyn HttpClient>, bool) {
    match env.service(BINDING) {
        Ok(fetcher) => (Rc::new(ServiceClient(fetcher)), true),
        Err(_) => (Rc::new(FetchClient), false),
    }
}

/// The client and base URL of Todo API calls: the `TODO_API` binding when
/// there is one, else fetch; the base URL is `API_URL`, or with the binding
/// and no `API_URL` the binding's own.
pub fn todo_api(env: &Env) -> (Rc<dyn HttpClient>, String) {
    thread_local! {
        // Bindings and vars are fixed for an isolate's life: looked up once.
        static TODO_API: std::cell::OnceCell<(Rc<dyn HttpClient>, String)> = const { std::cell::OnceCell::new() };
    }
    TODO_API.with(|c| {
        c.get_or_init(|| {
            let (http, bound) = todo_api_client(env);
            let api_url = crate::platform::env::text(env, "API_URL").filter(|u| !u.is_empty());
            (http, api_url.or_else(|| bound.then(|| BOUND_URL.to_owned())).unwrap_or_default())
        })
        .clone()
    })
}

/// [`HttpClient`] over a service binding. The request URL's path and query
/// reach the bound Worker; its host does not matter.
pub struct ServiceClient(pub Fetcher);

fn unreachable(e: impl std::fmt::Display) -> OutboundError {
    OutboundError::Unreachable(e.to_string())
}

#[async_trait(?Send)]
impl HttpClient for ServiceClient {
    async fn send(&self, req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, OutboundError> {
        let request = to_worker(&req).map_err(unreachable)?;
        let call = async {
            let res = self.0.fetch_request(request).await.map_err(unreachable)?;
            read_whole(res, unreachable).await
        };
        let deadline = Delay::from(Duration::from_millis(u64::from(TIMEOUT_MS)));
        match select(Box::pin(call), Box::pin(deadline)).await {
            Either::Left((res, _)) => res,
            Either::Right(_) => Err(OutboundError::Timeout),
        }
    }
}
