//! The resource registry, configurable endpoint paths, the scope catalogue
//! apart from what a resource requires, and the resource-server role
//! (locally and through the internal validation endpoint).

use super::*;
use crate::bearer::BearerError;
use crate::config::{Endpoints, Secret};
use crate::is_endpoint;
use crate::resource::ProtectedResource;
use crate::resource_server::{RemoteValidator, ResourceServer, TokenValidator, ValidationTransport};
use async_trait::async_trait;

const CALENDAR: &str = "https://calendar.example.net/mcp";
const SECRET: &str = "a-validation-secret-of-32-chars-or-more";

fn catalogue() -> Vec<String> {
    ["todo_api:read", "todo_api:write", "calendar:read"].map(String::from).to_vec()
}

/// `/mcp` (+ `/sse`) here, needing `todo_api:read`; a calendar in another worker needing `calendar:read`.
fn two_resources() -> Config {
    Config {
        scopes_supported: catalogue(),
        resources: vec![
            ProtectedResource::new("/mcp")
                .with_alias("/sse")
                .with_required_scopes(["todo_api:read"])
                .with_name("Todos"),
            ProtectedResource::new(CALENDAR).with_required_scopes(["calendar:read"]).with_name("Calendar"),
        ],
        validation_secret: Some(Secret::new(SECRET)),
        ..Config::default()
    }
}

fn u(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn bearer_headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    h
}

/// The binding: the request goes to the authorization server's router as a
/// service-binding request would (no CF-Connecting-IP).
struct Binding<'a>(&'a World);

#[async_trait(?Send)]
impl ValidationTransport for Binding<'_> {
    async fn send(&self, req: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, String> {
        Ok(self.0.p().handle(&req).await)
    }
}

/// A binding whose fetch fails (no answer at all): natively there is no
/// binding to break, hence the fake.
struct Unreachable;

