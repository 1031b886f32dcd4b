//! The application's hooks: the token-exchange callback on code exchange and
//! refresh (new props, lifetime caps, a dead or unreachable upstream) and the
//! notice when a grant ends. The hook here is scripted: it stands in for the
//! sign-in module, whose real PingOne refresh is tested in `login` and in workerd.

use super::*;
use crate::hooks::{Exchange, ExchangeError, ExchangeResult, GrantType};
use crate::records::Grant;
use async_trait::async_trait;
use std::cell::RefCell;
use std::rc::Rc;

/// What the hook saw of one exchange.
#[derive(Debug, Clone)]
struct Seen {
    grant_type: GrantType,
    grant_id: String,
    token_scope: Vec<String>,
    props: Value,
}

#[derive(Default)]
struct Script {
    /// Answers, used one per exchange; none left means "change nothing".
    answers: RefCell<Vec<Result<ExchangeResult, ExchangeError>>>,
    seen: RefCell<Vec<Seen>>,
    ended: RefCell<Vec<String>>,
    /// Run inside the next exchange (a concurrent revocation, say).
    during: RefCell<Option<Box<dyn FnOnce()>>>,
}

struct Scripted(Rc<Script>);

#[async_trait(?Send)]
impl GrantHooks for Scripted {
    async fn exchange(&self, e: Exchange<'_>) -> Result<ExchangeResult, ExchangeError> {
        self.0.seen.borrow_mut().push(Seen {
            grant_type: e.grant_type,
            grant_id: e.grant_id.to_owned(),
            token_scope: e.token_scope.to_vec(),
            props: e.props.clone(),
        });
        if let Some(f) = self.0.during.borrow_mut().take() {
            f();
        }
        let mut answers = self.0.answers.borrow_mut();
        if answers.is_empty() {
            Ok(ExchangeResult::default())
        } else {
            answers.remove(0)
        }
    }
    async fn grant_ended(&self, grant: &Grant) {
        self.0.ended.borrow_mut().push(grant.id.clone());
    }
}

