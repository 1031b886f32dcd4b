//! What the connections page shows and how: one entry per grant the user
//! holds (client name, where the client lives, when approved, scopes, last
//! used, each with its own Revoke form), and the sections the caller adds
//! (downstream connections, issue 23). Every client-supplied string is
//! neutralised and escaped: a client names itself.

use super::super::authz::{ClientInfo, GrantSummary};
use super::super::pages;
use crate::util::html::escape;
use crate::util::text::neutralise;

/// One MCP client's grant, as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The grant's id: what the Revoke form posts.
    pub grant_id: String,
    /// The client's registered name (or its id), neutralised, not yet escaped.
    pub client_name: String,
    /// Where the client is: the host of its metadata-document id, or the host
    /// its sign-in went back to (`None` when neither is known).
    pub client_host: Option<ClientHost>,
    /// The client's registration is gone (deleted, run out).
    pub client_gone: bool,
    pub approved_at: u64,
    pub scopes: Vec<String>,
    /// When tokens were last issued under the grant (sign-in or refresh).
    pub last_used: Option<u64>,
    pub expires_at: Option<u64>,
}

/// Where a client lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHost {
    /// The host publishing the client's metadata document (its client id).
    Publisher(String),
    /// The host (or app scheme) the sign-in returned to.
    RedirectsTo(String),
}

/// A section the caller adds below the MCP clients, e.g. the per-user
/// downstream token vault (issue 23): a heading and its entries, each a name
/// and a line of detail, shown escaped. With `remove`, each entry that has an
/// id gets a button posting `action=<remove.0>`, `entry=<id>` with the page's
/// CSRF token; the extension that added the section answers it
/// (`SignInExtension::remove`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub heading: String,
    pub entries: Vec<(String, String)>,
    /// The ids of the entries, in order (`None`: entries without a button).
    pub ids: Option<Vec<String>>,
    /// `(action, button label)` of the entries' buttons.
    pub remove: Option<(String, String)>,
}

/// `host[:port]` of an http(s) URL, or `scheme:` of an app's private-use
/// redirect (`cursor:`); `None` for anything else.
fn host_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    match url.scheme() {
        "http" | "https" => {
            let host = url.host_str()?;
            Some(match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_owned(),
            })
        }
        scheme => Some(format!("{scheme}:")),
    }
}

/// The page's entry for `grant`, given its client's registration if it still exists.
pub fn connection(grant: &GrantSummary, client: Option<&ClientInfo>) -> Connection {
    let publisher = grant.client_id.starts_with("https://").then(|| host_of(&grant.client_id)).flatten();
    let redirect = grant.redirect_uri.as_deref().or_else(|| client.and_then(|c| c.redirect_uris.first()).map(|s| &**s));
    // A metadata-document client has no registration to lose (its document may just be unreachable).
    let client_gone = client.is_none() && publisher.is_none();
    let client_host = match publisher {
        Some(h) => Some(ClientHost::Publisher(h)),
        None => redirect.and_then(host_of).map(ClientHost::RedirectsTo),
    };
    Connection {
        grant_id: grant.id.clone(),
        client_name: client.map(ClientInfo::display_name).unwrap_or_else(|| neutralise(&grant.client_id)),
        client_host,
        client_gone,
        approved_at: grant.created_at,
        scopes: grant.scope.clone(),
        last_used: grant.tokens_issued_at,
        expires_at: grant.expires_at,
    }
}

/// What just happened, shown above the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Revoked,
}

/// Everything the page needs.
pub struct PageView<'a> {
    /// The signed-in user's label (from PingOne; escaped here).
    pub user: &'a str,
    pub connections: &'a [Connection],
    /// Sections the caller adds (none today).
    pub sections: &'a [Section],
    pub csrf_token: &'a str,
    pub notice: Option<Notice>,
    /// MCP access-token lifetime: a client in use renews about this often.
    pub renew_every_secs: u64,
    /// The page's own path (the forms post there).
    pub action: &'a str,
    pub style_nonce: &'a str,
}

/// `2026-12-07 21:52 UTC` for a Unix time.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

/// "about an hour", "15 minutes": a lifetime in words.
fn duration(secs: u64) -> String {
    match secs {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3600 => format!("{} hours", s / 3600),
        s if s >= 3600 => "hour".into(),
        s => format!("{} minutes", (s / 60).max(1)),
    }
}

