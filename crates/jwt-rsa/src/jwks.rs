//! Verifying a JWT against a JWK set: which keys may have signed it, and
//! trying them in turn (a token without `kid` may match any of them).

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, TokenData, Validation};
use serde::de::DeserializeOwned;
use std::str::FromStr;

/// The keys of `jwks` that may have signed a token with `alg` and `kid`:
/// same `kid` (when the token names one), not encryption keys, and an `alg`
/// that, when the key states one, is `alg`.
pub fn candidate_keys<'a>(jwks: &'a JwkSet, alg: Algorithm, kid: Option<&str>) -> Vec<&'a Jwk> {
    jwks.keys
        .iter()
        .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
        .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .filter(|k| k.common.key_algorithm.is_none_or(|ka| Algorithm::from_str(&ka.to_string()).ok() == Some(alg)))
        .collect()
}

/// Decodes `token` with the first of `keys` (of `validation`'s algorithm
/// family) whose signature verifies. A bad signature moves on to the next key;
/// any other error is about the token itself and is returned at once. With no
/// usable key at all the answer is `InvalidSignature`.
pub fn decode_with_any<T: DeserializeOwned>(
    token: &str,
    keys: &[&Jwk],
    validation: &Validation,
) -> Result<TokenData<T>, ErrorKind> {
    let family = validation.algorithms.first().map(|a| a.family());
    for jwk in keys {
        let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
        if Some(key.family()) != family {
            continue;
        }
        match jsonwebtoken::decode::<T>(token, &key, validation) {
            Ok(data) => return Ok(data),
            Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {}
            Err(e) => return Err(e.into_kind()),
        }
    }
    Err(ErrorKind::InvalidSignature)
}
