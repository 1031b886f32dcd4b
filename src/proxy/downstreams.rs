//! `DOWNSTREAMS`: several named MCP servers behind one sign-in, each served
//! at `/mcp/<name>` as a protected resource of its own.
//!
//! The setting is a JSON array in one string, e.g.
//! `[{"name": "notes", "url": "https://notes.example.com/mcp", "auth": "oauth"}]`.
//! Each entry says how its downstream is authorized:
//!
//! - `pingone`: `Authorization: Bearer <PingOne token>` and `X-User-*`, as the
//!   single gateway (`DOWNSTREAM_MCP_URL`) sends;
//! - `headers`: `X-User-*` only (a downstream that trusts the gateway);
//! - `oauth`: the downstream's own access token for the user, from the user's
//!   token vault (the worker is the user's OAuth client there); nothing of
//!   PingOne's and no `X-User-*`.

use super::config::{endpoint_url, named_session_key, ConfigError, Downstream, Sends};
use serde_json::Value;
use std::borrow::Cow;
use url::Url;

/// The setting's name.
pub const SETTING: &str = "DOWNSTREAMS";
/// Where named downstreams are served: `/mcp/<name>`.
pub const MOUNT_PREFIX: &str = "/mcp/";

/// How a downstream is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The user's PingOne access token and the identity headers.
    PingOne,
    /// The identity headers only.
    Headers,
    /// The downstream's own OAuth: a token from the user's vault.
    OAuth,
}

/// One entry as written in the setting (read through `Value`: a derive costs
/// the Wasm bundle more).
struct RawEntry {
    name: String,
    url: String,
    auth: Auth,
    binding: Option<String>,
    client_id: Option<String>,
    client_secret_var: Option<String>,
    scopes: Option<String>,
}

const FIELDS: [&str; 7] = ["name", "url", "auth", "binding", "client_id", "client_secret_var", "scopes"];

impl RawEntry {
    /// `None` for a missing, unknown or mistyped field.
    fn from_json(v: &Value) -> Option<Self> {
        let o = v.as_object()?;
        if o.keys().any(|k| !FIELDS.contains(&k.as_str())) {
            return None;
        }
        let text = |k: &str| o.get(k).map(|v| v.as_str().map(str::to_owned));
        // An optional field, when present, must be a string.
        let optional = |k: &str| match o.get(k) {
            None => Some(None),
            Some(v) => v.as_str().map(|s| Some(s.to_owned())),
        };
        Some(Self {
            name: text("name")??,
            url: text("url")??,
            auth: match text("auth")??.as_str() {
                "pingone" => Auth::PingOne,
                "headers" => Auth::Headers,
                "oauth" => Auth::OAuth,
                _ => return None,
            },
            binding: optional("binding")?,
            client_id: optional("client_id")?,
            client_secret_var: optional("client_secret_var")?,
            scopes: optional("scopes")?,
        })
    }
}

/// A named downstream, validated.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// `[a-z0-9-]{1,32}`, the last segment of its path here.
    pub name: String,
    /// Its Streamable HTTP endpoint.
    pub url: Url,
    pub auth: Auth,
    /// A service binding requests go through instead of the network.
    pub binding: Option<String>,
    /// A client pre-registered at the downstream's authorization server.
    pub client_id: Option<String>,
    /// The env name of that client's secret (the value is read, never shown).
    pub client_secret_var: Option<String>,
    /// Downstream scopes to ask for (space-separated), if any.
    pub scopes: Option<String>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("auth", &self.auth)
            .field("binding", &self.binding)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Entry {
    /// The path this worker serves it at.
    pub fn mount(&self) -> String {
        format!("{MOUNT_PREFIX}{}", self.name)
    }
}

fn bad(why: impl Into<Cow<'static, str>>) -> ConfigError {
    ConfigError { name: SETTING, why: why.into() }
}

