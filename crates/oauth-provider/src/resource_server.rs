//! The resource server role: one protected resource's RFC 9728 metadata, its
//! 401 challenge and 403 step-up challenge, and token validation for exactly
//! that resource, through a [`TokenValidator`].
//!
//! Only the authorization server can validate one of its tokens (the token
//! record is in its KV and the props are encrypted under a key the token
//! itself wraps), so a resource server asks it:
//!
//! - in the same worker, the [`Provider`] is the validator
//!   ([`Provider::validate_token`]);
//! - in another worker, over a service binding to the authorization server's
//!   internal validation endpoint ([`RemoteValidator`], see below).
//!
//! # The internal validation endpoint
//!
//! `POST <Config::endpoints.validate>` (default `/internal/oauth/validate`)
//! with `Authorization: Bearer <validation secret>` and the JSON body
//! `{"resource": "<canonical resource URL>", "token": "<access token>"}`.
//! It exists only when [`Config::validation_secret`] is set
//! (`OAUTH_VALIDATION_SECRET`, at least 32 characters). It answers `404`
//! (as if it did not exist) to any request that
//!
//! - carries a `CF-Connecting-IP` header: Cloudflare's edge sets it on every
//!   request arriving from the internet (a client cannot remove it), and
//!   `wrangler dev` sets it on every request to its port; a service-binding
//!   request carries only the headers its caller set, so it has none.
//! - lacks the shared secret (compared in constant time, as hashes).
//!
//! A resource registered by absolute URL is matched as it is; one registered
//! by path on the origin of the validation request's URL (so a binding
//! request to `https://<the AS's public host>/…` may ask about those too).
//!
//! Either check alone would keep the endpoint off the internet; both are
//! required, so neither a misrouted public request nor another worker of the
//! account without the secret can use it. The authorization server never
//! answers for a token issued for another resource: the caller names a
//! registered resource the token's audience belongs to.
//!
//! The answer's `props` are what the application's
//! [`ResourceProps`](crate::ResourceProps) hook gives that resource of the
//! grant's decrypted props (`null` without the hook): a resource gets what
//! it needs, not what the grant holds for others (an upstream token for
//! another API).
//!
//! Answers: `200 {"active": true, "user_id", "grant_id", "client_id",
//! "scope", "aud", "exp", "props"}`; `200 {"active": false, "error":
//! "invalid_token", "error_description"}` for a token that is not good for
//! that resource (unknown, expired, revoked, another audience); `400` for a
//! malformed request; `503` when the store fails or the resource is not
//! registered (a configuration error, as in workers-oauth-provider 1.2).

use crate::bearer::{self, AuthContext, BearerError};
use crate::config::{Config, ConfigError};
use crate::crypto::{constant_time_eq, sha256};
use crate::error::{json_response, OAuthError, Reason};
use crate::resource::{self, ProtectedResource};
use crate::{cors, metadata, Provider};
use async_trait::async_trait;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use url::Url;

/// Largest validation request body accepted.
const MAX_VALIDATION_BODY: usize = 8 * 1024;

/// Validates an access token for one resource (its canonical URL).
#[async_trait(?Send)]
pub trait TokenValidator {
    /// The grant behind `token`, when the token is good for `resource`:
    /// [`BearerError::Invalid`] when not, [`BearerError::Unavailable`] when
    /// the answer cannot be had (the resource server answers 503).
    async fn validate_token(&self, resource: &str, token: &str) -> Result<AuthContext, BearerError>;
}

/// One protected resource as its server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceServer {
    /// The resource, its `resource` an absolute URL.
    entry: ProtectedResource,
    authorization_servers: Vec<String>,
}

