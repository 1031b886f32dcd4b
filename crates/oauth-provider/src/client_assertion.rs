//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID
//! Connect Core §9) for Client ID Metadata Document clients, as
//! workers-oauth-provider 1.2.2 has it: the client signs a short-lived JWT
//! with a key its metadata document publishes, and sends it as
//! `client_assertion` with `client_assertion_type` = [`ASSERTION_TYPE`] on
//! every token and revocation request.
//!
//! - **Which clients**: a document whose `token_endpoint_auth_method` /
//!   `token_endpoint_auth_methods_supported` offer `private_key_jwt` and that
//!   publishes its keys (`jwks`, or an https `jwks_uri`). Offering only
//!   `private_key_jwt`, every request must carry an assertion; offering `none`
//!   as well, the client may send one or not, and is held to the public-client
//!   rules (PKCE) either way. An assertion that is sent and fails is refused:
//!   there is never a fallback to `none`. Turned off with
//!   [`Config::private_key_jwt`](crate::Config::private_key_jwt).
//! - **Keys**: inline `jwks`, or `jwks_uri` fetched through the application's
//!   [`MetadataFetcher`](crate::MetadataFetcher) with the same guards as the
//!   documents (the URL rules of [`crate::cimd`], no redirects, only 200), at
//!   most [`MAX_JWKS_BYTES`] within [`crate::cimd::FETCH_TIMEOUT_MS`], cached
//!   in KV (`cimd_jwks:{sha256(uri)}`) for at most [`JWKS_CACHE_SECS`] (less
//!   when its `Cache-Control` says so). Keys with private material refuse the
//!   whole set. A `kid` the cached set lacks fetches it again once the copy
//!   is [`JWKS_REFETCH_AFTER_SECS`] old, so a rotated-in key works at once.
//! - **Signature**: [`ALGORITHMS`] only (RS256 with a modulus of at least
//!   2048 bits, ES256 on P-256), by the key the header's `kid` names, or any
//!   key of the right type when it names none. Checked with RustCrypto's
//!   `rsa` and `p256` directly, never through `jsonwebtoken`'s process-wide
//!   backend (that one is the application's, and may verify nothing).
//! - **Claims**: `iss` and `sub` both the `client_id`; `aud` (a string or an
//!   array) naming the issuer, the token endpoint URL or the URL of the
//!   endpoint called; `exp` required, not past (allowing [`CLOCK_SKEW_SECS`])
//!   and at most [`MAX_ASSERTION_LIFETIME_SECS`] ahead; `nbf` and `iat`, when
//!   present, not in the future; `jti` required.
//! - **Replay**: each `jti` is accepted once per client: a marker
//!   `client_jti:{sha256(client_id, jti)}` is kept until the assertion
//!   expires, in the application's [`SingleUse`](crate::SingleUse) record
//!   when it installed one (strongly consistent), else in KV. KV is
//!   eventually consistent, so without the record this is best effort across
//!   locations: the same assertion replayed within a minute or so through
//!   another Cloudflare location may be accepted once more. The short
//!   lifetime bounds the window.
//!
//! Every refusal is `invalid_client` (401) with a description saying what was
//! wrong (never the assertion itself) and a [`Reason`] in category
//! `client_auth`; a key set that cannot be fetched is `temporarily_unavailable`
//! (503), as an unreachable document is.

