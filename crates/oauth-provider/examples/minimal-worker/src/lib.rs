//! The smallest useful worker on [`oauth_provider`]: an OAuth 2.1
//! authorization server for MCP clients (metadata, registration, token,
//! revocation), an `/authorize` page where a person approves the request, and
//! a protected resource at `/mcp` that answers who the bearer token is for.
//!
//! The approval page asks only for a name: it stands in for the real sign-in
//! (an upstream IdP, a session cookie…) an application puts there, and with it
//! a CSRF check binding the POST to the page shown to that signed-in person.
//! Everything else is what a production worker does.

use oauth_provider::workers::{from_http, into_http, Kv, WorkersMetadataFetcher};
use oauth_provider::{is_endpoint, AuthRequest, CompleteAuthorization, Config, Provider};
use worker::{event, Context, Date, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    // Settings from the worker's variables (OAUTH_ACCESS_TOKEN_TTL, MCP_SCOPES, …).
    let config = Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    let kv = Kv(env.kv("OAUTH_KV")?);
    let now = Date::now().as_millis() / 1000;
    let provider = Provider::new(&kv, &config, now).with_metadata_fetcher(&WorkersMetadataFetcher);

    let Some(req) = into_http(req).await? else { return Response::error("Request body too large", 413) };
    let path = req.uri().path().to_owned();
    if is_endpoint(&config, &path) {
        return from_http(provider.handle(&req).await);
    }
    match path.as_str() {
        p if p == config.endpoints.authorize => authorize(&provider, &req).await,
        "/mcp" => match provider.authenticate_request(&req).await {
            // The grant's user, scopes and the props stored at approval, decrypted with the token.
            Ok(who) => Response::from_json(&serde_json::json!({
                "user": who.user_id,
                "client_id": who.client_id,
                "scopes": who.scopes,
                "props": who.props,
            })),
            // 401 with the RFC 9728 challenge that sends clients to the metadata.
            Err(challenge) => from_http(challenge),
        },
        _ => Response::error("Not found", 404),
    }
}

/// GET shows the approval form for a valid request; POST (the form) grants it
/// and redirects back to the client with the code.
async fn authorize(provider: &Provider<'_>, req: &http::Request<Vec<u8>>) -> Result<Response> {
    let url = url::Url::parse(&req.uri().to_string())?;
    // Invalid requests are shown here, never redirected to an unverified redirect URI.
    let request: AuthRequest = match provider.parse_auth_request(&url).await {
        Ok(r) => r,
        Err(e) => return Response::error(format!("{}: {}", e.error, e.description), e.status),
    };
    if req.method() != http::Method::POST {
        return approval_page(&request, &url);
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(req.body()).into_owned().collect();
    let user = form.iter().find(|(k, _)| k == "user").map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    if user.is_empty() {
        return approval_page(&request, &url);
    }
    let origin = url.origin().ascii_serialization();
    let grant = CompleteAuthorization {
        scope: request.scope.clone(),
        request,
        user_id: user.clone(),
        metadata: serde_json::json!({}),
        // Encrypted with the tokens; handed back to the resource on every call.
        props: serde_json::json!({ "name": user }),
        revoke_existing_grants: true,
    };
    match provider.complete_authorization(&origin, grant).await {
        Ok(redirect) => Response::redirect(url::Url::parse(&redirect)?),
        Err(e) => Response::error(format!("{}: {}", e.error, e.description), e.status),
    }
}

fn approval_page(request: &AuthRequest, url: &url::Url) -> Result<Response> {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let html = format!(
        "<!doctype html><title>Approve</title><form method=post action=\"{action}\">\
         <p>Client <code>{client}</code> asks for: {scopes}</p>\
         <label>Your name <input name=user required></label> <button>Approve</button></form>",
        action = esc(url.as_str()),
        client = esc(&request.client_id),
        scopes = esc(&request.scope.join(" ")),
    );
    let mut res = Response::from_html(html)?;
    // Not framed by other sites (clickjacking the Approve button).
    res.headers_mut().set("content-security-policy", "frame-ancestors 'none'")?;
    Ok(res)
}
