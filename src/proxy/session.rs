//! Session binding without state: the session ids clients see are the
//! downstream's ids sealed (AES-256-GCM) under a key of the gateway, with the
//! user and MCP client that created the session as associated data. Another
//! user's (or another client's) token cannot open them, a client cannot forge
//! or alter them, and the downstream's own ids never reach the client, so
//! nothing is stored and no Durable Object or KV read sits in the path.

use crate::util::crypto::{b64url, b64url_decode, random_bytes};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};

/// Prefix of sealed ids (a version, so the format can change).
const PREFIX: &str = "g1.";
/// Longest downstream session id or message endpoint accepted for sealing.
pub const MAX_INNER_LEN: usize = 1024;
/// Longest sealed id accepted from a client (anything longer cannot be ours).
pub const MAX_SEALED_LEN: usize = 2048;

/// What a sealed id stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Bound {
    /// A Streamable HTTP session: the downstream's `Mcp-Session-Id`.
    #[serde(rename = "m")]
    Mcp(String),
    /// A legacy SSE session: the downstream's message endpoint (path and
    /// query, relative to its SSE URL's origin).
    #[serde(rename = "e")]
    Sse(String),
}

/// Seals and opens the session ids of one user and MCP client.
pub struct Sessions<'a> {
    key: &'a [u8; 32],
    aad: Vec<u8>,
}

impl<'a> Sessions<'a> {
    pub fn new(key: &'a [u8; 32], user_id: &str, client_id: &str) -> Self {
        let mut aad = b"pingone-mcp-worker proxy session v1\0".to_vec();
        aad.extend_from_slice(user_id.as_bytes());
        aad.push(0);
        aad.extend_from_slice(client_id.as_bytes());
        Self { key, aad }
    }

    /// The id handed to the client; `None` when the downstream's value is
    /// unreasonably long (it is then refused as garbage).
    pub fn seal(&self, bound: &Bound) -> Option<String> {
        let inner = match bound {
            Bound::Mcp(s) | Bound::Sse(s) => s,
        };
        if inner.is_empty() || inner.len() > MAX_INNER_LEN {
            return None;
        }
        let plain = serde_json::to_vec(bound).ok()?;
        let nonce = random_bytes::<12>();
        let sealed = Aes256Gcm::new(self.key.into())
            .encrypt(&Nonce::from(nonce), Payload { msg: &plain, aad: &self.aad })
            .ok()?;
        let mut raw = nonce.to_vec();
        raw.extend(sealed);
        Some(format!("{PREFIX}{}", b64url(raw)))
    }

    /// What `id` stands for, if this user and client sealed it.
    pub fn open(&self, id: &str) -> Option<Bound> {
        if id.len() > MAX_SEALED_LEN {
            return None;
        }
        let raw = b64url_decode(id.strip_prefix(PREFIX)?)?;
        if raw.len() < 12 + 16 {
            return None;
        }
        let (nonce, sealed) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let plain = Aes256Gcm::new(self.key.into())
            .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad: &self.aad })
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn a_sealed_session_opens_only_for_its_user_and_client() {
        let alice = Sessions::new(&KEY, "alice-sub", "client-1");
        let id = alice.seal(&Bound::Mcp("downstream-session-42".into())).unwrap();
        assert!(id.starts_with("g1."));
        assert!(!id.contains("downstream-session-42"), "the downstream id is not visible");
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "visible ASCII, as MCP requires");
        assert_eq!(alice.open(&id), Some(Bound::Mcp("downstream-session-42".into())));
        assert_eq!(Sessions::new(&KEY, "bob-sub", "client-1").open(&id), None, "another user");
        assert_eq!(Sessions::new(&KEY, "alice-sub", "client-2").open(&id), None, "another client");
        assert_eq!(Sessions::new(&[8; 32], "alice-sub", "client-1").open(&id), None, "another key");
        // No ambiguity between user and client ids that concatenate alike.
        assert_eq!(Sessions::new(&KEY, "alice-subc", "lient-1").open(&id), None);
    }

    #[test]
    fn forged_or_altered_session_ids_open_to_nothing() {
        let s = Sessions::new(&KEY, "u", "c");
        let id = s.seal(&Bound::Sse("/messages?sessionId=abc".into())).unwrap();
        assert_eq!(s.open(&id), Some(Bound::Sse("/messages?sessionId=abc".into())));
        let mut altered = id.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(s.open(std::str::from_utf8(&altered).unwrap()), None);
        for junk in ["", "g1.", "g1.!!!", "downstream-session-42", "g2.AAAA", &"g1.AAAA".repeat(600)] {
            assert_eq!(s.open(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn empty_or_huge_downstream_ids_are_not_sealed() {
        let s = Sessions::new(&KEY, "u", "c");
        assert_eq!(s.seal(&Bound::Mcp(String::new())), None);
        assert_eq!(s.seal(&Bound::Mcp("x".repeat(MAX_INNER_LEN + 1))), None);
        let longest = s.seal(&Bound::Mcp("x".repeat(MAX_INNER_LEN))).unwrap();
        assert!(longest.len() <= MAX_SEALED_LEN);
    }
}
