//! The worker as the user's OAuth client toward a downstream with its own
//! authorization (`auth: "oauth"`), decided without I/O: discovery from the
//! downstream's 401 (RFC 9728 protected-resource metadata, then RFC 8414
//! authorization-server metadata with the OpenID fallback), which client
//! identity to use (configured > Client ID Metadata Document > dynamic
//! registration), and the authorization request (PKCE S256, `state`,
//! `resource`, scopes).

use super::challenge;
use crate::vault::model::{AuthMethod, Client};
use serde_json::{json, Value};
use url::Url;

/// Where the downstream's authorization server sends the browser back.
pub const CALLBACK_PATH: &str = "/connect/callback";
/// The Client ID Metadata Document this worker publishes for itself.
pub const CLIENT_DOCUMENT_PATH: &str = "/downstream-client.json";
/// The cookie binding a connect step to the browser that started it.
pub const STATE_COOKIE: &str = "__Host-connect_state";
/// Seconds the user has to finish the downstream's consent.
pub const STATE_TTL_SECS: u64 = 600;
const PRM_PATH: &str = "/.well-known/oauth-protected-resource";

/// Why discovery or a step of the flow failed (for the log and the page; no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed(pub String);

fn failed(why: impl Into<String>) -> Failed {
    Failed(why.into())
}

/// The request that shows whether the downstream needs authorization: an MCP
/// `ping` without a token (any MCP server with OAuth answers 401 before
/// reading it; one without answers something else).
pub fn probe_request(url: &Url) -> http::Request<Vec<u8>> {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "ping"}).to_string();
    http::Request::post(url.as_str())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.into_bytes())
        .expect("a parsed URL")
}

/// What the probe said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Anything but 401: the downstream needs no authorization.
    Public,
    /// 401, with the `resource_metadata` its Bearer challenge named, if any.
    Protected { resource_metadata: Option<String> },
}

/// Reads the probe's status and `WWW-Authenticate` values.
pub fn read_probe(status: u16, www_authenticate: &[&str]) -> Probe {
    if status != 401 {
        return Probe::Public;
    }
    let resource_metadata = www_authenticate
        .iter()
        .filter_map(|v| challenge::parse(v).ok())
        .flatten()
        .filter(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        .find_map(|c| c.params.into_iter().find(|(k, _)| k.eq_ignore_ascii_case("resource_metadata")).map(|(_, v)| v));
    Probe::Protected { resource_metadata }
}

/// Where to look for the protected-resource metadata: the challenge's URL
/// (when on the downstream's origin or https), then RFC 9728's well-known
/// URL for the endpoint's path, then the origin's.
pub fn prm_urls(mcp_url: &Url, from_challenge: Option<&str>) -> Vec<String> {
    let origin = mcp_url.origin().ascii_serialization();
    let mut out = Vec::new();
    if let Some(u) = from_challenge.and_then(|c| Url::parse(c).ok()) {
        if u.scheme() == "https" || u.origin() == mcp_url.origin() {
            out.push(u.to_string());
        }
    }
    let path = mcp_url.path().trim_end_matches('/');
    for candidate in [format!("{origin}{PRM_PATH}{path}"), format!("{origin}{PRM_PATH}")] {
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// The downstream's resource and authorization server, from its
/// protected-resource metadata. The resource must be on the endpoint's origin
/// and at or above its path (RFC 9728 §3.3: what the client connected to).
pub fn read_prm(body: &[u8], mcp_url: &Url) -> Result<(String, String), Failed> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| failed("its protected-resource metadata is not JSON"))?;
    let resource = doc["resource"]
        .as_str()
        .and_then(|r| Url::parse(r).ok())
        .ok_or(failed("its metadata names no resource URL"))?;
    let prefix = resource.path().trim_end_matches('/');
    let under = prefix.is_empty()
        || mcp_url.path() == prefix
        || mcp_url.path().strip_prefix(prefix).is_some_and(|r| r.starts_with('/'));
    if resource.origin() != mcp_url.origin() || !under {
        return Err(failed("its metadata names a resource that is not the server's URL"));
    }
    let issuer = doc["authorization_servers"]
        .get(0)
        .and_then(Value::as_str)
        .ok_or(failed("its metadata names no authorization server"))?;
    Ok((canonical(&resource), issuer.to_owned()))
}

/// A resource URL as sent in `resource=` and used as the vault's key: without
/// a trailing slash on a path (the origin alone keeps its `/`).
fn canonical(u: &Url) -> String {
    let s = u.as_str();
    if u.path() != "/" {
        s.trim_end_matches('/').to_owned()
    } else {
        s.to_owned()
    }
}

/// RFC 8414 §3.1 (the well-known segment inserted before the issuer's path),
/// then OpenID Connect Discovery in both placements.
pub fn as_metadata_urls(issuer: &str) -> Vec<String> {
    let Ok(u) = Url::parse(issuer) else { return Vec::new() };
    let origin = u.origin().ascii_serialization();
    let path = u.path().trim_end_matches('/');
    let mut out = vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
    ];
    if !path.is_empty() {
        out.push(format!("{origin}{path}/.well-known/openid-configuration"));
    }
    out
}

