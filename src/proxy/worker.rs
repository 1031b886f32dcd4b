//! Workers glue of the identity gateway (Wasm only): sends the planned
//! request (by fetch, or through the `DOWNSTREAM_MCP` service binding) with a
//! deadline for the response head, then streams the body back. JSON and other
//! bodies go through untouched (the runtime carries backpressure and client
//! disconnects). Event streams pass through [`relay`](super::relay), which
//! rewrites the first event of a legacy `/sse` stream, adds keep-alive
//! comments while the downstream is silent and ends the stream once its grant
//! is gone; the long-lived ones (`GET /mcp`, `/sse`) always do, SSE answers to
//! `POST /mcp` only when keep-alives are on.

use super::config::{ConfigError, Downstream, BINDING};
use super::downstreams::{self, Named};
use super::forward::{self, Kind, Outbound, Plan};
use super::relay::{relay, Watch};
use super::session::{Bound, Sessions};
use super::sse::{endpoint_event, EndpointScan, Scan};
use super::User;
use crate::platform::http::from_http;
use crate::platform::kv::Kv;
use futures_util::future::{select, Either};
use futures_util::stream::StreamExt;
use std::rc::Rc;
use std::time::Duration;
use worker::{
    AbortController, ByteStream, Delay, Env, Fetch, Fetcher, Headers, Method, Request, RequestInit, RequestRedirect,
    Response, Result,
};

thread_local! {
    /// The gateway's settings, read once per isolate: vars, secrets and
    /// bindings are fixed for a deployment version (a change starts new isolates).
    static DOWNSTREAM: std::cell::OnceCell<std::result::Result<Option<Rc<Downstream>>, ConfigError>> =
        const { std::cell::OnceCell::new() };
}

/// The gateway's settings; `Ok(None)` with neither `DOWNSTREAM_MCP_URL` nor
/// the `DOWNSTREAM_MCP` service binding. Read on the isolate's first request
/// to `/mcp` or `/sse` and kept (every such request asks).
pub fn downstream(env: &Env) -> std::result::Result<Option<Rc<Downstream>>, ConfigError> {
    DOWNSTREAM.with(|d| {
        d.get_or_init(|| {
            let lookup = |name: &str| crate::platform::env::text(env, name);
            Downstream::from_lookup(lookup, env.service(BINDING).is_ok()).map(|d| d.map(Rc::new))
        })
        .clone()
    })
}

thread_local! {
    /// The named downstreams (`DOWNSTREAMS`), read once per isolate.
    static NAMED: std::cell::OnceCell<std::result::Result<Rc<Vec<Named>>, ConfigError>> =
        const { std::cell::OnceCell::new() };
}

/// The named downstreams (`DOWNSTREAMS`; none when unset), each with its
/// service binding checked, read on the isolate's first request below `/mcp/`.
pub fn named(env: &Env) -> std::result::Result<Rc<Vec<Named>>, ConfigError> {
    NAMED.with(|d| {
        d.get_or_init(|| {
            let named = downstreams::from_lookup(|name| crate::platform::env::text(env, name))?;
            if let Some(n) = named.iter().find(|n| n.downstream.bound && env.service(&n.downstream.binding).is_err()) {
                return Err(ConfigError {
                    name: downstreams::SETTING,
                    why: format!("entry '{}': its service binding is missing from wrangler.toml", n.entry.name).into(),
                });
            }
            Ok(Rc::new(named))
        })
        .clone()
    })
}

enum Failure {
    Timeout,
    Unreachable(String),
}

