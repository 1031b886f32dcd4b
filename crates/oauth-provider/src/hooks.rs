//! What the application behind the authorization server may add to a grant's
//! life without the server knowing what it is: the token-exchange callback
//! (workers-oauth-provider's `tokenExchangeCallback`), run on every code
//! exchange and refresh before anything is written, and a notice when a grant
//! ends. Sign-in implements both to keep the upstream (PingOne) tokens alive
//! and to revoke them; the default does nothing. And [`ExternalTokens`]: the
//! application's resolution of bearer tokens this server did not issue;
//! [`RegistrationPolicy`]: the application's say on dynamic registrations;
//! [`ResourceProps`]: what a resource in another worker learns of a
//! grant's props; and [`SingleUse`]: a strongly consistent record of
//! assertions already redeemed.

use super::bearer::{AuthContext, BearerError};
use super::enterprise::{EnterpriseAssertion, EnterpriseGrant};
use super::error::OAuthError;
use super::records::Grant;
use async_trait::async_trait;
use serde_json::Value;
use url::Url;

/// Which grant is being redeemed at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// `authorization_code`: a code is exchanged for the first tokens.
    AuthorizationCode,
    /// `refresh_token`: a refresh token is rotated for new tokens.
    RefreshToken,
    /// RFC 8693 token exchange ([`Config::token_exchange`](crate::Config::token_exchange)):
    /// an access token is traded for a narrower one. The grant is not
    /// written: props the hook returns go into the new access token only,
    /// metadata it returns is ignored, and its lifetime cap applies. The hook
    /// should do no upstream work that changes what the grant must hold (a
    /// rotated upstream refresh token would be lost).
    TokenExchange,
}

/// What the callback is told about the exchange in progress.
#[derive(Debug, Clone)]
pub struct Exchange<'a> {
    /// Code exchange or refresh.
    pub grant_type: GrantType,
    /// The client redeeming the grant.
    pub client_id: &'a str,
    /// The grant's user.
    pub user_id: &'a str,
    /// The grant's id.
    pub grant_id: &'a str,
    /// The grant's scopes.
    pub scope: &'a [String],
    /// The scopes the new access token will carry (the request may narrow them).
    pub token_scope: &'a [String],
    /// The grant's props, decrypted.
    pub props: &'a Value,
    /// The grant's metadata (stored in clear).
    pub metadata: &'a Value,
    /// The lifetime the new access token gets unless the callback caps it.
    pub access_token_ttl: u64,
    /// The request's clock (seconds since the epoch).
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
    /// The application cannot issue the token as asked (for example a token
    /// narrower than the upstream token behind it, which it cannot narrow
    /// here): 400 `invalid_scope`; the grant stays as it was.
    Refused(String),
}

/// The application's part in a grant's life (workers-oauth-provider's
/// `tokenExchangeCallback`, plus a notice when a grant ends); install it with
/// [`Provider::with_hooks`](crate::Provider::with_hooks). Both methods have
/// do-nothing defaults.
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

    /// Maps a verified enterprise ID-JAG (see [`crate::enterprise`]) to the
    /// grant's user, props and metadata, or refuses it. Runs after every
    /// check and after the assertion's `jti` was marked used, before anything
    /// is written. By default every assertion is refused (`invalid_grant`,
    /// reason `enterprise.no_mapping`): configuring the IdP alone issues no token.
    async fn enterprise_grant(&self, _assertion: EnterpriseAssertion<'_>) -> Result<EnterpriseGrant, OAuthError> {
        Err(OAuthError::invalid_grant("This server does not issue tokens for enterprise assertions")
            .because(crate::error::Reason::new("enterprise", "no_mapping")))
    }
}

/// No callback: tokens carry the props sign-in stored, unchanged.
pub struct NoHooks;

impl GrantHooks for NoHooks {}

/// Bearer tokens this server did not issue (workers-oauth-provider's
/// `resolveExternalToken`): the application's own validation of another
/// issuer's token, e.g. a JWT from the identity provider the application
/// checks itself, so a caller holding one reaches the protected routes too.
///
/// [`Provider::authenticate`](crate::Provider::authenticate) (and
/// `authenticate_request`) asks the hook only about a token that cannot be
/// one of this server's (not in its `userId:grantId:secret` shape); a token of
/// this server that is unknown, expired or revoked is refused as always and
/// never shown to the hook. Install it with
/// [`Provider::with_external_tokens`](crate::Provider::with_external_tokens).
///
/// MCP clients are meant to present only tokens of the MCP server's own
/// authorization server (MCP 2025-11-25, "Token Handling"): accepting other
/// tokens is a compatibility choice of the application, which must validate
/// them fully (signature, issuer, expiry, audience) and must not forward them
/// upstream. The MCP worker in this repository installs no such hook.
///
/// ```
/// use async_trait::async_trait;
/// use oauth_provider::bearer::{AuthContext, BearerError};
/// use oauth_provider::error::Reason;
/// use oauth_provider::ExternalTokens;
/// use url::Url;
///
/// /// Accepts the tokens of a partner's issuer that it has verified.
/// struct PartnerTokens;
///
/// #[async_trait(?Send)]
/// impl ExternalTokens for PartnerTokens {
///     async fn resolve(&self, token: &str, url: &Url) -> Result<Option<AuthContext>, BearerError> {
///         let Some(subject) = token.strip_prefix("partner.") else { return Ok(None) }; // not ours either: 401
///         if subject == "reader" && url.path().ends_with("/write") {
///             return Err(BearerError::insufficient_scope(
///                 ["todo:read", "todo:write"],
///                 "Writing needs todo:write",
///                 Reason::new("external_token", "partner_scope_missing"),
///             ));
///         }
///         Ok(Some(AuthContext {
///             user_id: subject.into(),
///             grant_id: String::new(),
///             client_id: "partner".into(),
///             scopes: vec!["todo:read".into()],
///             // Required: the resource the token is accepted at.
///             audience: vec![format!("{}/mcp", url.origin().ascii_serialization())],
///             expires_at: u64::MAX,
///             props: serde_json::Value::Null,
///         }))
///     }
/// }
/// ```
#[async_trait(?Send)]
pub trait ExternalTokens {
    /// Resolves `token`, presented at `url`:
    ///
    /// - `Ok(Some(context))` lets the request through as `context`, whose
    ///   `audience` must name the resource served at `url` (else 401
    ///   `invalid_token`, reason `external_token.audience_mismatch`);
    /// - `Ok(None)`: not a token the application knows either, 401
    ///   `invalid_token` as for any unknown token (`external_token.not_recognized`);
    /// - `Err(error)` is the answer: [`BearerError::invalid`] (401
    ///   `invalid_token`), [`BearerError::insufficient_scope`] (403 with the
    ///   scopes to ask for, see [`step_up_challenge`](crate::bearer::step_up_challenge)),
    ///   [`BearerError::Unavailable`] (503, the validator could not be reached).
    ///   Its description is sent to the client: keep it generic, never the
    ///   token; the [`Reason`](crate::error::Reason) is for the logs.
    async fn resolve(&self, token: &str, url: &Url) -> Result<Option<AuthContext>, BearerError>;
}