#[async_trait(?Send)]
impl ValidationTransport for Unreachable {
    async fn send(&self, _: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, String> {
        Err("no such service".into())
    }
}

fn token_for(w: &World, c: &Client, resource: &str) -> String {
    let (code, pkce) = w.code_for(c, "alice", &[("resource", resource)]);
    let t = json_of(&w.exchange(c, &code, &pkce));
    assert_eq!(t["resource"], resource);
    t["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn the_catalogue_and_each_resources_required_scopes_are_advertised_apart() {
    let w = World::with_config(two_resources());
    let m = json_of(&w.get("/.well-known/oauth-authorization-server"));
    assert_eq!(m["scopes_supported"], json!(["todo_api:read", "todo_api:write", "calendar:read", "offline_access"]));
    assert_eq!(m["protected_resources"], json!([MCP, CALENDAR]));
    for path in ["/mcp", "/sse"] {
        let prm = json_of(&w.get(&format!("/.well-known/oauth-protected-resource{path}")));
        assert_eq!(prm["scopes_supported"], json!(["todo_api:read"]), "{path}");
        assert_eq!(prm["resource_name"], "Todos");
    }
    // The calendar is described by its own worker, not here.
    assert_error(&w.get("/.well-known/oauth-protected-resource/calendar"), 404, "not_found");
    let res = block_on(w.p().authenticate_request(&Request::post(MCP).body(Vec::new()).unwrap())).unwrap_err();
    let challenge = header(&res, "www-authenticate").unwrap();
    assert!(challenge.contains("scope=\"todo_api:read\""), "{challenge}");
    assert!(challenge.contains("oauth-protected-resource/mcp\""), "{challenge}");
}

#[test]
fn unknown_requested_scopes_are_dropped_and_reported() {
    let w = World::with_config(two_resources());
    let c = w.public_client();
    let url = w.authorize_url(
        &c,
        Some(&Pkce::new()),
        &[("scope", "todo_api:read mcp:tools todo_api:read offline_access"), ("resource", MCP)],
    );
    let req = w.parse(&url).unwrap();
    assert_eq!(req.scope, ["todo_api:read", "offline_access"]);
    assert_eq!(req.dropped_scopes, ["mcp:tools"]);
    let url = w.authorize_url(&c, Some(&Pkce::new()), &[("scope", "calendar:read"), ("resource", CALENDAR)]);
    assert!(w.parse(&url).unwrap().dropped_scopes.is_empty());
}

#[test]
fn requests_without_resource_get_the_default_and_unregistered_ones_are_refused() {
    let mut config = two_resources();
    config.default_resource = Some(CALENDAR.into());
    let w = World::with_config(config);
    let c = w.public_client();
    let req = w.parse(&w.authorize_url(&c, Some(&Pkce::new()), &[])).unwrap();
    assert_eq!(req.resource, [CALENDAR]);
    for bad in ["https://calendar.example.net/other", "https://other.example.net/mcp", "https://mcp.example.com/x"] {
        let e = w.parse(&w.authorize_url(&c, Some(&Pkce::new()), &[("resource", bad)])).unwrap_err();
        assert_eq!(e.error, "invalid_target", "{bad}");
    }
    // The bare origin only while it is a resource.
    let closed = World::with_config(Config { origin_resource: false, ..two_resources() });
    let c = closed.public_client();
    let e = closed.parse(&closed.authorize_url(&c, Some(&Pkce::new()), &[("resource", ORIGIN)])).unwrap_err();
    assert_eq!(e.error, "invalid_target");
    assert_error(&closed.get("/.well-known/oauth-protected-resource"), 404, "not_found");
}

#[test]
fn a_resource_server_accepts_exactly_its_own_tokens() {
    let w = World::with_config(two_resources());
    let c = w.public_client();
    let cal_token = token_for(&w, &c, CALENDAR);
    let mcp_token = token_for(&w, &c, MCP);
    let calendar = ResourceServer::new(CALENDAR, ORIGIN).unwrap().with_required_scopes(["calendar:read"]);
    let now = w.store.now();
    let p = w.p();
    let at = |token: &str, url: &str, v: &dyn TokenValidator| {
        block_on(calendar.authenticate(&bearer_headers(token), &u(url), v, now))
    };
    let ok = at(&cal_token, "https://calendar.example.net/mcp/events", &p).unwrap();
    assert_eq!(ok.user_id, "alice");
    assert_eq!(ok.props["secret"], "upstream-token");
    assert_eq!(ok.audience, [CALENDAR]);
    assert!(matches!(at(&mcp_token, CALENDAR, &p), Err(BearerError::Invalid(..))));
    assert!(matches!(at(&cal_token, "https://calendar.example.net/other", &p), Err(BearerError::Invalid(..))));
    // The worker hosting the AS refuses the calendar's token at /mcp.
    assert!(w.bearer_at(Some(&cal_token), MCP).is_err());
    assert!(w.bearer_at(Some(&mcp_token), "https://mcp.example.com/sse").is_ok());
    // Its metadata and challenge.
    let prm = calendar.metadata(&u("https://calendar.example.net/.well-known/oauth-protected-resource/mcp")).unwrap();
    assert_eq!(prm["resource"], CALENDAR);
    assert_eq!(prm["authorization_servers"], json!([ORIGIN]));
    assert_eq!(prm["scopes_supported"], json!(["calendar:read"]));
    assert!(calendar.metadata(&u("https://calendar.example.net/.well-known/oauth-protected-resource")).is_none());
    let res = calendar.challenge(&u("https://calendar.example.net/mcp/x"), &BearerError::Missing);
    assert_eq!(res.status(), 401);
    assert_eq!(
        header(&res, "www-authenticate").unwrap(),
        "Bearer realm=\"OAuth\", resource_metadata=\"https://calendar.example.net/.well-known/oauth-protected-resource/mcp\", scope=\"calendar:read\""
    );
}

#[test]
fn a_resource_in_another_worker_validates_through_the_internal_endpoint() {
    let w = World::with_config(two_resources());
    let c = w.public_client();
    let cal_token = token_for(&w, &c, CALENDAR);
    let mcp_token = token_for(&w, &c, MCP);
    let binding = Binding(&w);
    let url = format!("https://auth.internal{}", w.config.endpoints.validate);
    let remote = |secret: &str| RemoteValidator::new(&binding, url.clone(), Secret::new(secret)).unwrap();
    let good = remote(SECRET);
    let ctx = block_on(good.validate_token(CALENDAR, &cal_token)).unwrap();
    assert_eq!((ctx.user_id.as_str(), ctx.client_id.as_str()), ("alice", c.id.as_str()));
    // Without a ResourceProps hook another worker gets none of the grant's props.
    assert_eq!(ctx.props, Value::Null);
    assert_eq!(ctx.audience, [CALENDAR]);
    assert!(matches!(block_on(good.validate_token(CALENDAR, &mcp_token)), Err(BearerError::Invalid(..))));
    assert!(matches!(block_on(good.validate_token(CALENDAR, "u:g:nope")), Err(BearerError::Invalid(..))));
    // Each failure says in the logs which side to fix; the client gets a 503 either way.
    let reason = |v: &RemoteValidator, resource: &str, token: &str| {
        let e = block_on(v.validate_token(resource, token)).unwrap_err();
        assert!(matches!(e, BearerError::Unavailable(_)), "{e:?}");
        e.reason().to_string()
    };
    let wrong = remote("wrong-secret-wrong-secret-wrong-secret");
    assert_eq!(reason(&wrong, CALENDAR, &cal_token), "validator.secret_or_path_refused");
    let wrong_path = RemoteValidator::new(&binding, "https://auth.internal/elsewhere", Secret::new(SECRET)).unwrap();
    assert_eq!(reason(&wrong_path, CALENDAR, &cal_token), "validator.secret_or_path_refused");
    // An unregistered resource is the resource server's misconfiguration: 503, not 401.
    assert_eq!(reason(&good, "https://stray.example.net/mcp", &cal_token), "validator.server_unavailable");
    assert_eq!(reason(&good, MCP, &mcp_token), "validator.server_unavailable", "not on auth.internal");
    assert_eq!(
        reason(&RemoteValidator::new(&Unreachable, url.clone(), Secret::new(SECRET)).unwrap(), CALENDAR, &cal_token),
        "validator.unreachable"
    );
    // Settings that could never work are refused when the validator is built.
    for (bad_url, secret) in [
        ("/internal/oauth/validate", SECRET),
        ("ftp://auth.internal/v", SECRET),
        (url.as_str(), "too-short"),
        (url.as_str(), "a-secret-long-enough-but-with-a-newline\n-inside"),
    ] {
        assert!(RemoteValidator::new(&binding, bad_url, Secret::new(secret)).is_err(), "{bad_url} {secret}");
    }
    // Revoked: refused at once.
    assert_eq!(w.form_as("/revoke", &c, &[("token", &cal_token)]).status(), 200);
    assert!(matches!(block_on(good.validate_token(CALENDAR, &cal_token)), Err(BearerError::Invalid(..))));

    // The endpoint does not exist for requests from the public edge, without
    // the secret, or when no secret is configured.
    let path = w.config.endpoints.validate.clone();
    let body = json!({"resource": MCP, "token": mcp_token}).to_string();
    let auth = format!("Bearer {SECRET}");
    let ok = w.post(&path, &body, &[("authorization", &auth)]);
    assert_eq!(ok.status(), 200);
    assert_eq!(json_of(&ok)["active"], true);
    for headers in [vec![("authorization", auth.as_str()), ("cf-connecting-ip", "203.0.113.9")], vec![]] {
        assert_error(&w.post(&path, &body, &headers), 404, "not_found");
    }
    assert!(is_endpoint(&w.config, &path));
    let closed = World::new();
    assert!(!is_endpoint(&closed.config, &path));
    assert_error(&closed.post(&path, &body, &[("authorization", &auth)]), 404, "not_found");
}

#[test]
fn endpoint_paths_follow_the_configuration() {
    let mut config = Config {
        endpoints: Endpoints {
            authorize: "/oauth/authorize".into(),
            token: "/oauth/token".into(),
            register: "/oauth/register".into(),
            revoke: "/oauth/revoke".into(),
            admin_clients: "/oauth/admin/clients".into(),
            validate: "/oauth/internal/validate".into(),
        },
        ..Config::default()
    };
    config.validate().unwrap();
    let w = World::with_config(config);
    let m = json_of(&w.get("/.well-known/oauth-authorization-server"));
    for (k, p) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("registration_endpoint", "/oauth/register"),
        ("revocation_endpoint", "/oauth/revoke"),
    ] {
        assert_eq!(m[k], format!("{ORIGIN}{p}"));
    }
    for p in ["/oauth/token", "/oauth/register", "/oauth/revoke", "/oauth/admin/clients"] {
        assert!(is_endpoint(&w.config, p), "{p}");
    }
    for p in ["/token", "/register", "/revoke", "/admin/clients", "/oauth/authorize"] {
        assert!(!is_endpoint(&w.config, p), "{p}");
        assert_eq!(w.post(p, "", &[]).status(), 404, "{p}");
    }
    let reg = w.post(
        "/oauth/register",
        &json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}).to_string(),
        &[("content-type", "application/json")],
    );
    assert_eq!(reg.status(), 201);
    let c = Client {
        id: json_of(&reg)["client_id"].as_str().unwrap().into(),
        secret: None,
        method: "none".into(),
        redirect: REDIRECT.into(),
    };
    let (code, pkce) = w.code_for(&c, "alice", &[]);
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let t = w.form_as("/oauth/token", &c, &params);
    assert_eq!(t.status(), 200);
    let access = json_of(&t)["access_token"].as_str().unwrap().to_owned();
    assert_eq!(w.form_as("/oauth/revoke", &c, &[("token", &access)]).status(), 200);
    assert!(w.bearer(&access).is_err());
}

