//! Settings of the identity gateway. With neither `DOWNSTREAM_MCP_URL` nor
//! the `DOWNSTREAM_MCP` service binding, the built-in Todo tools serve `/mcp`;
//! with either, every MCP request is forwarded.
//!
//! The binding wins when both are there (as `TODO_API` does over `API_URL`):
//! requests then stay inside Cloudflare, and `DOWNSTREAM_MCP_URL` (default
//! [`BOUND_URL`]) only names the URL they carry, i.e. the path, query and
//! `Host` the bound Worker sees.

use crate::grant_watch;
use crate::util::crypto::random_bytes;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::fmt;
use url::Url;

/// How long the downstream server has to start answering (headers) by default.
pub const DEFAULT_TIMEOUT_SECS: u32 = 30;
const MAX_TIMEOUT_SECS: u32 = 300;
/// Seconds of downstream silence on an event stream before a keep-alive
/// comment is sent, by default (what the built-in server sends at).
pub const DEFAULT_KEEPALIVE_SECS: u32 = 20;
/// The service binding to a downstream Worker on the same account.
pub const BINDING: &str = "DOWNSTREAM_MCP";
/// The URL of requests sent through [`BINDING`] when `DOWNSTREAM_MCP_URL` is unset.
pub const BOUND_URL: &str = "https://downstream-mcp.internal/mcp";
/// Claim holding the user's group names when `GROUPS_CLAIM` is not set.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";

/// Where and how requests are forwarded.
#[derive(Clone, PartialEq, Eq)]
pub struct Downstream {
    /// Requests go through the service binding [`Downstream::binding`], not out to the URL.
    pub bound: bool,
    /// The service binding's name ([`BINDING`] for the single downstream).
    pub binding: String,
    /// The path this worker serves it at: `/mcp` (with `/sse` for the legacy
    /// transport) for the single downstream, `/mcp/<name>` for a named one.
    pub mount: String,
    /// The identity the downstream gets.
    pub sends: Sends,
    /// The downstream's Streamable HTTP endpoint (`DOWNSTREAM_MCP_URL`).
    pub mcp_url: Url,
    /// Its legacy SSE endpoint (`DOWNSTREAM_SSE_URL`), if it has one.
    pub sse_url: Option<Url>,
    /// Milliseconds the downstream has to send response headers (and, on
    /// `/sse`, its `endpoint` event).
    pub timeout_ms: u32,
    /// Milliseconds of silence on an event stream after which the gateway
    /// sends a keep-alive comment (`DOWNSTREAM_KEEPALIVE_SECS`; `None` = never).
    pub keepalive_ms: Option<u32>,
    /// Milliseconds between lookups of the grant behind an open event stream
    /// (`SSE_GRANT_CHECK_SECS`), which ends once the grant is gone.
    pub grant_check_ms: u32,
    /// `GROUPS_CLAIM`: the claim with the user's group names.
    pub groups_claim: String,
    /// Seals downstream session ids (derived from `COOKIE_ENCRYPTION_KEY`).
    pub session_key: [u8; 32],
    /// `GATEWAY_TOOL_SCOPES`: the MCP scopes a tool call needs (none set:
    /// tool calls are not judged by scope).
    pub tool_scopes: ToolScopes,
}

impl fmt::Debug for Downstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Downstream")
            .field("bound", &self.bound)
            .field("binding", &self.binding)
            .field("mount", &self.mount)
            .field("sends", &self.sends)
            .field("mcp_url", &self.mcp_url.as_str())
            .field("sse_url", &self.sse_url.as_ref().map(Url::as_str))
            .field("timeout_ms", &self.timeout_ms)
            .field("keepalive_ms", &self.keepalive_ms)
            .field("grant_check_ms", &self.grant_check_ms)
            .field("groups_claim", &self.groups_claim)
            .field("tool_scopes", &self.tool_scopes)
            .finish_non_exhaustive()
    }
}

