//! The sign-in settings, read once per request from the Worker's environment
//! and checked up front so a misconfiguration is reported by name (never by
//! value) instead of failing somewhere in the middle of a sign-in.

use super::access::{AccessPolicy, DEFAULT_GROUPS_CLAIM};
use std::fmt;
use url::Url;

/// Scopes requested from PingOne when `PINGONE_SCOPES` is not set.
pub const DEFAULT_SCOPES: &str = "openid profile todo_api:read todo_api:write";
/// How long a person has to finish signing in at PingOne, by default.
pub const DEFAULT_STATE_TTL_SECS: u64 = 600;
/// Shortest accepted HMAC key for the approved-clients cookie.
pub const MIN_COOKIE_KEY_LEN: usize = 32;

#[derive(Clone)]
pub struct Settings {
    /// PingOne issuer without a trailing slash, e.g. `https://auth.pingone.com/<env>/as`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Sent as `resource` so PingOne issues an access token for the Todo API.
    pub api_identifier: String,
    pub cookie_key: Vec<u8>,
    pub scopes: Vec<String>,
    /// Lifetime of a sign-in attempt (state record), `LOGIN_STATE_TTL_SECS`.
    pub state_ttl_secs: u64,
    /// Who may sign in: `ALLOWED_USERS`, `ALLOWED_GROUPS`, `GROUPS_CLAIM`.
    pub access: AccessPolicy,
}

// Hand-written so a stray `{:?}` can never print the secret or the key.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("api_identifier", &self.api_identifier)
            .field("scopes", &self.scopes)
            .field("state_ttl_secs", &self.state_ttl_secs)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// A setting that is missing or malformed. Names the setting, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub setting: &'static str,
    pub problem: &'static str,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "setting {} {}", self.setting, self.problem)
    }
}

impl std::error::Error for SettingError {}

fn err(setting: &'static str, problem: &'static str) -> SettingError {
    SettingError { setting, problem }
}

/// `true` for hosts where plain `http` is acceptable (local development).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// An `https` URL, or `http` on a loopback host.
pub fn is_secure_or_loopback(url: &Url) -> bool {
    url.scheme() == "https" || (url.scheme() == "http" && is_loopback_host(url))
}

impl Settings {
    /// Reads and validates every setting through `get` (the Worker's vars and
    /// secrets; empty strings count as missing).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let required = |name: &'static str| -> Result<String, SettingError> {
            match get(name).map(|v| v.trim().to_owned()) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(err(name, "is missing")),
            }
        };

        let issuer = required("PINGONE_ISSUER")?;
        let issuer = issuer.trim_end_matches('/').to_owned();
        let parsed = Url::parse(&issuer).map_err(|_| err("PINGONE_ISSUER", "is not a URL"))?;
        if !is_secure_or_loopback(&parsed) {
            return Err(err("PINGONE_ISSUER", "must be an https URL (http only on localhost)"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(err("PINGONE_ISSUER", "must not have a query or fragment"));
        }

        let client_id = required("MCP_SERVER_CLIENT_ID")?;
        let client_secret = required("MCP_SERVER_CLIENT_SECRET")?;
        let api_identifier = required("API_IDENTIFIER")?;

        let cookie_key = required("COOKIE_ENCRYPTION_KEY")?.into_bytes();
        if cookie_key.len() < MIN_COOKIE_KEY_LEN {
            return Err(err("COOKIE_ENCRYPTION_KEY", "is too short (use at least 32 random characters)"));
        }

        let scopes_raw =
            get("PINGONE_SCOPES").filter(|s| !s.trim().is_empty()).unwrap_or_else(|| DEFAULT_SCOPES.to_owned());
        let scopes: Vec<String> = scopes_raw.split_whitespace().map(str::to_owned).collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(err("PINGONE_SCOPES", "must include openid"));
        }
        if scopes.iter().any(|s| !s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')) {
            return Err(err("PINGONE_SCOPES", "contains characters not allowed in a scope"));
        }

        let state_ttl_secs = match get("LOGIN_STATE_TTL_SECS").filter(|s| !s.trim().is_empty()) {
            None => DEFAULT_STATE_TTL_SECS,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (1..=3600).contains(&n) => n,
                _ => return Err(err("LOGIN_STATE_TTL_SECS", "must be a whole number of seconds from 1 to 3600")),
            },
        };

        let access = access_policy(&get)?;
        Ok(Settings { issuer, client_id, client_secret, api_identifier, cookie_key, scopes, state_ttl_secs, access })
    }
}

