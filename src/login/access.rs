//! Who may use the server at all (`ALLOWED_USERS`, `ALLOWED_GROUPS`,
//! `GROUPS_CLAIM`), decided in `/callback` once PingOne's answer is verified
//! and before any grant exists; and the page someone refused sees.

use super::consent::SERVER_TITLE;
use super::oidc::SignedIn;
use super::pages;
use crate::util::crypto::random_token;
use crate::util::html::escape;
use serde_json::{Map, Value};

/// Claim holding group membership when `GROUPS_CLAIM` is not set.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";

/// The admission rule. With neither list set everyone PingOne signs in is
/// admitted; otherwise a user must match `users` or belong to one of `groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Entries of `ALLOWED_USERS`: a PingOne user id (UUID) is a `sub`
    /// (exact), one with `@` a verified `email`, anything else a
    /// `preferred_username` (both ignoring case).
    pub users: Vec<String>,
    /// Entries of `ALLOWED_GROUPS` (group names, exact).
    pub groups: Vec<String>,
    /// `GROUPS_CLAIM`: where the ID token and userinfo carry group names.
    pub groups_claim: String,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy { users: Vec::new(), groups: Vec::new(), groups_claim: DEFAULT_GROUPS_CLAIM.to_owned() }
    }
}

/// The group names in a claim's value: an array of strings (other members
/// ignored) or a single string.
pub fn groups_in(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

impl AccessPolicy {
    /// `true` when no list is set (everyone is admitted).
    pub fn is_open(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    /// The group names of a signed-in user found in `claim_sets` (the ID
    /// token's claims and userinfo), deduplicated.
    pub fn groups_of<'a>(&self, claim_sets: impl IntoIterator<Item = &'a Map<String, Value>>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for claims in claim_sets {
            for g in groups_in(claims.get(&self.groups_claim)) {
                if !out.contains(&g) {
                    out.push(g);
                }
            }
        }
        out
    }

    /// The decision for user `sub` with `claims` (ID token and userinfo
    /// merged) and `groups`. Each `ALLOWED_USERS` entry is matched against
    /// its own kind only (see [`Entry::of`]).
    pub fn admits_user(&self, sub: &str, claims: &Map<String, Value>, groups: &[String]) -> bool {
        if self.is_open() {
            return true;
        }
        let claim = |k: &str| claims.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
        let username = claim("preferred_username");
        // Only an address PingOne says it verified proves who this is (a
        // missing `email_verified` proves nothing).
        let email = claim("email").filter(|_| claims.get("email_verified") == Some(&Value::Bool(true)));
        let by_user = self.users.iter().any(|u| match Entry::of(u) {
            Entry::Sub => u == sub,
            Entry::Email => email.is_some_and(|e| e.eq_ignore_ascii_case(u)),
            Entry::Username => username.is_some_and(|n| n.eq_ignore_ascii_case(u)),
        });
        by_user || groups.iter().any(|g| self.groups.contains(g))
    }

    /// The decision for a verified sign-in.
    pub fn admits(&self, who: &SignedIn) -> bool {
        self.admits_user(&who.sub, &who.claims, &who.groups)
    }
}

/// What an `ALLOWED_USERS` entry names, from its form alone: so an entry can
/// match only the claim it was written for (a user whose username is an
/// allowed address, or a UUID, is not that person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// A PingOne user id (a UUID, `8-4-4-4-12` hex digits): the `sub`, exactly.
    Sub,
    /// Contains `@`: a verified `email`, ignoring case.
    Email,
    /// Anything else: the `preferred_username`, ignoring case.
    Username,
}

impl Entry {
    fn of(entry: &str) -> Self {
        if entry.contains('@') {
            Entry::Email
        } else if is_uuid(entry) {
            Entry::Sub
        } else {
            Entry::Username
        }
    }
}

/// `8-4-4-4-12` hex digits, PingOne's form of user ids.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `sub` for the log: only characters that cannot forge a log line, bounded.
pub fn loggable(sub: &str) -> String {
    sub.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.@|".contains(*c)).take(128).collect()
}

