//! The OpenID Connect client of PingOne: the authorization request (state,
//! PKCE S256, nonce, `resource`), the code exchange (client_secret_basic via
//! the `oauth2` crate), ID token validation and the userinfo cross-check.

use super::discovery::{Discovery, DiscoveryError, OidcCache};
use super::id_token::{self, Expected, IdTokenError};
use super::outbound::OAuth2Http;
use super::pages::{Failure, ADVICE_LATER, ADVICE_OPERATOR, ADVICE_RESTART};
use super::records::StateRecord;
use super::settings::Settings;
use crate::outbound::{get_json_request, HttpClient, OutboundError};
use crate::util::crypto::{b64url_decode, random_token};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, ExtraTokenFields,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use url::Url;

/// The OIDC addition to the token response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenField {
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

type TokenResp = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OidcClient = oauth2::Client<
    BasicErrorResponse,
    TokenResp,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Claims that describe the token rather than the user; kept out of `claims`.
const PROTOCOL_CLAIMS: &[&str] = &[
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "at_hash",
    "c_hash",
    "s_hash",
    "auth_time",
    "azp",
    "acr",
    "amr",
    "sid",
    "jti",
];

/// The worker's confidential client at PingOne (client_secret_basic).
fn base_client(settings: &Settings, discovery: &Discovery) -> OidcClient {
    oauth2::Client::new(ClientId::new(settings.client_id.clone()))
        .set_client_secret(ClientSecret::new(settings.client_secret.clone()))
        .set_auth_uri(AuthUrl::from_url(discovery.authorization_endpoint.clone()))
        .set_token_uri(TokenUrl::from_url(discovery.token_endpoint.clone()))
}

fn client(settings: &Settings, discovery: &Discovery, redirect_uri: &str) -> Result<OidcClient, Failure> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| {
        Failure::new(400, "invalid_request", "Unusable server address", "the callback URL is invalid", ADVICE_OPERATOR)
    })?;
    Ok(base_client(settings, discovery).set_redirect_uri(redirect))
}

/// PingOne's answer to a refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct Refreshed {
    pub access_token: String,
    pub expires_at: Option<u64>,
    /// `None` when PingOne did not say (the scopes stay what they were).
    pub scopes: Option<Vec<String>>,
    /// A rotated refresh token, when PingOne sent one.
    pub refresh_token: Option<String>,
}

/// Why a refresh at PingOne failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError {
    /// `invalid_grant`: the refresh token is dead for good (session ended,
    /// user disabled, token expired or revoked).
    Dead,
    /// Anything else: unreachable, 5xx, an unexpected answer. The text names
    /// what happened, never a token.
    Failed(String),
}

/// Refreshes the PingOne access token (RFC 6749 §6) with the worker's client
/// credentials; with `scope`, asks for those scopes only (§6 lets a refresh
/// narrow them, and widen back up to what the sign-in granted).
pub async fn refresh(
    http: &dyn HttpClient,
    settings: &Settings,
    discovery: &Discovery,
    refresh_token: &str,
    scope: Option<&[String]>,
    now: u64,
) -> Result<Refreshed, RefreshError> {
    let client = base_client(settings, discovery);
    let rt = RefreshToken::new(refresh_token.to_owned());
    let token = client
        .exchange_refresh_token(&rt)
        .add_scopes(scope.unwrap_or_default().iter().cloned().map(Scope::new))
        .request_async(&OAuth2Http(http))
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) if *r.error() == BasicErrorResponseType::InvalidGrant => {
                RefreshError::Dead
            }
            RequestTokenError::ServerResponse(r) => {
                RefreshError::Failed(format!("the token endpoint answered {}", r.error().as_ref()))
            }
            RequestTokenError::Request(e) => RefreshError::Failed(format!("the token endpoint did not answer ({e})")),
            RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
                RefreshError::Failed("the token endpoint's answer is not a token response".into())
            }
        })?;
    let access_token = token.access_token().secret().clone();
    Ok(Refreshed {
        expires_at: token.expires_in().map(|d| now + d.as_secs()).or_else(|| jwt_exp(&access_token)),
        scopes: token.scopes().map(|s| s.iter().map(|s| s.to_string()).collect()),
        refresh_token: token.refresh_token().map(|r| r.secret().clone()),
        access_token,
    })
}