fn world() -> (World, Rc<Script>) {
    let script = Rc::new(Script::default());
    let mut w = World::new();
    w.hooks = Box::new(Scripted(script.clone()));
    (w, script)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn grant_id_of(token: &str) -> String {
    token.split(':').nth(1).unwrap().to_owned()
}

fn new_props(props: Value) -> Result<ExchangeResult, ExchangeError> {
    Ok(ExchangeResult { props: Some(props), ..Default::default() })
}

#[test]
fn the_code_exchange_runs_the_hook_which_may_cap_the_access_token() {
    let (w, script) = world();
    let c = w.public_client();
    script.answers.borrow_mut().push(Ok(ExchangeResult { access_token_ttl: Some(90), ..Default::default() }));
    let t = w.tokens(&c, "alice");
    assert_eq!(t["expires_in"], 90);
    let seen = script.seen.borrow()[0].clone();
    assert_eq!(seen.grant_type, GrantType::AuthorizationCode);
    assert_eq!(seen.props["secret"], "upstream-token");
    assert_eq!(seen.grant_id, grant_id_of(s(&t["access_token"])));
    w.advance(90);
    assert!(w.bearer(s(&t["access_token"])).is_err(), "the token dies with its cap");
    // The grant (and its refresh token) live on.
    assert_eq!(w.refresh(&c, s(&t["refresh_token"]), &[]).status(), 200);
}

#[test]
fn refresh_stores_new_props_under_a_new_key_and_the_retry_token_sees_them() {
    let (w, script) = world();
    let c = w.public_client();
    let t0 = w.tokens(&c, "alice");
    let r0 = s(&t0["refresh_token"]).to_owned();
    let before = w.grant_of(&r0).unwrap();
    script.answers.borrow_mut().push(Ok(ExchangeResult {
        props: Some(json!({"secret": "upstream-2"})),
        metadata: Some(json!({"label": "alice", "upstream": "sealed-2"})),
        access_token_ttl: Some(120),
    }));
    let t1 = json_of(&w.refresh(&c, &r0, &[]));
    assert_eq!(t1["expires_in"], 120);
    let after = w.grant_of(&r0).unwrap();
    assert_ne!(after["encryptedProps"], before["encryptedProps"]);
    assert_eq!(after["metadata"]["upstream"], "sealed-2");
    assert_eq!(w.bearer(s(&t1["access_token"])).unwrap().props["secret"], "upstream-2");
    // Access tokens issued before keep the props they were issued with.
    assert_eq!(w.bearer(s(&t0["access_token"])).unwrap().props["secret"], "upstream-token");
    // A retry with r0 (the answer was lost) reads the new props, not the old ones.
    let t2 = json_of(&w.refresh(&c, &r0, &[]));
    assert_eq!(script.seen.borrow()[2].props["secret"], "upstream-2");
    assert_eq!(w.bearer(s(&t2["access_token"])).unwrap().props["secret"], "upstream-2");
    // And so does the token of that retry, the next time round.
    let t3 = json_of(&w.refresh(&c, s(&t2["refresh_token"]), &[]));
    assert_eq!(w.bearer(s(&t3["access_token"])).unwrap().props["secret"], "upstream-2");
    assert_ttls_ok(&w);
}

#[test]
fn the_hook_is_told_the_narrowed_scope() {
    let (w, script) = world();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    assert_eq!(w.refresh(&c, s(&t["refresh_token"]), &[("scope", "todo_api:read")]).status(), 200);
    assert_eq!(script.seen.borrow()[1].token_scope, ["todo_api:read"]);
}

#[test]
fn a_dead_upstream_ends_the_grant_with_invalid_grant() {
    let (w, script) = world();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let r = s(&t["refresh_token"]).to_owned();
    script
        .answers
        .borrow_mut()
        .push(Err(ExchangeError::GrantDead("PingOne refused the refresh; sign in again".into())));
    let res = w.refresh(&c, &r, &[]);
    assert_error(&res, 400, "invalid_grant");
    assert_eq!(json_of(&res)["error_description"], "PingOne refused the refresh; sign in again");
    assert!(w.grant_of(&r).is_none(), "the grant is gone");
    assert!(w.keys("token:").is_empty(), "with its access tokens");
    assert!(w.bearer(s(&t["access_token"])).is_err());
    assert_eq!(*script.ended.borrow(), [grant_id_of(&r)]);
    assert_error(&w.refresh(&c, &r, &[]), 400, "invalid_grant");
}

#[test]
fn an_unreachable_upstream_is_retryable_and_changes_nothing() {
    let (w, script) = world();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let r = s(&t["refresh_token"]).to_owned();
    let before = w.grant_of(&r).unwrap();
    script.answers.borrow_mut().push(Err(ExchangeError::Unavailable("PingOne could not be reached".into())));
    let res = w.refresh(&c, &r, &[]);
    assert_error(&res, 503, "temporarily_unavailable");
    assert!(header(&res, "retry-after").is_some());
    assert_eq!(w.grant_of(&r).unwrap(), before, "the grant is untouched");
    assert!(script.ended.borrow().is_empty());
    // The same refresh token works once PingOne is back.
    assert_eq!(w.refresh(&c, &r, &[]).status(), 200);
}

#[test]
fn a_code_exchange_refused_by_the_hook_leaves_the_code_usable_when_retryable() {
    let (w, script) = world();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    script.answers.borrow_mut().push(Err(ExchangeError::Unavailable("later".into())));
    assert_error(&w.exchange(&c, &code, &pkce), 503, "temporarily_unavailable");
    assert_eq!(w.exchange(&c, &code, &pkce).status(), 200);
}

#[test]
fn a_grant_revoked_while_the_hook_ran_is_not_written_back() {
    let (w, script) = world();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let r = s(&t["refresh_token"]).to_owned();
    let key = format!("grant:alice:{}", grant_id_of(&r));
    // The revocation lands while the upstream refresh is in flight.
    let store = w.store.clone();
    *script.during.borrow_mut() = Some(Box::new(move || store.remove(&key)));
    script.answers.borrow_mut().push(new_props(json!({"secret": "upstream-2"})));
    assert_error(&w.refresh(&c, &r, &[]), 400, "invalid_grant");
    assert!(w.grant_of(&r).is_none(), "the refresh did not recreate the grant");
    assert_eq!(w.keys("token:").len(), 1, "and minted no token (only the first one remains)");
    // The fresh upstream tokens are reported as ended, so they get revoked too.
    assert_eq!(*script.ended.borrow(), [grant_id_of(&r)]);
}

#[test]
fn ending_a_grant_deletes_its_record_before_its_tokens() {
    // A store that fails every token deletion: the grant must be gone anyway.
    let (w, script) = world();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let r = s(&t["refresh_token"]).to_owned();
    w.store.fail_deletes_with_prefix("token:");
    let res = w.form_as("/revoke", &c, &[("token", &r)]);
    assert_ne!(res.status(), 200, "the storage failure is reported");
    assert!(w.grant_of(&r).is_none(), "but the grant record went first");
    assert_error(&w.refresh(&c, &r, &[]), 400, "invalid_grant");
    assert_eq!(*script.ended.borrow(), [grant_id_of(&r)]);
}

#[test]
fn re_authorization_and_the_purge_report_the_grants_they_end() {
    let (w, script) = world();
    let c = w.public_client();
    let first = w.tokens(&c, "alice");
    let second = w.tokens(&c, "alice");
    assert_eq!(*script.ended.borrow(), [grant_id_of(s(&first["access_token"]))], "replaced by the new sign-in");
    // An expired grant whose record KV's lazy expiry left behind.
    let key = format!("grant:alice:{}", grant_id_of(s(&second["access_token"])));
    let raw = w.store.raw(&key).unwrap();
    w.advance(31 * 24 * 3600);
    block_on(crate::store::KvStore::put(&*w.store, &key, &raw, None)).unwrap();
    assert_eq!(block_on(w.p().purge_expired()).unwrap(), 1);
    assert_eq!(script.ended.borrow()[1], grant_id_of(s(&second["access_token"])));
}

#[test]
fn the_code_exchange_may_narrow_the_grant_but_never_widen_it() {
    let (w, _) = world();
    let c = w.public_client();
    let exchange_with_scope = |(code, pkce): &(String, Pkce), scope: &str| {
        w.token(
            &c,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &c.redirect),
                ("code_verifier", &pkce.verifier),
                ("scope", scope),
            ],
        )
    };
    let read_only = w.code_for(&c, "alice", &[("scope", "todo_api:read")]);
    assert_error(&exchange_with_scope(&read_only, "todo_api:read todo_api:write"), 400, "invalid_scope");
    let full = w.code_for(&c, "bob", &[]);
    let t = json_of(&exchange_with_scope(&full, "todo_api:read"));
    assert_eq!(t["scope"], "todo_api:read");
    // The grant itself was narrowed: a refresh cannot get write back.
    let again = json_of(&w.refresh(&c, s(&t["refresh_token"]), &[]));
    assert_eq!(again["scope"], "todo_api:read");
    assert_error(&w.refresh(&c, s(&again["refresh_token"]), &[("scope", "todo_api:write")]), 400, "invalid_scope");
}

