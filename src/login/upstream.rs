//! The PingOne side of a grant's life, as the authorization server's hooks:
//! on a refresh the PingOne access token is refreshed (keeping a rotated
//! refresh token) and the MCP access token capped at its remaining life; when
//! a grant ends its PingOne refresh token is revoked.
//!
//! The PingOne refresh token lives in the grant's metadata, sealed
//! (AES-256-GCM, the user and grant ids as associated data) under a key
//! derived from `COOKIE_ENCRYPTION_KEY`: the props
//! can be read only with one of the client's tokens, but a grant ended by a
//! new sign-in or the purge has none, and must still revoke it.

use super::discovery::{Discovery, OidcCache};
use super::oidc::{self, RefreshError};
use super::settings::Settings;
use crate::grant_props::Props;
use crate::oauth::enterprise::{EnterpriseAssertion, EnterpriseGrant};
use crate::oauth::records::Grant;
use crate::oauth::{Exchange, ExchangeError, ExchangeResult, GrantHooks, GrantType, OAuthError};
use crate::outbound::HttpClient;
use crate::util::crypto::{b64url, b64url_decode, random_bytes};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

/// Metadata field holding the sealed PingOne refresh token.
pub const SEALED_FIELD: &str = "upstream";
/// Props field where grants from before sealing kept the refresh token.
const LEGACY_PROPS_FIELD: &str = "refreshToken";

fn sealing_key(settings: &Settings) -> Aes256Gcm {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&settings.cookie_key).expect("HMAC takes any key length");
    mac.update(b"pingone-refresh-token-seal-v1");
    let key: [u8; 32] = mac.finalize().into_bytes().into();
    Aes256Gcm::new(&key.into())
}

/// The version prefix of seals bound to their grant (associated data); a
/// seal without it is from before (no associated data) and still opens.
const SEAL_V2: &str = "v2.";

/// What a seal is bound to: the grant's user and id (`""` at sign-in, before
/// the grant exists; the code exchange seals it again under the grant's id).
fn associated_data(user_id: &str, grant_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!(["pingone-refresh-token", user_id, grant_id])).expect("a JSON array of strings")
}

/// `v2.` + `base64url(nonce || ciphertext)` of a PingOne refresh token, with
/// the user id and grant id as associated data: the seal opens only for that
/// grant (a seal copied into another grant's record does not open).
pub fn seal(settings: &Settings, refresh_token: &str, user_id: &str, grant_id: &str) -> String {
    let nonce = random_bytes::<12>();
    let aad = associated_data(user_id, grant_id);
    let sealed = sealing_key(settings)
        .encrypt(&Nonce::from(nonce), Payload { msg: refresh_token.as_bytes(), aad: &aad })
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    format!("{SEAL_V2}{}", b64url([nonce.as_slice(), &sealed].concat()))
}

/// The refresh token in `sealed`, if it opens under this worker's key for
/// this grant: a `v2.` seal made for the grant, or at its sign-in (`grant_id`
/// `""`) for its user; a seal without the prefix (grants sealed before the
/// binding) opens without associated data.
pub fn open(settings: &Settings, sealed: &str, user_id: &str, grant_id: &str) -> Option<String> {
    let (bound, data) = match sealed.strip_prefix(SEAL_V2) {
        Some(rest) => (true, b64url_decode(rest)?),
        None => (false, b64url_decode(sealed)?),
    };
    if data.len() < 12 {
        return None;
    }
    let (nonce, ct) = data.split_at(12);
    let nonce = Nonce::from(<[u8; 12]>::try_from(nonce).ok()?);
    let key = sealing_key(settings);
    let plain = if bound {
        let with = |grant: &str| key.decrypt(&nonce, Payload { msg: ct, aad: &associated_data(user_id, grant) }).ok();
        with(grant_id).or_else(|| with(""))?
    } else {
        key.decrypt(&nonce, ct).ok()?
    };
    String::from_utf8(plain).ok()
}

