//! Authorization requests: validation of `/authorize` parameters and the
//! completion of an authorization (grant + single-use code) once the user
//! signed in. A request that fails validation is never redirected (RFC 9700
//! §4.11.2: with open registration anyone can register a redirect URI, so a
//! redirect on a bad request would make this server an open redirector); the
//! error is shown where the person is, naming the client and, once the client
//! and its redirect URI are known good, offering the way back to it with the
//! error (RFC 9207 `iss` included). Only the user's own decision (Cancel,
//! a denial at the identity provider) goes back to the client by itself.

use super::records::{ClientInfo, Grant, Resource};
use super::{redirect, resource, seal, token_str, Provider};
use crate::crypto::random_token;
use crate::error::Reason;
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use url::Url;

/// Longest `state` a client may send (it is echoed back).
const MAX_STATE_LEN: usize = 2048;

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthRequest {
    /// `response_type` (always `code` once validated).
    pub response_type: String,
    /// The client's id (a registration, or a metadata document URL).
    pub client_id: String,
    /// Where the code goes: one of the client's registered redirect URIs.
    pub redirect_uri: String,
    /// The requested scopes that are in the catalogue.
    pub scope: Vec<String>,
    /// The client's `state`, echoed back with the code (may be empty).
    pub state: String,
    /// The PKCE challenge (RFC 7636).
    pub code_challenge: Option<String>,
    /// The PKCE method (`S256`).
    pub code_challenge_method: Option<String>,
    /// The resources the token is for (RFC 8707); the default resource when
    /// the request named none.
    pub resource: Vec<String>,
    /// Requested scopes outside the catalogue ([`Config::scopes_supported`](super::Config)),
    /// left out of `scope`; for the application's log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_scopes: Vec<String>,
}

/// Why an authorization request was refused: shown to the person, never
/// redirected.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizeError {
    /// The HTTP status of the page (or JSON) showing the error.
    pub status: u16,
    /// The OAuth error code (`invalid_request`, `unauthorized_client`, …).
    pub error: String,
    /// What went wrong, in words for the person (no secrets).
    pub description: String,
    /// The registered client's display name, once the client is known.
    pub client_name: Option<String>,
    /// The error response for the client (its redirect URI with `error`,
    /// `error_description`, `state` and `iss`), once that redirect URI is
    /// known to be registered: offered as a link ([`ErrorRedirect::to_url`]),
    /// never followed automatically.
    pub back: Option<Box<ErrorRedirect>>,
    /// Which check failed, for the logs; never shown (see [`Reason`]).
    pub reason: Reason,
}

impl AuthorizeError {
    /// The URL of the way back to the client, when there is one.
    pub fn back_url(&self) -> Option<String> {
        self.back.as_ref().map(|b| b.to_url()).filter(|u| !u.is_empty())
    }
}

/// An authorization error response for the client (RFC 6749 §4.1.2.1, with
/// RFC 9207 `iss`), as data: where it goes and what it says. Built by the
/// server once the redirect URI is known to be registered for the client
/// ([`AuthorizeError::back`], [`Provider::error_redirect`]); [`Self::to_url`]
/// renders it.
///
/// ```
/// use oauth_provider::ErrorRedirect;
///
/// let back = ErrorRedirect {
///     redirect_uri: "https://app.example/cb".into(),
///     error: "access_denied".into(),
///     description: "The user declined the request".into(),
///     state: Some("xyz".into()),
///     iss: "https://mcp.example.com".into(),
/// };
/// assert_eq!(
///     back.to_url(),
///     "https://app.example/cb?error=access_denied&error_description=The+user+declined+the+request\
///      &state=xyz&iss=https%3A%2F%2Fmcp.example.com"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    /// The client's registered redirect URI the error goes back to.
    pub redirect_uri: String,
    /// The OAuth error code (`access_denied`, `invalid_request`, …).
    pub error: String,
    /// `error_description`.
    pub description: String,
    /// The client's `state`, echoed when it sent one.
    pub state: Option<String>,
    /// This authorization server's issuer (RFC 9207).
    pub iss: String,
}

