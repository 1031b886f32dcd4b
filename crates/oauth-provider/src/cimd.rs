//! Client ID Metadata Documents (MCP 2025-11-25 authorization,
//! draft-ietf-oauth-client-id-metadata-document): a `client_id` that is an
//! https URL names a JSON document describing the client, fetched by this
//! server instead of a registration.
//!
//! - **URL rules**: https, canonical form (as the WHATWG
//!   parser serializes it), a path other than `/`, no userinfo, fragment, dot
//!   segments (also percent-encoded), whitespace, controls or backslash; the
//!   host must be a public name or address: IP literals outside the public
//!   unicast ranges, `localhost`, single-label names and special-use domains
//!   are refused, loopback only allowed by the development setting
//!   ([`Config::cimd_allow_loopback`](super::Config)).
//! - **Fetch** through the application's [`MetadataFetcher`] (the Workers
//!   fetch in production): GET, no redirects followed, only 200 accepted, at
//!   most [`MAX_DOCUMENT_BYTES`] read, within [`FETCH_TIMEOUT_MS`].
//! - **Document**: strict UTF-8 JSON object whose
//!   `client_id` equals the URL exactly, with a `client_name` and
//!   `redirect_uris` (checked as at registration), no client secret or
//!   private keys; its token endpoint authentication negotiated from
//!   `token_endpoint_auth_method` and `token_endpoint_auth_methods_supported`:
//!   `none` (a public client), or `private_key_jwt` with the keys of `jwks` or
//!   `jwks_uri` (see [`crate::client_assertion`]); shared secrets never.
//! - **Cache** (KV, `cimd:{sha256(url)}`): only documents that validated, for
//!   as long as their `Cache-Control` allows (`no-store`,
//!   `no-cache` or `private` = not cached, `s-maxage`/`max-age` honoured up to
//!   [`MAX_CACHE_SECS`], [`DEFAULT_CACHE_SECS`] without either); a stale entry
//!   is fetched again (never served stale), and every entry is validated
//!   again when read.
//! - **Errors** tell the person the stage and kind of failure ("could not be
//!   fetched: no answer from its host", "did not answer 200 OK", "is not
//!   valid JSON", "client_id does not equal its URL", …) but never the HTTP
//!   status, the connection error or anything the document contains: the
//!   server must not become a way to read other hosts. The details go to the
//!   operator's log ([`CimdError::log`], [`Provider::with_operator_log`]).
//! - **Bound**: fetches of documents not in the cache are counted per
//!   minute, overall and per source, by a [`FetchBudget`] the application
//!   keeps per isolate ([`Provider::with_fetch_budget`]); past the bound a
//!   request is refused without a fetch ([`CimdErrorKind::Busy`]).

use super::records::ClientInfo;
use super::Provider;
use crate::crypto::sha256_hex;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// Largest document read (CIMD §6.6 suggests about 5 KB).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// The fetch, body included, must finish within this.
pub const FETCH_TIMEOUT_MS: u32 = 5_000;
/// Longest metadata URL accepted as a `client_id`.
pub const MAX_URL_LEN: usize = 2048;
/// Cache lifetime of a document whose response says nothing about caching.
pub const DEFAULT_CACHE_SECS: u64 = 300;
/// Longest a document is cached, whatever its `Cache-Control` says.
pub const MAX_CACHE_SECS: u64 = 24 * 3600;

const CACHE_PREFIX: &str = "cimd:";

/// Whether `client_id` is meant as a metadata document URL (then it is held
/// to the URL rules above, never looked up as a registration).
pub fn is_metadata_url(client_id: &str) -> bool {
    client_id.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// What the application's fetch returned.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedDocument {
    /// The HTTP status (only 200 is accepted; a 3xx is not followed).
    pub status: u16,
    /// The `Cache-Control` header, if any.
    pub cache_control: Option<String>,
    /// The body (not read for a status other than 200).
    pub body: Vec<u8>,
}

/// Why the fetch produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchFailure {
    /// No complete answer within the time limit.
    Timeout,
    /// The body passed the size limit.
    TooLarge,
    /// Connection refused, TLS or DNS failure and the like.
    Unreachable(String),
}

