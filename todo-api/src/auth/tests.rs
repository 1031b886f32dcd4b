//! JWT verification against keys made here, signed with jsonwebtoken's full backend.

use super::*;
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as FULL;
use jsonwebtoken::EncodingKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use std::sync::OnceLock;

const ISS: &str = "https://auth.pingone.com/env/as";
const AUD: &str = "https://todo-api.example";
const NOW: u64 = 1_750_000_000;
const KID: &str = "key-1";

struct Key {
    private: RsaPrivateKey,
}

impl Key {
    fn jwk(&self, kid: Option<&str>) -> Value {
        let public = self.private.to_public_key();
        let mut jwk = json!({
            "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        });
        if let Some(kid) = kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }
    fn public_pem(&self) -> String {
        self.private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap()
    }
    fn encoding(&self) -> EncodingKey {
        EncodingKey::from_rsa_der(self.private.to_pkcs1_der().unwrap().as_bytes())
    }
}

fn new_key() -> Key {
    Key { private: RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap() }
}

/// The issuer's key, and one it never published.
fn keys() -> &'static (Key, Key) {
    static KEYS: OnceLock<(Key, Key)> = OnceLock::new();
    KEYS.get_or_init(|| (new_key(), new_key()))
}

fn jwks(jwks: Vec<Value>) -> JwkSet {
    crate::jwks::parse(json!({ "keys": jwks }).to_string().as_bytes()).unwrap()
}

fn issuer_jwks() -> JwkSet {
    jwks(vec![keys().0.jwk(Some(KID))])
}

fn config() -> Config {
    Config { issuer: ISS.into(), audience: AUD.into() }
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": AUD, "sub": "user-1", "scope": "openid todo_api:read todo_api:write",
        "iat": NOW - 10, "exp": NOW + 3600, "client_id": "mcp-worker",
    })
}