/// What a downstream is sent to say who the user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sends {
    /// `Authorization: Bearer <PingOne token>` and the `X-User-*` headers.
    PingOne,
    /// The `X-User-*` headers only.
    Headers,
    /// `Authorization: Bearer <the downstream's own token>` from the user's
    /// vault ([`super::User::vault_token`]), nothing else: no PingOne token
    /// and no `X-User-*` go to a server with its own OAuth.
    VaultToken,
}

/// A setting that is missing or malformed: names it, never shows its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub name: &'static str,
    pub why: std::borrow::Cow<'static, str>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.why)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn err(name: &'static str, why: &'static str) -> ConfigError {
    ConfigError { name, why: why.into() }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// An https URL (http only for loopback: the user's PingOne token travels
/// with every request), without credentials or a fragment. Through a service
/// binding the request never leaves Cloudflare, so http is fine for any host.
pub(crate) fn endpoint_url(name: &'static str, raw: &str, bound: bool) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|_| err(name, "is not a URL"))?;
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && (bound || is_loopback(&url)));
    if !scheme_ok || url.host().is_none() {
        return Err(err(name, "must be an https URL (http only for 127.0.0.1 or localhost)"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(err(name, "must not contain credentials or a fragment"));
    }
    Ok(url)
}

/// Key for sealing session ids, derived from `COOKIE_ENCRYPTION_KEY` with a
/// label of its own (so it is never the key used for anything else).
pub fn session_key(cookie_key: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(cookie_key).expect("HMAC takes any key length");
    mac.update(b"pingone-mcp-worker proxy session ids v1");
    mac.finalize().into_bytes().into()
}

/// Session key of the named downstream `name` (`DOWNSTREAMS`): each its own,
/// so a session sealed for one is nothing at another.
pub fn named_session_key(cookie_key: &[u8], name: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(cookie_key).expect("HMAC takes any key length");
    mac.update(b"pingone-mcp-worker proxy session ids v1 downstream ");
    mac.update(name.as_bytes());
    mac.finalize().into_bytes().into()
}

impl Downstream {
    /// The settings every downstream shares (timeouts, keep-alives, grant
    /// checks, groups claim, tool scopes, the session key), with the single
    /// downstream's URL defaults; callers set the URL, binding and mount.
    pub fn shared(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let set = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let timeout_secs = match set("DOWNSTREAM_TIMEOUT_SECS") {
            None => DEFAULT_TIMEOUT_SECS,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|s| (1..=MAX_TIMEOUT_SECS).contains(s))
                .ok_or(err("DOWNSTREAM_TIMEOUT_SECS", "must be a whole number of seconds from 1 to 300"))?,
        };
        let keepalive_secs = match set("DOWNSTREAM_KEEPALIVE_SECS") {
            None => DEFAULT_KEEPALIVE_SECS,
            Some(v) => v.trim().parse::<u32>().ok().filter(|s| *s <= MAX_TIMEOUT_SECS).ok_or(err(
                "DOWNSTREAM_KEEPALIVE_SECS",
                "must be a whole number of seconds from 0 (no keep-alives) to 300",
            ))?,
        };
        let cookie_key = set("COOKIE_ENCRYPTION_KEY").ok_or(err("COOKIE_ENCRYPTION_KEY", "is missing"))?;
        if cookie_key.len() < 32 {
            return Err(err("COOKIE_ENCRYPTION_KEY", "is too short (use at least 32 random characters)"));
        }
        let grant_check_secs = grant_watch::check_secs(get("SSE_GRANT_CHECK_SECS").as_deref());
        Ok(Self {
            bound: false,
            binding: BINDING.into(),
            mount: "/mcp".into(),
            sends: Sends::PingOne,
            mcp_url: Url::parse(BOUND_URL).expect("a valid URL"),
            sse_url: None,
            timeout_ms: timeout_secs * 1000,
            keepalive_ms: (keepalive_secs > 0).then_some(keepalive_secs * 1000),
            grant_check_ms: u32::try_from(grant_check_secs.saturating_mul(1000)).unwrap_or(u32::MAX),
            groups_claim: set("GROUPS_CLAIM").map(|g| g.trim().to_owned()).unwrap_or(DEFAULT_GROUPS_CLAIM.into()),
            session_key: session_key(cookie_key.as_bytes()),
            tool_scopes: set("GATEWAY_TOOL_SCOPES").map(|v| ToolScopes::parse(&v)).transpose()?.unwrap_or_default(),
        })
    }

    /// `Ok(None)` when `DOWNSTREAM_MCP_URL` is unset or empty and there is no
    /// [`BINDING`] (`bound`): the built-in tools.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>, bound: bool) -> Result<Option<Self>, ConfigError> {
        let set = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mcp_url = match set("DOWNSTREAM_MCP_URL") {
            Some(mcp) => endpoint_url("DOWNSTREAM_MCP_URL", &mcp, bound)?,
            None if bound => Url::parse(BOUND_URL).expect("a valid URL"),
            None => return Ok(None),
        };
        let sse_url = set("DOWNSTREAM_SSE_URL").map(|v| endpoint_url("DOWNSTREAM_SSE_URL", &v, bound)).transpose()?;
        Ok(Some(Self { bound, mcp_url, sse_url, ..Self::shared(&get)? }))
    }

    /// A configuration for tests: the given URLs, a random key, 5 s timeout.
    pub fn for_tests(mcp_url: &str, sse_url: Option<&str>) -> Self {
        Self {
            bound: false,
            binding: BINDING.into(),
            mount: "/mcp".into(),
            sends: Sends::PingOne,
            mcp_url: Url::parse(mcp_url).expect("test URL"),
            sse_url: sse_url.map(|u| Url::parse(u).expect("test URL")),
            timeout_ms: 5000,
            keepalive_ms: Some(DEFAULT_KEEPALIVE_SECS * 1000),
            grant_check_ms: 60_000,
            groups_claim: DEFAULT_GROUPS_CLAIM.into(),
            session_key: random_bytes::<32>(),
            tool_scopes: ToolScopes::default(),
        }
    }
}

