//! Client administration by the operator: pre-registered clients
//! ([`Provider::register_client_admin`]), listing, reading, updating and
//! deleting registrations ([`Provider::list_clients`], [`Provider::get_client`],
//! [`Provider::update_client`], [`Provider::delete_client`]), and a user's
//! grants ([`Provider::list_user_grants`], [`Provider::revoke_grant`],
//! [`Provider::revoke_client_grants`]); and the same behind the admin endpoint
//! (default `/admin/clients`, [`Endpoints::admin_clients`](super::Endpoints)):
//!
//! | Request | Answer |
//! |---|---|
//! | `POST {A}` + registration document | 201, the RFC 7591 answer with the secret (the only time it is shown) |
//! | `GET {A}[?cursor=…]` | `{"clients": [...], "cursor": …}`: up to 100 registrations per page (no secrets) |
//! | `GET {A}/{client_id}` | the registration (no secret), or 404 |
//! | `PUT {A}/{client_id}` + registration document | the updated registration (id, secret and lifetime kept) |
//! | `DELETE {A}/{client_id}` | 204; its token and revocation requests then get `401 invalid_client` |
//! | `GET {A}/grants?user_id=U[&client_id=C]` | `{"grants": [...]}`: the user's grants (to that client), no secrets |
//! | `DELETE {A}/grants?user_id=U&client_id=C` | `{"revoked": n}`: every grant of the user to that client ended |
//! | `DELETE {A}/grants/{grant_id}?user_id=U` | 204: that grant ended (its tokens with it) |
//!
//! Path segments are percent-decoded (a metadata-document client's id is a
//! URL). `grants` is never a client id (registered ids are 16 random
//! characters). The endpoint exists only when
//! [`Config::admin_token`](super::Config) is set (`OAUTH_ADMIN_TOKEN`, a
//! secret of at least 32 characters); it takes the token as
//! `Authorization: Bearer …`, compared in constant time, and never logs or
//! echoes it. It has no CORS headers: it is not for browsers.

use super::error::{json_response, OAuthError, Reason};
use super::records::{client_key, ClientInfo, CLIENT_PREFIX};
use super::register::{registration_body, registration_document, validate_metadata};
use super::Provider;
use crate::crypto::{constant_time_eq, sha256};
use crate::store::StoreError;
use http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

/// Clients per page of [`Provider::list_clients`] at most (one KV list page).
pub const CLIENTS_PER_PAGE: usize = 100;

/// A page of registered clients ([`Provider::list_clients`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientPage {
    /// The clients, in key order (secrets only as their hashes).
    pub clients: Vec<ClientInfo>,
    /// Pass back for the next page; `None` when this was the last.
    pub cursor: Option<String>,
}

fn admin_reason(check: &'static str) -> Reason {
    Reason::new("admin", check)
}

fn not_found(what: &str) -> OAuthError {
    OAuthError::new(StatusCode::NOT_FOUND, "not_found", format!("No such {what}")).because(admin_reason("not_found"))
}

