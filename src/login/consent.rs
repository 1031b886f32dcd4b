//! The consent page: who is asking, where they will be sent back to, what
//! they get, and Approve / Cancel. Everything the client registered is
//! untrusted: escaped, and links only when they are http(s).

use super::authz::{AuthRequest, ClientInfo};
use super::pages::{csp, html};
use super::upstream::is_api_scope;
use crate::oauth;
use crate::util::html::escape;
use url::Url;

/// Shown at the top of the consent page.
pub const SERVER_TITLE: &str = "Todo MCP Server";
pub const SERVER_DESCRIPTION: &str = "An MCP server that lets AI assistants read and manage your todo list \
     in the Todo API, on your behalf, after you sign in with PingOne.";

/// Everything the page shows besides the client's registration.
pub struct ConsentView<'a> {
    pub client: &'a ClientInfo,
    pub request: &'a AuthRequest,
    /// Scopes the worker asks PingOne for (what will be shared): OpenID's
    /// own and, of the API scopes, only those in `request.scope`.
    pub upstream_scopes: &'a [String],
    /// Hidden form fields: the pending-request id and the CSRF token.
    pub pending_id: &'a str,
    pub csrf_token: &'a str,
    /// Origin of PingOne's authorization endpoint (allowed in `form-action`).
    pub idp_origin: &'a str,
    pub style_nonce: &'a str,
    /// Where the form posts (the authorization endpoint's path).
    pub action: &'a str,
}

/// `url` as an escaped link target if it is absolute http(s), else `None`.
pub fn safe_link(url: Option<&str>) -> Option<String> {
    let parsed = Url::parse(url?).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| escape(parsed.as_str()))
}

/// The CSP source for where a redirect to `redirect_uri` goes: its origin for
/// http(s), its scheme for a private-use scheme (`cursor:`), nothing otherwise.
pub fn redirect_source(redirect_uri: &str) -> Option<String> {
    let u = Url::parse(redirect_uri).ok()?;
    match u.scheme() {
        "http" | "https" => Some(u.origin().ascii_serialization()),
        s if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b)) => Some(format!("{s}:")),
        _ => None,
    }
}

/// The host (or scheme) a person will be sent back to, for display.
fn redirect_display(redirect_uri: &str) -> String {
    match Url::parse(redirect_uri) {
        Ok(u) => match u.host_str() {
            Some(h) => match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            },
            None => format!("{}:", u.scheme()),
        },
        Err(_) => redirect_uri.to_owned(),
    }
}

/// The host (and port, when not the default) of an http(s) URL, for display.
fn host_of(url: &str) -> Option<String> {
    let u = Url::parse(url).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let h = u.host_str()?;
    Some(match u.port() {
        Some(p) => format!("{h}:{p}"),
        None => h.to_owned(),
    })
}

/// A redirect that stays on this device: loopback (a native app's listener)
/// or a private-use scheme (an installed app), not another host.
fn stays_on_device(redirect_uri: &str) -> bool {
    match Url::parse(redirect_uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => match u.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
            None => false,
        },
        Ok(_) => true,
        Err(_) => false,
    }
}

/// For a client identified by a metadata document: the card's lines naming
/// the host that published it (the only one vouching for anything on the
/// page), the document's own name for itself as its claim, and a warning for
/// a web page or a redirect URI on another host.
fn document_client_lines(client: &ClientInfo, doc_host: &str, redirect_uri: &str) -> String {
    let host = escape(doc_host);
    let name = escape(&client.display_name());
    let mut out = format!(
        "<p class=\"vouch\">Published by <strong>{host}</strong></p>\
         <p><strong>{name}</strong> (as {host} names it) wants to connect to this server as you.</p>"
    );
    if let (Some(href), Some(page_host)) =
        (safe_link(client.client_uri.as_deref()), client.client_uri.as_deref().and_then(host_of))
    {
        if page_host != doc_host {
            out.push_str(&format!(
                "<p class=\"warning\">Its web page is on <strong>{}</strong>, not on {host}: only {host} vouches \
                 for this application.</p>",
                escape(&page_host)
            ));
        }
        out.push_str(&format!(
            "<p class=\"muted\">Web page: <a href=\"{href}\" rel=\"noopener noreferrer\">{}</a></p>",
            escape(&page_host)
        ));
    }
    if !stays_on_device(redirect_uri) {
        let back = redirect_display(redirect_uri);
        if back != doc_host {
            out.push_str(&format!(
                "<p class=\"warning\">You will be sent back to <strong>{}</strong>, not to {host}: whoever runs \
                 it gets this access.</p>",
                escape(&back)
            ));
        }
    }
    out
}

