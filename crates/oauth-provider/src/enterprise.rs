//! Enterprise-Managed Authorization (the MCP extension; workers-oauth-provider
//! 1.2's experimental `enterpriseManagedAuthorization`): the RFC 7523
//! jwt-bearer grant redeeming an Identity Assertion JWT Authorization Grant
//! (ID-JAG) that the organisation's identity provider issued, so a signed-in
//! employee's client gets an MCP access token without a browser round trip.
//!
//! Off unless [`Config::enterprise`](crate::Config::enterprise) names the IdP.
//! `grant_type` = [`JWT_BEARER_GRANT`], `assertion` = the ID-JAG; the client
//! authenticates as usual and must not be public, and must be one of
//! [`EnterpriseIdp::allowed_clients`]. The assertion must have:
//!
//! - a valid RS256 or ES256 signature by a key of the IdP (inline `jwks`, or
//!   its `jwks_uri` fetched and cached with the guards of
//!   [`crate::client_assertion`]), header `typ` [`ID_JAG_TYP`];
//! - `iss` the configured issuer; `aud` this authorization server's issuer
//!   (a string or a one-element array); `client_id` the authenticated client;
//!   `resource` a registered resource of this server; `sub`;
//! - `exp` and `iat`, with [`CLOCK_SKEW_SECS`] of skew, `exp` at most
//!   [`MAX_ID_JAG_LIFETIME_SECS`] after `iat` and ahead of now;
//! - a `jti` not seen before: the marker `ema_jti:{sha256(iss, jti)}` is
//!   recorded before any token is issued and kept until the assertion
//!   expires, in the application's [`SingleUse`](crate::SingleUse) record
//!   when it installed one (strongly consistent: on Workers a Durable Object
//!   per marker, so a replay is refused in every location), else as a KV
//!   record. KV is eventually consistent, so without the hook this is best
//!   effort across Cloudflare locations (a replay through another location
//!   within about a minute may succeed once; the short lifetime, audience,
//!   resource and client binding bound what it gains);
//! - no `authorization_details` or `cnf` (not processed, so refused).
//!
//! The token's scopes are the assertion's `scope` (those this server knows),
//! else the resource's required scopes, narrowed by the request's `scope`.
//! The application maps the assertion to a user and props through
//! [`GrantHooks::enterprise_grant`](crate::GrantHooks::enterprise_grant),
//! which refuses by default. The grant made has one access token and no
//! refresh token; it ends with that token. Refusals of the assertion are
//! `invalid_grant` (RFC 7523 §3.1), an unregistered resource `invalid_target`.

use super::client_assertion::{numeric_date, parse, usable, verifies, Refusal, MAX_KEYS_TRIED};
use super::client_auth::Form;
use super::error::{OAuthError, Reason};
use super::records::{ClientInfo, Grant, Resource};
use super::{resource, seal, token_str, Provider};
use crate::crypto::{random_token, sha256_hex};
use jsonwebtoken::jwk::Jwk;
use serde_json::{Map, Value};

/// The `grant_type` of RFC 7523's JWT bearer grant.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The JOSE `typ` of an ID-JAG.
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";
/// Longest an ID-JAG may be valid (`exp` − `iat`, and `exp` − now).
pub const MAX_ID_JAG_LIFETIME_SECS: u64 = 300;
/// Clock difference allowed between the IdP and this server.
pub const CLOCK_SKEW_SECS: u64 = 60;
const JTI_PREFIX: &str = "ema_jti:";

/// The enterprise identity provider whose ID-JAGs this server accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnterpriseIdp {
    /// Its issuer (`iss` of its ID-JAGs), `OAUTH_EMA_ISSUER`.
    pub issuer: String,
    /// Its key set's URL (`OAUTH_EMA_JWKS_URL`), fetched through the
    /// application's [`MetadataFetcher`](crate::MetadataFetcher) under the
    /// rules of metadata documents (https, public host, no redirect).
    pub jwks_uri: Option<String>,
    /// Its key set inline (`OAUTH_EMA_JWKS`, JSON `{"keys": [...]}`); wins over `jwks_uri`.
    pub jwks: Option<Value>,
    /// The `client_id`s that may redeem its ID-JAGs (`OAUTH_EMA_CLIENTS`,
    /// space-separated); at least one.
    pub allowed_clients: Vec<String>,
}

