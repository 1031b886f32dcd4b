//! Short-lived, single-use KV records of the sign-in flow.
//!
//! - `login:pending:<id>`: the validated MCP request shown on the consent
//!   page, with the SHA-256 of that page's CSRF token (the form carries only
//!   the id, so the request itself is never taken from the browser).
//! - `login:state:<sha256(state)>`: the MCP request, PKCE verifier and nonce
//!   of one trip to PingOne.
//! - `login:connections:<sha256(state)>`: the PKCE verifier and nonce of a
//!   trip to PingOne signing in to the connections page.

use super::authz::AuthRequest;
use crate::store::{KvStore, StoreError, MIN_TTL_SECS};
use crate::util::crypto::{constant_time_eq, sha256_hex};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

const PENDING_PREFIX: &str = "login:pending:";
const STATE_PREFIX: &str = "login:state:";
const CONNECTIONS_PREFIX: &str = "login:connections:";
/// How long the consent page stays usable.
pub const PENDING_TTL_SECS: u64 = 600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub request: AuthRequest,
    /// SHA-256 hex of the CSRF token issued with the page.
    pub csrf_hash: String,
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateRecord {
    pub request: AuthRequest,
    pub code_verifier: String,
    pub nonce: String,
    /// The `redirect_uri` sent to PingOne, repeated in the code exchange.
    pub redirect_uri: String,
    pub expires_at: u64,
}

/// Why a record could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakeError {
    /// Never existed, already used, or expired from KV.
    Unknown,
    /// Still in KV but past its own expiry (KV TTLs are at least 60 s).
    Expired,
    /// The record belongs to another consent page (CSRF token mismatch).
    NotThisBrowser,
    Storage(StoreError),
}

async fn put<T: Serialize>(store: &dyn KvStore, key: &str, value: &T, ttl: u64) -> Result<(), StoreError> {
    let json = serde_json::to_string(value).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    store.put(key, &json, Some(ttl)).await
}

/// Reads `key` and, if `accept` agrees, deletes it (a replay then finds
/// nothing). A refused record stays, so a forged submission cannot burn it.
async fn take<T: DeserializeOwned>(
    store: &dyn KvStore,
    key: &str,
    accept: impl FnOnce(&T) -> Result<(), TakeError>,
) -> Result<T, TakeError> {
    let raw = store.get(key).await.map_err(TakeError::Storage)?.ok_or(TakeError::Unknown)?;
    let value: T = serde_json::from_str(&raw).map_err(|_| TakeError::Unknown)?;
    accept(&value)?;
    store.delete(key).await.map_err(TakeError::Storage)?;
    Ok(value)
}

pub async fn put_pending(store: &dyn KvStore, id: &str, p: &Pending) -> Result<(), StoreError> {
    put(store, &format!("{PENDING_PREFIX}{id}"), p, PENDING_TTL_SECS).await
}

/// The pending request `id`, consumed if `csrf` is the token issued with it.
/// Ids are random tokens; anything else is refused before touching KV.
pub async fn take_pending(store: &dyn KvStore, id: &str, csrf: &str, now: u64) -> Result<Pending, TakeError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(TakeError::Unknown);
    }
    take(store, &format!("{PENDING_PREFIX}{id}"), |p: &Pending| {
        if !constant_time_eq(sha256_hex(csrf), &p.csrf_hash) {
            Err(TakeError::NotThisBrowser)
        } else if p.expires_at <= now {
            Err(TakeError::Expired)
        } else {
            Ok(())
        }
    })
    .await
}

/// The value of the state-binding cookie (and the KV key suffix) for `state`.
pub fn state_hash(state: &str) -> String {
    sha256_hex(state)
}

pub async fn put_state(store: &dyn KvStore, state: &str, r: &StateRecord, ttl: u64) -> Result<(), StoreError> {
    // KV refuses TTLs under 60 s; a shorter attempt lifetime is enforced by `expires_at`.
    put(store, &format!("{STATE_PREFIX}{}", state_hash(state)), r, ttl.max(MIN_TTL_SECS)).await
}

/// The state record of `state`, consumed.
pub async fn take_state(store: &dyn KvStore, state: &str, now: u64) -> Result<StateRecord, TakeError> {
    // An expired record is consumed too: it can never become valid again.
    let r: StateRecord = take(store, &format!("{STATE_PREFIX}{}", state_hash(state)), |_| Ok(())).await?;
    if r.expires_at <= now {
        return Err(TakeError::Expired);
    }
    Ok(r)
}

/// A trip to PingOne signing in to the connections page (no MCP request).
/// Stored as a JSON array `[verifier, nonce, redirect_uri, expires_at]`,
/// read through `serde_json::Value`: no serde code of its own in the bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionsState {
    pub code_verifier: String,
    pub nonce: String,
    pub redirect_uri: String,
    pub expires_at: u64,
}

pub async fn put_connections_state(
    store: &dyn KvStore,
    state: &str,
    r: &ConnectionsState,
    ttl: u64,
) -> Result<(), StoreError> {
    let v = serde_json::json!([r.code_verifier, r.nonce, r.redirect_uri, r.expires_at]);
    put(store, &format!("{CONNECTIONS_PREFIX}{}", state_hash(state)), &v, ttl.max(MIN_TTL_SECS)).await
}

/// The connections sign-in of `state`, consumed.
pub async fn take_connections_state(store: &dyn KvStore, state: &str, now: u64) -> Result<ConnectionsState, TakeError> {
    let v: serde_json::Value = take(store, &format!("{CONNECTIONS_PREFIX}{}", state_hash(state)), |_| Ok(())).await?;
    let text = |i: usize| v.get(i).and_then(serde_json::Value::as_str).map(str::to_owned);
    let r = match (text(0), text(1), text(2), v.get(3).and_then(serde_json::Value::as_u64)) {
        (Some(code_verifier), Some(nonce), Some(redirect_uri), Some(expires_at)) => {
            ConnectionsState { code_verifier, nonce, redirect_uri, expires_at }
        }
        _ => return Err(TakeError::Unknown),
    };
    if r.expires_at <= now {
        return Err(TakeError::Expired);
    }
    Ok(r)
}