/// Forwards an authenticated `/mcp` or `/sse…` request for `user`; `env`
/// gives the service binding (when `ds.bound`), `grants` the KV namespace of
/// the grant records (event streams end once the user's grant is gone).
/// `step_up` builds the authorization server's 403 challenge for a tool call
/// that needs scopes the token lacks (`GATEWAY_TOOL_SCOPES`), given the
/// scopes to ask for and a description.
pub async fn serve(
    req: &http::Request<Vec<u8>>,
    user: &User,
    ds: &Downstream,
    env: &Env,
    grants: Kv,
    step_up: impl FnOnce(&[String], &str) -> http::Response<Vec<u8>>,
) -> Result<Response> {
    let out = match forward::plan(req, user, ds) {
        Plan::Respond(res) => return from_http(res),
        Plan::InsufficientScope { scopes, missing } => {
            return from_http(step_up(&scopes, &format!("This call needs the scope {}", missing.join(" "))))
        }
        Plan::Send(out) => out,
    };
    let origin = out.origin.as_deref();
    let binding = if ds.bound { Some(env.service(&ds.binding)?) } else { None };
    let watch = Watch {
        kv: grants,
        user_id: user.user_id.clone(),
        grant_id: user.grant_id.clone(),
        every_ms: ds.grant_check_ms,
    };
    let mut res = match send(&out.request, ds.timeout_ms, binding.as_ref()).await {
        Ok(res) => res,
        Err(Failure::Timeout) => {
            worker::console_warn!("proxy: the downstream MCP server did not answer in time");
            return from_http(forward::timeout(origin, ds.timeout_ms));
        }
        Err(Failure::Unreachable(why)) => {
            worker::console_error!("proxy: the downstream MCP server could not be reached: {why}");
            return from_http(forward::unreachable(origin));
        }
    };
    let status = res.status_code();
    let mut downstream_headers = http::HeaderMap::new();
    for (name, value) in res.headers().entries() {
        if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_str(&value)) {
            downstream_headers.append(n, v);
        }
    }
    let (status, head) = match forward::response_head(&out, status, &downstream_headers, user, ds) {
        Ok(head) => head,
        Err(refusal) => {
            let media = downstream_headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("none");
            worker::console_warn!("proxy: the downstream answered {status} ({media}), which is not MCP");
            return from_http(refusal);
        }
    };
    let headers = head_headers(&head)?;
    if out.kind == Kind::SseOpen && status.is_success() {
        return sse_open(&mut res, status.as_u16(), headers, &out, user, ds, watch).await;
    }
    if matches!(status.as_u16(), 204 | 205 | 304) {
        return Ok(Response::builder().with_status(status.as_u16()).with_headers(headers).empty());
    }
    let event_stream = head
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream")));
    // The standalone GET stream may last for hours: it is always relayed, so it
    // ends with its grant. Without keep-alives an SSE answer passes untouched
    // (the runtime then notices a client going away at once, even when idle).
    let long_lived = out.kind == Kind::Streamable && out.request.method() == http::Method::GET;
    if event_stream && (ds.keepalive_ms.is_some() || long_lived) {
        if let Ok(body) = res.stream() {
            let stream = relay(None, body, ds.keepalive_ms, Some(watch));
            return Ok(Response::from_stream(stream)?.with_status(status.as_u16()).with_headers(headers));
        }
    }
    let (_, body) = res.into_parts();
    Ok(Response::builder().with_status(status.as_u16()).with_headers(headers).body(body))
}

fn head_headers(head: &http::HeaderMap) -> Result<Headers> {
    let headers = Headers::new();
    for (name, value) in head.iter() {
        if let Ok(v) = value.to_str() {
            headers.append(name.as_str(), v)?;
        }
    }
    Ok(headers)
}

