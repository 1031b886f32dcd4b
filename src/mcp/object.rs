//! What a session's Durable Object does with an envelope, minus the Workers
//! plumbing (streams, timers) that `worker/` adds.

use super::envelope::{Envelope, Op};
use super::http_rules::Responder;
use super::session::{Exchange, Session, SessionStorage};
use super::sse;
use http::{Response, StatusCode};

#[derive(Debug)]
pub enum Plan {
    /// The whole answer.
    Done(Response<Vec<u8>>),
    /// Run `exchange.calls`, then answer with `exchange.finish(..)`; an SSE
    /// answer may first send `exchange.stream_start()` and the frames later.
    Run(Exchange),
    /// Legacy `GET /sse`: start the stream with this head and endpoint event,
    /// then keep it open.
    OpenStream(Response<Vec<u8>>),
    /// Legacy message: put the answers (after running the calls) on the open
    /// stream as frames, and reply [`accepted`].
    Deliver(Exchange),
}

pub async fn plan<S: SessionStorage>(session: &Session<S>, env: &Envelope, now: u64) -> Plan {
    match env.op {
        Op::Post => match session.post(env, now).await {
            Err(res) => Plan::Done(res),
            Ok(ex) if ex.calls.is_empty() => Plan::Done(ex.finish(Vec::new())),
            Ok(ex) => Plan::Run(ex),
        },
        Op::Delete => Plan::Done(session.delete(env, now).await),
        Op::SseOpen => match session.open_sse(env, now).await {
            Err(res) => Plan::Done(res),
            Ok(()) => {
                let r = Responder::new(env.origin.as_deref()).with_session(&env.session_id);
                let endpoint = env.endpoint.as_deref().unwrap_or("/sse/message");
                Plan::OpenStream(sse::stream_response(&r, sse::endpoint_frame(endpoint)))
            }
        },
        Op::SseMessage => match session.post(env, now).await {
            Err(res) => Plan::Done(res),
            Ok(ex) => Plan::Deliver(ex),
        },
    }
}

/// The legacy transport's reply to a message POST.
pub fn accepted(env: &Envelope) -> Response<Vec<u8>> {
    Responder::new(env.origin.as_deref()).bytes(StatusCode::ACCEPTED, Some("text/plain"), b"Accepted".to_vec())
}

/// The legacy transport's reply when the session has no open stream to answer on.
pub fn no_stream(env: &Envelope) -> Response<Vec<u8>> {
    Responder::new(env.origin.as_deref()).session_not_found()
}