/// Whether `sealed` is already bound to the grant `grant_id` itself.
fn bound_to_grant(settings: &Settings, sealed: &str, user_id: &str, grant_id: &str) -> bool {
    let Some(data) = sealed.strip_prefix(SEAL_V2).and_then(b64url_decode).filter(|d| d.len() >= 12) else {
        return false;
    };
    let (nonce, ct) = data.split_at(12);
    let Ok(nonce) = <[u8; 12]>::try_from(nonce) else { return false };
    let aad = associated_data(user_id, grant_id);
    sealing_key(settings).decrypt(&Nonce::from(nonce), Payload { msg: ct, aad: &aad }).is_ok()
}

/// The PingOne scopes to ask for when an MCP client is being granted
/// `granted`: every configured scope that is not a Todo API scope (OpenID
/// scopes sign-in needs), and of the API scopes only those being granted
/// (MCP scopes are PingOne's scope names), so the PingOne token can do no
/// more than the grant.
pub fn scopes_for(settings: &Settings, granted: &[String]) -> Vec<String> {
    settings.scopes.iter().filter(|s| !is_api_scope(s) || granted.contains(s)).cloned().collect()
}

/// A configured scope that is not one of OpenID Connect's own.
pub fn is_api_scope(scope: &str) -> bool {
    !matches!(scope, "openid" | "profile" | "email" | "address" | "phone" | "offline_access")
}

/// The hooks for one request.
pub struct PingOneGrants<'a> {
    pub settings: &'a Settings,
    pub http: &'a dyn HttpClient,
    pub cache: &'a OidcCache,
    /// Proxy mode: grants must carry a PingOne token (no enterprise grants).
    pub gateway: bool,
}

fn log(line: &str) {
    super::flow::log(line);
}

