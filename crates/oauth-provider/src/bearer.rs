//! Bearer token validation for the protected routes (RFC 6750, RFC 9728 §5.1).
//! The hot path: one KV read (the token record), one key unwrap and one
//! decryption; nothing is written.

use super::records::{token_key, AccessToken, Resource};
use super::{seal, token_str, Provider};
use crate::crypto::constant_time_eq;
use http::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};
use url::Url;

/// Who a valid bearer token speaks for.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthContext {
    pub user_id: String,
    pub grant_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    pub expires_at: u64,
    /// The props sign-in stored with the grant, decrypted.
    pub props: serde_json::Value,
}

/// Why a request did not get through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// No `Authorization: Bearer` at all: a bare challenge, no error code.
    Missing,
    /// A token was sent but is not good here.
    Invalid(&'static str),
    /// The store failed; not the client's fault.
    Unavailable,
}

/// `https://host/.well-known/oauth-protected-resource<path>` for a protected request.
/// Below a registered resource's path or alias (`/sse/message`), that path's
/// metadata is named: clients check that its `resource` is the URL they
/// connected to.
pub fn resource_metadata_url(config: &super::Config, url: &Url) -> String {
    let path = url.path();
    let origin = url.origin().ascii_serialization();
    let suffix = match config.resource_at(&origin, url).and_then(|r| r.prefix_of(path)) {
        Some(p) => p,
        None if path == "/" => String::new(),
        None => path.to_owned(),
    };
    format!("{origin}{}{suffix}", super::metadata::PRM_PATH)
}

/// `WWW-Authenticate: Bearer …` parameters: the metadata URL, the `scope` a
/// client should ask for (MCP 2025-11-25 treats it as authoritative), then `extra`.
fn bearer_header(metadata_url: &str, scope: &[String], extra: &str) -> Option<HeaderValue> {
    let mut header = format!("Bearer realm=\"OAuth\", resource_metadata=\"{metadata_url}\"");
    let scope: Vec<&str> = scope.iter().map(String::as_str).filter(|s| *s != "offline_access").collect();
    if !scope.is_empty() {
        header.push_str(&format!(", scope=\"{}\"", scope.join(" ")));
    }
    header.push_str(extra);
    HeaderValue::from_str(&header).ok()
}

fn refusal(status: StatusCode, body: serde_json::Value, challenge: Option<HeaderValue>) -> Response<Vec<u8>> {
    let mut res = Response::new(body.to_string().into_bytes());
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(v) = challenge {
        h.insert(WWW_AUTHENTICATE, v);
    }
    res
}

/// The 401 (or 503) answer for a request that did not authenticate;
/// `metadata_url` names the resource's metadata (see
/// [`resource_metadata_url`]), `scope` is what the resource needs.
pub fn challenge(metadata_url: &str, err: &BearerError, scope: &[String]) -> Response<Vec<u8>> {
    match err {
        BearerError::Missing => refusal(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "unauthorized", "error_description": "Missing bearer token"}),
            bearer_header(metadata_url, scope, ""),
        ),
        BearerError::Invalid(why) => refusal(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "invalid_token", "error_description": why}),
            bearer_header(metadata_url, scope, &format!(", error=\"invalid_token\", error_description=\"{why}\"")),
        ),
        BearerError::Unavailable => refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "temporarily_unavailable", "error_description": "Storage is unavailable; retry"}),
            None,
        ),
    }
}

/// The 403 step-up challenge (RFC 6750 §3.1, MCP 2025-11-25 "Runtime
/// Insufficient Scope Errors") for a valid token that lacks scopes: `scope`
/// lists what the client should ask for, its current scopes and the missing
/// ones together, so a re-authorization keeps what it had.
pub fn insufficient_scope(metadata_url: &str, scope: &[String], description: &str) -> Response<Vec<u8>> {
    let safe: String = description.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect();
    refusal(
        StatusCode::FORBIDDEN,
        serde_json::json!({"error": "insufficient_scope", "error_description": safe}),
        bearer_header(metadata_url, scope, &format!(", error=\"insufficient_scope\", error_description=\"{safe}\"")),
    )
}

/// Whether an audience list lets a token be used at `url` (any entry suffices).
pub fn audience_ok(config: &super::Config, audience: Option<&Resource>, url: &url::Url) -> bool {
    match audience {
        None => config.is_protected_path(url.path()),
        Some(a) => a.to_list().iter().any(|aud| super::resource::audience_allows(config, aud, url)),
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

impl Provider<'_> {
    /// Validates the request's bearer token for `url`.
    pub async fn authenticate(&self, headers: &HeaderMap, url: &Url) -> Result<AuthContext, BearerError> {
        let Some(token) = bearer_token(headers) else {
            return Err(BearerError::Missing);
        };
        self.validate_access_token(token, |aud| audience_ok(self.config, aud, url)).await
    }

    /// Validates an access token whose audience `audience_fits` accepts.
    pub(crate) async fn validate_access_token(
        &self,
        token: &str,
        audience_fits: impl Fn(Option<&Resource>) -> bool,
    ) -> Result<AuthContext, BearerError> {
        let unknown = BearerError::Invalid("The access token is invalid, expired or revoked");
        let parts = token_str::parse(token).ok_or(unknown.clone())?;
        let hash = token_str::hash(token);
        let raw = self
            .store
            .get(&token_key(parts.user_id, parts.grant_id, &hash))
            .await
            .map_err(|_| BearerError::Unavailable)?
            .ok_or(unknown.clone())?;
        let record: AccessToken = serde_json::from_str(&raw).map_err(|_| unknown.clone())?;
        if !constant_time_eq(&record.id, &hash) || record.expires_at <= self.now {
            return Err(unknown);
        }
        if !audience_fits(record.audience.as_ref()) {
            return Err(BearerError::Invalid("The access token's audience does not match this resource"));
        }
        let key = seal::unwrap_key(&record.wrapped_encryption_key, token).map_err(|_| unknown.clone())?;
        let props = seal::decrypt_props(&key, &record.grant.encrypted_props).map_err(|_| unknown)?;
        let scopes = record.scope.unwrap_or(record.grant.scope);
        Ok(AuthContext {
            user_id: record.user_id,
            grant_id: record.grant_id,
            client_id: record.grant.client_id,
            scopes,
            audience: record.audience.map(|a| a.to_list()).unwrap_or_default(),
            expires_at: record.expires_at,
            props,
        })
    }
}
