//! What the downstream server receives besides the message: the client
//! headers MCP needs (an allowlist, so the client's bearer token, cookies,
//! spoofed identity headers and anything else never pass), and the user's
//! identity in two forms it can trust:
//!
//! - `Authorization: Bearer <the user's PingOne access token>`, a JWT the
//!   downstream can verify against PingOne's keys (its audience is
//!   `API_IDENTIFIER`);
//! - the headers of the Cloudflare-Access OAuth proxy's convention:
//!   `X-User-Sub`, `X-User-Email`, `X-User-Name`, `X-User-Username`,
//!   `X-User-Groups` (comma-separated). Values that are not plain printable
//!   ASCII are percent-encoded UTF-8 (`%` itself as `%25`; in groups, `,`
//!   as `%2C`), so `decodeURIComponent` always gives the original.

use super::config::Sends;
use super::User;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::HeaderMap;
use serde_json::Value;

/// Client request headers forwarded as they are; every other one is dropped.
pub const FORWARDED: [&str; 5] = ["accept", "content-type", "mcp-protocol-version", "last-event-id", "user-agent"];

/// Headers of MCP 2026-07-28 that mirror the body (`Mcp-Method`, `Mcp-Name`,
/// and every `Mcp-Param-*`), forwarded on modern requests only, once the
/// gateway has checked `Mcp-Method` and `Mcp-Name` against the body
/// (`mcp_request::check_headers`; `Mcp-Param-*` the downstream checks, it
/// knows which argument each mirrors). On session-era requests nobody checks
/// them, so they are dropped: the downstream never sees unchecked mirrors.
pub const MIRRORED: [&str; 2] = [crate::mcp_request::METHOD_HEADER, crate::mcp_request::NAME_HEADER];

pub const USER_SUB: &str = "x-user-sub";
pub const USER_EMAIL: &str = "x-user-email";
pub const USER_NAME: &str = "x-user-name";
pub const USER_USERNAME: &str = "x-user-username";
pub const USER_GROUPS: &str = "x-user-groups";

