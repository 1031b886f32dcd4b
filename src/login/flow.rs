//! The three sign-in endpoints over plain `http` types:
//! `GET /authorize` (validate, then consent page or straight to PingOne),
//! `POST /authorize` (Approve / Cancel), `GET /callback` (PingOne's answer).

use super::access;
use super::authz::{authorize_url, AuthRequest, AuthServer, AuthorizeError, CompleteAuthorization};
use super::connections::{session as connections_session, CONNECTIONS_PATH};
use super::consent::{self, ConsentView};
use super::cookies::{self, Approval, APPROVED_COOKIE, APPROVED_TTL_SECS, CSRF_COOKIE, STATE_COOKIE};
use super::discovery::{Discovery, OidcCache};
use super::oidc;
use super::pages::{self, redirect, Failure, ADVICE_LATER, ADVICE_OPERATOR, ADVICE_RESTART};
use super::records::{self, Pending, StateRecord, TakeError, PENDING_TTL_SECS};
use super::settings::Settings;
use super::upstream;
use crate::outbound::HttpClient;
use crate::store::{KvStore, StoreError};
use crate::util::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::util::html::escape;
use crate::util::text::neutralise;
use http::{Method, Request, Response};
use std::rc::Rc;
use url::Url;

/// Everything a sign-in request needs; built per request by the Workers glue.
pub struct Login<'a> {
    pub settings: &'a Settings,
    pub store: &'a dyn KvStore,
    pub auth: &'a dyn AuthServer,
    pub http: &'a dyn HttpClient,
    pub cache: &'a OidcCache,
    pub now: u64,
    /// What the application adds: a step between a verified sign-in and the
    /// MCP authorization's completion, sections of the connections page
    /// (none: completed at once, no sections).
    pub extension: Option<&'a dyn SignInExtension>,
}

/// What the application does with a verified, admitted sign-in before the
/// MCP authorization is completed.
pub enum Detour {
    /// Complete it now (the application may have changed nothing).
    Complete(CompleteAuthorization),
    /// Answer with this instead (e.g. send the browser elsewhere first); the
    /// application completes the authorization later itself, through
    /// [`AuthServer::complete_authorization`].
    Respond(Response<Vec<u8>>),
}

/// What the application adds to sign-in (see [`Login::extension`]). Sign-in
/// knows nothing of what it does: it hands over what it would complete, and
/// shows the sections it is given.
#[async_trait::async_trait(?Send)]
pub trait SignInExtension {
    /// `origin` is this server's; `complete` what sign-in would complete.
    async fn before_completion(&self, origin: &str, complete: CompleteAuthorization) -> Detour;

    /// Sections of the connections page below the MCP clients, for `user_id`.
    async fn sections(&self, _user_id: &str) -> Vec<super::connections::page::Section> {
        Vec::new()
    }

    /// A section entry's button (`action`, `entry`) was pressed by `user_id`
    /// (the page checked the session, CSRF token and Origin): `Some(true)`
    /// removed, `Some(false)` not one of the user's, `None` not this
    /// extension's action.
    async fn remove(&self, _user_id: &str, _action: &str, _entry: &str) -> Option<bool> {
        None
    }
}

/// Where PingOne sends the browser back (the redirect URI registered there).
pub const CALLBACK_PATH: &str = "/callback";

/// Paths this module answers: the authorization endpoint (at
/// `authorize_path`, the authorization server's configured one),
/// [`CALLBACK_PATH`] and the connections page.
pub fn owns(authorize_path: &str, path: &str) -> bool {
    path == authorize_path || path == CALLBACK_PATH || path == CONNECTIONS_PATH
}

/// One line to the Workers log (no secrets: callers pass only names and codes).
pub fn log(line: &str) {
    #[cfg(target_arch = "wasm32")]
    worker::console_log!("[login] {line}");
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[login] {line}");
}