use super::cimd::{cache_lifetime, check_url_for, CimdError, CimdErrorKind, FetchFailure};
use super::error::{OAuthError, Reason};
use super::records::ClientInfo;
use super::Provider;
use crate::crypto::{b64url_decode, sha256_hex};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The signature algorithms accepted (and advertised as
/// `token_endpoint_auth_signing_alg_values_supported`).
pub const ALGORITHMS: [&str; 2] = ["RS256", "ES256"];
/// Largest `client_assertion` read.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// Largest key set read from a `jwks_uri`.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Longest a fetched key set is cached.
pub const JWKS_CACHE_SECS: u64 = 300;
/// How far ahead of now an assertion's `exp` may be.
pub const MAX_ASSERTION_LIFETIME_SECS: u64 = 300;
/// Clock difference allowed between the client and this server.
pub const CLOCK_SKEW_SECS: u64 = 60;
/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// A `kid` missing from a cached key set fetches the set again once the
/// cached copy is this old (a client rotating keys is followed at once; a
/// stream of unknown `kid`s costs at most one fetch per this long).
pub const JWKS_REFETCH_AFTER_SECS: u64 = 60;
/// Most keys of a set tried for one assertion without a `kid`.
pub(crate) const MAX_KEYS_TRIED: usize = 10;

const JWKS_CACHE_PREFIX: &str = "cimd_jwks:";
const JTI_PREFIX: &str = "client_jti:";

/// The key of the replay marker of `jti` from `client_id`.
pub(crate) fn jti_key(client_id: &str, jti: &str) -> String {
    format!("{JTI_PREFIX}{}", sha256_hex(format!("{client_id}\n{jti}")))
}

/// Why an assertion was refused.
pub(crate) struct Refusal {
    pub(crate) check: &'static str,
    pub(crate) detail: String,
    /// A key set that could not be had: worth a retry.
    pub(crate) transient: bool,
}

fn refuse(check: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal { check, detail: detail.into(), transient: false }
}

impl From<Refusal> for OAuthError {
    fn from(r: Refusal) -> Self {
        let reason = Reason::new("client_auth", r.check);
        if r.transient {
            OAuthError::temporarily_unavailable(r.detail).because(reason)
        } else {
            OAuthError {
                description: format!("Client authentication failed: {}", r.detail),
                ..OAuthError::invalid_client(false)
            }
            .because(reason)
        }
    }
}

/// An assertion split into its parts, its signature not yet checked.
pub(crate) struct Parsed<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    /// The header's `typ`, if any.
    pub(crate) typ: Option<String>,
    pub(crate) signing_input: &'a str,
    pub(crate) signature: Vec<u8>,
    pub(crate) claims: serde_json::Map<String, Value>,
}

pub(crate) fn parse(assertion: &str) -> Result<Parsed<'_>, Refusal> {
    let malformed = |d: &str| refuse("assertion_malformed", format!("the client assertion is not a signed JWT ({d})"));
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(malformed(&format!("longer than {MAX_ASSERTION_BYTES} bytes")));
    }
    let mut parts = assertion.split('.');
    let (Some(header_part), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not three dot-separated parts"));
    };
    // What the signature covers: `header.payload`.
    let signing_input = &assertion[..header_part.len() + 1 + payload.len()];
    let header = b64url_decode(header_part)
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(Value::is_object)
        .ok_or_else(|| malformed("the header is not a JSON object"))?;
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => Algorithm::RS256,
        Some("ES256") => Algorithm::ES256,
        _ => {
            return Err(refuse(
                "assertion_alg_unsupported",
                format!("the client assertion's alg must be one of {}", ALGORITHMS.join(", ")),
            ))
        }
    };
    // RFC 7515 §4.1.11: extensions this server does not know refuse the JWS.
    if header.get("crit").is_some() {
        return Err(malformed("critical header extensions are not supported"));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(malformed("the kid is not a string")),
    };
    let claims = b64url_decode(payload)
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .ok_or_else(|| malformed("the claims are not a JSON object"))?;
    let signature = b64url_decode(signature).ok_or_else(|| malformed("bad signature encoding"))?;
    let typ = header.get("typ").and_then(Value::as_str).map(str::to_owned);
    Ok(Parsed { alg, kid, typ, signing_input, signature, claims })
}

/// The `sub` an assertion claims, unverified: which client to look up when
/// the request names none.
pub(crate) fn claimed_subject(assertion: &str) -> Option<String> {
    let parsed = parse(assertion).ok()?;
    parsed.claims.get("sub").and_then(Value::as_str).map(str::to_owned)
}

/// A NumericDate claim as whole seconds: `Ok(None)` when absent.
pub(crate) fn numeric_date(
    claims: &serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if (0.0..1e12).contains(&f) => Ok(Some(f as u64)),
            _ => Err(refuse("assertion_claims", format!("the client assertion's {name} is not a valid time"))),
        },
        Some(_) => Err(refuse("assertion_claims", format!("the client assertion's {name} is not a number"))),
    }
}

