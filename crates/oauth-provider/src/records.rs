//! The KV records, in workers-oauth-provider's published layout (camelCase
//! JSON): `client:{id}`, `grant:{userId}:{grantId}`,
//! `token:{userId}:{grantId}:{sha256(token)}`; and this crate's own
//! `grant_ended:{userId}:{grantId}` (see [`grant_ended_key`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The prefix of every registration's key.
pub const CLIENT_PREFIX: &str = "client:";

/// The key of client `client_id`'s registration: `client:{id}`.
pub fn client_key(client_id: &str) -> String {
    format!("{CLIENT_PREFIX}{client_id}")
}
/// The key of a grant's record: `grant:{userId}:{grantId}`.
pub fn grant_key(user_id: &str, grant_id: &str) -> String {
    format!("grant:{user_id}:{grant_id}")
}
/// The prefix under which all of a user's grants are listed: `grant:{userId}:`.
pub fn grant_prefix(user_id: &str) -> String {
    format!("grant:{user_id}:")
}
/// The marker a grant's end leaves for [`GRANT_ENDED_TTL_SECS`]:
/// `grant_ended:{userId}:{grantId}`. A refresh that read the grant before it
/// ended checks it after writing, so it cannot bring the grant back (KV has no
/// compare-and-set).
pub fn grant_ended_key(user_id: &str, grant_id: &str) -> String {
    format!("grant_ended:{user_id}:{grant_id}")
}
/// How long a grant's end is remembered: longer than any refresh in flight
/// plus KV's propagation delay (about 60 s).
pub const GRANT_ENDED_TTL_SECS: u64 = 3600;
pub(crate) fn token_key(user_id: &str, grant_id: &str, token_hash: &str) -> String {
    format!("token:{user_id}:{grant_id}:{token_hash}")
}
pub(crate) fn token_prefix(user_id: &str, grant_id: &str) -> String {
    format!("token:{user_id}:{grant_id}:")
}

/// A registered client (`client:{id}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    /// The client's id: random for a registration, the document's URL for a
    /// Client ID Metadata Document client.
    pub client_id: String,
    /// SHA-256 hex of the secret; `None` for public clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The redirect URIs an authorization request may name (exact match,
    /// any port for loopback ones).
    pub redirect_uris: Vec<String>,
    /// The name shown on consent pages (see [`ClientInfo::display_name`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// RFC 7591 `logo_uri`, as registered.
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// RFC 7591 `client_uri`: the client's home page.
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// RFC 7591 `policy_uri`: the client's privacy policy.
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// RFC 7591 `tos_uri`: the client's terms of service.
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// RFC 7591 `contacts`: people responsible for the client.
    pub contacts: Option<Vec<String>>,
    #[serde(default = "default_grant_types")]
    /// The grant types the client may use at the token endpoint.
    pub grant_types: Vec<String>,
    #[serde(default = "default_response_types")]
    /// The response types the client may ask for (`code`).
    pub response_types: Vec<String>,
    #[serde(default)]
    /// When the client was registered (seconds since the epoch).
    pub registration_date: u64,
    #[serde(default = "default_auth_method")]
    /// How the client authenticates at the token endpoint:
    /// `client_secret_basic`, `client_secret_post`, `none` (public client) or
    /// `private_key_jwt` (a signed assertion; metadata-document clients).
    pub token_endpoint_auth_method: String,
    /// Set when the auth method was stated explicitly: then HTTP Basic and
    /// `client_secret_post` are not interchangeable.
    #[serde(default, skip_serializing_if = "is_false")]
    pub auth_method_explicit: bool,
    /// Further methods the client may authenticate with besides
    /// `token_endpoint_auth_method` (OpenID RP Metadata Choices): a metadata
    /// document offering `none` and `private_key_jwt` is held to `none`'s
    /// rules and may also send assertions. `None` for registered clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 7591 `jwks_uri`: where the client's public keys for
    /// `private_key_jwt` are published (https; fetched and cached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// RFC 7591 `jwks`: the client's public keys for `private_key_jwt`, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// When a dynamic registration expires (seconds since the epoch), as 1.x
    /// stamps it: only a stamped registration is renewed while in use.
    /// Pre-registered clients and records from 0.x have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_expires_at: Option<u64>,
    /// OpenID Connect Registration `application_type` as the client declared
    /// it (`web` or `native`; MCP 2026-07-28 clients send it): a `web` client
    /// is sent codes only at https redirect URIs. `None` when not declared:
    /// no restriction beyond the server's redirect rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    /// A dynamic registration no token was issued to yet: it expires
    /// [`Config::unused_client_ttl`](crate::Config::unused_client_ttl) after
    /// registering unless its first token request promotes it to the full
    /// [`Config::client_ttl`](crate::Config::client_ttl).
    #[serde(default, skip_serializing_if = "is_false")]
    pub awaiting_first_token: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn default_grant_types() -> Vec<String> {
    vec!["authorization_code".into(), "refresh_token".into()]
}
fn default_response_types() -> Vec<String> {
    vec!["code".into()]
}
fn default_auth_method() -> String {
    "client_secret_basic".into()
}

