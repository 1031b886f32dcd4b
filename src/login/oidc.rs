//! The OpenID Connect client of PingOne: the authorization request (state,
//! PKCE S256, nonce, `resource`), the code exchange (client_secret_basic),
//! ID token validation and the userinfo cross-check. The token requests are
//! built here (RFC 6749 §2.3.1, §4.1.3, §5, §6), as the `oauth2` crate built
//! them, without its weight in the Wasm bundle.

use super::discovery::{Discovery, DiscoveryError, OidcCache};
use super::id_token::{self, Expected, IdTokenError};
use super::pages::{Failure, ADVICE_LATER, ADVICE_OPERATOR, ADVICE_RESTART};
use super::records::StateRecord;
use super::settings::Settings;
use crate::outbound::{get_json_request, HttpClient, OutboundError};
use crate::util::crypto::{b64url, b64url_decode, random_token, sha256};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use url::Url;

/// A successful token response (RFC 6749 §5.1) with OpenID Connect's `id_token`.
#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Required by RFC 6749; any value is accepted (PingOne sends `Bearer`).
    #[allow(dead_code)]
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    /// Space-delimited.
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

impl TokenResponse {
    fn scopes(&self) -> Option<Vec<String>> {
        self.scope.as_deref().map(|s| s.split(' ').map(str::to_owned).collect())
    }
}

/// An error response of the token endpoint (RFC 6749 §5.2).
#[derive(Debug, Deserialize)]
struct TokenErrorResponse {
    error: String,
    #[allow(dead_code)]
    #[serde(default)]
    error_description: Option<String>,
    #[allow(dead_code)]
    #[serde(default)]
    error_uri: Option<String>,
}

/// Why the token endpoint gave no tokens.
enum TokenError {
    /// An error response: its `error` code.
    Refused(String),
    /// No answer.
    Request(OutboundError),
    /// An answer that is neither a token response nor an error response.
    Unusable,
}

/// `Basic base64(urlencode(client_id):urlencode(client_secret))` (RFC 6749 §2.3.1).
fn basic_credentials(settings: &Settings) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", enc(&settings.client_id), enc(&settings.client_secret))))
}