/// What the admin endpoint shows of a client: its registration as RFC 7591
/// names it, no secret, and whether it has one.
fn client_view(c: &ClientInfo) -> Value {
    let mut v = registration_body(c, None, None);
    v["has_client_secret"] = json!(c.client_secret.is_some());
    if let Some(t) = c.registration_expires_at {
        v["registration_expires_at"] = json!(t);
    }
    v
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

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

    /// A registered client (dynamic or pre-registered; not a metadata-document
    /// client, which has no registration); `None` when there is none, its
    /// record is unreadable or its registration ran out.
    pub async fn get_client(&self, client_id: &str) -> Result<Option<ClientInfo>, StoreError> {
        self.registered_client(client_id).await
    }

    /// A page of registered clients ([`CLIENTS_PER_PAGE`] keys at most; a
    /// record that cannot be read is left out), from `cursor` (`None`: the first).
    pub async fn list_clients(&self, cursor: Option<&str>) -> Result<ClientPage, StoreError> {
        let page = self.store.list(CLIENT_PREFIX, cursor).await?;
        let mut clients = Vec::new();
        for key in page.keys.iter().take(CLIENTS_PER_PAGE) {
            if let Some(c) = self.registered_client(&key[CLIENT_PREFIX.len()..]).await? {
                clients.push(c);
            }
        }
        Ok(ClientPage { clients, cursor: page.cursor })
    }

    /// Replaces a registered client's metadata with the registration document
    /// `metadata` (checked as at registration); its id, secret, registration
    /// date and lifetime are kept. A client cannot change between public and
    /// confidential (it would need a secret, or lose one): create a new
    /// client instead. `Ok(None)` when there is no such client.
    pub async fn update_client(&self, client_id: &str, metadata: &Value) -> Result<Option<ClientInfo>, OAuthError> {
        let Some(old) = self.registered_client(client_id).await? else { return Ok(None) };
        let mut doc = metadata.clone();
        if let Some(obj) = doc.as_object_mut() {
            let method = obj.get("token_endpoint_auth_method").cloned();
            obj.insert(
                "token_endpoint_auth_method".into(),
                method.unwrap_or(old.token_endpoint_auth_method.clone().into()),
            );
        }
        let mut client =
            validate_metadata(&doc, self.config.allow_private_use_schemes, &self.config.extra_grant_types())?;
        self.check_policy(&client)?;
        if client.is_public() != old.is_public() {
            return Err(OAuthError::invalid_client_metadata(
                "A client cannot change between public (none) and confidential; create a new client",
            )
            .because(admin_reason("public_confidential_switch")));
        }
        client.client_id = old.client_id;
        client.client_secret = old.client_secret;
        client.registration_date = old.registration_date;
        client.registration_expires_at = old.registration_expires_at;
        client.awaiting_first_token = old.awaiting_first_token;
        let ttl = client.registration_expires_at.map(|t| t.saturating_sub(self.now).max(crate::store::MIN_TTL_SECS));
        let raw = serde_json::to_string(&client)
            .map_err(|_| OAuthError::invalid_request("client").because(admin_reason("record_unserializable")))?;
        self.store.put(&client_key(&client.client_id), &raw, ttl).await?;
        Ok(Some(client))
    }

    /// Deletes a registered client; whether there was one. Its grants are
    /// left alone (they belong to users; [`Self::revoke_client_grants`] ends
    /// them per user): its refresh tokens stop working at once (token
    /// requests get `401 invalid_client`), its access tokens at their expiry.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        if client_id.is_empty() || client_id.len() > 256 {
            return Ok(false);
        }
        let key = client_key(client_id);
        let existed = self.store.get(&key).await?.is_some();
        self.store.delete(&key).await?;
        Ok(existed)
    }

    /// Ends every grant of `user_id` to `client_id` (with their tokens, and
    /// [`GrantHooks::grant_ended`](crate::GrantHooks::grant_ended) for each);
    /// how many. Goes on past a failure and returns the first.
    pub async fn revoke_client_grants(&self, user_id: &str, client_id: &str) -> Result<usize, StoreError> {
        let ids = self.find_grants(user_id, |m| m.client_id == client_id).await?;
        let mut first_error = None;
        let mut ended = 0;
        for id in &ids {
            match self.revoke_grant(user_id, id).await {
                Ok(()) => ended += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(ended), Err)
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
        let base = self.config.endpoints.admin_clients.as_str();
        let rest = req.uri().path().strip_prefix(base).unwrap_or_default();
        let segments: Vec<String> = rest.split('/').skip(1).map(percent_decode).collect();
        let query: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
        let param = |name: &str| query.get(name).filter(|v| !v.is_empty()).cloned();
        let user = || {
            param("user_id").ok_or_else(|| {
                OAuthError::invalid_request("user_id is required").because(admin_reason("user_id_missing"))
            })
        };
        let no_content = || Response::builder().status(StatusCode::NO_CONTENT).body(Vec::new()).unwrap_or_default();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (req.method(), segs.as_slice()) {
            (&Method::POST, []) => {
                let doc = registration_document(req)?;
                let (client, secret) = self.register_client_admin(&doc).await?;
                Ok(json_response(StatusCode::CREATED, &registration_body(&client, secret.as_deref(), None)))
            }
            (&Method::GET, []) => {
                let page = self.list_clients(param("cursor").as_deref()).await?;
                let clients: Vec<Value> = page.clients.iter().map(client_view).collect();
                Ok(json_response(StatusCode::OK, &json!({"clients": clients, "cursor": page.cursor})))
            }
            (&Method::GET, ["grants"]) => {
                let client = param("client_id");
                let grants: Vec<_> = self
                    .list_user_grants(&user()?)
                    .await?
                    .into_iter()
                    .filter(|g| client.as_ref().is_none_or(|c| &g.client_id == c))
                    .collect();
                Ok(json_response(StatusCode::OK, &json!({"grants": grants})))
            }
            (&Method::DELETE, ["grants"]) => {
                let client = param("client_id").ok_or_else(|| {
                    OAuthError::invalid_request("client_id is required").because(admin_reason("client_id_missing"))
                })?;
                let revoked = self.revoke_client_grants(&user()?, &client).await?;
                Ok(json_response(StatusCode::OK, &json!({"revoked": revoked})))
            }
            (&Method::DELETE, ["grants", grant_id]) => {
                let user = user()?;
                if self.get_grant(&user, grant_id).await?.is_none() {
                    return Err(not_found("grant"));
                }
                self.revoke_grant(&user, grant_id).await?;
                Ok(no_content())
            }
            (&Method::GET, [id]) => match self.get_client(id).await? {
                Some(c) => Ok(json_response(StatusCode::OK, &client_view(&c))),
                None => Err(not_found("client")),
            },
            (&Method::PUT, [id]) => {
                let doc = registration_document_any(req)?;
                match self.update_client(id, &doc).await? {
                    Some(c) => Ok(json_response(StatusCode::OK, &client_view(&c))),
                    None => Err(not_found("client")),
                }
            }
            (&Method::DELETE, [id]) => match self.delete_client(id).await? {
                true => Ok(no_content()),
                false => Err(not_found("client")),
            },
            (_, [] | ["grants"] | ["grants", _] | [_]) => Err(OAuthError::method_not_allowed()),
            _ => Err(not_found("endpoint")),
        }
    }
}

/// A `PUT`'s registration document (the `POST` rules but the method).
fn registration_document_any(req: &Request<Vec<u8>>) -> Result<Value, OAuthError> {
    let mut post = Request::post(req.uri().clone()).body(req.body().clone()).unwrap_or_default();
    *post.headers_mut() = req.headers().clone();
    registration_document(&post)
}