/// Outbound HTTP for metadata documents, supplied by the platform.
#[async_trait(?Send)]
pub trait MetadataFetcher {
    /// `GET url` with `Accept: application/json`, following no redirect
    /// (a 3xx is returned as it is), reading at most `max_bytes` of body
    /// (more is [`FetchFailure::TooLarge`]) and giving up after `timeout_ms`
    /// (body included).
    async fn get(&self, url: &Url, max_bytes: usize, timeout_ms: u32) -> Result<FetchedDocument, FetchFailure>;
}

/// Why a metadata document client could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CimdError {
    /// The `client_id` as given (for display; neutralise before showing).
    pub url: String,
    /// Which stage failed.
    pub kind: CimdErrorKind,
    /// What was wrong, for the person: the kind of failure only, nothing
    /// the fetch returned (no status, connection error or document value).
    pub detail: String,
    /// What was wrong in full, for the operator's log only (the HTTP status,
    /// the connection error, the document's offending value); never shown.
    pub log: String,
}

/// The stage at which a metadata document client failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CimdErrorKind {
    /// The URL breaks the rules (shape or address).
    Url,
    /// The document could not be had: timeout, network, non-200 status.
    Fetch,
    /// The document was had but is not acceptable.
    Document,
    /// Too many documents not in the cache were fetched in the last minute
    /// (see [`FetchBudget`]); nothing was fetched. Worth a retry later.
    Busy,
}

impl CimdError {
    pub(crate) fn new(url: &str, kind: CimdErrorKind, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self { url: url.chars().take(200).collect(), kind, log: detail.clone(), detail }
    }
    /// The same error with `log` as the operator's details.
    pub(crate) fn logging(self, log: impl Into<String>) -> Self {
        Self { log: log.into(), ..self }
    }
    /// Worth trying again later (the document host may come back, the
    /// fetch budget refills).
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, CimdErrorKind::Fetch | CimdErrorKind::Busy)
    }
}

impl fmt::Display for CimdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CIMD fetch failed for {}: {}", crate::text::neutralise(&self.url), self.detail)
    }
}

fn is_dot_segment(segment: &str) -> bool {
    let s = segment.to_ascii_lowercase().replace("%2e", ".");
    s == "." || s == ".."
}

/// Public unicast IPv4 (not private, loopback, link-local, shared, reserved,
/// documentation, benchmarking, multicast or broadcast: RFC 6890).
fn ipv4_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

/// Public unicast IPv6: global unicast 2000::/3 without the special-use
/// blocks in it (IETF protocol assignments incl. Teredo 2001::/23,
/// documentation 2001:db8::/32 and 3fff::/20, 6to4 2002::/16). Loopback,
/// unspecified, IPv4-mapped and NAT64 forms, ULA, link-local and multicast
/// are all outside 2000::/3.
fn ipv6_public(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    (s[0] & 0xe000) == 0x2000
        && !(s[0] == 0x2001 && s[1] < 0x0200)
        && !(s[0] == 0x2001 && s[1] == 0x0db8)
        && s[0] != 0x2002
        && (s[0] & 0xfff0) != 0x3ff0
}

fn is_loopback_name(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost")
}

/// Special-use and local-only domain suffixes (RFC 6761, RFC 6762, RFC 8375
/// and the private-use `.internal`).
const LOCAL_SUFFIXES: [&str; 8] =
    [".local", ".localdomain", ".internal", ".home.arpa", ".test", ".invalid", ".example", ".onion"];

/// Checks a metadata document URL; `allow_loopback` is the development
/// setting that admits 127.0.0.0/8, `[::1]` and `localhost`.
pub(crate) fn check_url(client_id: &str, allow_loopback: bool) -> Result<Url, CimdError> {
    check_url_for(client_id, allow_loopback, "client_id")
}

