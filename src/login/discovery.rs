//! OpenID Connect discovery and the provider's signing keys, fetched from
//! `{issuer}/.well-known/openid-configuration` and cached per isolate.

use super::settings::is_secure_or_loopback;
use crate::outbound::{get_json_request, HttpClient, OutboundError};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;
use url::Url;

/// Discovery and JWKS are re-read at most this often (a JWKS miss on an
/// unknown `kid` forces a refresh sooner).
pub const CACHE_TTL_SECS: u64 = 3600;

/// What the sign-in flow needs from the provider's discovery document.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub userinfo_endpoint: Url,
    pub jwks_uri: Url,
    /// RFC 7009 revocation (PingOne: `{issuer}/revoke`); grants that end revoke
    /// their PingOne refresh token there. Optional in discovery.
    pub revocation_endpoint: Option<Url>,
    /// Asymmetric ID-token algorithms the provider announces (never `none`/HS*).
    pub id_token_algorithms: Vec<Algorithm>,
}

impl Discovery {
    /// `scheme://host[:port]` of the authorization endpoint, for CSP `form-action`.
    pub fn authorization_origin(&self) -> String {
        self.authorization_endpoint.origin().ascii_serialization()
    }
}

/// Why discovery or the JWKS could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    Unreachable { what: &'static str, cause: OutboundError },
    BadResponse { what: &'static str, problem: String },
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::Unreachable { what, cause } => write!(f, "{what}: {cause}"),
            DiscoveryError::BadResponse { what, problem } => write!(f, "{what}: {problem}"),
        }
    }
}

fn bad(what: &'static str, problem: impl Into<String>) -> DiscoveryError {
    DiscoveryError::BadResponse { what, problem: problem.into() }
}

#[derive(Deserialize)]
struct RawDiscovery {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    jwks_uri: Option<String>,
    revocation_endpoint: Option<String>,
    id_token_signing_alg_values_supported: Option<Vec<String>>,
}

const WHAT_DISCOVERY: &str = "OpenID discovery document";
const WHAT_JWKS: &str = "JSON Web Key Set";

/// Algorithms an ID token may use: public-key signatures only.
fn asymmetric(alg: &str) -> Option<Algorithm> {
    let a = Algorithm::from_str(alg).ok()?;
    (!matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)).then_some(a)
}

/// Parses and checks a discovery document for `configured_issuer`.
pub fn parse_discovery(body: &[u8], configured_issuer: &str) -> Result<Discovery, DiscoveryError> {
    let raw: RawDiscovery = serde_json::from_slice(body).map_err(|_| bad(WHAT_DISCOVERY, "is not a JSON object"))?;
    let issuer = raw.issuer.ok_or_else(|| bad(WHAT_DISCOVERY, "has no issuer"))?;
    // OIDC Discovery 1.0 §4.3: the issuer must be the one we asked; we only
    // forgive a trailing slash, which the setting may or may not carry.
    if issuer.trim_end_matches('/') != configured_issuer.trim_end_matches('/') {
        return Err(bad(WHAT_DISCOVERY, "names a different issuer than PINGONE_ISSUER"));
    }
    let endpoint = |value: Option<String>, name: &'static str| -> Result<Url, DiscoveryError> {
        let v = value.ok_or_else(|| bad(WHAT_DISCOVERY, format!("has no {name}")))?;
        let url = Url::parse(&v).map_err(|_| bad(WHAT_DISCOVERY, format!("has an invalid {name}")))?;
        if !is_secure_or_loopback(&url) {
            return Err(bad(WHAT_DISCOVERY, format!("has a non-https {name}")));
        }
        Ok(url)
    };
    let id_token_algorithms: Vec<Algorithm> = match raw.id_token_signing_alg_values_supported {
        // RS256 is the algorithm every OpenID provider must support.
        None => vec![Algorithm::RS256],
        Some(list) => list.iter().filter_map(|a| asymmetric(a)).collect(),
    };
    if id_token_algorithms.is_empty() {
        return Err(bad(WHAT_DISCOVERY, "announces no public-key ID token algorithm"));
    }
    Ok(Discovery {
        issuer,
        authorization_endpoint: endpoint(raw.authorization_endpoint, "authorization_endpoint")?,
        token_endpoint: endpoint(raw.token_endpoint, "token_endpoint")?,
        userinfo_endpoint: endpoint(raw.userinfo_endpoint, "userinfo_endpoint")?,
        jwks_uri: endpoint(raw.jwks_uri, "jwks_uri")?,
        // Unusable or absent: grants still end, only PingOne is not told.
        revocation_endpoint: raw.revocation_endpoint.and_then(|v| endpoint(Some(v), "revocation_endpoint").ok()),
        id_token_algorithms,
    })
}

