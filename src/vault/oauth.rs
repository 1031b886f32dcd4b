//! Requests to the downstream's token and revocation endpoints (RFC 6749,
//! RFC 7009, RFC 8707 `resource`), and what their answers mean.

use super::model::{AuthMethod, Client, Tokens};
use base64::Engine;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use url::form_urlencoded::{byte_serialize, Serializer};

/// Why no tokens came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// `invalid_grant`: the code or refresh token is dead (revoked, expired,
    /// reused); the user must connect again.
    InvalidGrant,
    /// `invalid_client`: the server no longer knows this worker's client (a
    /// registration it forgot or deleted); register again, connect again.
    InvalidClient,
    /// Anything else (unreachable, 5xx, a refusal of the client): kept for
    /// another try; the text is for the log and names no secret.
    Failed(String),
}

fn form_request(
    url: &str,
    client: &Client,
    mut form: Serializer<String>,
) -> Result<http::Request<Vec<u8>>, TokenError> {
    let mut b = http::Request::post(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json");
    match (client.auth_method, client.client_secret.as_deref()) {
        (AuthMethod::ClientSecretBasic, Some(secret)) => {
            // RFC 6749 §2.3.1: each part form-encoded before Basic.
            let enc = |s: &str| byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&client.client_id), enc(secret));
            b = b.header(AUTHORIZATION, format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)));
        }
        (AuthMethod::ClientSecretPost, Some(secret)) => {
            form.append_pair("client_id", &client.client_id);
            form.append_pair("client_secret", secret);
        }
        _ => {
            form.append_pair("client_id", &client.client_id);
        }
    }
    b.body(form.finish().into_bytes()).map_err(|_| TokenError::Failed("the token endpoint is not a usable URL".into()))
}

/// The authorization code exchange (with the PKCE verifier and the resource).
pub fn code_request(
    client: &Client,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
    resource: &str,
) -> Result<http::Request<Vec<u8>>, TokenError> {
    let mut form = Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", code_verifier)
        .append_pair("resource", resource);
    form_request(&client.token_endpoint, client, form)
}

/// A refresh of the access token (same resource).
pub fn refresh_request(
    client: &Client,
    refresh_token: &str,
    resource: &str,
) -> Result<http::Request<Vec<u8>>, TokenError> {
    let mut form = Serializer::new(String::new());
    form.append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token)
        .append_pair("resource", resource);
    form_request(&client.token_endpoint, client, form)
}

/// The revocation of the refresh token (or else the access token), when the
/// server has a revocation endpoint.
pub fn revoke_request(client: &Client, tokens: &Tokens) -> Option<http::Request<Vec<u8>>> {
    let url = client.revocation_endpoint.as_deref()?;
    let mut form = Serializer::new(String::new());
    match &tokens.refresh_token {
        Some(rt) => form.append_pair("token", rt).append_pair("token_type_hint", "refresh_token"),
        None => form.append_pair("token", &tokens.access_token).append_pair("token_type_hint", "access_token"),
    };
    form_request(url, client, form).ok()
}

