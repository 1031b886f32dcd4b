//! The connections page (`/connections`): a person signs in with PingOne (a
//! round trip of its own: PKCE, nonce, state bound to the browser, through
//! the same `/callback`, so PingOne needs no second redirect URI), sees the
//! MCP clients holding grants for them and ends any of them at once.
//!
//! - `GET /connections`: the page for a signed-in browser, else off to PingOne.
//! - `POST /connections`: `action=revoke` + `grant` ends that grant (record,
//!   tokens, and through the grant-end hook its PingOne refresh token);
//!   `action=signout` ends the session. Both need the session cookie, the
//!   session's CSRF token and our own `Origin`.
//!
//! Only grants listed under the signed-in `sub` are shown or ended: a grant id
//! that is not among them (another user's, ended, made up) gets the same 404.
//! The sign-in keeps no PingOne token: its refresh token is revoked at once.

pub mod page;
pub mod session;

use super::cookies;
use super::flow::{log, Login, CALLBACK_PATH};
use super::oidc::{self, Trip};
use super::pages::{self, Failure};
use super::records::{self, ConnectionsState, TakeError};
use super::upstream;
use crate::util::crypto::random_token;
use crate::util::text::neutralise;
use http::{Request, Response, StatusCode};
use page::{Notice, PageView};
use session::{Session, SESSION_COOKIE, SESSION_TTL_SECS, STATE_COOKIE};
use url::Url;

/// Where the page is served.
pub const CONNECTIONS_PATH: &str = "/connections";

const ADVICE: &str = "Open the connections page again to sign in anew.";

type Refused = (Failure, Vec<String>);

fn refused(status: u16, error: &'static str, title: &'static str, detail: &str) -> Failure {
    Failure::new(status, error, title, detail, ADVICE)
}

fn storage(e: crate::store::StoreError) -> Failure {
    log(&format!("connections: storage error: {e}"));
    Failure::new(
        503,
        "temporarily_unavailable",
        "Storage is unavailable",
        "The server could not read or change your connections.",
        pages::ADVICE_LATER,
    )
}

fn cookie<'a>(req: &'a Request<Vec<u8>>, name: &str) -> Option<&'a str> {
    cookies::get(req.headers().get(http::header::COOKIE).and_then(|v| v.to_str().ok()), name)
}

fn header<'a>(req: &'a Request<Vec<u8>>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn request_url(req: &Request<Vec<u8>>) -> Result<Url, Refused> {
    Url::parse(&req.uri().to_string())
        .map_err(|_| (refused(400, "invalid_request", "Invalid request", "The request URL is malformed."), vec![]))
}

/// A 303 (after a POST the browser follows with GET).
fn see_other(location: &str, cookies_out: &[String]) -> Response<Vec<u8>> {
    let mut res = pages::redirect(location, cookies_out);
    if res.status() == StatusCode::FOUND {
        *res.status_mut() = StatusCode::SEE_OTHER;
    }
    res
}