/// Parses a JWKS, skipping keys this crate cannot use (unknown `kty`/`alg`)
/// instead of rejecting the whole set.
pub fn parse_jwks(body: &[u8]) -> Result<JwkSet, DiscoveryError> {
    #[derive(Deserialize)]
    struct Raw {
        keys: Vec<serde_json::Value>,
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|_| bad(WHAT_JWKS, "is not a JSON key set"))?;
    let keys: Vec<Jwk> = raw.keys.into_iter().filter_map(|k| serde_json::from_value(k).ok()).collect();
    Ok(JwkSet { keys })
}

async fn get_json(http: &dyn HttpClient, url: &str, what: &'static str) -> Result<Vec<u8>, DiscoveryError> {
    let req = get_json_request(url, None).map_err(|cause| DiscoveryError::Unreachable { what, cause })?;
    let res = http.send(req).await.map_err(|cause| DiscoveryError::Unreachable { what, cause })?;
    if !res.status().is_success() {
        return Err(bad(what, format!("answered HTTP {}", res.status().as_u16())));
    }
    Ok(res.into_body())
}

struct Entry {
    issuer: String,
    discovery: Rc<Discovery>,
    fetched_at: u64,
    jwks: Option<(Rc<JwkSet>, u64)>,
}

/// Per-isolate cache of discovery and JWKS for one issuer.
#[derive(Default)]
pub struct OidcCache {
    entry: RefCell<Option<Entry>>,
}

impl OidcCache {
    /// The provider's discovery document, fetched if not cached or stale.
    pub async fn discovery(
        &self,
        http: &dyn HttpClient,
        issuer: &str,
        now: u64,
    ) -> Result<Rc<Discovery>, DiscoveryError> {
        if let Some(e) = self.entry.borrow().as_ref() {
            if e.issuer == issuer && now < e.fetched_at + CACHE_TTL_SECS {
                return Ok(e.discovery.clone());
            }
        }
        let url = format!("{issuer}/.well-known/openid-configuration");
        let body = get_json(http, &url, WHAT_DISCOVERY).await?;
        let discovery = Rc::new(parse_discovery(&body, issuer)?);
        *self.entry.borrow_mut() =
            Some(Entry { issuer: issuer.to_owned(), discovery: discovery.clone(), fetched_at: now, jwks: None });
        Ok(discovery)
    }