fn name_ok(name: &str) -> bool {
    (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// An env name (what `binding` and `client_secret_var` hold).
fn var_name_ok(v: &str) -> bool {
    !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses the setting's value (no env access: names and shapes only). An
/// error names the setting and the entry, never a URL or secret.
pub fn parse(raw: &str) -> Result<Vec<Entry>, ConfigError> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(raw) else {
        return Err(bad("must be a JSON array of objects"));
    };
    let mut raw = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        raw.push(
            RawEntry::from_json(item)
                .ok_or_else(|| bad(format!("has an entry with a missing, unknown or mistyped field (entry {i})")))?,
        );
    }
    let mut out: Vec<Entry> = Vec::with_capacity(raw.len());
    for (i, e) in raw.into_iter().enumerate() {
        if !name_ok(&e.name) {
            return Err(bad(format!("entry {i}: name must be 1 to 32 of a-z, 0-9 and '-'")));
        }
        let who = format!("entry '{}'", e.name);
        if out.iter().any(|o| o.name == e.name) {
            return Err(bad(format!("{who} is listed twice")));
        }
        if let Some(b) = &e.binding {
            if !var_name_ok(b) {
                return Err(bad(format!("{who}: binding must be a binding name")));
            }
        }
        let url =
            endpoint_url(SETTING, &e.url, e.binding.is_some()).map_err(|c| bad(format!("{who}: url {}", c.why)))?;
        let oauth_only = e.client_id.is_some() || e.client_secret_var.is_some() || e.scopes.is_some();
        if oauth_only && e.auth != Auth::OAuth {
            return Err(bad(format!("{who}: client_id, client_secret_var and scopes are for auth \"oauth\" only")));
        }
        if let Some(v) = &e.client_secret_var {
            if !var_name_ok(v) {
                return Err(bad(format!("{who}: client_secret_var must be the name of a secret")));
            }
            if e.client_id.is_none() {
                return Err(bad(format!("{who}: client_secret_var needs client_id")));
            }
        }
        if e.client_id.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(bad(format!("{who}: client_id is empty")));
        }
        let scopes = e.scopes.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|s| !s.is_empty());
        out.push(Entry {
            name: e.name,
            url,
            auth: e.auth,
            binding: e.binding,
            client_id: e.client_id,
            client_secret_var: e.client_secret_var,
            scopes,
        });
    }
    Ok(out)
}

/// A named downstream ready for forwarding: the entry and its [`Downstream`]
/// (shared settings of the gateway, its own URL, binding and session key).
#[derive(Clone, PartialEq)]
pub struct Named {
    pub entry: Entry,
    pub downstream: Downstream,
    /// The pre-registered client's secret, read from `client_secret_var`.
    pub client_secret: Option<String>,
}

/// Without the secret (as `Entry` and `Downstream` leave theirs out).
impl std::fmt::Debug for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Named")
            .field("entry", &self.entry)
            .field("downstream", &self.downstream)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Every named downstream, from `DOWNSTREAMS` and the gateway's shared
/// settings (`DOWNSTREAM_TIMEOUT_SECS`, `GROUPS_CLAIM`, …); `get` reads vars
/// and secrets. Empty when the setting is unset.
pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Vec<Named>, ConfigError> {
    let Some(raw) = get(SETTING).filter(|v| !v.trim().is_empty()) else { return Ok(Vec::new()) };
    let entries = parse(&raw)?;
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let shared = Downstream::shared(&get)?;
    let cookie_key = get("COOKIE_ENCRYPTION_KEY").unwrap_or_default();
    entries
        .into_iter()
        .map(|entry| {
            let client_secret = match &entry.client_secret_var {
                None => None,
                Some(var) => Some(get(var).filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                    bad(format!("entry '{}': the secret its client_secret_var names is not set", entry.name))
                })?),
            };
            let downstream = Downstream {
                bound: entry.binding.is_some(),
                binding: entry.binding.clone().unwrap_or_default(),
                mcp_url: entry.url.clone(),
                sse_url: None,
                mount: entry.mount(),
                sends: match entry.auth {
                    Auth::PingOne => Sends::PingOne,
                    Auth::Headers => Sends::Headers,
                    Auth::OAuth => Sends::VaultToken,
                },
                session_key: named_session_key(cookie_key.as_bytes(), &entry.name),
                ..shared.clone()
            };
            Ok(Named { entry, downstream, client_secret })
        })
        .collect()
}

