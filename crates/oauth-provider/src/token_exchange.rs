//! RFC 8693 token exchange at the token endpoint, as workers-oauth-provider
//! 1.2's `allowTokenExchangeGrant` (off by default, see
//! [`Config::token_exchange`](crate::Config::token_exchange)): a client trades
//! an access token of this server for a new one that is never wider.
//!
//! - **Who**: the authenticated client must be the one the subject token's
//!   grant was issued to (no delegation to another client: 1.2 allows that
//!   only through its callback, which this crate does not offer), and must
//!   have registered [`TOKEN_EXCHANGE_GRANT`] in its `grant_types`.
//! - **What**: `subject_token_type` and `requested_token_type` (if sent) are
//!   [`ACCESS_TOKEN_TYPE`]; the subject token must be valid (known, not
//!   expired, its grant still there) with at least 60 s left (KV's shortest
//!   expiry). Every failure of the subject token is `invalid_request`
//!   (RFC 8693 §2.2.2).
//! - **Scope**: the subject token's, or the subset `scope` names; a scope the
//!   subject token lacks is `invalid_scope` (stricter than 1.2, which drops it).
//! - **Audience**: the subject token's, or the `resource`s / `audience` named,
//!   each a registered resource (or, with `origin_resource`, the bare origin)
//!   that the grant covers, as at a refresh (RFC 8707); anything else is
//!   `invalid_target`. So a token for `/mcp` of a grant for `/mcp` and
//!   `/files` may become a token for `/files` only: what a refresh of that
//!   grant could give the same client anyway.
//! - **Life**: at most the access-token lifetime, the subject token's
//!   remaining life and the [`GrantHooks`](crate::GrantHooks) cap
//!   ([`GrantType::TokenExchange`]); no refresh token. The new token belongs
//!   to the subject's grant, so revoking the grant revokes it too.
//! - **Props**: the subject token's, unless the hook returns others (for the
//!   new token only; the grant is not written).

use super::client_auth::Form;
use super::error::{json_response, OAuthError, Reason};
use super::hooks::GrantType;
use super::records::{token_key, AccessToken, ClientInfo, Resource, TokenGrant};
use super::{resource, seal, token_str, Provider};
use crate::crypto::constant_time_eq;
use crate::store::MIN_TTL_SECS;
use http::{Response, StatusCode};
use serde_json::json;

/// The `grant_type` of RFC 8693 token exchange.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type of an access token (RFC 8693 §3): the only
/// `subject_token_type` accepted and the `issued_token_type` answered.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A refusal of a token exchange.
const fn reason(check: &'static str) -> Reason {
    Reason::new("token_exchange", check)
}