#[test]
fn resource_and_path_settings_are_read_and_checked() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        Config::from_lookup(move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    };
    let c =
        vars(&[("MCP_SCOPES", "a b c"), ("MCP_REQUIRED_SCOPES", "a"), ("OAUTH_TOKEN_PATH", "/oauth/token")]).unwrap();
    assert_eq!(c.scopes_supported, ["a", "b", "c"]);
    assert_eq!(c.resources[0].required_scopes, ["a"]);
    assert_eq!(c.endpoints.token, "/oauth/token");
    let c = vars(&[("OAUTH_EXTRA_RESOURCES", "https://cal.example.net/mcp https://drive.example.net/")]).unwrap();
    let urls: Vec<&str> = c.resources.iter().map(|r| r.resource.as_str()).collect();
    assert_eq!(urls, ["/mcp", "https://cal.example.net/mcp", "https://drive.example.net/"]);
    let c = vars(&[("MCP_SCOPES", "a b")]).unwrap();
    assert_eq!(c.resources[0].required_scopes, ["a", "b"], "MCP_SCOPES is the default of both");
    for (bad, names) in [
        (&[("MCP_SCOPES", "a b"), ("MCP_REQUIRED_SCOPES", "z")][..], "MCP_REQUIRED_SCOPES"),
        (&[("OAUTH_TOKEN_PATH", "token")][..], "OAUTH_TOKEN_PATH"),
        (&[("OAUTH_TOKEN_PATH", "/")][..], "OAUTH_TOKEN_PATH"),
        (&[("OAUTH_TOKEN_PATH", "/oauth/")][..], "OAUTH_TOKEN_PATH"),
        (&[("OAUTH_TOKEN_PATH", "/oauth/../token")][..], "OAUTH_TOKEN_PATH"),
        (&[("OAUTH_TOKEN_PATH", "/to%6Ben")][..], "OAUTH_TOKEN_PATH"),
        (&[("OAUTH_TOKEN_PATH", "/token?x")][..], "OAUTH_TOKEN_PATH"),
        (&[("OAUTH_REVOKE_PATH", "/token")][..], "OAUTH_REVOKE_PATH"),
        (&[("OAUTH_REGISTER_PATH", "/mcp/register")][..], "OAUTH_REGISTER_PATH"),
        (&[("OAUTH_VALIDATION_SECRET", "short")][..], "OAUTH_VALIDATION_SECRET"),
        (&[("OAUTH_EXTRA_RESOURCES", "/calendar")][..], "OAUTH_EXTRA_RESOURCES"),
        (&[("OAUTH_EXTRA_RESOURCES", "https://x.example.net/a#b")][..], "protected resource"),
    ] {
        let e = vars(bad).unwrap_err().0;
        assert!(e.starts_with(names), "{e}");
    }
}

