//! The three browser cookies of the sign-in flow. All use the `__Host-`
//! prefix (Secure, Path=/, no Domain), so no subdomain or plain-http page can
//! plant or read them; browsers accept Secure cookies on http://127.0.0.1.
//!
//! - `__Host-CSRF_TOKEN`: one-time token echoed by the consent form.
//! - `__Host-APPROVED_CLIENTS`: clients this browser already approved, MACed.
//! - `__Host-CONSENTED_STATE`: SHA-256 of the `state` sent to PingOne, binding
//!   the sign-in attempt to the browser that started it.

use crate::util::crypto::{b64url, b64url_decode, constant_time_eq};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const CSRF_COOKIE: &str = "__Host-CSRF_TOKEN";
pub const APPROVED_COOKIE: &str = "__Host-APPROVED_CLIENTS";
pub const STATE_COOKIE: &str = "__Host-CONSENTED_STATE";

/// How long an approval is remembered.
pub const APPROVED_TTL_SECS: u64 = 30 * 24 * 3600;
/// Most client ids remembered in one cookie (the oldest are dropped), which
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

#[derive(Serialize, Deserialize)]
struct ApprovedPayload {
    /// Approved client ids, oldest first.
    c: Vec<String>,
    /// Unix time after which the whole cookie is ignored (the browser's
    /// Max-Age is not trusted).
    exp: u64,
}

fn mac(key: &[u8], payload: &str) -> [u8; 32] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut m = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    m.update(payload.as_bytes());
    m.finalize().into_bytes().into()
}

/// The client ids in a genuine, unexpired approved-clients cookie; empty for
/// a missing, tampered, foreign-key or expired one.
pub fn approved_clients(value: Option<&str>, key: &[u8], now: u64) -> Vec<String> {
    let Some((payload, sig)) = value.and_then(|v| v.split_once('.')) else {
        return Vec::new();
    };
    let Some(sig) = b64url_decode(sig) else { return Vec::new() };
    if !constant_time_eq(sig, mac(key, payload)) {
        return Vec::new();
    }
    let parsed = b64url_decode(payload).and_then(|json| serde_json::from_slice::<ApprovedPayload>(&json).ok());
    match parsed {
        Some(p) if p.exp > now => p.c,
        _ => Vec::new(),
    }
}

/// A signed cookie value remembering `client_id` on top of `existing`,
/// valid for [`APPROVED_TTL_SECS`] from `now`.
pub fn approve_client(existing: Vec<String>, client_id: &str, key: &[u8], now: u64) -> String {
    let mut clients: Vec<String> = existing.into_iter().filter(|c| c != client_id).collect();
    clients.push(client_id.to_owned());
    if clients.len() > MAX_APPROVED_CLIENTS {
        clients.drain(..clients.len() - MAX_APPROVED_CLIENTS);
    }
    let payload = ApprovedPayload { c: clients, exp: now + APPROVED_TTL_SECS };
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let payload = b64url(json);
    let sig = b64url(mac(key, &payload));
    format!("{payload}.{sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn approved_cookie_round_trips_and_accumulates() {
        let v = approve_client(Vec::new(), "client-a", KEY, NOW);
        assert_eq!(approved_clients(Some(&v), KEY, NOW), ["client-a"]);
        let v = approve_client(approved_clients(Some(&v), KEY, NOW), "client-b", KEY, NOW);
        assert_eq!(approved_clients(Some(&v), KEY, NOW), ["client-a", "client-b"]);
        // Re-approving moves the client to the end instead of duplicating it.
        let v = approve_client(approved_clients(Some(&v), KEY, NOW), "client-a", KEY, NOW);
        assert_eq!(approved_clients(Some(&v), KEY, NOW), ["client-b", "client-a"]);
    }

    #[test]
    fn approved_cookie_rejects_tampering_and_foreign_keys() {
        let v = approve_client(Vec::new(), "client-a", KEY, NOW);
        let (payload, sig) = v.split_once('.').unwrap();
        // A payload naming another client, keeping the old signature.
        let forged = b64url(br#"{"c":["client-evil"],"exp":9999999999}"#);
        assert!(approved_clients(Some(&format!("{forged}.{sig}")), KEY, NOW).is_empty());
        // A flipped signature character.
        let mut bad_sig = sig.to_owned();
        let last = if bad_sig.ends_with('A') { 'B' } else { 'A' };
        bad_sig.pop();
        bad_sig.push(last);
        assert!(approved_clients(Some(&format!("{payload}.{bad_sig}")), KEY, NOW).is_empty());
        // Signed with another key.
        let foreign = approve_client(Vec::new(), "client-a", b"another-key-another-key-another-key", NOW);
        assert!(approved_clients(Some(&foreign), KEY, NOW).is_empty());
        // Garbage.
        for junk in ["", ".", "abc", "a.b.c", "!!!.???"] {
            assert!(approved_clients(Some(junk), KEY, NOW).is_empty(), "{junk}");
        }
    }

    #[test]
    fn approved_cookie_expires_after_thirty_days() {
        let v = approve_client(Vec::new(), "client-a", KEY, NOW);
        assert_eq!(approved_clients(Some(&v), KEY, NOW + APPROVED_TTL_SECS - 1).len(), 1);
        assert!(approved_clients(Some(&v), KEY, NOW + APPROVED_TTL_SECS).is_empty());
    }

    #[test]
    fn approved_cookie_keeps_only_the_most_recent_clients() {
        let mut list = Vec::new();
        for i in 0..MAX_APPROVED_CLIENTS + 5 {
            let v = approve_client(list, &format!("client-{i}"), KEY, NOW);
            list = approved_clients(Some(&v), KEY, NOW);
        }
        assert_eq!(list.len(), MAX_APPROVED_CLIENTS);
        assert_eq!(list.last().unwrap(), &format!("client-{}", MAX_APPROVED_CLIENTS + 4));
        assert!(!list.contains(&"client-0".to_owned()));
    }
}