/// [`check_url`] for a URL that a document names (`what`: `jwks_uri`), held
/// to the same rules before it is fetched.
pub(crate) fn check_url_for(client_id: &str, allow_loopback: bool, what: &str) -> Result<Url, CimdError> {
    let err = |d: &str| CimdError::new(client_id, CimdErrorKind::Url, d.replace("{what}", what));
    if client_id.len() > MAX_URL_LEN {
        return Err(err(&format!("the {what} URL is longer than {MAX_URL_LEN} characters")));
    }
    if client_id.chars().any(|c| c.is_whitespace() || crate::text::is_hidden_control(c)) {
        return Err(err("the {what} URL contains whitespace or control characters"));
    }
    if client_id.contains('\\') {
        return Err(err("the {what} URL contains a backslash"));
    }
    if client_id.contains('#') {
        return Err(err("the {what} URL must not have a fragment"));
    }
    let after_scheme = client_id.get(8..).unwrap_or("");
    let (authority, path) = match after_scheme.find(['/', '?']) {
        Some(i) => after_scheme.split_at(i),
        None => (after_scheme, ""),
    };
    if authority.contains('@') {
        return Err(err("the {what} URL must not contain user information"));
    }
    let raw_path = path.split('?').next().unwrap_or("");
    if raw_path.split('/').any(is_dot_segment) {
        return Err(err("the {what} URL must not contain dot segments"));
    }
    let url = Url::parse(client_id).map_err(|_| err("the {what} is not a valid URL"))?;
    if url.scheme() != "https" {
        return Err(err("the {what} URL must use https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err("the {what} URL must not contain user information"));
    }
    if raw_path.is_empty() || raw_path == "/" {
        return Err(err("the {what} URL must have a path"));
    }
    let loopback = "the {what} URL points at a loopback address, which is refused (CIMD_ALLOW_LOOPBACK=true allows it \
                    for local development)";
    match url.host() {
        Some(Host::Ipv4(ip)) if ip.is_loopback() => {
            if !allow_loopback {
                return Err(err(loopback));
            }
        }
        Some(Host::Ipv6(ip)) if ip.is_loopback() => {
            if !allow_loopback {
                return Err(err(loopback));
            }
        }
        Some(Host::Ipv4(ip)) if !ipv4_public(ip) => {
            return Err(err("the {what} URL points at a private or special-use address"))
        }
        Some(Host::Ipv6(ip)) if !ipv6_public(ip) => {
            return Err(err("the {what} URL points at a private or special-use address"))
        }
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => {}
        Some(Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            if is_loopback_name(&d) {
                if !allow_loopback {
                    return Err(err(loopback));
                }
            } else if !d.contains('.') || d.ends_with('.') {
                return Err(err("the {what} URL's host must be a fully qualified public name"));
            } else if LOCAL_SUFFIXES.iter().any(|s| d.ends_with(s)) {
                return Err(err("the {what} URL's host is a local or special-use name"));
            }
        }
        None => return Err(err("the {what} URL has no host")),
    }
    // One spelling per document: the one the document's client_id must repeat.
    if url.as_str() != client_id {
        return Err(err(&format!("the {what} URL is not in canonical form (it would be {})", url.as_str())));
    }
    Ok(url)
}

/// How long a document fetched with `cache_control` may be cached, in
/// seconds (0: not at all).
pub(crate) fn cache_lifetime(cache_control: Option<&str>) -> u64 {
    let Some(cc) = cache_control else { return DEFAULT_CACHE_SECS };
    let mut max_age = None;
    let mut s_maxage = None;
    for directive in cc.split(',') {
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(v.trim().trim_matches('"'))),
            None => (directive.trim().to_ascii_lowercase(), None),
        };
        match name.as_str() {
            "no-store" | "no-cache" | "private" => return 0,
            // A malformed value means "stale" (RFC 9111 §4.2.1).
            "max-age" => max_age = Some(value.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)),
            "s-maxage" => s_maxage = Some(value.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)),
            _ => {}
        }
    }
    // This server is a shared cache: s-maxage wins (RFC 9111 §5.2.2.10).
    s_maxage.or(max_age).unwrap_or(DEFAULT_CACHE_SECS).min(MAX_CACHE_SECS)
}

/// Grant and response types this server supports; others in a document are
/// ignored (the document is written for many servers).
const GRANT_TYPES: [&str; 2] = ["authorization_code", "refresh_token"];