/// What the application is told about a verified ID-JAG.
#[derive(Debug, Clone)]
pub struct EnterpriseAssertion<'a> {
    /// The IdP's issuer.
    pub issuer: &'a str,
    /// The user at the IdP (`sub`).
    pub subject: &'a str,
    /// The client redeeming it.
    pub client_id: &'a str,
    /// The resource the token is for (canonical URL).
    pub resource: &'a str,
    /// The scopes the token will carry.
    pub scope: &'a [String],
    /// Every claim of the assertion (verified).
    pub claims: &'a Map<String, Value>,
    /// The request's clock.
    pub now: u64,
}

/// The grant the application makes of a verified ID-JAG.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnterpriseGrant {
    /// The user id the grant is stored under (no `:`), e.g. the IdP's `sub`.
    pub user_id: String,
    /// Props for the access token (encrypted, as a sign-in's).
    pub props: Value,
    /// The grant's metadata (stored in clear).
    pub metadata: Value,
    /// An upper bound for the access token's lifetime, in seconds.
    pub access_token_ttl: Option<u64>,
}

const fn reason(check: &'static str) -> Reason {
    Reason::new("enterprise", check)
}

fn refused(check: &'static str, d: impl Into<String>) -> OAuthError {
    OAuthError::invalid_grant(d).because(reason(check))
}

/// A refusal of the key handling, as a refusal of the grant.
fn from_keys(r: Refusal) -> OAuthError {
    if r.transient {
        OAuthError::temporarily_unavailable(r.detail).because(reason("jwks_unavailable"))
    } else {
        refused("jwks_invalid", format!("the identity provider's keys cannot be used: {}", r.detail))
    }
}

