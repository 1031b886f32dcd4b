//! Token revocation (RFC 7009): an access token is deleted; a refresh token
//! revokes its whole grant with every access token. Tokens of other clients
//! are ignored, and the answer is 200 either way.

use super::client_auth::Form;
use super::error::{OAuthError, Reason};
use super::records::{token_key, AccessToken, ClientInfo};
use super::{token_str, Provider};
use crate::crypto::constant_time_eq;
use http::{Method, Request, Response, StatusCode};

impl Provider<'_> {
    /// `POST /revoke`.
    pub(crate) async fn revocation_endpoint(&self, req: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        let result = async {
            if req.method() != Method::POST {
                return Err(OAuthError::method_not_allowed());
            }
            let form = Form::parse(req)?;
            let client = self.authenticate_client(req, &form).await?;
            self.revoke_with(&client, &form).await
        };
        result.await.unwrap_or_else(OAuthError::into_response)
    }

    pub(super) async fn revoke_with(&self, client: &ClientInfo, form: &Form) -> Result<Response<Vec<u8>>, OAuthError> {
        let token = form.get("token").ok_or_else(|| {
            OAuthError::invalid_request("token is required").because(Reason::new("revoke", "token_missing"))
        })?;
        if let Some(parts) = token_str::parse(token) {
            let hash = token_str::hash(token);
            let refresh_first = form.get("token_type_hint") == Some("refresh_token");
            for kind in if refresh_first { ["refresh", "access"] } else { ["access", "refresh"] } {
                let done = if kind == "access" {
                    let key = token_key(parts.user_id, parts.grant_id, &hash);
                    match self.store.get(&key).await?.and_then(|raw| serde_json::from_str::<AccessToken>(&raw).ok()) {
                        Some(t) if t.grant.client_id == client.client_id => {
                            if let Some(cache) = self.token_cache {
                                cache.token_ended(&hash, self.now);
                            }
                            self.store.delete(&key).await?;
                            true
                        }
                        _ => false,
                    }
                } else {
                    match self.get_grant(parts.user_id, parts.grant_id).await? {
                        Some(g) if g.client_id == client.client_id => {
                            let same =
                                |id: &Option<String>| id.as_deref().is_some_and(|id| constant_time_eq(id, &hash));
                            let hit = same(&g.refresh_token_id) || same(&g.previous_refresh_token_id);
                            if hit {
                                self.end_grant(&g).await?;
                            }
                            hit
                        }
                        _ => false,
                    }
                };
                if done {
                    break;
                }
            }
        }
        let mut res = Response::new(Vec::new());
        *res.status_mut() = StatusCode::OK;
        res.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
        Ok(res)
    }
}