/// The tokens of a token endpoint answer. A refresh that returns no new
/// refresh token keeps `previous_refresh` (RFC 6749 §6: rotation is the
/// server's choice).
pub fn tokens_from(status: u16, body: &[u8], now: u64, previous_refresh: Option<&str>) -> Result<Tokens, TokenError> {
    // Read through `Value`: a derive per answer type costs the Wasm bundle more.
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |k: &str| v.get(k).and_then(Value::as_str);
    if (200..300).contains(&status) {
        let access_token = text("access_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| TokenError::Failed(format!("token endpoint answered {status} without an access token")))?;
        if text("token_type").is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) {
            return Err(TokenError::Failed("token endpoint answered a token that is not a bearer token".into()));
        }
        return Ok(Tokens {
            access_token: access_token.to_owned(),
            refresh_token: text("refresh_token").or(previous_refresh).map(str::to_owned),
            issued_at: now,
            expires_at: v.get("expires_in").and_then(Value::as_u64).map(|s| now.saturating_add(s)),
        });
    }
    match text("error") {
        Some("invalid_grant") => Err(TokenError::InvalidGrant),
        Some("invalid_client") => Err(TokenError::InvalidClient),
        Some(e) => Err(TokenError::Failed(format!(
            "token endpoint answered {status} {}",
            crate::util::text::neutralise(&e.chars().take(64).collect::<String>())
        ))),
        None => Err(TokenError::Failed(format!("token endpoint answered {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(method: AuthMethod, secret: Option<&str>) -> Client {
        Client {
            token_endpoint: "https://as.example/token".into(),
            revocation_endpoint: Some("https://as.example/revoke".into()),
            client_id: "gw client".into(),
            client_secret: secret.map(str::to_owned),
            auth_method: method,
        }
    }

    fn form(req: &http::Request<Vec<u8>>) -> Vec<(String, String)> {
        url::form_urlencoded::parse(req.body()).into_owned().collect()
    }

    #[test]
    fn requests_carry_pkce_resource_and_the_clients_credentials() {
        let r =
            code_request(&client(AuthMethod::None, None), "c0de", "https://gw/connect/callback", "v", "https://ds/mcp")
                .unwrap();
        assert_eq!(r.uri(), "https://as.example/token");
        let f = form(&r);
        for (k, v) in [
            ("grant_type", "authorization_code"),
            ("code", "c0de"),
            ("code_verifier", "v"),
            ("resource", "https://ds/mcp"),
            ("client_id", "gw client"),
            ("redirect_uri", "https://gw/connect/callback"),
        ] {
            assert!(f.contains(&(k.into(), v.into())), "{k}: {f:?}");
        }
        assert!(r.headers().get(AUTHORIZATION).is_none());
        let basic =
            refresh_request(&client(AuthMethod::ClientSecretBasic, Some("s:1")), "rt", "https://ds/mcp").unwrap();
        assert_eq!(basic.headers()[AUTHORIZATION], "Basic Z3crY2xpZW50OnMlM0Ex");
        assert!(!form(&basic).iter().any(|(k, _)| k == "client_secret"));
        let post = refresh_request(&client(AuthMethod::ClientSecretPost, Some("s")), "rt", "https://ds/mcp").unwrap();
        assert!(form(&post).contains(&("client_secret".into(), "s".into())));
        let t = Tokens { access_token: "at".into(), refresh_token: Some("rt".into()), issued_at: 0, expires_at: None };
        let rev = revoke_request(&client(AuthMethod::None, None), &t).unwrap();
        assert!(form(&rev).contains(&("token".into(), "rt".into())));
        let no_endpoint = Client { revocation_endpoint: None, ..client(AuthMethod::None, None) };
        assert!(revoke_request(&no_endpoint, &t).is_none());
    }

    #[test]
    fn answers_become_tokens_or_a_reason() {
        let ok = br#"{"access_token":"a2","token_type":"Bearer","expires_in":30,"refresh_token":"r2"}"#;
        let t = tokens_from(200, ok, 100, Some("r1")).unwrap();
        assert_eq!((t.access_token.as_str(), t.refresh_token.as_deref(), t.expires_at), ("a2", Some("r2"), Some(130)));
        let kept = tokens_from(200, br#"{"access_token":"a3","token_type":"bearer"}"#, 100, Some("r1")).unwrap();
        assert_eq!((kept.refresh_token.as_deref(), kept.expires_at), (Some("r1"), None));
        assert_eq!(tokens_from(400, br#"{"error":"invalid_grant"}"#, 0, None), Err(TokenError::InvalidGrant));
        assert_eq!(tokens_from(401, br#"{"error":"invalid_client"}"#, 0, None), Err(TokenError::InvalidClient));
        assert!(
            matches!(tokens_from(400, br#"{"error":"invalid_request"}"#, 0, None), Err(TokenError::Failed(m)) if m.contains("invalid_request"))
        );
        assert!(matches!(tokens_from(503, b"down", 0, None), Err(TokenError::Failed(_))));
        assert!(matches!(
            tokens_from(200, br#"{"access_token":"x","token_type":"DPoP"}"#, 0, None),
            Err(TokenError::Failed(_))
        ));
    }
}
