//! The event-stream relay of the gateway (Wasm only): the downstream's bytes
//! to the client as they come, a rewritten first event on `/sse`, keep-alive
//! comments while the downstream is silent, and the end of the stream once
//! the grant it was opened under is gone (revoked or run out), looked up
//! every `SSE_GRANT_CHECK_SECS` as the built-in server does for its streams.
//!
//! Ending the stream drops the downstream body, which cancels the downstream
//! request. A client going away is noticed by workerd when the stream next
//! yields (a chunk or a keep-alive); `request.signal` does not fire once the
//! handler has returned, so it cannot make this sooner.

use super::clock::{Clock, Due};
use super::keepalive::LineState;
use crate::grant_watch::{self, KvGrants};
use crate::platform::kv::Kv;
use crate::util::time::{now_millis, now_secs};
use futures_util::future::{self, select, Either};
use futures_util::stream::{self, StreamExt};
use futures_util::Stream;
use std::time::Duration;
use worker::{ByteStream, Delay, Result};

/// The grant a relayed stream was opened under, and where to look it up.
pub struct Watch {
    pub kv: Kv,
    pub user_id: String,
    pub grant_id: String,
    pub every_ms: u32,
}

impl Watch {
    async fn ended(&self) -> bool {
        grant_watch::ended(&KvGrants(&self.kv), &self.user_id, &self.grant_id, now_secs()).await
    }
}

struct Relay {
    first: Option<Vec<u8>>,
    body: ByteStream,
    lines: LineState,
    clock: Clock,
    watch: Option<Watch>,
}

enum Next {
    Chunk(Option<Result<Vec<u8>>>),
    Timer,
}

/// `first` (the rewritten endpoint event, if any), then `body` as it comes,
/// a keep-alive comment after every `keepalive_ms` of silence, and the end
/// once `watch` finds the grant gone.
pub fn relay(
    first: Option<Vec<u8>>,
    body: ByteStream,
    keepalive_ms: Option<u32>,
    watch: Option<Watch>,
) -> impl Stream<Item = Result<Vec<u8>>> {
    let clock = Clock::new(now_millis(), keepalive_ms, watch.as_ref().map(|w| w.every_ms));
    let state = Relay { first, body, lines: LineState::default(), clock, watch };
    stream::unfold(Some(state), |state| async move {
        let mut s = state?;
        if let Some(first) = s.first.take() {
            s.lines.saw(&first);
            s.clock.sent(now_millis());
            return Some((Ok(first), Some(s)));
        }
        loop {
            let wait = match s.clock.due(now_millis()) {
                Due::CheckGrant => {
                    if let Some(watch) = &s.watch {
                        if watch.ended().await {
                            worker::console_log!("proxy: event stream closed: the grant it was opened under ended");
                            return None;
                        }
                    }
                    s.clock.checked(now_millis());
                    continue;
                }
                Due::KeepAlive => {
                    s.clock.sent(now_millis());
                    if let Some(comment) = s.lines.comment() {
                        s.lines.saw(comment);
                        return Some((Ok(comment.to_vec()), Some(s)));
                    }
                    // Mid-line: a comment would corrupt the event; wait another interval.
                    continue;
                }
                Due::Wait(ms) => Either::Left(Delay::from(Duration::from_millis(ms))),
                Due::Idle => Either::Right(future::pending::<()>()),
            };
            let next = match select(s.body.next(), Box::pin(wait)).await {
                Either::Left((chunk, _)) => Next::Chunk(chunk),
                Either::Right(_) => Next::Timer,
            };
            match next {
                Next::Chunk(Some(Ok(chunk))) => {
                    s.lines.saw(&chunk);
                    s.clock.sent(now_millis());
                    return Some((Ok(chunk), Some(s)));
                }
                Next::Chunk(None) => return None,
                Next::Chunk(Some(Err(e))) => {
                    worker::console_error!("proxy: the downstream stream failed: {e}");
                    return Some((Err(e), None));
                }
                Next::Timer => {}
            }
        }
    })
}
