//! ID token validation (OIDC Core §3.1.3.7): signature against the provider's
//! JWKS with an algorithm it announced (never `none` or HMAC), then `iss`,
//! `aud`/`azp`, `exp`, `iat` and `nonce`. Time comes from the caller so the
//! checks work the same in tests and on Workers.

use crate::util::crypto::{b64url_decode, constant_time_eq};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// Clock skew tolerated between PingOne and the worker.
pub const LEEWAY_SECS: u64 = 60;

/// What a valid ID token must say.
pub struct Expected<'a> {
    /// The issuer from discovery (equal to the configured one).
    pub issuer: &'a str,
    /// The worker's client id at PingOne.
    pub client_id: &'a str,
    /// The nonce sent with this sign-in attempt.
    pub nonce: &'a str,
    /// From discovery `id_token_signing_alg_values_supported`, asymmetric only.
    pub algorithms: &'a [Algorithm],
    pub now: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdTokenError {
    Malformed,
    /// `alg` is `none`, HMAC, or not one the provider announced.
    AlgorithmNotAllowed(String),
    /// No key in the JWKS matches the token's `kid` (after one refresh, fatal).
    UnknownKey(Option<String>),
    BadSignature,
    WrongIssuer,
    WrongAudience,
    WrongAuthorizedParty,
    Expired,
    IssuedInTheFuture,
    MissingClaim(String),
    WrongNonce,
}

impl fmt::Display for IdTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdTokenError::Malformed => f.write_str("the ID token is not a well-formed JWT"),
            IdTokenError::AlgorithmNotAllowed(a) => write!(f, "the ID token uses a disallowed algorithm ({a})"),
            IdTokenError::UnknownKey(_) => {
                f.write_str("the ID token is signed with a key the provider does not publish")
            }
            IdTokenError::BadSignature => f.write_str("the ID token signature is invalid"),
            IdTokenError::WrongIssuer => f.write_str("the ID token was issued by another issuer"),
            IdTokenError::WrongAudience => f.write_str("the ID token is meant for another client (aud)"),
            IdTokenError::WrongAuthorizedParty => f.write_str("the ID token is meant for another client (azp)"),
            IdTokenError::Expired => f.write_str("the ID token has expired"),
            IdTokenError::IssuedInTheFuture => f.write_str("the ID token is issued in the future"),
            IdTokenError::MissingClaim(c) => write!(f, "the ID token lacks the {c} claim"),
            IdTokenError::WrongNonce => f.write_str("the ID token nonce does not match this sign-in"),
        }
    }
}

impl std::error::Error for IdTokenError {}

/// The `alg` of the header, read by hand so `none` is reported as such
/// (jsonwebtoken cannot even represent it).
fn header_alg(token: &str) -> Result<String, IdTokenError> {
    let header = token.split('.').next().ok_or(IdTokenError::Malformed)?;
    let json = b64url_decode(header).ok_or(IdTokenError::Malformed)?;
    let v: Value = serde_json::from_slice(&json).map_err(|_| IdTokenError::Malformed)?;
    v.get("alg").and_then(Value::as_str).map(str::to_owned).ok_or(IdTokenError::Malformed)
}

/// Keys that may have signed a token with `alg` and `kid`.
fn map_jwt_error(kind: &ErrorKind) -> IdTokenError {
    match kind {
        ErrorKind::InvalidSignature => IdTokenError::BadSignature,
        ErrorKind::InvalidIssuer => IdTokenError::WrongIssuer,
        ErrorKind::InvalidAudience => IdTokenError::WrongAudience,
        ErrorKind::ExpiredSignature => IdTokenError::Expired,
        ErrorKind::MissingRequiredClaim(c) => IdTokenError::MissingClaim(c.clone()),
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            IdTokenError::AlgorithmNotAllowed("key mismatch".into())
        }
        _ => IdTokenError::Malformed,
    }
}

fn number(claims: &Map<String, Value>, name: &str) -> Result<u64, IdTokenError> {
    claims.get(name).and_then(Value::as_u64).ok_or_else(|| IdTokenError::MissingClaim(name.to_owned()))
}

/// Validates `token` and returns its claims.
/// [`validate`], with the signature checked by the runtime's WebCrypto in the
/// Wasm build (`login::webcrypto`); natively, by the pure-Rust RSA backend.
pub async fn verify(token: &str, jwks: &JwkSet, expected: &Expected<'_>) -> Result<Map<String, Value>, IdTokenError> {
    #[cfg(target_arch = "wasm32")]
    let _checks = super::webcrypto::check_signatures(token, jwks, expected.algorithms).await;
    validate(token, jwks, expected)
}

