//! ID-token signatures checked with the runtime's WebCrypto (`crypto.subtle`)
//! in the Wasm build, so the worker carries no RSA bignum code (Wasm only;
//! native tests verify with `jsonwebtoken`'s pure-Rust backend).
//!
//! `crypto.subtle` is asynchronous and `jsonwebtoken`'s verification is not,
//! so the signature is checked first ([`check_signatures`]: the token's
//! signature against each key `jsonwebtoken` may try, under the token's
//! algorithm), and `jsonwebtoken` then runs exactly as before with
//! [`PROVIDER`], whose verifier accepts a signature only if WebCrypto
//! verified that very signature over that very message with that key and
//! algorithm. Everything else (the algorithm allow-list, key choice, `iss`,
//! `aud`, required claims, and the checks in `id_token::validate`) is
//! untouched.

use crate::util::crypto::{b64url, b64url_decode};
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use worker::{js_sys, wasm_bindgen_futures};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = importKey, catch)]
    fn import_key(
        format: &str,
        key: &JsValue,
        algorithm: &JsValue,
        extractable: bool,
        usages: &JsValue,
    ) -> std::result::Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = verify, catch)]
    fn subtle_verify(
        algorithm: &JsValue,
        key: &JsValue,
        signature: &[u8],
        data: &[u8],
    ) -> std::result::Result<js_sys::Promise, JsValue>;
}

/// A signature WebCrypto verified: the key, the algorithm, the message.
struct Checked {
    /// Which [`check_signatures`] call found it (concurrent sign-ins in one
    /// isolate each drop only their own).
    call: u64,
    alg: Algorithm,
    n: Vec<u8>,
    e: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
}