impl Login<'_> {
    /// `GET /connections`.
    pub(super) async fn connections_get(&self, req: &Request<Vec<u8>>) -> Result<Response<Vec<u8>>, Refused> {
        let url = request_url(req)?;
        match Session::open(cookie(req, SESSION_COOKIE), &self.settings.cookie_key, self.now) {
            Some(s) => self.connections_page(&s, &url).await.map_err(|f| (f, vec![])),
            None => self.connections_sign_in(&url.origin().ascii_serialization()).await,
        }
    }

    async fn connections_page(&self, s: &Session, url: &Url) -> Result<Response<Vec<u8>>, Failure> {
        // Just ended (POST → 303 here): shown as ended even where KV still lists it.
        let ended = url.query_pairs().find(|(k, _)| k == "ended").map(|(_, v)| v.into_owned());
        let mut grants = self.auth.list_user_grants(&s.sub).await.map_err(storage)?;
        grants.retain(|g| g.user_id == s.sub && Some(&g.id) != ended.as_ref());
        grants.sort_by_key(|g| std::cmp::Reverse(g.created_at));
        let mut rows = Vec::with_capacity(grants.len());
        for g in &grants {
            // A client that cannot be read is shown by its id.
            let client = self.auth.lookup_client(&g.client_id).await.ok().flatten();
            rows.push(page::connection(g, client.as_ref()));
        }
        let nonce = random_token(22);
        // What the application adds (issue 23: the downstream servers connected for the user).
        let sections = match self.extension {
            Some(e) => e.sections(&s.sub).await,
            None => Vec::new(),
        };
        let view = PageView {
            user: &s.label,
            connections: &rows,
            sections: &sections,
            csrf_token: &s.csrf_token(&self.settings.cookie_key),
            notice: ended.is_some().then_some(Notice::Revoked),
            renew_every_secs: self.auth.access_token_ttl(),
            action: CONNECTIONS_PATH,
            style_nonce: &nonce,
        };
        Ok(page::render(&view))
    }

    /// Off to PingOne, asking only for OpenID's scopes: the page needs to know
    /// who it is, nothing of the Todo API.
    async fn connections_sign_in(&self, origin: &str) -> Result<Response<Vec<u8>>, Refused> {
        let discovery = self.discovery().await.map_err(|f| (f, vec![]))?;
        let redirect_uri = format!("{origin}{CALLBACK_PATH}");
        let scopes = upstream::scopes_for(self.settings, &[]);
        let start = oidc::start(self.settings, &discovery, &redirect_uri, &scopes).map_err(|f| (f, vec![]))?;
        let ttl = self.settings.state_ttl_secs;
        let record = ConnectionsState {
            code_verifier: start.code_verifier,
            nonce: start.nonce,
            redirect_uri,
            expires_at: self.now + ttl,
        };
        records::put_connections_state(self.store, &start.state, &record, ttl)
            .await
            .map_err(|e| (storage(e), vec![]))?;
        let bind = cookies::set(STATE_COOKIE, &records::state_hash(&start.state), ttl.max(60), false);
        Ok(pages::redirect(start.url.as_str(), &[bind]))
    }

    /// `GET /callback` for a trip [`STATE_COOKIE`] says is the page's (the
    /// caller checked that the cookie binds `state` to this browser).
    pub(super) async fn connections_callback(&self, url: &Url, state: &str) -> Result<Response<Vec<u8>>, Refused> {
        let clear = vec![cookies::clear(STATE_COOKIE)];
        let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let fail = |f: Failure| (f, clear.clone());
        let record = match records::take_connections_state(self.store, state, self.now).await {
            Ok(r) => r,
            Err(TakeError::Storage(e)) => return Err(fail(storage(e))),
            Err(TakeError::Expired) => {
                return Err(fail(refused(400, "invalid_request", "Sign-in expired", "This sign-in took too long.")))
            }
            Err(_) => {
                log("connections: callback with an unknown or used state");
                let why = "This sign-in is unknown or was already completed.";
                return Err(fail(refused(400, "invalid_request", "Sign-in failed", why)));
            }
        };
        if let Some(error) = param("error") {
            let code: String = neutralise(&error).chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
            log(&format!("connections: the identity provider returned error {code}"));
            let why = format!("PingOne answered {code}.");
            return Err(fail(refused(403, "access_denied", "Sign-in was not completed", &why)));
        }
        let Some(code) = param("code").filter(|c| !c.is_empty()) else {
            let why = "The answer from PingOne has no authorization code.";
            return Err(fail(refused(400, "invalid_request", "Sign-in failed", why)));
        };
        let discovery = self.discovery().await.map_err(fail)?;
        let trip =
            Trip { redirect_uri: &record.redirect_uri, code_verifier: &record.code_verifier, nonce: &record.nonce };
        let who = oidc::finish(self.http, self.cache, self.settings, &discovery, trip, &code, self.now).await.map_err(
            |f| {
                log(&format!("connections: sign-in failed: {}", f.detail));
                fail(f)
            },
        )?;
        // Nothing here needs PingOne later: its refresh token is not kept.
        if let Some(rt) = &who.refresh_token {
            if let Err(why) = oidc::revoke_refresh_token(self.http, self.settings, &discovery, rt).await {
                log(&format!("connections: revoking the sign-in's PingOne refresh token failed: {why}"));
            }
        }
        let session = Session::new(&who.sub, &who.label(), self.now);
        let mut set = clear;
        set.push(cookies::set(SESSION_COOKIE, &session.seal(&self.settings.cookie_key), SESSION_TTL_SECS, false));
        Ok(pages::redirect(CONNECTIONS_PATH, &set))
    }

    /// `POST /connections`: Revoke or Sign out.
    pub(super) async fn connections_post(&self, req: &Request<Vec<u8>>) -> Result<Response<Vec<u8>>, Refused> {
        let url = request_url(req)?;
        let key = &self.settings.cookie_key;
        let Some(s) = Session::open(cookie(req, SESSION_COOKIE), key, self.now) else {
            let why = "You are not signed in to this page, or your sign-in has ended.";
            return Err((refused(401, "access_denied", "Not signed in", why), vec![]));
        };
        let forbidden = |why: &str| (refused(403, "access_denied", "The form could not be verified", why), vec![]);
        if !session::same_origin(
            header(req, "origin"),
            header(req, "sec-fetch-site"),
            &url.origin().ascii_serialization(),
        ) {
            log("connections: POST refused, not from this site's own page (Origin)");
            return Err(forbidden("The form was sent from another site."));
        }
        let form_type = header(req, "content-type").unwrap_or("").to_ascii_lowercase();
        if !form_type.starts_with("application/x-www-form-urlencoded") {
            return Err((refused(400, "invalid_request", "Invalid form", "Send the page's form."), vec![]));
        }
        let field =
            |name: &str| url::form_urlencoded::parse(req.body()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        if !s.csrf_matches(key, field("csrf_token").as_deref()) {
            log("connections: POST refused, CSRF token missing or not this session's");
            return Err(forbidden("The form is not from your current sign-in to this page."));
        }
        match field("action").as_deref() {
            Some("revoke") => self.connections_revoke(&s, field("grant").as_deref().unwrap_or("")).await,
            Some("signout") => {
                let body = format!(
                    "<h1>Signed out</h1><div class=\"card\"><p>You signed out of the connections page.</p></div>\
                     <p><a class=\"button\" href=\"{CONNECTIONS_PATH}\">Sign in again</a></p>"
                );
                let nonce = random_token(22);
                let res = pages::html("Signed out", &body, &nonce, &pages::csp(&nonce, &[]));
                Ok(pages::add_cookies(res, &[cookies::clear(SESSION_COOKIE)]))
            }
            Some(action) => {
                let entry = field("entry").unwrap_or_default();
                let removed = match self.extension {
                    Some(e) if !entry.is_empty() => e.remove(&s.sub, action, &entry).await,
                    _ => None,
                };
                match removed {
                    Some(true) => Ok(see_other(CONNECTIONS_PATH, &[])),
                    Some(false) => {
                        let why = "That entry is not one of yours, or it is already gone.";
                        Err((refused(404, "invalid_request", "No such entry", why), vec![]))
                    }
                    None => {
                        Err((refused(400, "invalid_request", "Invalid form", "Choose Revoke or Sign out."), vec![]))
                    }
                }
            }
            None => Err((refused(400, "invalid_request", "Invalid form", "Choose Revoke or Sign out."), vec![])),
        }
    }

    /// Ends `grant_id` if, and only if, it is one of the signed-in user's.
    async fn connections_revoke(&self, s: &Session, grant_id: &str) -> Result<Response<Vec<u8>>, Refused> {
        let grants = self.auth.list_user_grants(&s.sub).await.map_err(|e| (storage(e), vec![]))?;
        let Some(grant) = grants.iter().find(|g| g.user_id == s.sub && g.id == grant_id && !grant_id.is_empty()) else {
            log("connections: revoke refused, not one of the signed-in user's grants");
            let why = "That connection is not one of yours, or it has already ended.";
            return Err((refused(404, "invalid_request", "No such connection", why), vec![]));
        };
        self.auth.revoke_grant(&s.sub, &grant.id).await.map_err(|e| (storage(e), vec![]))?;
        log(&format!(
            "connections: user {} ended their grant to client {}",
            super::access::loggable(&s.sub),
            neutralise(&grant.client_id).chars().take(256).collect::<String>()
        ));
        let id: String = url::form_urlencoded::byte_serialize(grant.id.as_bytes()).collect();
        Ok(see_other(&format!("{CONNECTIONS_PATH}?ended={id}"), &[]))
    }
}
