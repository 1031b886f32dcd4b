//! Workers glue for the MCP endpoints (Wasm only): the Worker side hands each
//! request to its session's Durable Object in one hop; [`McpSession`] is that
//! object.

mod object;
mod service;
mod storage;

pub use object::McpSession;

use super::caller::Caller;
use super::envelope::INTERNAL_URL;
use super::gateway::{self, Route};
use super::http_rules::Responder;
use super::stateless;
use super::tools::{self, ToolContext};
use crate::platform::http::from_http;
use worker::{Env, Method, Request, RequestInit, Response, Result};

/// The Durable Object namespace binding in `wrangler.toml`.
pub const BINDING: &str = "MCP_OBJECT";

/// Serves `/mcp` and `/sse*` (see [`gateway::owns`]) for a caller whose bearer
/// token was already verified. `step_up` builds the authorization server's 403
/// challenge for a call that needs scopes the token lacks (given the scopes to
/// ask for and a description).
pub async fn serve(
    req: &http::Request<Vec<u8>>,
    caller: &Caller,
    env: &Env,
    step_up: impl FnOnce(&[String], &str) -> http::Response<Vec<u8>>,
) -> Result<Response> {
    let (object, envelope) = match gateway::route(req, caller) {
        Route::Respond(res) => return from_http(res),
        Route::InsufficientScope { scopes, missing } => {
            return from_http(step_up(&scopes, &format!("This call needs the scope {}", missing.join(" "))))
        }
        Route::Forward { object, envelope } => (object, envelope),
        Route::Stateless { call, caller, origin, sse } => {
            // Modern era: the tool runs here, no session object is woken.
            let (http, api_url) = service::todo_api(env);
            let ctx = ToolContext { http, api_url, caller, now: crate::util::time::now_secs() };
            let result = tools::call(&ctx, &call.name, &call.arguments).await;
            return from_http(stateless::tool_answer(&Responder::new(origin.as_deref()), sse, &call, result));
        }
    };
    // A fresh internal request: the envelope is the only thing the object trusts.
    let forward = async {
        let stub = env.durable_object(BINDING)?.get_by_name(&object)?;
        let body = serde_json::to_string(&envelope).map_err(|e| worker::Error::RustError(e.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        stub.fetch_with_request(Request::new_with_init(INTERNAL_URL, &init)?).await
    };
    match forward.await {
        Ok(res) => Ok(res),
        Err(e) => {
            worker::console_error!("mcp: session object failed: {e}");
            from_http(Responder::new(envelope.origin.as_deref()).internal_error())
        }
    }
}