/// A refresh raced with a revocation of its grant, at every point between two
/// of the refresh's store operations, with a hook that changes nothing and
/// one that refreshes upstream (new props and metadata), and through the
/// read-your-writes layer of the grant's refresh object as well as directly:
/// the grant never comes back, nor does any token of it work.
#[test]
fn a_refresh_racing_a_revocation_never_brings_the_grant_back() {
    use crate::store::{ReadYourWrites, Written};
    let mut interleavings = 0;
    for upstream in [false, true] {
        for through_object in [false, true] {
            for after in 0.. {
                let (w, script) = world();
                let c = w.public_client();
                let t = w.tokens(&c, "alice");
                // One refresh before, through the same object: its write is remembered.
                let written = Written::default();
                let object = ReadYourWrites { inner: &*w.store, written: &written, now: w.store.now() };
                let first = Provider::new(&object, &w.config, w.store.now()).with_hooks(w.hooks.as_ref());
                let req = refresh_request(&c, s(&t["refresh_token"]));
                let res = block_on(first.handle(&req));
                assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
                let r = s(&json_of(&res)["refresh_token"]).to_owned();
                let (user, grant) = ("alice".to_owned(), grant_id_of(&r));
                if upstream {
                    script.answers.borrow_mut().push(Ok(ExchangeResult {
                        props: Some(json!({"secret": "upstream-2"})),
                        metadata: Some(json!({"label": "alice", "upstream": "sealed-2"})),
                        ..Default::default()
                    }));
                }
                let revoker = w.p();
                let revocation = async move { revoker.revoke_grant(&user, &grant).await.unwrap() };
                let racing = Interleaved::new(&*w.store, after, revocation);
                let object = ReadYourWrites { inner: &racing, written: &written, now: w.store.now() };
                let store: &dyn crate::store::KvStore = if through_object { &object } else { &racing };
                let p = Provider::new(store, &w.config, w.store.now()).with_hooks(w.hooks.as_ref());
                let res = block_on(p.handle(&refresh_request(&c, &r)));
                if !racing.meddled() {
                    break; // `after` is past the refresh's last store operation
                }
                interleavings += 1;
                let case = format!("upstream {upstream}, through the object {through_object}, after op {after}");
                assert!(w.grant_of(&r).is_none(), "{case}: the grant came back");
                assert!(w.keys(&format!("token:alice:{}:", grant_id_of(&r))).is_empty(), "{case}: a token is left");
                if res.status() == 200 {
                    let body = json_of(&res);
                    assert!(w.bearer(s(&body["access_token"])).is_err(), "{case}: its access token works");
                    assert_error(&w.refresh(&c, s(&body["refresh_token"]), &[]), 400, "invalid_grant");
                } else {
                    assert_error(&res, 400, "invalid_grant");
                }
                assert_error(&w.refresh(&c, &r, &[]), 400, "invalid_grant");
                if upstream {
                    // Fresh upstream tokens written by the refresh are reported as ended too.
                    let ended = script.ended.borrow();
                    assert!(ended.iter().all(|g| *g == grant_id_of(&r)) && !ended.is_empty(), "{case}: {ended:?}");
                }
            }
        }
    }
    assert!(interleavings >= 4 * 5, "the refresh had fewer store operations than expected: {interleavings}");
}

fn refresh_request(c: &Client, refresh_token: &str) -> Request<Vec<u8>> {
    let body = form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", &c.id)]);
    Request::post(format!("{ORIGIN}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.into_bytes())
        .unwrap()
}