/// Revokes a PingOne refresh token (RFC 7009), authenticated like the token
/// endpoint (client_secret_basic). Built by hand: the `oauth2` crate refuses a
/// revocation URL that is not https, and the local stand-in IdP is plain http
/// on loopback (which the settings allow). `Ok(false)` when discovery names no
/// revocation endpoint.
pub async fn revoke_refresh_token(
    http: &dyn HttpClient,
    settings: &Settings,
    discovery: &Discovery,
    refresh_token: &str,
) -> Result<bool, String> {
    let Some(endpoint) = &discovery.revocation_endpoint else { return Ok(false) };
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = STANDARD.encode(format!("{}:{}", enc(&settings.client_id), enc(&settings.client_secret)));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", refresh_token)
        .append_pair("token_type_hint", "refresh_token")
        .finish();
    let req = http::Request::post(endpoint.as_str())
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::AUTHORIZATION, format!("Basic {credentials}"))
        .body(body.into_bytes())
        .map_err(|_| "the revocation endpoint is not a usable URL".to_owned())?;
    let res = http.send(req).await.map_err(|e| format!("the revocation endpoint did not answer ({e})"))?;
    match res.status().as_u16() {
        200 => Ok(true),
        status => Err(format!("the revocation endpoint answered HTTP {status}")),
    }
}

/// One trip to PingOne: the URL to send the browser to, and the secrets to
/// keep server-side until it comes back.
pub struct AuthStart {
    pub url: Url,
    pub state: String,
    pub code_verifier: String,
    pub nonce: String,
}

/// Builds the authorization request for `scopes` with a fresh state, PKCE pair and nonce.
pub fn start(
    settings: &Settings,
    discovery: &Discovery,
    redirect_uri: &str,
    scopes: &[String],
) -> Result<AuthStart, Failure> {
    let state = random_token(43);
    let nonce = random_token(43);
    let verifier = PkceCodeVerifier::new(random_token(64));
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
    let state_for_url = state.clone();
    let (url, _) = client(settings, discovery, redirect_uri)?
        .authorize_url(move || CsrfToken::new(state_for_url))
        .add_scopes(scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge)
        .add_extra_param("nonce", nonce.clone())
        .add_extra_param("resource", settings.api_identifier.clone())
        .url();
    Ok(AuthStart { url, state, code_verifier: verifier.secret().clone(), nonce })
}

/// A person signed in at PingOne, verified.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedIn {
    pub sub: String,
    /// User claims from the ID token, completed by userinfo.
    pub claims: Map<String, Value>,
    pub access_token: String,
    pub expires_at: Option<u64>,
    pub scopes: Vec<String>,
    pub refresh_token: Option<String>,
    /// Group names from the `GROUPS_CLAIM` claim of the ID token and of
    /// userinfo (both are read: PingOne may put a mapped attribute in either).
    pub groups: Vec<String>,
}

impl SignedIn {
    pub fn label(&self) -> String {
        ["preferred_username", "name", "email"]
            .iter()
            .find_map(|k| self.claims.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
            .unwrap_or(&self.sub)
            .to_owned()
    }

    /// The props stored with the MCP grant (shape shared with `crate::mcp`).
    pub fn props(&self) -> Value {
        let mut p = json!({
            "subjectToken": self.access_token,
            "scopes": self.scopes,
            "claims": self.claims,
        });
        if let Some(e) = self.expires_at {
            p["subjectTokenExpiresAt"] = json!(e);
        }
        // The refresh token is not here: it is sealed into the grant's
        // metadata (see `upstream`), so a grant can revoke it when it ends.
        p
    }
}

/// Failures talking to PingOne are the upstream's: 502, never a stack trace.
pub fn upstream(e: DiscoveryError) -> Failure {
    match e {
        DiscoveryError::Unreachable { .. } => Failure::new(
            502,
            "temporarily_unavailable",
            "PingOne could not be reached",
            format!("Sign-in is unavailable because the identity provider did not answer ({e})."),
            ADVICE_LATER,
        ),
        DiscoveryError::BadResponse { .. } => Failure::new(
            502,
            "server_error",
            "PingOne answered unexpectedly",
            format!("The identity provider's {e}."),
            ADVICE_OPERATOR,
        ),
    }
}

fn bad_sign_in(detail: impl Into<String>) -> Failure {
    Failure::new(502, "server_error", "PingOne's answer could not be verified", detail, ADVICE_RESTART)
}

fn unreachable(what: &str, e: &OutboundError) -> Failure {
    Failure::new(
        502,
        "temporarily_unavailable",
        "PingOne could not be reached",
        format!("The identity provider's {what} did not answer ({e})."),
        ADVICE_LATER,
    )
}

/// What a trip to PingOne kept server-side for its return: the redirect URI
/// sent, the PKCE verifier and the nonce.
#[derive(Debug, Clone, Copy)]
pub struct Trip<'a> {
    pub redirect_uri: &'a str,
    pub code_verifier: &'a str,
    pub nonce: &'a str,
}

impl<'a> From<&'a StateRecord> for Trip<'a> {
    fn from(r: &'a StateRecord) -> Self {
        Trip { redirect_uri: &r.redirect_uri, code_verifier: &r.code_verifier, nonce: &r.nonce }
    }
}

