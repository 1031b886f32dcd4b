//! Dynamic client registration (RFC 7591). Every field is checked; what is
//! stored is what the response echoes, and the secret is kept only as a hash.

use super::error::{json_response, OAuthError, Reason};
use super::records::{client_key, ClientInfo};
use super::{redirect, token_str, Provider};
use crate::crypto::random_token;
use crate::text::has_hidden_controls;
use http::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

/// Largest registration document accepted.
pub const MAX_REGISTRATION_BYTES: usize = 64 * 1024;
const MAX_REDIRECT_URIS: usize = 20;
const MAX_TEXT: usize = 256;
const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];
pub(crate) const GRANT_TYPES: [&str; 2] = ["authorization_code", "refresh_token"];

/// The registration limit counts per fixed hour.
const RATE_WINDOW_SECS: u64 = 3600;
/// KV prefix of the per-source registration counters.
pub const RATE_PREFIX: &str = "registration_rate:";

/// Who is registering, for the limit: the `CF-Connecting-IP` header Cloudflare
/// sets (a client cannot forge it there), an IPv6 address reduced to its /64
/// (one host usually has a whole /64). `None` without the header.
fn registration_source(req: &Request<Vec<u8>>) -> Option<String> {
    let ip = req.headers().get("cf-connecting-ip")?.to_str().ok()?.trim();
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => Some(v4.to_string()),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
        }
    }
}

/// A refusal of a registration (category `register`).
const fn reason(check: &'static str) -> Reason {
    Reason::new("register", check)
}

fn meta_err(d: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client_metadata(d).because(reason("metadata_invalid"))
}

fn opt_string(doc: &Map<String, Value>, name: &str, max: usize) -> Result<Option<String>, OAuthError> {
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= max && !has_hidden_controls(s) => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(meta_err(format!(
            "{name} is too long or contains control, bidirectional or other invisible formatting characters"
        ))),
        Some(_) => Err(meta_err(format!("{name} must be a string"))),
    }
}

fn opt_http_uri(doc: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    let Some(s) = opt_string(doc, name, redirect::MAX_REDIRECT_URI_LEN)? else { return Ok(None) };
    match url::Url::parse(&s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(s)),
        _ => Err(meta_err(format!("{name} must be an http(s) URL"))),
    }
}

fn opt_string_list(doc: &Map<String, Value>, name: &str, max_items: usize) -> Result<Option<Vec<String>>, OAuthError> {
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.len() <= max_items => items
            .iter()
            .map(|v| v.as_str().filter(|s| s.len() <= redirect::MAX_REDIRECT_URI_LEN).map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| meta_err(format!("{name} must be an array of strings"))),
        Some(Value::Array(_)) => Err(meta_err(format!("{name} has too many entries"))),
        Some(_) => Err(meta_err(format!("{name} must be an array of strings"))),
    }
}