/// `ALLOWED_USERS` (comma or space separated), `ALLOWED_GROUPS` (comma
/// separated: group names may contain spaces) and `GROUPS_CLAIM`. A list that
/// is set but names nobody is an error rather than "everyone": whoever set it
/// meant to restrict access.
fn access_policy(get: &impl Fn(&str) -> Option<String>) -> Result<AccessPolicy, SettingError> {
    let set = |name: &str| get(name).filter(|v| !v.trim().is_empty());
    let users: Vec<String> = match set("ALLOWED_USERS") {
        None => Vec::new(),
        Some(v) => {
            let list: Vec<String> =
                v.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            if list.is_empty() {
                return Err(err("ALLOWED_USERS", "names no user (leave it unset to admit everyone)"));
            }
            list
        }
    };
    let groups: Vec<String> = match set("ALLOWED_GROUPS") {
        None => Vec::new(),
        Some(v) => {
            let list: Vec<String> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            if list.is_empty() {
                return Err(err("ALLOWED_GROUPS", "names no group (leave it unset to admit everyone)"));
            }
            list
        }
    };
    let groups_claim = match set("GROUPS_CLAIM") {
        None => DEFAULT_GROUPS_CLAIM.to_owned(),
        Some(v) => {
            let v = v.trim();
            if v.chars().any(|c| c.is_whitespace() || c.is_control() || c == ',') {
                return Err(err("GROUPS_CLAIM", "must be a single claim name"));
            }
            v.to_owned()
        }
    };
    Ok(AccessPolicy { users, groups, groups_claim })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            ("PINGONE_ISSUER", "https://auth.pingone.com/env-1/as/".to_owned()),
            ("MCP_SERVER_CLIENT_ID", "client-1".to_owned()),
            ("MCP_SERVER_CLIENT_SECRET", "very-secret-value".to_owned()),
            ("API_IDENTIFIER", "https://api.example.com".to_owned()),
            ("COOKIE_ENCRYPTION_KEY", "k".repeat(40)),
        ])
    }

    fn load(vars: &HashMap<&'static str, String>) -> Result<Settings, SettingError> {
        Settings::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn valid_settings_load_with_defaults() {
        let s = load(&base()).unwrap();
        assert_eq!(s.issuer, "https://auth.pingone.com/env-1/as");
        assert_eq!(s.scopes, ["openid", "profile", "todo_api:read", "todo_api:write"]);
        assert_eq!(s.state_ttl_secs, 600);
    }

    #[test]
    fn each_missing_setting_is_named() {
        for name in [
            "PINGONE_ISSUER",
            "MCP_SERVER_CLIENT_ID",
            "MCP_SERVER_CLIENT_SECRET",
            "API_IDENTIFIER",
            "COOKIE_ENCRYPTION_KEY",
        ] {
            let mut vars = base();
            vars.insert(name, "  ".to_owned());
            let e = load(&vars).unwrap_err();
            assert_eq!(e.setting, name);
            assert_eq!(e.to_string(), format!("setting {name} is missing"));
        }
    }

    #[test]
    fn malformed_settings_are_named_without_their_value() {
        let cases = [
            ("PINGONE_ISSUER", "not a url"),
            ("PINGONE_ISSUER", "http://idp.example.com/as"),
            ("PINGONE_ISSUER", "https://idp.example.com/as?x=1"),
            ("COOKIE_ENCRYPTION_KEY", "short-secret-key"),
            ("PINGONE_SCOPES", "profile email"),
            ("PINGONE_SCOPES", "openid \"quoted\""),
            ("LOGIN_STATE_TTL_SECS", "-5"),
            ("LOGIN_STATE_TTL_SECS", "99999"),
            ("LOGIN_STATE_TTL_SECS", "ten"),
        ];
        for (name, value) in cases {
            let mut vars = base();
            vars.insert(name, value.to_owned());
            let e = load(&vars).unwrap_err();
            assert_eq!(e.setting, name, "{value}");
            assert!(!e.to_string().contains(value), "error leaks the value: {e}");
        }
    }

    #[test]
    fn http_issuer_is_allowed_on_loopback_only() {
        let mut vars = base();
        vars.insert("PINGONE_ISSUER", "http://127.0.0.1:9000/as".to_owned());
        assert_eq!(load(&vars).unwrap().issuer, "http://127.0.0.1:9000/as");
        vars.insert("PINGONE_ISSUER", "http://localhost:9000/as".to_owned());
        assert!(load(&vars).is_ok());
    }

    #[test]
    fn custom_scopes_and_ttl_are_honoured() {
        let mut vars = base();
        vars.insert("PINGONE_SCOPES", "openid email".to_owned());
        vars.insert("LOGIN_STATE_TTL_SECS", "5".to_owned());
        let s = load(&vars).unwrap();
        assert_eq!(s.scopes, ["openid", "email"]);
        assert_eq!(s.state_ttl_secs, 5);
    }

    #[test]
    fn access_lists_are_optional_and_admit_everyone_when_unset() {
        let s = load(&base()).unwrap();
        assert!(s.access.is_open());
        assert_eq!(s.access.groups_claim, "groups");
        let mut vars = base();
        vars.insert("ALLOWED_USERS", "  ".to_owned());
        vars.insert("ALLOWED_GROUPS", String::new());
        vars.insert("GROUPS_CLAIM", " ".to_owned());
        let s = load(&vars).unwrap();
        assert!(s.access.is_open());
        assert_eq!(s.access.groups_claim, "groups");
    }

    #[test]
    fn access_lists_are_parsed() {
        let mut vars = base();
        vars.insert("ALLOWED_USERS", " alice, bob@example.com\n0f1e-sub ,,carol ".to_owned());
        vars.insert("ALLOWED_GROUPS", "todo-users, Todo Admins ,,".to_owned());
        vars.insert("GROUPS_CLAIM", " memberOfGroupNames ".to_owned());
        let a = load(&vars).unwrap().access;
        assert_eq!(a.users, ["alice", "bob@example.com", "0f1e-sub", "carol"]);
        assert_eq!(a.groups, ["todo-users", "Todo Admins"]);
        assert_eq!(a.groups_claim, "memberOfGroupNames");
        assert!(!a.is_open());
    }

    #[test]
    fn access_lists_naming_nobody_and_odd_claim_names_are_refused() {
        for (name, value) in [
            ("ALLOWED_USERS", " , ,"),
            ("ALLOWED_GROUPS", ", ,"),
            ("GROUPS_CLAIM", "groups roles"),
            ("GROUPS_CLAIM", "a,b"),
        ] {
            let mut vars = base();
            vars.insert(name, value.to_owned());
            let e = load(&vars).unwrap_err();
            assert_eq!(e.setting, name, "{value:?}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = load(&base()).unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("very-secret-value"));
        assert!(!dbg.contains(&"k".repeat(40)));
    }
}
