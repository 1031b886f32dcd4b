//! The connections page's sign-in session and its CSRF token.
//!
//! The session is a cookie, not a KV record: `__Host-CONNECTIONS_SESSION`
//! holds the PingOne `sub`, a display label, a random session id and the
//! expiry, MACed (HMAC-SHA256 under `COOKIE_ENCRYPTION_KEY`, domain-separated
//! from the other cookies). It lives [`SESSION_TTL_SECS`]; signing out clears
//! it. The CSRF token is an HMAC of the session id, so it is bound to this
//! session and needs no storage either. Like the consent cookies it is
//! `__Host-` + Secure, which browsers also accept on http://127.0.0.1 and
//! http://localhost (local development).

use crate::util::crypto::{b64url, b64url_decode, constant_time_eq, random_token};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signed-in session of the connections page.
pub const SESSION_COOKIE: &str = "__Host-CONNECTIONS_SESSION";
/// SHA-256 of the `state` sent to PingOne for a connections sign-in: binds the
/// trip to this browser, and tells `/callback` the trip is the page's.
pub const STATE_COOKIE: &str = "__Host-CONNECTIONS_STATE";
/// How long a sign-in to the connections page lasts.
pub const SESSION_TTL_SECS: u64 = 15 * 60;
/// The label kept in the cookie is cut to this many characters.
const MAX_LABEL_CHARS: usize = 100;

/// Who is signed in to the connections page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// PingOne user id: whose grants are listed.
    pub sub: String,
    /// What to call them on the page (username, name or email).
    pub label: String,
    /// Random per sign-in; the CSRF token is derived from it.
    sid: String,
    /// Unix time the session ends (the cookie's Max-Age is not trusted).
    pub exp: u64,
}

fn mac(key: &[u8], purpose: &str, data: &str) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else { return [0; 32] };
    m.update(purpose.as_bytes());
    m.update(&[0]);
    m.update(data.as_bytes());
    m.finalize().into_bytes().into()
}

impl Session {
    /// A fresh session for `sub` from `now`.
    pub fn new(sub: &str, label: &str, now: u64) -> Self {
        Session {
            sub: sub.to_owned(),
            label: label.chars().take(MAX_LABEL_CHARS).collect(),
            sid: random_token(32),
            exp: now + SESSION_TTL_SECS,
        }
    }

    /// The cookie value: `exp.sid.base64url(sub).base64url(label).base64url(mac)`
    /// (no JSON: a few fields need no serde code in the bundle).
    pub fn seal(&self, key: &[u8]) -> String {
        let payload = format!("{}.{}.{}.{}", self.exp, self.sid, b64url(&self.sub), b64url(&self.label));
        let sig = b64url(mac(key, "connections-session-v1", &payload));
        format!("{payload}.{sig}")
    }

    /// The session in a genuine, unexpired cookie value; `None` otherwise.
    pub fn open(value: Option<&str>, key: &[u8], now: u64) -> Option<Session> {
        let (payload, sig) = value?.rsplit_once('.')?;
        if !constant_time_eq(b64url_decode(sig)?, mac(key, "connections-session-v1", payload)) {
            return None;
        }
        let mut parts = payload.split('.');
        let exp = parts.next()?.parse().ok()?;
        let sid = parts.next()?.to_owned();
        let text = |p: Option<&str>| String::from_utf8(b64url_decode(p?)?).ok();
        let (sub, label) = (text(parts.next())?, text(parts.next())?);
        let s = Session { sub, label, sid, exp };
        (parts.next().is_none() && s.exp > now && !s.sub.is_empty()).then_some(s)
    }

    /// The CSRF token of this session's forms.
    pub fn csrf_token(&self, key: &[u8]) -> String {
        b64url(mac(key, "connections-csrf-v1", &self.sid))
    }

    /// Whether a form's token is this session's (constant time; a missing one never is).
    pub fn csrf_matches(&self, key: &[u8], form_token: Option<&str>) -> bool {
        form_token.is_some_and(|t| !t.is_empty() && constant_time_eq(t, self.csrf_token(key)))
    }
}