/// Validates a registration document into the client to store (without ids).
///
/// Every redirect URI must be listable ([`redirect::check_listable`]) and at
/// least one usable ([`redirect::check_usable`], private-use schemes only
/// with `allow_private_use`); the others are kept, and refused only when an
/// authorization request uses one (as workers-oauth-provider 1.2.1 does: Cursor
/// lists `cursor://…` beside its https and loopback callbacks).
/// `extra_grants`: grant types this server accepts besides [`GRANT_TYPES`]
/// (the token exchange, when on), also registered by default.
pub fn validate_metadata(
    doc: &Value,
    allow_private_use: bool,
    extra_grants: &[&str],
) -> Result<ClientInfo, OAuthError> {
    let doc = doc.as_object().ok_or_else(|| meta_err("The registration must be a JSON object"))?;
    let redirect_uris =
        opt_string_list(doc, "redirect_uris", MAX_REDIRECT_URIS)?.filter(|l| !l.is_empty()).ok_or_else(|| {
            OAuthError::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", "redirect_uris must list at least one URI")
                .because(reason("redirect_uris_missing"))
        })?;
    let refuse = |why: String, uri: &str| {
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            format!("{why}: {}", uri.chars().take(100).collect::<String>()),
        )
        .because(reason("redirect_uri_invalid"))
    };
    let application_type = match opt_string(doc, "application_type", 16)?.as_deref() {
        None => None,
        Some(t @ ("web" | "native")) => Some(t.to_owned()),
        Some(_) => return Err(meta_err("application_type must be web or native")),
    };
    let web = application_type.as_deref() == Some("web");
    let mut first_unusable = None;
    let mut usable = false;
    for uri in &redirect_uris {
        let url = redirect::check_listable(uri).map_err(|why| refuse(why, uri))?;
        match redirect::check_usable(&url, allow_private_use).and_then(|()| redirect::check_web(&url, web)) {
            Ok(()) => usable = true,
            Err(why) => {
                first_unusable.get_or_insert((why, uri));
            }
        }
    }
    if let (false, Some((why, uri))) = (usable, first_unusable) {
        return Err(refuse(why, uri));
    }
    let method = opt_string(doc, "token_endpoint_auth_method", 64)?.unwrap_or_else(|| "client_secret_basic".into());
    if !AUTH_METHODS.contains(&method.as_str()) {
        return Err(meta_err(format!(
            "token_endpoint_auth_method '{method}' is not supported; use one of {}",
            AUTH_METHODS.join(", ")
        )));
    }
    // Without grant_types we register both grants MCP clients use (and say so in the response).
    let grant_types = opt_string_list(doc, "grant_types", 8)?
        .unwrap_or_else(|| GRANT_TYPES.iter().chain(extra_grants).map(|g| (*g).to_owned()).collect());
    if let Some(g) =
        grant_types.iter().find(|g| !GRANT_TYPES.contains(&g.as_str()) && !extra_grants.contains(&g.as_str()))
    {
        return Err(meta_err(format!("grant type '{g}' is not supported")));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(meta_err("grant_types must include authorization_code"));
    }
    let response_types = opt_string_list(doc, "response_types", 4)?.unwrap_or_else(|| vec!["code".into()]);
    if response_types != ["code"] {
        return Err(meta_err("response_types must be [\"code\"]"));
    }
    Ok(ClientInfo {
        client_id: String::new(),
        client_secret: None,
        redirect_uris,
        client_name: opt_string(doc, "client_name", MAX_TEXT)?,
        logo_uri: opt_http_uri(doc, "logo_uri")?,
        client_uri: opt_http_uri(doc, "client_uri")?,
        policy_uri: opt_http_uri(doc, "policy_uri")?,
        tos_uri: opt_http_uri(doc, "tos_uri")?,
        contacts: match opt_string_list(doc, "contacts", 10)? {
            Some(c) if c.iter().any(|s| has_hidden_controls(s)) => {
                return Err(meta_err(
                    "contacts contain control, bidirectional or other invisible formatting characters",
                ))
            }
            other => other,
        },
        grant_types,
        response_types,
        registration_date: 0,
        token_endpoint_auth_method: method,
        auth_method_explicit: doc.contains_key("token_endpoint_auth_method"),
        token_endpoint_auth_methods_supported: None,
        jwks_uri: None,
        jwks: None,
        registration_expires_at: None,
        application_type,
        awaiting_first_token: false,
    })
}

impl Provider<'_> {
    /// The server's registration policy: public clients only when allowed.
    pub(crate) fn check_policy(&self, client: &ClientInfo) -> Result<(), OAuthError> {
        if client.is_public() && !self.config.allow_public_clients {
            return Err(meta_err(
                "token_endpoint_auth_method 'none' (public client) is not accepted by this server; \
                 register a confidential client (client_secret_basic or client_secret_post)",
            )
            .because(reason("public_client_refused")));
        }
        Ok(())
    }

    /// `POST /register`.
    pub(crate) async fn registration_endpoint(&self, req: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        self.register_inner(req).await.unwrap_or_else(OAuthError::into_response)
    }

    async fn register_inner(&self, req: &Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OAuthError> {
        if !self.config.dynamic_registration {
            return Err(OAuthError::new(
                StatusCode::FORBIDDEN,
                "access_denied",
                "Dynamic client registration is disabled on this server; ask its operator for a registered client",
            )
            .because(reason("disabled")));
        }
        let doc = registration_document(req)?;
        if let Some(policy) = self.registration_policy {
            policy.check(&doc, req).await.map_err(|e| {
                if e.reason == Reason::UNSPECIFIED {
                    e.because(reason("policy_refused"))
                } else {
                    e
                }
            })?;
        }
        let source = registration_source(req);
        let counter = match (&source, self.config.registration_limit) {
            (Some(src), limit) if limit > 0 => Some(self.registration_count(src, limit).await?),
            _ => None,
        };
        let (client, secret) = self.create_client(&doc, Some(self.config.client_ttl)).await?;
        if let Some((key, count, ttl)) = counter {
            // Best effort: the client exists either way.
            let _ = self.store.put(&key, &(count + 1).to_string(), Some(ttl)).await;
        }
        let body = registration_body(&client, secret.as_deref(), Some(self.now + self.config.client_ttl));
        Ok(json_response(StatusCode::CREATED, &body))
    }

    /// This hour's registrations from `source` (its counter key, the count and
    /// the counter's KV lifetime), or the 429 once the limit is reached.
    async fn registration_count(&self, source: &str, limit: u32) -> Result<(String, u64, u64), OAuthError> {
        let window_start = self.now - self.now % RATE_WINDOW_SECS;
        let left = window_start + RATE_WINDOW_SECS - self.now;
        let key = format!("{RATE_PREFIX}{}:{window_start}", crate::crypto::sha256_hex(source));
        let count = self.store.get(&key).await?.and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        if count >= u64::from(limit) {
            return Err(OAuthError {
                retry_after: Some(u32::try_from(left).unwrap_or(u32::MAX)),
                ..OAuthError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "temporarily_unavailable",
                    format!(
                        "Too many client registrations from this network ({limit} an hour); \
                         try again in {left} seconds, or reuse the client_id you registered"
                    ),
                )
                .because(reason("rate_limited"))
            });
        }
        Ok((key, count, left.max(crate::store::MIN_TTL_SECS)))
    }

    /// Validates `doc`, applies the policy and stores a new client for
    /// `ttl` seconds (`None`: until deleted); the secret, shown only now.
    pub(crate) async fn create_client(
        &self,
        doc: &Value,
        ttl: Option<u64>,
    ) -> Result<(ClientInfo, Option<String>), OAuthError> {
        let mut client =
            validate_metadata(doc, self.config.allow_private_use_schemes, &self.config.extra_grant_types())?;
        self.check_policy(&client)?;
        client.client_id = random_token(token_str::ID_LEN);
        client.registration_date = self.now;
        let secret = (!client.is_public()).then(|| random_token(token_str::SECRET_LEN));
        client.client_secret = secret.as_deref().map(token_str::hash);
        // A dynamic registration is on probation until its first token (see Config::unused_client_ttl).
        let unused = self.config.unused_client_ttl;
        let ttl = match ttl {
            Some(t) if unused != 0 && unused < t => {
                client.awaiting_first_token = true;
                Some(unused)
            }
            other => other,
        };
        client.registration_expires_at = ttl.map(|t| self.now + t);
        let raw = serde_json::to_string(&client)
            .map_err(|_| OAuthError::invalid_request("registration").because(reason("record_unserializable")))?;
        self.store.put(&client_key(&client.client_id), &raw, ttl).await?;
        Ok((client, secret))
    }
}

