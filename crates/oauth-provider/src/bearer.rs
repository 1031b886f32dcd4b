//! Bearer token validation for the protected routes (RFC 6750, RFC 9728 §5.1).
//! The hot path: one KV read (the token record), one key unwrap and one
//! decryption, or none of them for a token in the [`crate::TokenCache`];
//! nothing is written.

use super::records::{token_key, AccessToken, Resource};
use super::{seal, token_str, Provider};
use crate::crypto::constant_time_eq;
use crate::error::Reason;
use http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};
use std::borrow::Cow;
use url::Url;

/// Who a valid bearer token speaks for.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthContext {
    /// The user the grant belongs to.
    pub user_id: String,
    /// The grant the token was issued under.
    pub grant_id: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The token's scopes (the grant's, or fewer when the client narrowed them).
    pub scopes: Vec<String>,
    /// The resources the token is for (RFC 8707); empty for tokens from
    /// before resource indicators.
    pub audience: Vec<String>,
    /// When the token expires (seconds since the epoch).
    pub expires_at: u64,
    /// The props sign-in stored with the grant, decrypted.
    pub props: serde_json::Value,
}

/// Why a request did not get through; [`challenge`] turns it into the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// No `Authorization: Bearer` at all: a bare challenge, no error code.
    Missing,
    /// A token was sent but is not good here: 401 `invalid_token` with the
    /// description (sent to the client: generic, no secrets) and the internal
    /// reason (logs only).
    Invalid(Cow<'static, str>, Reason),
    /// A token good here but short of scopes: 403 `insufficient_scope`
    /// naming `scopes`, everything the client should ask for (empty: the
    /// resource's required scopes). Answered by a [`crate::ExternalTokens`]
    /// hook; handlers refusing an operation use [`step_up_challenge`].
    InsufficientScope {
        /// The scopes to ask for.
        scopes: Vec<String>,
        /// `error_description`, sent to the client.
        description: Cow<'static, str>,
        /// Why, for the logs only.
        reason: Reason,
    },
    /// The store or the validator failed, or the resource server is
    /// misconfigured; not the client's fault: 503, with the reason (logs only).
    Unavailable(Reason),
}

/// What a client is told about a token that is not one of ours, unknown,
/// expired or revoked: the same words whichever check failed.
pub const UNKNOWN_TOKEN: &str = "The access token is invalid, expired or revoked";
/// What a client is told about a token for another resource.
pub const WRONG_AUDIENCE: &str = "The access token's audience does not match this resource";

impl BearerError {
    /// 401 `invalid_token` saying `description`, refused for `reason`.
    pub fn invalid(description: impl Into<Cow<'static, str>>, reason: Reason) -> Self {
        BearerError::Invalid(description.into(), reason)
    }

    /// 401 `invalid_token` with the generic [`UNKNOWN_TOKEN`] words, for the
    /// `bearer` check that failed.
    pub fn unknown(check: &'static str) -> Self {
        BearerError::Invalid(UNKNOWN_TOKEN.into(), Reason::new("bearer", check))
    }

    /// 401 `invalid_token`: the token's audience is another resource.
    pub fn wrong_audience() -> Self {
        BearerError::Invalid(WRONG_AUDIENCE.into(), Reason::new("bearer", "audience_mismatch"))
    }

    /// 403 `insufficient_scope` naming `scopes` (see [`BearerError::InsufficientScope`]).
    pub fn insufficient_scope(
        scopes: impl IntoIterator<Item = impl Into<String>>,
        description: impl Into<Cow<'static, str>>,
        reason: Reason,
    ) -> Self {
        BearerError::InsufficientScope {
            scopes: scopes.into_iter().map(Into::into).collect(),
            description: description.into(),
            reason,
        }
    }

    /// Which check refused the request, for the logs (never sent).
    pub fn reason(&self) -> Reason {
        match self {
            BearerError::Missing => Reason::new("bearer", "missing"),
            BearerError::Invalid(_, r) | BearerError::InsufficientScope { reason: r, .. } => *r,
            BearerError::Unavailable(r) => *r,
        }
    }
}