impl ErrorRedirect {
    /// The redirect URI with `error`, `error_description`, `state` (when set)
    /// and `iss` added to its query; empty if the redirect URI is not a URL.
    pub fn to_url(&self) -> String {
        redirect_with(
            &self.redirect_uri,
            &[("error", &self.error), ("error_description", &self.description)],
            self.state.as_deref().unwrap_or(""),
            &self.iss,
        )
    }
}

/// Why no client could be had for a `client_id`.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientLookupError {
    /// The store failed.
    Store(StoreError),
    /// A metadata document URL whose document could not be fetched or used.
    Document(super::cimd::CimdError),
    /// A public client (`token_endpoint_auth_method=none`, or a metadata
    /// document client) while [`Config::allow_public_clients`](super::Config) is off.
    PublicClientsDisabled,
}

impl From<StoreError> for ClientLookupError {
    fn from(e: StoreError) -> Self {
        ClientLookupError::Store(e)
    }
}

/// What sign-in hands over once the user is known.
#[derive(Debug, Clone)]
pub struct CompleteAuthorization {
    /// The request as [`Provider::parse_auth_request`] returned it (it is
    /// validated again, against the client as it is now).
    pub request: AuthRequest,
    /// The signed-in user's id (non-empty, at most 256 bytes, no `:`).
    pub user_id: String,
    /// Metadata stored in clear on the grant (listed with the user's grants).
    pub metadata: serde_json::Value,
    /// The scopes the user granted; anything the request did not ask for is dropped.
    pub scope: Vec<String>,
    /// The application's props, encrypted on the grant and handed back with
    /// every token ([`AuthContext::props`](crate::bearer::AuthContext::props)).
    pub props: serde_json::Value,
    /// End the user's older grants to this client for the same resource
    /// (usually [`Config::revoke_existing_grants`](crate::Config::revoke_existing_grants))
    /// once this authorization's code is exchanged: never before, so that a
    /// page that sends the user's browser through the authorization endpoint
    /// (consent skipped for an approved client) cannot end a working grant.
    pub revoke_existing_grants: bool,
}

/// A refusal of an authorization request (category `authorize`).
const fn reason(check: &'static str) -> Reason {
    Reason::new("authorize", check)
}

fn local(status: u16, error: &str, description: &str, reason: Reason) -> AuthorizeError {
    AuthorizeError {
        status,
        error: error.into(),
        description: description.into(),
        client_name: None,
        back: None,
        reason,
    }
}

fn storage(e: StoreError) -> AuthorizeError {
    match e {
        StoreError::RateLimited => local(
            429,
            "temporarily_unavailable",
            "Too many requests; try again in a minute.",
            Reason::STORAGE_RATE_LIMITED,
        ),
        StoreError::Unavailable(_) => {
            local(503, "temporarily_unavailable", "Storage is unavailable; try again.", Reason::STORAGE_UNAVAILABLE)
        }
    }
}

