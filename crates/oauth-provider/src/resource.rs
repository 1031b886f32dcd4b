//! Resource indicators (RFC 8707) and audience checks. The MCP server's
//! canonical resource is `<origin>/mcp`; it is also reachable over the legacy
//! SSE transport at `<origin>/sse`, so a token for the canonical resource is
//! good at both. Otherwise a token is good at its resource's path and below,
//! on path-segment boundaries (`/mcp` covers `/mcp/x`, not `/mcp-other`).

use url::Url;

/// Paths the bearer token protects.
pub const PROTECTED_PREFIXES: [&str; 2] = ["/mcp", "/sse"];
/// Path of the canonical MCP resource.
pub const CANONICAL_PATH: &str = "/mcp";

pub fn canonical_resource(origin: &str) -> String {
    format!("{origin}{CANONICAL_PATH}")
}

/// `path` is `prefix` or below it on a segment boundary.
pub fn path_within(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// Whether a request path is one of the protected routes.
pub fn is_protected_path(path: &str) -> bool {
    PROTECTED_PREFIXES.iter().any(|p| path_within(path, p))
}

/// Checks a `resource` parameter an MCP client sent: absolute http(s), no
/// fragment, and naming this server's MCP endpoints (or the whole origin).
pub fn check_requested(resource: &str, origin: &str) -> Result<(), &'static str> {
    let url = Url::parse(resource).map_err(|_| "resource must be an absolute URI")?;
    if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() || resource.contains('#') {
        return Err("resource must be an http(s) URI without a fragment");
    }
    if url.origin().ascii_serialization() != origin {
        return Err("resource is not served by this server");
    }
    let path = url.path();
    if url.query().is_some() || !(path == "/" || PROTECTED_PREFIXES.iter().any(|p| path_within(path, p))) {
        return Err("resource is not served by this server");
    }
    Ok(())
}

/// Whether a token for `audience` may be used at `request_url`.
pub fn audience_allows(audience: &str, request_url: &Url) -> bool {
    let Ok(aud) = Url::parse(audience) else { return false };
    if aud.origin() != request_url.origin() {
        return false;
    }
    let path = request_url.path();
    if path_within(path, aud.path()) {
        return true;
    }
    // The canonical resource names the MCP server, whichever transport it is reached by.
    aud.path() == CANONICAL_PATH && path_within(path, "/sse")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn audiences_match_on_path_boundaries() {
        let o = "https://mcp.example.com";
        assert!(audience_allows(&canonical_resource(o), &u("https://mcp.example.com/mcp")));
        assert!(audience_allows(&canonical_resource(o), &u("https://mcp.example.com/mcp/sub")));
        assert!(audience_allows(&canonical_resource(o), &u("https://mcp.example.com/sse/message?sessionId=1")));
        assert!(!audience_allows(&canonical_resource(o), &u("https://mcp.example.com/mcp-other")));
        assert!(!audience_allows(&canonical_resource(o), &u("https://other.example.com/mcp")));
        assert!(audience_allows("https://mcp.example.com/", &u("https://mcp.example.com/sse")));
        assert!(!audience_allows("https://mcp.example.com/sse", &u("https://mcp.example.com/mcp")));
    }

    #[test]
    fn requested_resources_must_name_this_server() {
        let o = "https://mcp.example.com";
        assert!(check_requested("https://mcp.example.com/mcp", o).is_ok());
        assert!(check_requested("https://mcp.example.com/sse", o).is_ok());
        assert!(check_requested("https://mcp.example.com/", o).is_ok());
        assert!(check_requested("https://mcp.example.com", o).is_ok());
        assert!(check_requested("https://mcp.example.com/mcp#x", o).is_err());
        assert!(check_requested("https://mcp.example.com/mcp-other", o).is_err());
        assert!(check_requested("https://evil.example.com/mcp", o).is_err());
        assert!(check_requested("urn:x", o).is_err());
    }
}
