//! The session Durable Object: runs [`object::plan`] on each envelope and
//! adds what needs the runtime — streamed answers, the legacy event stream
//! with its keep-alives (ended by [`stream_watch`] when its session or grant
//! ends), tool calls over `fetch`, the expiry alarm.

use super::storage::DoStorage;
use crate::grant_watch::{self, KvGrants};
use crate::mcp::caller::Caller;
use crate::mcp::envelope::{Envelope, Op};
use crate::mcp::object::{self, Plan};
use crate::mcp::session::Session;
use crate::mcp::sse::{KEEPALIVE, KEEPALIVE_SECS};
use crate::mcp::stream_watch::{self, AfterRequest, StreamOwner, Verdict};
use crate::mcp::tools::{self, ToolContext};
use crate::outbound::HttpClient;
use crate::platform::http::from_http;
use crate::platform::kv::Kv;
use crate::util::time::now_secs;
use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_util::stream::{self, Stream, StreamExt};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use worker::{durable_object, DurableObject, Env, Headers, Request, Response, Result, ScheduledTime, State};

#[durable_object]
pub struct McpSession {
    session: Session<DoStorage>,
    /// The open legacy `/sse` stream, if any, and who opened it.
    stream: RefCell<Option<(UnboundedSender<Vec<u8>>, StreamOwner)>>,
    state: State,
    env: Env,
    /// How tools reach the Todo API, worked out once per object from the
    /// bindings and vars (fixed for a deployment version): the client and the
    /// base URL.
    todo_api: (Rc<dyn HttpClient>, String),
}

impl DurableObject for McpSession {
    fn new(state: State, env: Env) -> Self {
        let todo_api = super::service::todo_api(&env);
        Self { session: Session::new(DoStorage(state.storage())), stream: RefCell::new(None), state, env, todo_api }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let Ok(envelope) = serde_json::from_slice::<Envelope>(&req.bytes().await?) else {
            return Response::error("Bad envelope", 400);
        };
        let now = now_secs();
        // A request under another grant may show the stream's grant gone:
        // then its answers have no stream to go to any more.
        self.watch_stream(&envelope, now).await;
        let res = self.handle(&envelope, now).await;
        // The request may have erased the session (expired).
        if self.has_stream() && matches!(self.session.state(now).await, Ok(None)) {
            self.close_stream("the session ended");
        }
        res
    }

    async fn alarm(&self) -> Result<Response> {
        let now = now_secs();
        let next = match self.stream_owner() {
            Some(owner) => {
                let kv = Kv(self.env.kv(KV_BINDING)?);
                match stream_watch::at_alarm(&self.session, &owner, &KvGrants(&kv), now, self.grant_check_secs()).await
                {
                    Verdict::Close(why) => {
                        self.close_stream(why);
                        self.session.on_alarm(now).await
                    }
                    Verdict::Keep { next_check } => Ok(Some(next_check)),
                }
            }
            None => self.session.on_alarm(now).await,
        };
        match next {
            Ok(Some(at)) => self.set_alarm(at).await?,
            Ok(None) => {}
            Err(e) => worker::console_error!("mcp: session cleanup failed: {e}"),
        }
        Response::empty()
    }
}

/// The authorization server's KV namespace (grant records).
const KV_BINDING: &str = "OAUTH_KV";

impl McpSession {
    async fn handle(&self, envelope: &Envelope, now: u64) -> Result<Response> {
        if envelope.op == Op::SseMessage && !self.has_stream() {
            return from_http(object::no_stream(envelope));
        }
        match object::plan(&self.session, envelope, now).await {
            Plan::Done(res) => from_http(res),
            Plan::Run(ex) if ex.sse => {
                // First byte now; the tool answers follow on the same stream.
                let ctx = self.tool_context(&envelope.caller, now);
                let head = ex.stream_start();
                let rest = stream::once(async move {
                    let answers = tools::run(&ctx, ex.calls.clone()).await;
                    Ok::<Vec<u8>, worker::Error>(ex.frames(&answers))
                });
                streaming(head, rest)
            }
            Plan::Run(ex) => {
                let answers = tools::run(&self.tool_context(&envelope.caller, now), ex.calls.clone()).await;
                from_http(ex.finish(answers))
            }
            Plan::OpenStream(head) => {
                let res = self.open_stream(head, StreamOwner::of(&envelope.caller));
                // Watch it: the alarm comes at least every GRANT_CHECK_SECS while it is open.
                self.set_alarm(now + self.grant_check_secs()).await?;
                res
            }
            Plan::Deliver(ex) => {
                let mut answers = ex.immediate.clone();
                answers.extend(tools::run(&self.tool_context(&envelope.caller, now), ex.calls.clone()).await);
                if !answers.is_empty() {
                    let sent = self
                        .stream
                        .borrow()
                        .as_ref()
                        .is_some_and(|(tx, _)| tx.unbounded_send(ex.frames(&answers)).is_ok());
                    if !sent {
                        return from_http(object::no_stream(envelope));
                    }
                }
                from_http(object::accepted(envelope))
            }
        }
    }