impl ResourceServer {
    /// The resource `resource` (its canonical absolute URL) whose tokens
    /// `authorization_server` (an issuer URL) issues.
    pub fn new(resource: &str, authorization_server: &str) -> Result<Self, ConfigError> {
        if ProtectedResource::new(resource).is_local() {
            return Err(ConfigError(format!("resource '{resource}' must be an absolute URL")));
        }
        let c = Config { resources: vec![ProtectedResource::new(resource)], ..Config::default() };
        c.validate_resources()?;
        let issuer = Url::parse(authorization_server)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.fragment().is_none() && u.query().is_none())
            .ok_or_else(|| {
                ConfigError(format!("authorization server '{authorization_server}' must be an http(s) URL"))
            })?;
        let mut entry = ProtectedResource::new(resource);
        entry.name = resource.to_owned();
        Ok(Self { entry, authorization_servers: vec![issuer.as_str().trim_end_matches('/').to_owned()] })
    }

    /// Adds an alias path on the resource's origin where its tokens are good too.
    pub fn with_alias(mut self, path: impl Into<String>) -> Self {
        self.entry.aliases.push(path.into());
        self
    }

    /// Scopes any access needs (metadata `scopes_supported`, the 401 `scope`).
    pub fn with_required_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.entry.required_scopes = scopes.into_iter().map(Into::into).filter(|s| s != "offline_access").collect();
        crate::config::dedup_in_place(&mut self.entry.required_scopes);
        self
    }

    /// The metadata's `resource_name`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.entry.name = name.into();
        self
    }

    /// The resource server of a registered resource, hosted by the
    /// authorization server's own worker at `origin`.
    pub fn hosted(entry: &ProtectedResource, origin: &str) -> Self {
        Self {
            entry: ProtectedResource { resource: entry.url(origin), ..entry.clone() },
            authorization_servers: vec![origin.to_owned()],
        }
    }

    /// The canonical resource URL (the token audience it accepts).
    pub fn resource(&self) -> &str {
        &self.entry.resource
    }

    /// The scopes any access needs.
    pub fn required_scopes(&self) -> &[String] {
        &self.entry.required_scopes
    }

    /// `url` is the resource, an alias, or below one of them.
    pub fn covers(&self, url: &Url) -> bool {
        self.entry.covers("", url)
    }

    /// The metadata URL a challenge at `url` names: that of the resource
    /// path or alias `url` is at or below.
    pub fn metadata_url(&self, url: &Url) -> String {
        let origin = url.origin().ascii_serialization();
        let suffix = self.entry.prefix_of(url.path()).unwrap_or_else(|| self.entry.path());
        let suffix = if suffix == "/" { String::new() } else { suffix };
        format!("{origin}{}{suffix}", metadata::PRM_PATH)
    }

    /// The RFC 9728 document at `url` (`/.well-known/oauth-protected-resource<path>`),
    /// when it names this resource or one of its aliases (or a path below them).
    pub fn metadata(&self, url: &Url) -> Option<Value> {
        let suffix = url.path().strip_prefix(metadata::PRM_PATH)?;
        if url.query().is_some() || !(suffix.is_empty() || suffix.starts_with('/')) {
            return None;
        }
        let origin = url.origin().ascii_serialization();
        let resource = if suffix.is_empty() || suffix == "/" {
            // The bare document describes the origin: only a resource that is the origin.
            (self.entry.path() == "/").then(|| self.entry.resource.clone())?
        } else {
            let named = Url::parse(&format!("{origin}{suffix}")).ok()?;
            if named.path() != suffix || !self.covers(&named) {
                return None;
            }
            named.to_string()
        };
        Some(metadata::resource_document(
            &resource,
            &self.authorization_servers,
            &self.entry.required_scopes,
            &self.entry.name,
        ))
    }

    /// Answers a request for this resource's metadata (GET/HEAD/OPTIONS,
    /// with CORS); `None` when `req` is not one.
    pub fn metadata_response(&self, req: &Request<Vec<u8>>) -> Option<Response<Vec<u8>>> {
        let url = crate::router::request_url(req)?;
        if !resource::path_within(url.path(), metadata::PRM_PATH) {
            return None;
        }
        let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
        if req.method() == Method::OPTIONS {
            return Some(cors::preflight(origin));
        }
        let mut res = metadata::document_response(req.method(), self.metadata(&url));
        cors::apply(origin, res.headers_mut());
        Some(res)
    }

    /// The 401 answer (503 when validation was unavailable) at `url`, naming
    /// this resource's metadata and required scopes.
    pub fn challenge(&self, url: &Url, err: &BearerError) -> Response<Vec<u8>> {
        bearer::challenge(&self.metadata_url(url), err, &self.entry.required_scopes)
    }

    /// The 403 step-up answer for a valid token lacking scopes: `scopes` is
    /// everything the operation needs (the token's own scopes included, so a
    /// re-authorization keeps them).
    pub fn insufficient_scope(&self, url: &Url, scopes: &[String], description: &str) -> Response<Vec<u8>> {
        bearer::step_up_challenge(&self.metadata_url(url), scopes, description)
    }

    /// Validates the bearer token of a request at `url` with `validator`:
    /// the token must be for this resource and good at `url` (its audience
    /// covers `url`, or is this resource and `url` one of its aliases), and
    /// unexpired at `now` (seconds since the epoch).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        url: &Url,
        validator: &dyn TokenValidator,
        now: u64,
    ) -> Result<AuthContext, BearerError> {
        let token = bearer::bearer_token(headers).ok_or(BearerError::Missing)?;
        if !self.covers(url) {
            return Err(BearerError::wrong_audience());
        }
        let ctx = validator.validate_token(&self.entry.resource, token).await?;
        if ctx.expires_at <= now {
            return Err(BearerError::unknown("token_expired"));
        }
        let fits = |aud: &String| {
            let aliases: &[String] =
                if Url::parse(aud).ok() == Url::parse(&self.entry.resource).ok() { &self.entry.aliases } else { &[] };
            resource::audience_allows_at(aud, aliases, url)
        };
        // A token without audience (issued before resources were recorded) is
        // vouched for by the authorization server, which knows the resource.
        if !ctx.audience.is_empty() && !ctx.audience.iter().any(fits) {
            return Err(BearerError::wrong_audience());
        }
        Ok(ctx)
    }

    /// [`Self::authenticate`] for a whole request; the `Err` is the complete
    /// answer (challenge with CORS headers).
    pub async fn authenticate_request(
        &self,
        req: &Request<Vec<u8>>,
        validator: &dyn TokenValidator,
        now: u64,
    ) -> Result<AuthContext, Response<Vec<u8>>> {
        let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
        let Some(url) = crate::router::request_url(req) else {
            return Err(OAuthError::invalid_request("Bad request URL")
                .because(Reason::new("request", "bad_url"))
                .into_response());
        };
        self.authenticate(req.headers(), &url, validator, now).await.map_err(|e| {
            let mut res = self.challenge(&url, &e);
            cors::apply(origin, res.headers_mut());
            res
        })
    }
}

