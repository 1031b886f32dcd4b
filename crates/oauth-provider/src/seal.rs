//! Props encryption and key wrapping, byte-compatible with
//! workers-oauth-provider: each grant's props are AES-256-GCM encrypted under
//! a key of their own (zero IV is safe because a key encrypts exactly one
//! message), and that key is stored only wrapped (AES-KW, RFC 3394) under a
//! key derived from each token, so only a token holder can read the props.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use aes_kw::KekAes256;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The HMAC key workers-oauth-provider derives wrapping keys with. It is not a
/// secret (it is in that package's source); it must match byte for byte so
/// records written by the original stay readable.
const WRAPPING_KEY_HMAC_KEY: [u8; 32] = [
    0x22, 0x7e, 0x26, 0x86, 0x8d, 0xf1, 0xe1, 0x6d, 0x80, 0x70, 0xea, 0x17, 0x97, 0x5b, 0x47, 0xa6, 0x82, 0x18, 0xfa,
    0x87, 0x28, 0xae, 0xde, 0x85, 0xb5, 0x1d, 0x4a, 0xd9, 0x96, 0xca, 0xca, 0x43,
];

/// A grant's props key.
pub type PropsKey = [u8; 32];

/// Why sealed data could not be opened (wrong token, corrupted record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealError;

/// A fresh random props key.
pub fn new_key() -> PropsKey {
    crate::crypto::random_bytes::<32>()
}

/// Encrypts `props` (as JSON) under `key`; base64 of ciphertext + tag.
pub fn encrypt_props(key: &PropsKey, props: &serde_json::Value) -> String {
    let cipher = Aes256Gcm::new(key.into());
    let sealed = cipher
        .encrypt(&Nonce::default(), props.to_string().as_bytes())
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    STANDARD.encode(sealed)
}

pub fn decrypt_props(key: &PropsKey, encrypted: &str) -> Result<serde_json::Value, SealError> {
    let data = STANDARD.decode(encrypted).map_err(|_| SealError)?;
    let plain = Aes256Gcm::new(key.into()).decrypt(&Nonce::default(), data.as_ref()).map_err(|_| SealError)?;
    serde_json::from_slice(&plain).map_err(|_| SealError)
}

fn kek_for(token: &str) -> KekAes256 {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&WRAPPING_KEY_HMAC_KEY).expect("HMAC takes any key length");
    mac.update(token.as_bytes());
    let derived: [u8; 32] = mac.finalize().into_bytes().into();
    KekAes256::from(derived)
}

/// Wraps `key` under the key derived from `token`; base64 of the 40-byte result.
pub fn wrap_key(key: &PropsKey, token: &str) -> String {
    let wrapped = kek_for(token).wrap_vec(key).expect("a 32-byte key always wraps");
    STANDARD.encode(wrapped)
}

pub fn unwrap_key(wrapped: &str, token: &str) -> Result<PropsKey, SealError> {
    let data = STANDARD.decode(wrapped).map_err(|_| SealError)?;
    let key = kek_for(token).unwrap_vec(&data).map_err(|_| SealError)?;
    key.try_into().map_err(|_| SealError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn props_round_trip_through_a_wrapped_key() {
        let key = new_key();
        let sealed = encrypt_props(&key, &json!({"subjectToken": "pingone-at"}));
        assert!(!sealed.contains("pingone-at"));
        let wrapped = wrap_key(&key, "u:g:token");
        assert_eq!(STANDARD.decode(&wrapped).unwrap().len(), 40);
        let key2 = unwrap_key(&wrapped, "u:g:token").unwrap();
        assert_eq!(decrypt_props(&key2, &sealed).unwrap()["subjectToken"], "pingone-at");
    }

    #[test]
    fn another_token_cannot_unwrap_the_key() {
        let wrapped = wrap_key(&new_key(), "u:g:right");
        assert_eq!(unwrap_key(&wrapped, "u:g:wrong"), Err(SealError));
        assert_eq!(unwrap_key("not base64!", "u:g:right"), Err(SealError));
    }
}