/// Sends `req` (through `binding` when there is one) without following
/// redirects; gives up when no response head has arrived after `timeout_ms`
/// (the body is not bounded: streams may last).
async fn send(
    req: &http::Request<Vec<u8>>,
    timeout_ms: u32,
    binding: Option<&Fetcher>,
) -> std::result::Result<Response, Failure> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let build = || -> Result<Request> {
        let headers = Headers::new();
        for (name, value) in req.headers() {
            if let Ok(v) = value.to_str() {
                headers.append(name.as_str(), v)?;
            }
        }
        let mut init = RequestInit::new();
        init.with_method(Method::from(req.method().as_str().to_owned()))
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual);
        if !req.body().is_empty() {
            init.with_body(Some(worker::js_sys::Uint8Array::from(req.body().as_slice()).into()));
        }
        // The signal rides on the request itself, which a service binding honours too.
        let init = worker::web_sys::RequestInit::from(&init);
        init.set_signal(Some(&signal));
        Ok(worker::web_sys::Request::new_with_str_and_init(&req.uri().to_string(), &init)?.into())
    };
    let request = build().map_err(|e| Failure::Unreachable(e.to_string()))?;
    let sending = match binding {
        Some(fetcher) => Either::Left(fetcher.fetch_request(request)),
        None => Either::Right(async { Fetch::Request(request).send_with_signal(&signal).await }),
    };
    let sending = Box::pin(sending);
    let timer = Box::pin(Delay::from(Duration::from_millis(u64::from(timeout_ms))));
    let outcome = match select(sending, timer).await {
        Either::Left((Ok(res), _)) => Ok(res),
        Either::Left((Err(e), _)) => Err(Failure::Unreachable(e.to_string())),
        Either::Right((_, sending)) => {
            drop(sending);
            controller.abort();
            Err(Failure::Timeout)
        }
    };
    outcome
}

/// A legacy event stream: reads up to the downstream's `endpoint` event
/// (within the timeout), answers with this gateway's endpoint carrying the
/// sealed downstream endpoint, then passes the rest of the stream through.
async fn sse_open(
    res: &mut Response,
    status: u16,
    headers: Headers,
    out: &Outbound,
    user: &User,
    ds: &Downstream,
    watch: Watch,
) -> Result<Response> {
    let origin = out.origin.as_deref();
    let mut body: ByteStream = res.stream()?;
    let mut scan = EndpointScan::default();
    let mut timer = Box::pin(Delay::from(Duration::from_millis(u64::from(ds.timeout_ms))));
    let (endpoint, rest) = loop {
        let chunk = match select(body.next(), timer.as_mut()).await {
            Either::Left((Some(Ok(chunk)), _)) => chunk,
            Either::Left((Some(Err(e)), _)) => {
                worker::console_error!("proxy: the downstream SSE stream failed: {e}");
                return from_http(forward::unreachable(origin));
            }
            Either::Left((None, _)) => {
                worker::console_warn!("proxy: the downstream SSE stream ended before its endpoint event");
                return from_http(forward::garbage(origin));
            }
            Either::Right(_) => return from_http(forward::timeout(origin, ds.timeout_ms)),
        };
        match scan.feed(&chunk) {
            Scan::More => continue,
            Scan::Endpoint { endpoint, rest } => break (endpoint, rest),
            Scan::NotMcp => {
                worker::console_warn!("proxy: the downstream SSE stream does not start with an endpoint event");
                return from_http(forward::garbage(origin));
            }
        }
    };
    // Kept as path and query on the downstream's SSE origin; anything else is refused.
    let sse_url = out.request.uri().to_string();
    let target = url::Url::parse(&sse_url).ok().and_then(|base| {
        let t = base.join(&endpoint).ok()?;
        (t.origin() == base.origin())
            .then(|| format!("{}{}", t.path(), t.query().map(|q| format!("?{q}")).unwrap_or_default()))
    });
    let sealed =
        target.and_then(|t| Sessions::new(&ds.session_key, &user.user_id, &user.client_id).seal(&Bound::Sse(t)));
    let Some(sealed) = sealed else {
        worker::console_warn!("proxy: the downstream SSE endpoint event names an unusable endpoint");
        return from_http(forward::garbage(origin));
    };
    let mut first = endpoint_event(&sealed);
    first.extend(rest);
    let stream = relay(Some(first), body, ds.keepalive_ms, Some(watch));
    Ok(Response::from_stream(stream)?.with_status(status).with_headers(headers))
}