impl Provider<'_> {
    /// `grant_type` = [`JWT_BEARER_GRANT`] for `client` (authenticated).
    pub(crate) async fn enterprise_grant(
        &self,
        idp: &EnterpriseIdp,
        client: &ClientInfo,
        form: &Form,
        origin: &str,
    ) -> Result<http::Response<Vec<u8>>, OAuthError> {
        if client.is_public() {
            return Err(OAuthError {
                description: "Enterprise-managed authorization requires client authentication".into(),
                ..OAuthError::invalid_client(false)
            }
            .because(reason("public_client")));
        }
        if !idp.allowed_clients.contains(&client.client_id) {
            return Err(OAuthError::unauthorized_client("This client may not redeem enterprise assertions")
                .because(reason("client_not_allowed")));
        }
        let assertion = form
            .get("assertion")
            .ok_or_else(|| OAuthError::invalid_request("assertion is required").because(reason("assertion_missing")))?;
        let parsed = parse(assertion).map_err(|r| refused("assertion_malformed", r.detail))?;
        if !parsed.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(ID_JAG_TYP)) {
            return Err(refused("typ_mismatch", format!("the assertion's typ must be {ID_JAG_TYP}")));
        }
        let claims = &parsed.claims;
        let string = |name: &str| claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        // The issuer first: an unknown one costs no key fetch.
        if string("iss") != Some(idp.issuer.as_str()) {
            return Err(refused("issuer_unknown", "the assertion's issuer is not a trusted identity provider"));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == origin,
            Some(Value::Array(list)) => list.len() == 1 && list[0].as_str() == Some(origin),
            _ => false,
        };
        if !aud_ok {
            return Err(refused("aud_mismatch", "the assertion's aud must be this authorization server's issuer"));
        }
        if string("client_id") != Some(client.client_id.as_str()) {
            return Err(refused("client_id_mismatch", "the assertion was issued to another client"));
        }
        let Some(subject) = string("sub") else { return Err(refused("sub_missing", "the assertion has no sub")) };
        if claims.contains_key("authorization_details") || claims.contains_key("cnf") {
            return Err(refused("unsupported_claims", "authorization_details and cnf are not supported"));
        }
        let date = |name: &'static str| {
            numeric_date(claims, name)
                .map_err(|r| refused("time_invalid", r.detail))?
                .ok_or_else(|| refused("time_missing", format!("the assertion has no {name}")))
        };
        let (exp, iat) = (date("exp")?, date("iat")?);
        if exp + CLOCK_SKEW_SECS <= self.now {
            return Err(refused("expired", "the assertion has expired"));
        }
        if iat > self.now + CLOCK_SKEW_SECS {
            return Err(refused("iat_future", "the assertion's iat is in the future"));
        }
        if exp < iat
            || exp - iat > MAX_ID_JAG_LIFETIME_SECS
            || exp > self.now + MAX_ID_JAG_LIFETIME_SECS + CLOCK_SKEW_SECS
        {
            return Err(refused(
                "lifetime",
                format!("the assertion may be valid for at most {MAX_ID_JAG_LIFETIME_SECS} s"),
            ));
        }
        let jti = match claims.get("jti") {
            Some(Value::String(j)) if !j.is_empty() && j.len() <= 256 => j.clone(),
            _ => return Err(refused("jti_missing", "the assertion has no jti")),
        };
        // The resource: the assertion's, which the request may repeat but not change.
        let res = string("resource").ok_or_else(|| refused("resource_missing", "the assertion names no resource"))?;
        if form.resources.iter().any(|r| r != res) {
            return Err(OAuthError::invalid_target("resource differs from the assertion's")
                .because(reason("resource_mismatch")));
        }
        let registered = url::Url::parse(res).ok().and_then(|u| {
            self.config.find_resource(origin, u.as_str()).or_else(|| self.config.find_resource(origin, res))
        });
        let Some(registered) = registered.filter(|_| resource::check_requested(self.config, res, origin).is_ok())
        else {
            return Err(OAuthError::invalid_target("the assertion's resource is not a resource of this server")
                .because(reason("resource_not_registered")));
        };
        let audience = registered.url(origin);
        // The signature.
        let keys: Vec<Jwk> = match (&idp.jwks, &idp.jwks_uri) {
            (Some(set), _) => super::client_assertion::parse_jwks(set)
                .map_err(|d| from_keys(Refusal { check: "jwks_invalid", detail: d, transient: false }))?,
            (None, Some(uri)) => self.keys_at(uri, parsed.kid.as_deref()).await.map_err(from_keys)?,
            (None, None) => return Err(refused("jwks_missing", "no keys are configured for the identity provider")),
        };
        let message = parsed.signing_input.as_bytes();
        let verified = keys
            .iter()
            .filter(|k| usable(k, parsed.alg, parsed.kid.as_deref()))
            .take(MAX_KEYS_TRIED)
            .any(|k| verifies(k, parsed.alg, message, &parsed.signature));
        if !verified {
            return Err(refused("signature_failed", "the assertion's signature does not verify"));
        }
        // Scopes: the assertion's (known ones), else the resource's; the request narrows.
        let granted: Vec<String> = match string("scope") {
            Some(s) => {
                let mut out: Vec<String> = Vec::new();
                for sc in s.split_whitespace() {
                    if self.config.scopes_supported.iter().any(|k| k == sc) && !out.iter().any(|o| o == sc) {
                        out.push(sc.to_owned());
                    }
                }
                out
            }
            None => registered.required_scopes.clone(),
        };
        let scope = super::token::narrowed_scope(&granted, form.get("scope"))?;
        // Single use, marked before anything is issued.
        let marker = format!("{JTI_PREFIX}{}", sha256_hex(format!("{}\n{jti}", idp.issuer)));
        let until = exp + CLOCK_SKEW_SECS;
        let first = self.first_use(&marker, until).await?;
        if !first {
            return Err(refused("replayed", "the assertion was used before"));
        }

        let made = self
            .hooks
            .enterprise_grant(EnterpriseAssertion {
                issuer: &idp.issuer,
                subject,
                client_id: &client.client_id,
                resource: &audience,
                scope: &scope,
                claims,
                now: self.now,
            })
            .await?;
        if made.user_id.is_empty() || made.user_id.contains(':') {
            return Err(
                OAuthError::invalid_grant("The assertion's user cannot be mapped").because(reason("user_id_invalid"))
            );
        }
        let lifetime =
            made.access_token_ttl.map_or(self.config.access_token_ttl, |t| t.min(self.config.access_token_ttl));
        if lifetime < crate::store::MIN_TTL_SECS {
            return Err(
                OAuthError::invalid_grant("The token would live less than a minute").because(reason("ttl_too_short"))
            );
        }
        let key = seal::new_key();
        let grant = Grant {
            id: random_token(token_str::ID_LEN),
            client_id: client.client_id.clone(),
            user_id: made.user_id,
            scope: scope.clone(),
            metadata: made.metadata,
            encrypted_props: seal::encrypt_props(&key, &made.props),
            created_at: self.now,
            expires_at: Some(self.now + lifetime),
            resource: Resource::from_list(std::slice::from_ref(&audience)),
            ..Default::default()
        };
        self.issue(grant, key, vec![audience], scope, lifetime, false).await
    }
}