/// The token endpoint authentication a document's client gets: its
/// `token_endpoint_auth_method` (the preference) and OpenID RP Metadata
/// Choices' `token_endpoint_auth_methods_supported` (the offer), negotiated
/// with what this server implements for metadata-document clients: `none`,
/// and `private_key_jwt` when `private_key_jwt` is on and the document
/// publishes its keys. Returns the method the client is held to and whether
/// it may (also) authenticate with an assertion.
fn negotiate_auth_method(
    doc: &serde_json::Map<String, Value>,
    private_key_jwt: bool,
    has_keys: bool,
) -> Result<(&'static str, bool), String> {
    let preferred = match doc.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) => Some(m.as_str()),
        Some(_) => return Err("token_endpoint_auth_method must be a string".into()),
    };
    let choices: Option<Vec<&str>> = match doc.get("token_endpoint_auth_methods_supported") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<_>>>()
                .ok_or("token_endpoint_auth_methods_supported must list strings")?,
        ),
        Some(_) => return Err("token_endpoint_auth_methods_supported must be an array".into()),
    };
    if let (Some(p), Some(c)) = (preferred, &choices) {
        if !c.contains(&p) {
            return Err("token_endpoint_auth_method must be one of token_endpoint_auth_methods_supported".into());
        }
    }
    let offered = choices.unwrap_or_else(|| vec![preferred.unwrap_or("none")]);
    let none = offered.contains(&"none");
    let jwt = offered.contains(&"private_key_jwt");
    match (none, jwt && private_key_jwt, has_keys) {
        (true, true, true) => Ok(("none", true)),
        (true, _, _) => Ok(("none", false)),
        (false, true, true) => Ok(("private_key_jwt", false)),
        (false, true, false) => Err("private_key_jwt needs the client's public keys in jwks or jwks_uri".into()),
        (false, false, _) if jwt => Err("token_endpoint_auth_method private_key_jwt is turned off on this server \
                                          (OAUTH_PRIVATE_KEY_JWT=false): the document must offer none"
            .into()),
        (false, false, _) => Err("token_endpoint_auth_method must be none or private_key_jwt (a metadata-document \
                                  client has no shared secret)"
            .into()),
    }
}