fn with(over: Value) -> Value {
    let mut c = claims();
    for (k, v) in over.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A compact JWS with exactly this header and these claims.
fn sign_raw(header: Value, claims: &Value, alg: Algorithm, key: &EncodingKey) -> String {
    let input = format!("{}.{}", b64(&header), b64(claims));
    let sig = (FULL.signer_factory)(&alg, key).unwrap().try_sign(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn sign_with(claims: &Value, key: &Key, kid: Option<&str>) -> String {
    let mut header = json!({"alg": "RS256", "typ": "at+jwt"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    sign_raw(header, claims, Algorithm::RS256, &key.encoding())
}

fn sign(claims: &Value) -> String {
    sign_with(claims, &keys().0, Some(KID))
}

fn check(token: &str) -> Result<Claims, AuthError> {
    verify(token, &issuer_jwks(), &config(), NOW)
}

#[test]
fn a_valid_token_yields_sub_and_scopes() {
    let c = check(&sign(&claims())).unwrap();
    assert_eq!(c.sub, "user-1");
    assert_eq!(c.scopes, vec!["openid", "todo_api:read", "todo_api:write"]);
    assert!(c.require(READ_SCOPE).is_ok() && c.require(WRITE_SCOPE).is_ok());
}

#[test]
fn issuer_must_match() {
    assert_eq!(check(&sign(&with(json!({"iss": "https://auth.pingone.com/other/as"})))), Err(AuthError::WrongIssuer));
    assert_eq!(check(&sign(&with(json!({"iss": format!("{ISS}/")})))), Err(AuthError::WrongIssuer));
    assert_eq!(check(&sign(&with(json!({"iss": null})))), Err(AuthError::MissingClaim("iss".into())));
}

#[test]
fn audience_must_contain_the_api() {
    assert_eq!(check(&sign(&with(json!({"aud": "https://other.example"})))), Err(AuthError::WrongAudience));
    assert_eq!(check(&sign(&with(json!({"aud": ["https://other.example", "x"]})))), Err(AuthError::WrongAudience));
    assert!(check(&sign(&with(json!({"aud": ["https://other.example", AUD]})))).is_ok());
    assert!(check(&sign(&with(json!({"aud": [AUD]})))).is_ok());
    assert_eq!(check(&sign(&with(json!({"aud": null})))), Err(AuthError::MissingClaim("aud".into())));
}

#[test]
fn expiry_and_not_before_with_leeway() {
    let l = LEEWAY_SECS;
    assert_eq!(check(&sign(&with(json!({"exp": NOW - l - 1})))), Err(AuthError::Expired));
    assert_eq!(check(&sign(&with(json!({"exp": NOW - 3600})))), Err(AuthError::Expired));
    assert!(check(&sign(&with(json!({"exp": NOW - l + 1})))).is_ok(), "within leeway");
    assert_eq!(check(&sign(&with(json!({"exp": null})))), Err(AuthError::MissingClaim("exp".into())));
    assert_eq!(check(&sign(&with(json!({"nbf": NOW + l + 1})))), Err(AuthError::NotYetValid));
    assert!(check(&sign(&with(json!({"nbf": NOW + l - 1})))).is_ok(), "within leeway");
    assert!(check(&sign(&with(json!({"nbf": NOW - 100})))).is_ok());
    assert_eq!(check(&sign(&with(json!({"nbf": "soon"})))), Err(AuthError::MissingClaim("nbf".into())));
}

#[test]
fn sub_is_required() {
    assert_eq!(check(&sign(&with(json!({"sub": null})))), Err(AuthError::MissingClaim("sub".into())));
    assert_eq!(check(&sign(&with(json!({"sub": ""})))), Err(AuthError::MissingClaim("sub".into())));
    assert!(check(&sign(&with(json!({"sub": 42})))).is_err());
}

#[test]
fn only_rs256_is_accepted() {
    let (key, _) = keys();
    let input = format!("{}.{}", b64(&json!({"alg": "none", "typ": "at+jwt"})), b64(&claims()));
    assert_eq!(check(&format!("{input}.")), Err(AuthError::AlgorithmNotAllowed));
    assert_eq!(check(&format!("{input}.c2ln")), Err(AuthError::AlgorithmNotAllowed));
    let none_upper = format!("{}.{}.", b64(&json!({"alg": "NONE", "kid": KID})), b64(&claims()));
    assert_eq!(check(&none_upper), Err(AuthError::AlgorithmNotAllowed));

    // Algorithm confusion: HMAC keyed with the issuer's public key.
    let hs = sign_raw(
        json!({"alg": "HS256", "kid": KID}),
        &claims(),
        Algorithm::HS256,
        &EncodingKey::from_secret(key.public_pem().as_bytes()),
    );
    assert_eq!(check(&hs), Err(AuthError::AlgorithmNotAllowed));

    // Other RSA algorithms with the right key are refused too.
    for alg in [Algorithm::PS256, Algorithm::RS384, Algorithm::RS512] {
        let name = format!("{alg:?}");
        let t = sign_raw(json!({"alg": name, "kid": KID}), &claims(), alg, &key.encoding());
        assert_eq!(check(&t), Err(AuthError::AlgorithmNotAllowed), "{name}");
    }
    // An RS256 header over a signature of another kind does not verify.
    let ps = sign_raw(json!({"alg": "RS256", "kid": KID}), &claims(), Algorithm::PS256, &key.encoding());
    assert_eq!(check(&ps), Err(AuthError::BadSignature));
}

#[test]
fn keys_are_chosen_by_kid() {
    let (key, foreign) = keys();
    assert_eq!(check(&sign_with(&claims(), key, Some("rotated-away"))), Err(AuthError::UnknownKey));
    assert_eq!(check(&sign_with(&claims(), foreign, Some("foreign"))), Err(AuthError::UnknownKey));
    // A foreign key claiming the issuer's kid.
    assert_eq!(check(&sign_with(&claims(), foreign, Some(KID))), Err(AuthError::BadSignature));
    // No kid: any of the issuer's RSA keys may verify it.
    assert!(check(&sign_with(&claims(), key, None)).is_ok());
    assert_eq!(check(&sign_with(&claims(), foreign, None)), Err(AuthError::BadSignature));
    // After a rotation both keys are published.
    let both = jwks(vec![foreign.jwk(Some("new")), key.jwk(Some(KID))]);
    assert!(verify(&sign_with(&claims(), key, Some(KID)), &both, &config(), NOW).is_ok());
    assert!(verify(&sign_with(&claims(), foreign, Some("new")), &both, &config(), NOW).is_ok());
    assert!(verify(&sign_with(&claims(), foreign, None), &both, &config(), NOW).is_ok());
    // Keys meant for encryption or another algorithm are not used.
    let mut enc = key.jwk(Some(KID));
    enc["use"] = json!("enc");
    assert_eq!(verify(&sign(&claims()), &jwks(vec![enc]), &config(), NOW), Err(AuthError::UnknownKey));
    let mut ps = key.jwk(Some(KID));
    ps["alg"] = json!("PS256");
    assert_eq!(verify(&sign(&claims()), &jwks(vec![ps]), &config(), NOW), Err(AuthError::UnknownKey));
    assert_eq!(verify(&sign(&claims()), &jwks(vec![]), &config(), NOW), Err(AuthError::UnknownKey));
}

#[test]
fn tampering_breaks_the_signature() {
    let token = sign(&claims());
    let parts: Vec<_> = token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], b64(&with(json!({"sub": "admin"}))), parts[2]);
    assert_eq!(check(&forged), Err(AuthError::BadSignature));
    let truncated = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..parts[2].len() - 4]);
    assert!(matches!(check(&truncated), Err(AuthError::BadSignature | AuthError::Malformed)));
    let mut sig = parts[2].as_bytes().to_vec();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{}.{}.{}", parts[0], parts[1], String::from_utf8(sig).unwrap());
    assert_eq!(check(&flipped), Err(AuthError::BadSignature));
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    let body = b64(&claims());
    for t in [
        "",
        "garbage",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        &format!("e30.{body}.sig"),
        &format!("bm90IGpzb24.{body}.sig"),
        &format!("{}.{body}.sig", b64(&json!({"alg": 256}))),
        &format!("{}.{body}.sig", b64(&json!({"alg": "RS256", "kid": 5}))),
        &format!("{}.!!!.sig", b64(&json!({"alg": "RS256", "kid": KID}))),
        &format!("{}.{}.sig", b64(&json!({"alg": "RS256", "kid": KID})), URL_SAFE_NO_PAD.encode("[1,2]")),
    ] {
        let r = check(t);
        assert!(matches!(r, Err(AuthError::Malformed | AuthError::BadSignature)), "{t}: {r:?}");
    }
}

#[test]
fn scope_claim_as_string_or_array() {
    let c = check(&sign(&with(json!({"scope": ["todo_api:read", "openid"]})))).unwrap();
    assert_eq!(c.scopes, vec!["todo_api:read", "openid"]);
    assert_eq!(c.require(WRITE_SCOPE), Err(AuthError::InsufficientScope(WRITE_SCOPE)));
    let c = check(&sign(&with(json!({"scope": "todo_api:read"})))).unwrap();
    assert!(c.require(READ_SCOPE).is_ok());
    assert_eq!(c.require(WRITE_SCOPE), Err(AuthError::InsufficientScope(WRITE_SCOPE)));
    // Prefixes and look-alikes are not the scope.
    let c = check(&sign(&with(json!({"scope": "todo_api:read:all todo_api:writer"})))).unwrap();
    assert!(c.require(READ_SCOPE).is_err() && c.require(WRITE_SCOPE).is_err());
    let c = check(&sign(&with(json!({"scope": null})))).unwrap();
    assert!(c.scopes.is_empty());
    assert_eq!(c.require(READ_SCOPE), Err(AuthError::InsufficientScope(READ_SCOPE)));
    let c = check(&sign(&with(json!({"scope": 7})))).unwrap();
    assert!(c.scopes.is_empty());
}

#[test]
fn bearer_header_parsing() {
    assert_eq!(bearer_token(Some("Bearer abc.def.ghi")), Ok("abc.def.ghi"));
    assert_eq!(bearer_token(Some("bearer   abc ")), Ok("abc"));
    assert_eq!(bearer_token(None), Err(AuthError::Missing));
    assert_eq!(bearer_token(Some("")), Err(AuthError::Missing));
    assert_eq!(bearer_token(Some("Bearer")), Err(AuthError::Missing));
    assert_eq!(bearer_token(Some("Bearer ")), Err(AuthError::Missing));
    assert_eq!(bearer_token(Some("Basic dXNlcjpwYXNz")), Err(AuthError::Missing));
    assert_eq!(bearer_token(Some("Bearer a b")), Err(AuthError::Malformed));
    assert_eq!(bearer_token(Some(&format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1)))), Err(AuthError::Malformed));
}

