//! OAuth error responses (RFC 6749 §5.2): JSON `{error, error_description}`,
//! never cached, with the status each error calls for, and the internal
//! [`Reason`] of every refusal.
//!
//! The wire answer stays generic on purpose (a client learns `invalid_grant`,
//! not which of a dozen checks failed); the reason names the exact check for
//! logs and metrics. Every response built from an [`OAuthError`] carries its
//! reason in the response's extensions, which are never sent: read it back
//! with [`Reason::of`].
//!
//! ```
//! use oauth_provider::error::{OAuthError, Reason};
//!
//! const PKCE_MISMATCH: Reason = Reason::new("authorization_code", "pkce_mismatch");
//! let res = OAuthError::invalid_grant("PKCE verification failed").because(PKCE_MISMATCH).into_response();
//! assert_eq!(res.status(), 400);
//! assert_eq!(Reason::of(&res), Some(PKCE_MISMATCH));
//! assert_eq!(PKCE_MISMATCH.to_string(), "authorization_code.pkce_mismatch");
//! ```

use crate::store::StoreError;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

/// Why a request was refused, for the logs: the subsystem (`category`) and
/// the check that failed (`check`), both stable `snake_case` slugs (treat new
/// ones like new enum members). Never sent to the client, and never holding a
/// secret, a token or a user-supplied value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reason {
    /// The subsystem: `authorize`, `client_auth`, `token`, `authorization_code`,
    /// `refresh_token`, `register`, `revoke`, `bearer`, `external_token`, `request`, `storage`…
    pub category: &'static str,
    /// The check that failed, e.g. `pkce_mismatch`.
    pub check: &'static str,
}

impl Reason {
    /// A reason from its two slugs (both `snake_case`, no user data).
    pub const fn new(category: &'static str, check: &'static str) -> Self {
        Self { category, check }
    }

    /// What an error built without a reason carries. The server's own
    /// refusals never do (the tests check each one); it marks an error built
    /// by other code that did not say why.
    pub const UNSPECIFIED: Reason = Reason::new("oauth", "unspecified");
    /// The store refused for too many requests.
    pub const STORAGE_RATE_LIMITED: Reason = Reason::new("storage", "rate_limited");
    /// The store failed.
    pub const STORAGE_UNAVAILABLE: Reason = Reason::new("storage", "unavailable");

    /// The reason a response built by this crate was refused for (`None` for
    /// a success, or a response built elsewhere). It travels in the response's
    /// extensions, never on the wire.
    pub fn of<B>(res: &Response<B>) -> Option<Reason> {
        res.extensions().get::<Reason>().copied()
    }

    /// Attaches the reason to `res` (see [`Reason::of`]).
    pub fn attach<B>(self, res: &mut Response<B>) {
        res.extensions_mut().insert(self);
    }
}

impl std::fmt::Display for Reason {
    /// `category.check`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.category, self.check)
    }
}

/// An error the token, registration or revocation endpoint answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The HTTP status of the answer.
    pub status: StatusCode,
    /// The OAuth error code (`error`), e.g. `invalid_grant`.
    pub error: &'static str,
    /// What the client is told (`error_description`).
    pub description: String,
    /// `WWW-Authenticate: Basic` (client tried HTTP Basic and failed).
    pub basic_challenge: bool,
    /// `Retry-After` seconds (the store is rate limiting us).
    pub retry_after: Option<u32>,
    /// Why, for the logs only ([`Reason::UNSPECIFIED`] unless set with [`Self::because`]).
    pub reason: Reason,
}

impl OAuthError {
    /// An error with `status`, code `error` and `description`, no reason yet.
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
            reason: Reason::UNSPECIFIED,
        }
    }
    /// The same error, with the internal reason it is refused for.
    #[must_use]
    pub fn because(self, reason: Reason) -> Self {
        Self { reason, ..self }
    }
    /// 400 `invalid_request`: the request is malformed.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    /// 400 `invalid_grant`: the code or refresh token is not (or no longer) good.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }
    /// 400 `invalid_target` (RFC 8707): a `resource` this server does not serve.
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", d)
    }
    /// 400 `invalid_scope`: scopes the grant does not hold.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }
    /// 400 `unauthorized_client`: the client may not use this grant type.
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d)
    }
    /// 400 `invalid_client_metadata` (RFC 7591): a registration is refused.
    pub fn invalid_client_metadata(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_client_metadata", d)
    }
    /// Client authentication failed: always 401 and the same words, so the
    /// answer does not tell which part was wrong.
    pub fn invalid_client(basic_tried: bool) -> Self {
        Self {
            basic_challenge: basic_tried,
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed")
        }
    }
    /// A failure worth retrying soon (503, `Retry-After: 5`).
    pub fn temporarily_unavailable(d: impl Into<String>) -> Self {
        Self { retry_after: Some(5), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", d) }
    }
    /// 405 for a method the endpoint does not take.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "Method not allowed")
            .because(Reason::new("request", "method_not_allowed"))
    }

    /// The JSON answer (`{error, error_description}`, `no-store`), with the
    /// reason attached (see [`Reason::of`]).
    pub fn into_response(self) -> Response<Vec<u8>> {
        let body = serde_json::json!({ "error": self.error, "error_description": self.description });
        let mut res = json_response(self.status, &body);
        let h = res.headers_mut();
        if self.basic_challenge {
            h.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"OAuth\""));
        }
        if let Some(s) = self.retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from(s));
        }
        self.reason.attach(&mut res);
        res
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::RateLimited => Self {
                retry_after: Some(30),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable", "Too many requests; retry later")
                    .because(Reason::STORAGE_RATE_LIMITED)
            },
            StoreError::Unavailable(_) => Self {
                retry_after: Some(5),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "Storage is unavailable; retry later",
                )
                .because(Reason::STORAGE_UNAVAILABLE)
            },
        }
    }
}

/// A JSON response that is never cached (tokens, errors, registrations).
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Vec<u8>> {
    let mut res = Response::new(body.to_string().into_bytes());
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    res
}