/// What of the authorization server's metadata the flow uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub client_id_metadata_document_supported: bool,
}

impl AsMetadata {
    /// Read through `Value` (a derive costs the Wasm bundle more).
    fn from_json(v: &Value) -> Option<Self> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let list = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        Some(Self {
            issuer: text("issuer")?,
            authorization_endpoint: text("authorization_endpoint")?,
            token_endpoint: text("token_endpoint")?,
            registration_endpoint: text("registration_endpoint"),
            revocation_endpoint: text("revocation_endpoint"),
            code_challenge_methods_supported: list("code_challenge_methods_supported"),
            token_endpoint_auth_methods_supported: list("token_endpoint_auth_methods_supported"),
            client_id_metadata_document_supported: v
                .get("client_id_metadata_document_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// The metadata, checked: its issuer is the one asked for (RFC 8414 §3.3)
/// and it supports PKCE with S256 (MCP: a client must not go on otherwise).
pub fn read_as(body: &[u8], issuer: &str) -> Result<AsMetadata, Failed> {
    let m = serde_json::from_slice::<Value>(body)
        .ok()
        .as_ref()
        .and_then(AsMetadata::from_json)
        .ok_or(failed("its authorization server metadata is not usable"))?;
    if m.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(failed("its authorization server metadata names another issuer"));
    }
    if !m.code_challenge_methods_supported.iter().any(|c| c == "S256") {
        return Err(failed("its authorization server does not support PKCE with S256"));
    }
    // Codes, refresh tokens and a configured client's secret go to these: never in clear
    // (http only on loopback, as for the downstream's own URL).
    let secure = |e: &String| super::config::endpoint_url("endpoint", e, false).is_ok();
    let endpoints = [Some(&m.authorization_endpoint), Some(&m.token_endpoint), m.registration_endpoint.as_ref()];
    if !endpoints.into_iter().chain([m.revocation_endpoint.as_ref()]).flatten().all(secure) {
        return Err(failed("its authorization server metadata names an endpoint that is not https"));
    }
    Ok(m)
}

/// Who this worker is at the downstream's authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The `client_id` (and secret) configured for the downstream.
    Configured(Client),
    /// The URL of this worker's Client ID Metadata Document.
    Document(String),
    /// Register dynamically (RFC 7591) once per issuer.
    Register(String),
}

/// Configured client first, then a metadata document (the server accepts
/// them, and this worker's origin is https, as document URLs must be), then
/// registration; `None` when the server offers none of them.
pub fn choose_identity(configured: Option<(&str, Option<&str>)>, m: &AsMetadata, own_origin: &str) -> Option<Identity> {
    if let Some((client_id, secret)) = configured {
        let auth_method = match secret {
            None => AuthMethod::None,
            Some(_)
                if m.token_endpoint_auth_methods_supported.iter().any(|a| a == "client_secret_post")
                    && !m.token_endpoint_auth_methods_supported.iter().any(|a| a == "client_secret_basic") =>
            {
                AuthMethod::ClientSecretPost
            }
            Some(_) => AuthMethod::ClientSecretBasic,
        };
        return Some(Identity::Configured(client(m, client_id, secret.map(str::to_owned), auth_method)));
    }
    if m.client_id_metadata_document_supported && own_origin.starts_with("https://") {
        return Some(Identity::Document(format!("{own_origin}{CLIENT_DOCUMENT_PATH}")));
    }
    m.registration_endpoint.clone().map(Identity::Register)
}

/// The client record for `client_id` at this server.
pub fn client(m: &AsMetadata, client_id: &str, secret: Option<String>, auth_method: AuthMethod) -> Client {
    Client {
        token_endpoint: m.token_endpoint.clone(),
        revocation_endpoint: m.revocation_endpoint.clone(),
        client_id: client_id.to_owned(),
        client_secret: secret,
        auth_method,
    }
}

/// What this worker says of itself as a client: the metadata document it
/// publishes, and the body of a dynamic registration (a public client using
/// PKCE, the one redirect URI).
pub fn client_metadata(own_origin: &str, client_id: Option<&str>) -> Value {
    let mut doc = json!({
        "client_name": format!("{} (gateway)", crate::SERVER_NAME),
        "redirect_uris": [format!("{own_origin}{CALLBACK_PATH}")],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    if let Some(id) = client_id {
        doc["client_id"] = json!(id);
        doc["client_uri"] = json!(own_origin);
    }
    doc
}

/// The client a registration answer made.
pub fn read_registration(status: u16, body: &[u8], m: &AsMetadata) -> Result<Client, Failed> {
    if !(200..300).contains(&status) {
        return Err(failed(format!("its authorization server refused the registration ({status})")));
    }
    let r: Value = serde_json::from_slice(body).map_err(|_| failed("the registration answer is not usable"))?;
    let client_id = r["client_id"].as_str().ok_or(failed("the registration answer has no client_id"))?;
    let secret = r["client_secret"].as_str().map(str::to_owned);
    let method = match (r["token_endpoint_auth_method"].as_str(), &secret) {
        (_, None) => AuthMethod::None,
        (Some("client_secret_post"), Some(_)) => AuthMethod::ClientSecretPost,
        (_, Some(_)) => AuthMethod::ClientSecretBasic,
    };
    Ok(client(m, client_id, secret, method))
}

/// The browser's way to the downstream's consent.
pub fn authorize_url(
    m: &AsMetadata,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    code_challenge: &str,
    resource: &str,
    scopes: Option<&str>,
) -> Result<Url, Failed> {
    let mut u = Url::parse(&m.authorization_endpoint).map_err(|_| failed("its authorization endpoint is not a URL"))?;
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", resource);
        if let Some(s) = scopes {
            q.append_pair("scope", s);
        }
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn meta(extra: Value) -> AsMetadata {
        let mut m = json!({
            "issuer": "http://127.0.0.1:9300/",
            "authorization_endpoint": "http://127.0.0.1:9300/authorize",
            "token_endpoint": "http://127.0.0.1:9300/token",
            "registration_endpoint": "http://127.0.0.1:9300/register",
            "revocation_endpoint": "http://127.0.0.1:9300/revoke",
            "code_challenge_methods_supported": ["S256"],
        });
        m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        read_as(m.to_string().as_bytes(), "http://127.0.0.1:9300").unwrap()
    }

    #[test]
    fn the_probe_tells_protected_from_public() {
        let h = [
            r#"Bearer error="invalid_token", resource_metadata="http://127.0.0.1:9300/.well-known/oauth-protected-resource/mcp""#,
        ];
        assert_eq!(
            read_probe(401, &h),
            Probe::Protected {
                resource_metadata: Some("http://127.0.0.1:9300/.well-known/oauth-protected-resource/mcp".into())
            }
        );
        assert_eq!(read_probe(401, &["Basic realm=x"]), Probe::Protected { resource_metadata: None });
        assert_eq!(read_probe(401, &[]), Probe::Protected { resource_metadata: None });
        for status in [200, 202, 400, 404, 405] {
            assert_eq!(read_probe(status, &[]), Probe::Public, "{status}");
        }
        let probe = probe_request(&u("http://127.0.0.1:9300/public/mcp"));
        assert!(probe.headers().get("authorization").is_none(), "the probe carries no credential");
    }

    #[test]
    fn protected_resource_metadata_is_found_and_checked() {
        let mcp = u("http://127.0.0.1:9300/v1/mcp");
        assert_eq!(
            prm_urls(&mcp, None),
            [
                "http://127.0.0.1:9300/.well-known/oauth-protected-resource/v1/mcp",
                "http://127.0.0.1:9300/.well-known/oauth-protected-resource"
            ]
        );
        let named = "http://127.0.0.1:9300/.well-known/oauth-protected-resource/v1/mcp";
        assert_eq!(prm_urls(&mcp, Some(named)).len(), 2, "the challenge's URL first, not twice");
        assert_eq!(prm_urls(&mcp, Some("http://evil.example/prm"))[0], named, "a plain-http URL elsewhere is ignored");
        let doc =
            json!({"resource": "http://127.0.0.1:9300/v1/mcp", "authorization_servers": ["http://127.0.0.1:9300/"]});
        assert_eq!(
            read_prm(doc.to_string().as_bytes(), &mcp).unwrap(),
            ("http://127.0.0.1:9300/v1/mcp".into(), "http://127.0.0.1:9300/".into())
        );
        let origin_wide =
            json!({"resource": "http://127.0.0.1:9300/", "authorization_servers": ["http://127.0.0.1:9300"]});
        assert_eq!(read_prm(origin_wide.to_string().as_bytes(), &mcp).unwrap().0, "http://127.0.0.1:9300/");
        for bad in [
            json!({"resource": "http://127.0.0.1:9300/mcp", "authorization_servers": ["x"]}),
            json!({"resource": "http://evil.example/v1/mcp", "authorization_servers": ["x"]}),
            json!({"resource": "http://127.0.0.1:9300/v1/mcp"}),
        ] {
            assert!(read_prm(bad.to_string().as_bytes(), &mcp).is_err(), "{bad}");
        }
    }

    #[test]
    fn authorization_server_metadata_urls_and_checks() {
        assert_eq!(
            as_metadata_urls("https://as.example/tenant/a"),
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant/a",
                "https://as.example/.well-known/openid-configuration/tenant/a",
                "https://as.example/tenant/a/.well-known/openid-configuration"
            ]
        );
        assert_eq!(as_metadata_urls("https://as.example/").len(), 2);
        let body = |v: Value| v.to_string().into_bytes();
        let base = json!({"issuer": "https://as.example", "authorization_endpoint": "https://as.example/a", "token_endpoint": "https://as.example/t"});
        assert!(read_as(&body(base.clone()), "https://as.example").is_err(), "no S256: refused");
        let mut s256 = base.clone();
        s256["code_challenge_methods_supported"] = json!(["S256"]);
        assert!(read_as(&body(s256.clone()), "https://as.example/").is_ok());
        assert!(read_as(&body(s256.clone()), "https://other.example").is_err(), "another issuer: refused");
        for field in ["authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint"] {
            let mut plain = s256.clone();
            plain[field] = json!("http://as.example/x");
            assert!(read_as(&body(plain), "https://as.example").is_err(), "{field} over plain http: refused");
        }
    }

    #[test]
    fn configured_client_then_document_then_registration() {
        let m = meta(json!({"client_id_metadata_document_supported": true}));
        match choose_identity(Some(("gw", Some("s"))), &m, "https://gw.example") {
            Some(Identity::Configured(c)) => {
                assert_eq!((c.client_id.as_str(), c.auth_method), ("gw", AuthMethod::ClientSecretBasic))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            choose_identity(None, &m, "https://gw.example"),
            Some(Identity::Document("https://gw.example/downstream-client.json".into()))
        );
        // A document URL must be https: locally the worker registers.
        assert_eq!(
            choose_identity(None, &m, "http://127.0.0.1:8787"),
            Some(Identity::Register("http://127.0.0.1:9300/register".into()))
        );
        let closed = AsMetadata { registration_endpoint: None, ..meta(json!({})) };
        assert_eq!(choose_identity(None, &closed, "https://gw.example"), None);
        let doc = client_metadata("https://gw.example", Some("https://gw.example/downstream-client.json"));
        assert_eq!(doc["redirect_uris"][0], "https://gw.example/connect/callback");
        assert_eq!(doc["client_id"], "https://gw.example/downstream-client.json");
        let reg = read_registration(201, br#"{"client_id":"c1"}"#, &m).unwrap();
        assert_eq!((reg.client_id.as_str(), reg.auth_method), ("c1", AuthMethod::None));
        let conf = read_registration(
            201,
            br#"{"client_id":"c2","client_secret":"s","token_endpoint_auth_method":"client_secret_post"}"#,
            &m,
        )
        .unwrap();
        assert_eq!(conf.auth_method, AuthMethod::ClientSecretPost);
        assert!(read_registration(400, b"{}", &m).is_err());
    }

    #[test]
    fn the_authorization_request_carries_pkce_state_resource_and_scopes() {
        let m = meta(json!({}));
        let url = authorize_url(
            &m,
            "c1",
            "http://127.0.0.1:8787/connect/callback",
            "st",
            "ch",
            "http://127.0.0.1:9300/mcp",
            Some("notes:read"),
        )
        .unwrap();
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        for (k, v) in [
            ("response_type", "code"),
            ("client_id", "c1"),
            ("state", "st"),
            ("code_challenge", "ch"),
            ("code_challenge_method", "S256"),
            ("resource", "http://127.0.0.1:9300/mcp"),
            ("scope", "notes:read"),
        ] {
            assert!(q.contains(&(k.into(), v.into())), "{k}");
        }
    }
}
