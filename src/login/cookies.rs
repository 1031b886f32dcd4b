//! The three browser cookies of the sign-in flow. All use the `__Host-`
//! prefix (Secure, Path=/, no Domain), so no subdomain or plain-http page can
//! plant or read them; browsers accept Secure cookies on http://127.0.0.1.
//!
//! - `__Host-CSRF_TOKEN`: one-time token echoed by the consent form.
//! - `__Host-APPROVED_CLIENTS`: approvals this browser gave, each bound to a
//!   client, its redirect URI and a scope set, MACed.
//! - `__Host-CONSENTED_STATE`: SHA-256 of the `state` sent to PingOne, binding
//!   the sign-in attempt to the browser that started it.

use crate::util::crypto::{b64url, b64url_decode, constant_time_eq, sha256};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const CSRF_COOKIE: &str = "__Host-CSRF_TOKEN";
pub const APPROVED_COOKIE: &str = "__Host-APPROVED_CLIENTS";
pub const STATE_COOKIE: &str = "__Host-CONSENTED_STATE";

/// How long an approval is remembered.
pub const APPROVED_TTL_SECS: u64 = 30 * 24 * 3600;
/// Most approvals remembered in one cookie (the oldest are dropped), which
/// keeps the cookie far below the 4 KB browsers allow.
pub const MAX_APPROVED_CLIENTS: usize = 20;

/// The value of cookie `name` in a `Cookie` request header.
pub fn get<'a>(cookie_header: Option<&'a str>, name: &str) -> Option<&'a str> {
    cookie_header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value for a `__Host-` cookie. `SameSite=Lax` lets the cookie
/// ride along on the top-level redirect back from PingOne; `Strict` is for
/// cookies only the worker's own pages use.
pub fn set(name: &str, value: &str, max_age: u64, strict: bool) -> String {
    let same_site = if strict { "Strict" } else { "Lax" };
    format!("{name}={value}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite={same_site}")
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn clear(name: &str) -> String {
    format!("{name}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax")
}

/// `true` when the consent form's token equals the CSRF cookie, compared in
/// constant time; a missing side never matches.
pub fn csrf_matches(form_token: Option<&str>, cookie_token: Option<&str>) -> bool {
    match (form_token, cookie_token) {
        (Some(f), Some(c)) if !f.is_empty() && !c.is_empty() => constant_time_eq(f, c),
        _ => false,
    }
}

/// One remembered approval: a client, sent back to one redirect URI, with
/// one set of scopes. Stored as short hashes so the cookie stays small
/// whatever the client registered.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// 96-bit hash of (client id, redirect URI), base64url.
    k: String,
    /// 32-bit hash of each approved scope, base64url, sorted. Scopes are
    /// only ever the server's supported ones (the request is validated), so
    /// a collision would need two of those few names to collide.
    s: Vec<String>,
}

/// Most scopes one remembered approval may hold; a larger set is approved
/// each time rather than remembered (keeps the cookie bounded).
pub const MAX_APPROVED_SCOPES: usize = 8;

fn approval_key(client_id: &str, redirect_uri: &str) -> String {
    // Length-prefixed, so no client id and redirect pair runs into another.
    let mut input = Vec::with_capacity(client_id.len() + redirect_uri.len() + 20);
    input.extend_from_slice(b"approval-v2");
    input.extend_from_slice(&(client_id.len() as u64).to_be_bytes());
    input.extend_from_slice(client_id.as_bytes());
    input.extend_from_slice(redirect_uri.as_bytes());
    b64url(&sha256(input)[..12])
}

fn scope_hashes(scopes: &[String]) -> Vec<String> {
    let mut h: Vec<String> = scopes.iter().map(|s| b64url(&sha256(format!("scope-v2 {s}"))[..4])).collect();
    h.sort();
    h.dedup();
    h
}

impl Approval {
    /// The approval of `client_id` returning to `redirect_uri` with `scopes`.
    pub fn new(client_id: &str, redirect_uri: &str, scopes: &[String]) -> Self {
        Approval { k: approval_key(client_id, redirect_uri), s: scope_hashes(scopes) }
    }