/// The page for a missing or malformed setting, logged by name.
pub fn config_failure(e: &super::settings::SettingError) -> Failure {
    log(&format!("configuration error: {e}"));
    Failure::new(
        500,
        "server_error",
        "This server is not configured correctly",
        format!("Sign-in is unavailable: {e}."),
        ADVICE_OPERATOR,
    )
}

fn storage(e: StoreError) -> Failure {
    log(&format!("storage error: {e}"));
    Failure::new(
        503,
        "temporarily_unavailable",
        "Storage is unavailable",
        "The server could not save or read the sign-in.",
        ADVICE_LATER,
    )
}

fn bad_request(title: &'static str, detail: &str) -> Failure {
    Failure::new(400, "invalid_request", title, detail, ADVICE_RESTART)
}

fn forbidden(title: &'static str, detail: &str) -> Failure {
    Failure::new(403, "access_denied", title, detail, ADVICE_RESTART)
}

fn request_url(req: &Request<Vec<u8>>) -> Result<Url, Failure> {
    Url::parse(&req.uri().to_string()).map_err(|_| bad_request("Invalid request", "The request URL is malformed."))
}

fn cookie_header(req: &Request<Vec<u8>>) -> Option<&str> {
    req.headers().get(http::header::COOKIE).and_then(|v| v.to_str().ok())
}

/// An authorization-server error as a response: OAuth JSON for programs that
/// asked for it, otherwise a page naming the client and, when the client and
/// its redirect URI are known good, a link back to it carrying the error.
/// Never a redirect: the person has not decided anything (RFC 9700 §4.11.2).
fn authorize_error(e: AuthorizeError, wants_json: bool, extra_cookies: &[String]) -> Response<Vec<u8>> {
    // The check that failed, for the operator; the person and the client see only the generic error.
    log(&format!("authorization request refused: {} ({} {})", e.reason, e.status, neutralise(&e.error)));
    let back = e.back_url();
    let error: &'static str = match e.error.as_str() {
        "invalid_client" => "invalid_client",
        "unauthorized_client" => "unauthorized_client",
        "unsupported_response_type" => "unsupported_response_type",
        "invalid_scope" => "invalid_scope",
        "invalid_target" => "invalid_target",
        "temporarily_unavailable" => "temporarily_unavailable",
        "server_error" => "server_error",
        _ => "invalid_request",
    };
    let title = "The application's request is invalid";
    if wants_json || (e.client_name.is_none() && back.is_none()) {
        let f = Failure::new(e.status, error, title, e.description, ADVICE_OPERATOR);
        return pages::add_cookies(f.respond(wants_json), extra_cookies);
    }
    let client = escape(e.client_name.as_deref().unwrap_or("The application"));
    let next = match &back {
        Some(back) => format!(
            "<p>Nothing was shared and you were not sent anywhere. You can return to <strong>{client}</strong>, \
             which will be told the request failed.</p>\
             <p><a class=\"button\" href=\"{}\" rel=\"noopener noreferrer\">Return to {client}</a></p>",
            escape(back)
        ),
        None => format!(
            "<p>Nothing was shared and you were not sent anywhere. {}</p>",
            escape("Go back to the application you were connecting; if it keeps happening, its developer must fix it.")
        ),
    };
    let body = format!(
        "<h1>{}</h1><div class=\"card\"><p><strong>{client}</strong> sent a request this server cannot accept.</p>\
         <p><code>{}</code> {}</p></div>{next}",
        escape(title),
        escape(error),
        escape(&e.description),
    );
    let nonce = random_token(22);
    let mut res = pages::html(title, &body, &nonce, &pages::csp(&nonce, &[]));
    *res.status_mut() = http::StatusCode::from_u16(e.status).unwrap_or(http::StatusCode::BAD_REQUEST);
    pages::add_cookies(res, extra_cookies)
}