/// Checks a fetched document for `url` and turns it into the client it
/// describes: public (`none`), or holding the keys its `private_key_jwt`
/// assertions are checked with (`private_key_jwt`: the setting
/// [`Config::private_key_jwt`](crate::Config::private_key_jwt)).
///
/// `extra_grants`: grant types accepted besides `authorization_code` and
/// `refresh_token` (the token exchange, when on); others are dropped.
pub(crate) fn validate_document(
    url: &str,
    body: &[u8],
    private_key_jwt: bool,
    allow_private_use: bool,
    extra_grants: &[&str],
) -> Result<ClientInfo, CimdError> {
    let err = |d: String| CimdError::new(url, CimdErrorKind::Document, d);
    let text = std::str::from_utf8(body).map_err(|_| err("the document is not valid UTF-8".into()))?;
    let doc: Value = serde_json::from_str(text).map_err(|_| err("the document is not valid JSON".into()))?;
    let Value::Object(mut doc) = doc else { return Err(err("the document is not a JSON object".into())) };
    match doc.get("client_id") {
        Some(Value::String(id)) if id == url => {}
        Some(Value::String(id)) => {
            return Err(err("the document's client_id does not equal its URL".into()).logging(format!(
                "the document's client_id ({}) does not equal its URL",
                crate::text::neutralise(&id.chars().take(200).collect::<String>())
            )))
        }
        _ => return Err(err("the document has no client_id".into())),
    }
    if doc.contains_key("client_secret") || doc.contains_key("client_secret_expires_at") {
        return Err(err("the document must not contain a client secret".into()));
    }
    if doc
        .get("jwks")
        .and_then(|j| j.get("keys"))
        .and_then(Value::as_array)
        .is_some_and(|keys| keys.iter().any(super::client_assertion::has_private_material))
    {
        return Err(err("the document's jwks contains private key material".into()));
    }
    let present = |f: &str| doc.get(f).is_some_and(|v| !v.is_null());
    let (method, also_jwt) =
        negotiate_auth_method(&doc, private_key_jwt, present("jwks") || present("jwks_uri")).map_err(err)?;
    let uses_jwt = method == "private_key_jwt" || also_jwt;
    // The keys are checked only when they are used (a document is written for many servers).
    let (mut jwks, mut jwks_uri) = (None, None);
    if uses_jwt {
        if present("jwks") && present("jwks_uri") {
            return Err(err("the document must not give both jwks and jwks_uri (RFC 7591 §2)".into()));
        }
        match doc.get("jwks") {
            Some(set @ Value::Object(_)) => {
                super::client_assertion::parse_jwks(set).map_err(|e| err(format!("the document's jwks: {e}")))?;
                jwks = Some(set.clone());
            }
            Some(v) if !v.is_null() => return Err(err("the document's jwks must be a JSON object".into())),
            _ => {}
        }
        match doc.get("jwks_uri") {
            Some(Value::String(u)) if is_metadata_url(u) && Url::parse(u).is_ok() => jwks_uri = Some(u.clone()),
            Some(v) if !v.is_null() => return Err(err("the document's jwks_uri must be an https URL".into())),
            _ => {}
        }
    }
    match doc.get("client_name") {
        Some(Value::String(n)) if !n.trim().is_empty() => {}
        _ => return Err(err("the document has no client_name".into())),
    }
    // The types this server has no use for are dropped before the checks.
    let grant_types: Vec<&str> = GRANT_TYPES.iter().chain(extra_grants).copied().collect();
    for (field, supported) in [("grant_types", &grant_types[..]), ("response_types", &["code"][..])] {
        if let Some(Value::Array(items)) = doc.get_mut(field) {
            items.retain(|v| v.as_str().is_some_and(|s| supported.contains(&s)));
        }
    }
    doc.remove("client_id");
    doc.insert("token_endpoint_auth_method".into(), Value::String("none".into()));
    // A refused redirect URI is named after the reason: the operator's log only.
    let mut client =
        super::register::validate_metadata(&Value::Object(doc), allow_private_use, extra_grants).map_err(|e| {
            let shown = match e.description.split_once(": ") {
                Some((why, _)) if e.error == "invalid_redirect_uri" => why.to_owned(),
                _ => e.description.clone(),
            };
            err(shown).logging(crate::text::neutralise(&e.description))
        })?;
    client.client_id = url.to_owned();
    client.client_secret = None;
    client.token_endpoint_auth_method = method.into();
    client.auth_method_explicit = true;
    client.jwks = jwks;
    client.jwks_uri = jwks_uri;
    if also_jwt {
        client.token_endpoint_auth_methods_supported = Some(vec!["none".into(), "private_key_jwt".into()]);
    }
    Ok(client)
}

/// A bound on the fetches of documents not in the cache (each also adds a
/// KV entry for up to [`MAX_CACHE_SECS`] when it validates): at most
/// `per_minute` in each clock minute, and at most `per_source_per_minute` of
/// them for one source (the application names it with
/// [`Provider::with_source`], e.g. the caller's IP address; requests naming
/// none share one source). Cache hits are not counted.
///
/// Approximate by design: the count lives in memory where the application
/// keeps the budget (on Workers, one isolate; Cloudflare runs many, so the
/// bound across a deployment is this times the isolates serving it), the
/// windows are fixed minutes (up to twice the bound across a minute's
/// boundary), and at most [`FetchBudget::MAX_SOURCES`] sources are told
/// apart per minute (later ones share one count). It bounds what one caller
/// can make this server do, not a guarantee for the document hosts.
#[derive(Debug)]
pub struct FetchBudget {
    per_minute: u32,
    per_source_per_minute: u32,
    state: std::cell::RefCell<BudgetState>,
}

#[derive(Debug, Default)]
struct BudgetState {
    minute: u64,
    total: u32,
    by_source: std::collections::HashMap<String, u32>,
}

impl FetchBudget {
    /// Fetches per minute, all sources together (the default).
    pub const DEFAULT_PER_MINUTE: u32 = 300;
    /// Fetches per minute for one source (the default).
    pub const DEFAULT_PER_SOURCE_PER_MINUTE: u32 = 30;
    /// Sources counted apart in one minute.
    pub const MAX_SOURCES: usize = 1024;

    /// A budget of `per_minute` fetches, `per_source_per_minute` of them for one source.
    pub fn new(per_minute: u32, per_source_per_minute: u32) -> Self {
        Self { per_minute, per_source_per_minute, state: Default::default() }
    }

