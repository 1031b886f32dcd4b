//! Which requests the authorization server answers itself, and the CORS
//! wrapping of those answers.

use super::bearer::AuthContext;
use super::error::{OAuthError, Reason};
use super::{cors, metadata, resource, Config, Provider};
use http::{Method, Request, Response, StatusCode};
use url::Url;

/// Endpoints served by [`Provider::handle`]: the token, registration,
/// revocation and admin endpoints at their [configured](Config::endpoints)
/// paths, the internal validation endpoint when it is enabled, and the
/// discovery documents. Not the authorization endpoint, which the
/// application serves (at `config.endpoints.authorize`).
pub fn is_endpoint(config: &Config, path: &str) -> bool {
    let e = &config.endpoints;
    path == e.token
        || path == e.register
        || path == e.revoke
        || resource::path_within(path, &e.admin_clients)
        || (path == e.validate && config.validation_secret.is_some())
        || path == metadata::AS_METADATA_PATH
        || resource::path_within(path, metadata::PRM_PATH)
}

fn origin_header(req: &Request<Vec<u8>>) -> Option<&str> {
    req.headers().get("origin").and_then(|v| v.to_str().ok())
}

/// The request URL (workerd hands the Worker absolute URLs).
pub fn request_url(req: &Request<Vec<u8>>) -> Option<Url> {
    Url::parse(&req.uri().to_string()).ok()
}

impl Provider<'_> {
    /// Answers an authorization server endpoint (see [`is_endpoint`]).
    pub async fn handle(&self, req: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        let path = req.uri().path();
        // Not for browsers: no preflight, no CORS headers.
        if resource::path_within(path, &self.config.endpoints.admin_clients) {
            return self.admin_endpoint(req).await;
        }
        if path == self.config.endpoints.validate && self.config.validation_secret.is_some() {
            return self.validation_endpoint(req).await;
        }
        let origin = origin_header(req);
        if req.method() == Method::OPTIONS {
            return cors::preflight(origin);
        }
        let mut res = match request_url(req) {
            None => OAuthError::invalid_request("Bad request URL")
                .because(Reason::new("request", "bad_url"))
                .into_response(),
            Some(url) => self.route(req, &url).await,
        };
        cors::apply(origin, res.headers_mut());
        res
    }

    async fn route(&self, req: &Request<Vec<u8>>, url: &Url) -> Response<Vec<u8>> {
        let own = url.origin().ascii_serialization();
        let path = url.path();
        let get_only = |doc: Option<serde_json::Value>| metadata::document_response(req.method(), doc);
        let e = &self.config.endpoints;
        if path == e.token {
            self.token_endpoint(req, &own).await
        } else if path == e.register {
            self.registration_endpoint(req).await
        } else if path == e.revoke {
            self.revocation_endpoint(req).await
        } else if path == metadata::AS_METADATA_PATH {
            get_only(Some(metadata::authorization_server(&own, self.config, self.cimd.is_some())))
        } else if let Some(suffix) = path.strip_prefix(metadata::PRM_PATH) {
            get_only(metadata::protected_resource(&own, suffix, self.config))
        } else {
            OAuthError::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint")
                .because(Reason::new("request", "no_such_endpoint"))
                .into_response()
        }
    }

    /// Validates the bearer token of a protected request; the `Err` is the
    /// complete answer (401 challenge with CORS headers) of the resource
    /// serving the request URL.
    pub async fn authenticate_request(&self, req: &Request<Vec<u8>>) -> Result<AuthContext, Response<Vec<u8>>> {
        let Some(url) = request_url(req) else {
            return Err(OAuthError::invalid_request("Bad request URL")
                .because(Reason::new("request", "bad_url"))
                .into_response());
        };
        self.authenticate_request_at(req, &url).await
    }

    /// [`Self::authenticate_request`] for a caller that already parsed the
    /// request URL (`url`), so it is not parsed again.
    pub async fn authenticate_request_at(
        &self,
        req: &Request<Vec<u8>>,
        url: &Url,
    ) -> Result<AuthContext, Response<Vec<u8>>> {
        self.authenticate(req.headers(), url).await.map_err(|e| {
            let mut res = self.challenge(url, &e);
            cors::apply(origin_header(req), res.headers_mut());
            res
        })
    }
}