/// An endpoint path or protected resource on one of the application's own
/// routes would leave one of the two unreachable: refused with the setting's name.
#[test]
fn endpoint_paths_must_not_take_the_applications_own_routes() {
    let app = ["/health", "/callback"];
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        Config::from_lookup(move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap()
    };
    assert_eq!(Config::default().check_app_routes(&app), Ok(()));
    assert_eq!(vars(&[("OAUTH_TOKEN_PATH", "/oauth/token")]).check_app_routes(&app), Ok(()));
    for (setting, name, path) in [
        (&[("OAUTH_TOKEN_PATH", "/callback")][..], "OAUTH_TOKEN_PATH", "/callback"),
        (&[("OAUTH_AUTHORIZE_PATH", "/health")][..], "OAUTH_AUTHORIZE_PATH", "/health"),
    ] {
        let e = vars(setting).check_app_routes(&app).unwrap_err().0;
        assert_eq!(e, format!("{name} must not be {path}, a route of the application"));
    }
    // A protected resource at or above one of them (here the whole /mcp tree).
    let e = Config::default().check_app_routes(&["/mcp/health"]).unwrap_err().0;
    assert!(e.contains("protected resources must not cover /mcp/health"), "{e}");
}

/// WOP 1.2: with several resources and no default, an authorization request
/// must name one (`invalid_target`, shown with the way back); a configured
/// default (`OAUTH_DEFAULT_RESOURCE`) restores the old behaviour.
#[test]
fn several_resources_without_a_default_need_a_resource_parameter() {
    let w = World::with_config(two_resources());
    let c = w.public_client();
    let e = w.parse(&w.authorize_url(&c, Some(&Pkce::new()), &[])).unwrap_err();
    assert_eq!(e.error, "invalid_target");
    assert!(e.description.contains("resource parameter is required"), "{}", e.description);
    assert!(e.back.is_some(), "the client and redirect checked out: the way back is offered");
    assert_eq!(
        w.parse(&w.authorize_url(&c, Some(&Pkce::new()), &[("resource", CALENDAR)])).unwrap().resource,
        [CALENDAR]
    );
    // One resource (with an alias): it is the default, as before.
    let one = World::new();
    let c1 = one.public_client();
    assert_eq!(one.parse(&one.authorize_url(&c1, Some(&Pkce::new()), &[])).unwrap().resource, [MCP]);
    // The setting names a registered resource.
    let vars = |v: &'static str| {
        Config::from_lookup(move |k| match k {
            "OAUTH_EXTRA_RESOURCES" => Some(CALENDAR.into()),
            "OAUTH_DEFAULT_RESOURCE" => Some(v.into()),
            _ => None,
        })
    };
    assert_eq!(vars("/mcp").unwrap().authorization_default_resource().unwrap().resource, "/mcp");
    assert_eq!(vars(CALENDAR).unwrap().authorization_default_resource().unwrap().resource, CALENDAR);
    assert!(vars("/other").unwrap_err().0.contains("default resource"));
}

