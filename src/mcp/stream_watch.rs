//! When the legacy SSE stream a session object holds open must end: the
//! stream was opened with a token of one grant and lives on its own, so
//! nothing else would stop it when its session or its grant ends.
//!
//! A request with a token of a revoked grant is refused before it reaches the
//! object, so the object cannot wait to be told. It looks itself:
//! - at the session's alarm, which fires at least every
//!   [`GRANT_CHECK_SECS`](crate::grant_watch::GRANT_CHECK_SECS)
//!   while a stream is open: the stream ends once the session has expired or
//!   been erased, or once the grant it was opened with is gone from KV (one
//!   KV read per open stream per check);
//! - on every request reaching the object: the stream ends if the session is
//!   gone, and a message sent under another grant than the stream's checks
//!   the stream's grant at once. When that grant is gone, the request's
//!   grant (the same user, and the session's own client: the object checked
//!   both) takes it over: a re-authorization of the client (a step-up, which
//!   replaces its earlier grant) keeps the session and its stream, as on
//!   Streamable HTTP. A grant revoked without a new one ends the stream at
//!   the next alarm.

use super::caller::Caller;
use super::session::{Session, SessionStorage};
use crate::grant_watch::Grants;

/// Who opened the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOwner {
    pub user_id: String,
    pub grant_id: String,
}

impl StreamOwner {
    pub fn of(caller: &Caller) -> Self {
        Self { user_id: caller.user_id.clone(), grant_id: caller.grant_id.clone() }
    }
}

/// What to do with the open stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// End it (the reason, for the log).
    Close(&'static str),
    /// Keep it; look again at this time (unix seconds) at the latest.
    Keep { next_check: u64 },
}

/// At the session's alarm while a stream is open. Storage failures keep the
/// stream and look again soon: only evidence ends it.
pub async fn at_alarm<S: SessionStorage>(
    session: &Session<S>,
    owner: &StreamOwner,
    grants: &dyn Grants,
    now: u64,
    every: u64,
) -> Verdict {
    let soon = now + every.max(1);
    match session.state(now).await {
        Ok(None) => Verdict::Close("the session ended"),
        Err(_) => Verdict::Keep { next_check: soon },
        Ok(Some(s)) => match grants.alive(&owner.user_id, &owner.grant_id, now).await {
            Ok(false) => Verdict::Close("the grant it was opened with ended"),
            _ => Verdict::Keep { next_check: s.expires_at.min(soon) },
        },
    }
}

/// What a request that reached the object means for the open stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterRequest {
    /// Nothing changes.
    Keep,
    /// End it (the reason, for the log).
    Close(&'static str),
    /// The stream's grant is gone and the request's replaces it: the stream
    /// now lives as long as this owner's grant.
    Adopt(StreamOwner),
}

/// After a request reached the object (`caller` is who sent it, already
/// known to own the session: the same user and client).
pub async fn after_request<S: SessionStorage>(
    session: &Session<S>,
    owner: &StreamOwner,
    caller: &Caller,
    grants: &dyn Grants,
    now: u64,
) -> AfterRequest {
    if let Ok(None) = session.state(now).await {
        return AfterRequest::Close("the session ended");
    }
    if caller.user_id != owner.user_id || caller.grant_id == owner.grant_id {
        return AfterRequest::Keep;
    }
    match grants.alive(&owner.user_id, &owner.grant_id, now).await {
        Ok(false) => AfterRequest::Adopt(StreamOwner::of(caller)),
        _ => AfterRequest::Keep,
    }
}
