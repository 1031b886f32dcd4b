//! Discovery documents: authorization server metadata (RFC 8414) and
//! protected resource metadata (RFC 9728), both for the request's origin.

use super::resource;
use super::Config;
use serde_json::{json, Value};

pub const AS_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub const PRM_PATH: &str = "/.well-known/oauth-protected-resource";

/// `cimd`: Client ID Metadata Documents are accepted (the server has a
/// fetcher; they are public clients, so also only when those are allowed).
/// `registration_endpoint` only with dynamic registration on; auth method
/// `none` only with public clients allowed.
pub fn authorization_server(origin: &str, config: &Config, cimd: bool) -> Value {
    let mut scopes = config.scopes_supported.clone();
    if !scopes.iter().any(|s| s == "offline_access") {
        scopes.push("offline_access".into());
    }
    let auth_methods: &[&str] = if config.allow_public_clients {
        &["client_secret_basic", "client_secret_post", "none"]
    } else {
        &["client_secret_basic", "client_secret_post"]
    };
    let mut doc = json!({
        "issuer": origin,
        "authorization_endpoint": format!("{origin}/authorize"),
        "token_endpoint": format!("{origin}/token"),
        "registration_endpoint": format!("{origin}/register"),
        "revocation_endpoint": format!("{origin}/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "authorization_response_iss_parameter_supported": true,
    });
    if !config.dynamic_registration {
        doc.as_object_mut().expect("object").remove("registration_endpoint");
    }
    if cimd && config.allow_public_clients {
        doc["client_id_metadata_document_supported"] = Value::Bool(true);
    }
    doc
}

/// PRM for `suffix` (the path after the well-known prefix: "", "/mcp", "/sse", …);
/// `None` when the suffix names nothing we protect. Each document describes
/// the resource its URL names (RFC 9728 §3.3): the bare one the origin (a
/// token for it is good at every protected path), the others their path.
pub fn protected_resource(origin: &str, suffix: &str, config: &Config) -> Option<Value> {
    let resource = match suffix {
        "" | "/" => origin.to_owned(),
        s if resource::is_protected_path(s) => format!("{origin}{s}"),
        _ => return None,
    };
    let scopes: Vec<&String> = config.scopes_supported.iter().filter(|s| *s != "offline_access").collect();
    Some(json!({
        "resource": resource,
        "authorization_servers": [origin],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": config.resource_name,
    }))
}