/// Text safe inside a quoted `WWW-Authenticate` parameter.
fn quotable(text: &str) -> String {
    text.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect()
}

/// `https://host/.well-known/oauth-protected-resource<path>` for a protected request.
/// Below a registered resource's path or alias (`/sse/message`), that path's
/// metadata is named: clients check that its `resource` is the URL they
/// connected to.
pub fn resource_metadata_url(config: &super::Config, url: &Url) -> String {
    let path = url.path();
    let origin = url.origin().ascii_serialization();
    let suffix = match config.resource_at(&origin, url).and_then(|r| r.prefix_of(path)) {
        // A resource at the origin's root is described by the bare document (RFC 9728 §3.1).
        Some(p) if p == "/" => String::new(),
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
    let mut res = crate::error::json_response(status, &body);
    if let Some(v) = challenge {
        res.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    res
}

/// The answer for a request that did not authenticate: 401 with the Bearer
/// challenge, 403 `insufficient_scope` ([`step_up_challenge`]) or 503;
/// `metadata_url` names the resource's metadata (see
/// [`resource_metadata_url`]), `scope` is what the resource needs. The
/// response carries [`BearerError::reason`] (see [`Reason::of`]).
pub fn challenge(metadata_url: &str, err: &BearerError, scope: &[String]) -> Response<Vec<u8>> {
    let mut res = match err {
        BearerError::Missing => refusal(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "unauthorized", "error_description": "Missing bearer token"}),
            bearer_header(metadata_url, scope, ""),
        ),
        BearerError::Invalid(why, _) => {
            let why = quotable(why);
            refusal(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "invalid_token", "error_description": why}),
                bearer_header(metadata_url, scope, &format!(", error=\"invalid_token\", error_description=\"{why}\"")),
            )
        }
        BearerError::InsufficientScope { scopes, description, .. } => {
            let mut needed: Vec<String> = Vec::new();
            for s in if scopes.is_empty() { scope } else { scopes } {
                if !needed.contains(s) {
                    needed.push(s.clone());
                }
            }
            step_up_challenge(metadata_url, &needed, description)
        }
        BearerError::Unavailable(_) => refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "temporarily_unavailable", "error_description": "Token validation is unavailable; retry"}),
            None,
        ),
    };
    err.reason().attach(&mut res);
    res
}

/// The 403 step-up challenge (RFC 6750 §3.1, MCP 2025-11-25 "Runtime
/// Insufficient Scope Errors") for a handler refusing an operation to a valid
/// token that lacks scopes:
/// `WWW-Authenticate: Bearer realm="OAuth", resource_metadata="…", scope="…",
/// error="insufficient_scope", error_description="…"` and the same error as
/// JSON. `scopes` is everything the client should ask for, its current scopes
/// and the missing ones together, so a re-authorization keeps what it had
/// (`offline_access` is never named). `metadata_url` is the one the 401
/// challenge named ([`resource_metadata_url`], or
/// `Provider::insufficient_scope` / `ResourceServer::insufficient_scope`,
/// which know it). Quotes, backslashes and control characters are dropped
/// from `description`. The caller adds CORS headers
/// ([`crate::cors::apply`]) as for any other answer.
///
/// ```
/// use oauth_provider::bearer::step_up_challenge;
/// use oauth_provider::error::Reason;
///
/// let prm = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
/// let granted = vec!["todo:read".to_string()];
/// // The operation needs todo:write too: ask for both.
/// let needed: Vec<String> = granted.iter().cloned().chain(["todo:write".to_string()]).collect();
/// let res = step_up_challenge(prm, &needed, "Writing needs todo:write");
/// assert_eq!(res.status(), 403);
/// assert_eq!(
///     res.headers()["www-authenticate"],
///     "Bearer realm=\"OAuth\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", \
///      scope=\"todo:read todo:write\", error=\"insufficient_scope\", error_description=\"Writing needs todo:write\""
/// );
/// assert_eq!(Reason::of(&res), Some(Reason::new("bearer", "insufficient_scope")));
/// ```
pub fn step_up_challenge(metadata_url: &str, scopes: &[String], description: &str) -> Response<Vec<u8>> {
    let safe = quotable(description);
    let mut res = refusal(
        StatusCode::FORBIDDEN,
        serde_json::json!({"error": "insufficient_scope", "error_description": safe}),
        bearer_header(metadata_url, scopes, &format!(", error=\"insufficient_scope\", error_description=\"{safe}\"")),
    );
    Reason::new("bearer", "insufficient_scope").attach(&mut res);
    res
}