#[async_trait(?Send)]
impl TokenValidator for Provider<'_> {
    async fn validate_token(&self, resource: &str, token: &str) -> Result<AuthContext, BearerError> {
        Provider::validate_token(self, resource, token).await
    }
}

impl Provider<'_> {
    /// The resource server of the registered resource serving `url` (on
    /// this server's origin, the origin of `url`).
    pub fn resource_server_at(&self, url: &Url) -> Option<ResourceServer> {
        let origin = url.origin().ascii_serialization();
        self.config.resource_at(&origin, url).map(|r| ResourceServer::hosted(r, &origin))
    }

    /// The 401 answer for a protected request at `url`: the challenge of the
    /// resource serving it (its metadata and required scopes).
    pub fn challenge(&self, url: &Url, err: &BearerError) -> Response<Vec<u8>> {
        let scopes = self.config.required_scopes_at(&url.origin().ascii_serialization(), url);
        bearer::challenge(&bearer::resource_metadata_url(self.config, url), err, &scopes)
    }

    /// The 403 step-up answer at `url` (see [`ResourceServer::insufficient_scope`]).
    pub fn insufficient_scope(&self, url: &Url, scopes: &[String], description: &str) -> Response<Vec<u8>> {
        bearer::step_up_challenge(&bearer::resource_metadata_url(self.config, url), scopes, description)
    }

    /// Validates `token` for the registered resource `resource` (its
    /// canonical URL): the token's audience must belong to that resource (be
    /// it, its origin, or at or below it or an alias). What a resource server
    /// in this worker calls; a resource registered by path is matched on the
    /// origin `resource` names. An unregistered resource is
    /// [`BearerError::Unavailable`]: a misconfigured resource server, not a
    /// bad token.
    pub async fn validate_token(&self, resource: &str, token: &str) -> Result<AuthContext, BearerError> {
        let origin = Url::parse(resource).map_err(|_| not_registered())?.origin().ascii_serialization();
        self.validate_token_on(&origin, resource, token).await
    }

    /// [`Self::validate_token`] with resources registered by path matched on
    /// `own_origin` only (the internal endpoint: the origin of its request URL).
    pub async fn validate_token_on(
        &self,
        own_origin: &str,
        resource: &str,
        token: &str,
    ) -> Result<AuthContext, BearerError> {
        let entry = self.config.find_resource(own_origin, resource).ok_or_else(not_registered)?;
        self.validate_access_token(token, |aud| match aud {
            // Issued before audiences were recorded: only this server's own resources.
            None => entry.is_local(),
            Some(a) => a.to_list().iter().any(|x| resource::audience_belongs_to(x, entry, own_origin)),
        })
        .await
    }

    /// The internal validation endpoint (see the [module](self) docs).
    pub(crate) async fn validation_endpoint(&self, req: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        // One answer for every refusal; the logs tell them apart.
        let not_found = |check| {
            OAuthError::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint")
                .because(Reason::new("validation", check))
                .into_response()
        };
        let Some(secret) = self.config.validation_secret.as_ref() else { return not_found("disabled") };
        if from_public_edge(req.headers()) {
            return not_found("public_request");
        }
        let presented = bearer::bearer_token(req.headers());
        if !presented.is_some_and(|t| constant_time_eq(sha256(t), sha256(secret.expose()))) {
            return not_found("secret_mismatch");
        }
        if req.method() != Method::POST {
            return OAuthError::method_not_allowed().into_response();
        }
        let body: Option<(String, String)> = (req.body().len() <= MAX_VALIDATION_BODY)
            .then(|| serde_json::from_slice::<Value>(req.body()).ok())
            .flatten()
            .and_then(|v| Some((v.get("resource")?.as_str()?.to_owned(), v.get("token")?.as_str()?.to_owned())));
        let Some((resource, token)) = body else {
            return OAuthError::invalid_request("Expected a JSON body with resource and token")
                .because(Reason::new("validation", "body_malformed"))
                .into_response();
        };
        let own = crate::router::request_url(req).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        let Some(entry) = self.config.find_resource(&own, &resource) else {
            // The operator's to fix (OAUTH_EXTRA_RESOURCES), not the client's; 503 as in 1.2.
            return OAuthError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "This resource is not registered with the authorization server",
            )
            .because(Reason::new("validation", "resource_not_registered"))
            .into_response();
        };
        match self.validate_token_on(&own, &resource, &token).await {
            // The props only as the application allows for this resource.
            Ok(ctx) => json_response(
                StatusCode::OK,
                &json!({
                    "active": true,
                    "user_id": ctx.user_id,
                    "grant_id": ctx.grant_id,
                    "client_id": ctx.client_id,
                    "scope": ctx.scopes.join(" "),
                    "aud": ctx.audience,
                    "exp": ctx.expires_at,
                    "props": self.resource_props.map_or(Value::Null, |h| h.props_for(entry, &ctx.props)),
                }),
            ),
            Err(BearerError::Invalid(why, _)) => json_response(
                StatusCode::OK,
                &json!({"active": false, "error": "invalid_token", "error_description": why}),
            ),
            Err(e) => OAuthError::temporarily_unavailable("Token validation is unavailable; retry")
                .because(e.reason())
                .into_response(),
        }
    }
}