impl Provider<'_> {
    /// Renews a dynamic registration that is in use (after a successful token
    /// request) once less than half of [`Config::client_ttl`](crate::Config)
    /// is left, when [`Config::renew_clients_in_use`](crate::Config) is on:
    /// the stored record is rewritten, fields this version does not know
    /// included, with a new `registrationExpiresAt` and KV expiry a full TTL
    /// away. One write per client per half TTL; best effort (the token answer
    /// is already made), and a client deleted meanwhile stays deleted unless
    /// the delete lands between the read and the write (KV has no
    /// compare-and-set).
    ///
    /// A registration awaiting its first token ([`ClientInfo::awaiting_first_token`])
    /// is promoted here, whatever the renewal setting: a full TTL from now.
    pub(crate) async fn renew_client_if_due(&self, client: &ClientInfo) {
        let ttl = self.config.client_ttl;
        let Some(expires_at) = client.registration_expires_at else { return };
        let due = self.config.renew_clients_in_use && expires_at.saturating_sub(self.now) <= ttl / 2;
        if !due && !client.awaiting_first_token {
            return;
        }
        let key = client_key(&client.client_id);
        let Ok(Some(raw)) = self.store.get(&key).await else { return };
        let Ok(Value::Object(mut record)) = serde_json::from_str::<Value>(&raw) else { return };
        if !record.contains_key("registrationExpiresAt") {
            return;
        }
        record.remove("awaitingFirstToken");
        record.insert("registrationExpiresAt".into(), json!(self.now + ttl));
        let _ = self.store.put(&key, &Value::Object(record).to_string(), Some(ttl)).await;
    }
}

/// The RFC 7591 §3.2.1 answer for a new client; `secret_expires_at` `None`
/// is written as 0 (the secret does not expire).
pub fn registration_body(client: &ClientInfo, secret: Option<&str>, secret_expires_at: Option<u64>) -> Value {
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.registration_date,
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types,
        "response_types": client.response_types,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
    });
    let fields = [
        ("client_name", &client.client_name),
        ("logo_uri", &client.logo_uri),
        ("client_uri", &client.client_uri),
        ("policy_uri", &client.policy_uri),
        ("tos_uri", &client.tos_uri),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            body[name] = json!(v);
        }
    }
    if let Some(c) = &client.contacts {
        body["contacts"] = json!(c);
    }
    if let Some(t) = &client.application_type {
        body["application_type"] = json!(t);
    }
    if let Some(s) = secret {
        body["client_secret"] = json!(s);
        body["client_secret_issued_at"] = json!(client.registration_date);
        body["client_secret_expires_at"] = json!(secret_expires_at.unwrap_or(0));
    }
    body
}

/// The client metadata a registration request carries (`POST`, JSON, at most
/// [`MAX_REGISTRATION_BYTES`]); shared by `/register` and the admin endpoint.
pub(super) fn registration_document(req: &Request<Vec<u8>>) -> Result<Value, OAuthError> {
    if req.method() != Method::POST {
        return Err(OAuthError::method_not_allowed());
    }
    if req.body().len() > MAX_REGISTRATION_BYTES {
        return Err(OAuthError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "The registration document is too large",
        )
        .because(reason("payload_too_large")));
    }
    serde_json::from_slice(req.body())
        .map_err(|_| OAuthError::invalid_request("The body must be a JSON object").because(reason("json_malformed")))
}