/// The 403 page for a signed-in person who is not admitted, whose primary
/// action returns to the client with `error=access_denied` (`back`).
pub fn denied_page(who: &SignedIn, client_name: &str, back: &str) -> http::Response<Vec<u8>> {
    let label = who.label();
    let nonce = random_token(22);
    let id_line = if label == who.sub {
        String::new()
    } else {
        format!("<p class=\"muted\">PingOne user id <code>{}</code></p>", escape(&who.sub))
    };
    let body = format!(
        "<h1>Access denied</h1>\
         <div class=\"card\"><p>You signed in to PingOne as <strong>{user}</strong>, but this account is not \
         allowed to use {server}.</p>{id_line}</div>\
         <p>Ask the operator of this server for access (they can allow your account or a group you are in), \
         then connect again. If you meant to use another account, sign out of PingOne first.</p>\
         <p>Nothing was shared with {client}; it will be told that access was denied.</p>\
         <div class=\"actions\"><a class=\"button primary\" href=\"{back}\">Return to {client}</a></div>",
        user = escape(&label),
        server = escape(SERVER_TITLE),
        client = escape(client_name),
        back = escape(back),
    );
    let mut res = pages::html("Access denied", &body, &nonce, &pages::csp(&nonce, &[]));
    *res.status_mut() = http::StatusCode::FORBIDDEN;
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn policy(users: &[&str], groups: &[&str]) -> AccessPolicy {
        AccessPolicy {
            users: users.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn alice() -> Map<String, Value> {
        claims(json!({"preferred_username": "Alice", "email": "Alice@Example.com", "email_verified": true}))
    }

    #[test]
    fn without_lists_everyone_is_admitted() {
        let p = AccessPolicy::default();
        assert!(p.is_open());
        assert!(p.admits_user("anyone", &Map::new(), &[]));
    }

    const ALICE_SUB: &str = "5f0c2a4e-8b1d-4c3e-9a7f-0e1d2c3b4a59";

    #[test]
    fn users_match_by_sub_exactly_and_by_username_or_email_ignoring_case() {
        let none: &[String] = &[];
        assert!(policy(&[ALICE_SUB], &[]).admits_user(ALICE_SUB, &Map::new(), none));
        assert!(!policy(&[&ALICE_SUB.to_uppercase()], &[]).admits_user(ALICE_SUB, &Map::new(), none), "sub is exact");
        assert!(policy(&["alice"], &[]).admits_user("u", &alice(), none));
        assert!(policy(&["alice@example.COM"], &[]).admits_user("u", &alice(), none));
        assert!(!policy(&["bob", "bob@example.com"], &[]).admits_user("u", &alice(), none));
        assert!(!policy(&["ali"], &[]).admits_user("u", &alice(), none), "no prefix matching");
        // An email PingOne marks unverified does not count, and neither does one it says nothing about.
        let unverified = claims(json!({"email": "boss@example.com", "email_verified": false}));
        assert!(!policy(&["boss@example.com"], &[]).admits_user("u", &unverified, none));
        let no_flag = claims(json!({"email": "boss@example.com"}));
        assert!(!policy(&["boss@example.com"], &[]).admits_user("u", &no_flag, none), "missing email_verified");
        let text_flag = claims(json!({"email": "boss@example.com", "email_verified": "true"}));
        assert!(!policy(&["boss@example.com"], &[]).admits_user("u", &text_flag, none), "only the boolean true");
        // Empty claims never match an entry.
        assert!(!policy(&["x"], &[]).admits_user("u", &claims(json!({"preferred_username": " "})), none));
    }

    #[test]
    fn an_entry_matches_only_its_own_kind_of_claim() {
        let none: &[String] = &[];
        // An allowed address is not matched by a username spelled like it (nor by an unverified email).
        let lookalike = claims(
            json!({"preferred_username": "boss@example.com", "email": "me@evil.example", "email_verified": true}),
        );
        assert!(!policy(&["boss@example.com"], &[]).admits_user("u", &lookalike, none));
        // An allowed user id is not matched by a username or an email spelled like it.
        let as_username = claims(json!({"preferred_username": ALICE_SUB}));
        assert!(!policy(&[ALICE_SUB], &[]).admits_user("someone-else", &as_username, none));
        // An allowed username is not matched by a sub spelled like it.
        assert!(!policy(&["alice"], &[]).admits_user("alice", &claims(json!({"preferred_username": "mallory"})), none));
        // Each kind still matches its own claim.
        assert!(policy(&["boss@example.com"], &[]).admits_user(
            "u",
            &claims(json!({"email": "Boss@Example.com", "email_verified": true})),
            none
        ));
        assert!(policy(&["Alice"], &[]).admits_user("u", &alice(), none));
        assert_eq!(Entry::of("alice@example.com"), Entry::Email);
        assert_eq!(Entry::of(ALICE_SUB), Entry::Sub);
        assert_eq!(Entry::of("5f0c2a4e-8b1d-4c3e-9a7f-0e1d2c3b4a5"), Entry::Username, "one digit short");
        assert_eq!(Entry::of("5f0c2a4e8b1d4c3e9a7f0e1d2c3b4a59"), Entry::Username, "no dashes");
        assert_eq!(Entry::of("user-1"), Entry::Username);
    }

    #[test]
    fn groups_come_from_the_configured_claim_as_an_array_or_a_string() {
        let p = policy(&[], &["todo-users"]);
        let id = claims(json!({"groups": ["admins", "todo-users", 7]}));
        let info = claims(json!({"groups": "todo-users"}));
        assert_eq!(p.groups_of([&id, &info]), ["admins", "todo-users"]);
        assert!(p.admits_user("u", &Map::new(), &p.groups_of([&id])));
        assert!(p.admits_user("u", &Map::new(), &p.groups_of([&info])));
        assert!(!p.admits_user("u", &Map::new(), &p.groups_of([&claims(json!({"groups": ["admins"]}))])));
        assert!(!p.admits_user("u", &Map::new(), &p.groups_of([&claims(json!({"groups": {"x": 1}}))])));
        assert!(!p.admits_user("u", &Map::new(), &["Todo-Users".to_owned()]), "group names are exact");

        let custom = AccessPolicy { groups_claim: "memberOfGroupNames".into(), ..p.clone() };
        let pingone = claims(json!({"memberOfGroupNames": ["todo-users"], "groups": []}));
        assert_eq!(custom.groups_of([&pingone]), ["todo-users"]);
        assert!(p.groups_of([&pingone]).is_empty(), "the default claim is not read when another is configured");
    }

    #[test]
    fn either_list_admits_when_both_are_set() {
        let p = policy(&["alice"], &["admins"]);
        assert!(p.admits_user("u", &alice(), &[]));
        assert!(p.admits_user("u", &claims(json!({"preferred_username": "bob"})), &["admins".to_owned()]));
        assert!(!p.admits_user("u", &claims(json!({"preferred_username": "mallory"})), &["todo-users".to_owned()]));
    }

    #[test]
    fn logged_subs_cannot_forge_lines() {
        assert_eq!(loggable("1234-abcd"), "1234-abcd");
        assert_eq!(loggable("evil\n[login] admitted"), "evilloginadmitted");
        assert_eq!(loggable(&"a".repeat(500)).len(), 128);
    }

    #[test]
    fn the_denied_page_names_the_user_escaped_and_leads_back_to_the_client() {
        let who = SignedIn {
            sub: "sub-1".into(),
            claims: claims(json!({"preferred_username": "<b>mallory</b>"})),
            access_token: "secret-access-token".into(),
            expires_at: None,
            scopes: vec![],
            refresh_token: Some("secret-refresh-token".into()),
            groups: vec![],
        };
        let res = denied_page(&who, "Evil <script>", "https://client.example/cb?error=access_denied&state=s&iss=x");
        assert_eq!(res.status(), 403);
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        let body = String::from_utf8(res.into_body()).unwrap();
        assert!(body.contains("<strong>&lt;b&gt;mallory&lt;/b&gt;</strong>"), "{body}");
        assert!(body.contains("<code>sub-1</code>"));
        assert!(body.contains("Return to Evil &lt;script&gt;</a>"));
        assert!(body.contains("href=\"https://client.example/cb?error=access_denied&amp;state=s&amp;iss=x\""));
        assert!(body.contains("operator"));
        assert!(!body.contains("<script>") && !body.contains("secret-"));
    }
}