/// The application's policy on clients registering themselves at the
/// registration endpoint (workers-oauth-provider's `clientRegistrationCallback`):
/// asked before a dynamically registered client is stored, after the
/// server's own rules (dynamic registration on, size, JSON). Clients created
/// with [`Provider::register_client_admin`](crate::Provider::register_client_admin)
/// are the operator's and are not asked about.
///
/// ```
/// use oauth_provider::{OAuthError, RegistrationPolicy};
///
/// /// Only clients that name themselves and redirect to loopback.
/// struct LoopbackOnly;
///
/// #[async_trait::async_trait(?Send)]
/// impl RegistrationPolicy for LoopbackOnly {
///     async fn check(&self, metadata: &serde_json::Value, _req: &http::Request<Vec<u8>>) -> Result<(), OAuthError> {
///         let loopback = metadata["redirect_uris"].as_array().is_some_and(|uris| {
///             uris.iter().all(|u| u.as_str().is_some_and(|u| u.starts_with("http://127.0.0.1:")))
///         });
///         if metadata["client_name"].is_string() && loopback {
///             Ok(())
///         } else {
///             Err(OAuthError::new(http::StatusCode::FORBIDDEN, "access_denied", "Client registration is not permitted"))
///         }
///     }
/// }
/// ```
#[async_trait(?Send)]
pub trait RegistrationPolicy {
    /// `metadata` is the client's registration document as sent (RFC 7591;
    /// a `software_statement` in it is the application's to verify), `req`
    /// the request it came in. `Err` is the answer the client gets (its
    /// description is sent; keep secrets out); without a
    /// [`Reason`](crate::error::Reason) of its own it is logged as
    /// `register.policy_refused`.
    async fn check(&self, metadata: &Value, req: &http::Request<Vec<u8>>) -> Result<(), OAuthError>;
}

/// What the internal validation endpoint hands a resource server in another
/// worker of a grant's props (see [`crate::resource_server`]). The props are
/// the application's (on this worker: the user's upstream token and claims),
/// and each resource should get only what it needs. Without this hook the
/// endpoint answers `"props": null` for every resource.
pub trait ResourceProps {
    /// The props `resource` (the registered resource the validation request
    /// named, which the token's audience belongs to) receives for a token
    /// good there; `Value::Null` for none.
    fn props_for(&self, resource: &crate::resource::ProtectedResource, props: &Value) -> Value;
}

/// A strongly consistent record of one-time values (the `jti` of enterprise
/// ID-JAGs, see [`crate::enterprise`], and of `private_key_jwt` client
/// assertions, see [`crate::client_assertion`]), for a host whose store is only
/// eventually consistent: on Workers, KV may answer "not seen" in one
/// location for up to a minute after another location wrote the marker, so
/// an assertion could be used twice. A host with strongly consistent
/// storage (a Durable Object per value) installs this with
/// [`Provider::with_single_use`](crate::Provider::with_single_use); without
/// it the marker is a KV record (best effort across locations).
///
/// ```
/// use oauth_provider::{OAuthError, SingleUse};
/// use std::cell::RefCell;
///
/// /// One process's memory: strongly consistent within it.
/// #[derive(Default)]
/// struct Seen(RefCell<Vec<String>>);
///
/// #[async_trait::async_trait(?Send)]
/// impl SingleUse for Seen {
///     async fn first_use(&self, key: &str, _expires_at: u64) -> Result<bool, OAuthError> {
///         let mut seen = self.0.borrow_mut();
///         if seen.iter().any(|k| k == key) {
///             return Ok(false);
///         }
///         seen.push(key.to_owned());
///         Ok(true)
///     }
/// }
/// ```
#[async_trait(?Send)]
pub trait SingleUse {
    /// Records `key` (a hash, at most 80 characters) as used until
    /// `expires_at` (seconds since the epoch): `Ok(true)` for the one call
    /// that recorded it first, `Ok(false)` for every other, wherever and
    /// whenever made before `expires_at`. `Err` is the answer (e.g. 503
    /// `temporarily_unavailable`); nothing is issued then.
    async fn first_use(&self, key: &str, expires_at: u64) -> Result<bool, OAuthError>;
}
