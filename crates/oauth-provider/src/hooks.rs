//! What the application behind the authorization server may add to a grant's
//! life without the server knowing what it is: the token-exchange callback
//! (workers-oauth-provider's `tokenExchangeCallback`), run on every code
//! exchange and refresh before anything is written, and a notice when a grant
//! ends. Sign-in implements both to keep the upstream (PingOne) tokens alive
//! and to revoke them; the default does nothing.

use super::records::Grant;
use async_trait::async_trait;
use serde_json::Value;

/// Which grant is being redeemed at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
}

/// What the callback is told about the exchange in progress.
#[derive(Debug, Clone)]
pub struct Exchange<'a> {
    pub grant_type: GrantType,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub grant_id: &'a str,
    /// The grant's scopes.
    pub scope: &'a [String],
    /// The scopes the new access token will carry (the request may narrow them).
    pub token_scope: &'a [String],
    /// The grant's props, decrypted.
    pub props: &'a Value,
    pub metadata: &'a Value,
    /// The lifetime the new access token gets unless the callback caps it.
    pub access_token_ttl: u64,
    pub now: u64,
}

/// What the callback changes; `None` keeps what is there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExchangeResult {
    /// New props for the grant (and the tokens issued from now on), encrypted
    /// under a new key.
    pub props: Option<Value>,
    /// New metadata for the grant record (stored in clear: seal secrets first).
    pub metadata: Option<Value>,
    /// An upper bound for the new access token's lifetime, in seconds (at least 1).
    pub access_token_ttl: Option<u64>,
}

/// Why the callback refused the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeError {
    /// The grant can never work again (the upstream refused its refresh
    /// token): it is revoked and the client gets `invalid_grant`, so it signs
    /// in anew. The text is for the client; it must not hold secrets.
    GrantDead(String),
    /// A failure worth retrying (upstream unreachable or 5xx): 503
    /// `temporarily_unavailable`; the grant stays as it was.
    Unavailable(String),
}

#[async_trait(?Send)]
pub trait GrantHooks {
    /// Runs after every check of a code exchange or refresh, before the grant
    /// or any token is written.
    async fn exchange(&self, _exchange: Exchange<'_>) -> Result<ExchangeResult, ExchangeError> {
        Ok(ExchangeResult::default())
    }

    /// A grant ended (revoked, replaced by a new authorization, purged after
    /// expiry, killed by a replayed code or a dead upstream). Called after its
    /// records are deleted; best effort: it has no way to fail the revocation.
    async fn grant_ended(&self, _grant: &Grant) {}
}

/// No callback: tokens carry the props sign-in stored, unchanged.
pub struct NoHooks;

impl GrantHooks for NoHooks {}
