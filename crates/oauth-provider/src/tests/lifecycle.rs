//! Grant and client lifecycle: sliding refresh expiry, registrations renewed
//! while in use, grant key metadata as workers-oauth-provider 1.x writes it,
//! one grant per user, client and resource, and the purge in batches from a
//! cursor.

use super::*;
use crate::records::Grant;
use crate::store::{Counting, KvStore};

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn grant_key_of(token: &str) -> String {
    let mut it = token.split(':');
    format!("grant:{}:{}", it.next().unwrap(), it.next().unwrap())
}

/// Refreshes and returns the new token response (asserting success).
fn refreshed(w: &World, c: &Client, refresh_token: &str) -> Value {
    let res = w.refresh(c, refresh_token, &[]);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    json_of(&res)
}

#[test]
fn by_default_a_grant_ends_at_a_fixed_time_however_often_it_is_refreshed() {
    let w = World::with_config(Config { refresh_token_ttl: 2 * DAY, ..Config::default() });
    let c = w.public_client();
    let mut t = w.tokens(&c, "alice");
    for _ in 0..4 {
        w.advance(11 * HOUR);
        t = refreshed(&w, &c, s(&t["refresh_token"]));
    }
    assert_eq!(w.grant_of(s(&t["refresh_token"])).unwrap()["expiresAt"], NOW + 2 * DAY);
    w.advance(5 * HOUR); // 49 hours after the exchange
    assert_error(&w.refresh(&c, s(&t["refresh_token"]), &[]), 400, "invalid_grant");
}

#[test]
fn with_an_idle_lifetime_each_refresh_moves_the_grants_end() {
    let w = World::with_config(Config {
        refresh_token_ttl: 2 * DAY,
        refresh_token_idle_ttl: Some(DAY),
        ..Config::default()
    });
    let c = w.public_client();
    let mut t = w.tokens(&c, "alice");
    assert_eq!(w.grant_of(s(&t["refresh_token"])).unwrap()["expiresAt"], NOW + 2 * DAY, "the first lifetime");
    // Refreshed every 20 hours, it lives well past the fixed end.
    for _ in 0..5 {
        w.advance(20 * HOUR);
        t = refreshed(&w, &c, s(&t["refresh_token"]));
        let now = w.store.now();
        let key = grant_key_of(s(&t["refresh_token"]));
        assert_eq!(w.grant_of(s(&t["refresh_token"])).unwrap()["expiresAt"], now + DAY);
        // The record's KV expiry moves with it (kept past the end for the purge).
        assert_eq!(w.store.expires_at(&key), Some(now + DAY + crate::grants::ENDED_GRANT_RETENTION_SECS));
        assert_eq!(t["expires_in"], 3600);
        assert!(w.bearer(s(&t["access_token"])).is_ok());
    }
    assert!(w.store.now() > NOW + 4 * DAY);
    // Idle for longer than a day: over, and nothing revives it.
    w.advance(DAY);
    assert_error(&w.refresh(&c, s(&t["refresh_token"]), &[]), 400, "invalid_grant");
    assert_eq!(block_on(w.p().purge_expired()).unwrap(), 1);
    assert!(w.grant_of(s(&t["refresh_token"])).is_none());
}

#[test]
fn an_idle_lifetime_shorter_than_the_first_one_shortens_it_at_the_first_refresh() {
    // As in 1.x: "30 days to start, then at least weekly".
    let w = World::with_config(Config { refresh_token_idle_ttl: Some(7 * DAY), ..Config::default() });
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    w.advance(DAY);
    let t = refreshed(&w, &c, s(&t["refresh_token"]));
    assert_eq!(w.grant_of(s(&t["refresh_token"])).unwrap()["expiresAt"], NOW + 8 * DAY);
    w.advance(7 * DAY);
    assert_error(&w.refresh(&c, s(&t["refresh_token"]), &[]), 400, "invalid_grant");
}