/// WOP 1.2.3: a `resource` naming the URL a client uses at the resource, with
/// query parameters the resource does not constrain, maps to the resource (at
/// /authorize and /token); the token's audience and the answer's `resource`
/// are the resource itself. A fragment still makes it invalid.
#[test]
fn a_resource_with_extra_query_parameters_maps_to_the_resource() {
    let w = World::new();
    let c = w.public_client();
    let with_query = format!("{MCP}?mode=direct&x=1");
    let req = w.parse(&w.authorize_url(&c, Some(&Pkce::new()), &[("resource", &with_query)])).unwrap();
    assert_eq!(req.resource, [MCP]);
    let (code, pkce) = w.code_for(&c, "alice", &[("resource", &with_query)]);
    let res = w.token(
        &c,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &c.redirect),
            ("code_verifier", &pkce.verifier),
            ("resource", &format!("{MCP}?mode=direct")),
        ],
    );
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    let t = json_of(&res);
    assert_eq!(t["resource"], MCP);
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(w.bearer_at(Some(access), &format!("{MCP}?mode=direct")).unwrap().user_id, "alice");
    let refresh = t["refresh_token"].as_str().unwrap();
    let res = w.refresh(&c, refresh, &[("resource", &format!("{MCP}?session=7"))]);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    assert_eq!(json_of(&res)["resource"], MCP);
    // Only the query is ignored.
    for bad in [format!("{MCP}?mode=direct#f"), format!("{ORIGIN}/other?mode=direct")] {
        let e = w.parse(&w.authorize_url(&c, Some(&Pkce::new()), &[("resource", &bad)])).unwrap_err();
        assert_eq!(e.error, "invalid_target", "{bad}");
    }
    let refresh = json_of(&res)["refresh_token"].as_str().unwrap().to_owned();
    assert_error(&w.refresh(&c, &refresh, &[("resource", &format!("{ORIGIN}/other?x=1"))]), 400, "invalid_target");
}

