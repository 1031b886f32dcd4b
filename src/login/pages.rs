//! Responses of the sign-in flow: small HTML pages with strict security
//! headers for people, OAuth error JSON for programs, and redirects.

use crate::util::crypto::random_token;
use crate::util::html::escape;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderValue, Response, StatusCode};

/// Shared page styling, allowed by a per-response CSP nonce.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1d2733;line-height:1.5}\
h1{font-size:1.4rem}.card{border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}\
.muted{color:#57606a;font-size:.9rem}ul{padding-left:1.2rem}code{background:#f3f4f6;padding:0 .2rem;border-radius:3px;word-break:break-all}\
.actions{display:flex;gap:.75rem;margin-top:1.5rem}button,.button{font:inherit;padding:.55rem 1.2rem;border-radius:6px;border:1px solid #8c959f;background:#fff;cursor:pointer;color:inherit;text-decoration:none}\
button.primary,.button.primary{background:#0b5cad;border-color:#0b5cad;color:#fff}\
.vouch{font-size:1.15rem;margin-top:0}.warning{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.5rem .75rem}";

/// A failed step, shown as a page or returned as OAuth error JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    /// OAuth error code for programs (`invalid_request`, `server_error`...).
    pub error: &'static str,
    /// What happened, in a few words.
    pub title: &'static str,
    /// Specifics (never a secret, token or setting value).
    pub detail: String,
    /// What the person can do about it.
    pub advice: &'static str,
}

pub const ADVICE_RESTART: &str = "Go back to the application you were connecting and start the connection again.";
pub const ADVICE_LATER: &str = "Try again in a few minutes. If it keeps happening, contact the server's operator.";
pub const ADVICE_OPERATOR: &str = "Contact the operator of this server; nothing you can do will fix it.";

impl Failure {
    pub fn new(
        status: u16,
        error: &'static str,
        title: &'static str,
        detail: impl Into<String>,
        advice: &'static str,
    ) -> Self {
        Failure { status, error, title, detail: detail.into(), advice }
    }

    /// The response: JSON for programs that asked for it, otherwise a page.
    pub fn respond(&self, wants_json: bool) -> Response<Vec<u8>> {
        let res = if wants_json {
            let body = serde_json::json!({ "error": self.error, "error_description": self.detail });
            let mut res = Response::new(body.to_string().into_bytes());
            res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res.headers_mut().insert("pragma", HeaderValue::from_static("no-cache"));
            res
        } else {
            let nonce = random_token(22);
            let body = format!(
                "<h1>{}</h1><div class=\"card\"><p>{}</p></div><p>{}</p>",
                escape(self.title),
                escape(&self.detail),
                escape(self.advice)
            );
            html(self.title, &body, &nonce, &csp(&nonce, &[]))
        };
        with_status(res, self.status)
    }
}

fn with_status(mut res: Response<Vec<u8>>, status: u16) -> Response<Vec<u8>> {
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    secure(res)
}

/// `true` when the caller prefers JSON (an MCP client probing `/authorize`
/// programmatically) over HTML.
pub fn wants_json(req: &http::Request<Vec<u8>>) -> bool {
    let accept =
        req.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    accept.contains("application/json") && !accept.contains("text/html")
}

/// The Content-Security-Policy of a page: nothing but its own nonce'd style,
/// no framing, and forms posting only to `form_action` sources (a form's
/// redirects count too, so the IdP and the client's redirect origin belong
/// there).
pub fn csp(style_nonce: &str, form_action: &[String]) -> String {
    let actions = if form_action.is_empty() { "'none'".to_owned() } else { form_action.join(" ") };
    format!(
        "default-src 'none'; style-src 'nonce-{style_nonce}'; img-src 'none'; base-uri 'none'; \
         form-action {actions}; frame-ancestors 'none'"
    )
}

/// Headers every sign-in response carries.
pub fn secure(mut res: Response<Vec<u8>>) -> Response<Vec<u8>> {
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    res
}

/// A complete HTML page. `body` must already be escaped.
pub fn html(title: &str, body: &str, style_nonce: &str, csp: &str) -> Response<Vec<u8>> {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style nonce=\"{style_nonce}\">{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    let mut res = Response::new(page.into_bytes());
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(csp) {
        res.headers_mut().insert("content-security-policy", v);
    }
    secure(res)
}

/// A 302 to `location`, setting `cookies`.
pub fn redirect(location: &str, cookies: &[String]) -> Response<Vec<u8>> {
    let mut res = Response::new(Vec::new());
    *res.status_mut() = StatusCode::FOUND;
    match HeaderValue::from_str(location) {
        Ok(v) => {
            res.headers_mut().insert(LOCATION, v);
        }
        // Only reachable with a URL containing control characters, which
        // `url` never produces; answer rather than panic.
        Err(_) => *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
    }
    add_cookies(secure(res), cookies)
}

/// Appends `Set-Cookie` headers.
pub fn add_cookies(mut res: Response<Vec<u8>>, cookies: &[String]) -> Response<Vec<u8>> {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(res: &'a Response<Vec<u8>>, name: &str) -> &'a str {
        res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    #[test]
    fn error_pages_are_escaped_and_locked_down() {
        let f = Failure::new(400, "invalid_request", "Sign-in failed", "<script>x</script>", ADVICE_RESTART);
        let res = f.respond(false);
        assert_eq!(res.status(), 400);
        let body = String::from_utf8(res.body().clone()).unwrap();
        assert!(body.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!body.contains("<script>"));
        assert_eq!(header(&res, "cache-control"), "no-store");
        assert_eq!(header(&res, "x-frame-options"), "DENY");
        assert_eq!(header(&res, "referrer-policy"), "no-referrer");
        let csp = header(&res, "content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
        assert!(csp.contains("form-action 'none'"));
        // The style nonce in the CSP is the one on the <style> element.
        let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap();
        assert!(body.contains(&format!("<style nonce=\"{nonce}\">")));
    }

    #[test]
    fn programs_get_oauth_json() {
        let f = Failure::new(502, "server_error", "PingOne unreachable", "token endpoint: timeout", ADVICE_LATER);
        let res = f.respond(true);
        assert_eq!(res.status(), 502);
        assert_eq!(header(&res, "content-type"), "application/json");
        let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(v["error"], "server_error");
        assert_eq!(v["error_description"], "token endpoint: timeout");
    }

    #[test]
    fn json_is_chosen_only_when_html_is_not_acceptable() {
        let req = |accept: &str| http::Request::get("/").header("accept", accept).body(Vec::new()).unwrap();
        assert!(wants_json(&req("application/json")));
        assert!(!wants_json(&req("text/html,application/xhtml+xml,application/json;q=0.9")));
        assert!(!wants_json(&req("*/*")));
    }

    #[test]
    fn redirects_set_cookies_and_no_store() {
        let res = redirect("https://client.example/cb?code=1", &["a=1".into(), "b=2".into()]);
        assert_eq!(res.status(), 302);
        assert_eq!(header(&res, "location"), "https://client.example/cb?code=1");
        assert_eq!(res.headers().get_all("set-cookie").iter().count(), 2);
        assert_eq!(header(&res, "cache-control"), "no-store");
    }
}