/// Whether a POST comes from this worker's own pages: its `Origin` is ours,
/// or, where the browser sent none or `null` (a page whose referrer policy
/// is `no-referrer` makes Chromium send `null`), `Sec-Fetch-Site` (set by the
/// browser, never by a page) says same-origin. Neither (not a browser, or
/// one that hides both) is refused.
pub fn same_origin(origin: Option<&str>, sec_fetch_site: Option<&str>, own_origin: &str) -> bool {
    match origin {
        Some(o) if o != "null" => o.eq_ignore_ascii_case(own_origin),
        _ => sec_fetch_site == Some("same-origin"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_700_000_000;

    #[test]
    fn a_session_opens_with_its_key_until_it_expires() {
        let s = Session::new("user-1", "alice", NOW);
        let v = s.seal(KEY);
        assert_eq!(Session::open(Some(&v), KEY, NOW), Some(s.clone()));
        assert_eq!(Session::open(Some(&v), KEY, NOW + SESSION_TTL_SECS - 1), Some(s));
        assert_eq!(Session::open(Some(&v), KEY, NOW + SESSION_TTL_SECS), None);
        assert_eq!(Session::open(Some(&v), b"another-key-another-key-another-key", NOW), None);
        assert_eq!(Session::open(None, KEY, NOW), None);
        for junk in ["", ".", "a.b", "a.b.c", "!!!.???", "1.a.b.c.d.e"] {
            assert_eq!(Session::open(Some(junk), KEY, NOW), None, "{junk}");
        }
    }

    #[test]
    fn a_session_cannot_be_rewritten_to_another_user() {
        let v = Session::new("user-1", "alice", NOW).seal(KEY);
        let (payload, sig) = v.rsplit_once('.').unwrap();
        let forged = format!("{}.{sig}", payload.replace(&b64url("user-1"), &b64url("user-2")));
        assert_ne!(forged, v);
        assert_eq!(Session::open(Some(&forged), KEY, NOW), None);
        let later = format!("{}.{sig}", payload.replacen(&(NOW + SESSION_TTL_SECS).to_string(), "9999999999", 1));
        assert_eq!(Session::open(Some(&later), KEY, NOW + SESSION_TTL_SECS), None, "nor extended");
        // A MAC of another purpose (the CSRF token) does not pass for the cookie's.
        let s = Session::open(Some(&v), KEY, NOW).unwrap();
        assert_eq!(Session::open(Some(&format!("{payload}.{}", s.csrf_token(KEY))), KEY, NOW), None);
        // Labels and ids of any characters survive the round trip.
        let odd = Session::new("a.b|c", "Zoë \"x\".y", NOW);
        assert_eq!(Session::open(Some(&odd.seal(KEY)), KEY, NOW), Some(odd));
    }

    #[test]
    fn the_csrf_token_is_bound_to_the_session() {
        let a = Session::new("user-1", "alice", NOW);
        let b = Session::new("user-1", "alice", NOW);
        assert!(a.csrf_matches(KEY, Some(&a.csrf_token(KEY))));
        assert!(!a.csrf_matches(KEY, Some(&b.csrf_token(KEY))), "another sign-in of the same user");
        assert!(!a.csrf_matches(KEY, None));
        assert!(!a.csrf_matches(KEY, Some("")));
        assert!(!a.csrf_matches(b"another-key-another-key-another-key", Some(&a.csrf_token(KEY))));
    }

    #[test]
    fn long_labels_are_cut() {
        let s = Session::new("u", &"x".repeat(5000), NOW);
        assert_eq!(s.label.chars().count(), MAX_LABEL_CHARS);
        assert!(s.seal(KEY).len() < 1000);
    }

    #[test]
    fn only_our_own_origin_may_post() {
        let own = "https://mcp.example.com";
        assert!(same_origin(Some("https://mcp.example.com"), None, own));
        assert!(same_origin(Some("https://MCP.example.com"), Some("cross-site"), own), "Origin decides");
        assert!(!same_origin(Some("https://evil.example"), Some("same-origin"), own));
        assert!(!same_origin(Some("null"), None, own));
        assert!(!same_origin(Some("null"), Some("cross-site"), own), "a sandboxed frame elsewhere");
        assert!(same_origin(Some("null"), Some("same-origin"), own));
        assert!(!same_origin(Some("http://mcp.example.com"), None, own), "scheme counts");
        assert!(same_origin(None, Some("same-origin"), own));
        assert!(!same_origin(None, Some("same-site"), own));
        assert!(!same_origin(None, None, own));
    }
}