#[test]
fn challenges_and_bodies() {
    let e = AuthError::Expired;
    assert_eq!(e.status(), 401);
    assert_eq!(
        e.challenge(),
        "Bearer realm=\"todo-api\", error=\"invalid_token\", error_description=\"The access token has expired\""
    );
    assert_eq!(e.body(), json!({"error": "invalid_token", "error_description": "The access token has expired"}));
    let e = AuthError::InsufficientScope(WRITE_SCOPE);
    assert_eq!(e.status(), 403);
    assert_eq!(
        e.challenge(),
        "Bearer realm=\"todo-api\", error=\"insufficient_scope\", scope=\"todo_api:write\", \
         error_description=\"This request needs the todo_api:write scope\""
    );
    assert_eq!(e.body()["scope"], "todo_api:write");
    for e in [
        AuthError::Missing,
        AuthError::Malformed,
        AuthError::AlgorithmNotAllowed,
        AuthError::UnknownKey,
        AuthError::BadSignature,
        AuthError::WrongIssuer,
        AuthError::WrongAudience,
        AuthError::NotYetValid,
        AuthError::MissingClaim("sub".into()),
    ] {
        assert_eq!(e.status(), 401);
        let c = e.challenge();
        assert!(c.starts_with("Bearer realm=\"todo-api\", error=\"invalid_token\""), "{c}");
        assert_eq!(c.matches('"').count(), 6, "{c}");
    }
}

