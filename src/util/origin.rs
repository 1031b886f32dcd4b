//! The `Origin` rule of the MCP endpoints (built-in server and identity
//! gateway alike): a browser page may call them only from this worker's own
//! origin or a loopback one.

/// An `Origin` may be our own or a loopback one (MCP Inspector runs on
/// localhost:6274); anything else is refused to stop DNS-rebinding and
/// cross-site use of a user's token.
pub fn origin_allowed(origin: &str, own_origin: Option<&str>) -> bool {
    if own_origin.is_some_and(|own| own.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Ok(url) = url::Url::parse(origin) else { return false };
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `scheme://authority` of an absolute request URI.
pub fn own_origin(uri: &http::Uri) -> Option<String> {
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_origin_allowlist_is_own_origin_and_loopback() {
        let own = Some("https://mcp.example.com");
        assert!(origin_allowed("https://mcp.example.com", own));
        assert!(origin_allowed("http://localhost:6274", own));
        assert!(origin_allowed("http://127.0.0.1:6274", own));
        assert!(origin_allowed("http://[::1]:3000", own));
        assert!(!origin_allowed("https://evil.example.com", own));
        assert!(!origin_allowed("https://localhost.evil.com", own));
        assert!(!origin_allowed("null", own));
        assert!(!origin_allowed("file://localhost", own));
    }
}