impl ClientInfo {
    /// Whether this is a public client (no secret, `none` auth method).
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == "none"
    }
    /// Whether the client may authenticate with `method` at the token and
    /// revocation endpoints: its `token_endpoint_auth_method`, or one of the
    /// further methods it offers.
    pub fn accepts_auth_method(&self, method: &str) -> bool {
        self.token_endpoint_auth_method == method
            || self.token_endpoint_auth_methods_supported.as_ref().is_some_and(|m| m.iter().any(|x| x == method))
    }
    /// Whether the client registered `grant_type` (e.g. `refresh_token`).
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
    /// The name to show people: the registered name (or the id when there is
    /// none), with bidirectional, format and other control characters
    /// neutralised — records written before registration refused them, or by
    /// another implementation, may hold them. Still needs HTML escaping.
    pub fn display_name(&self) -> String {
        let name = self.client_name.as_deref().filter(|n| !n.trim().is_empty()).unwrap_or(&self.client_id);
        crate::text::neutralise(name)
    }
}

/// One or many resource indicators, as the original stores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Resource {
    /// A single resource (stored as a JSON string).
    One(String),
    /// Several resources (stored as a JSON array).
    Many(Vec<String>),
}

impl Resource {
    /// The stored form of `list`: `None` when empty, one string for one.
    pub fn from_list(list: &[String]) -> Option<Self> {
        match list {
            [] => None,
            [one] => Some(Resource::One(one.clone())),
            many => Some(Resource::Many(many.to_vec())),
        }
    }
    /// The resources as a list, whatever the stored form.
    pub fn to_list(&self) -> Vec<String> {
        match self {
            Resource::One(s) => vec![s.clone()],
            Resource::Many(v) => v.clone(),
        }
    }
}

/// An authorization a user gave a client (`grant:{userId}:{grantId}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// The grant's id (unique per user; never contains `:`).
    pub id: String,
    /// The client the grant was given to.
    pub client_id: String,
    /// The user who gave it, as the application identifies them.
    pub user_id: String,
    /// The scopes granted.
    pub scope: Vec<String>,
    /// Application metadata, stored in clear (seal secrets before putting them here).
    #[serde(default)]
    pub metadata: Value,
    /// The application's props, encrypted under a per-grant key that only
    /// the grant's tokens can unwrap.
    pub encrypted_props: String,
    /// When the grant was made (seconds since the epoch).
    pub created_at: u64,
    /// When the grant ends (seconds since the epoch); `None`: never (0.x records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Hash of the authorization code not yet exchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code_id: Option<String>,
    /// The props key wrapped under the authorization code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code_wrapped_key: Option<String>,
    /// The PKCE challenge the code must be redeemed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    /// The PKCE method (`S256`, or `plain` for old records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_method: Option<String>,
    /// Hash of the current refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_id: Option<String>,
    /// The props key wrapped under the current refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_wrapped_key: Option<String>,
    /// Hash of the previous refresh token, still accepted once after rotation
    /// (a client that lost the answer to its refresh can retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_refresh_token_id: Option<String>,
    /// The props key wrapped under the previous refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_refresh_token_wrapped_key: Option<String>,
    /// The resource(s) the grant is for (RFC 8707); `None` in records from
    /// before resource indicators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// The redirect URI the grant was made through (1.x), so that a
    /// re-authorization replaces only grants from the same redirect URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Set by an authorization that replaces the user's older grants for the
    /// client ([`CompleteAuthorization::revoke_existing_grants`](crate::authorize::CompleteAuthorization)):
    /// they end when this grant's code is exchanged, not when it is issued, so
    /// an authorization someone else started in the user's browser, whose code
    /// never reaches the client, cannot end a grant in use. Cleared at the
    /// exchange; not in workers-oauth-provider's layout (it ignores the field).
    #[serde(default, skip_serializing_if = "is_false")]
    pub replaces_older_grants: bool,
    /// When tokens were last issued under the grant (its code exchange or a
    /// refresh; seconds since the epoch): the grant write those already make
    /// records it, so it costs nothing extra, and an application can show when
    /// a client last used its grant without a write on every request. `None`
    /// until the code is exchanged, and in records written by
    /// workers-oauth-provider (which ignores the field and keeps it when it
    /// rewrites the grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_issued_at: Option<u64>,
}