    /// `true` when `other` is for the same client and redirect URI and asks
    /// for no scope this approval lacks.
    pub fn covers(&self, other: &Approval) -> bool {
        self.k == other.k && other.s.iter().all(|s| self.s.binary_search(s).is_ok())
    }
}

#[derive(Serialize, Deserialize)]
struct ApprovedPayload {
    /// Format version; cookies from before approvals were bound to redirect
    /// URI and scopes lack it (and `a`) and count as no approval at all.
    v: u8,
    /// Approvals, oldest first.
    a: Vec<Approval>,
    /// Unix time after which the whole cookie is ignored (the browser's
    /// Max-Age is not trusted).
    exp: u64,
}

const FORMAT: u8 = 2;

fn mac(key: &[u8], payload: &str) -> [u8; 32] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut m = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    m.update(payload.as_bytes());
    m.finalize().into_bytes().into()
}

/// The approvals in a genuine, unexpired approved-clients cookie; empty for
/// a missing, tampered, foreign-key, expired or old-format one.
pub fn approvals(value: Option<&str>, key: &[u8], now: u64) -> Vec<Approval> {
    let Some((payload, sig)) = value.and_then(|v| v.split_once('.')) else {
        return Vec::new();
    };
    let Some(sig) = b64url_decode(sig) else { return Vec::new() };
    if !constant_time_eq(sig, mac(key, payload)) {
        return Vec::new();
    }
    let parsed = b64url_decode(payload).and_then(|json| serde_json::from_slice::<ApprovedPayload>(&json).ok());
    match parsed {
        Some(p) if p.v == FORMAT && p.exp > now => {
            p.a.into_iter().filter(|a| a.s.len() <= MAX_APPROVED_SCOPES).take(MAX_APPROVED_CLIENTS).collect()
        }
        _ => Vec::new(),
    }
}

/// `true` when one of `existing` covers `wanted`.
pub fn is_approved(existing: &[Approval], wanted: &Approval) -> bool {
    existing.iter().any(|a| a.covers(wanted))
}

