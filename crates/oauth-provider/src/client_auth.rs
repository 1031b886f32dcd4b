//! The token and revocation endpoints' request body and client
//! authentication (RFC 6749 §2.3): HTTP Basic, `client_secret_post`, none
//! for public clients, or a `private_key_jwt` assertion (RFC 7523, see
//! [`crate::client_assertion`]) — exactly a method the client registered or
//! its metadata document offers.

use super::error::{OAuthError, Reason};
use super::records::ClientInfo;
use super::Provider;
use crate::crypto::constant_time_eq;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::Request;
use std::collections::HashMap;

/// A parsed `application/x-www-form-urlencoded` body. Every parameter may
/// appear once, except `resource` (RFC 8707).
#[derive(Debug, Default)]
pub(crate) struct Form {
    params: HashMap<String, String>,
    pub resources: Vec<String>,
}

impl Form {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub(crate) fn parse(req: &Request<Vec<u8>>) -> Result<Self, OAuthError> {
        let media_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if media_type.as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request("Content-Type must be application/x-www-form-urlencoded")
                .because(Reason::new("request", "content_type")));
        }
        if std::str::from_utf8(req.body()).is_err() {
            return Err(OAuthError::invalid_request("The request body is not valid UTF-8")
                .because(Reason::new("request", "body_not_utf8")));
        }
        let mut form = Form::default();
        for (k, v) in url::form_urlencoded::parse(req.body()) {
            if k == "resource" {
                form.resources.push(v.into_owned());
            } else if form.params.insert(k.clone().into_owned(), v.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!("Parameter '{k}' is repeated"))
                    .because(Reason::new("request", "repeated_parameter")));
            }
        }
        Ok(form)
    }
}

/// How a client presented its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presented {
    Basic,
    Post,
    None,
    /// `client_assertion` (RFC 7523).
    Assertion,
}

impl Presented {
    fn method(self) -> &'static str {
        match self {
            Presented::Basic => "client_secret_basic",
            Presented::Post => "client_secret_post",
            Presented::None => "none",
            Presented::Assertion => "private_key_jwt",
        }
    }
}

/// `Authorization: Basic` credentials: both halves form-URL-decoded (RFC 6749 §2.3.1).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // Decoded as one value: a literal '&' must not end it.
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={}", s.replace('&', "%26")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((dec(id)?, dec(secret)?))
}