/// Plain-language lines for what the client gets: the PingOne scopes asked
/// for on its behalf (OpenID's own, and of the API scopes exactly those being
/// granted), and the granted MCP scopes PingOne has no part in.
fn shared_items(upstream_scopes: &[String], granted: &[String]) -> Vec<String> {
    let mut items = vec!["Your PingOne user id".to_owned()];
    let extra = granted.iter().filter(|s| !is_api_scope(s) && !upstream_scopes.contains(s));
    for s in upstream_scopes.iter().chain(extra) {
        let line = match s.as_str() {
            "openid" => continue,
            "profile" => "Your name and username".to_owned(),
            "email" => "Your email address".to_owned(),
            "todo_api:read" => "Read access to your todo list".to_owned(),
            "todo_api:write" => "Create, change and delete your todos".to_owned(),
            "offline_access" => "Keep this access while you are away, until you revoke it".to_owned(),
            other => format!("PingOne permission <code>{}</code>", escape(other)),
        };
        items.push(line);
    }
    items
}

/// The `Content-Security-Policy` of the consent page.
pub fn consent_csp(view: &ConsentView<'_>) -> String {
    let mut actions = vec!["'self'".to_owned(), view.idp_origin.to_owned()];
    // Cancel (and a silent IdP login) redirect straight back to the client;
    // browsers apply form-action to a form's redirects too.
    if let Some(src) = redirect_source(&view.request.redirect_uri) {
        actions.push(src);
    }
    actions.dedup();
    csp(view.style_nonce, &actions)
}