/// The application's say on what each resource learns of the props: the
/// calendar gets the user's name, nothing else; any other resource nothing.
struct CalendarGetsTheUser;

impl crate::ResourceProps for CalendarGetsTheUser {
    fn props_for(&self, resource: &ProtectedResource, props: &Value) -> Value {
        if resource.resource == CALENDAR {
            json!({"user": props["user"]})
        } else {
            Value::Null
        }
    }
}

/// A binding to an authorization server that has the hook.
struct HookedBinding<'a>(&'a World, &'a dyn crate::ResourceProps);

#[async_trait(?Send)]
impl ValidationTransport for HookedBinding<'_> {
    async fn send(&self, req: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, String> {
        Ok(self.0.p().with_resource_props(self.1).handle(&req).await)
    }
}

#[test]
fn the_validation_endpoint_gives_each_resource_only_the_props_the_application_allows() {
    let mut config = two_resources();
    let other = "https://reports.example.net/api";
    config.resources.push(ProtectedResource::new(other).with_name("Reports"));
    let w = World::with_config(config);
    let c = w.public_client();
    let cal_token = token_for(&w, &c, CALENDAR);
    let other_token = token_for(&w, &c, other);
    let url = format!("https://auth.internal{}", w.config.endpoints.validate);
    let hook = CalendarGetsTheUser;
    let hooked = HookedBinding(&w, &hook);
    let validator = RemoteValidator::new(&hooked, url.clone(), Secret::new(SECRET)).unwrap();
    let ctx = block_on(validator.validate_token(CALENDAR, &cal_token)).unwrap();
    assert_eq!(ctx.props, json!({"user": "alice"}), "the upstream token stays with the authorization server");
    let ctx = block_on(validator.validate_token(other, &other_token)).unwrap();
    assert_eq!(ctx.props, Value::Null);
    // The raw answer: no props member carries the grant's secret.
    let req = crate::resource_server::validation_request(&url, SECRET, CALENDAR, &cal_token);
    let raw = block_on(w.p().with_resource_props(&hook).handle(&req));
    let raw = String::from_utf8(raw.into_body()).unwrap();
    assert!(!raw.contains("upstream-token"), "{raw}");
    // In the same worker the application's own resources still see the whole props.
    assert_eq!(w.bearer(&token_for(&w, &c, MCP)).unwrap().props["secret"], "upstream-token");
}