impl Provider<'_> {
    /// Authenticates the client of a token or revocation request.
    pub(crate) async fn authenticate_client(
        &self,
        req: &Request<Vec<u8>>,
        form: &Form,
    ) -> Result<ClientInfo, OAuthError> {
        let refused = |basic: bool, check: &'static str| OAuthError::invalid_client(basic).because(reason(check));
        let auth_header = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        let assertion = match (form.get("client_assertion_type"), form.get("client_assertion")) {
            (None, None) => None,
            (Some(t), Some(a)) => {
                if t != super::client_assertion::ASSERTION_TYPE {
                    return Err(OAuthError {
                        description: format!(
                            "Client authentication failed: client_assertion_type must be {}",
                            super::client_assertion::ASSERTION_TYPE
                        ),
                        ..refused(false, "assertion_type_unsupported")
                    });
                }
                Some(a)
            }
            _ => {
                return Err(OAuthError::invalid_request("client_assertion and client_assertion_type go together")
                    .because(reason("assertion_incomplete")))
            }
        };
        if assertion.is_some() && (auth_header.is_some() || form.get("client_secret").is_some()) {
            return Err(OAuthError::invalid_request("Use one client authentication method, not two")
                .because(reason("multiple_methods")));
        }
        let (presented, client_id, secret) = match auth_header {
            Some(h) if h.trim_start().to_ascii_lowercase().starts_with("basic") => {
                let (id, secret) = basic_credentials(h).ok_or_else(|| refused(true, "basic_malformed"))?;
                if form.get("client_secret").is_some() {
                    return Err(OAuthError::invalid_request("Use one client authentication method, not two")
                        .because(reason("multiple_methods")));
                }
                if form.get("client_id").is_some_and(|f| f != id) {
                    return Err(refused(true, "client_id_mismatch"));
                }
                (Presented::Basic, id, Some(secret))
            }
            Some(_) => return Err(refused(false, "unsupported_scheme")),
            None => match assertion {
                // The client is the one the request names, else the one the
                // assertion claims to be (RFC 7523 §3: its `sub`); the
                // assertion must then prove it.
                Some(a) => {
                    let id = match form.get("client_id") {
                        Some(id) => id.to_owned(),
                        None => super::client_assertion::claimed_subject(a).ok_or_else(|| OAuthError {
                            description: "Client authentication failed: the client assertion names no client (sub)"
                                .into(),
                            ..refused(false, "assertion_malformed")
                        })?,
                    };
                    (Presented::Assertion, id, None)
                }
                None => {
                    let id = form.get("client_id").ok_or_else(|| refused(false, "client_id_missing"))?.to_owned();
                    match form.get("client_secret") {
                        Some(s) => (Presented::Post, id, Some(s.to_owned())),
                        None => (Presented::None, id, None),
                    }
                }
            },
        };
        let basic = presented == Presented::Basic;
        let client = match self.find_client(&client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(refused(basic, "client_not_found")),
            Err(super::ClientLookupError::Store(e)) => return Err(e.into()),
            // The document host being down is worth a retry; a bad document is no client.
            Err(super::ClientLookupError::Document(e)) if e.is_transient() => {
                return Err(OAuthError::temporarily_unavailable(e.to_string()).because(reason("document_unavailable")))
            }
            Err(super::ClientLookupError::Document(e)) => {
                return Err(OAuthError { description: e.to_string(), ..refused(basic, "document_invalid") })
            }
            Err(super::ClientLookupError::PublicClientsDisabled) => {
                return Err(OAuthError {
                    description: "This server does not accept public clients".into(),
                    ..refused(basic, "public_clients_disabled")
                })
            }
        };
        let registered = client.token_endpoint_auth_method.as_str();
        let method_ok = client.accepts_auth_method(presented.method())
            || (!client.auth_method_explicit
                && matches!(
                    (registered, presented),
                    ("client_secret_basic", Presented::Post) | ("client_secret_post", Presented::Basic)
                ));
        if !method_ok {
            return Err(refused(basic, "method_mismatch"));
        }
        if let (Presented::Assertion, Some(a)) = (presented, assertion) {
            let audiences = assertion_audiences(req, &self.config.endpoints.token);
            self.check_client_assertion(&client, a, &audiences).await?;
        }
        if let Some(secret) = secret {
            let Some(stored) = client.client_secret.as_deref() else {
                return Err(refused(basic, "no_secret_registered"));
            };
            if !constant_time_eq(super::token_str::hash(&secret), stored) {
                return Err(refused(basic, "secret_mismatch"));
            }
        }
        Ok(client)
    }
}

/// What a client assertion's `aud` may name for a request to `req`: the
/// issuer (the origin), the token endpoint URL, and the URL of the endpoint
/// called (the revocation endpoint for a revocation).
fn assertion_audiences(req: &Request<Vec<u8>>, token_path: &str) -> Vec<String> {
    let Some(url) = super::router::request_url(req) else { return Vec::new() };
    let origin = url.origin().ascii_serialization();
    let mut audiences = vec![origin.clone(), format!("{origin}{token_path}")];
    let called = format!("{origin}{}", url.path());
    if !audiences.contains(&called) {
        audiences.push(called);
    }
    audiences
}

/// A refusal of client authentication (category `client_auth`).
const fn reason(check: &'static str) -> Reason {
    Reason::new("client_auth", check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let h = format!("basic {}", STANDARD.encode("my%20id:s%3Acret+x"));
        assert_eq!(basic_credentials(&h), Some(("my id".into(), "s:cret x".into())));
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials(&format!("Basic {}", STANDARD.encode("nocolon"))), None);
    }
}
