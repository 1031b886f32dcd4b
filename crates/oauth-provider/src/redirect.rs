//! Redirect URI rules: what may be listed in a registration and what may be
//! used (RFC 7591 + OAuth 2.1 §2.3.1, RFC 8252 §7)
//! and when a requested redirect matches a registered one (exact, except that
//! a loopback redirect may use any port, RFC 8252 §7.3).

use url::{Host, Url};

/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2048;

const FORBIDDEN_SCHEMES: [&str; 6] = ["javascript", "data", "vbscript", "file", "mailto", "blob"];

/// Why a redirect URI cannot even be listed in a registration or a metadata
/// document: too long, control characters or spaces, not an absolute URI, a
/// dangerous scheme (`javascript:`, `data:` …), a fragment or credentials.
/// A URI that passes may still be one this server never sends a code to
/// ([`check_usable`]): a client may list those beside a usable one.
pub fn check_listable(uri: &str) -> Result<Url, String> {
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
    if !url.username().is_empty() || url.password().is_some() {
        return Err("redirect URI must not contain credentials".into());
    }
    Ok(url)
}

/// Whether `scheme` is a private-use scheme of a native app (RFC 8252 §7.1):
/// a reverse domain name (`com.example.app`), or the scheme of an MCP client
/// known to use one (`cursor`, `vscode`, `claude`).
pub fn is_private_use_scheme(scheme: &str) -> bool {
    scheme.contains('.') || matches!(scheme, "cursor" | "vscode" | "claude")
}

/// Why this server would not send a code to a listable redirect URI:
/// `https`, `http` on a loopback host (RFC 8252 §7.3) and, when
/// `allow_private_use` ([`Config::allow_private_use_schemes`](crate::Config)),
/// private-use schemes ([`is_private_use_scheme`]) are usable; remote `http`
/// and other schemes never are.
pub fn check_usable(url: &Url, allow_private_use: bool) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err("http redirect URIs are allowed only for loopback hosts (127.0.0.1, [::1], localhost)".into()),
        s if is_private_use_scheme(s) && allow_private_use => Ok(()),
        s if is_private_use_scheme(s) => {
            Err(format!("private-use redirect URI schemes ('{s}:') are not accepted by this server"))
        }
        s => Err(format!("redirect URI scheme '{s}' is not allowed")),
    }
}

/// For a client that declared `application_type` `web` (OpenID Connect
/// Registration §2): only https redirect URIs. Native clients (and those that
/// declared nothing) are held to [`check_usable`] alone.
pub fn check_web(url: &Url, web: bool) -> Result<(), String> {
    if web && url.scheme() != "https" {
        return Err("a web application (application_type web) must use https redirect URIs".into());
    }
    Ok(())
}

/// Why a redirect URI cannot be used: [`check_listable`], then [`check_usable`].
#[cfg(test)]
pub fn check_registrable(uri: &str, allow_private_use: bool) -> Result<Url, String> {
    let url = check_listable(uri)?;
    check_usable(&url, allow_private_use)?;
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
            assert!(check_registrable(ok, true).is_ok(), "{ok}");
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
            assert!(check_registrable(bad, true).is_err(), "{bad}");
        }
        // Listable but never usable; private-use only when allowed.
        for listed in ["http://evil.example.com/cb", "ftp://a.example/", "cursor://anysphere.cursor-mcp/oauth/callback"]
        {
            assert!(check_listable(listed).is_ok(), "{listed}");
        }
        assert!(check_registrable("cursor://anysphere.cursor-mcp/oauth/callback", false).is_err());
        assert!(check_registrable("com.example.app:/oauth", false).is_err());
        assert!(check_registrable("https://app.example.com/cb", false).is_ok());
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
