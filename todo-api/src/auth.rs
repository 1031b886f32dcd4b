//! Bearer token verification: a PingOne JWT access token, RS256 only, checked
//! against the issuer's JWKS, `iss`, `aud`, `exp`/`nbf` (with [`LEEWAY_SECS`])
//! and `sub`; then the scope a route needs. Time comes from the caller so the
//! checks are the same in tests and on Workers. Errors never contain the token.

use crate::config::Config;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{json, Map, Value};
use std::fmt;

pub const READ_SCOPE: &str = "todo_api:read";
pub const WRITE_SCOPE: &str = "todo_api:write";
/// Clock skew tolerated between PingOne and the Worker.
pub const LEEWAY_SECS: u64 = 30;
/// Longest bearer token accepted (PingOne's are around 1 KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// `realm` of every challenge.
pub const REALM: &str = "todo-api";

/// Who is calling, from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub scopes: Vec<String>,
    /// The token's `exp` (Unix seconds, rounded down).
    pub expires_at: u64,
}

impl Claims {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `Ok` when the token carries `scope`, else the 403.
    pub fn require(&self, scope: &'static str) -> Result<(), AuthError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope(scope))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    Missing,
    Malformed,
    /// `alg` is not RS256 (`none`, HMAC, other RSA or EC algorithms).
    AlgorithmNotAllowed,
    /// No published key has the token's `kid` (even after a refetch).
    UnknownKey,
    BadSignature,
    WrongIssuer,
    WrongAudience,
    Expired,
    NotYetValid,
    MissingClaim(String),
    /// Valid token without the scope the route needs (403).
    InsufficientScope(&'static str),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => f.write_str("Missing bearer token"),
            AuthError::Malformed => f.write_str("The access token is not a well-formed JWT"),
            AuthError::AlgorithmNotAllowed => f.write_str("The access token must be signed with RS256"),
            AuthError::UnknownKey => f.write_str("The access token is signed with a key the issuer does not publish"),
            AuthError::BadSignature => f.write_str("The access token signature is invalid"),
            AuthError::WrongIssuer => f.write_str("The access token was issued by another issuer"),
            AuthError::WrongAudience => f.write_str("The access token is not meant for this API (aud)"),
            AuthError::Expired => f.write_str("The access token has expired"),
            AuthError::NotYetValid => f.write_str("The access token is not valid yet (nbf)"),
            AuthError::MissingClaim(c) => write!(f, "The access token lacks the {c} claim"),
            AuthError::InsufficientScope(s) => write!(f, "This request needs the {s} scope"),
        }
    }
}

impl std::error::Error for AuthError {}

impl AuthError {
    pub fn status(&self) -> u16 {
        match self {
            AuthError::InsufficientScope(_) => 403,
            _ => 401,
        }
    }

    /// The `error` code of the challenge and of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::InsufficientScope(_) => "insufficient_scope",
            _ => "invalid_token",
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3). Descriptions are fixed
    /// strings without quotes or backslashes.
    pub fn challenge(&self) -> String {
        let mut c = format!("Bearer realm=\"{REALM}\", error=\"{}\"", self.code());
        if let AuthError::InsufficientScope(scope) = self {
            c.push_str(&format!(", scope=\"{scope}\""));
        }
        c.push_str(&format!(", error_description=\"{self}\""));
        c
    }

    /// The JSON body of the 401/403.
    pub fn body(&self) -> Value {
        let mut body = json!({ "error": self.code(), "error_description": self.to_string() });
        if let AuthError::InsufficientScope(scope) = self {
            body["scope"] = json!(scope);
        }
        body
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization.map(str::trim).filter(|v| !v.is_empty()).ok_or(AuthError::Missing)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    if token.len() > MAX_TOKEN_BYTES || token.contains(char::is_whitespace) {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

/// What the header says, read before any key is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    pub kid: Option<String>,
}

/// Reads the JOSE header and refuses any `alg` but RS256 (so `none`, HMAC
/// with the public key as secret, and the like never reach a key).
pub fn inspect(token: &str) -> Result<TokenHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(AuthError::Malformed);
    };
    let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| AuthError::Malformed)?;
    let header: Map<String, Value> = serde_json::from_slice(&header).map_err(|_| AuthError::Malformed)?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "RS256" => {}
        Some(Value::String(_)) => return Err(AuthError::AlgorithmNotAllowed),
        _ => return Err(AuthError::Malformed),
    }
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(AuthError::Malformed),
    };
    Ok(TokenHeader { kid })
}

/// RSA signing keys that may have signed an RS256 token with `kid`.
fn map_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => AuthError::AlgorithmNotAllowed,
        _ => AuthError::Malformed,
    }
}

/// A NumericDate claim (integer or fractional seconds).
fn seconds(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| AuthError::MissingClaim(name.to_owned())),
    }
}

/// The `scope` claim: a space-separated string (PingOne) or an array of strings.
pub fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("scope") {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).flat_map(str::split_whitespace).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    }
}

/// Verifies `token` with `keys` for `config` at `now` (Unix seconds).
pub fn verify(token: &str, keys: &JwkSet, config: &Config, now: u64) -> Result<Claims, AuthError> {
    // RSA-only verification backend (a no-op after the first call).
    jwt_rsa::install();
    let header = inspect(token)?;
    let candidates = jwt_rsa::candidate_keys(keys, Algorithm::RS256, header.kid.as_deref());
    if candidates.is_empty() {
        return Err(AuthError::UnknownKey);
    }

    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[config.issuer.as_str()]);
    validation.set_audience(&[config.audience.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Time is checked below against the caller's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;

    // A bad signature may be another key's; anything else is about the token itself.
    let claims = jwt_rsa::decode_with_any::<Map<String, Value>>(token, &candidates, &validation)
        .map_err(|kind| map_error(&kind))?
        .claims;

    let now = now as f64;
    let leeway = LEEWAY_SECS as f64;
    let exp = seconds(&claims, "exp")?.ok_or_else(|| AuthError::MissingClaim("exp".into()))?;
    if now > exp + leeway {
        return Err(AuthError::Expired);
    }
    if let Some(nbf) = seconds(&claims, "nbf")? {
        if nbf > now + leeway {
            return Err(AuthError::NotYetValid);
        }
    }
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 1024 => s.clone(),
        _ => return Err(AuthError::MissingClaim("sub".into())),
    };
    Ok(Claims { sub, scopes: scopes(&claims), expires_at: exp.max(0.0) as u64 })
}

#[cfg(test)]
mod tests;