/// `code_verifier` / `code_challenge` syntax (RFC 7636 §4.1): 43–128 unreserved characters.
pub(crate) fn pkce_syntax_ok(s: &str) -> bool {
    (43..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The redirect URL carrying `params`, `state` (when set) and `iss`.
fn redirect_with(redirect_uri: &str, params: &[(&str, &str)], state: &str, issuer: &str) -> String {
    let Ok(mut url) = Url::parse(redirect_uri) else { return String::new() };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if !state.is_empty() {
            q.append_pair("state", state);
        }
        q.append_pair("iss", issuer);
    }
    url.to_string()
}

impl Provider<'_> {
    /// The client `client_id` names: a registration, or (with a metadata
    /// fetcher) the metadata document a `client_id` URL names. A document
    /// that cannot be had or used counts as no client here; [`Self::find_client`]
    /// says why.
    pub async fn lookup_client(&self, client_id: &str) -> Result<Option<ClientInfo>, StoreError> {
        match self.find_client(client_id).await {
            Ok(c) => Ok(c),
            Err(ClientLookupError::Store(e)) => Err(e),
            Err(ClientLookupError::Document(_) | ClientLookupError::PublicClientsDisabled) => Ok(None),
        }
    }

    /// [`Self::lookup_client`], telling why a metadata document client could not be used.
    pub async fn find_client(&self, client_id: &str) -> Result<Option<ClientInfo>, ClientLookupError> {
        if self.cimd.is_some() && super::cimd::is_metadata_url(client_id) {
            // Metadata document clients are public: not even fetched when those are off.
            if !self.config.allow_public_clients {
                return Err(ClientLookupError::PublicClientsDisabled);
            }
            return self.metadata_document_client(client_id).await.map(Some).map_err(ClientLookupError::Document);
        }
        match self.registered_client(client_id).await? {
            // Registered before public clients were switched off.
            Some(c) if c.is_public() && !self.config.allow_public_clients => {
                Err(ClientLookupError::PublicClientsDisabled)
            }
            c => Ok(c),
        }
    }

    pub(crate) async fn registered_client(&self, client_id: &str) -> Result<Option<ClientInfo>, StoreError> {
        if client_id.is_empty() || client_id.len() > 256 {
            return Ok(None);
        }
        match self.store.get(&super::records::client_key(client_id)).await? {
            None => Ok(None),
            // A record we cannot read is treated as no client, not a crash; one
            // past its stamped expiry (KV removes it a little later) is gone.
            Some(raw) => Ok(serde_json::from_str::<ClientInfo>(&raw)
                .ok()
                .filter(|c| c.registration_expires_at.is_none_or(|t| t > self.now))),
        }
    }

    /// Parses and validates `/authorize?…` (`url` is the whole request URL).
    pub async fn parse_auth_request(&self, url: &Url) -> Result<AuthRequest, AuthorizeError> {
        let mut single = std::collections::HashMap::new();
        let mut resources = Vec::new();
        for (k, v) in url.query_pairs() {
            if k == "resource" {
                resources.push(v.into_owned());
            } else if single.insert(k.clone().into_owned(), v.into_owned()).is_some() {
                return Err(local(
                    400,
                    "invalid_request",
                    &format!("Parameter '{k}' is repeated"),
                    reason("repeated_parameter"),
                ));
            }
        }
        let get = |k: &str| single.get(k).cloned();
        let req = AuthRequest {
            response_type: get("response_type").unwrap_or_default(),
            client_id: get("client_id").unwrap_or_default(),
            redirect_uri: get("redirect_uri").unwrap_or_default(),
            scope: get("scope").map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default(),
            state: get("state").unwrap_or_default(),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
            resource: resources,
            dropped_scopes: Vec::new(),
        };
        let origin = url.origin().ascii_serialization();
        self.validate(&origin, req).await.map(|(req, _)| req)
    }

    /// Checks a request against its client's registration. On success the
    /// request is returned with its resource defaulted to the canonical one.
    pub(crate) async fn validate(
        &self,
        origin: &str,
        mut req: AuthRequest,
    ) -> Result<(AuthRequest, ClientInfo), AuthorizeError> {
        let client = match self.find_client(&req.client_id).await {
            Ok(c) => c,
            Err(ClientLookupError::Store(e)) => return Err(storage(e)),
            // Shown where the person is, never redirected: nothing about the client can be trusted.
            Err(ClientLookupError::Document(e)) if e.kind == super::cimd::CimdErrorKind::Busy => {
                return Err(local(
                    429,
                    "temporarily_unavailable",
                    &e.to_string(),
                    reason("client_document_fetch_budget"),
                ));
            }
            Err(ClientLookupError::Document(e)) => {
                let check = match e.kind {
                    super::cimd::CimdErrorKind::Url => "client_document_url_refused",
                    super::cimd::CimdErrorKind::Fetch | super::cimd::CimdErrorKind::Busy => {
                        "client_document_fetch_failed"
                    }
                    super::cimd::CimdErrorKind::Document => "client_document_invalid",
                };
                // invalid_request: RFC 6749 §4.1.2.1 has no invalid_client at this endpoint
                // (the token endpoint answers invalid_client for the same document).
                return Err(local(400, "invalid_request", &e.to_string(), reason(check)));
            }
            Err(ClientLookupError::PublicClientsDisabled) => {
                return Err(local(
                    400,
                    "unauthorized_client",
                    "This server does not accept public clients (no client secret, or a client_id URL); \
                     ask its operator for a registered client.",
                    reason("public_clients_disabled"),
                ))
            }
        }
        .ok_or_else(|| {
            local(
                400,
                "invalid_request",
                "Invalid client_id: this client is not registered (or its registration expired).",
                reason("client_not_found"),
            )
        })?;
        if req.redirect_uri.is_empty() && client.redirect_uris.len() == 1 {
            req.redirect_uri = client.redirect_uris[0].clone();
        }
        let client_name = Some(client.display_name());
        if !redirect::matches_registered(&req.redirect_uri, &client.redirect_uris) {
            return Err(AuthorizeError {
                client_name,
                ..local(
                    400,
                    "invalid_request",
                    "Invalid redirect URI: it does not match the client's registration.",
                    reason("redirect_uri_not_registered"),
                )
            });
        }
        // Listed but not usable (remote http, a private-use scheme this server refuses):
        // the registration may list it beside a usable one, a request may not use it.
        if let Err(why) = url::Url::parse(&req.redirect_uri)
            .map_err(|_| "redirect URI must be an absolute URI".to_string())
            .and_then(|u| {
                redirect::check_usable(&u, self.config.allow_private_use_schemes)?;
                redirect::check_web(&u, client.application_type.as_deref() == Some("web"))
            })
        {
            return Err(AuthorizeError {
                client_name,
                ..local(
                    400,
                    "invalid_request",
                    &format!("Invalid redirect URI: {why}."),
                    reason("redirect_uri_not_allowed"),
                )
            });
        }
        // From here on the person may take the error back to the client.
        let fail = |error: &str, description: &str, check: &'static str| {
            let state = (!req.state.is_empty() && req.state.len() <= MAX_STATE_LEN).then(|| req.state.clone());
            AuthorizeError {
                client_name: client_name.clone(),
                back: Url::parse(&req.redirect_uri).is_ok().then(|| {
                    Box::new(ErrorRedirect {
                        redirect_uri: req.redirect_uri.clone(),
                        error: error.into(),
                        description: description.into(),
                        state,
                        iss: origin.into(),
                    })
                }),
                ..local(400, error, description, reason(check))
            }
        };
        if req.state.len() > MAX_STATE_LEN {
            return Err(fail("invalid_request", "state is too long", "state_too_long"));
        }
        // A value with a query names the resource without it (WOP 1.2.3), once.
        let mut mapped: Vec<String> = Vec::new();
        for r in &req.resource {
            let m = resource::map_requested(r);
            if let Err(why) = resource::check_requested(self.config, &m, origin) {
                return Err(fail("invalid_target", why, "resource_refused"));
            }
            if !mapped.contains(&m) {
                mapped.push(m);
            }
        }
        req.resource = mapped;
        if req.resource.is_empty() {
            match self.config.authorization_default_resource() {
                Some(r) => req.resource.push(r.url(origin)),
                None => {
                    return Err(fail(
                        "invalid_target",
                        "The resource parameter is required: this server has several protected resources",
                        "resource_missing",
                    ))
                }
            }
        }
        // Scopes this server does not know are dropped (RFC 6749 §3.3 lets the
        // server grant less; MCP clients send odd ones) and reported in
        // `dropped_scopes` for the application to log; none asked for means
        // the whole catalogue.
        let mut scope: Vec<String> = Vec::new();
        req.dropped_scopes.clear();
        for s in std::mem::take(&mut req.scope) {
            if s == "offline_access" || self.config.scopes_supported.contains(&s) {
                if !scope.contains(&s) {
                    scope.push(s);
                }
            } else if !req.dropped_scopes.contains(&s) {
                req.dropped_scopes.push(s);
            }
        }
        req.scope = scope;
        if req.scope.iter().all(|s| s == "offline_access") {
            req.scope.extend(self.config.scopes_supported.iter().cloned());
        }
        match req.response_type.as_str() {
            "" => return Err(fail("invalid_request", "response_type is required", "response_type_missing")),
            "code" => {}
            _ => {
                return Err(fail(
                    "unsupported_response_type",
                    "Only response_type=code is supported",
                    "response_type_unsupported",
                ))
            }
        }
        if !client.response_types.iter().any(|t| t == "code") || !client.allows_grant("authorization_code") {
            return Err(fail(
                "unauthorized_client",
                "This client is not registered for the authorization code flow",
                "code_flow_not_registered",
            ));
        }
        match (&req.code_challenge, req.code_challenge_method.as_deref()) {
            (Some(c), Some("S256")) if pkce_syntax_ok(c) => {}
            (Some(_), Some("S256")) => {
                return Err(fail("invalid_request", "PKCE code_challenge is malformed", "pkce_challenge_malformed"))
            }
            (Some(_), None | Some("plain")) => {
                return Err(fail("invalid_request", "plain PKCE method is not allowed; use S256", "pkce_plain"));
            }
            (Some(_), Some(_)) => {
                return Err(fail(
                    "invalid_request",
                    "Unsupported PKCE code_challenge_method; use S256",
                    "pkce_method_unsupported",
                ))
            }
            (None, Some(_)) => {
                return Err(fail(
                    "invalid_request",
                    "PKCE code_challenge_method without code_challenge",
                    "pkce_method_without_challenge",
                ))
            }
            (None, None) if client.is_public() => {
                return Err(fail(
                    "invalid_request",
                    "PKCE (code_challenge with S256) is required for public clients",
                    "pkce_required",
                ));
            }
            (None, None) => {}
        }
        Ok((req, client))
    }

    /// The error response for the client of a validated request, once the
    /// person has decided (Cancel, a denial upstream): `error` with `state`
    /// and `iss` (this server's `origin`). Render it with [`ErrorRedirect::to_url`].
    pub fn error_redirect(&self, origin: &str, req: &AuthRequest, error: &str, description: &str) -> ErrorRedirect {
        ErrorRedirect {
            redirect_uri: req.redirect_uri.clone(),
            error: error.into(),
            description: description.into(),
            state: (!req.state.is_empty()).then(|| req.state.clone()),
            iss: origin.into(),
        }
    }

    /// Stores the grant and returns the client redirect with `code`, `state` and `iss`.
    pub async fn complete_authorization(
        &self,
        origin: &str,
        c: CompleteAuthorization,
    ) -> Result<String, AuthorizeError> {
        if c.user_id.is_empty() || c.user_id.contains(':') || c.user_id.len() > 256 {
            return Err(local(
                500,
                "server_error",
                "The signed-in user id cannot be used (empty, too long or contains ':').",
                reason("user_id_unusable"),
            ));
        }
        let (req, client) = self.validate(origin, c.request).await?;
        let grant_id = random_token(token_str::ID_LEN);
        let code = token_str::mint(&c.user_id, &grant_id);
        let key = seal::new_key();
        let grant = Grant {
            id: grant_id.clone(),
            client_id: client.client_id.clone(),
            user_id: c.user_id.clone(),
            // Never more than the (validated) request asked for.
            scope: c.scope.into_iter().filter(|s| req.scope.contains(s)).collect(),
            metadata: c.metadata,
            encrypted_props: seal::encrypt_props(&key, &c.props),
            created_at: self.now,
            expires_at: None,
            auth_code_id: Some(token_str::hash(&code)),
            auth_code_wrapped_key: Some(seal::wrap_key(&key, &code)),
            code_challenge: req.code_challenge.clone(),
            code_challenge_method: req.code_challenge_method.clone(),
            resource: Resource::from_list(&req.resource),
            redirect_uri: Some(req.redirect_uri.clone()),
            // Older grants end at the code exchange (see the field).
            replaces_older_grants: c.revoke_existing_grants,
            ..Default::default()
        };
        // Kept past the code's life (see ENDED_GRANT_RETENTION_SECS): a code never
        // exchanged still ends its grant through the purge, which tells the application.
        let ttl = self.config.code_ttl + super::grants::ENDED_GRANT_RETENTION_SECS;
        self.put_grant(&grant, Some(ttl)).await.map_err(storage)?;
        Ok(redirect_with(&req.redirect_uri, &[("code", &code)], &req.state, origin))
    }
}