fn entry(c: &Connection, csrf: &str, action: &str) -> String {
    let name = escape(&c.client_name);
    let host = match &c.client_host {
        Some(ClientHost::Publisher(h)) => format!("<p class=\"muted\">Published by <strong>{}</strong></p>", escape(h)),
        Some(ClientHost::RedirectsTo(h)) => {
            format!("<p class=\"muted\">Signs in through <strong>{}</strong></p>", escape(h))
        }
        None => String::new(),
    };
    let gone = if c.client_gone { " <span class=\"muted\">(registration removed)</span>" } else { "" };
    let scopes = if c.scopes.is_empty() {
        "none".to_owned()
    } else {
        c.scopes.iter().map(|s| format!("<code>{}</code>", escape(&neutralise(s)))).collect::<Vec<_>>().join(" ")
    };
    let last_used = c.last_used.map_or_else(|| "not yet".to_owned(), utc);
    let ends = c.expires_at.map(|e| format!("<li>Ends: {}</li>", utc(e))).unwrap_or_default();
    format!(
        "<li class=\"card connection\"><h2>{name}{gone}</h2>{host}<ul>\
         <li>Approved: {}</li><li>Scopes: {scopes}</li><li>Last used: {last_used}</li>{ends}</ul>\
         <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
         <input type=\"hidden\" name=\"grant\" value=\"{}\">\
         <button type=\"submit\" name=\"action\" value=\"revoke\">Revoke {name}</button></form></li>",
        utc(c.approved_at),
        escape(action),
        escape(csrf),
        escape(&c.grant_id),
    )
}

fn section(s: &Section, csrf: &str, action: &str) -> String {
    let entries: String = s
        .entries
        .iter()
        .enumerate()
        .map(|(i, (name, detail))| {
            let id = s.ids.as_ref().and_then(|ids| ids.get(i));
            let button = match (id, &s.remove) {
                (Some(id), Some((act, label))) => format!(
                    "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
                     <input type=\"hidden\" name=\"entry\" value=\"{}\">\
                     <button type=\"submit\" name=\"action\" value=\"{}\">{}</button></form>",
                    escape(action),
                    escape(csrf),
                    escape(id),
                    escape(act),
                    escape(label)
                ),
                _ => String::new(),
            };
            format!(
                "<li><strong>{}</strong> <span class=\"muted\">{}</span>{button}</li>",
                escape(&neutralise(name)),
                escape(&neutralise(detail))
            )
        })
        .collect();
    format!("<h2>{}</h2><ul>{entries}</ul>", escape(&neutralise(&s.heading)))
}