impl PingOneGrants<'_> {
    /// The metadata with its sealed refresh token bound to this grant, when it
    /// is not yet (`None`: nothing to change).
    fn sealed_for_grant(&self, e: &Exchange<'_>) -> Option<Value> {
        let sealed = e.metadata.get(SEALED_FIELD).and_then(Value::as_str)?;
        if bound_to_grant(self.settings, sealed, e.user_id, e.grant_id) {
            return None;
        }
        let rt = open(self.settings, sealed, e.user_id, e.grant_id)?;
        let mut metadata = e.metadata.clone();
        metadata[SEALED_FIELD] = json!(seal(self.settings, &rt, e.user_id, e.grant_id));
        Some(metadata)
    }

    fn refresh_token_of(&self, e: &Exchange<'_>) -> Option<String> {
        let (props, metadata) = (e.props, e.metadata);
        match metadata.get(SEALED_FIELD).and_then(Value::as_str) {
            Some(sealed) => open(self.settings, sealed, e.user_id, e.grant_id),
            None => props.get(LEGACY_PROPS_FIELD).and_then(Value::as_str).map(str::to_owned),
        }
    }

    /// The PingOne scopes the new MCP token may carry, when the PingOne token
    /// held carries other API scopes: the client narrowed its token (`scope=`
    /// at the code exchange or a refresh), or asks for the whole grant again
    /// after narrowing. `None`: the token held fits (or its scopes are unknown).
    fn rescoped(&self, e: &Exchange<'_>) -> Option<Vec<String>> {
        let held = Props::from_value(e.props).scopes?;
        let wanted = scopes_for(self.settings, e.token_scope);
        let api = |v: &[String]| {
            let mut a: Vec<String> = v.iter().filter(|s| is_api_scope(s)).cloned().collect();
            a.sort();
            a
        };
        (api(&held) != api(&wanted)).then_some(wanted)
    }

    async fn refresh(
        &self,
        e: &Exchange<'_>,
        refresh_token: &str,
        scope: Option<Vec<String>>,
    ) -> Result<ExchangeResult, ExchangeError> {
        let discovery = self
            .cache
            .discovery(self.http, &self.settings.issuer, e.now)
            .await
            .map_err(|err| ExchangeError::Unavailable(format!("PingOne could not be reached ({err}); retry")))?;
        let asked = scope.as_deref();
        let fresh = match oidc::refresh(self.http, self.settings, &discovery, refresh_token, asked, e.now).await {
            Ok(r) => r,
            Err(RefreshError::Dead) => {
                log("PingOne refused the refresh token (invalid_grant); the grant ends");
                return Err(ExchangeError::GrantDead(
                    "PingOne no longer accepts this sign-in (session ended, user disabled or token revoked); sign in again"
                        .into(),
                ));
            }
            Err(RefreshError::Failed(why)) => {
                log(&format!("PingOne refresh failed: {why}"));
                return Err(ExchangeError::Unavailable(format!("PingOne could not refresh the sign-in: {why}; retry")));
            }
        };
        // PingOne's rotated refresh token (the presented one is now dead).
        let keep = fresh.refresh_token.as_deref().unwrap_or(refresh_token);
        // Who the user is now, asked with the fresh token: it decides access
        // and replaces the identity the grant carries (gateway headers, whoami).
        let current = self.current(e, &discovery, &fresh.access_token).await;
        if !self.admits(e, &current) {
            if let Err(why) = oidc::revoke_refresh_token(self.http, self.settings, &discovery, keep).await {
                log(&format!("access denied on refresh: revoking the PingOne refresh token failed: {why}"));
            }
            return Err(not_admitted(e));
        }
        let mut props = e.props.clone();
        if let Some(p) = props.as_object_mut() {
            p.remove(LEGACY_PROPS_FIELD);
            p.insert("subjectToken".into(), json!(fresh.access_token));
            match fresh.expires_at {
                Some(at) => p.insert("subjectTokenExpiresAt".into(), json!(at)),
                None => p.remove("subjectTokenExpiresAt"),
            };
            // PingOne may leave out `scope` when it granted what was asked (RFC 6749 §5.1).
            if let Some(scopes) = fresh.scopes.as_deref().or(asked) {
                p.insert("scopes".into(), json!(scopes));
            }
            // Props of either shape end in this worker's, claims included.
            if let Some(claims) = current.claims().or(Props::from_value(e.props).claims) {
                p.insert("claims".into(), Value::Object(claims));
            }
        }
        let mut metadata = if e.metadata.is_object() { e.metadata.clone() } else { json!({}) };
        metadata[SEALED_FIELD] = json!(seal(self.settings, keep, e.user_id, e.grant_id));
        Ok(ExchangeResult {
            props: Some(props),
            metadata: Some(metadata),
            access_token_ttl: fresh.expires_at.map(|at| at.saturating_sub(e.now)),
        })
    }
}

/// The user as PingOne describes them at a refresh.
enum Current {
    /// The claims from sign-in updated with PingOne's current userinfo.
    Claims(Map<String, Value>),
    /// Userinfo could not be had: the claims from sign-in stand (an outage
    /// must not end grants, and after a PingOne rotation failing here would
    /// lose the new refresh token).
    Unknown,
    /// Userinfo describes someone else: never admitted.
    OtherUser,
}

impl Current {
    fn claims(&self) -> Option<Map<String, Value>> {
        match self {
            Current::Claims(c) => Some(c.clone()),
            _ => None,
        }
    }
}