    /// Ends the open stream if the request shows its session or grant gone.
    async fn watch_stream(&self, envelope: &Envelope, now: u64) {
        let Some(owner) = self.stream_owner() else { return };
        let Ok(kv) = self.env.kv(KV_BINDING).map(Kv) else { return };
        match stream_watch::after_request(&self.session, &owner, &envelope.caller, &KvGrants(&kv), now).await {
            AfterRequest::Keep => {}
            AfterRequest::Close(why) => self.close_stream(why),
            AfterRequest::Adopt(next) => {
                worker::console_log!("mcp: legacy SSE stream taken over by the client's new grant");
                if let Some((_, owner)) = self.stream.borrow_mut().as_mut() {
                    *owner = next;
                }
            }
        }
    }

    fn has_stream(&self) -> bool {
        self.stream.borrow().as_ref().is_some_and(|(tx, _)| !tx.is_closed())
    }

    /// Who opened the stream, while it is open.
    fn stream_owner(&self) -> Option<StreamOwner> {
        self.stream.borrow().as_ref().filter(|(tx, _)| !tx.is_closed()).map(|(_, owner)| owner.clone())
    }

    /// Ends the open stream: the client sees its response end.
    fn close_stream(&self, why: &str) {
        if let Some((tx, _)) = self.stream.replace(None) {
            worker::console_log!("mcp: legacy SSE stream closed: {why}");
            tx.close_channel();
        }
    }

    /// `SSE_GRANT_CHECK_SECS` (tests shorten it), else the default.
    fn grant_check_secs(&self) -> u64 {
        grant_watch::check_secs(crate::platform::env::text(&self.env, "SSE_GRANT_CHECK_SECS").as_deref())
    }

    async fn set_alarm(&self, at: u64) -> Result<()> {
        let at = worker::js_sys::Date::new(&((at as f64) * 1000.0).into());
        self.state.storage().set_alarm(ScheduledTime::new(at)).await
    }

    fn tool_context(&self, caller: &Caller, now: u64) -> ToolContext {
        let (http, api_url) = &self.todo_api;
        ToolContext { http: http.clone(), api_url: api_url.clone(), caller: caller.clone(), now }
    }

    /// The legacy event stream: the endpoint event, then answers as they come
    /// and a keep-alive comment every [`KEEPALIVE_SECS`]. A new stream for the
    /// same session replaces the old one.
    fn open_stream(&self, head: http::Response<Vec<u8>>, owner: StreamOwner) -> Result<Response> {
        let (tx, rx) = unbounded::<Vec<u8>>();
        if let Some((old, _)) = self.stream.replace(Some((tx.clone(), owner))) {
            old.close_channel();
        }
        // Ends once the client is gone (sending fails) or the stream was replaced.
        worker::wasm_bindgen_futures::spawn_local(async move {
            loop {
                worker::Delay::from(Duration::from_secs(KEEPALIVE_SECS)).await;
                if tx.unbounded_send(KEEPALIVE.to_vec()).is_err() {
                    break;
                }
            }
        });
        streaming(head, rx.map(Ok::<Vec<u8>, worker::Error>))
    }
}

/// A streamed response: `head`'s status and headers, its body first, then `rest`.
fn streaming(head: http::Response<Vec<u8>>, rest: impl Stream<Item = Result<Vec<u8>>> + 'static) -> Result<Response> {
    let (parts, first) = head.into_parts();
    let headers = Headers::new();
    for (name, value) in parts.headers.iter() {
        if let Ok(v) = value.to_str() {
            headers.append(name.as_str(), v)?;
        }
    }
    let body = stream::once(async move { Ok::<Vec<u8>, worker::Error>(first) }).chain(rest);
    Ok(Response::from_stream(body)?.with_status(parts.status.as_u16()).with_headers(headers))
}
