//! The slice of the MCP authorization server (`crate::oauth`) that sign-in
//! uses. The Worker passes `oauth::Provider` (with the PingOne grant hooks),
//! and so do the native sign-in tests: it runs on the in-memory store.

use crate::store::StoreError;
use async_trait::async_trait;
use url::Url;

pub use crate::oauth::grants::GrantSummary;
pub use crate::oauth::{AuthRequest, AuthorizeError, ClientInfo, CompleteAuthorization, ErrorRedirect};

#[async_trait(?Send)]
pub trait AuthServer {
    /// Validates the MCP client's authorization request (`url` = full /authorize URL).
    async fn parse_auth_request(&self, url: &Url) -> Result<AuthRequest, AuthorizeError>;
    async fn lookup_client(&self, client_id: &str) -> Result<Option<ClientInfo>, StoreError>;
    /// Stores the grant and returns the redirect (with `code`, `state`, `iss`) to the client.
    async fn complete_authorization(&self, origin: &str, c: CompleteAuthorization) -> Result<String, AuthorizeError>;
    /// The error response for the client (`error` with `state` and `iss`);
    /// [`ErrorRedirect::to_url`] renders it.
    fn error_redirect(&self, origin: &str, req: &AuthRequest, error: &str, description: &str) -> ErrorRedirect;
    /// The path the authorization endpoint is served at (the authorization
    /// server's configured `authorize` endpoint).
    fn authorize_path(&self) -> &str {
        "/authorize"
    }
    /// The grants `user_id` holds (no secrets), for the connections page.
    async fn list_user_grants(&self, user_id: &str) -> Result<Vec<GrantSummary>, StoreError>;
    /// Ends one grant of `user_id`: its record, its tokens, and the grant-end
    /// hook (PingOne refresh-token revocation).
    async fn revoke_grant(&self, user_id: &str, grant_id: &str) -> Result<(), StoreError>;
    /// How long an MCP access token lives (how often a client in use refreshes).
    fn access_token_ttl(&self) -> u64;
}

#[async_trait(?Send)]
impl AuthServer for crate::oauth::Provider<'_> {
    fn authorize_path(&self) -> &str {
        &self.config.endpoints.authorize
    }
    async fn parse_auth_request(&self, url: &Url) -> Result<AuthRequest, AuthorizeError> {
        crate::oauth::Provider::parse_auth_request(self, url).await
    }
    async fn lookup_client(&self, client_id: &str) -> Result<Option<ClientInfo>, StoreError> {
        crate::oauth::Provider::lookup_client(self, client_id).await
    }
    async fn complete_authorization(&self, origin: &str, c: CompleteAuthorization) -> Result<String, AuthorizeError> {
        crate::oauth::Provider::complete_authorization(self, origin, c).await
    }
    fn error_redirect(&self, origin: &str, req: &AuthRequest, error: &str, description: &str) -> ErrorRedirect {
        crate::oauth::Provider::error_redirect(self, origin, req, error, description)
    }
    async fn list_user_grants(&self, user_id: &str) -> Result<Vec<GrantSummary>, StoreError> {
        crate::oauth::Provider::list_user_grants(self, user_id).await
    }
    async fn revoke_grant(&self, user_id: &str, grant_id: &str) -> Result<(), StoreError> {
        crate::oauth::Provider::revoke_grant(self, user_id, grant_id).await
    }
    fn access_token_ttl(&self) -> u64 {
        self.config.access_token_ttl
    }
}

/// The `/authorize` URL that `req` was parsed from, so a stored request can be
/// validated again from scratch (the client may have been deleted or changed).
pub fn authorize_url(origin: &str, req: &AuthRequest) -> Option<Url> {
    let mut url = Url::parse(&format!("{origin}/authorize")).ok()?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", &req.response_type);
        q.append_pair("client_id", &req.client_id);
        q.append_pair("redirect_uri", &req.redirect_uri);
        if !req.scope.is_empty() {
            q.append_pair("scope", &req.scope.join(" "));
        }
        if !req.state.is_empty() {
            q.append_pair("state", &req.state);
        }
        if let Some(c) = &req.code_challenge {
            q.append_pair("code_challenge", c);
        }
        if let Some(m) = &req.code_challenge_method {
            q.append_pair("code_challenge_method", m);
        }
        for r in &req.resource {
            q.append_pair("resource", r);
        }
    }
    Some(url)
}