impl Grant {
    /// The resources the grant is for, as a list (empty for legacy grants).
    pub fn resources(&self) -> Vec<String> {
        self.resource.as_ref().map(Resource::to_list).unwrap_or_default()
    }

    /// The KV key metadata workers-oauth-provider 1.x writes with every grant
    /// (`{clientId, resource?, redirectUri?}`), so the grants to replace at a
    /// new authorization are found from a `list` without reading each one.
    /// `None` when it would exceed KV's 1024-byte limit; the grant is then
    /// read when scanned, like a grant written by 0.x.
    pub(crate) fn key_metadata(&self) -> Option<Value> {
        let mut m = serde_json::Map::new();
        m.insert("clientId".into(), Value::String(self.client_id.clone()));
        if let Some(r) = &self.resource {
            m.insert("resource".into(), serde_json::to_value(r).ok()?);
        }
        if let Some(r) = &self.redirect_uri {
            m.insert("redirectUri".into(), Value::String(r.clone()));
        }
        let m = Value::Object(m);
        (m.to_string().len() <= crate::store::MAX_METADATA_BYTES).then_some(m)
    }
}

/// Grant key metadata as listed: what a grant can be matched on without
/// reading it. Metadata of another shape is ignored (the grant is read).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GrantKeyMetadata {
    pub client_id: String,
    #[serde(default)]
    pub resource: Option<Resource>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
}

impl GrantKeyMetadata {
    pub(crate) fn of(grant: &Grant) -> Self {
        Self {
            client_id: grant.client_id.clone(),
            resource: grant.resource.clone(),
            redirect_uri: grant.redirect_uri.clone(),
        }
    }
    /// Parsed from listed metadata, when it has the shape 1.x writes.
    pub(crate) fn parse(metadata: Option<&Value>) -> Option<Self> {
        serde_json::from_value(metadata?.clone()).ok()
    }
}

/// Splits `grant:{userId}:{grantId}` (grant ids never contain `:`).
pub(crate) fn parse_grant_key(key: &str) -> Option<(&str, &str)> {
    let (user, grant) = key.strip_prefix("grant:")?.rsplit_once(':')?;
    (!user.is_empty() && !grant.is_empty()).then_some((user, grant))
}

/// The grant fields copied into each access token record, so bearer
/// validation reads one record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenGrant {
    pub client_id: String,
    pub scope: Vec<String>,
    pub encrypted_props: String,
}

/// An access token (`token:{userId}:{grantId}:{hash}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccessToken {
    pub id: String,
    pub grant_id: String,
    pub user_id: String,
    pub created_at: u64,
    pub expires_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Resource>,
    /// The token's scope; records written before the original had this field
    /// carry none, and then the grant's scope applies (as in the original).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
    pub wrapped_encryption_key: String,
    pub grant: TokenGrant,
}