/// One request to PingOne's token endpoint with the worker's client credentials.
async fn token_request(
    http: &dyn HttpClient,
    settings: &Settings,
    discovery: &Discovery,
    params: &[(&str, &str)],
) -> Result<TokenResponse, TokenError> {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let req = http::Request::post(discovery.token_endpoint.as_str())
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(http::header::AUTHORIZATION, basic_credentials(settings))
        .body(body.into_bytes())
        .map_err(|_| TokenError::Unusable)?;
    let res = http.send(req).await.map_err(TokenError::Request)?;
    if res.status() != http::StatusCode::OK {
        return Err(match serde_json::from_slice::<TokenErrorResponse>(res.body()) {
            Ok(e) => TokenError::Refused(e.error),
            Err(_) => TokenError::Unusable,
        });
    }
    // Media types are case-insensitive and may carry parameters (charset).
    let json = res
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_none_or(|ct| ct.to_str().ok().is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json")));
    if !json || res.body().is_empty() {
        return Err(TokenError::Unusable);
    }
    serde_json::from_slice(res.body()).map_err(|_| TokenError::Unusable)
}

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

/// The callback URL, which must be a URL.
fn checked_redirect(redirect_uri: &str) -> Result<&str, Failure> {
    Url::parse(redirect_uri).map(|_| redirect_uri).map_err(|_| {
        Failure::new(400, "invalid_request", "Unusable server address", "the callback URL is invalid", ADVICE_OPERATOR)
    })
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

/// Refreshes the PingOne access token (RFC 6749 §6) with the worker's client credentials.
pub async fn refresh(
    http: &dyn HttpClient,
    settings: &Settings,
    discovery: &Discovery,
    refresh_token: &str,
    now: u64,
) -> Result<Refreshed, RefreshError> {
    let params = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    let token = token_request(http, settings, discovery, &params).await.map_err(|e| match e {
        TokenError::Refused(code) if code == "invalid_grant" => RefreshError::Dead,
        TokenError::Refused(code) => RefreshError::Failed(format!("the token endpoint answered {code}")),
        TokenError::Request(e) => RefreshError::Failed(format!("the token endpoint did not answer ({e})")),
        TokenError::Unusable => RefreshError::Failed("the token endpoint's answer is not a token response".into()),
    })?;
    let scopes = token.scopes();
    Ok(Refreshed {
        expires_at: token.expires_in.map(|d| now + d).or_else(|| jwt_exp(&token.access_token)),
        scopes,
        refresh_token: token.refresh_token,
        access_token: token.access_token,
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
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", refresh_token)
        .append_pair("token_type_hint", "refresh_token")
        .finish();
    let req = http::Request::post(endpoint.as_str())
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::AUTHORIZATION, basic_credentials(settings))
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
    let code_verifier = random_token(64);
    let challenge = b64url(sha256(code_verifier.as_bytes()));
    let redirect_uri = checked_redirect(redirect_uri)?;
    let scope = scopes.join(" ");
    let mut url = discovery.authorization_endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query.extend_pairs([
            ("response_type", "code"),
            ("client_id", settings.client_id.as_str()),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("redirect_uri", redirect_uri),
        ]);
        if !scope.is_empty() {
            query.append_pair("scope", &scope);
        }
        query.append_pair("nonce", &nonce).append_pair("resource", &settings.api_identifier);
    }
    Ok(AuthStart { url, state, code_verifier, nonce })
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

/// Exchanges `code`, validates the ID token and cross-checks userinfo.
pub async fn finish(
    http: &dyn HttpClient,
    cache: &OidcCache,
    settings: &Settings,
    discovery: &Discovery,
    record: &StateRecord,
    code: &str,
    now: u64,
) -> Result<SignedIn, Failure> {
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", record.code_verifier.as_str()),
        ("redirect_uri", checked_redirect(&record.redirect_uri)?),
    ];
    let token = token_request(http, settings, discovery, &params).await.map_err(|e| match e {
        TokenError::Request(e) => unreachable("token endpoint", &e),
        TokenError::Refused(code) => Failure::new(
            502,
            "server_error",
            "PingOne refused the sign-in",
            format!("The token endpoint answered {code}."),
            ADVICE_RESTART,
        ),
        TokenError::Unusable => bad_sign_in("The token endpoint's answer is not a valid token response."),
    })?;

    let id_token = token
        .id_token
        .as_deref()
        .ok_or_else(|| bad_sign_in("The token response has no ID token (is the openid scope granted?)."))?;
    let expected = Expected {
        issuer: &discovery.issuer,
        client_id: &settings.client_id,
        nonce: &record.nonce,
        algorithms: &discovery.id_token_algorithms,
        now,
    };
    let jwks = cache.jwks(http, discovery, now, false).await.map_err(upstream)?;
    let claims = match id_token::validate(id_token, &jwks, &expected) {
        // PingOne may have rotated its keys since we cached them: refetch once.
        Err(IdTokenError::UnknownKey(_)) => {
            let jwks = cache.jwks(http, discovery, now, true).await.map_err(upstream)?;
            id_token::validate(id_token, &jwks, &expected)
        }
        other => other,
    }
    .map_err(|e| bad_sign_in(format!("Rejected ID token: {e}.")))?;
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();

    let access_token = token.access_token.clone();
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
    let expires_at = token.expires_in.map(|d| now + d).or_else(|| jwt_exp(&access_token));
    let scopes = token.scopes().unwrap_or_else(|| settings.scopes.clone());
    Ok(SignedIn {
        sub,
        claims: user_claims,
        access_token,
        expires_at,
        scopes,
        refresh_token: token.refresh_token,
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
