//! When an open legacy SSE stream ends: its session erased or expired, or the
//! grant it was opened with gone (at the alarm, or shown by a request).

use super::fakes::*;
use crate::grant_watch::{Grants, KvGrants};
use crate::mcp::session::{Session, SessionState, Transport, SESSION_TTL_SECS};
use crate::mcp::stream_watch::{after_request, at_alarm, AfterRequest, StreamOwner, Verdict};
use crate::store::{KvStore, MemoryStore, StoreError};
use async_trait::async_trait;
use futures::executor::block_on;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};

const EVERY: u64 = 60;

/// Grants by id; `down` makes every lookup fail.
#[derive(Default)]
struct FakeGrants {
    alive: RefCell<Vec<String>>,
    down: Cell<bool>,
    lookups: Cell<u32>,
}

#[async_trait(?Send)]
impl Grants for FakeGrants {
    async fn alive(&self, user_id: &str, grant_id: &str, _now: u64) -> Result<bool, StoreError> {
        self.lookups.set(self.lookups.get() + 1);
        if self.down.get() {
            return Err(StoreError::Unavailable("down".into()));
        }
        Ok(user_id == "alice" && self.alive.borrow().iter().any(|g| g == grant_id))
    }
}

fn grants(alive: &[&str]) -> FakeGrants {
    FakeGrants { alive: RefCell::new(alive.iter().map(|s| s.to_string()).collect()), ..Default::default() }
}

fn sse_session(expires_at: u64) -> (Session<MemStorage>, MemStorage) {
    let storage = MemStorage::default();
    *storage.cell.borrow_mut() = Some(SessionState {
        user_id: "alice".into(),
        grant_id: "grant-a".into(),
        client_id: "client-1".into(),
        transport: Transport::Sse,
        protocol_version: Some("2024-11-05".into()),
        client_info: Value::Null,
        client_capabilities: Value::Null,
        initialized: true,
        created_at: NOW,
        expires_at,
    });
    (Session::new(storage.clone()), storage)
}

fn owner() -> StreamOwner {
    StreamOwner { user_id: "alice".into(), grant_id: "grant-a".into() }
}

#[test]
fn alarm_keeps_a_stream_of_a_live_grant_and_looks_again_within_the_interval() {
    let (session, _) = sse_session(NOW + SESSION_TTL_SECS);
    let g = grants(&["grant-a"]);
    assert_eq!(block_on(at_alarm(&session, &owner(), &g, NOW, EVERY)), Verdict::Keep { next_check: NOW + EVERY });
    assert_eq!(g.lookups.get(), 1);
    // Close to the session's expiry, the next look is at the expiry.
    let (session, _) = sse_session(NOW + 10);
    assert_eq!(block_on(at_alarm(&session, &owner(), &g, NOW, EVERY)), Verdict::Keep { next_check: NOW + 10 });
}

#[test]
fn alarm_closes_the_stream_when_its_grant_is_gone() {
    let (session, storage) = sse_session(NOW + SESSION_TTL_SECS);
    let g = grants(&["grant-b"]);
    assert!(matches!(block_on(at_alarm(&session, &owner(), &g, NOW, EVERY)), Verdict::Close(_)));
    assert!(storage.cell.borrow().is_some(), "the session itself stays (the client may re-authorize)");
}

#[test]
fn alarm_closes_the_stream_when_the_session_expired_or_was_erased() {
    let (session, storage) = sse_session(NOW + 5);
    let g = grants(&["grant-a"]);
    assert!(matches!(block_on(at_alarm(&session, &owner(), &g, NOW + 5, EVERY)), Verdict::Close(_)));
    assert!(storage.cell.borrow().is_none(), "the expired session is erased");
    assert_eq!(g.lookups.get(), 0, "no grant lookup needed");

    let (session, storage) = sse_session(NOW + SESSION_TTL_SECS);
    *storage.cell.borrow_mut() = None;
    assert!(matches!(block_on(at_alarm(&session, &owner(), &g, NOW, EVERY)), Verdict::Close(_)));
}

#[test]
fn storage_failures_keep_the_stream_and_look_again_soon() {
    let (session, _) = sse_session(NOW + SESSION_TTL_SECS);
    let g = grants(&[]);
    g.down.set(true);
    assert_eq!(block_on(at_alarm(&session, &owner(), &g, NOW, EVERY)), Verdict::Keep { next_check: NOW + EVERY });
    let (session, storage) = sse_session(NOW + SESSION_TTL_SECS);
    storage.broken.set(true);
    assert_eq!(
        block_on(at_alarm(&session, &owner(), &grants(&[]), NOW, EVERY)),
        Verdict::Keep { next_check: NOW + EVERY }
    );
}

#[test]
fn a_request_under_the_clients_new_grant_takes_the_stream_over() {
    let (session, _) = sse_session(NOW + SESSION_TTL_SECS);
    let same = caller("alice", "grant-a", "tok-alice");
    let reauthorized = caller("alice", "grant-b", "tok-alice-2");
    // The stream's own grant sends: no lookup, nothing to do.
    let g = grants(&[]);
    assert_eq!(block_on(after_request(&session, &owner(), &same, &g, NOW)), AfterRequest::Keep);
    assert_eq!(g.lookups.get(), 0);
    // Another grant of the same client that replaced the stream's (a step-up): it takes the stream over.
    assert_eq!(
        block_on(after_request(&session, &owner(), &reauthorized, &grants(&["grant-b"]), NOW)),
        AfterRequest::Adopt(StreamOwner::of(&reauthorized))
    );
    // Both alive: the stream stays with its own.
    assert_eq!(
        block_on(after_request(&session, &owner(), &reauthorized, &grants(&["grant-a", "grant-b"]), NOW)),
        AfterRequest::Keep
    );
}

#[test]
fn a_request_that_finds_the_session_gone_ends_the_stream() {
    let (session, _) = sse_session(NOW + 5);
    let same = caller("alice", "grant-a", "tok-alice");
    assert!(matches!(
        block_on(after_request(&session, &owner(), &same, &grants(&["grant-a"]), NOW + 6)),
        AfterRequest::Close(_)
    ));
}

#[test]
fn kv_grants_are_alive_while_their_record_is_there_and_unexpired() {
    let kv = MemoryStore::new(NOW);
    let put = |id: &str, v: Value| block_on(kv.put(&format!("grant:alice:{id}"), &v.to_string(), None)).unwrap();
    let grant = |expires: Option<u64>| json!({"id": "g", "clientId": "c", "userId": "alice", "scope": [], "encryptedProps": "", "createdAt": NOW, "expiresAt": expires});
    put("live", grant(Some(NOW + 100)));
    put("forever", grant(None));
    put("expired", grant(Some(NOW)));
    put("unreadable", json!("not a grant"));
    let g = KvGrants(&kv);
    for (id, alive) in [("live", true), ("forever", true), ("expired", false), ("missing", false), ("unreadable", true)]
    {
        assert_eq!(block_on(g.alive("alice", id, NOW)), Ok(alive), "{id}");
    }
}
