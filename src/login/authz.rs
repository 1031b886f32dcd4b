//! The slice of the MCP authorization server (`crate::oauth`) that sign-in
//! uses, behind a trait so the flow is tested natively with a fake.

use crate::store::StoreError;
use async_trait::async_trait;
use url::Url;

pub use crate::oauth::{AuthRequest, AuthorizeError, ClientInfo, CompleteAuthorization};

#[async_trait(?Send)]
pub trait AuthServer {
    /// Validates the MCP client's authorization request (`url` = full /authorize URL).
    async fn parse_auth_request(&self, url: &Url) -> Result<AuthRequest, AuthorizeError>;
    async fn lookup_client(&self, client_id: &str) -> Result<Option<ClientInfo>, StoreError>;
    /// Stores the grant and returns the redirect (with `code`, `state`, `iss`) to the client.
    async fn complete_authorization(&self, origin: &str, c: CompleteAuthorization) -> Result<String, AuthorizeError>;
    /// The client redirect carrying `error` (with `state` and `iss`).
    fn error_redirect(&self, origin: &str, req: &AuthRequest, error: &str, description: &str) -> String;
}

#[async_trait(?Send)]
impl AuthServer for crate::oauth::Provider<'_> {
    async fn parse_auth_request(&self, url: &Url) -> Result<AuthRequest, AuthorizeError> {
        crate::oauth::Provider::parse_auth_request(self, url).await
    }
    async fn lookup_client(&self, client_id: &str) -> Result<Option<ClientInfo>, StoreError> {
        crate::oauth::Provider::lookup_client(self, client_id).await
    }
    async fn complete_authorization(&self, origin: &str, c: CompleteAuthorization) -> Result<String, AuthorizeError> {
        crate::oauth::Provider::complete_authorization(self, origin, c).await
    }
    fn error_redirect(&self, origin: &str, req: &AuthRequest, error: &str, description: &str) -> String {
        crate::oauth::Provider::error_redirect(self, origin, req, error, description)
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

#[cfg(test)]
pub mod fake {
    //! An authorization server that knows registered clients and records
    //! completed authorizations, enforcing the rules sign-in relies on
    //! (known client, registered redirect, S256 PKCE).

    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    pub struct FakeAuthServer {
        pub clients: RefCell<Vec<ClientInfo>>,
        pub completed: RefCell<Vec<CompleteAuthorization>>,
    }

    impl FakeAuthServer {
        pub fn with_client(client: ClientInfo) -> Self {
            let s = Self::default();
            s.clients.borrow_mut().push(client);
            s
        }
    }

    fn local(error: &str, description: &str) -> AuthorizeError {
        AuthorizeError {
            status: 400,
            error: error.into(),
            description: description.into(),
            client_name: None,
            back: None,
        }
    }

    #[async_trait(?Send)]
    impl AuthServer for FakeAuthServer {
        async fn parse_auth_request(&self, url: &Url) -> Result<AuthRequest, AuthorizeError> {
            let q = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
            let client_id = q("client_id").unwrap_or_default();
            let client = self
                .clients
                .borrow()
                .iter()
                .find(|c| c.client_id == client_id)
                .cloned()
                .ok_or_else(|| local("invalid_request", "Invalid client_id"))?;
            let redirect_uri = q("redirect_uri").unwrap_or_default();
            if !client.redirect_uris.contains(&redirect_uri) {
                return Err(local("invalid_request", "Invalid redirect URI"));
            }
            let req = AuthRequest {
                response_type: q("response_type").unwrap_or_default(),
                client_id,
                redirect_uri,
                scope: q("scope").map(|s| s.split(' ').map(str::to_owned).collect()).unwrap_or_default(),
                state: q("state").unwrap_or_default(),
                code_challenge: q("code_challenge"),
                code_challenge_method: q("code_challenge_method"),
                resource: url.query_pairs().filter(|(k, _)| k == "resource").map(|(_, v)| v.into_owned()).collect(),
            };
            if req.code_challenge.is_none() || req.code_challenge_method.as_deref() != Some("S256") {
                let back =
                    self.error_redirect(url.origin().ascii_serialization().as_str(), &req, "invalid_request", "PKCE");
                return Err(AuthorizeError {
                    client_name: Some(client.display_name()),
                    back: Some(back),
                    ..local("invalid_request", "PKCE")
                });
            }
            Ok(req)
        }

        async fn lookup_client(&self, client_id: &str) -> Result<Option<ClientInfo>, StoreError> {
            Ok(self.clients.borrow().iter().find(|c| c.client_id == client_id).cloned())
        }

        async fn complete_authorization(
            &self,
            origin: &str,
            c: CompleteAuthorization,
        ) -> Result<String, AuthorizeError> {
            if c.user_id.contains(':') {
                return Err(local("invalid_request", "userId must not contain ':'"));
            }
            let mut url = Url::parse(&c.request.redirect_uri).map_err(|_| local("invalid_request", "bad redirect"))?;
            url.query_pairs_mut()
                .append_pair("code", "fake-code")
                .append_pair("state", &c.request.state)
                .append_pair("iss", origin);
            self.completed.borrow_mut().push(c);
            Ok(url.to_string())
        }

        fn error_redirect(&self, origin: &str, req: &AuthRequest, error: &str, description: &str) -> String {
            let mut url = match Url::parse(&req.redirect_uri) {
                Ok(u) => u,
                Err(_) => return String::new(),
            };
            url.query_pairs_mut()
                .append_pair("error", error)
                .append_pair("error_description", description)
                .append_pair("state", &req.state)
                .append_pair("iss", origin);
            url.to_string()
        }
    }
}
