//! Redirect URI rules: what may be registered (RFC 7591 + OAuth 2.1 §2.3.1)
//! and when a requested redirect matches a registered one (exact, except that
//! a loopback redirect may use any port, RFC 8252 §7.3).

use url::{Host, Url};

/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2048;

const FORBIDDEN_SCHEMES: [&str; 6] = ["javascript", "data", "vbscript", "file", "mailto", "blob"];

/// Why a redirect URI cannot be registered.
pub fn check_registrable(uri: &str) -> Result<Url, String> {
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err("redirect URI is too long".into());
    }
    if uri.chars().any(|c| crate::text::is_hidden_control(c) || c.is_whitespace()) {
        return Err("redirect URI contains control or formatting characters or spaces".into());
    }
    let url = Url::parse(uri).map_err(|_| "redirect URI must be an absolute URI".to_string())?;
    if FORBIDDEN_SCHEMES.contains(&url.scheme()) {
        return Err(format!("redirect URI scheme '{}' is not allowed", url.scheme()));
    }
    if url.fragment().is_some() || uri.contains('#') {
        return Err("redirect URI must not contain a fragment".into());
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err("http redirect URIs are allowed only for loopback hosts (127.0.0.1, [::1], localhost)".into())
        }
        // Private-use schemes of native apps (RFC 8252 §7.1), e.g. com.example.app:/callback.
        s if s.contains('.') || s == "cursor" || s == "vscode" || s == "claude" => {}
        s => return Err(format!("redirect URI scheme '{s}' is not allowed")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("redirect URI must not contain credentials".into());
    }
    Ok(url)
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Whether `requested` matches one of `registered`.
pub fn matches_registered(requested: &str, registered: &[String]) -> bool {
    if registered.iter().any(|r| r == requested) {
        return Url::parse(requested).is_ok_and(|u| !FORBIDDEN_SCHEMES.contains(&u.scheme()));
    }
    let Ok(req) = Url::parse(requested) else { return false };
    if req.scheme() != "http"
        || !is_loopback(&req)
        || req.fragment().is_some()
        || !req.username().is_empty()
        || req.password().is_some()
    {
        return false;
    }
    registered.iter().filter_map(|r| Url::parse(r).ok()).any(|reg| {
        reg.scheme() == "http"
            && is_loopback(&reg)
            && reg.host() == req.host()
            && reg.path() == req.path()
            && reg.query() == req.query()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_redirects() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:3000/cb",
            "http://localhost/cb",
            "http://[::1]:9/x",
            "com.example.app:/oauth",
        ] {
            assert!(check_registrable(ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "http://evil.example.com/cb",
            "https://a.example/cb#frag",
            "/relative",
            "https://user:pw@a.example/cb",
            "https://a.example/c b",
            "ftp://a.example/",
        ] {
            assert!(check_registrable(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_redirects_match_on_any_port_only() {
        let reg = vec!["http://127.0.0.1:3000/callback".to_string(), "https://app.example/cb".to_string()];
        assert!(matches_registered("http://127.0.0.1:3000/callback", &reg));
        assert!(matches_registered("http://127.0.0.1:49152/callback", &reg));
        assert!(!matches_registered("http://127.0.0.1:49152/other", &reg));
        assert!(!matches_registered("http://localhost:3000/callback", &reg));
        assert!(matches_registered("https://app.example/cb", &reg));
        assert!(!matches_registered("https://app.example:444/cb", &reg));
        assert!(!matches_registered("https://app.example/cb?x=1", &reg));
    }
}