/// A resource server asking about a resource the authorization server does
/// not have registered: its configuration's fault, not the token's.
fn not_registered() -> BearerError {
    BearerError::Unavailable(Reason::new("resource_server", "resource_not_registered"))
}

/// Whether a request came through Cloudflare's edge (or `wrangler dev`'s
/// port): both set `CF-Connecting-IP`, which service-binding requests lack.
pub fn from_public_edge(headers: &HeaderMap) -> bool {
    headers.contains_key("cf-connecting-ip")
}

/// Sends a validation request to the authorization server (over a service
/// binding, in a resource worker).
#[async_trait(?Send)]
pub trait ValidationTransport {
    /// Sends `req` and returns the answer; `Err` (for the logs) when no
    /// answer came back.
    async fn send(&self, req: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, String>;
}

/// A [`TokenValidator`] that asks the authorization server's internal
/// validation endpoint at `url` (any origin the binding accepts, the
/// configured validation path) with the shared `secret`. Build it with
/// [`RemoteValidator::new`], which refuses settings that could never work.
///
/// Its failures are [`BearerError::Unavailable`] (503 to the client) with a
/// reason for the logs saying which side to fix: `validator.unreachable` (the
/// transport failed), `validator.secret_or_path_refused` (the endpoint
/// answered 404: a wrong secret or path, a request with `CF-Connecting-IP`,
/// or no `OAUTH_VALIDATION_SECRET` on the authorization server),
/// `validator.server_unavailable` (503: its store failed or the resource is
/// not registered there), `validator.unexpected_status`,
/// `validator.answer_malformed`.
pub struct RemoteValidator<'a> {
    /// How requests reach the authorization server (a service binding).
    pub transport: &'a dyn ValidationTransport,
    /// The validation endpoint's URL.
    pub url: String,
    /// The secret shared with the authorization server
    /// ([`Config::validation_secret`](crate::Config::validation_secret)).
    pub secret: crate::config::Secret,
}