/// Percent-encodes what is not printable ASCII, `%`, and the bytes in `extra`.
pub fn encode_value(s: &str, extra: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' && !extra.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn claim<'a>(user: &'a User, name: &str) -> Option<&'a str> {
    user.props.claims.as_ref()?.get(name)?.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// Group names of a claim that is an array of names or one name.
fn groups(user: &User, claim_name: &str) -> Vec<String> {
    match user.props.claims.as_ref().and_then(|c| c.get(claim_name)) {
        Some(Value::Array(a)) => {
            a.iter().filter_map(Value::as_str).filter(|g| !g.is_empty()).map(str::to_owned).collect()
        }
        Some(Value::String(g)) if !g.is_empty() => vec![g.clone()],
        _ => Vec::new(),
    }
}

/// The identity headers of `user` (without `Authorization`).
pub fn identity_headers(user: &User, groups_claim: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let sub = claim(user, "sub").unwrap_or(&user.user_id);
    out.push((USER_SUB, encode_value(sub, &[])));
    // An address PingOne says is unverified is not passed as an identity.
    let email_verified = user.props.claims.as_ref().and_then(|c| c.get("email_verified")).and_then(Value::as_bool);
    if let (Some(email), true) = (claim(user, "email"), email_verified != Some(false)) {
        out.push((USER_EMAIL, encode_value(email, &[])));
    }
    let full_name = match (claim(user, "given_name"), claim(user, "family_name")) {
        (Some(g), Some(f)) => Some(format!("{g} {f}")),
        (g, f) => g.or(f).map(str::to_owned),
    };
    if let Some(name) = claim(user, "name").map(str::to_owned).or(full_name) {
        out.push((USER_NAME, encode_value(&name, &[])));
    }
    if let Some(username) = claim(user, "preferred_username") {
        out.push((USER_USERNAME, encode_value(username, &[])));
    }
    let groups = groups(user, groups_claim);
    if !groups.is_empty() {
        let list: Vec<String> = groups.iter().map(|g| encode_value(g, b",")).collect();
        out.push((USER_GROUPS, list.join(",")));
    }
    out
}

/// The headers of the request to the downstream: the allowed client headers
/// (with the [`MIRRORED`] ones when `modern`), the identity, and `session` as
/// `Mcp-Session-Id` when given.
pub fn outbound_headers(
    incoming: &HeaderMap,
    user: &User,
    sends: Sends,
    groups_claim: &str,
    session: Option<&str>,
    modern: bool,
) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in FORWARDED {
        for value in incoming.get_all(name) {
            out.append(HeaderName::from_static(name), value.clone());
        }
    }
    if modern {
        for (name, value) in incoming {
            let n = name.as_str();
            if MIRRORED.contains(&n) || n.starts_with(crate::mcp_request::PARAM_HEADER_PREFIX) {
                out.append(name.clone(), value.clone());
            }
        }
    }
    let token = match sends {
        Sends::PingOne => user.props.subject_token.as_deref(),
        Sends::Headers => None,
        Sends::VaultToken => user.vault_token.as_deref(),
    };
    if let Some(token) = token {
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
            out.insert(AUTHORIZATION, v);
        }
    }
    let identity = if sends == Sends::VaultToken { Vec::new() } else { identity_headers(user, groups_claim) };
    for (name, value) in identity {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.insert(HeaderName::from_static(name), v);
        }
    }
    if let Some(v) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
        out.insert(HeaderName::from_static("mcp-session-id"), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant_props::Props;
    use serde_json::json;

    fn user(claims: Value) -> User {
        User {
            user_id: "user-1".into(),
            client_id: "client-1".into(),
            grant_id: "grant-1".into(),
            props: Props::from_value(&json!({"subjectToken": "pingone-access-token", "claims": claims})),
            resource_metadata: String::new(),
            scopes: Vec::new(),
            vault_token: None,
        }
    }

    #[test]
    fn each_kind_of_downstream_gets_its_own_identity() {
        let incoming = HeaderMap::new();
        let u = User { vault_token: Some("downstream-token".into()), ..user(json!({"sub": "user-1"})) };
        let auth = |h: &HeaderMap| h.get(AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned());
        let pingone = outbound_headers(&incoming, &u, Sends::PingOne, "groups", None, false);
        assert_eq!(auth(&pingone).as_deref(), Some("Bearer pingone-access-token"));
        assert!(pingone.get(USER_SUB).is_some());
        let headers = outbound_headers(&incoming, &u, Sends::Headers, "groups", None, false);
        assert_eq!((auth(&headers), headers.get(USER_SUB).is_some()), (None, true));
        // A server with its own OAuth gets its own token and nothing of PingOne's or X-User-*.
        let vault = outbound_headers(&incoming, &u, Sends::VaultToken, "groups", None, false);
        assert_eq!(auth(&vault).as_deref(), Some("Bearer downstream-token"));
        assert!(vault.keys().all(|k| !k.as_str().starts_with("x-user-")), "{vault:?}");
        let none = outbound_headers(&incoming, &user(json!({})), Sends::VaultToken, "groups", None, false);
        assert_eq!(auth(&none), None, "a downstream needing no authorization gets no token at all");
    }

    #[test]
    fn identity_headers_follow_the_x_user_convention() {
        let u = user(json!({
            "sub": "5f0c-sub", "email": "alice@example.com", "email_verified": true, "name": "Alice Example",
            "preferred_username": "alice", "groups": ["todo-users", "admins"],
        }));
        assert_eq!(
            identity_headers(&u, "groups"),
            vec![
                (USER_SUB, "5f0c-sub".to_owned()),
                (USER_EMAIL, "alice@example.com".to_owned()),
                (USER_NAME, "Alice Example".to_owned()),
                (USER_USERNAME, "alice".to_owned()),
                (USER_GROUPS, "todo-users,admins".to_owned()),
            ]
        );
    }

    #[test]
    fn identity_headers_cope_with_sparse_and_odd_claims() {
        // No claims at all: the grant's user id is the subject.
        let bare = identity_headers(&user(Value::Null), "groups");
        assert_eq!(bare, vec![(USER_SUB, "user-1".to_owned())]);
        let odd = identity_headers(
            &user(json!({
                "email": "zoe@example.com", "email_verified": false, "given_name": "Zoë", "family_name": "100% Real",
                "memberOfGroupNames": "Sales, EMEA", "groups": ["ignored"],
            })),
            "memberOfGroupNames",
        );
        assert!(!odd.iter().any(|(n, _)| *n == USER_EMAIL), "unverified email is not an identity");
        assert!(odd.contains(&(USER_NAME, "Zo%C3%AB 100%25 Real".to_owned())));
        assert!(odd.contains(&(USER_GROUPS, "Sales%2C EMEA".to_owned())));
        assert_eq!(encode_value("line\r\nbreak", &[]), "line%0D%0Abreak");
    }

    #[test]
    fn only_allowed_client_headers_reach_the_downstream() {
        let mut incoming = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer mcp-token-of-the-client"),
            ("cookie", "__Host-session=secret"),
            ("x-user-email", "mallory@example.com"),
            ("x-user-sub", "admin"),
            ("x-forwarded-for", "10.0.0.1"),
            ("cf-connecting-ip", "10.0.0.1"),
            ("mcp-session-id", "g1.client-facing"),
            ("accept", "application/json, text/event-stream"),
            ("content-type", "application/json"),
            ("mcp-protocol-version", "2025-06-18"),
            ("last-event-id", "7"),
        ] {
            incoming.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let u = user(json!({"sub": "alice-sub", "email": "alice@example.com"}));
        let out = outbound_headers(&incoming, &u, Sends::PingOne, "groups", Some("downstream-sid"), false);
        assert_eq!(out["authorization"], "Bearer pingone-access-token");
        assert_eq!(out["x-user-email"], "alice@example.com");
        assert_eq!(out["x-user-sub"], "alice-sub");
        assert_eq!(out["mcp-session-id"], "downstream-sid");
        assert_eq!(out["accept"], "application/json, text/event-stream");
        assert_eq!(out["mcp-protocol-version"], "2025-06-18");
        assert_eq!(out["last-event-id"], "7");
        for gone in ["cookie", "x-forwarded-for", "cf-connecting-ip"] {
            assert!(out.get(gone).is_none(), "{gone} must not pass");
        }
        assert_eq!(out.get_all("x-user-email").iter().count(), 1);
        assert!(!format!("{out:?}").contains("mcp-token-of-the-client"));
        // Without a session to name, the client's (sealed) id does not pass either.
        assert!(outbound_headers(&incoming, &u, Sends::PingOne, "groups", None, false).get("mcp-session-id").is_none());
    }

    #[test]
    fn mirrored_headers_pass_on_modern_requests_only() {
        let mut incoming = HeaderMap::new();
        for (k, v) in [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?R3LDvMOfZQ==?="),
            ("mcp-param-region", "us-west1"),
            ("Mcp-Param-Tenant", "acme"),
            ("mcp-paramx", "not a mirror"),
            ("mcp-session-id", "g1.client-facing"),
        ] {
            incoming.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_static(v));
        }
        incoming.append("mcp-param-region", HeaderValue::from_static("eu-west1"));
        let u = user(json!({"sub": "alice-sub"}));
        let out = outbound_headers(&incoming, &u, Sends::PingOne, "groups", None, true);
        assert_eq!(out["mcp-protocol-version"], "2026-07-28");
        assert_eq!(out["mcp-method"], "tools/call");
        assert_eq!(out["mcp-name"], "=?base64?R3LDvMOfZQ==?=");
        assert_eq!(out.get_all("mcp-param-region").iter().collect::<Vec<_>>(), ["us-west1", "eu-west1"]);
        assert_eq!(out["mcp-param-tenant"], "acme");
        assert!(out.get("mcp-paramx").is_none() && out.get("mcp-session-id").is_none());
        let legacy = outbound_headers(&incoming, &u, Sends::PingOne, "groups", None, false);
        for gone in ["mcp-method", "mcp-name", "mcp-param-region", "mcp-param-tenant"] {
            assert!(legacy.get(gone).is_none(), "{gone} is unchecked on a session-era request");
        }
    }
}
