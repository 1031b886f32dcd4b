//! One refresh at a time per grant, and one answer for one request.
//!
//! Clients refresh concurrently (two windows of one app, a retry racing the
//! original). Every refresh rotates the refresh token and rewrites the grant,
//! and KV has no compare-and-set, so the last writer would silently kill the
//! other caller's new token. With an upstream behind the grant it is worse:
//! PingOne revokes the whole token family when a rotated refresh token is
//! presented twice. So the host routes every refresh of a grant to one place
//! (a Durable Object on Workers; see [`grant_of`] for the name) and answers
//! it through a [`RefreshGate`]: the refreshes run one after the other, and a
//! request identical to the last one answered, within [`GRACE_SECS`], gets
//! that answer again, so both callers hold the same working tokens and the
//! upstream is refreshed once. Only the last answer is kept: once the grant
//! has moved on (a refresh with the new token), a replay of an older token
//! is refused as before.

use super::client_auth::Form;
use super::token_str;
use crate::crypto::sha256;
use futures_util::lock::Mutex;
use http::{HeaderMap, Request, Response, StatusCode};
use std::future::Future;

/// How long an answered refresh is handed out again to the same request.
/// Concurrent callers arrive within seconds; a caller later than this presents
/// the old token as the grant's previous one and gets new tokens (see `token`).
pub const GRACE_SECS: u64 = 30;

/// The serialization key of a token request: `Some` for a refresh-token grant
/// request naming one of our tokens (the same for every token of one grant),
/// `None` for anything else, which needs no serializing.
/// At the default token path; see [`grant_of_at`].
pub fn grant_of(req: &Request<Vec<u8>>) -> Option<String> {
    grant_of_at(req, &crate::config::Endpoints::default().token)
}

/// [`grant_of`] for a token endpoint at `token_path` ([`Config::endpoints`](crate::Config)).
pub fn grant_of_at(req: &Request<Vec<u8>>, token_path: &str) -> Option<String> {
    if req.method() != http::Method::POST || req.uri().path() != token_path {
        return None;
    }
    let form = Form::parse(req).ok()?;
    if form.get("grant_type") != Some("refresh_token") {
        return None;
    }
    let parts = token_str::parse(form.get("refresh_token")?)?;
    Some(format!("{}:{}", parts.user_id, parts.grant_id))
}