impl Provider<'_> {
    /// `grant_type` = [`TOKEN_EXCHANGE_GRANT`], for `client` (authenticated).
    pub(crate) async fn exchange_token(
        &self,
        client: &ClientInfo,
        form: &Form,
        origin: &str,
    ) -> Result<Response<Vec<u8>>, OAuthError> {
        if !client.allows_grant(TOKEN_EXCHANGE_GRANT) {
            return Err(OAuthError::unauthorized_client("This client is not registered for the token-exchange grant")
                .because(reason("grant_type_not_registered")));
        }
        let bad = |d: &str, check| OAuthError::invalid_request(d).because(reason(check));
        let subject =
            form.get("subject_token").ok_or_else(|| bad("subject_token is required", "subject_token_missing"))?;
        match form.get("subject_token_type") {
            None => return Err(bad("subject_token_type is required", "subject_token_type_missing")),
            Some(ACCESS_TOKEN_TYPE) => {}
            Some(_) => {
                return Err(bad(
                    &format!("subject_token_type must be {ACCESS_TOKEN_TYPE}"),
                    "subject_token_type_unsupported",
                ))
            }
        }
        if form.get("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
            return Err(bad(
                &format!("requested_token_type must be {ACCESS_TOKEN_TYPE}"),
                "requested_token_type_unsupported",
            ));
        }
        if form.get("actor_token").is_some() || form.get("actor_token_type").is_some() {
            return Err(bad("Delegation (actor_token) is not supported", "actor_token_unsupported"));
        }
        // The subject token, read as a bearer check would (without the cache:
        // a token revoked a second ago must not be exchanged).
        let invalid = |check| bad("The subject token is invalid, expired or revoked", check);
        let parts = token_str::parse(subject).ok_or_else(|| invalid("subject_token_malformed"))?;
        let hash = token_str::hash(subject);
        let raw = self
            .store
            .get(&token_key(parts.user_id, parts.grant_id, &hash))
            .await?
            .ok_or_else(|| invalid("subject_token_not_found"))?;
        let record: AccessToken = serde_json::from_str(&raw).map_err(|_| invalid("subject_token_unreadable"))?;
        if !constant_time_eq(&record.id, &hash) {
            return Err(invalid("subject_token_mismatch"));
        }
        if record.expires_at <= self.now {
            return Err(invalid("subject_token_expired"));
        }
        let grant = self
            .get_grant(&record.user_id, &record.grant_id)
            .await?
            .filter(|g| g.expires_at.is_none_or(|e| e > self.now))
            .ok_or_else(|| invalid("grant_not_found"))?;
        if grant.client_id != client.client_id || record.grant.client_id != client.client_id {
            return Err(bad("The subject token was issued to another client", "cross_client_subject_token"));
        }
        let remaining = record.expires_at - self.now;
        if remaining < MIN_TTL_SECS {
            return Err(bad(
                "The subject token is too close to its expiry to be exchanged",
                "subject_token_near_expiry",
            ));
        }
        // Never wider: the subject token's scopes are the ceiling...
        let held = record.scope.clone().unwrap_or_else(|| record.grant.scope.clone());
        let scope = super::token::narrowed_scope(&held, form.get("scope"))?;
        // ...and for the audience, the grant's resources, as at a refresh.
        let mut asked = form.resources.clone();
        if let Some(aud) = form.get("audience") {
            if !asked.iter().any(|r| r == aud) {
                asked.push(aud.to_owned());
            }
        }
        for r in &asked {
            if resource::check_requested(self.config, r, origin).is_err() {
                return Err(OAuthError::invalid_target(format!("'{r}' is not a resource of this server"))
                    .because(reason("resource_not_registered")));
            }
        }
        let audience = if asked.is_empty() {
            record.audience.as_ref().map(Resource::to_list).unwrap_or_else(|| grant.resources())
        } else {
            self.token_audience(&grant, &asked)?
        };
        // The props the subject token carries, and the application's say.
        let key = seal::unwrap_key(&record.wrapped_encryption_key, subject)
            .map_err(|_| invalid("subject_token_key_unwrap_failed"))?;
        let mut view = grant.clone();
        view.encrypted_props = record.grant.encrypted_props.clone();
        let (key, cap) = self.run_exchange(&mut view, key, GrantType::TokenExchange, &scope).await?;
        let ttl = self.config.access_token_ttl.min(remaining).min(cap.unwrap_or(u64::MAX));
        if ttl < MIN_TTL_SECS {
            return Err(bad("The token would live less than a minute", "requested_ttl_too_short"));
        }

        let access = token_str::mint(&grant.user_id, &grant.id);
        let access_hash = token_str::hash(&access);
        let new = AccessToken {
            id: access_hash.clone(),
            grant_id: grant.id.clone(),
            user_id: grant.user_id.clone(),
            created_at: self.now,
            expires_at: self.now + ttl,
            audience: Resource::from_list(&audience),
            scope: Some(scope.clone()),
            wrapped_encryption_key: seal::wrap_key(&key, &access),
            grant: TokenGrant {
                client_id: client.client_id.clone(),
                scope: grant.scope.clone(),
                encrypted_props: view.encrypted_props,
            },
        };
        let raw = serde_json::to_string(&new).map_err(|_| {
            OAuthError::invalid_request("token record").because(Reason::new("token", "record_unserializable"))
        })?;
        self.store.put(&token_key(&grant.user_id, &grant.id, &access_hash), &raw, Some(ttl)).await?;
        let mut body = json!({
            "access_token": access,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "bearer",
            "expires_in": ttl,
            "scope": scope.join(" "),
        });
        if let Some(r) = Resource::from_list(&audience) {
            body["resource"] = serde_json::to_value(r).unwrap_or_default();
        }
        Ok(json_response(StatusCode::OK, &body))
    }
}
