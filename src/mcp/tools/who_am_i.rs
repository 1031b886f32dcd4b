//! `who_am_I`: who the session acts for. Unlike the original, which handed
//! the raw PingOne access token to the model, it returns the user's claims,
//! the token's scopes, audience and expiry and a non-reversible fingerprint,
//! never the token itself.

use super::{args, text_result, Tool, ToolContext, ToolResult};
use crate::mcp::caller::Props;
use crate::util::crypto::{b64url_decode, sha256_hex};
use serde_json::{json, Map, Value};

pub const TOOL: Tool = Tool {
    name: "who_am_I",
    title: None,
    description: "Get the token for the current session info, helpful for debugging.",
    input_schema: args::none,
    output_schema: None,
    scope: None,
    handler: |ctx, args| Box::pin(call(ctx, args)),
};

async fn call(ctx: &ToolContext, _args: &Value) -> ToolResult {
    let props = Props::from_value(&ctx.caller.props);
    if props.enterprise {
        return Ok(enterprise(ctx, &props));
    }
    let Some(token) = props.subject_token.as_deref() else {
        return Err(
            "Error: User session not found (no PingOne access token). Reconnect the MCP server to sign in again."
                .into(),
        );
    };
    // The token came from our own props, so it is only decoded, never verified;
    // an opaque (non-JWT) token simply has no readable claims.
    let jwt = decode_payload(token).unwrap_or_default();
    let scopes = props.scopes.clone().map(Value::from).or_else(|| token_scopes(&jwt)).unwrap_or(Value::Null);
    let expires_at = props.subject_token_expires_at.map(Value::from).or_else(|| jwt.get("exp").cloned());
    let user = match &props.claims {
        Some(claims) => Value::Object(claims.clone()),
        None => json!({ "sub": jwt.get("sub").cloned().unwrap_or_else(|| ctx.caller.user_id.clone().into()) }),
    };
    let ping_one = json!({
        "issuer": jwt.get("iss"),
        "audience": jwt.get("aud"),
        "scopes": scopes,
        "expiresAt": expires_at,
        "expiresInSeconds": expires_at.as_ref().and_then(Value::as_u64).map(|e| e as i64 - ctx.now as i64),
        "tokenFingerprint": format!("sha256:{}", &sha256_hex(token)[..16]),
    });
    let out = json!({
        "user": user,
        "pingOneAccessToken": ping_one,
        "mcpSession": {
            "clientId": ctx.caller.client_id,
            "scopes": ctx.caller.scopes,
            "audience": ctx.caller.audience,
            "expiresAt": ctx.caller.expires_at,
        },
    });
    Ok(text_result(serde_json::to_string_pretty(&out).unwrap_or_default()))
}

/// A grant made of an enterprise ID-JAG: the user as the assertion named
/// them, and no PingOne token (there is none).
fn enterprise(ctx: &ToolContext, props: &Props) -> Value {
    let out = json!({
        "user": props.claims.clone().map_or_else(|| json!({"sub": ctx.caller.user_id}), Value::Object),
        "signedInBy": "enterprise identity provider (ID-JAG); no PingOne access token",
        "pingOneAccessToken": null,
        "mcpSession": {
            "clientId": ctx.caller.client_id,
            "scopes": ctx.caller.scopes,
            "audience": ctx.caller.audience,
            "expiresAt": ctx.caller.expires_at,
        },
    });
    text_result(serde_json::to_string_pretty(&out).unwrap_or_default())
}

/// The claims of a JWT's payload, without checking anything.
fn decode_payload(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    serde_json::from_slice::<Value>(&b64url_decode(payload.trim_end_matches('='))?).ok()?.as_object().cloned()
}

/// `scope` (space-separated) or `scp` (array) claims.
fn token_scopes(claims: &Map<String, Value>) -> Option<Value> {
    match claims.get("scope").or_else(|| claims.get("scp"))? {
        Value::String(s) => Some(s.split_whitespace().collect::<Vec<_>>().into()),
        v @ Value::Array(_) => Some(v.clone()),
        _ => None,
    }
}