/// Checks the claims; the `jti` and `exp` on success.
fn check_claims(
    claims: &serde_json::Map<String, Value>,
    client_id: &str,
    audiences: &[String],
    now: u64,
) -> Result<(String, u64), Refusal> {
    let string = |name: &str| claims.get(name).and_then(Value::as_str);
    if string("iss") != Some(client_id) {
        return Err(refuse("assertion_issuer", "the client assertion's iss must be the client_id"));
    }
    if string("sub") != Some(client_id) {
        return Err(refuse("assertion_subject", "the client assertion's sub must be the client_id"));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => audiences.contains(a),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(|a| audiences.iter().any(|x| x == a)),
        _ => false,
    };
    if !aud_ok {
        return Err(refuse(
            "assertion_audience",
            format!("the client assertion's aud must name this server ({})", audiences.join(" or ")),
        ));
    }
    let exp = numeric_date(claims, "exp")?
        .ok_or_else(|| refuse("assertion_exp_missing", "the client assertion has no exp"))?;
    if exp + CLOCK_SKEW_SECS <= now {
        return Err(refuse("assertion_expired", "the client assertion has expired"));
    }
    if exp > now + MAX_ASSERTION_LIFETIME_SECS + CLOCK_SKEW_SECS {
        return Err(refuse(
            "assertion_lifetime",
            format!("the client assertion's exp is more than {MAX_ASSERTION_LIFETIME_SECS} s ahead"),
        ));
    }
    for name in ["nbf", "iat"] {
        if numeric_date(claims, name)?.is_some_and(|t| t > now + CLOCK_SKEW_SECS) {
            return Err(refuse("assertion_not_yet_valid", format!("the client assertion's {name} is in the future")));
        }
    }
    let jti = match claims.get("jti") {
        Some(Value::String(j)) if !j.is_empty() && j.len() <= 256 => j.clone(),
        _ => return Err(refuse("assertion_jti_missing", "the client assertion has no jti (1 to 256 characters)")),
    };
    Ok((jti, exp))
}

/// Whether `jwk` may check a signature with `alg` under the header's `kid`.
pub(crate) fn usable(jwk: &Jwk, alg: Algorithm, kid: Option<&str>) -> bool {
    let c = &jwk.common;
    let kid_ok = kid.is_none_or(|k| c.key_id.as_deref() == Some(k));
    let use_ok = c.public_key_use.as_ref().is_none_or(|u| *u == PublicKeyUse::Signature);
    let ops_ok = c.key_operations.as_ref().is_none_or(|ops| ops.contains(&KeyOperations::Verify));
    let (key_alg, type_ok) = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => (KeyAlgorithm::RS256, true),
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => {
            (KeyAlgorithm::ES256, p.curve == EllipticCurve::P256)
        }
        _ => (KeyAlgorithm::RS256, false),
    };
    let alg_ok = c.key_algorithm.is_none_or(|a| a == key_alg);
    kid_ok && use_ok && ops_ok && type_ok && alg_ok
}

/// Whether `signature` over `message` verifies with `jwk` under `alg`.
pub(crate) fn verifies(jwk: &Jwk, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(p), Algorithm::RS256) => {
            use rsa::traits::PublicKeyParts;
            use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
            use sha2::{Digest, Sha256};
            let (Some(n), Some(e)) = (b64url_decode(&p.n), b64url_decode(&p.e)) else { return false };
            let Ok(key) = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e)) else {
                return false;
            };
            key.n().bits() >= MIN_RSA_BITS
                && key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message), signature).is_ok()
        }
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => {
            use p256::ecdsa::signature::Verifier;
            use p256::ecdsa::{Signature, VerifyingKey};
            let (Some(x), Some(y)) = (b64url_decode(&p.x), b64url_decode(&p.y)) else { return false };
            if x.len() != 32 || y.len() != 32 || signature.len() != 64 {
                return false;
            }
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            let (Ok(key), Ok(sig)) = (VerifyingKey::from_sec1_bytes(&sec1), Signature::from_slice(signature)) else {
                return false;
            };
            key.verify(message, &sig).is_ok()
        }
        _ => false,
    }
}