/// Whether an audience list lets a token be used at `url` (any entry suffices).
pub(crate) fn audience_ok(config: &super::Config, audience: Option<&Resource>, url: &url::Url) -> bool {
    match audience {
        None => config.is_protected_path(url.path()),
        Some(a) => a.to_list().iter().any(|aud| super::resource::audience_allows(config, aud, url)),
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
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
        if token_str::parse(token).is_none() {
            // Not one of ours by its shape: the application's hook may know it.
            // Ours (even expired or revoked) never go there.
            if let Some(hook) = self.external_tokens {
                return self.resolve_external(hook, token, url).await;
            }
        }
        self.validate_access_token(token, |aud| audience_ok(self.config, aud, url)).await
    }

    /// Runs the application's hook on a token that is not ours; what it
    /// accepts must name a resource served at `url` as its audience.
    async fn resolve_external(
        &self,
        hook: &dyn crate::hooks::ExternalTokens,
        token: &str,
        url: &Url,
    ) -> Result<AuthContext, BearerError> {
        let external = |check| BearerError::Invalid(UNKNOWN_TOKEN.into(), Reason::new("external_token", check));
        let ctx = hook.resolve(token, url).await?.ok_or_else(|| external("not_recognized"))?;
        if !ctx.audience.iter().any(|aud| super::resource::audience_allows(self.config, aud, url)) {
            return Err(BearerError::Invalid(
                WRONG_AUDIENCE.into(),
                Reason::new("external_token", "audience_mismatch"),
            ));
        }
        Ok(ctx)
    }

    /// Validates an access token whose audience `audience_fits` accepts.
    pub(crate) async fn validate_access_token(
        &self,
        token: &str,
        audience_fits: impl Fn(Option<&Resource>) -> bool,
    ) -> Result<AuthContext, BearerError> {
        let unknown = BearerError::unknown;
        let parts = token_str::parse(token).ok_or_else(|| unknown("malformed"))?;
        let hash = token_str::hash(token);
        if let Some((ctx, audience)) = self.token_cache.and_then(|c| c.get(&hash, self.now)) {
            // Fresh and never past the token's expiry (TokenCache::get); the audience is this request's.
            return if audience_fits(audience.as_ref()) { Ok(ctx) } else { Err(BearerError::wrong_audience()) };
        }
        let raw = self
            .store
            .get(&token_key(parts.user_id, parts.grant_id, &hash))
            .await
            .map_err(|_| BearerError::Unavailable(Reason::STORAGE_UNAVAILABLE))?
            .ok_or_else(|| unknown("token_not_found"))?;
        let record: AccessToken = serde_json::from_str(&raw).map_err(|_| unknown("record_unreadable"))?;
        if !constant_time_eq(&record.id, &hash) {
            return Err(unknown("token_mismatch"));
        }
        if record.expires_at <= self.now {
            return Err(unknown("token_expired"));
        }
        if !audience_fits(record.audience.as_ref()) {
            return Err(BearerError::wrong_audience());
        }
        let key = seal::unwrap_key(&record.wrapped_encryption_key, token).map_err(|_| unknown("key_unwrap_failed"))?;
        let props =
            seal::decrypt_props(&key, &record.grant.encrypted_props).map_err(|_| unknown("props_unreadable"))?;
        let scopes = record.scope.unwrap_or(record.grant.scope);
        let ctx = AuthContext {
            user_id: record.user_id,
            grant_id: record.grant_id,
            client_id: record.grant.client_id,
            scopes,
            audience: record.audience.as_ref().map(|a| a.to_list()).unwrap_or_default(),
            expires_at: record.expires_at,
            props,
        };
        if let Some(cache) = self.token_cache {
            cache.put(&hash, &ctx, record.audience.as_ref(), self.now);
        }
        Ok(ctx)
    }
}