/// The page: 200, HTML, the strict CSP of the sign-in pages (own nonce'd
/// style, forms only to this page, no framing, no scripts).
pub fn render(v: &PageView<'_>) -> http::Response<Vec<u8>> {
    let notice = match v.notice {
        Some(Notice::Revoked) => "<p class=\"warning\" role=\"status\">The connection was ended: its tokens no longer work, and the application must be approved again to reconnect.</p>",
        None => "",
    };
    let list = if v.connections.is_empty() {
        "<p>No application is connected to your account.</p>".to_owned()
    } else {
        let items: String = v.connections.iter().map(|c| entry(c, v.csrf_token, v.action)).collect();
        format!("<ul class=\"connections\">{items}</ul>")
    };
    let sections: String = v.sections.iter().map(|s| section(s, v.csrf_token, v.action)).collect();
    let body = format!(
        "<h1>Your connections</h1><p>Signed in as <strong>{}</strong>.</p>{notice}\
         <p>These applications can act for you on this server. Revoking one ends its access at once.</p>{list}\
         <p class=\"muted\">\u{201c}Last used\u{201d} is when the application last signed in or renewed its access; \
         one in use renews about every {}, so it may have been used up to that long after.</p>{sections}\
         <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
         <button type=\"submit\" name=\"action\" value=\"signout\">Sign out</button></form>",
        escape(v.user),
        duration(v.renew_every_secs),
        escape(v.action),
        escape(v.csrf_token),
    );
    let mut res =
        pages::html("Your connections", &body, v.style_nonce, &pages::csp(v.style_nonce, &["'self'".to_owned()]));
    // The page's forms then carry our Origin (with `no-referrer` Chromium sends
    // `Origin: null`); the page links nowhere else.
    res.headers_mut().insert("referrer-policy", http::HeaderValue::from_static("same-origin"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_765_144_320; // 2025-12-07 21:52 UTC

    fn grant(id: &str, client_id: &str, redirect: Option<&str>) -> GrantSummary {
        GrantSummary {
            id: id.into(),
            client_id: client_id.into(),
            user_id: "user-1".into(),
            scope: vec!["todo_api:read".into()],
            metadata: serde_json::json!({}),
            created_at: NOW - 3600,
            expires_at: Some(NOW + 86_400),
            redirect_uri: redirect.map(Into::into),
            tokens_issued_at: Some(NOW),
        }
    }

    fn client(id: &str, name: Option<&str>) -> ClientInfo {
        ClientInfo {
            client_id: id.into(),
            client_name: name.map(Into::into),
            redirect_uris: vec!["https://registered.example/cb".into()],
            ..Default::default()
        }
    }

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(NOW), "2025-12-07 21:52 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(duration(3600), "hour");
        assert_eq!(duration(600), "10 minutes");
        assert_eq!(duration(30 * 86_400), "30 days");
    }

    #[test]
    fn the_client_is_placed_by_its_document_host_or_where_it_signs_in() {
        let c = client("abc", Some("Inspector"));
        let e = connection(&grant("g1", "abc", Some("http://127.0.0.1:6274/oauth/callback")), Some(&c));
        assert_eq!(e.client_host, Some(ClientHost::RedirectsTo("127.0.0.1:6274".into())));
        assert_eq!(e.client_name, "Inspector");
        assert!(!e.client_gone);
        assert_eq!(e.last_used, Some(NOW));
        // No redirect on the grant (older records): the registration's first.
        let e = connection(&grant("g1", "abc", None), Some(&c));
        assert_eq!(e.client_host, Some(ClientHost::RedirectsTo("registered.example".into())));
        // A native app's private-use scheme.
        let e = connection(&grant("g1", "abc", Some("cursor://anysphere.cursor-mcp/cb")), Some(&c));
        assert_eq!(e.client_host, Some(ClientHost::RedirectsTo("cursor:".into())));
        // A metadata-document client: its publisher.
        let id = "https://tools.example.com/client.json";
        let e = connection(&grant("g1", id, Some("http://127.0.0.1:1/cb")), Some(&client(id, Some("Tools"))));
        assert_eq!(e.client_host, Some(ClientHost::Publisher("tools.example.com".into())));
        let e = connection(&grant("g1", id, None), None);
        assert!(!e.client_gone, "an unreachable document is no removed registration");
        assert_eq!(e.client_name, id);
        // A deleted registration: its id stands in for the name.
        let e = connection(&grant("g1", "gone\u{202e}id", None), None);
        assert!(e.client_gone);
        assert_eq!(e.client_host, None);
        assert!(!e.client_name.contains('\u{202e}'));
    }

    fn render_one(c: Connection, sections: &[Section]) -> (String, String) {
        let v = PageView {
            user: "alice <admin>",
            connections: &[c],
            sections,
            csrf_token: "csrf-1",
            notice: Some(Notice::Revoked),
            renew_every_secs: 3600,
            action: "/connections",
            style_nonce: "n1",
        };
        let res = render(&v);
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
        let referrer = res.headers()["referrer-policy"].to_str().unwrap().to_owned();
        (String::from_utf8(res.into_body()).unwrap(), format!("{csp}|{referrer}"))
    }

    #[test]
    fn client_supplied_text_is_escaped_and_the_page_locked_down() {
        let evil = client("abc", Some("<img src=x onerror=alert(1)>\"'"));
        let mut g = grant("g-1", "abc", Some("https://a.example/cb"));
        g.scope = vec!["<b>scope</b>".into()];
        let (body, headers) = render_one(connection(&g, Some(&evil)), &[]);
        let (csp, referrer) = headers.split_once('|').unwrap();
        assert!(!body.contains("<img") && !body.contains("<b>scope"), "{body}");
        assert!(body.contains("&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;"));
        assert!(body.contains("alice &lt;admin&gt;"));
        assert!(body.contains("name=\"grant\" value=\"g-1\""));
        assert_eq!(body.matches("name=\"csrf_token\" value=\"csrf-1\"").count(), 2, "revoke and sign out");
        assert!(body.contains("Last used: 2025-12-07 21:52 UTC") && body.contains("Approved: 2025-12-07 20:52 UTC"));
        assert!(body.contains("about every hour"));
        assert!(body.contains("role=\"status\""));
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(referrer, "same-origin");
        assert!(csp.contains("form-action 'self';") && csp.contains("style-src 'nonce-n1'"), "{csp}");
        assert!(!body.contains("<script"));
    }

    #[test]
    fn sections_from_the_caller_are_rendered_escaped() {
        let s = Section {
            heading: "Other services".into(),
            entries: vec![("<Cal>".into(), "since today".into())],
            ids: None,
            remove: None,
        };
        let (body, _) = render_one(connection(&grant("g", "abc", None), None), std::slice::from_ref(&s));
        assert!(body.contains("<h2>Other services</h2><ul><li><strong>&lt;Cal&gt;</strong>"), "{body}");
        assert!(!body.contains("name=\"entry\""), "no ids: no buttons");
        let removable = Section {
            ids: Some(vec!["https://cal.example/mcp?x=\"1\"".into()]),
            remove: Some(("disconnect".into(), "Disconnect".into())),
            ..s
        };
        let (body, _) = render_one(connection(&grant("g", "abc", None), None), &[removable]);
        assert!(body.contains("name=\"entry\" value=\"https://cal.example/mcp?x=&quot;1&quot;\""), "{body}");
        assert!(body.contains("name=\"action\" value=\"disconnect\">Disconnect</button>"), "{body}");
        let (body, _) = render_one(connection(&grant("g", "abc", None), None), &[]);
        assert!(!body.contains("Other services"));
    }

    #[test]
    fn an_empty_list_says_so() {
        let v = PageView {
            user: "bob",
            connections: &[],
            sections: &[],
            csrf_token: "c",
            notice: None,
            renew_every_secs: 3600,
            action: "/connections",
            style_nonce: "n",
        };
        let body = String::from_utf8(render(&v).into_body()).unwrap();
        assert!(body.contains("No application is connected"));
        assert!(!body.contains("role=\"status\""));
    }
}