/// Which tools need which MCP scopes (`GATEWAY_TOOL_SCOPES`): rules of the
/// form `pattern=scope [scope…]`, separated by commas or line breaks, e.g.
/// `delete_*=todo_api:write, *=todo_api:read`. A pattern is a tool name, or
/// one with a single `*` standing for any text (`delete_*`, `*_admin`, `*`).
/// The first rule whose pattern matches the tool's name decides, and a call
/// needs every scope it lists; a tool no rule matches needs none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolScopes {
    rules: Vec<ToolRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ToolRule {
    /// The text before and after the `*` (`None`: no `*`, the whole name).
    prefix: String,
    suffix: Option<String>,
    scopes: Vec<String>,
}

impl ToolRule {
    fn matches(&self, tool: &str) -> bool {
        match &self.suffix {
            None => tool == self.prefix,
            Some(suffix) => {
                tool.len() >= self.prefix.len() + suffix.len()
                    && tool.starts_with(&self.prefix)
                    && tool.ends_with(suffix.as_str())
            }
        }
    }
}

const TOOL_SCOPES: &str = "GATEWAY_TOOL_SCOPES";

/// RFC 6749 `scope-token` characters (`%x21 / %x23-5B / %x5D-7E`), without
/// the comma that separates rules here.
fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x5b | 0x5d..=0x7e)
}

