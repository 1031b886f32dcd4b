//! Pre-registered clients, created by the operator rather than by the client
//! itself: [`Provider::register_client_admin`] for code embedding the server,
//! and the admin endpoint `POST /admin/clients` for operators of this worker.
//!
//! The endpoint exists only when [`Config::admin_token`](super::Config) is set
//! (`OAUTH_ADMIN_TOKEN`, a secret of at least 32 characters); it takes the
//! token as `Authorization: Bearer …`, compared in constant time, and never
//! logs or echoes it. It has no CORS headers: it is not for browsers.

use super::error::{json_response, OAuthError, Reason};
use super::records::ClientInfo;
use super::register::{registration_body, registration_document};
use super::Provider;
use crate::crypto::{constant_time_eq, sha256};
use http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use serde_json::Value;

impl Provider<'_> {
    /// Registers a client on the operator's behalf, whether or not dynamic
    /// registration is open. `metadata` is an RFC 7591 registration document,
    /// checked as `/register` checks it (and refused the same way when it
    /// names a public client while those are off). The client never expires
    /// and its auth method is fixed as registered (HTTP Basic and
    /// `client_secret_post` are not interchangeable). Returns the stored
    /// client (the secret only as its hash) and the secret itself, for a
    /// confidential client — the only time it is ever available.
    pub async fn register_client_admin(&self, metadata: &Value) -> Result<(ClientInfo, Option<String>), OAuthError> {
        let mut doc = metadata.clone();
        if let Some(obj) = doc.as_object_mut() {
            // Stated explicitly for the stored record, whatever the caller sent.
            let method = obj.get("token_endpoint_auth_method").cloned();
            obj.insert("token_endpoint_auth_method".into(), method.unwrap_or("client_secret_basic".into()));
        }
        self.create_client(&doc, None).await
    }

    /// `POST /admin/clients` with `Authorization: Bearer <OAUTH_ADMIN_TOKEN>`
    /// and a registration document: 201 with the RFC 7591 answer, secret
    /// included. Unset token: 404, as if there were no such endpoint.
    pub(crate) async fn admin_endpoint(&self, req: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        self.admin_inner(req).await.unwrap_or_else(OAuthError::into_response)
    }

    async fn admin_inner(&self, req: &Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OAuthError> {
        let Some(expected) = self.config.admin_token.as_ref() else {
            return Err(OAuthError::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint")
                .because(Reason::new("admin", "disabled")));
        };
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        // Hashes compared, so neither the length nor a prefix of the token leaks through timing.
        let ok = presented.is_some_and(|t| constant_time_eq(sha256(t), sha256(expected.expose())));
        if !ok {
            let mut res = OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_token", "Admin token required")
                .because(Reason::new("admin", "token_mismatch"))
                .into_response();
            res.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"admin\""));
            return Ok(res);
        }
        let doc = registration_document(req)?;
        let (client, secret) = self.register_client_admin(&doc).await?;
        Ok(json_response(StatusCode::CREATED, &registration_body(&client, secret.as_deref(), None)))
    }
}