/// The named downstream `path` is at (`/mcp/<name>` exactly).
pub fn at<'a>(named: &'a [Named], path: &str) -> Option<&'a Named> {
    let name = path.strip_prefix(MOUNT_PREFIX)?;
    named.iter().find(|n| n.entry.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: (&str, &str) = ("COOKIE_ENCRYPTION_KEY", "0123456789abcdef0123456789abcdef");

    fn load(pairs: &[(&str, &str)]) -> Result<Vec<Named>, ConfigError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        from_lookup(|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn entries_become_downstreams_at_their_own_paths() {
        let raw = r#"[
            {"name": "notes", "url": "http://127.0.0.1:9300/mcp", "auth": "oauth", "scopes": " notes:read  notes:write "},
            {"name": "todo", "url": "https://todo.example.com/mcp", "auth": "pingone"},
            {"name": "wiki-2", "url": "http://wiki.internal/mcp", "auth": "headers", "binding": "WIKI"},
            {"name": "cal", "url": "https://cal.example.com/mcp", "auth": "oauth", "client_id": "gw", "client_secret_var": "CAL_SECRET"}
        ]"#;
        let named = load(&[KEY, (SETTING, raw), ("CAL_SECRET", "s3cret"), ("DOWNSTREAM_TIMEOUT_SECS", "9")]).unwrap();
        assert_eq!(named.len(), 4);
        let notes = at(&named, "/mcp/notes").unwrap();
        assert_eq!(notes.entry.auth, Auth::OAuth);
        assert_eq!(notes.entry.scopes.as_deref(), Some("notes:read notes:write"));
        assert_eq!((notes.downstream.mount.as_str(), notes.downstream.timeout_ms), ("/mcp/notes", 9000));
        assert_eq!(notes.downstream.mcp_url.as_str(), "http://127.0.0.1:9300/mcp");
        let wiki = at(&named, "/mcp/wiki-2").unwrap();
        assert!(wiki.downstream.bound);
        assert_eq!(wiki.downstream.binding, "WIKI");
        assert_eq!(at(&named, "/mcp/cal").unwrap().client_secret.as_deref(), Some("s3cret"));
        // Each has its own session key: a session sealed for one is not one of another's.
        assert_ne!(notes.downstream.session_key, at(&named, "/mcp/todo").unwrap().downstream.session_key);
        assert!(at(&named, "/mcp/notes/x").is_none());
        assert!(at(&named, "/mcp").is_none());
        assert!(at(&named, "/mcp/other").is_none());
        assert!(load(&[KEY]).unwrap().is_empty(), "unset: none");
        assert!(load(&[KEY, (SETTING, " [] ")]).unwrap().is_empty());
    }

    #[test]
    fn bad_entries_are_named_without_values() {
        let bad = |raw: &str| load(&[KEY, (SETTING, raw)]).unwrap_err();
        for (raw, why) in [
            ("{}", "JSON array"),
            ("not json", "JSON array"),
            (r#"[{"name": "a", "url": "https://a.example.com/mcp"}]"#, "missing, unknown or mistyped"),
            (r#"[{"name": "a", "url": "https://a.example.com/mcp", "auth": "magic"}]"#, "mistyped"),
            (r#"[{"name": "a", "url": "https://a.example.com/mcp", "auth": "oauth", "extra": 1}]"#, "unknown"),
            (r#"[{"name": "a", "url": "https://a.example.com/mcp", "auth": "oauth", "scopes": 3}]"#, "mistyped"),
            (r#"[{"name": 1, "url": "https://a.example.com/mcp", "auth": "oauth"}]"#, "mistyped"),
            ("[1]", "mistyped"),
            (r#"[{"name": "Notes", "url": "https://a.example.com/mcp", "auth": "oauth"}]"#, "entry 0: name"),
            (r#"[{"name": "", "url": "https://a.example.com/mcp", "auth": "oauth"}]"#, "entry 0: name"),
            (
                r#"[{"name": "a", "url": "https://a.example.com/mcp", "auth": "oauth"}, {"name": "a", "url": "https://a.example.com/mcp", "auth": "oauth"}]"#,
                "twice",
            ),
            (
                r#"[{"name": "a", "url": "http://a.example.com/mcp", "auth": "oauth"}]"#,
                "entry 'a': url must be an https",
            ),
            (r#"[{"name": "a", "url": "https://u:p@a.example.com/mcp", "auth": "oauth"}]"#, "credentials"),
            (
                r#"[{"name": "a", "url": "https://a.example.com/mcp", "auth": "pingone", "client_id": "x"}]"#,
                "oauth\" only",
            ),
            (
                r#"[{"name": "a", "url": "https://a.example.com/mcp", "auth": "oauth", "client_secret_var": "S"}]"#,
                "needs client_id",
            ),
            (
                r#"[{"name": "a", "url": "https://a.example.com/mcp", "auth": "oauth", "client_id": "c", "client_secret_var": "NOPE"}]"#,
                "not set",
            ),
            (r#"[{"name": "a", "url": "https://a.example.com/mcp", "auth": "headers", "binding": "a b"}]"#, "binding"),
        ] {
            let e = bad(raw);
            assert_eq!(e.name, SETTING, "{raw}");
            assert!(e.to_string().contains(why), "{raw}: {e}");
            assert!(!e.to_string().contains("example.com"), "{e}");
        }
        // A binding allows plain http to any host (the request never leaves Cloudflare).
        let bound = r#"[{"name": "a", "url": "http://a.internal/mcp", "auth": "headers", "binding": "A"}]"#;
        assert!(load(&[KEY, (SETTING, bound)]).is_ok());
        // The secret the entry names is never shown, nor the cookie key.
        let e = load(&[(SETTING, bound)]).unwrap_err();
        assert_eq!(e.name, "COOKIE_ENCRYPTION_KEY");
    }
}