impl ToolScopes {
    /// Parses the setting; an error names it and what is wrong, not the value.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let mut rules = Vec::new();
        for rule in raw.split([',', '\n']).map(str::trim).filter(|r| !r.is_empty()) {
            let (pattern, scopes) = rule.split_once('=').ok_or(err(
                TOOL_SCOPES,
                "must be rules of the form tool=scope, separated by commas (a rule has no '=')",
            ))?;
            let pattern = pattern.trim();
            if pattern.is_empty() || pattern.chars().any(|c| c.is_whitespace() || c == '=') {
                return Err(err(TOOL_SCOPES, "has a rule without a tool name or pattern before its '='"));
            }
            let (prefix, suffix) = match pattern.split_once('*') {
                None => (pattern.to_owned(), None),
                Some((_, after)) if after.contains('*') => {
                    return Err(err(TOOL_SCOPES, "has a pattern with more than one '*'"))
                }
                Some((before, after)) => (before.to_owned(), Some(after.to_owned())),
            };
            let scopes: Vec<String> = scopes.split_whitespace().map(str::to_owned).collect();
            if scopes.is_empty() {
                return Err(err(TOOL_SCOPES, "has a rule without scopes after its '='"));
            }
            if !scopes.iter().all(|s| s.bytes().all(is_scope_char)) {
                return Err(err(TOOL_SCOPES, "has a scope with characters no OAuth scope can have"));
            }
            rules.push(ToolRule { prefix, suffix, scopes });
        }
        if rules.is_empty() {
            return Err(err(TOOL_SCOPES, "has no rules (leave it unset to judge no tool call by scope)"));
        }
        Ok(Self { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The scopes a call of `tool` needs: the first matching rule's.
    pub fn required(&self, tool: &str) -> &[String] {
        self.rules.iter().find(|r| r.matches(tool)).map(|r| r.scopes.as_slice()).unwrap_or_default()
    }

    /// The scopes the `tools/call` requests in `message` (one request or a
    /// batch) need and `granted` lacks, each once, in order.
    pub fn missing(&self, message: &Value, granted: &[String]) -> Vec<String> {
        let calls: Vec<&Value> = match message {
            Value::Array(batch) => batch.iter().collect(),
            one => vec![one],
        };
        let mut missing: Vec<String> = Vec::new();
        for call in calls {
            if call.get("method").and_then(Value::as_str) != Some("tools/call") {
                continue;
            }
            let Some(tool) = call.pointer("/params/name").and_then(Value::as_str) else { continue };
            for scope in self.required(tool) {
                if !granted.contains(scope) && !missing.contains(scope) {
                    missing.push(scope.clone());
                }
            }
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Option<Downstream>, ConfigError> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Downstream::from_lookup(|k| m.get(k).cloned(), false)
    }

    fn load_bound(pairs: &[(&str, &str)]) -> Result<Option<Downstream>, ConfigError> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Downstream::from_lookup(|k| m.get(k).cloned(), true)
    }

    const KEY: (&str, &str) = ("COOKIE_ENCRYPTION_KEY", "0123456789abcdef0123456789abcdef");

    #[test]
    fn proxy_mode_is_off_without_a_downstream_url() {
        assert_eq!(load(&[KEY]), Ok(None));
        assert_eq!(load(&[KEY, ("DOWNSTREAM_MCP_URL", "  ")]), Ok(None));
    }

    #[test]
    fn proxy_settings_are_read_with_defaults() {
        let d = load(&[KEY, ("DOWNSTREAM_MCP_URL", "https://mcp.example.com/mcp")]).unwrap().unwrap();
        assert_eq!(d.mcp_url.as_str(), "https://mcp.example.com/mcp");
        assert_eq!((d.sse_url, d.timeout_ms, d.groups_claim.as_str()), (None, 30_000, "groups"));
        assert_eq!((d.keepalive_ms, d.grant_check_ms, d.bound), (Some(20_000), 60_000, false));
        let d = load(&[
            KEY,
            ("DOWNSTREAM_MCP_URL", "http://127.0.0.1:9100/mcp"),
            ("DOWNSTREAM_SSE_URL", "http://localhost:9100/sse"),
            ("DOWNSTREAM_TIMEOUT_SECS", "7"),
            ("DOWNSTREAM_KEEPALIVE_SECS", "0"),
            ("GROUPS_CLAIM", "memberOfGroupNames"),
            ("SSE_GRANT_CHECK_SECS", "2"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(d.grant_check_ms, 2000);
        assert_eq!(d.keepalive_ms, None, "0 switches keep-alives off");
        assert_eq!(d.sse_url.unwrap().as_str(), "http://localhost:9100/sse");
        assert_eq!((d.timeout_ms, d.groups_claim.as_str()), (7000, "memberOfGroupNames"));
    }

    #[test]
    fn the_service_binding_switches_proxy_mode_on_and_the_url_names_its_requests() {
        let d = load_bound(&[KEY]).unwrap().expect("the binding alone switches the gateway on");
        assert!(d.bound);
        assert_eq!((d.mcp_url.as_str(), d.sse_url), (BOUND_URL, None));
        // The URL gives path, query and Host through the binding; it never leaves
        // Cloudflare, so plain http to any host is fine there (not without it).
        let pairs = [
            KEY,
            ("DOWNSTREAM_MCP_URL", "http://tools.internal/v2/mcp?tenant=a"),
            ("DOWNSTREAM_SSE_URL", "http://tools.internal/v2/sse"),
        ];
        let d = load_bound(&pairs).unwrap().unwrap();
        assert_eq!(d.mcp_url.as_str(), "http://tools.internal/v2/mcp?tenant=a");
        assert_eq!(d.sse_url.unwrap().as_str(), "http://tools.internal/v2/sse");
        assert_eq!(load(&pairs).unwrap_err().name, "DOWNSTREAM_MCP_URL");
        assert_eq!(load_bound(&[KEY, ("DOWNSTREAM_MCP_URL", "ftp://x/mcp")]).unwrap_err().name, "DOWNSTREAM_MCP_URL");
        assert_eq!(load_bound(&[]).unwrap_err().name, "COOKIE_ENCRYPTION_KEY");
    }

    #[test]
    fn bad_proxy_settings_are_named_without_their_values() {
        let bad = |pairs: &[(&str, &str)]| load(pairs).unwrap_err();
        let e = bad(&[KEY, ("DOWNSTREAM_MCP_URL", "http://mcp.example.com/mcp")]);
        assert_eq!(e.name, "DOWNSTREAM_MCP_URL");
        assert!(!e.to_string().contains("example"));
        assert_eq!(bad(&[KEY, ("DOWNSTREAM_MCP_URL", "not a url")]).name, "DOWNSTREAM_MCP_URL");
        assert_eq!(bad(&[KEY, ("DOWNSTREAM_MCP_URL", "https://u:p@mcp.example.com/")]).name, "DOWNSTREAM_MCP_URL");
        let ok_mcp = ("DOWNSTREAM_MCP_URL", "https://mcp.example.com/mcp");
        assert_eq!(bad(&[KEY, ok_mcp, ("DOWNSTREAM_SSE_URL", "ftp://x/sse")]).name, "DOWNSTREAM_SSE_URL");
        assert_eq!(bad(&[KEY, ok_mcp, ("DOWNSTREAM_TIMEOUT_SECS", "0")]).name, "DOWNSTREAM_TIMEOUT_SECS");
        assert_eq!(bad(&[KEY, ok_mcp, ("DOWNSTREAM_TIMEOUT_SECS", "soon")]).name, "DOWNSTREAM_TIMEOUT_SECS");
        for v in ["-1", "301", "often"] {
            assert_eq!(bad(&[KEY, ok_mcp, ("DOWNSTREAM_KEEPALIVE_SECS", v)]).name, "DOWNSTREAM_KEEPALIVE_SECS");
        }
        assert_eq!(bad(&[ok_mcp]).name, "COOKIE_ENCRYPTION_KEY");
        let short = bad(&[ok_mcp, ("COOKIE_ENCRYPTION_KEY", "short-secret")]);
        assert_eq!(short.name, "COOKIE_ENCRYPTION_KEY");
        assert!(!short.to_string().contains("short-secret"));
    }

    #[test]
    fn tool_scopes_first_matching_rule_decides() {
        let ok_mcp = ("DOWNSTREAM_MCP_URL", "https://mcp.example.com/mcp");
        let d = load(&[KEY, ok_mcp]).unwrap().unwrap();
        assert!(d.tool_scopes.is_empty(), "unset: no tool call is judged by scope");
        let rules =
            "delete_*=todo_api:write todo_api:admin,\n *_report = reports:read ,whoami=profile, *=todo_api:read";
        let d = load(&[KEY, ok_mcp, ("GATEWAY_TOOL_SCOPES", rules)]).unwrap().unwrap();
        let t = &d.tool_scopes;
        assert_eq!(t.required("delete_todo"), ["todo_api:write", "todo_api:admin"]);
        assert_eq!(t.required("delete_"), ["todo_api:write", "todo_api:admin"], "* may stand for nothing");
        assert_eq!(t.required("weekly_report"), ["reports:read"]);
        assert_eq!(t.required("whoami"), ["profile"]);
        assert_eq!(t.required("whoami2"), ["todo_api:read"], "a name without * matches only itself");
        assert_eq!(t.required("list"), ["todo_api:read"]);
        let narrow = ToolScopes::parse("a*z=s").unwrap();
        assert_eq!(
            (narrow.required("abcz"), narrow.required("az"), narrow.required("za")),
            (&["s".to_owned()][..], &["s".to_owned()][..], &[][..])
        );
        assert!(narrow.required("a").is_empty(), "prefix and suffix may not overlap");
    }

    #[test]
    fn tool_scopes_missing_covers_batches_and_names_each_scope_once() {
        let t = ToolScopes::parse("delete_*=w, *=r").unwrap();
        let call = |name: &str| serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name}});
        let granted = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(t.missing(&call("delete_x"), &granted(&["r"])), ["w"]);
        assert!(t.missing(&call("list"), &granted(&["r"])).is_empty());
        assert_eq!(t.missing(&call("list"), &granted(&[])), ["r"]);
        let batch = serde_json::json!([call("list"), call("delete_a"), call("delete_b"), {"jsonrpc": "2.0", "id": 4, "method": "tools/list"}]);
        assert_eq!(t.missing(&batch, &granted(&[])), ["r", "w"]);
        assert!(t.missing(&serde_json::json!({"method": "tools/list"}), &granted(&[])).is_empty());
        assert!(ToolScopes::default().missing(&call("delete_x"), &granted(&[])).is_empty());
    }

    #[test]
    fn bad_tool_scopes_are_named_without_their_values() {
        let ok_mcp = ("DOWNSTREAM_MCP_URL", "https://mcp.example.com/mcp");
        for (value, why) in [
            ("delete_*", "no '='"),
            ("=todo_api:write", "without a tool name"),
            ("delete me=x", "without a tool name"),
            ("a*b*=x", "more than one '*'"),
            ("delete_*=", "without scopes"),
            ("delete_*=  ,*=r", "without scopes"),
            ("x=\"quoted\"", "characters no OAuth scope"),
            (" , ", "no rules"),
        ] {
            let e = load(&[KEY, ok_mcp, ("GATEWAY_TOOL_SCOPES", value)]).unwrap_err();
            assert_eq!(e.name, "GATEWAY_TOOL_SCOPES", "{value}");
            assert!(e.to_string().contains(why), "{value}: {e}");
        }
    }

    #[test]
    fn the_session_key_is_derived_not_the_cookie_key_itself() {
        let k = session_key(b"0123456789abcdef0123456789abcdef");
        assert_ne!(&k[..], b"0123456789abcdef0123456789abcdef");
        assert_eq!(k, session_key(b"0123456789abcdef0123456789abcdef"));
        assert_ne!(k, session_key(b"0123456789abcdef0123456789abcdeX"));
    }
}
