//! An entry's tokens and client credentials, encrypted at rest.

use super::model::Secret;
use crate::util::crypto::{b64url, b64url_decode, random_bytes};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The vault's key, derived from `COOKIE_ENCRYPTION_KEY` with a label of its
/// own (never the key of anything else).
pub fn key(cookie_key: &[u8]) -> Aes256Gcm {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(cookie_key).expect("HMAC takes any key length");
    mac.update(b"pingone-mcp-worker token vault v1");
    let key: [u8; 32] = mac.finalize().into_bytes().into();
    Aes256Gcm::new(&key.into())
}

fn associated_data(user_id: &str, resource: &str) -> Vec<u8> {
    serde_json::to_vec(&["token-vault", user_id, resource]).expect("a JSON array of strings")
}

/// `base64url(nonce || ciphertext)` of `value` as JSON, bound to `aad`.
pub fn seal_json<T: serde::Serialize>(key: &Aes256Gcm, value: &T, aad: &[u8]) -> String {
    let nonce = random_bytes::<12>();
    let plain = serde_json::to_vec(value).expect("serializable");
    let sealed = key
        .encrypt(&Nonce::from(nonce), Payload { msg: &plain, aad })
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    b64url([nonce.as_slice(), &sealed].concat())
}

/// The value sealed by [`seal_json`] with the same `aad`, if it opens.
pub fn open_json<T: serde::de::DeserializeOwned>(key: &Aes256Gcm, sealed: &str, aad: &[u8]) -> Option<T> {
    let data = b64url_decode(sealed).filter(|d| d.len() > 12)?;
    let (nonce, ct) = data.split_at(12);
    let nonce = Nonce::from(<[u8; 12]>::try_from(nonce).ok()?);
    let plain = key.decrypt(&nonce, Payload { msg: ct, aad }).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// An entry's secret, sealed for the user and resource.
pub fn seal(key: &Aes256Gcm, secret: &Secret, user_id: &str, resource: &str) -> String {
    seal_json(key, secret, &associated_data(user_id, resource))
}

/// The secret, if `sealed` opens under `key` for this user and resource.
pub fn open(key: &Aes256Gcm, sealed: &str, user_id: &str, resource: &str) -> Option<Secret> {
    open_json(key, sealed, &associated_data(user_id, resource))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::model::{AuthMethod, Client, Tokens};

    #[test]
    fn a_sealed_entry_opens_only_for_its_user_and_resource() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let secret = Secret {
            tokens: Tokens {
                access_token: "at-1".into(),
                refresh_token: Some("rt-1".into()),
                issued_at: 1,
                expires_at: Some(2),
            },
            client: Client {
                token_endpoint: "https://as.example/token".into(),
                revocation_endpoint: None,
                client_id: "c".into(),
                client_secret: None,
                auth_method: AuthMethod::None,
            },
        };
        let sealed = seal(&k, &secret, "alice", "https://ds.example/mcp");
        assert!(!sealed.contains("at-1") && !sealed.contains("rt-1"));
        assert_eq!(open(&k, &sealed, "alice", "https://ds.example/mcp"), Some(secret));
        assert_eq!(open(&k, &sealed, "bob", "https://ds.example/mcp"), None);
        assert_eq!(open(&k, &sealed, "alice", "https://ds.example/v1/mcp"), None);
        assert_eq!(open(&key(b"another key, 32 characters long!"), &sealed, "alice", "https://ds.example/mcp"), None);
        assert_eq!(open(&k, "garbage", "alice", "https://ds.example/mcp"), None);
    }
}