#[test]
fn a_cached_verification_answers_until_exp_then_the_token_is_checked_again() {
    use crate::verified::{verify_cached, VerifiedTokens};
    let mut cache = VerifiedTokens::new();
    let exp = NOW + 60;
    let token = sign(&with(json!({"exp": exp})));
    let first = verify_cached(&mut cache, &token, &issuer_jwks(), &config(), NOW).unwrap();
    assert_eq!((first.sub.as_str(), first.expires_at), ("user-1", exp));
    assert_eq!(cache.len(), 1);
    // Answered from the cache: even with no keys at all.
    let empty = jwks(vec![]);
    assert_eq!(verify_cached(&mut cache, &token, &empty, &config(), exp - 1), Ok(first.clone()));
    // At exp the cache no longer answers; the leeway is the verifier's to grant.
    assert_eq!(verify_cached(&mut cache, &token, &empty, &config(), exp), Err(AuthError::UnknownKey));
    assert_eq!(verify_cached(&mut cache, &token, &issuer_jwks(), &config(), exp + 1), Ok(first));
    assert!(cache.is_empty(), "within the leeway past exp nothing is kept");
    assert_eq!(
        verify_cached(&mut cache, &token, &issuer_jwks(), &config(), exp + LEEWAY_SECS + 1),
        Err(AuthError::Expired)
    );
}

#[test]
fn refused_tokens_are_never_cached() {
    use crate::verified::{verify_cached, VerifiedTokens};
    let mut cache = VerifiedTokens::new();
    let forged = sign_with(&claims(), &keys().1, Some(KID));
    for _ in 0..2 {
        assert_eq!(verify_cached(&mut cache, &forged, &issuer_jwks(), &config(), NOW), Err(AuthError::BadSignature));
    }
    let other_aud = sign(&with(json!({"aud": "https://elsewhere.example"})));
    assert_eq!(verify_cached(&mut cache, &other_aud, &issuer_jwks(), &config(), NOW), Err(AuthError::WrongAudience));
    assert!(cache.is_empty());
    // A token that differs from a cached one in its signature alone is not the cached one.
    let good = sign(&claims());
    verify_cached(&mut cache, &good, &issuer_jwks(), &config(), NOW).unwrap();
    let tampered = format!("{}A", &good[..good.len() - 1]);
    if tampered != good {
        assert!(verify_cached(&mut cache, &tampered, &issuer_jwks(), &config(), NOW).is_err());
    }
}
