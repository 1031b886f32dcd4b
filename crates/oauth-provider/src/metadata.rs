//! Discovery documents: authorization server metadata (RFC 8414) and
//! protected resource metadata (RFC 9728), both for the request's origin.
//! The AS document advertises the grantable scope catalogue
//! ([`Config::scopes_supported`]); each resource document the scopes that
//! resource needs ([`ProtectedResource::required_scopes`](crate::resource::ProtectedResource)).

use super::error::{json_response, OAuthError, Reason};
use super::Config;
use http::header::{HeaderValue, CACHE_CONTROL, PRAGMA};
use http::{Method, Response, StatusCode};
use serde_json::{json, Value};

pub const AS_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub const PRM_PATH: &str = "/.well-known/oauth-protected-resource";

/// The answer to a discovery request: the document for GET and HEAD,
/// cacheable for an hour (it changes only with the configuration); 404 when
/// the path names no document, 405 for other methods.
pub fn document_response(method: &Method, doc: Option<Value>) -> Response<Vec<u8>> {
    if method != Method::GET && method != Method::HEAD {
        return OAuthError::method_not_allowed().into_response();
    }
    let Some(doc) = doc else {
        return OAuthError::new(StatusCode::NOT_FOUND, "not_found", "No protected resource at this path")
            .because(Reason::new("metadata", "no_resource_at_path"))
            .into_response();
    };
    let mut res = json_response(StatusCode::OK, &doc);
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    res.headers_mut().remove(PRAGMA);
    res
}

/// `cimd`: Client ID Metadata Documents are accepted (the server has a
/// fetcher; they are public clients, so also only when those are allowed);
/// then, with [`Config::private_key_jwt`], `private_key_jwt` is advertised
/// too, with its signing algorithms.
/// `registration_endpoint` only with dynamic registration on; auth method
/// `none` only with public clients allowed. Endpoint paths come from
/// [`Config::endpoints`]; `protected_resources` (RFC 9728 §4) lists the
/// registry's resources.
pub fn authorization_server(origin: &str, config: &Config, cimd: bool) -> Value {
    let mut scopes = config.scopes_supported.clone();
    if !scopes.iter().any(|s| s == "offline_access") {
        scopes.push("offline_access".into());
    }
    let cimd = cimd && config.allow_public_clients;
    let jwt = cimd && config.private_key_jwt;
    let mut auth_methods = vec!["client_secret_basic", "client_secret_post"];
    if config.allow_public_clients {
        auth_methods.push("none");
    }
    if jwt {
        auth_methods.push("private_key_jwt");
    }
    let e = &config.endpoints;
    let resources: Vec<String> = config.resources.iter().map(|r| r.url(origin)).collect();
    let mut doc = json!({
        "issuer": origin,
        "authorization_endpoint": format!("{origin}{}", e.authorize),
        "token_endpoint": format!("{origin}{}", e.token),
        "registration_endpoint": format!("{origin}{}", e.register),
        "revocation_endpoint": format!("{origin}{}", e.revoke),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": config.grant_types_supported(),
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "authorization_response_iss_parameter_supported": true,
        "protected_resources": resources,
    });
    if !config.dynamic_registration {
        doc.as_object_mut().expect("object").remove("registration_endpoint");
    }
    if cimd {
        doc["client_id_metadata_document_supported"] = Value::Bool(true);
    }
    if jwt {
        let algs = json!(crate::client_assertion::ALGORITHMS);
        doc["token_endpoint_auth_signing_alg_values_supported"] = algs.clone();
        doc["revocation_endpoint_auth_signing_alg_values_supported"] = algs;
    }
    doc
}

/// One RFC 9728 document.
pub fn resource_document(resource: &str, issuers: &[String], required_scopes: &[String], name: &str) -> Value {
    let scopes: Vec<&String> = required_scopes.iter().filter(|s| *s != "offline_access").collect();
    json!({
        "resource": resource,
        "authorization_servers": issuers,
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": name,
    })
}

/// PRM for `suffix` (the path after the well-known prefix: "", "/mcp", "/sse", …);
/// `None` when the suffix names nothing this origin protects. Each document
/// describes the resource its URL names (RFC 9728 §3.3): the bare one the
/// origin (with [`Config::origin_resource`]; its token is good at every
/// resource on the origin, so it needs their scopes), the others their path,
/// with the required scopes and name of the registered resource serving it.
/// Resources registered by absolute URL are described by the worker serving
/// them (see [`crate::resource_server::ResourceServer`]), unless that URL is
/// on this origin.
pub fn protected_resource(origin: &str, suffix: &str, config: &Config) -> Option<Value> {
    let issuers = [origin.to_owned()];
    if suffix.is_empty() || suffix == "/" {
        if !config.origin_resource {
            return None;
        }
        let name = &config.default_protected_resource().name;
        return Some(resource_document(origin, &issuers, &config.origin_required_scopes(origin, origin), name));
    }
    let url = url::Url::parse(&format!("{origin}{suffix}")).ok()?;
    if url.path() != suffix {
        return None;
    }
    let r = config.resource_at(origin, &url)?;
    Some(resource_document(url.as_str(), &issuers, &r.required_scopes, &r.name))
}