thread_local! {
    static CHECKED: RefCell<Vec<Checked>> = const { RefCell::new(Vec::new()) };
    static CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Forgets its call's checks when dropped (after `jsonwebtoken` has used them).
pub struct Checks(u64);

impl Drop for Checks {
    fn drop(&mut self) {
        CHECKED.with(|c| c.borrow_mut().retain(|k| k.call != self.0));
    }
}

/// The WebCrypto algorithms (as JSON: for `importKey`, for `verify`) of an
/// RSA JWS algorithm.
fn params(alg: Algorithm) -> Option<(String, String)> {
    let (hash, pss) = match alg {
        Algorithm::RS256 => ("SHA-256", false),
        Algorithm::RS384 => ("SHA-384", false),
        Algorithm::RS512 => ("SHA-512", false),
        Algorithm::PS256 => ("SHA-256", true),
        Algorithm::PS384 => ("SHA-384", true),
        Algorithm::PS512 => ("SHA-512", true),
        _ => return None,
    };
    Some(if pss {
        // RFC 7518 §3.5: the salt is as long as the hash.
        let salt = alg_hash_len(hash);
        (format!(r#"{{"name":"RSA-PSS","hash":"{hash}"}}"#), format!(r#"{{"name":"RSA-PSS","saltLength":{salt}}}"#))
    } else {
        (format!(r#"{{"name":"RSASSA-PKCS1-v1_5","hash":"{hash}"}}"#), r#"{"name":"RSASSA-PKCS1-v1_5"}"#.to_owned())
    })
}

fn alg_hash_len(hash: &str) -> usize {
    match hash {
        "SHA-256" => 32,
        "SHA-384" => 48,
        _ => 64,
    }
}

/// The RSA backend's key checks (`rsa::RsaPublicKey::new`): a modulus of at
/// most 4096 bits, odd and above the exponent; an odd exponent in 2..2^33.
fn key_acceptable(n: &[u8], e: &[u8]) -> bool {
    let strip = |b: &[u8]| -> Vec<u8> { b.iter().copied().skip_while(|&x| x == 0).collect() };
    let (n, e) = (strip(n), strip(e));
    let n_bits = n.first().map_or(0, |&top| (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize));
    if n_bits > 4096 || e.len() > 8 {
        return false;
    }
    let e_value = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let e_below_n = e.len() < n.len() || (e.len() == n.len() && e < n);
    let n_odd = n.last().is_some_and(|b| b & 1 == 1);
    e_below_n && n_odd && e_value & 1 == 1 && (2..=(1u64 << 33) - 1).contains(&e_value)
}

/// Whether WebCrypto verifies `signature` over `message` with the RSA key
/// `(n, e)` under `alg`; any failure (import, call) is `false`.
async fn webcrypto_verify(alg: Algorithm, n: &[u8], e: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Some((import_alg, verify_alg)) = params(alg) else { return false };
    let jwk = serde_json::json!({"kty": "RSA", "n": b64url(n), "e": b64url(e), "ext": true}).to_string();
    let parse = |s: &str| js_sys::JSON::parse(s);
    let (Ok(jwk), Ok(import_alg), Ok(verify_alg), Ok(usages)) =
        (parse(&jwk), parse(&import_alg), parse(&verify_alg), parse(r#"["verify"]"#))
    else {
        return false;
    };
    let Ok(promise) = import_key("jwk", &jwk, &import_alg, false, &usages) else { return false };
    let Ok(key) = wasm_bindgen_futures::JsFuture::from(promise).await else { return false };
    let Ok(promise) = subtle_verify(&verify_alg, &key, signature, message) else { return false };
    wasm_bindgen_futures::JsFuture::from(promise).await.ok().and_then(|v| v.as_bool()) == Some(true)
}

/// Checks the token's signature with WebCrypto against every RSA key in
/// `jwks` of the token's (allowed) algorithm, for [`PROVIDER`] to consult
/// while the returned guard lives. A token that is not a JWS of an allowed
/// RSA algorithm is left to `jsonwebtoken` to reject.
pub async fn check_signatures(token: &str, jwks: &JwkSet, algorithms: &[Algorithm]) -> Checks {
    let call = CALLS.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    let guard = Checks(call);
    let Ok(header) = jsonwebtoken::decode_header(token) else { return guard };
    let alg = header.alg;
    if !algorithms.contains(&alg) || params(alg).is_none() {
        return guard;
    }
    // As jsonwebtoken splits it: the signature after the last dot.
    let Some((message, signature)) = token.rsplit_once('.') else { return guard };
    let Some(signature) = b64url_decode(signature) else { return guard };
    for jwk in jwt_rsa::candidate_keys(jwks, alg, header.kid.as_deref()) {
        let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
        let DecodingKeyKind::RsaModulusExponent { n, e } = key.kind() else { continue };
        if !key_acceptable(n, e) || !webcrypto_verify(alg, n, e, message.as_bytes(), &signature).await {
            continue;
        }
        let (message, signature) = (message.as_bytes().to_vec(), signature.clone());
        CHECKED.with(|c| c.borrow_mut().push(Checked { call, alg, n: n.clone(), e: e.clone(), message, signature }));
    }
    guard
}

/// The `jsonwebtoken` backend of the Wasm build: verification only, from
/// what [`check_signatures`] found.
pub static PROVIDER: CryptoProvider =
    CryptoProvider { signer_factory: jwt_rsa::no_signer, verifier_factory: verifier, key_utils: jwt_rsa::KEY_UTILS };

/// Makes [`PROVIDER`] `jsonwebtoken`'s backend (no-op after the first call).
pub fn install() {
    let _ = PROVIDER.install_default();
}

struct Verifier {
    alg: Algorithm,
    n: Vec<u8>,
    e: Vec<u8>,
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if params(*alg).is_none() {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let DecodingKeyKind::RsaModulusExponent { n, e } = key.kind() else {
        return Err(ErrorKind::InvalidKeyFormat.into());
    };
    // The keys the RSA backend refuses are invalid keys here too.
    if !key_acceptable(n, e) {
        return Err(ErrorKind::InvalidRsaKey("unusable RSA public key".into()).into());
    }
    Ok(Box::new(Verifier { alg: *alg, n: n.clone(), e: e.clone() }))
}

impl signature::Verifier<Vec<u8>> for Verifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let verified = CHECKED.with(|c| {
            c.borrow().iter().any(|k| {
                k.alg == self.alg
                    && k.n == self.n
                    && k.e == self.e
                    && k.message.as_slice() == msg
                    && &k.signature == sig
            })
        });
        if verified {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

impl JwtVerifier for Verifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}