/// The full consent page response (200).
pub fn render(view: &ConsentView<'_>) -> http::Response<Vec<u8>> {
    let client = view.client;
    let display_name = client.display_name();
    let name = escape(&display_name);
    // A metadata document's client is vouched for by the document's host
    // alone: that is the headline, the name it gives itself is its claim.
    let doc_host = oauth::cimd::is_metadata_url(&client.client_id).then(|| host_of(&client.client_id)).flatten();
    let who = match &doc_host {
        Some(h) => document_client_lines(client, h, &view.request.redirect_uri),
        None => {
            let named = match safe_link(client.client_uri.as_deref()) {
                Some(href) => format!("<a href=\"{href}\" rel=\"noopener noreferrer\">{name}</a>"),
                None => name.clone(),
            };
            format!("<p><strong>{named}</strong> wants to connect to this server as you.</p>")
        }
    };
    let shared: String =
        shared_items(view.upstream_scopes, &view.request.scope).iter().map(|i| format!("<li>{i}</li>")).collect();
    let mcp_scopes = if view.request.scope.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = view.request.scope.iter().map(|s| format!("<code>{}</code>", escape(s))).collect();
        format!("<p class=\"muted\">Requested scopes: {}</p>", list.join(" "))
    };
    let mut links = Vec::new();
    if let Some(href) = safe_link(client.policy_uri.as_deref()) {
        links.push(format!("<a href=\"{href}\" rel=\"noopener noreferrer\">Privacy policy</a>"));
    }
    if let Some(href) = safe_link(client.tos_uri.as_deref()) {
        links.push(format!("<a href=\"{href}\" rel=\"noopener noreferrer\">Terms of service</a>"));
    }
    let links = if links.is_empty() { String::new() } else { format!("<p class=\"muted\">{}</p>", links.join(" · ")) };

    let body = format!(
        "<h1>{title}</h1><p class=\"muted\">{desc}</p>\
         <div class=\"card\">{who}\
         <p class=\"muted\">Client id <code>{client_id}</code>. After you approve and sign in with PingOne, \
         you will be sent back to <strong>{host}</strong>.</p>{links}</div>\
         <p>It will be able to use:</p><ul>{shared}</ul>{mcp_scopes}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"pending\" value=\"{pending}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <div class=\"actions\"><button class=\"primary\" type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\
         <button type=\"submit\" name=\"action\" value=\"cancel\">Cancel</button></div></form>\
         <p class=\"muted\">Only approve applications you trust. You can revoke access later.</p>",
        title = escape(SERVER_TITLE),
        desc = escape(SERVER_DESCRIPTION),
        client_id = escape(&crate::util::text::neutralise(&client.client_id)),
        host = escape(&redirect_display(&view.request.redirect_uri)),
        pending = escape(view.pending_id),
        csrf = escape(view.csrf_token),
        action = escape(view.action),
    );
    let title = match &doc_host {
        Some(h) => format!("Connect {display_name} ({h}) to {SERVER_TITLE}"),
        None => format!("Connect {display_name} to {SERVER_TITLE}"),
    };
    html(&title, &body, view.style_nonce, &consent_csp(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(redirect: &str) -> AuthRequest {
        AuthRequest {
            response_type: "code".into(),
            client_id: "client-1".into(),
            redirect_uri: redirect.into(),
            scope: vec!["<b>scope</b>".into()],
            state: "s".into(),
            code_challenge: Some("c".into()),
            code_challenge_method: Some("S256".into()),
            resource: vec![],
            dropped_scopes: vec![],
        }
    }

    fn page(client: &ClientInfo, req: &AuthRequest) -> (String, String) {
        let scopes = vec!["openid".to_owned(), "profile".to_owned(), "todo_api:read".to_owned()];
        let view = ConsentView {
            client,
            request: req,
            upstream_scopes: &scopes,
            pending_id: "pending-1",
            csrf_token: "csrf-1",
            idp_origin: "https://auth.pingone.com",
            style_nonce: "nonce1",
            action: "/authorize",
        };
        let res = render(&view);
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
        (String::from_utf8(res.into_body()).unwrap(), csp)
    }

    #[test]
    fn hostile_client_metadata_is_rendered_harmless() {
        let client = ClientInfo {
            client_id: "client-1".into(),
            client_name: Some("<script>alert('x')</script>\"><img src=x onerror=alert(1)>".into()),
            client_uri: Some("javascript:alert(1)".into()),
            policy_uri: Some("data:text/html,<script>alert(1)</script>".into()),
            tos_uri: Some("https://client.example/tos?a=1&b=\"2\"".into()),
            ..Default::default()
        };
        let (body, _) = page(&client, &request("https://client.example/cb"));
        assert!(!body.contains("<script>"), "{body}");
        assert!(!body.contains("<img"));
        assert!(body.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"));
        assert!(!body.contains("javascript:"), "non-http link rendered");
        assert!(!body.contains("data:text"));
        assert!(body.contains("href=\"https://client.example/tos?a=1&amp;b=%222%22\""));
        assert!(body.contains("&lt;b&gt;scope&lt;/b&gt;"));
    }

    #[test]
    fn bidirectional_and_format_controls_in_a_stored_name_are_neutralised() {
        // A record registered elsewhere (or before registration refused them).
        let client = ClientInfo {
            client_id: "client\u{200B}-1".into(),
            client_name: Some("Good App\u{202E}exe.lanretni\u{202C} \u{2067}x\u{2069}\u{200F}\u{061C}".into()),
            ..Default::default()
        };
        let (body, _) = page(&client, &request("https://client.example/cb"));
        for c in ['\u{202E}', '\u{202C}', '\u{2067}', '\u{2069}', '\u{200F}', '\u{061C}', '\u{200B}'] {
            assert!(!body.contains(c), "U+{:04X} reached the page", c as u32);
        }
        assert!(
            body.contains("<strong>Good App\u{FFFD}exe.lanretni\u{FFFD} \u{FFFD}x\u{FFFD}\u{FFFD}\u{FFFD}</strong>")
        );
        assert!(body.contains("<title>Connect Good App\u{FFFD}exe"));
        assert!(body.contains("<code>client\u{FFFD}-1</code>"));
    }

    fn metadata_client(client_uri: Option<&str>) -> ClientInfo {
        ClientInfo {
            client_id: "https://tools.example.com/oauth/client.json".into(),
            client_name: Some("Trusted Bank Assistant".into()),
            client_uri: client_uri.map(str::to_owned),
            ..Default::default()
        }
    }

    /// The text a person reads (tags dropped, entities left as they are).
    fn text_of(body: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in body.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn a_metadata_document_client_is_shown_by_the_host_that_vouches_for_it() {
        // Everything on the document's host: named prominently, no warning.
        let (body, _) = page(
            &metadata_client(Some("https://tools.example.com/about")),
            &request("https://tools.example.com/callback"),
        );
        assert!(body.contains("<p class=\"vouch\">Published by <strong>tools.example.com</strong>"), "{body}");
        assert!(!body.contains("class=\"warning\""), "{body}");
        // The name is the document's say, not a link to anywhere.
        assert!(!body.contains(">Trusted Bank Assistant</a>"), "{body}");
        assert!(text_of(&body).contains("Trusted Bank Assistant (as tools.example.com names it) wants to connect"));

        // A web page and a redirect on other hosts: each warned about, naming both hosts.
        let (body, _) =
            page(&metadata_client(Some("https://bank.example/")), &request("https://collector.example.net:8443/cb"));
        let text = text_of(&body);
        assert!(body.contains("<p class=\"vouch\">Published by <strong>tools.example.com</strong>"), "{body}");
        assert!(text.contains("Its web page is on bank.example, not on tools.example.com"), "{text}");
        assert!(
            text.contains("You will be sent back to collector.example.net:8443, not to tools.example.com"),
            "{text}"
        );
        assert_eq!(body.matches("class=\"warning\"").count(), 2, "{body}");
        assert!(
            body.contains("<a href=\"https://bank.example/\" rel=\"noopener noreferrer\">bank.example</a>"),
            "{body}"
        );
        assert!(body.contains("<title>Connect Trusted Bank Assistant (tools.example.com)"), "{body}");

        // A loopback redirect (a native app on this device) or a private-use scheme is no other host.
        for redirect in ["http://127.0.0.1:33418/callback", "http://localhost:8080/cb", "cursor://anysphere/cb"] {
            let (body, _) = page(&metadata_client(None), &request(redirect));
            assert!(!body.contains("class=\"warning\""), "{redirect}: {body}");
        }
    }

    #[test]
    fn shows_who_asks_where_they_return_and_what_is_shared() {
        let client = ClientInfo {
            client_id: "client-1".into(),
            client_name: Some("Inspector".into()),
            client_uri: Some("https://inspector.example".into()),
            ..Default::default()
        };
        let (body, csp) = page(&client, &request("http://127.0.0.1:6274/oauth/callback"));
        assert!(body.contains(SERVER_TITLE) && body.contains("Todo API"));
        assert!(body.contains("<a href=\"https://inspector.example/\" rel=\"noopener noreferrer\">Inspector</a>"));
        assert!(body.contains("<strong>127.0.0.1:6274</strong>"));
        assert!(body.contains("Your name and username") && body.contains("Read access to your todo list"));
        assert!(body.contains("name=\"pending\" value=\"pending-1\""));
        assert!(body.contains("name=\"csrf_token\" value=\"csrf-1\""));
        assert!(body.contains("value=\"approve\"") && body.contains("value=\"cancel\""));
        assert!(body.contains("<style nonce=\"nonce1\">"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.contains("form-action 'self' https://auth.pingone.com http://127.0.0.1:6274;"), "{csp}");
        assert!(csp.contains("style-src 'nonce-nonce1'"));
    }

    #[test]
    fn a_nameless_client_is_shown_by_id_and_private_schemes_are_allowed_to_redirect() {
        let client = ClientInfo { client_id: "client-1".into(), ..Default::default() };
        let (body, csp) = page(&client, &request("cursor://anysphere.cursor-mcp/oauth/callback"));
        assert!(body.contains("<strong>client-1</strong> wants"));
        assert!(csp.contains("form-action 'self' https://auth.pingone.com cursor:;"), "{csp}");
    }

    fn page_for(scope: &[&str], upstream: &[&str]) -> String {
        let client = ClientInfo { client_id: "client-1".into(), ..Default::default() };
        let mut req = request("https://client.example/cb");
        req.scope = scope.iter().map(|s| s.to_string()).collect();
        let upstream: Vec<String> = upstream.iter().map(|s| s.to_string()).collect();
        let view = ConsentView {
            client: &client,
            request: &req,
            upstream_scopes: &upstream,
            pending_id: "p",
            csrf_token: "c",
            idp_origin: "https://auth.pingone.com",
            style_nonce: "n",
            action: "/authorize",
        };
        String::from_utf8(render(&view).into_body()).unwrap()
    }

    #[test]
    fn lists_exactly_what_is_being_granted() {
        // The flow asks PingOne for OpenID's scopes and only the granted API scopes.
        let read_only = page_for(&["todo_api:read"], &["openid", "profile", "todo_api:read"]);
        assert!(read_only.contains("<li>Read access to your todo list</li>"));
        assert!(!read_only.contains("Create, change and delete"), "write is not being granted");
        assert!(read_only.contains("Requested scopes: <code>todo_api:read</code></p>"));
        assert!(!read_only.contains("away"));

        let all = page_for(
            &["todo_api:read", "todo_api:write", "offline_access"],
            &["openid", "profile", "todo_api:read", "todo_api:write"],
        );
        for line in ["Your PingOne user id", "Your name and username", "Read access", "Create, change and delete"] {
            assert!(all.contains(line), "{line}");
        }
        assert!(all.contains("<li>Keep this access while you are away, until you revoke it</li>"));
        assert!(all.contains(
            "Requested scopes: <code>todo_api:read</code> <code>todo_api:write</code> <code>offline_access</code>"
        ));
        // An API scope PingOne is not asked for is not shown as granted (the grant will lack it).
        let not_configured = page_for(&["todo_api:write"], &["openid"]);
        assert!(!not_configured.contains("Create, change and delete"));
    }

    #[test]
    fn only_http_links_are_safe() {
        assert!(safe_link(Some("https://a.example/x")).is_some());
        assert!(safe_link(Some("http://a.example")).is_some());
        for bad in
            ["javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:x", "//evil.example", "vbscript:x", "relative/path"]
        {
            assert!(safe_link(Some(bad)).is_none(), "{bad}");
        }
        assert!(safe_link(None).is_none());
    }
}