#[test]
fn the_idle_lifetime_is_checked_and_read_from_a_variable() {
    let vars = |pairs: Vec<(&'static str, &'static str)>| {
        Config::from_lookup(move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    };
    assert_eq!(vars(vec![]).unwrap().refresh_token_idle_ttl, None);
    assert_eq!(vars(vec![("OAUTH_REFRESH_TOKEN_IDLE_TTL", "0")]).unwrap().refresh_token_idle_ttl, None);
    assert_eq!(vars(vec![("OAUTH_REFRESH_TOKEN_IDLE_TTL", "604800")]).unwrap().refresh_token_idle_ttl, Some(604_800));
    for bad in ["59", "abc", "-5"] {
        let pairs = vec![("OAUTH_REFRESH_TOKEN_IDLE_TTL", bad)];
        let e = vars(pairs).unwrap_err().0;
        assert!(e.contains("OAUTH_REFRESH_TOKEN_IDLE_TTL") && !e.contains(bad), "{e}");
    }
    let e = vars(vec![("OAUTH_REFRESH_TOKEN_IDLE_TTL", "600"), ("OAUTH_ACCESS_TOKEN_TTL", "3600")]).unwrap_err();
    assert!(e.0.contains("OAUTH_ACCESS_TOKEN_TTL"), "{}", e.0);
    let e = vars(vec![("OAUTH_REFRESH_TOKEN_IDLE_TTL", "86400"), ("OAUTH_REFRESH_TOKEN_TTL", "0")]).unwrap_err();
    assert!(e.0.contains("needs refresh tokens"), "{}", e.0);
    assert!(!vars(vec![]).unwrap().renew_clients_in_use);
    assert!(vars(vec![("OAUTH_CLIENT_RENEWAL", "true")]).unwrap().renew_clients_in_use);
    assert!(vars(vec![("OAUTH_CLIENT_RENEWAL", "yes")]).unwrap_err().0.contains("OAUTH_CLIENT_RENEWAL"));
}

fn renewing(on: bool) -> World {
    World::with_config(Config { client_ttl: 10 * DAY, renew_clients_in_use: on, ..Config::default() })
}

fn client_record(w: &World, c: &Client) -> Option<Value> {
    w.store.raw(&format!("client:{}", c.id)).map(|raw| serde_json::from_str(&raw).unwrap())
}

#[test]
fn a_registration_in_use_is_renewed_once_half_its_life_is_gone() {
    let w = renewing(true);
    let c = w.public_client();
    let key = format!("client:{}", c.id);
    let unused = client_record(&w, &c).unwrap();
    assert_eq!(unused["registrationExpiresAt"], NOW + DAY, "stamped as 1.x does, for the unused lifetime");
    assert_eq!(unused["awaitingFirstToken"], true);
    let mut t = w.tokens(&c, "alice");
    let promoted = client_record(&w, &c).unwrap();
    assert_eq!(promoted["registrationExpiresAt"], NOW + 10 * DAY, "the first token promotes it");
    assert!(promoted.get("awaitingFirstToken").is_none());
    w.advance(4 * DAY);
    t = refreshed(&w, &c, s(&t["refresh_token"]));
    assert_eq!(w.store.expires_at(&key), Some(NOW + 10 * DAY), "more than half left: no write");
    w.advance(2 * DAY);
    t = refreshed(&w, &c, s(&t["refresh_token"]));
    let now = w.store.now();
    let record = client_record(&w, &c).unwrap();
    assert_eq!(record["registrationExpiresAt"], now + 10 * DAY);
    assert_eq!(w.store.expires_at(&key), Some(now + 10 * DAY));
    assert_eq!(record["clientName"], "Test client", "the rest of the record is kept");
    // Past the first registration's end, the client is still there and works.
    w.advance(5 * DAY);
    refreshed(&w, &c, s(&t["refresh_token"]));
    assert!(client_record(&w, &c).is_some());
}

#[test]
fn without_renewal_a_registration_ends_on_schedule_however_much_it_is_used() {
    let w = renewing(false);
    let c = w.public_client();
    let mut t = w.tokens(&c, "alice");
    for _ in 0..3 {
        w.advance(3 * DAY);
        t = refreshed(&w, &c, s(&t["refresh_token"]));
    }
    w.advance(DAY + 1);
    assert!(client_record(&w, &c).is_none());
    assert_error(&w.refresh(&c, s(&t["refresh_token"]), &[]), 401, "invalid_client");
}

#[test]
fn registrations_without_an_expiry_stamp_are_never_renewed() {
    let w = renewing(true);
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    // A record as 0.1.0 writes it: no registrationExpiresAt.
    let key = format!("client:{}", c.id);
    let mut record = client_record(&w, &c).unwrap();
    record.as_object_mut().unwrap().remove("registrationExpiresAt");
    block_on(KvStore::put(&*w.store, &key, &record.to_string(), Some(10 * DAY))).unwrap();
    w.advance(8 * DAY);
    refreshed(&w, &c, s(&t["refresh_token"]));
    assert_eq!(w.store.expires_at(&key), Some(NOW + 10 * DAY), "its original schedule");
    assert!(client_record(&w, &c).unwrap().get("registrationExpiresAt").is_none());
}

#[test]
fn pre_registered_clients_carry_no_expiry_stamp() {
    let w = renewing(true);
    let doc = json!({"client_name": "Ops", "redirect_uris": [WEB_REDIRECT]});
    let (client, _) = block_on(w.p().register_client_admin(&doc)).unwrap();
    assert_eq!(client.registration_expires_at, None);
    assert!(w.store.expires_at(&format!("client:{}", client.client_id)).is_none());
}

#[test]
fn grants_carry_the_key_metadata_1x_writes_at_every_write() {
    let w = World::new();
    let c = w.public_client();
    let expected = json!({"clientId": c.id, "resource": MCP, "redirectUri": REDIRECT});
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    let key = grant_key_of(&code);
    assert_eq!(w.store.metadata(&key), Some(expected.clone()), "at authorization");
    let t = json_of(&w.exchange(&c, &code, &pkce));
    assert_eq!(w.store.metadata(&key), Some(expected.clone()), "at the code exchange");
    w.advance(60);
    refreshed(&w, &c, s(&t["refresh_token"]));
    assert_eq!(w.store.metadata(&key), Some(expected), "at a refresh");
}

#[test]
fn key_metadata_that_would_not_fit_in_kv_is_left_out() {
    let mut g = Grant {
        client_id: "c".into(),
        redirect_uri: Some(format!("https://a.example/{}", "x".repeat(1100))),
        ..Grant::default()
    };
    assert_eq!(g.key_metadata(), None);
    g.redirect_uri = Some("https://a.example/cb".into());
    assert_eq!(g.key_metadata(), Some(json!({"clientId": "c", "redirectUri": "https://a.example/cb"})));
}

/// The grant ids of a user, from the store.
fn grant_ids(w: &World, user: &str) -> Vec<String> {
    w.keys(&format!("grant:{user}:")).into_iter().map(|k| k.rsplit(':').next().unwrap().to_owned()).collect()
}

#[test]
fn a_new_authorization_replaces_older_grants_for_the_same_client_and_resource_only() {
    let w = World::new();
    let c = w.public_client();
    let other = w.public_client();
    let origin_resource = format!("{ORIGIN}/");
    let mcp1 = w.tokens(&c, "alice");
    let whole = {
        let (code, pkce) = w.code_for(&c, "alice", &[("resource", &origin_resource)]);
        json_of(&w.exchange(&c, &code, &pkce))
    };
    let other_client = w.tokens(&other, "alice");
    let bobs = w.tokens(&c, "bob");
    assert_eq!(grant_ids(&w, "alice").len(), 3, "another resource is another grant");
    let mcp2 = w.tokens(&c, "alice");
    assert!(w.grant_of(s(&mcp1["refresh_token"])).is_none(), "replaced");
    for kept in [&whole, &other_client, &mcp2, &bobs] {
        assert!(w.grant_of(s(&kept["refresh_token"])).is_some());
    }
    assert_eq!(grant_ids(&w, "alice").len(), 3);
}

#[test]
fn grants_written_without_metadata_or_resource_are_read_and_count_as_the_default_resource() {
    let w = World::new();
    let c = w.public_client();
    let old = w.tokens(&c, "alice");
    let key = grant_key_of(s(&old["refresh_token"]));
    // As 0.1.0 writes it: no key metadata, and a grant from before resource indicators.
    let mut g = w.grant_of(s(&old["refresh_token"])).unwrap();
    g.as_object_mut().unwrap().remove("resource");
    block_on(KvStore::put(&*w.store, &key, &g.to_string(), Some(30 * DAY))).unwrap();
    assert_eq!(w.store.metadata(&key), None);
    w.tokens(&c, "alice");
    assert!(w.store.raw(&key).is_none(), "replaced");
}

#[test]
fn finding_the_grants_to_replace_reads_no_grant_that_carries_metadata() {
    let w = World::new();
    let c = w.public_client();
    for _ in 0..5 {
        let other = w.public_client();
        w.tokens(&other, "alice");
    }
    let t = w.tokens(&c, "alice");
    let newer = w.tokens(&c, "alice");
    let grant: Grant = serde_json::from_value(w.grant_of(s(&newer["refresh_token"])).unwrap()).unwrap();
    let counted = Counting::new(&*w.store);
    let p = Provider::new(&counted, &w.config, w.store.now());
    // Nothing left to replace: one list, no reads.
    assert_eq!(block_on(p.replace_older_grants(&grant, MCP)).unwrap(), 0);
    assert_eq!(counted.ops(), 1);
    assert!(w.grant_of(s(&t["refresh_token"])).is_none());
}

/// `n` grants of as many users, with their records kept past their end.
fn expired_grants(w: &World, n: usize) -> Vec<String> {
    let c = w.public_client();
    let keys: Vec<String> =
        (0..n).map(|i| grant_key_of(s(&w.tokens(&c, &format!("user{i:02}"))["refresh_token"]))).collect();
    for k in &keys {
        let mut g: Value = serde_json::from_str(&w.store.raw(k).unwrap()).unwrap();
        g["expiresAt"] = json!(NOW + HOUR);
        block_on(KvStore::put(&*w.store, k, &g.to_string(), None)).unwrap();
    }
    keys
}

#[test]
fn the_purge_goes_through_a_large_namespace_in_batches_from_a_cursor() {
    let w = World::new();
    let ended = expired_grants(&w, 7);
    let live = w.tokens(&w.public_client(), "zed");
    w.advance(2 * HOUR);
    let mut cursor: Option<String> = None;
    let mut purged = 0;
    let mut batches = 0;
    loop {
        let p = block_on(w.p().purge_expired_batch(cursor.as_deref(), 3)).unwrap();
        assert!(p.checked <= 3, "{p:?}");
        purged += p.purged;
        batches += 1;
        match p.cursor {
            Some(c) => {
                assert!(c.starts_with("grants:"), "1.x's cursor format: {c}");
                cursor = Some(c)
            }
            None => break,
        }
    }
    assert_eq!((purged, batches), (7, 3));
    assert!(ended.iter().all(|k| w.store.raw(k).is_none()));
    assert!(w.grant_of(s(&live["refresh_token"])).is_some());
    // The next run starts a new sweep, which finds nothing.
    let p = block_on(w.p().purge_expired_batch(None, 50)).unwrap();
    assert_eq!((p.checked, p.purged, p.cursor), (1, 0, None));
}

#[test]
fn a_purge_batch_stays_within_its_kv_operations() {
    let w = World::new();
    expired_grants(&w, 6);
    w.advance(2 * HOUR);
    let counted = Counting::new(&*w.store);
    let p = Provider::new(&counted, &w.config, w.store.now());
    let progress = block_on(p.purge_expired_batch(None, 2)).unwrap();
    assert_eq!((progress.checked, progress.purged), (2, 2));
    // One list, a read per grant, and per ended grant its delete and the list of
    // its tokens (expired, so none to delete).
    assert_eq!(counted.ops(), 1 + 2 + 2 * 2);
}

#[test]
fn a_cursor_left_by_1x_or_unreadable_starts_a_new_sweep() {
    let w = World::new();
    expired_grants(&w, 2);
    w.advance(2 * HOUR);
    let p = block_on(w.p().purge_expired_batch(Some("tokens:abc"), 50)).unwrap();
    assert_eq!((p.checked, p.purged, p.cursor), (2, 2, None));
    expired_grants(&w, 1);
    w.advance(2 * HOUR);
    assert_eq!(block_on(w.p().purge_expired_batch(Some("nonsense"), 50)).unwrap().purged, 1);
}

#[test]
fn scheduled_runs_resume_from_the_stored_cursor_within_their_limits_and_clear_it_when_done() {
    use crate::grants::PurgeLimits;
    let w = World::new();
    let ended = expired_grants(&w, 5);
    w.advance(2 * HOUR);
    let limits = PurgeLimits { grants: 2, ..PurgeLimits::default() };
    let mut runs = Vec::new();
    loop {
        let run = block_on(w.p().purge_run("purge-cursor", limits)).unwrap();
        assert!(run.checked <= 2, "{run:?}");
        // A run that stops early leaves where it got to for the next one.
        assert_eq!(w.store.raw("purge-cursor").is_some(), !run.complete, "{run:?}");
        runs.push(run.purged);
        if run.complete {
            break;
        }
    }
    assert_eq!(runs, vec![2, 2, 1]);
    assert!(ended.iter().all(|k| w.store.raw(k).is_none()));
    // Limits on grants ended and store operations end a run early too.
    let more = expired_grants(&w, 4);
    w.advance(2 * HOUR);
    let few = PurgeLimits { ended: 1, ..PurgeLimits::default() };
    let run = block_on(w.p().purge_run("purge-cursor", PurgeLimits { grants: 1, ..few })).unwrap();
    assert_eq!((run.purged, run.complete), (1, false));
    let run = block_on(w.p().purge_run("purge-cursor", PurgeLimits::default())).unwrap();
    assert_eq!((run.purged, run.complete), (3, true));
    assert!(more.iter().all(|k| w.store.raw(k).is_none()));
    // A run starts no batch its store operations would not fit in.
    expired_grants(&w, 60);
    w.advance(2 * HOUR);
    let tight = PurgeLimits { grants: 1000, ended: 1000, store_ops: 1 };
    let run = block_on(w.p().purge_run("purge-cursor", tight)).unwrap();
    assert_eq!((run.checked, run.complete), (crate::grants::PURGE_BATCH, false));
    let run = block_on(w.p().purge_run("purge-cursor", tight)).unwrap();
    assert_eq!((run.purged, run.complete), (60 - crate::grants::PURGE_BATCH, true));
    assert!(w.store.raw("purge-cursor").is_none(), "a complete sweep leaves no cursor");
}

/// The in-memory store cannot be made to fail partway, hence `Meddled`: a run
/// that fails after a batch reports what it did, keeps its cursor, and the next
/// run goes on from there.
#[test]
fn a_purge_run_that_fails_partway_reports_what_it_did_and_the_next_one_goes_on() {
    use crate::grants::{PurgeLimits, PurgeRun, PURGE_BATCH};
    let w = World::new();
    let ended = expired_grants(&w, PURGE_BATCH + 3);
    w.advance(2 * HOUR);
    let failing = Meddled::new(&w.store).failing_listings_of("grant:");
    let p = Provider::new(&failing, &w.config, w.store.now()).with_hooks(w.hooks.as_ref());
    let roomy = PurgeLimits { grants: 1000, ended: 1000, store_ops: 100_000 };
    let e = block_on(p.purge_run("purge-cursor", roomy)).unwrap_err();
    assert_eq!(e.run, PurgeRun { checked: PURGE_BATCH, purged: PURGE_BATCH, complete: false });
    assert_eq!(e.error, crate::store::StoreError::Unavailable("list failed".into()));
    let line = e.to_string();
    assert!(line.contains(&format!("after checking {PURGE_BATCH} grants and ending {PURGE_BATCH}")), "{line}");
    assert!(w.store.raw("purge-cursor").is_some(), "the cursor is kept");
    let run = block_on(w.p().purge_run("purge-cursor", PurgeLimits::default())).unwrap();
    assert_eq!((run.purged, run.complete), (3, true));
    assert!(ended.iter().all(|k| w.store.raw(k).is_none()));
}

#[test]
fn a_purge_run_ends_no_more_grants_than_its_limit_even_within_one_batch() {
    use crate::grants::PurgeLimits;
    let w = World::new();
    expired_grants(&w, 12);
    w.advance(2 * HOUR);
    let limits = PurgeLimits { ended: 5, ..PurgeLimits::default() };
    let first = block_on(w.p().purge_run("purge-cursor", limits)).unwrap();
    assert_eq!((first.purged, first.complete), (5, false));
    let second = block_on(w.p().purge_run("purge-cursor", limits)).unwrap();
    assert_eq!((second.purged, second.complete), (5, false));
    let last = block_on(w.p().purge_run("purge-cursor", limits)).unwrap();
    assert_eq!((last.purged, last.complete), (2, true));
}

#[test]
fn grants_record_when_tokens_were_last_issued_by_the_writes_they_already_make() {
    let w = World::new();
    let c = w.public_client();
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    let key = grant_key_of(&code);
    let record = |w: &World| serde_json::from_str::<Value>(&w.store.raw(&key).unwrap()).unwrap();
    assert!(record(&w).get("tokensIssuedAt").is_none(), "not before the code exchange");
    w.advance(5);
    let t = json_of(&w.exchange(&c, &code, &pkce));
    assert_eq!(record(&w)["tokensIssuedAt"], NOW + 5);
    w.advance(HOUR);
    refreshed(&w, &c, s(&t["refresh_token"]));
    assert_eq!(record(&w)["tokensIssuedAt"], NOW + 5 + HOUR);
    let listed = block_on(w.p().list_user_grants("alice")).unwrap();
    assert_eq!(listed[0].tokens_issued_at, Some(NOW + 5 + HOUR));
    assert_eq!(listed[0].redirect_uri.as_deref(), Some(REDIRECT));
}