    /// Counts one fetch for `source` at `now` (seconds since the epoch), or
    /// says which bound it would pass (`"overall"`, `"per source"`).
    pub fn take(&self, source: Option<&str>, now: u64) -> Result<(), &'static str> {
        let mut st = self.state.borrow_mut();
        let minute = now / 60;
        if st.minute != minute {
            *st = BudgetState { minute, ..Default::default() };
        }
        if st.total >= self.per_minute {
            return Err("overall");
        }
        let mut key = source.unwrap_or("").to_owned();
        if !st.by_source.contains_key(&key) && st.by_source.len() >= Self::MAX_SOURCES {
            key = "\u{0}other".into();
        }
        let n = st.by_source.entry(key).or_insert(0);
        if *n >= self.per_source_per_minute {
            return Err("per source");
        }
        *n += 1;
        st.total += 1;
        Ok(())
    }
}

impl Default for FetchBudget {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PER_MINUTE, Self::DEFAULT_PER_SOURCE_PER_MINUTE)
    }
}

impl<'a> Provider<'a> {
    /// The same server counting its fetches of documents not in the cache
    /// against `budget` (see [`FetchBudget`]); without one they are not bounded.
    pub fn with_fetch_budget(self, budget: &'a FetchBudget) -> Self {
        Self { fetch_budget: Some(budget), ..self }
    }

    /// The same server with `source` (e.g. the caller's IP address) as the
    /// requester for the per-source bound of the [`FetchBudget`].
    pub fn with_source(self, source: &'a str) -> Self {
        Self { source: Some(source), ..self }
    }
}

/// A validated document as cached in KV: the document itself (validated
/// again when read) and when it stops being fresh.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cached {
    client_id: String,
    document: String,
    fetched_at: u64,
    fresh_until: u64,
}

/// The error for a fetch that produced no answer: the kind for the person,
/// the platform's words for the log.
pub(crate) fn fetch_failure(url: &str, e: FetchFailure) -> CimdError {
    let err = |d: String| CimdError::new(url, CimdErrorKind::Fetch, d);
    match e {
        FetchFailure::Timeout => {
            err(format!("the document could not be fetched: no complete answer within {} s", FETCH_TIMEOUT_MS / 1000))
        }
        FetchFailure::TooLarge => {
            err(format!("the document could not be fetched: it is larger than {MAX_DOCUMENT_BYTES} bytes"))
        }
        FetchFailure::Unreachable(why) => err("the document could not be fetched: no answer from its host".into())
            .logging(format!("unreachable: {}", crate::text::neutralise(&why.chars().take(300).collect::<String>()))),
    }
}

/// Only a `200` within the size limit is a document; the status goes to the log only.
pub(crate) fn check_answer(url: &str, fetched: &FetchedDocument) -> Result<(), CimdError> {
    let err = |d: &str| CimdError::new(url, CimdErrorKind::Fetch, d);
    match fetched.status {
        200 => {}
        s => {
            return Err(err(
                "the document could not be fetched: its URL did not answer 200 OK (redirects are not followed)",
            )
            .logging(format!("the document URL answered HTTP {s}")))
        }
    }
    if fetched.body.len() > MAX_DOCUMENT_BYTES {
        return Err(err(&format!("the document could not be fetched: it is larger than {MAX_DOCUMENT_BYTES} bytes")));
    }
    Ok(())
}

fn cache_key(url: &str) -> String {
    format!("{CACHE_PREFIX}{}", sha256_hex(url))
}