/// Exchanges `code`, validates the ID token and cross-checks userinfo.
pub async fn finish(
    http: &dyn HttpClient,
    cache: &OidcCache,
    settings: &Settings,
    discovery: &Discovery,
    trip: Trip<'_>,
    code: &str,
    now: u64,
) -> Result<SignedIn, Failure> {
    let oauth_http = OAuth2Http(http);
    let token = client(settings, discovery, trip.redirect_uri)?
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(trip.code_verifier.to_owned()))
        .request_async(&oauth_http)
        .await
        .map_err(|e| match e {
            RequestTokenError::Request(e) => unreachable("token endpoint", &e),
            RequestTokenError::ServerResponse(r) => Failure::new(
                502,
                "server_error",
                "PingOne refused the sign-in",
                format!("The token endpoint answered {}.", r.error().as_ref()),
                ADVICE_RESTART,
            ),
            RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
                bad_sign_in("The token endpoint's answer is not a valid token response.")
            }
        })?;

    let id_token = token
        .extra_fields()
        .id_token
        .as_deref()
        .ok_or_else(|| bad_sign_in("The token response has no ID token (is the openid scope granted?)."))?;
    let expected = Expected {
        issuer: &discovery.issuer,
        client_id: &settings.client_id,
        nonce: trip.nonce,
        algorithms: &discovery.id_token_algorithms,
        now,
    };
    let jwks = cache.jwks(http, discovery, now, false).await.map_err(upstream)?;
    let claims = match id_token::verify(id_token, &jwks, &expected).await {
        // PingOne may have rotated its keys since we cached them: refetch once.
        Err(IdTokenError::UnknownKey(_)) => {
            let jwks = cache.jwks(http, discovery, now, true).await.map_err(upstream)?;
            id_token::verify(id_token, &jwks, &expected).await
        }
        other => other,
    }
    .map_err(|e| bad_sign_in(format!("Rejected ID token: {e}.")))?;
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();

    let access_token = token.access_token().secret().clone();
    let userinfo = fetch_userinfo(http, discovery, &access_token).await?;
    if userinfo.get("sub").and_then(Value::as_str) != Some(sub.as_str()) {
        return Err(bad_sign_in("The userinfo endpoint describes a different user than the ID token."));
    }

    let groups = settings.access.groups_of([&claims, &userinfo]);
    let mut user_claims = Map::new();
    for (k, v) in claims.into_iter().chain(userinfo) {
        if !PROTOCOL_CLAIMS.contains(&k.as_str()) {
            user_claims.insert(k, v);
        }
    }
    let expires_at = token.expires_in().map(|d| now + d.as_secs()).or_else(|| jwt_exp(&access_token));
    let scopes = match token.scopes() {
        Some(s) => s.iter().map(|s| s.to_string()).collect(),
        None => settings.scopes.clone(),
    };
    Ok(SignedIn {
        sub,
        claims: user_claims,
        access_token,
        expires_at,
        scopes,
        refresh_token: token.refresh_token().map(|r| r.secret().clone()),
        groups,
    })
}

async fn fetch_userinfo(
    http: &dyn HttpClient,
    discovery: &Discovery,
    access_token: &str,
) -> Result<Map<String, Value>, Failure> {
    userinfo(http, discovery, access_token).await.map_err(|e| match e {
        UserinfoError::Unreachable(e) => unreachable("userinfo endpoint", &e),
        UserinfoError::Refused(status) => bad_sign_in(format!("The userinfo endpoint answered HTTP {status}.")),
        UserinfoError::NotJson => bad_sign_in("The userinfo endpoint's answer is not a JSON object."),
    })
}

/// Why the userinfo endpoint gave no claims.
#[derive(Debug)]
pub enum UserinfoError {
    Unreachable(OutboundError),
    Refused(u16),
    NotJson,
}

impl std::fmt::Display for UserinfoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserinfoError::Unreachable(e) => write!(f, "the userinfo endpoint did not answer ({e})"),
            UserinfoError::Refused(status) => write!(f, "the userinfo endpoint answered HTTP {status}"),
            UserinfoError::NotJson => f.write_str("the userinfo endpoint's answer is not a JSON object"),
        }
    }
}

/// The claims PingOne's userinfo endpoint gives for `access_token`.
pub async fn userinfo(
    http: &dyn HttpClient,
    discovery: &Discovery,
    access_token: &str,
) -> Result<Map<String, Value>, UserinfoError> {
    let req = get_json_request(discovery.userinfo_endpoint.as_str(), Some(access_token))
        .map_err(UserinfoError::Unreachable)?;
    let res = http.send(req).await.map_err(UserinfoError::Unreachable)?;
    if !res.status().is_success() {
        return Err(UserinfoError::Refused(res.status().as_u16()));
    }
    serde_json::from_slice(res.body()).map_err(|_| UserinfoError::NotJson)
}

/// `exp` of a JWT access token, when PingOne omits `expires_in` (not verified:
/// only used to know when to stop using the token).
fn jwt_exp(token: &str) -> Option<u64> {
    let payload = b64url_decode(token.split('.').nth(1)?)?;
    serde_json::from_slice::<Value>(&payload).ok()?.get("exp")?.as_u64()
}
