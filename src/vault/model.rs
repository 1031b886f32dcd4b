//! What the vault stores per user, and the decisions made on it.

use serde::{Deserialize, Serialize};
use url::Url;

/// Before expiry, a token is refreshed once less than this is left (or a
/// quarter of its lifetime, for short-lived ones).
pub const REFRESH_MARGIN_SECS: u64 = 60;
/// An entry no MCP grant has used yet is kept this long after it was stored or
/// last claimed by a sign-in, so a grant that ends meanwhile (the one a new
/// sign-in replaces) does not take the new entry with it.
pub const UNCLAIMED_GRACE_SECS: u64 = 600;

/// The downstream's tokens for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token was issued and runs out (Unix seconds; `None`:
    /// the server said nothing, the token is used until refused).
    pub issued_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// How this worker authenticates at the downstream's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client (PKCE only): `client_id` in the form.
    #[default]
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

/// This worker as a client of the downstream's authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub token_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub auth_method: AuthMethod,
}

/// The secret part of an entry (sealed at rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub tokens: Tokens,
    pub client: Client,
}

/// One stored entry: the resource in clear, the rest sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The downstream's resource (its protected-resource metadata's `resource`).
    pub resource: String,
    /// [`Secret`], sealed for this user and resource.
    pub sealed: String,
    /// The MCP grants that used this entry.
    #[serde(default)]
    pub grants: Vec<String>,
    /// When it was stored or last claimed by a sign-in.
    pub claimed_at: u64,
}

impl Record {
    /// Notes that `grant` uses the entry; `true` when that is new (to be saved).
    pub fn used_by(&mut self, grant: &str) -> bool {
        if grant.is_empty() || self.grants.iter().any(|g| g == grant) {
            return false;
        }
        self.grants.push(grant.to_owned());
        true
    }

    /// After `grant` ended: `true` when no grant uses the entry any more and
    /// its grace since storing or claiming is over (it is then dropped).
    pub fn orphaned_after(&mut self, grant: &str, now: u64) -> bool {
        self.grants.retain(|g| g != grant);
        self.grants.is_empty() && now >= self.claimed_at.saturating_add(UNCLAIMED_GRACE_SECS)
    }
}

impl Tokens {
    /// The access token needs a refresh before it is handed out: it has run
    /// out or is within the margin of doing so.
    pub fn needs_refresh(&self, now: u64) -> bool {
        let Some(expires_at) = self.expires_at else { return false };
        let lifetime = expires_at.saturating_sub(self.issued_at);
        let margin = REFRESH_MARGIN_SECS.min(lifetime / 4);
        now.saturating_add(margin) >= expires_at
    }

    /// Worth keeping: the access token still works, or a refresh token can get another.
    pub fn usable(&self, now: u64) -> bool {
        self.refresh_token.is_some() || !self.needs_refresh(now)
    }
}

/// `path` is `prefix` or below it on a segment boundary.
fn path_within(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// Of the stored resources, the most specific one covering `wanted` (same
/// origin, its path at or above `wanted`'s, the longest such path): two
/// downstreams on one origin (`…/mcp` and `…/v1/mcp`, or an origin-wide
/// resource and one below it) each get their own entry.
pub fn most_specific<'a>(resources: impl IntoIterator<Item = &'a str>, wanted: &str) -> Option<&'a str> {
    let wanted = Url::parse(wanted).ok()?;
    resources
        .into_iter()
        .filter_map(|r| {
            let u = Url::parse(r).ok()?;
            (u.origin() == wanted.origin() && path_within(wanted.path(), u.path()))
                .then(|| (u.path().trim_end_matches('/').len(), r))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(issued_at: u64, expires_at: Option<u64>, refresh: bool) -> Tokens {
        Tokens { access_token: "at".into(), refresh_token: refresh.then(|| "rt".into()), issued_at, expires_at }
    }

    #[test]
    fn tokens_are_refreshed_once_close_to_their_end() {
        let hour = tokens(1000, Some(4600), true);
        assert!(!hour.needs_refresh(1000));
        assert!(!hour.needs_refresh(4539));
        assert!(hour.needs_refresh(4540), "a minute before the end");
        assert!(hour.needs_refresh(9999));
        // A short-lived token is refreshed a quarter of its life before its end.
        let short = tokens(1000, Some(1008), true);
        assert!(!short.needs_refresh(1005));
        assert!(short.needs_refresh(1006));
        assert!(!tokens(1000, None, false).needs_refresh(u64::MAX / 2), "no expiry: used until refused");
        assert!(!tokens(1000, Some(1008), false).usable(1008));
        assert!(tokens(1000, Some(1008), true).usable(1008));
    }

    #[test]
    fn the_most_specific_resource_wins() {
        let stored = ["https://api.example.com", "https://api.example.com/v1", "https://other.example.com/v1/mcp"];
        let pick = |w: &str| most_specific(stored, w);
        assert_eq!(pick("https://api.example.com/v1/mcp"), Some("https://api.example.com/v1"));
        assert_eq!(pick("https://api.example.com/v1"), Some("https://api.example.com/v1"));
        assert_eq!(pick("https://api.example.com/v10/mcp"), Some("https://api.example.com"));
        assert_eq!(pick("https://api.example.com/mcp"), Some("https://api.example.com"));
        assert_eq!(pick("https://other.example.com/mcp"), None, "never another origin's or a sibling path's");
        assert_eq!(pick("http://api.example.com/v1/mcp"), None, "nor another scheme's");
        let two = ["http://127.0.0.1:9300/mcp", "http://127.0.0.1:9300/v1/mcp"];
        assert_eq!(most_specific(two, "http://127.0.0.1:9300/mcp"), Some("http://127.0.0.1:9300/mcp"));
        assert_eq!(most_specific(two, "http://127.0.0.1:9300/v1/mcp"), Some("http://127.0.0.1:9300/v1/mcp"));
    }

    #[test]
    fn an_entry_lives_while_a_grant_uses_it() {
        let mut r =
            Record { resource: "https://a.example/mcp".into(), sealed: String::new(), grants: vec![], claimed_at: 100 };
        assert!(r.used_by("g1"));
        assert!(!r.used_by("g1"), "recorded once");
        assert!(r.used_by("g2"));
        assert!(!r.orphaned_after("g1", 10_000), "g2 still uses it");
        assert!(r.orphaned_after("g2", 10_000));
        // Just stored by a sign-in whose grant has not used it yet: another grant's end leaves it.
        let mut fresh = Record { grants: vec![], claimed_at: 10_000, ..r.clone() };
        assert!(!fresh.orphaned_after("old", 10_000 + UNCLAIMED_GRACE_SECS - 1));
        assert!(fresh.orphaned_after("old", 10_000 + UNCLAIMED_GRACE_SECS));
    }
}