    /// The provider's keys; `refresh` forces a new fetch (used once when an
    /// ID token names a `kid` the cached set lacks, e.g. after key rotation).
    pub async fn jwks(
        &self,
        http: &dyn HttpClient,
        discovery: &Discovery,
        now: u64,
        refresh: bool,
    ) -> Result<Rc<JwkSet>, DiscoveryError> {
        if !refresh {
            if let Some(e) = self.entry.borrow().as_ref() {
                if let Some((set, at)) = &e.jwks {
                    if e.discovery.jwks_uri == discovery.jwks_uri && now < at + CACHE_TTL_SECS {
                        return Ok(set.clone());
                    }
                }
            }
        }
        let body = get_json(http, discovery.jwks_uri.as_str(), WHAT_JWKS).await?;
        let set = Rc::new(parse_jwks(&body)?);
        if let Some(e) = self.entry.borrow_mut().as_mut() {
            if e.discovery.jwks_uri == discovery.jwks_uri {
                e.jwks = Some((set.clone(), now));
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::outbound::fake::FakeHttp;
    use futures::executor::block_on;
    use serde_json::json;

    pub const ISSUER: &str = "https://idp.example.com/as";

    pub fn discovery_json() -> serde_json::Value {
        json!({
            "issuer": ISSUER,
            "authorization_endpoint": format!("{ISSUER}/authorize"),
            "token_endpoint": format!("{ISSUER}/token"),
            "userinfo_endpoint": format!("{ISSUER}/userinfo"),
            "jwks_uri": format!("{ISSUER}/jwks"),
            "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
        })
    }

    #[test]
    fn parses_a_pingone_style_document() {
        let d = parse_discovery(discovery_json().to_string().as_bytes(), ISSUER).unwrap();
        assert_eq!(d.token_endpoint.as_str(), "https://idp.example.com/as/token");
        assert_eq!(d.authorization_origin(), "https://idp.example.com");
        // HS256 and none are dropped: a shared-secret or unsigned ID token is never accepted.
        assert_eq!(d.id_token_algorithms, [Algorithm::RS256]);
    }

    #[test]
    fn rejects_unusable_documents() {
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (json!({"issuer": "https://evil.example.com/as"}), "different issuer"),
            (
                {
                    let mut d = discovery_json();
                    d.as_object_mut().unwrap().remove("jwks_uri");
                    d
                },
                "no jwks_uri",
            ),
            (
                {
                    let mut d = discovery_json();
                    d["token_endpoint"] = json!("http://idp.example.com/token");
                    d
                },
                "non-https token_endpoint",
            ),
            (
                {
                    let mut d = discovery_json();
                    d["id_token_signing_alg_values_supported"] = json!(["none", "HS256"]);
                    d
                },
                "no public-key",
            ),
            (json!([1, 2]), "not a JSON object"),
        ];
        for (doc, expected) in cases {
            let e = parse_discovery(doc.to_string().as_bytes(), ISSUER).unwrap_err();
            assert!(e.to_string().contains(expected), "{e} should mention {expected}");
        }
    }

    #[test]
    fn missing_algorithm_list_means_rs256() {
        let mut d = discovery_json();
        d.as_object_mut().unwrap().remove("id_token_signing_alg_values_supported");
        let d = parse_discovery(d.to_string().as_bytes(), ISSUER).unwrap();
        assert_eq!(d.id_token_algorithms, [Algorithm::RS256]);
    }

    #[test]
    fn jwks_skips_keys_it_cannot_use() {
        let body = json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": "sXch", "e": "AQAB", "alg": "RS256", "use": "sig"},
            "not-a-key", {"kid": "b", "use": "sig"},
        ]});
        let set = parse_jwks(body.to_string().as_bytes()).unwrap();
        // The string is dropped; the key-less entry parses but can never verify anything.
        assert_eq!(set.keys.len(), 2);
        assert!(set.find("a").is_some());
        assert!(parse_jwks(b"{}").is_err());
    }

    #[test]
    fn discovery_is_cached_per_isolate_and_errors_are_reported() {
        let http = FakeHttp::default();
        let url = format!("{ISSUER}/.well-known/openid-configuration");
        http.json(&url, 200, discovery_json());
        let cache = OidcCache::default();
        block_on(cache.discovery(&http, ISSUER, 1000)).unwrap();
        block_on(cache.discovery(&http, ISSUER, 1000 + CACHE_TTL_SECS - 1)).unwrap();
        assert_eq!(http.calls_to(&url), 1);
        block_on(cache.discovery(&http, ISSUER, 1000 + CACHE_TTL_SECS)).unwrap();
        assert_eq!(http.calls_to(&url), 2);

        let down = FakeHttp::default();
        down.fail(&url, OutboundError::Timeout);
        let e = block_on(OidcCache::default().discovery(&down, ISSUER, 0)).unwrap_err();
        assert!(matches!(e, DiscoveryError::Unreachable { cause: OutboundError::Timeout, .. }));

        let broken = FakeHttp::default();
        broken.json(&url, 500, json!({}));
        let e = block_on(OidcCache::default().discovery(&broken, ISSUER, 0)).unwrap_err();
        assert_eq!(e.to_string(), "OpenID discovery document: answered HTTP 500");
    }

    #[test]
    fn jwks_is_cached_until_a_refresh_is_forced() {
        let http = FakeHttp::default();
        http.json(&format!("{ISSUER}/.well-known/openid-configuration"), 200, discovery_json());
        http.json(&format!("{ISSUER}/jwks"), 200, json!({"keys": []}));
        let cache = OidcCache::default();
        let d = block_on(cache.discovery(&http, ISSUER, 0)).unwrap();
        block_on(cache.jwks(&http, &d, 0, false)).unwrap();
        block_on(cache.jwks(&http, &d, 10, false)).unwrap();
        assert_eq!(http.calls_to(&format!("{ISSUER}/jwks")), 1);
        block_on(cache.jwks(&http, &d, 10, true)).unwrap();
        assert_eq!(http.calls_to(&format!("{ISSUER}/jwks")), 2);
    }
}