/// A signed cookie value remembering `approval` on top of `existing` (whose
/// approvals it covers are dropped), valid for [`APPROVED_TTL_SECS`] from
/// `now`; `None` when it has too many scopes to remember.
pub fn approve(existing: Vec<Approval>, approval: Approval, key: &[u8], now: u64) -> Option<String> {
    if approval.s.len() > MAX_APPROVED_SCOPES {
        return None;
    }
    let mut list: Vec<Approval> = existing.into_iter().filter(|a| !approval.covers(a)).collect();
    list.push(approval);
    if list.len() > MAX_APPROVED_CLIENTS {
        list.drain(..list.len() - MAX_APPROVED_CLIENTS);
    }
    let payload = ApprovedPayload { v: FORMAT, a: list, exp: now + APPROVED_TTL_SECS };
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let payload = b64url(json);
    let sig = b64url(mac(key, &payload));
    Some(format!("{payload}.{sig}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_700_000_000;

    #[test]
    fn reads_a_cookie_by_exact_name() {
        let h = Some("a=1; __Host-CSRF_TOKEN=tok; x__Host-CSRF_TOKEN=evil;b=2");
        assert_eq!(get(h, CSRF_COOKIE), Some("tok"));
        assert_eq!(get(h, "b"), Some("2"));
        assert_eq!(get(h, "missing"), None);
        assert_eq!(get(Some("e="), "e"), None);
        assert_eq!(get(None, "a"), None);
    }

    #[test]
    fn host_prefixed_cookies_carry_the_required_attributes() {
        let c = set(STATE_COOKIE, "v", 600, false);
        assert!(c.starts_with("__Host-CONSENTED_STATE=v;"));
        for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=600"] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
        assert!(!c.contains("Domain"));
        assert!(set(CSRF_COOKIE, "v", 60, true).contains("SameSite=Strict"));
        assert!(clear(CSRF_COOKIE).contains("Max-Age=0"));
    }

    #[test]
    fn csrf_requires_both_sides_and_equality() {
        assert!(csrf_matches(Some("abc"), Some("abc")));
        assert!(!csrf_matches(Some("abc"), Some("abd")));
        assert!(!csrf_matches(Some("abc"), Some("abcd")));
        assert!(!csrf_matches(None, Some("abc")));
        assert!(!csrf_matches(Some("abc"), None));
        assert!(!csrf_matches(Some(""), Some("")));
    }

    const CB: &str = "http://127.0.0.1:6274/callback";
    const READ: &str = "todo_api:read";
    const WRITE: &str = "todo_api:write";

    fn ap(client: &str, redirect: &str, scopes: &[&str]) -> Approval {
        Approval::new(client, redirect, &scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn remember(existing: Vec<Approval>, a: Approval) -> Vec<Approval> {
        let v = approve(existing, a, KEY, NOW).unwrap();
        approvals(Some(&v), KEY, NOW)
    }

    #[test]
    fn an_approval_covers_the_same_or_fewer_scopes_for_the_same_client_and_redirect() {
        let list = remember(Vec::new(), ap("client-a", CB, &[READ]));
        assert!(is_approved(&list, &ap("client-a", CB, &[READ])));
        assert!(is_approved(&list, &ap("client-a", CB, &[])), "an empty set is contained in any");
        assert!(!is_approved(&list, &ap("client-a", CB, &[READ, WRITE])), "wider scopes need consent");
        assert!(!is_approved(&list, &ap("client-a", CB, &[WRITE])));
        assert!(!is_approved(&list, &ap("client-a", "http://127.0.0.1:6274/other", &[READ])), "other redirect");
        assert!(!is_approved(&list, &ap("client-b", CB, &[READ])), "other client");
        // The order and repetition of scopes do not matter.
        let list = remember(Vec::new(), ap("client-a", CB, &[WRITE, READ, WRITE]));
        assert!(is_approved(&list, &ap("client-a", CB, &[READ, WRITE])));
        assert!(is_approved(&list, &ap("client-a", CB, &[READ])));
        // Client id and redirect do not run into each other.
        let list = remember(Vec::new(), ap("a", "b\0c", &[]));
        assert!(!is_approved(&list, &ap("a\0b", "c", &[])));
    }

    #[test]
    fn approvals_accumulate_and_a_wider_one_replaces_those_it_covers() {
        let list = remember(Vec::new(), ap("client-a", CB, &[READ]));
        let list = remember(list, ap("client-b", CB, &[READ]));
        let list = remember(list, ap("client-a", CB, &[WRITE]));
        assert_eq!(list.len(), 3, "disjoint scope sets are separate approvals");
        assert!(!is_approved(&list, &ap("client-a", CB, &[READ, WRITE])), "never the union of two approvals");
        let list = remember(list, ap("client-a", CB, &[READ, WRITE]));
        assert_eq!(list, [ap("client-b", CB, &[READ]), ap("client-a", CB, &[READ, WRITE])]);
        // Re-approving moves it to the end instead of duplicating it.
        let list = remember(list, ap("client-b", CB, &[READ]));
        assert_eq!(list, [ap("client-a", CB, &[READ, WRITE]), ap("client-b", CB, &[READ])]);
    }

    #[test]
    fn the_cookie_holds_hashes_not_client_ids_or_redirects() {
        let v = approve(Vec::new(), ap("client-secretive", "https://client.example/cb", &[READ]), KEY, NOW).unwrap();
        let json = String::from_utf8(b64url_decode(v.split_once('.').unwrap().0).unwrap()).unwrap();
        for raw in ["client-secretive", "client.example", READ] {
            assert!(!json.contains(raw), "{json}");
        }
    }

    #[test]
    fn old_format_cookies_count_as_not_approved() {
        // What the cookie looked like when it held client ids, correctly signed.
        let payload = b64url(br#"{"c":["client-a"],"exp":9999999999}"#);
        let old = format!("{payload}.{}", b64url(mac(KEY, &payload)));
        assert!(approvals(Some(&old), KEY, NOW).is_empty());
        // A future or unknown version too.
        let payload = b64url(br#"{"v":3,"a":[],"exp":9999999999}"#);
        assert!(approvals(Some(&format!("{payload}.{}", b64url(mac(KEY, &payload)))), KEY, NOW).is_empty());
        // And approving on top of it starts a fresh list.
        let list = remember(approvals(Some(&old), KEY, NOW), ap("client-a", CB, &[READ]));
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn approved_cookie_rejects_tampering_and_foreign_keys() {
        let v = approve(Vec::new(), ap("client-a", CB, &[READ]), KEY, NOW).unwrap();
        let (payload, sig) = v.split_once('.').unwrap();
        // A payload approving everything, keeping the old signature.
        let wide = ap("client-a", CB, &[READ, WRITE]);
        let forged = b64url(serde_json::to_vec(&json!({"v": 2, "a": [wide], "exp": 9_999_999_999u64})).unwrap());
        assert!(approvals(Some(&format!("{forged}.{sig}")), KEY, NOW).is_empty());
        // A flipped signature character.
        let mut bad_sig = sig.to_owned();
        let last = if bad_sig.ends_with('A') { 'B' } else { 'A' };
        bad_sig.pop();
        bad_sig.push(last);
        assert!(approvals(Some(&format!("{payload}.{bad_sig}")), KEY, NOW).is_empty());
        // Signed with another key.
        let foreign = approve(Vec::new(), ap("client-a", CB, &[READ]), b"another-key-another-key-another-key", NOW);
        assert!(approvals(foreign.as_deref(), KEY, NOW).is_empty());
        // Garbage.
        for junk in ["", ".", "abc", "a.b.c", "!!!.???"] {
            assert!(approvals(Some(junk), KEY, NOW).is_empty(), "{junk}");
        }
    }

    #[test]
    fn approved_cookie_expires_after_thirty_days() {
        let v = approve(Vec::new(), ap("client-a", CB, &[READ]), KEY, NOW).unwrap();
        assert_eq!(approvals(Some(&v), KEY, NOW + APPROVED_TTL_SECS - 1).len(), 1);
        assert!(approvals(Some(&v), KEY, NOW + APPROVED_TTL_SECS).is_empty());
    }

    #[test]
    fn approved_cookie_stays_small_keeping_only_the_most_recent_approvals() {
        let many: Vec<String> = (0..MAX_APPROVED_SCOPES).map(|i| format!("a-rather-long-scope-name:{i}")).collect();
        let long_redirect = format!("https://client.example/{}", "x".repeat(2000));
        let mut list = Vec::new();
        let mut value = String::new();
        for i in 0..MAX_APPROVED_CLIENTS + 5 {
            value = approve(list, Approval::new(&format!("client-{i}"), &long_redirect, &many), KEY, NOW).unwrap();
            list = approvals(Some(&value), KEY, NOW);
        }
        assert_eq!(list.len(), MAX_APPROVED_CLIENTS);
        assert!(is_approved(
            &list,
            &Approval::new(&format!("client-{}", MAX_APPROVED_CLIENTS + 4), &long_redirect, &many)
        ));
        assert!(!is_approved(&list, &Approval::new("client-0", &long_redirect, &many)));
        let header = set(APPROVED_COOKIE, &value, APPROVED_TTL_SECS, false);
        assert!(header.len() < 4000, "cookie is {} bytes", header.len());
        // More scopes than that are not remembered (consent each time) rather than growing the cookie.
        let too_many: Vec<String> = (0..=MAX_APPROVED_SCOPES).map(|i| format!("s{i}")).collect();
        assert!(approve(Vec::new(), Approval::new("c", CB, &too_many), KEY, NOW).is_none());
    }
}