impl PingOneGrants<'_> {
    /// PingOne's current userinfo for the grant's user, merged over the
    /// claims from sign-in (a group claim may be absent when empty, so the
    /// stored one goes first).
    async fn current(&self, e: &Exchange<'_>, discovery: &Discovery, access_token: &str) -> Current {
        match oidc::userinfo(self.http, discovery, access_token).await {
            Ok(now) if now.get("sub").and_then(Value::as_str) != Some(e.user_id) => {
                log("userinfo on refresh describes another user");
                Current::OtherUser
            }
            Ok(now) => {
                let mut claims = Props::from_value(e.props).claims.unwrap_or_default();
                claims.remove(&self.settings.access.groups_claim);
                claims.extend(now);
                Current::Claims(claims)
            }
            Err(why) => {
                log(&format!("userinfo on refresh: {why}; keeping the claims from sign-in"));
                Current::Unknown
            }
        }
    }

    /// Access is decided at sign-in and again on every refresh, so someone
    /// taken off `ALLOWED_USERS` / `ALLOWED_GROUPS`, or out of a group at
    /// PingOne, loses the grant at the client's next refresh: on `current`
    /// claims when PingOne gave them, else on those from sign-in.
    fn admits(&self, e: &Exchange<'_>, current: &Current) -> bool {
        let policy = &self.settings.access;
        let claims = match current {
            Current::OtherUser => return false,
            _ if policy.is_open() => return true,
            Current::Claims(c) => c.clone(),
            Current::Unknown => Props::from_value(e.props).claims.unwrap_or_default(),
        };
        let groups = policy.groups_of([&claims]);
        policy.admits_user(e.user_id, &claims, &groups)
    }
}

/// `props` with `claims` as the user's identity, every other field kept (a
/// grant from before sealing keeps its PingOne refresh token there); props of
/// the original's shape gain this worker's fields, which are read first.
fn with_claims(props: &Value, claims: Map<String, Value>) -> Value {
    let mut ours = Props::from_value(props);
    ours.claims = Some(claims);
    let mut out = props.as_object().cloned().unwrap_or_default();
    if let Value::Object(fields) = ours.to_value() {
        out.extend(fields);
    }
    Value::Object(out)
}

/// The refusal of a grant whose user is no longer admitted (logged once here).
fn not_admitted(e: &Exchange<'_>) -> ExchangeError {
    log(&format!(
        "access denied on refresh: user {} is no longer admitted (ALLOWED_USERS, ALLOWED_GROUPS); the grant ends",
        super::access::loggable(e.user_id)
    ));
    ExchangeError::GrantDead("This account is no longer allowed to use this server; ask its operator for access".into())
}