impl<'a> RemoteValidator<'a> {
    /// The validator of the endpoint at `url` (an absolute `http(s)` URL)
    /// with `secret` (at least [`MIN_ADMIN_TOKEN_LEN`](crate::config::MIN_ADMIN_TOKEN_LEN)
    /// printable ASCII characters, as the authorization server requires, so it can go in a header).
    pub fn new(
        transport: &'a dyn ValidationTransport,
        url: impl Into<String>,
        secret: crate::config::Secret,
    ) -> Result<Self, ConfigError> {
        let url = url.into();
        let parsed = Url::parse(&url).map_err(|_| ConfigError("the validation URL must be an absolute URL".into()))?;
        if !matches!(parsed.scheme(), "https" | "http") || url.parse::<http::Uri>().is_err() {
            return Err(ConfigError("the validation URL must be an http(s) URL".into()));
        }
        let min = crate::config::MIN_ADMIN_TOKEN_LEN;
        if secret.expose().len() < min || HeaderValue::from_str(secret.expose()).is_err() {
            return Err(ConfigError(format!(
                "the validation secret must be at least {min} printable ASCII characters"
            )));
        }
        Ok(Self { transport, url, secret })
    }
}

/// The validation request (see the [module](self) docs).
pub fn validation_request(url: &str, secret: &str, resource: &str, token: &str) -> Request<Vec<u8>> {
    let body = json!({"resource": resource, "token": token}).to_string().into_bytes();
    let mut req = Request::new(body);
    *req.method_mut() = Method::POST;
    *req.uri_mut() = url.parse().unwrap_or_default();
    let h = req.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {secret}")) {
        h.insert(AUTHORIZATION, v);
    }
    req
}

/// A validation that failed on the validator's side (see [`RemoteValidator`]).
fn validator_failed(check: &'static str) -> BearerError {
    BearerError::Unavailable(Reason::new("validator", check))
}

/// Reads the validation endpoint's answer.
pub fn parse_validation_response(res: &Response<Vec<u8>>) -> Result<AuthContext, BearerError> {
    match res.status() {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => return Err(validator_failed("secret_or_path_refused")),
        StatusCode::SERVICE_UNAVAILABLE => return Err(validator_failed("server_unavailable")),
        _ => return Err(validator_failed("unexpected_status")),
    }
    let malformed = || validator_failed("answer_malformed");
    let v: Value = serde_json::from_slice(res.body()).map_err(|_| malformed())?;
    if v["active"] != Value::Bool(true) {
        return Err(BearerError::unknown("validator_refused"));
    }
    let text = |k: &str| v[k].as_str().map(str::to_owned).ok_or_else(malformed);
    Ok(AuthContext {
        user_id: text("user_id")?,
        grant_id: text("grant_id")?,
        client_id: text("client_id")?,
        scopes: v["scope"].as_str().unwrap_or_default().split_whitespace().map(str::to_owned).collect(),
        audience: v["aud"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        expires_at: v["exp"].as_u64().ok_or_else(malformed)?,
        props: v["props"].clone(),
    })
}

#[async_trait(?Send)]
impl TokenValidator for RemoteValidator<'_> {
    async fn validate_token(&self, resource: &str, token: &str) -> Result<AuthContext, BearerError> {
        let req = validation_request(&self.url, self.secret.expose(), resource, token);
        let res = self.transport.send(req).await.map_err(|_| validator_failed("unreachable"))?;
        parse_validation_response(&res)
    }
}