/// The public keys of a JWK set (`{"keys": [...]}`); keys of unknown types
/// are skipped, private material refuses the set.
pub(crate) fn parse_jwks(set: &Value) -> Result<Vec<Jwk>, String> {
    let Some(keys) = set.get("keys").and_then(Value::as_array) else {
        return Err("the key set is not a JSON object with a keys array".into());
    };
    if keys.iter().any(has_private_material) {
        return Err("the key set contains private key material".into());
    }
    Ok(keys.iter().filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok()).collect())
}

/// A JWK with private (or symmetric) key members.
pub(crate) fn has_private_material(key: &Value) -> bool {
    ["d", "p", "q", "dp", "dq", "qi", "oth", "k"].iter().any(|f| key.get(f).is_some())
}

/// A fetched key set as cached in KV.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CachedJwks {
    jwks_uri: String,
    jwks: String,
    #[serde(default)]
    fetched_at: u64,
    fresh_until: u64,
}

impl Provider<'_> {
    /// Checks `assertion` as `client`'s authentication for a request whose
    /// audience may be any of `audiences`, and records its `jti`.
    pub(crate) async fn check_client_assertion(
        &self,
        client: &ClientInfo,
        assertion: &str,
        audiences: &[String],
    ) -> Result<(), OAuthError> {
        let parsed = parse(assertion)?;
        // The cheap checks first: no key fetch for a stale or misaddressed assertion.
        let (jti, exp) = check_claims(&parsed.claims, &client.client_id, audiences, self.now)?;
        let keys = self.client_keys(client, parsed.kid.as_deref()).await?;
        let candidates: Vec<&Jwk> =
            keys.iter().filter(|k| usable(k, parsed.alg, parsed.kid.as_deref())).take(MAX_KEYS_TRIED).collect();
        if candidates.is_empty() {
            return Err(refuse(
                "assertion_no_key",
                match &parsed.kid {
                    Some(_) => "no key of the client's key set matches the assertion's kid and alg",
                    None => "the client's key set has no key for the assertion's alg",
                },
            )
            .into());
        }
        let message = parsed.signing_input.as_bytes();
        if !candidates.iter().any(|k| verifies(k, parsed.alg, message, &parsed.signature)) {
            return Err(refuse("assertion_signature", "the client assertion's signature does not verify").into());
        }
        let key = jti_key(&client.client_id, &jti);
        if !self.first_use(&key, exp + CLOCK_SKEW_SECS).await? {
            return Err(refuse("assertion_replayed", "the client assertion's jti was used before").into());
        }
        Ok(())
    }

    /// The client's public keys: its inline `jwks`, or its `jwks_uri`'s set
    /// (cached, else fetched; fetched again for a `kid` the cached set lacks,
    /// see [`JWKS_REFETCH_AFTER_SECS`]).
    async fn client_keys(&self, client: &ClientInfo, kid: Option<&str>) -> Result<Vec<Jwk>, Refusal> {
        let invalid = |d: String| refuse("jwks_invalid", d);
        if let Some(set) = &client.jwks {
            return parse_jwks(set).map_err(invalid);
        }
        let Some(uri) = client.jwks_uri.as_deref() else {
            return Err(refuse("jwks_missing", "the client publishes no keys (jwks or jwks_uri)"));
        };
        self.keys_at(uri, kid).await
    }

    /// The key set at `uri` (cached, else fetched with the guards of the
    /// module docs; fetched again for a `kid` the cached set lacks, see
    /// [`JWKS_REFETCH_AFTER_SECS`]). Also the enterprise IdP's keys.
    pub(crate) async fn keys_at(&self, uri: &str, kid: Option<&str>) -> Result<Vec<Jwk>, Refusal> {
        let key = format!("{JWKS_CACHE_PREFIX}{}", sha256_hex(uri));
        // A cache that cannot be read is a miss.
        if let Ok(Some(raw)) = self.store.get(&key).await {
            if let Ok(cached) = serde_json::from_str::<CachedJwks>(&raw) {
                if cached.jwks_uri == uri && cached.fresh_until > self.now {
                    if let Some(keys) = serde_json::from_str(&cached.jwks).ok().and_then(|v| parse_jwks(&v).ok()) {
                        let has_kid = kid.is_none_or(|k| keys.iter().any(|j| j.common.key_id.as_deref() == Some(k)));
                        if has_kid || self.now < cached.fetched_at + JWKS_REFETCH_AFTER_SECS {
                            return Ok(keys);
                        }
                    }
                }
            }
        }
        let cimd_err = |e: CimdError| Refusal {
            check: if e.is_transient() { "jwks_unavailable" } else { "jwks_invalid" },
            transient: e.is_transient(),
            detail: e.to_string(),
        };
        let fetch_err = |d: String| cimd_err(CimdError::new(uri, CimdErrorKind::Fetch, d));
        let Some(fetcher) = self.cimd else {
            return Err(refuse("jwks_unavailable", "this server cannot fetch a jwks_uri"));
        };
        let url = check_url_for(uri, self.config.cimd_allow_loopback, "jwks_uri").map_err(cimd_err)?;
        // As for documents: the kind of failure in the answer, the details in the operator's log.
        let logged = |e: CimdError| {
            self.log(&format!("jwks_uri {} refused ({:?}): {}", crate::text::neutralise(uri), e.kind, e.log));
            cimd_err(e)
        };
        let fetched = fetcher.get(&url, MAX_JWKS_BYTES, super::cimd::FETCH_TIMEOUT_MS).await.map_err(|e| {
            logged(match e {
                FetchFailure::Timeout => CimdError::new(
                    uri,
                    CimdErrorKind::Fetch,
                    format!(
                        "the key set could not be fetched: no complete answer within {} s",
                        super::cimd::FETCH_TIMEOUT_MS / 1000
                    ),
                ),
                FetchFailure::TooLarge => CimdError::new(
                    uri,
                    CimdErrorKind::Fetch,
                    format!("the key set could not be fetched: it is larger than {MAX_JWKS_BYTES} bytes"),
                ),
                FetchFailure::Unreachable(why) => CimdError::new(
                    uri,
                    CimdErrorKind::Fetch,
                    "the key set could not be fetched: no answer from its host",
                )
                .logging(format!("unreachable: {}", crate::text::neutralise(&why))),
            })
        })?;
        if fetched.status != 200 {
            return Err(logged(
                CimdError::new(
                    uri,
                    CimdErrorKind::Fetch,
                    "the key set could not be fetched: the jwks_uri did not answer 200 OK (redirects are not followed)",
                )
                .logging(format!("the jwks_uri answered HTTP {}", fetched.status)),
            ));
        }
        if fetched.body.len() > MAX_JWKS_BYTES {
            return Err(fetch_err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes")));
        }
        let doc_err = |d: String| cimd_err(CimdError::new(uri, CimdErrorKind::Document, d));
        let set: Value = std::str::from_utf8(&fetched.body)
            .ok()
            .and_then(|t| serde_json::from_str(t).ok())
            .ok_or_else(|| doc_err("the key set is not valid UTF-8 JSON".into()))?;
        let keys = parse_jwks(&set).map_err(doc_err)?;
        let lifetime = cache_lifetime(fetched.cache_control.as_deref()).min(JWKS_CACHE_SECS);
        if lifetime > 0 {
            let cached = CachedJwks {
                jwks_uri: uri.to_owned(),
                jwks: set.to_string(),
                fetched_at: self.now,
                fresh_until: self.now + lifetime,
            };
            if let Ok(raw) = serde_json::to_string(&cached) {
                // Best effort: without the entry the next request fetches again.
                let _ = self.store.put(&key, &raw, Some(lifetime.max(crate::store::MIN_TTL_SECS))).await;
            }
        }
        Ok(keys)
    }
}