#[async_trait(?Send)]
impl GrantHooks for PingOneGrants<'_> {
    async fn exchange(&self, e: Exchange<'_>) -> Result<ExchangeResult, ExchangeError> {
        // Either props shape (grants of the original carry the PingOne JWT's own expiry).
        let expires_at = Props::from_value(e.props).subject_token_expires_at;
        let remaining = expires_at.map(|at| at.saturating_sub(e.now));
        let capped = ExchangeResult { access_token_ttl: remaining, ..Default::default() };
        // A token narrower (or wider) than the PingOne token held: PingOne is
        // asked for a token of exactly its scopes, so what reaches the Todo API
        // or a downstream server can do no more than the MCP token.
        let rescoped = self.rescoped(&e);
        if e.grant_type == GrantType::TokenExchange {
            // RFC 8693 (OAUTH_TOKEN_EXCHANGE): no call to PingOne, whose refresh would rotate a
            // refresh token the grant (not written by an exchange) must keep. The new MCP token
            // carries the subject token's PingOne token and lives no longer than it, so one of
            // other Todo API scopes cannot be issued this way.
            if rescoped.is_some() {
                return Err(ExchangeError::Refused(
                    "An exchanged token keeps the Todo API scopes of its subject token; narrow with a refresh (scope=)"
                        .into(),
                ));
            }
            return Ok(capped);
        }
        if e.grant_type == GrantType::AuthorizationCode {
            if let (Some(scope), Some(rt), false) = (&rescoped, self.refresh_token_of(&e), remaining == Some(0)) {
                return self.refresh(&e, &rt, Some(scope.clone())).await;
            }
            return match remaining {
                Some(0) => Err(ExchangeError::GrantDead("The PingOne sign-in has expired; sign in again".into())),
                // Sealed at sign-in before the grant had an id: bound to it now.
                _ => Ok(ExchangeResult { metadata: self.sealed_for_grant(&e), ..capped }),
            };
        }
        // Good for a whole access-token lifetime (or of unknown life), and of
        // the right scopes: no call to PingOne.
        let fresh_enough = remaining.is_none_or(|r| r >= e.access_token_ttl) && rescoped.is_none();
        let upstream_refresh = if fresh_enough { None } else { self.refresh_token_of(&e) };
        if let Some(rt) = upstream_refresh {
            // Access is checked there, on PingOne's current userinfo.
            return self.refresh(&e, &rt, rescoped).await;
        }
        if !self.settings.access.is_open() {
            // Membership as PingOne sees it now, asked with the PingOne token still held.
            let token = Props::from_value(e.props).subject_token.filter(|_| remaining != Some(0));
            let discovery = match token {
                Some(_) => self.cache.discovery(self.http, &self.settings.issuer, e.now).await.ok(),
                None => None,
            };
            let current = match discovery.as_deref().zip(token.as_deref()) {
                Some((discovery, token)) => self.current(&e, discovery, token).await,
                None => Current::Unknown,
            };
            if !self.admits(&e, &current) {
                return Err(not_admitted(&e));
            }
            // The identity the grant carries follows PingOne's (only written when it changed).
            let stored = Props::from_value(e.props).claims;
            if let Some(claims) = current.claims().filter(|c| stored.as_ref() != Some(c)) {
                if remaining != Some(0) {
                    return Ok(ExchangeResult { props: Some(with_claims(e.props, claims)), ..capped });
                }
            }
        }
        match remaining {
            // No refresh token (the PingOne application lacks the grant type):
            // the grant lives as long as the PingOne access token.
            Some(0) => Err(ExchangeError::GrantDead("The PingOne sign-in has expired; sign in again".into())),
            _ => Ok(capped),
        }
    }

    async fn enterprise_grant(&self, a: EnterpriseAssertion<'_>) -> Result<EnterpriseGrant, OAuthError> {
        let policy = super::enterprise::EnterprisePolicy {
            pingone_issuer: &self.settings.issuer,
            access: &self.settings.access,
            gateway: self.gateway,
        };
        policy.grant(&a)
    }

    async fn grant_ended(&self, grant: &Grant) {
        let Some(rt) = grant
            .metadata
            .get(SEALED_FIELD)
            .and_then(Value::as_str)
            .and_then(|s| open(self.settings, s, &grant.user_id, &grant.id))
        else {
            return;
        };
        let now = crate::util::time::now_secs();
        let result = match self.cache.discovery(self.http, &self.settings.issuer, now).await {
            Ok(d) => oidc::revoke_refresh_token(self.http, self.settings, &d, &rt).await,
            Err(e) => Err(format!("discovery failed: {e}")),
        };
        match result {
            Ok(true) => log("grant ended: PingOne refresh token revoked"),
            Ok(false) => log("grant ended: PingOne announces no revocation endpoint"),
            Err(why) => log(&format!("grant ended: revoking the PingOne refresh token failed: {why}")),
        }
    }
}

/// A seal as written before the binding (no prefix, no associated data).
#[cfg(test)]
pub fn seal_unbound(settings: &Settings, refresh_token: &str) -> String {
    let nonce = random_bytes::<12>();
    let sealed = sealing_key(settings).encrypt(&Nonce::from(nonce), refresh_token.as_bytes()).unwrap();
    b64url([nonce.as_slice(), &sealed].concat())
}

/// A sign-in that will not become a grant after all (the application's step
/// after it did not complete): the PingOne refresh token sealed in its
/// `metadata` is revoked, best effort. `Err` says why it was not (for the log).
pub async fn revoke_abandoned(
    settings: &Settings,
    http: &dyn HttpClient,
    cache: &OidcCache,
    metadata: &Value,
    user_id: &str,
    now: u64,
) -> Result<(), String> {
    let Some(sealed) = metadata.get(SEALED_FIELD).and_then(Value::as_str) else { return Ok(()) };
    let rt = open(settings, sealed, user_id, "").ok_or("its seal does not open")?;
    let discovery = cache.discovery(http, &settings.issuer, now).await.map_err(|e| e.to_string())?;
    oidc::revoke_refresh_token(http, settings, &discovery, &rt).await.map(|_| ())
}