pub fn validate(token: &str, jwks: &JwkSet, expected: &Expected<'_>) -> Result<Map<String, Value>, IdTokenError> {
    let alg_name = header_alg(token)?;
    let alg = Algorithm::from_str(&alg_name)
        .ok()
        .filter(|a| expected.algorithms.contains(a))
        .ok_or(IdTokenError::AlgorithmNotAllowed(alg_name))?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;

    let candidates = jwt_rsa::candidate_keys(jwks, alg, header.kid.as_deref());
    if candidates.is_empty() {
        return Err(IdTokenError::UnknownKey(header.kid));
    }

    let mut validation = Validation::new(alg);
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(&[expected.client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Expiry is checked below against the caller's clock.
    validation.validate_exp = false;
    validation.leeway = 0;

    // Once a signature checked out, a claim error is final (see `decode_with_any`).
    let claims = jwt_rsa::decode_with_any::<Map<String, Value>>(token, &candidates, &validation)
        .map_err(|kind| map_jwt_error(&kind))?
        .claims;

    // With several audiences, `azp` must name us (OIDC Core §3.1.3.7 items 4-5).
    let multiple_aud = claims.get("aud").and_then(Value::as_array).is_some_and(|a| a.len() > 1);
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != expected.client_id => return Err(IdTokenError::WrongAuthorizedParty),
        None if multiple_aud => return Err(IdTokenError::WrongAuthorizedParty),
        _ => {}
    }

    let exp = number(&claims, "exp")?;
    if exp + LEEWAY_SECS <= expected.now {
        return Err(IdTokenError::Expired);
    }
    let iat = number(&claims, "iat")?;
    if iat > expected.now + LEEWAY_SECS {
        return Err(IdTokenError::IssuedInTheFuture);
    }
    match claims.get("nonce").and_then(Value::as_str) {
        Some(n) if constant_time_eq(n, expected.nonce) => {}
        Some(_) => return Err(IdTokenError::WrongNonce),
        None => return Err(IdTokenError::MissingClaim("nonce".into())),
    }
    if claims.get("sub").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(IdTokenError::MissingClaim("sub".into()));
    }
    Ok(claims)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::util::crypto::b64url;
    use jsonwebtoken::{EncodingKey, Header};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    use rsa::RsaPrivateKey;
    use serde_json::json;
    use std::sync::OnceLock;

    pub const ISSUER: &str = "https://idp.example.com/as";
    pub const CLIENT: &str = "mcp-worker";
    pub const NONCE: &str = "nonce-123";
    pub const NOW: u64 = 1_700_000_000;

    /// A test RSA key with its JWK; generated once per test binary (slow in debug).
    pub struct TestKey {
        pub der: Vec<u8>,
        pub jwk: Value,
    }

    fn make_key(kid: &str) -> TestKey {
        let mut rng = rand::rngs::OsRng;
        let key = RsaPrivateKey::new(&mut rng, 2048).expect("rsa keygen");
        let der = key.to_pkcs1_der().expect("der").as_bytes().to_vec();
        let jwk = json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64url(key.n().to_bytes_be()), "e": b64url(key.e().to_bytes_be()),
        });
        TestKey { der, jwk }
    }

    pub fn key() -> &'static TestKey {
        static K: OnceLock<TestKey> = OnceLock::new();
        K.get_or_init(|| make_key("key-1"))
    }

    pub fn other_key() -> &'static TestKey {
        static K: OnceLock<TestKey> = OnceLock::new();
        K.get_or_init(|| make_key("key-2"))
    }

    pub fn jwks_of(keys: &[&TestKey]) -> Value {
        json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    pub fn claims() -> Value {
        json!({
            "iss": ISSUER, "aud": CLIENT, "sub": "user-1", "nonce": NONCE,
            "iat": NOW - 5, "exp": NOW + 3600,
            "preferred_username": "alice", "name": "Alice Example",
        })
    }

    pub fn sign(claims: &Value, key: &TestKey, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&key.der)).expect("sign")
    }

    fn jwks() -> JwkSet {
        crate::login::discovery::parse_jwks(jwks_of(&[key()]).to_string().as_bytes()).unwrap()
    }

    fn check(token: &str) -> Result<Map<String, Value>, IdTokenError> {
        let algs = [Algorithm::RS256];
        let expected = Expected { issuer: ISSUER, client_id: CLIENT, nonce: NONCE, algorithms: &algs, now: NOW };
        validate(token, &jwks(), &expected)
    }

    fn with(change: impl FnOnce(&mut Value)) -> String {
        let mut c = claims();
        change(&mut c);
        sign(&c, key(), Some("key-1"))
    }

    #[test]
    fn a_genuine_token_yields_its_claims() {
        let c = check(&sign(&claims(), key(), Some("key-1"))).unwrap();
        assert_eq!(c["sub"], "user-1");
        assert_eq!(c["preferred_username"], "alice");
        // Without a kid, the only matching key is tried.
        assert!(check(&sign(&claims(), key(), None)).is_ok());
        // Several audiences are fine when azp names us.
        assert!(check(&with(|c| {
            c["aud"] = json!([CLIENT, "other"]);
            c["azp"] = json!(CLIENT);
        }))
        .is_ok());
    }

    #[test]
    fn a_bad_signature_is_rejected() {
        // Signed by another key but claiming our kid.
        assert_eq!(check(&sign(&claims(), other_key(), Some("key-1"))), Err(IdTokenError::BadSignature));
        // A payload swapped under a genuine signature.
        let good = sign(&claims(), key(), Some("key-1"));
        let mut parts: Vec<&str> = good.split('.').collect();
        let evil =
            b64url(with(|c| c["sub"] = json!("admin")).split('.').nth(1).map(|p| b64url_decode(p).unwrap()).unwrap());
        parts[1] = &evil;
        assert_eq!(check(&parts.join(".")), Err(IdTokenError::BadSignature));
    }

    #[test]
    fn wrong_claims_are_rejected() {
        assert_eq!(check(&with(|c| c["nonce"] = json!("other"))), Err(IdTokenError::WrongNonce));
        assert_eq!(
            check(&with(|c| {
                c.as_object_mut().unwrap().remove("nonce");
            })),
            Err(IdTokenError::MissingClaim("nonce".into()))
        );
        assert_eq!(check(&with(|c| c["aud"] = json!("someone-else"))), Err(IdTokenError::WrongAudience));
        assert_eq!(
            check(&with(|c| {
                c["aud"] = json!([CLIENT, "other"]);
            })),
            Err(IdTokenError::WrongAuthorizedParty)
        );
        assert_eq!(check(&with(|c| c["azp"] = json!("other"))), Err(IdTokenError::WrongAuthorizedParty));
        assert_eq!(check(&with(|c| c["iss"] = json!("https://evil.example.com"))), Err(IdTokenError::WrongIssuer));
        assert_eq!(check(&with(|c| c["exp"] = json!(NOW - LEEWAY_SECS))), Err(IdTokenError::Expired));
        assert!(check(&with(|c| c["exp"] = json!(NOW - LEEWAY_SECS + 1))).is_ok(), "leeway tolerates skew");
        assert_eq!(check(&with(|c| c["iat"] = json!(NOW + 600))), Err(IdTokenError::IssuedInTheFuture));
        assert_eq!(
            check(&with(|c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
            Err(IdTokenError::MissingClaim("sub".into()))
        );
        assert_eq!(
            check(&with(|c| {
                c.as_object_mut().unwrap().remove("iat");
            })),
            Err(IdTokenError::MissingClaim("iat".into()))
        );
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_rejected() {
        let payload = b64url(claims().to_string());
        let none = format!("{}.{payload}.", b64url(r#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(check(&none), Err(IdTokenError::AlgorithmNotAllowed("none".into())));
        // HS256 "signed" with the public modulus, the classic key-confusion attack.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(key().jwk["n"].as_str().unwrap().as_bytes()),
        )
        .unwrap();
        assert_eq!(check(&hs), Err(IdTokenError::AlgorithmNotAllowed("HS256".into())));
        for junk in ["", "abc", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"] {
            assert!(check(junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn an_unknown_kid_is_reported_so_the_caller_can_refetch() {
        let token = sign(&claims(), other_key(), Some("key-2"));
        assert_eq!(check(&token), Err(IdTokenError::UnknownKey(Some("key-2".into()))));
        let both = crate::login::discovery::parse_jwks(jwks_of(&[key(), other_key()]).to_string().as_bytes()).unwrap();
        let algs = [Algorithm::RS256];
        let expected = Expected { issuer: ISSUER, client_id: CLIENT, nonce: NONCE, algorithms: &algs, now: NOW };
        assert!(validate(&token, &both, &expected).is_ok());
    }
}