impl Provider<'_> {
    /// The client a metadata document URL describes: from the cache while
    /// fresh, else fetched, validated and (when its headers allow) cached.
    /// Without a fetcher the server does not support metadata documents.
    pub(crate) async fn metadata_document_client(&self, client_id: &str) -> Result<ClientInfo, CimdError> {
        let result = self.metadata_document_client_inner(client_id).await;
        if let Err(e) = &result {
            self.log(&format!(
                "client metadata document {} refused ({:?}): {}",
                crate::text::neutralise(&e.url),
                e.kind,
                e.log
            ));
        }
        result
    }

    async fn metadata_document_client_inner(&self, client_id: &str) -> Result<ClientInfo, CimdError> {
        let Some(fetcher) = self.cimd else {
            return Err(CimdError::new(
                client_id,
                CimdErrorKind::Url,
                "this server does not accept client metadata documents",
            ));
        };
        let url = check_url(client_id, self.config.cimd_allow_loopback)?;
        if let Some(c) = self.cimd_memo.borrow().iter().find(|c| c.client_id == client_id) {
            return Ok(c.clone());
        }
        let key = cache_key(client_id);
        // A cache that cannot be read is a miss, not a failure.
        if let Ok(Some(raw)) = self.store.get(&key).await {
            if let Ok(cached) = serde_json::from_str::<Cached>(&raw) {
                if cached.client_id == client_id && cached.fresh_until > self.now {
                    if let Ok(client) = validate_document(
                        client_id,
                        cached.document.as_bytes(),
                        self.config.private_key_jwt,
                        self.config.allow_private_use_schemes,
                        &self.config.extra_grant_types(),
                    ) {
                        self.cimd_memo.borrow_mut().push(client.clone());
                        return Ok(client);
                    }
                }
            }
        }
        if let Some(budget) = self.fetch_budget {
            if let Err(which) = budget.take(self.source, self.now) {
                return Err(CimdError::new(
                    client_id,
                    CimdErrorKind::Busy,
                    "too many client metadata documents were fetched in the last minute; try again in a minute",
                )
                .logging(format!("fetch budget exhausted ({which}), source {}", self.source.unwrap_or("unknown"))));
            }
        }
        let fetched =
            fetcher.get(&url, MAX_DOCUMENT_BYTES, FETCH_TIMEOUT_MS).await.map_err(|e| fetch_failure(client_id, e))?;
        check_answer(client_id, &fetched)?;
        let client = validate_document(
            client_id,
            &fetched.body,
            self.config.private_key_jwt,
            self.config.allow_private_use_schemes,
            &self.config.extra_grant_types(),
        )?;
        let lifetime = cache_lifetime(fetched.cache_control.as_deref());
        if lifetime > 0 {
            let cached = Cached {
                client_id: client_id.to_owned(),
                // Valid UTF-8: validate_document checked it.
                document: String::from_utf8_lossy(&fetched.body).into_owned(),
                fetched_at: self.now,
                fresh_until: self.now + lifetime,
            };
            if let Ok(raw) = serde_json::to_string(&cached) {
                // Best effort: without the entry the next request fetches again.
                let _ = self.store.put(&key, &raw, Some(lifetime.max(crate::store::MIN_TTL_SECS))).await;
            }
        }
        self.cimd_memo.borrow_mut().push(client.clone());
        Ok(client)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A scripted [`MetadataFetcher`]: answers by exact URL and counts calls.

    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct FakeFetcher {
        pub routes: RefCell<HashMap<String, Result<FetchedDocument, FetchFailure>>>,
        pub calls: RefCell<Vec<String>>,
    }

    impl FakeFetcher {
        pub fn serve(&self, url: &str, status: u16, cache_control: Option<&str>, body: &str) {
            let doc = FetchedDocument {
                status,
                cache_control: cache_control.map(str::to_owned),
                body: body.as_bytes().to_vec(),
            };
            self.routes.borrow_mut().insert(url.to_owned(), Ok(doc));
        }
        pub fn fail(&self, url: &str, why: FetchFailure) {
            self.routes.borrow_mut().insert(url.to_owned(), Err(why));
        }
        pub fn calls_to(&self, url: &str) -> usize {
            self.calls.borrow().iter().filter(|u| *u == url).count()
        }
    }

    #[async_trait(?Send)]
    impl MetadataFetcher for FakeFetcher {
        async fn get(&self, url: &Url, max_bytes: usize, _timeout_ms: u32) -> Result<FetchedDocument, FetchFailure> {
            self.calls.borrow_mut().push(url.to_string());
            let answer = self
                .routes
                .borrow()
                .get(url.as_str())
                .cloned()
                .unwrap_or(Err(FetchFailure::Unreachable("connection refused".into())));
            // As the platform fetch does: a body past the limit is not returned.
            match answer {
                Ok(doc) if doc.body.len() > max_bytes => Err(FetchFailure::TooLarge),
                other => other,
            }
        }
    }
}
