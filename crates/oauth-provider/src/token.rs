//! The token endpoint: `authorization_code` (with PKCE) and `refresh_token`
//! (rotated on every use; the previous token stays good until the new one is
//! first used, so a client that lost a response can retry), and the
//! dispatch to RFC 8693 token exchange (`token_exchange.rs`) when it is on.

use super::authorize::pkce_syntax_ok;
use super::client_auth::Form;
use super::error::{json_response, OAuthError, Reason};
use super::hooks::{Exchange, ExchangeError, GrantType};
use super::records::{grant_key, token_key, AccessToken, ClientInfo, Grant, Resource, TokenGrant};
use super::{redirect, resource, seal, token_str, Provider};
use crate::crypto::{b64url, constant_time_eq, sha256};
use http::{Method, Request, Response, StatusCode};
use serde_json::json;

/// A grant must have at least this long to live to be refreshed or exchanged.
const MIN_GRANT_LIFE: u64 = 60;

/// A refusal of an authorization code exchange.
const fn code_reason(check: &'static str) -> Reason {
    Reason::new("authorization_code", check)
}

/// A refusal of a refresh.
const fn refresh_reason(check: &'static str) -> Reason {
    Reason::new("refresh_token", check)
}

/// The scopes a new access token carries: the grant's, or the subset the
/// request's `scope` names. Any scope the grant lacks (unknown, or known but
/// not granted) makes the request `invalid_scope`, never a silent widening or
/// an empty token (RFC 6749 §5.2, §6); an empty `scope` is no `scope`.
pub(crate) fn narrowed_scope(granted: &[String], asked: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let Some(asked) = asked.filter(|a| !a.trim().is_empty()) else { return Ok(granted.to_vec()) };
    let mut out: Vec<String> = Vec::new();
    for s in asked.split_whitespace() {
        if !granted.iter().any(|g| g == s) {
            return Err(OAuthError::invalid_scope(format!(
                "Scope '{s}' was not granted; a token may only narrow scope"
            ))
            .because(Reason::new("token", "scope_not_granted")));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

impl Provider<'_> {
    /// `POST /token` at `origin` (this server's).
    pub(crate) async fn token_endpoint(&self, req: &Request<Vec<u8>>, origin: &str) -> Response<Vec<u8>> {
        self.token_inner(req, origin).await.unwrap_or_else(OAuthError::into_response)
    }

    async fn token_inner(&self, req: &Request<Vec<u8>>, origin: &str) -> Result<Response<Vec<u8>>, OAuthError> {
        if req.method() != Method::POST {
            return Err(OAuthError::method_not_allowed());
        }
        let form = Form::parse(req)?;
        let client = self.authenticate_client(req, &form).await?;
        match form.get("grant_type") {
            Some("authorization_code") => {
                let res = self.exchange_code(&client, &form, origin).await?;
                self.renew_client_if_due(&client).await;
                Ok(res)
            }
            Some("refresh_token") => {
                let res = self.refresh(&client, &form).await?;
                self.renew_client_if_due(&client).await;
                Ok(res)
            }
            Some(super::TOKEN_EXCHANGE_GRANT) if self.config.token_exchange => {
                let res = self.exchange_token(&client, &form, origin).await?;
                self.renew_client_if_due(&client).await;
                Ok(res)
            }
            Some(super::JWT_BEARER_GRANT) if self.config.enterprise.is_some() => {
                let idp = self.config.enterprise.as_ref().expect("checked");
                self.enterprise_grant(idp, &client, &form, origin).await
            }
            // The original serves revocation at its token endpoint.
            None if form.get("token").is_some() => self.revoke_with(&client, &form).await,
            None => Err(OAuthError::invalid_request("grant_type is required")
                .because(Reason::new("token", "grant_type_missing"))),
            Some(_) => Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("Supported grant types: {}", self.config.grant_types_supported().join(", ")),
            )
            .because(Reason::new("token", "grant_type_unsupported"))),
        }
    }

    async fn exchange_code(
        &self,
        client: &ClientInfo,
        form: &Form,
        origin: &str,
    ) -> Result<Response<Vec<u8>>, OAuthError> {
        if !client.allows_grant("authorization_code") {
            return Err(OAuthError::unauthorized_client(
                "This client is not registered for the authorization_code grant",
            )
            .because(code_reason("grant_type_not_registered")));
        }
        let code = form
            .get("code")
            .ok_or_else(|| OAuthError::invalid_request("code is required").because(code_reason("code_missing")))?;
        let bad_code = |check| {
            OAuthError::invalid_grant("The authorization code is invalid, expired or already used")
                .because(code_reason(check))
        };
        let parts = token_str::parse(code).ok_or_else(|| bad_code("code_malformed"))?;
        let mut grant =
            self.get_grant(parts.user_id, parts.grant_id).await?.ok_or_else(|| bad_code("grant_not_found"))?;
        let code_hash = token_str::hash(code);
        if !grant.auth_code_id.as_deref().is_some_and(|id| constant_time_eq(id, &code_hash)) {
            return Err(bad_code("code_mismatch"));
        }
        if grant.client_id != client.client_id {
            return Err(bad_code("client_mismatch"));
        }
        let Some(wrapped) = grant.auth_code_wrapped_key.clone() else {
            // Replay: the code was exchanged before, so its tokens may be in the wrong hands.
            self.end_grant(&grant).await?;
            return Err(bad_code("code_replayed"));
        };
        if self.now >= grant.created_at + self.config.code_ttl {
            return Err(bad_code("code_expired"));
        }
        match (form.get("redirect_uri"), grant.redirect_uri.as_deref()) {
            (Some(sent), Some(granted)) if sent != granted => {
                return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request")
                    .because(code_reason("redirect_uri_mismatch")));
            }
            // A grant from before the redirect was recorded: at least a registered one.
            (Some(sent), None) if !redirect::matches_registered(sent, &client.redirect_uris) => {
                return Err(OAuthError::invalid_grant("redirect_uri is not registered for this client")
                    .because(code_reason("redirect_uri_not_registered")));
            }
            (None, _) if grant.code_challenge.is_none() => {
                return Err(OAuthError::invalid_request("redirect_uri is required")
                    .because(code_reason("redirect_uri_missing")));
            }
            _ => {}
        }
        match (&grant.code_challenge, form.get("code_verifier")) {
            (Some(_), None) => {
                return Err(OAuthError::invalid_request("code_verifier is required (PKCE)")
                    .because(code_reason("code_verifier_missing")))
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request("code_verifier sent but the authorization used no PKCE")
                    .because(code_reason("code_verifier_unexpected")))
            }
            (Some(challenge), Some(verifier)) => {
                if grant.code_challenge_method.as_deref() != Some("S256") {
                    return Err(OAuthError::invalid_grant("Unsupported PKCE method on this grant")
                        .because(code_reason("pkce_method_unsupported")));
                }
                if !pkce_syntax_ok(verifier) || !constant_time_eq(b64url(sha256(verifier)), challenge) {
                    return Err(
                        OAuthError::invalid_grant("PKCE verification failed").because(code_reason("pkce_mismatch"))
                    );
                }
            }
            (None, None) => {}
        }
        let audience = self.token_audience(&grant, &form.resources)?;
        let scope = narrowed_scope(&grant.scope, form.get("scope"))?;
        let key = seal::unwrap_key(&wrapped, code).map_err(|_| bad_code("key_unwrap_failed"))?;
        // Refresh tokens only for clients registered for that grant. Without one
        // the grant ends with its access token, so it is never kept forever.
        let with_refresh = self.config.refresh_token_ttl > 0 && client.allows_grant("refresh_token");
        let lifetime = if with_refresh { self.config.refresh_token_ttl } else { self.config.access_token_ttl };
        // A client narrowing scope at the code exchange narrows the grant itself.
        grant.scope.clone_from(&scope);
        let (key, cap) = self.run_exchange(&mut grant, key, GrantType::AuthorizationCode, &scope).await?;

        grant.auth_code_wrapped_key = None;
        grant.code_challenge = None;
        grant.code_challenge_method = None;
        grant.expires_at = Some(self.now + lifetime);
        let max_ttl = cap.map_or(lifetime, |c| c.min(lifetime));
        // The client holds this grant's tokens now: only then do the grants it replaces end.
        let replaces = std::mem::take(&mut grant.replaces_older_grants).then(|| grant.clone());
        let res = self.issue(grant, key, audience, scope, max_ttl, with_refresh).await?;
        if let Some(grant) = replaces {
            // Best effort: a failure here leaves an older grant alive, nothing worse.
            let legacy = self.config.default_protected_resource().url(origin);
            let _ = self.replace_older_grants(&grant, &legacy).await;
        }
        Ok(res)
    }

    async fn refresh(&self, client: &ClientInfo, form: &Form) -> Result<Response<Vec<u8>>, OAuthError> {
        if !client.allows_grant("refresh_token") {
            return Err(OAuthError::unauthorized_client("This client is not registered for the refresh_token grant")
                .because(refresh_reason("grant_type_not_registered")));
        }
        let token = form.get("refresh_token").ok_or_else(|| {
            OAuthError::invalid_request("refresh_token is required").because(refresh_reason("refresh_token_missing"))
        })?;
        let bad = |check| {
            OAuthError::invalid_grant("The refresh token is invalid, expired or revoked").because(refresh_reason(check))
        };
        let parts = token_str::parse(token).ok_or_else(|| bad("refresh_token_malformed"))?;
        let mut grant = self.get_grant(parts.user_id, parts.grant_id).await?.ok_or_else(|| bad("grant_not_found"))?;
        if grant.client_id != client.client_id {
            return Err(bad("client_mismatch"));
        }
        let hash = token_str::hash(token);
        let same = |id: &Option<String>| id.as_deref().is_some_and(|id| constant_time_eq(id, &hash));
        let wrapped = if same(&grant.refresh_token_id) {
            grant.refresh_token_wrapped_key.clone()
        } else if same(&grant.previous_refresh_token_id) {
            grant.previous_refresh_token_wrapped_key.clone()
        } else {
            None
        }
        .ok_or_else(|| bad("refresh_token_mismatch"))?;
        let remaining = grant.expires_at.map(|e| e.saturating_sub(self.now));
        if remaining.is_some_and(|r| r < MIN_GRANT_LIFE) {
            return Err(OAuthError::invalid_grant("The grant has expired; sign in again")
                .because(refresh_reason("grant_expired")));
        }
        let scope = narrowed_scope(&grant.scope, form.get("scope"))?;
        let audience = self.token_audience(&grant, &form.resources)?;
        let key = seal::unwrap_key(&wrapped, token).map_err(|_| bad("key_unwrap_failed"))?;
        let before = (grant.encrypted_props.clone(), grant.metadata.clone());
        let (key, cap) = self.run_exchange(&mut grant, key, GrantType::RefreshToken, &scope).await?;
        // A grant that ends from here on stays ended: the end marker is read
        // after the write below. A hook that brought new upstream tokens may
        // have taken a while: a grant revoked meanwhile is caught before
        // anything is written (one KV read that a refresh without upstream
        // work, the common one, is spared).
        let upstream_changed = (&grant.encrypted_props, &grant.metadata) != (&before.0, &before.1);
        if upstream_changed && self.get_grant(&grant.user_id, &grant.id).await?.is_none() {
            // The fresh upstream tokens end with it.
            self.hooks.grant_ended(&grant).await;
            return Err(bad("grant_revoked_meanwhile"));
        }
        grant.previous_refresh_token_id = Some(hash);
        // The presented token stays good until the new one is used (a client
        // that lost the answer retries with it), for the props as they are now.
        grant.previous_refresh_token_wrapped_key = Some(seal::wrap_key(&key, token));
        // Sliding expiry: the grant now ends the idle lifetime after this refresh
        // (committed by the grant write that rotates the refresh token).
        let mut remaining = remaining;
        if let Some(idle) = self.config.refresh_token_idle_ttl {
            grant.expires_at = Some(self.now + idle);
            remaining = Some(idle);
        }
        let mut max_ttl = remaining.unwrap_or(u64::MAX);
        if let Some(c) = cap {
            max_ttl = max_ttl.min(c);
        }
        let written = grant.clone();
        let res = self.issue(grant, key, audience, scope, max_ttl, self.config.refresh_token_ttl > 0).await?;
        // KV has no compare-and-set: a grant that ended between the check above
        // and the write is back. Its end left a marker (one more KV read): undo.
        if self.grant_ended(&written.user_id, &written.id).await? {
            self.store.delete(&grant_key(&written.user_id, &written.id)).await?;
            let _ = self.delete_tokens(&written.user_id, &written.id).await;
            if upstream_changed {
                self.hooks.grant_ended(&written).await;
            }
            return Err(bad("grant_revoked_meanwhile"));
        }
        Ok(res)
    }

    /// Runs the application's token-exchange hook on `grant` and applies what
    /// it returns: new props under a new key (a key encrypts exactly one
    /// message), new metadata. Returns the key the props are now under and the
    /// hook's cap on the access token's lifetime. A dead upstream ends the grant.
    pub(crate) async fn run_exchange(
        &self,
        grant: &mut Grant,
        key: seal::PropsKey,
        grant_type: GrantType,
        token_scope: &[String],
    ) -> Result<(seal::PropsKey, Option<u64>), OAuthError> {
        let props = seal::decrypt_props(&key, &grant.encrypted_props).map_err(|_| {
            OAuthError::invalid_grant("The grant's data cannot be read; sign in again")
                .because(Reason::new("token", "props_unreadable"))
        })?;
        let exchange = Exchange {
            grant_type,
            client_id: &grant.client_id,
            user_id: &grant.user_id,
            grant_id: &grant.id,
            scope: &grant.scope,
            token_scope,
            props: &props,
            metadata: &grant.metadata,
            access_token_ttl: self.config.access_token_ttl,
            now: self.now,
        };
        let result = match self.hooks.exchange(exchange).await {
            Ok(r) => r,
            Err(ExchangeError::GrantDead(why)) => {
                self.end_grant(grant).await?;
                return Err(OAuthError::invalid_grant(why).because(Reason::new("token_exchange_hook", "grant_dead")));
            }
            Err(ExchangeError::Unavailable(why)) => {
                return Err(
                    OAuthError::temporarily_unavailable(why).because(Reason::new("token_exchange_hook", "unavailable"))
                )
            }
            Err(ExchangeError::Refused(why)) => {
                return Err(OAuthError::invalid_scope(why).because(Reason::new("token_exchange_hook", "refused")))
            }
        };
        let key = match result.props {
            Some(p) => {
                let fresh = seal::new_key();
                grant.encrypted_props = seal::encrypt_props(&fresh, &p);
                fresh
            }
            None => key,
        };
        if let Some(m) = result.metadata {
            grant.metadata = m;
        }
        Ok((key, result.access_token_ttl.map(|t| t.max(1))))
    }

    /// RFC 8707 at the token endpoint: an explicit resource must be one the
    /// grant was issued for; the token's audience is the explicit or granted one.
    pub(crate) fn token_audience(&self, grant: &Grant, explicit: &[String]) -> Result<Vec<String>, OAuthError> {
        let granted = grant.resources();
        // A value with a query names the resource without it (WOP 1.2.3), as at /authorize.
        let mut mapped: Vec<String> = Vec::new();
        for r in explicit.iter().map(|r| resource::map_requested(r)) {
            if !mapped.contains(&r) {
                mapped.push(r);
            }
        }
        let explicit = &mapped[..];
        for r in explicit {
            let covered = url::Url::parse(r).is_ok_and(|u| {
                u.fragment().is_none()
                    && granted.iter().any(|g| g == r || resource::audience_allows(self.config, g, &u))
            });
            if !covered {
                return Err(OAuthError::invalid_target(format!("resource '{r}' was not part of this authorization"))
                    .because(Reason::new("token", "resource_not_granted")));
            }
        }
        Ok(if explicit.is_empty() { granted } else { explicit.to_vec() })
    }

    /// Mints an access token (and, `with_refresh`, a new refresh token), stores
    /// both and the grant. The access token lives at most `max_ttl` seconds
    /// (the grant's remaining life, the hook's cap).
    pub(crate) async fn issue(
        &self,
        mut grant: Grant,
        key: seal::PropsKey,
        audience: Vec<String>,
        scope: Vec<String>,
        max_ttl: u64,
        with_refresh: bool,
    ) -> Result<Response<Vec<u8>>, OAuthError> {
        let access = token_str::mint(&grant.user_id, &grant.id);
        let access_ttl = max_ttl.min(self.config.access_token_ttl);
        let refresh = with_refresh.then(|| token_str::mint(&grant.user_id, &grant.id));
        if let Some(r) = &refresh {
            grant.refresh_token_id = Some(token_str::hash(r));
            grant.refresh_token_wrapped_key = Some(seal::wrap_key(&key, r));
        }
        let access_hash = token_str::hash(&access);
        let record = AccessToken {
            id: access_hash.clone(),
            grant_id: grant.id.clone(),
            user_id: grant.user_id.clone(),
            created_at: self.now,
            expires_at: self.now + access_ttl,
            audience: Resource::from_list(&audience),
            scope: Some(scope.clone()),
            wrapped_encryption_key: seal::wrap_key(&key, &access),
            grant: TokenGrant {
                client_id: grant.client_id.clone(),
                scope: grant.scope.clone(),
                encrypted_props: grant.encrypted_props.clone(),
            },
        };
        let raw = serde_json::to_string(&record).map_err(|_| {
            OAuthError::invalid_request("token record").because(Reason::new("token", "record_unserializable"))
        })?;
        // "Last used", for free: this write happens anyway (never on a bearer request).
        grant.tokens_issued_at = Some(self.now);
        self.save_grant(&grant).await?;
        self.store.put(&token_key(&grant.user_id, &grant.id, &access_hash), &raw, Some(access_ttl)).await?;
        let mut body = json!({
            "access_token": access,
            "token_type": "bearer",
            "expires_in": access_ttl,
            "scope": scope.join(" "),
        });
        if let Some(r) = refresh {
            body["refresh_token"] = json!(r);
        }
        if let Some(r) = Resource::from_list(&audience) {
            body["resource"] = serde_json::to_value(r).unwrap_or_default();
        }
        Ok(json_response(StatusCode::OK, &body))
    }
}