impl Login<'_> {
    /// Answers a request for one of the paths [`owns`] says are ours.
    pub async fn handle(&self, req: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        let json = pages::wants_json(req);
        let path = req.uri().path();
        let path = if path == self.auth.authorize_path() { "/authorize" } else { path };
        let result = match (path, req.method()) {
            ("/authorize", &Method::GET) => self.authorize_get(req, json).await,
            ("/authorize", &Method::POST) => self.authorize_post(req, json).await,
            (CALLBACK_PATH, &Method::GET) => self.callback(req).await,
            (CONNECTIONS_PATH, &Method::GET) => self.connections_get(req).await,
            (CONNECTIONS_PATH, &Method::POST) => self.connections_post(req).await,
            _ => {
                let mut res = Failure::new(
                    405,
                    "invalid_request",
                    "Method not allowed",
                    "Use GET (or POST for the consent form).",
                    ADVICE_RESTART,
                )
                .respond(json);
                let allow = if path == "/authorize" || path == CONNECTIONS_PATH { "GET, POST" } else { "GET" };
                res.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
                return res;
            }
        };
        result.unwrap_or_else(|(f, cookies)| pages::add_cookies(f.respond(json), &cookies))
    }

    pub(super) async fn discovery(&self) -> Result<Rc<Discovery>, Failure> {
        self.cache.discovery(self.http, &self.settings.issuer, self.now).await.map_err(|e| {
            log(&format!("discovery failed: {e}"));
            oidc::upstream(e)
        })
    }

    /// GET /authorize: validate, then skip consent for an approved client or show the page.
    async fn authorize_get(
        &self,
        req: &Request<Vec<u8>>,
        json: bool,
    ) -> Result<Response<Vec<u8>>, (Failure, Vec<String>)> {
        let url = request_url(req).map_err(|f| (f, vec![]))?;
        let origin = url.origin().ascii_serialization();
        let request = match self.auth.parse_auth_request(&url).await {
            Ok(r) => r,
            Err(e) => return Ok(authorize_error(e, json, &[])),
        };
        if !request.dropped_scopes.is_empty() {
            // Scope names the client chose: neutralised and cut short, never secrets.
            let dropped: Vec<String> =
                request.dropped_scopes.iter().take(10).map(|s| neutralise(s).chars().take(64).collect()).collect();
            log(&format!(
                "authorize: client {} asked for scopes this server does not grant; dropped: {}",
                neutralise(&request.client_id).chars().take(256).collect::<String>(),
                dropped.join(" ")
            ));
        }
        let client = match self.auth.lookup_client(&request.client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Err((bad_request("Unknown application", "This application is not registered."), vec![]))
            }
            Err(e) => return Err((storage(e), vec![])),
        };
        let discovery = self.discovery().await.map_err(|f| (f, vec![]))?;

        // Approved before in this browser for this client, this redirect URI
        // and these scopes or more: no consent page.
        let approved =
            cookies::approvals(cookies::get(cookie_header(req), APPROVED_COOKIE), &self.settings.cookie_key, self.now);
        let wanted = Approval::new(&request.client_id, &request.redirect_uri, &request.scope);
        if cookies::is_approved(&approved, &wanted) {
            return self.to_pingone(&origin, request, &discovery, Vec::new()).await;
        }

        let csrf = random_token(32);
        let pending_id = random_token(32);
        let pending = Pending { request, csrf_hash: sha256_hex(&csrf), expires_at: self.now + PENDING_TTL_SECS };
        records::put_pending(self.store, &pending_id, &pending).await.map_err(|e| (storage(e), vec![]))?;
        let nonce = random_token(22);
        let idp_origin = discovery.authorization_origin();
        let view = ConsentView {
            client: &client,
            request: &pending.request,
            upstream_scopes: &upstream::scopes_for(self.settings, &pending.request.scope),
            pending_id: &pending_id,
            csrf_token: &csrf,
            idp_origin: &idp_origin,
            style_nonce: &nonce,
            action: self.auth.authorize_path(),
        };
        let csrf_cookie = cookies::set(CSRF_COOKIE, &csrf, PENDING_TTL_SECS, true);
        Ok(pages::add_cookies(consent::render(&view), &[csrf_cookie]))
    }

    /// POST /authorize: the consent form's Approve or Cancel.
    async fn authorize_post(
        &self,
        req: &Request<Vec<u8>>,
        json: bool,
    ) -> Result<Response<Vec<u8>>, (Failure, Vec<String>)> {
        // The token is single-use whatever happens next.
        let clear = vec![cookies::clear(CSRF_COOKIE)];
        let err = |f: Failure| (f, clear.clone());
        let url = request_url(req).map_err(err)?;
        let origin = url.origin().ascii_serialization();
        let form_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !form_type.starts_with("application/x-www-form-urlencoded") {
            return Err(err(bad_request("Invalid form", "The consent form must be posted as a web form.")));
        }
        let field =
            |name: &str| url::form_urlencoded::parse(req.body()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let (csrf, pending_id, action) = (field("csrf_token"), field("pending"), field("action"));

        let stale = "The consent form has expired, was already used, or was sent from another page.";
        if !cookies::csrf_matches(csrf.as_deref(), cookies::get(cookie_header(req), CSRF_COOKIE)) {
            log("consent rejected: CSRF token missing or mismatched");
            return Err(err(forbidden("The consent form could not be verified", stale)));
        }
        let pending_id = pending_id.as_deref().unwrap_or("");
        let pending = match records::take_pending(self.store, pending_id, csrf.as_deref().unwrap_or(""), self.now).await
        {
            Ok(p) => p,
            Err(TakeError::Storage(e)) => return Err(err(storage(e))),
            // The form's token must be the one issued with *this* pending request.
            Err(TakeError::NotThisBrowser) => {
                log("consent rejected: CSRF token belongs to another consent page");
                return Err(err(forbidden("The consent form could not be verified", stale)));
            }
            Err(_) => {
                log("consent rejected: unknown, used or expired pending request");
                return Err(err(bad_request("This consent request is no longer valid", stale)));
            }
        };

        // Validate again from scratch: the client may have changed since the page was shown.
        let request = match authorize_url(&origin, &pending.request) {
            Some(u) => match self.auth.parse_auth_request(&u).await {
                Ok(r) => r,
                Err(e) => return Ok(authorize_error(e, json, &clear)),
            },
            None => return Err(err(bad_request("Invalid request", "The stored request is unusable."))),
        };

        match action.as_deref() {
            Some("cancel") => {
                log("consent: the user declined (authorize.user_declined)");
                let to = self.auth.error_redirect(&origin, &request, "access_denied", "The user declined the request");
                Ok(redirect(&to.to_url(), &clear))
            }
            Some("approve") => {
                let discovery = self.discovery().await.map_err(err)?;
                let existing = cookies::approvals(
                    cookies::get(cookie_header(req), APPROVED_COOKIE),
                    &self.settings.cookie_key,
                    self.now,
                );
                let approval = Approval::new(&request.client_id, &request.redirect_uri, &request.scope);
                let mut set = clear.clone();
                if let Some(approved) = cookies::approve(existing, approval, &self.settings.cookie_key, self.now) {
                    set.push(cookies::set(APPROVED_COOKIE, &approved, APPROVED_TTL_SECS, false));
                }
                self.to_pingone(&origin, request, &discovery, set).await
            }
            _ => Err(err(bad_request("Invalid form", "Choose Approve or Cancel."))),
        }
    }

    /// Records a state and sends the browser to PingOne, binding the state to it.
    async fn to_pingone(
        &self,
        origin: &str,
        request: AuthRequest,
        discovery: &Discovery,
        mut cookies_out: Vec<String>,
    ) -> Result<Response<Vec<u8>>, (Failure, Vec<String>)> {
        let redirect_uri = format!("{origin}{CALLBACK_PATH}");
        let scopes = upstream::scopes_for(self.settings, &request.scope);
        let start =
            oidc::start(self.settings, discovery, &redirect_uri, &scopes).map_err(|f| (f, cookies_out.clone()))?;
        let ttl = self.settings.state_ttl_secs;
        let record = StateRecord {
            request,
            code_verifier: start.code_verifier,
            nonce: start.nonce,
            redirect_uri,
            expires_at: self.now + ttl,
        };
        records::put_state(self.store, &start.state, &record, ttl)
            .await
            .map_err(|e| (storage(e), cookies_out.clone()))?;
        cookies_out.push(cookies::set(STATE_COOKIE, &records::state_hash(&start.state), ttl.max(60), false));
        Ok(redirect(start.url.as_str(), &cookies_out))
    }

    /// GET /callback: PingOne's answer, checked, turned into an MCP authorization.
    async fn callback(&self, req: &Request<Vec<u8>>) -> Result<Response<Vec<u8>>, (Failure, Vec<String>)> {
        let url = request_url(req).map_err(|f| (f, vec![]))?;
        let origin = url.origin().ascii_serialization();
        let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());

        let Some(state) = param("state").filter(|s| !s.is_empty()) else {
            return Err((bad_request("Sign-in failed", "The answer from PingOne has no state."), vec![]));
        };
        // A sign-in to the connections page, started in this browser.
        let to_connections = cookies::get(cookie_header(req), connections_session::STATE_COOKIE)
            .is_some_and(|c| constant_time_eq(c, records::state_hash(&state)));
        if to_connections {
            return self.connections_callback(&url, &state).await;
        }
        // The browser must be the one that started this sign-in.
        let bound = cookies::get(cookie_header(req), STATE_COOKIE)
            .is_some_and(|c| constant_time_eq(c, records::state_hash(&state)));
        if !bound {
            log("callback rejected: state not bound to this browser");
            return Err((
                bad_request("Sign-in failed", "This sign-in was started in another browser or its cookie is missing."),
                vec![],
            ));
        }
        let clear = vec![cookies::clear(STATE_COOKIE)];
        let record = match records::take_state(self.store, &state, self.now).await {
            Ok(r) => r,
            Err(TakeError::Storage(e)) => return Err((storage(e), vec![])),
            Err(TakeError::Expired) => {
                return Err((bad_request("Sign-in expired", "This sign-in took too long and has expired."), clear))
            }
            Err(TakeError::Unknown | TakeError::NotThisBrowser) => {
                log("callback rejected: unknown or already used state");
                return Err((
                    bad_request("Sign-in failed", "This sign-in is unknown or was already completed."),
                    clear,
                ));
            }
        };

        if let Some(error) = param("error") {
            return Ok(self.idp_error(&origin, &record.request, &error, param("error_description"), clear).await);
        }
        let Some(code) = param("code").filter(|c| !c.is_empty()) else {
            return Err((bad_request("Sign-in failed", "The answer from PingOne has no authorization code."), clear));
        };

        let discovery = self.discovery().await.map_err(|f| (f, clear.clone()))?;
        let signed_in =
            oidc::finish(self.http, self.cache, self.settings, &discovery, (&record).into(), &code, self.now)
                .await
                .map_err(|f| {
                    log(&format!("sign-in failed: {}", f.detail));
                    (f, clear.clone())
                })?;

        // Access control: someone not admitted gets no grant at all.
        if !self.settings.access.admits(&signed_in) {
            return Ok(self.access_denied(&origin, &record.request, &discovery, &signed_in, clear).await);
        }

        let mut metadata = serde_json::json!({ "label": signed_in.label() });
        if let Some(rt) = &signed_in.refresh_token {
            // Bound to the user now, to the grant at the code exchange (its id does not exist yet).
            metadata[upstream::SEALED_FIELD] = serde_json::json!(upstream::seal(self.settings, rt, &signed_in.sub, ""));
        }
        // What PingOne actually granted bounds the grant: an API scope it left
        // out is not granted to the MCP client either.
        let scope = record
            .request
            .scope
            .iter()
            .filter(|s| !upstream::is_api_scope(s) || signed_in.scopes.contains(s))
            .cloned()
            .collect();
        let complete = CompleteAuthorization {
            user_id: signed_in.sub.clone(),
            metadata,
            scope,
            props: signed_in.props(),
            request: record.request,
            revoke_existing_grants: true,
        };
        let complete = match self.extension {
            None => complete,
            Some(after) => match after.before_completion(&origin, complete).await {
                Detour::Complete(c) => c,
                Detour::Respond(res) => return Ok(pages::add_cookies(res, &clear)),
            },
        };
        match self.auth.complete_authorization(&origin, complete).await {
            Ok(to) => Ok(redirect(&to, &clear)),
            Err(e) => Ok(authorize_error(e, pages::wants_json(req), &clear)),
        }
    }

    /// A verified user whom `ALLOWED_USERS` / `ALLOWED_GROUPS` do not admit:
    /// nothing is stored, the PingOne refresh token just issued is revoked
    /// (best effort), and the person sees why, with the way back to the
    /// client carrying `error=access_denied`.
    async fn access_denied(
        &self,
        origin: &str,
        request: &AuthRequest,
        discovery: &Discovery,
        who: &oidc::SignedIn,
        clear: Vec<String>,
    ) -> Response<Vec<u8>> {
        log(&format!("access denied: user {} is not in ALLOWED_USERS or ALLOWED_GROUPS", access::loggable(&who.sub)));
        if let Some(rt) = &who.refresh_token {
            if let Err(why) = oidc::revoke_refresh_token(self.http, self.settings, discovery, rt).await {
                log(&format!("access denied: revoking the PingOne refresh token failed: {why}"));
            }
        }
        let back = self
            .auth
            .error_redirect(origin, request, "access_denied", "The signed-in user is not allowed to use this server")
            .to_url();
        let client_name = self.client_name(request).await;
        pages::add_cookies(access::denied_page(who, &client_name, &back), &clear)
    }

    /// The client's registered name, or its id.
    async fn client_name(&self, request: &AuthRequest) -> String {
        match self.auth.lookup_client(&request.client_id).await {
            Ok(Some(c)) => c.display_name(),
            _ => neutralise(&request.client_id),
        }
    }

    /// PingOne reported an error: tell the person, and offer the way back to
    /// the application with an OAuth error it understands.
    async fn idp_error(
        &self,
        origin: &str,
        request: &AuthRequest,
        error: &str,
        description: Option<String>,
        clear: Vec<String>,
    ) -> Response<Vec<u8>> {
        // Only well-known codes travel on; the raw text is shown, escaped, to the person.
        let (status, to_client) = match error {
            "access_denied" | "login_required" | "consent_required" | "interaction_required" => (403, "access_denied"),
            "temporarily_unavailable" => (503, "temporarily_unavailable"),
            _ => (502, "server_error"),
        };
        log(&format!(
            "identity provider returned error {}",
            error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect::<String>()
        ));
        let back = self
            .auth
            .error_redirect(origin, request, to_client, "Sign-in at the identity provider did not complete")
            .to_url();
        let client_name = self.client_name(request).await;
        let detail = neutralise(&description.unwrap_or_default().chars().take(300).collect::<String>());
        let nonce = random_token(22);
        let body = format!(
            "<h1>Sign-in was not completed</h1><div class=\"card\"><p>PingOne answered <code>{}</code>.</p><p>{}</p></div>\
             <p>You can return to {} and try again.</p><p><a class=\"button\" href=\"{}\">Return to the application</a></p>",
            escape(&neutralise(&error.chars().take(64).collect::<String>())),
            escape(&detail),
            escape(&client_name),
            escape(&back),
        );
        let mut res = pages::html("Sign-in was not completed", &body, &nonce, &pages::csp(&nonce, &[]));
        *res.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        pages::add_cookies(res, &clear)
    }
}
