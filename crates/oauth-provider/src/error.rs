//! OAuth error responses (RFC 6749 §5.2): JSON `{error, error_description}`,
//! never cached, with the status each error calls for.

use crate::store::StoreError;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

/// An error the token, registration or revocation endpoint answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// `WWW-Authenticate: Basic` (client tried HTTP Basic and failed).
    pub basic_challenge: bool,
    /// `Retry-After` seconds (the store is rate limiting us).
    pub retry_after: Option<u32>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self { status, error, description: description.into(), basic_challenge: false, retry_after: None }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d)
    }
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
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "Method not allowed")
    }

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
        res
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::RateLimited => Self {
                retry_after: Some(30),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable", "Too many requests; retry later")
            },
            StoreError::Unavailable(_) => Self {
                retry_after: Some(5),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "Storage is unavailable; retry later",
                )
            },
        }
    }
}

/// A JSON response that is never cached (tokens, errors, registrations).
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Vec<u8>> {
    let mut res = Response::new(body.to_string().into_bytes());
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    res
}