/// The last successful answer, kept for identical requests.
struct Answered {
    /// SHA-256 of what makes two requests the same request (see [`fingerprint`]).
    request: [u8; 32],
    at: u64,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answered {
    fn response(&self) -> Response<Vec<u8>> {
        let mut res = Response::new(self.body.clone());
        *res.status_mut() = self.status;
        *res.headers_mut() = self.headers.clone();
        res
    }
}

/// Two requests are the same when they present the same form (refresh token,
/// scope, resource…) with the same client authentication. Only a caller who
/// holds that refresh token and those credentials can match an answer.
fn fingerprint(req: &Request<Vec<u8>>) -> [u8; 32] {
    let auth = req.headers().get(http::header::AUTHORIZATION).map_or(&[][..], |v| v.as_bytes());
    let mut input = Vec::with_capacity(auth.len() + 1 + req.body().len());
    input.extend_from_slice(auth);
    input.push(b'\n');
    input.extend_from_slice(req.body());
    sha256(input)
}

/// The serialization point of one grant's refreshes (see the module docs).
#[derive(Default)]
pub struct RefreshGate {
    last: Mutex<Option<Answered>>,
}

impl RefreshGate {
    /// Answers `req` with `answer` once every earlier request through this gate
    /// is done, or with the kept answer of an identical request. `now` reads
    /// the clock (seconds), after the wait.
    pub async fn run<F, Fut>(&self, req: &Request<Vec<u8>>, now: impl Fn() -> u64, answer: F) -> Response<Vec<u8>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Response<Vec<u8>>>,
    {
        let request = fingerprint(req);
        // Held across the answer: that is the serialization.
        let mut last = self.last.lock().await;
        let at = now();
        if let Some(kept) = last.as_ref().filter(|a| a.request == request && at < a.at.saturating_add(GRACE_SECS)) {
            return kept.response();
        }
        let res = answer().await;
        // Errors are not kept: a retry after `temporarily_unavailable` must try again.
        if res.status() == StatusCode::OK {
            *last = Some(Answered {
                request,
                at: now(),
                status: res.status(),
                headers: res.headers().clone(),
                body: res.body().clone(),
            });
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::future::join;
    use std::cell::{Cell, RefCell};

    fn refresh(token: &str, auth: &str) -> Request<Vec<u8>> {
        Request::post("https://mcp.example/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", auth)
            .body(format!("grant_type=refresh_token&refresh_token={token}").into_bytes())
            .unwrap()
    }

    /// Pending once, so a task that is not held back by the gate lets the other run.
    async fn yield_once() {
        let mut yielded = false;
        futures::future::poll_fn(|cx| {
            if yielded {
                return std::task::Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await
    }

    fn ok(body: &str) -> Response<Vec<u8>> {
        Response::new(body.as_bytes().to_vec())
    }

    /// An answer that counts its runs in `runs`: `tokens #<run>`, with `status`.
    fn counting(
        runs: &Cell<u32>,
        status: StatusCode,
    ) -> impl Fn() -> std::future::Ready<Response<Vec<u8>>> + Copy + '_ {
        move || {
            runs.set(runs.get() + 1);
            let mut res = ok(&format!("tokens #{}", runs.get()));
            *res.status_mut() = status;
            std::future::ready(res)
        }
    }

    #[test]
    fn refreshes_of_one_grant_share_a_key_and_nothing_else_is_serialized() {
        let a = grant_of(&refresh("user-1:grant-1:aaaa", "Basic x")).unwrap();
        let b = grant_of(&refresh("user-1:grant-1:bbbb", "Basic y")).unwrap();
        assert_eq!(a, b);
        assert_ne!(Some(a), grant_of(&refresh("user-1:grant-2:aaaa", "Basic x")));
        assert_eq!(grant_of(&refresh("not-ours", "Basic x")), None);
        let code = Request::post("https://mcp.example/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"grant_type=authorization_code&code=user-1:grant-1:cccc".to_vec())
            .unwrap();
        assert_eq!(grant_of(&code), None);
        let elsewhere = Request::post("https://mcp.example/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"grant_type=refresh_token&refresh_token=user-1:grant-1:aaaa".to_vec())
            .unwrap();
        assert_eq!(grant_of(&elsewhere), None);
    }

    #[test]
    fn concurrent_identical_refreshes_run_once_and_get_the_same_answer() {
        let gate = RefreshGate::default();
        let runs = Cell::new(0);
        let req = refresh("u:g:t0", "Basic c");
        let answer = counting(&runs, StatusCode::OK);
        let (first, second) = block_on(join(gate.run(&req, || 100, answer), gate.run(&req, || 101, answer)));
        assert_eq!(runs.get(), 1);
        assert_eq!(first.body(), b"tokens #1");
        assert_eq!(second.body(), b"tokens #1");
    }

    #[test]
    fn refreshes_never_overlap() {
        let gate = RefreshGate::default();
        let log = RefCell::new(Vec::new());
        let answer = |name: &'static str| {
            let log = &log;
            move || async move {
                log.borrow_mut().push(format!("{name} start"));
                yield_once().await;
                log.borrow_mut().push(format!("{name} end"));
                ok(name)
            }
        };
        let (a, b) = (refresh("u:g:t1", "Basic c"), refresh("u:g:t2", "Basic c"));
        block_on(join(gate.run(&a, || 1, answer("a")), gate.run(&b, || 1, answer("b"))));
        assert_eq!(*log.borrow(), ["a start", "a end", "b start", "b end"]);
    }

    #[test]
    fn a_kept_answer_is_only_for_the_same_request_within_the_grace_window() {
        let gate = RefreshGate::default();
        let runs = Cell::new(0);
        let answer = counting(&runs, StatusCode::OK);
        block_on(gate.run(&refresh("u:g:t0", "Basic c"), || 100, answer));
        // Other client credentials: answered afresh.
        block_on(gate.run(&refresh("u:g:t0", "Basic other"), || 100, answer));
        assert_eq!(runs.get(), 2);
        block_on(gate.run(&refresh("u:g:t0", "Basic other"), || 100 + GRACE_SECS - 1, answer));
        assert_eq!(runs.get(), 2, "within the window");
        block_on(gate.run(&refresh("u:g:t0", "Basic other"), || 100 + GRACE_SECS, answer));
        assert_eq!(runs.get(), 3, "after the window");
    }

    #[test]
    fn once_the_grant_moved_on_an_older_request_is_answered_afresh() {
        let gate = RefreshGate::default();
        let runs = Cell::new(0);
        let answer = counting(&runs, StatusCode::OK);
        block_on(gate.run(&refresh("u:g:t0", "Basic c"), || 100, answer));
        block_on(gate.run(&refresh("u:g:t1", "Basic c"), || 101, answer));
        // The authorization server decides about t0 now (it has been rotated twice: refused).
        block_on(gate.run(&refresh("u:g:t0", "Basic c"), || 102, answer));
        assert_eq!(runs.get(), 3);
    }

    #[test]
    fn failures_are_not_kept() {
        let gate = RefreshGate::default();
        let runs = Cell::new(0);
        let answer = counting(&runs, StatusCode::SERVICE_UNAVAILABLE);
        let req = refresh("u:g:t0", "Basic c");
        block_on(gate.run(&req, || 1, answer));
        block_on(gate.run(&req, || 2, answer));
        assert_eq!(runs.get(), 2);
    }
}
