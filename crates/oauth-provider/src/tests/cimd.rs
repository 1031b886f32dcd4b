//! Client ID Metadata Documents: URL rules, document validation, the cache
//! and its lifetimes, and the whole flow (authorize, code exchange, refresh)
//! with a `client_id` URL and a scripted fetcher.

use super::*;
use crate::cimd::fake::FakeFetcher;
use crate::cimd::{
    cache_lifetime, check_url, validate_document, CimdErrorKind, FetchBudget, FetchFailure, DEFAULT_CACHE_SECS,
    MAX_CACHE_SECS, MAX_DOCUMENT_BYTES,
};

const DOC_URL: &str = "https://client.example.com/oauth/client.json";
const CIMD_REDIRECT: &str = "http://127.0.0.1:33418/callback";
const OTHER_REDIRECT: &str = "https://client.example.com/oauth/other";

fn doc_json(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Metadata Client",
        "client_uri": "https://client.example.com",
        "redirect_uris": [CIMD_REDIRECT, OTHER_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

struct Cimd {
    w: World,
    f: FakeFetcher,
}

impl Cimd {
    fn new() -> Self {
        Self::with_config(Config::default())
    }
    fn with_config(config: Config) -> Self {
        let t = Self { w: World::with_config(config), f: FakeFetcher::default() };
        t.f.serve(DOC_URL, 200, Some("max-age=600"), &doc_json(DOC_URL).to_string());
        t
    }
    fn p(&self) -> Provider<'_> {
        self.w.p().with_metadata_fetcher(&self.f)
    }
    fn send(&self, req: Request<Vec<u8>>) -> Response<Vec<u8>> {
        block_on(self.p().handle(&req))
    }
    fn token(&self, pairs: &[(&str, &str)]) -> Response<Vec<u8>> {
        self.send(
            Request::post(format!("{ORIGIN}/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(pairs).into_bytes())
                .unwrap(),
        )
    }
    fn client(&self, redirect: &str) -> Client {
        Client { id: DOC_URL.into(), secret: None, method: "none".into(), redirect: redirect.into() }
    }
    fn parse(&self, url: &Url) -> Result<AuthRequest, AuthorizeError> {
        block_on(self.p().parse_auth_request(url))
    }
    /// Authorizes as `user` through `redirect`; the code and verifier.
    fn code(&self, user: &str, redirect: &str) -> (String, Pkce) {
        let pkce = Pkce::new();
        let req = self.parse(&self.w.authorize_url(&self.client(redirect), Some(&pkce), &[])).expect("authorize");
        let c = CompleteAuthorization {
            user_id: user.into(),
            metadata: json!({}),
            scope: req.scope.clone(),
            props: json!({"user": user}),
            request: req,
            revoke_existing_grants: true,
        };
        let to = block_on(self.p().complete_authorization(ORIGIN, c)).expect("complete");
        (query_of(&to).remove("code").expect("code"), pkce)
    }
    fn exchange(&self, code: &str, pkce: &Pkce, redirect: &str) -> Response<Vec<u8>> {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", &pkce.verifier),
            ("client_id", DOC_URL),
        ])
    }
    fn tokens(&self, user: &str, redirect: &str) -> Value {
        let (code, pkce) = self.code(user, redirect);
        let res = self.exchange(&code, &pkce, redirect);
        assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
        json_of(&res)
    }
}

fn shown_locally(r: Result<AuthRequest, AuthorizeError>) -> String {
    match r {
        Err(AuthorizeError { back: None, description, .. }) => description,
        other => panic!("expected an error shown locally, never redirected: {other:?}"),
    }
}

#[test]
fn metadata_urls_follow_the_strict_rules() {
    for ok in [
        DOC_URL,
        "https://client.example.com/c?v=1",
        "https://client.example.com:8443/a/b.json",
        "https://8.8.8.8/client",
        "https://[2606:4700::1111]/client",
    ] {
        assert!(check_url(ok, false).is_ok(), "{ok}: {:?}", check_url(ok, false));
    }
    for (bad, why) in [
        ("http://client.example.com/c", "https"),
        ("https://client.example.com", "path"),
        ("https://client.example.com/", "path"),
        ("https://user:pw@client.example.com/c", "user information"),
        ("https://user@client.example.com/c", "user information"),
        ("https://client.example.com/c#x", "fragment"),
        ("https://client.example.com/a/../c", "dot segments"),
        ("https://client.example.com/a/./c", "dot segments"),
        ("https://client.example.com/a/%2e%2E/c", "dot segments"),
        ("https://client.example.com/a/.%2e", "dot segments"),
        ("https://client.example.com/a b", "whitespace"),
        ("https://client.example.com/a\tb", "whitespace"),
        ("https://client.example.com/a\\b", "backslash"),
        ("https://client.example.com/a\u{202E}b", "control"),
        ("https://CLIENT.example.com/c", "canonical"),
        ("https://client.example.com:443/c", "canonical"),
        ("https://127.0.0.1/c", "loopback"),
        ("https://127.1.2.3:9000/c", "loopback"),
        ("https://[::1]/c", "loopback"),
        ("https://localhost/c", "loopback"),
        ("https://app.localhost/c", "loopback"),
        ("https://10.0.0.1/c", "private"),
        ("https://172.16.5.4/c", "private"),
        ("https://192.168.1.1/c", "private"),
        ("https://169.254.169.254/latest", "private"),
        ("https://100.64.0.1/c", "private"),
        ("https://0.0.0.0/c", "private"),
        ("https://224.0.0.1/c", "private"),
        ("https://[fd00::1]/c", "private"),
        ("https://[fe80::1]/c", "private"),
        ("https://[::ffff:127.0.0.1]/c", "private"),
        ("https://[::ffff:a00:1]/c", "private"),
        ("https://[64:ff9b::a00:1]/c", "private"),
        ("https://[2001:db8::1]/c", "private"),
        ("https://intranet/c", "fully qualified"),
        ("https://client.example.com./c", "fully qualified"),
        ("https://printer.local/c", "local"),
        ("https://db.internal/c", "local"),
        ("https://router.home.arpa/c", "local"),
    ] {
        let e = check_url(bad, false).expect_err(bad);
        assert_eq!(e.kind, CimdErrorKind::Url);
        assert!(e.detail.contains(why), "{bad}: {}", e.detail);
        assert!(e.to_string().starts_with("CIMD fetch failed for "), "{e}");
    }
    assert!(check_url(&format!("https://client.example.com/{}", "a".repeat(3000)), false).is_err());
    // 2130706433 is 127.0.0.1 to a URL parser.
    assert!(check_url("https://2130706433/c", false).is_err());
}

#[test]
fn the_development_setting_admits_loopback_only() {
    for ok in ["https://127.0.0.1:8443/client.json", "https://[::1]/c", "https://localhost:9/c"] {
        assert!(check_url(ok, true).is_ok(), "{ok}");
    }
    for bad in ["https://10.0.0.1/c", "https://192.168.0.2/c", "http://127.0.0.1/c", "https://printer.local/c"] {
        assert!(check_url(bad, true).is_err(), "{bad}");
    }
    let read = |v: &str| Config::from_lookup(|n| (n == "CIMD_ALLOW_LOOPBACK").then(|| v.to_owned()));
    assert!(read("true").unwrap().cimd_allow_loopback);
    assert!(!read("false").unwrap().cimd_allow_loopback);
    assert!(!Config::default().cimd_allow_loopback, "off unless set");
    let e = read("yes").unwrap_err();
    assert!(e.0.contains("CIMD_ALLOW_LOOPBACK") && !e.0.contains("yes"), "{e}");
}

#[test]
fn cache_lifetimes_honour_cache_control_within_bounds() {
    assert_eq!(cache_lifetime(None), DEFAULT_CACHE_SECS);
    assert_eq!(cache_lifetime(Some("public")), DEFAULT_CACHE_SECS);
    assert_eq!(cache_lifetime(Some("max-age=120")), 120);
    assert_eq!(cache_lifetime(Some("public, max-age=\"90\"")), 90);
    assert_eq!(cache_lifetime(Some("max-age=600, s-maxage=30")), 30, "a shared cache follows s-maxage");
    assert_eq!(cache_lifetime(Some("max-age=31536000")), MAX_CACHE_SECS);
    assert_eq!(cache_lifetime(Some("max-age=0")), 0);
    assert_eq!(cache_lifetime(Some("max-age=abc")), 0, "malformed means stale");
    for none in ["no-store", "max-age=600, no-cache", "private, max-age=600", "No-Store"] {
        assert_eq!(cache_lifetime(Some(none)), 0, "{none}");
    }
}

#[test]
fn documents_are_validated() {
    let ok = validate_document(DOC_URL, doc_json(DOC_URL).to_string().as_bytes(), true, true, &[]).unwrap();
    assert_eq!(ok.client_id, DOC_URL);
    assert_eq!(ok.display_name(), "Metadata Client");
    assert!(ok.is_public() && ok.auth_method_explicit && ok.client_secret.is_none());
    assert_eq!(ok.grant_types, vec!["authorization_code", "refresh_token"], "unsupported grant types dropped");
    // Without an auth method the client is public all the same.
    let mut d = doc_json(DOC_URL);
    d.as_object_mut().unwrap().remove("token_endpoint_auth_method");
    assert!(validate_document(DOC_URL, d.to_string().as_bytes(), true, true, &[]).unwrap().is_public());

    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = doc_json(DOC_URL);
        f(&mut d);
        validate_document(DOC_URL, d.to_string().as_bytes(), true, true, &[]).expect_err("refused").detail
    };
    let cases: Vec<(String, &str)> = vec![
        (with(&|d| d["client_id"] = json!("https://client.example.com/other.json")), "does not equal its URL"),
        (with(&|d| d["client_id"] = json!(format!("{DOC_URL}/"))), "does not equal its URL"),
        (with(&|d| d["client_id"] = json!(DOC_URL.to_uppercase())), "does not equal its URL"),
        (with(&|d| d.as_object_mut().unwrap().remove("client_id").map(|_| ()).unwrap()), "no client_id"),
        (with(&|d| d["client_secret"] = json!("s3cret")), "client secret"),
        (with(&|d| d["client_secret_expires_at"] = json!(0)), "client secret"),
        (with(&|d| d["token_endpoint_auth_method"] = json!("client_secret_basic")), "must be none or private_key_jwt"),
        (with(&|d| d["token_endpoint_auth_method"] = json!("private_key_jwt")), "needs the client's public keys"),
        (with(&|d| d["jwks"] = json!({"keys": [{"kty": "RSA", "n": "x", "e": "AQAB", "d": "y"}]})), "private key"),
        (with(&|d| d["client_name"] = json!("  ")), "client_name"),
        (with(&|d| d.as_object_mut().unwrap().remove("client_name").map(|_| ()).unwrap()), "client_name"),
        (with(&|d| d["client_name"] = json!("Evil\u{202E}gpj.exe")), "client_name"),
        (with(&|d| d["redirect_uris"] = json!([])), "redirect_uris"),
        (with(&|d| d["redirect_uris"] = json!(["javascript:alert(1)"])), "not allowed"),
        (with(&|d| d["redirect_uris"] = json!(["http://evil.example.com/cb"])), "loopback"),
        (with(&|d| d["grant_types"] = json!(["refresh_token"])), "authorization_code"),
    ];
    for (detail, want) in cases {
        assert!(detail.contains(want), "wanted {want:?} in {detail:?}");
    }
    for (body, want) in [
        (&b"\xff\xfe{}"[..], "UTF-8"),
        (b"<html>hi</html>", "JSON"),
        (b"[1,2]", "object"),
        (b"{\"client_id\": 1}", "no client_id"),
    ] {
        let e = validate_document(DOC_URL, body, true, true, &[]).unwrap_err();
        assert_eq!(e.kind, CimdErrorKind::Document);
        assert!(e.detail.contains(want), "{want}: {}", e.detail);
    }
}

#[test]
fn support_is_advertised_only_with_a_fetcher() {
    let t = Cimd::new();
    let get = |p: Provider<'_>| {
        let req = Request::get(format!("{ORIGIN}/.well-known/oauth-authorization-server")).body(Vec::new()).unwrap();
        json_of(&block_on(p.handle(&req)))
    };
    assert_eq!(get(t.p())["client_id_metadata_document_supported"], true);
    assert!(get(t.w.p()).get("client_id_metadata_document_supported").is_none());
    // Without a fetcher a URL client_id is just an unknown client, and nothing is fetched.
    let e = block_on(t.w.p().parse_auth_request(&t.w.authorize_url(&t.client(CIMD_REDIRECT), Some(&Pkce::new()), &[])));
    assert!(shown_locally(e).contains("Invalid client_id"));
    assert_eq!(t.f.calls_to(DOC_URL), 0);
}

#[test]
fn a_metadata_document_client_signs_in_exchanges_and_refreshes_without_a_secret() {
    let t = Cimd::new();
    let pkce = Pkce::new();
    let req = t.parse(&t.w.authorize_url(&t.client(CIMD_REDIRECT), Some(&pkce), &[])).unwrap();
    assert_eq!(req.client_id, DOC_URL);
    // What the consent page shows comes from the document.
    let client = block_on(t.p().lookup_client(DOC_URL)).unwrap().unwrap();
    assert_eq!(client.display_name(), "Metadata Client");
    assert_eq!(t.f.calls_to(DOC_URL), 1, "one fetch per request, the lookup reuses it");

    let tokens = t.tokens("alice", CIMD_REDIRECT);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(t.w.bearer(access).unwrap().client_id, DOC_URL);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let res = t.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", DOC_URL)]);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    assert_eq!(t.f.calls_to(DOC_URL), 1, "the cached document served every later request");

    // Loopback redirects may change port, as for registered clients.
    assert!(t.parse(&t.w.authorize_url(&t.client("http://127.0.0.1:50123/callback"), Some(&pkce), &[])).is_ok());
    assert_ttls_ok(&t.w);
}

#[test]
fn a_metadata_document_client_has_no_secret() {
    let t = Cimd::new();
    let (code, pkce) = t.code("alice", CIMD_REDIRECT);
    let with_secret = t.token(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CIMD_REDIRECT),
        ("code_verifier", &pkce.verifier),
        ("client_id", DOC_URL),
        ("client_secret", "anything"),
    ]);
    assert_error(&with_secret, 401, "invalid_client");
    let basic_auth = t.send(
        Request::post(format!("{ORIGIN}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", basic(DOC_URL, "anything"))
            .body(form(&[("grant_type", "authorization_code"), ("code", &code)]).into_bytes())
            .unwrap(),
    );
    assert_error(&basic_auth, 401, "invalid_client");
    // Neither attempt used the code.
    assert_eq!(t.exchange(&code, &pkce, CIMD_REDIRECT).status(), 200);
}

#[test]
fn unlisted_redirects_and_failed_fetches_are_shown_locally_never_redirected() {
    let t = Cimd::new();
    let pkce = Pkce::new();
    let unlisted = t.parse(&t.w.authorize_url(&t.client("https://evil.example.com/cb"), Some(&pkce), &[]));
    assert!(shown_locally(unlisted).contains("Invalid redirect URI"));

    let other = "https://other.example.com/client.json";
    let attempt = |t: &Cimd| {
        let c = Client { id: other.into(), ..t.client(CIMD_REDIRECT) };
        shown_locally(t.parse(&t.w.authorize_url(&c, Some(&pkce), &[])))
    };
    type Setup = Box<dyn Fn(&FakeFetcher)>;
    let cases: Vec<(Setup, &str)> = vec![
        (Box::new(|f| f.serve(other, 200, None, &doc_json(DOC_URL).to_string())), "does not equal its URL"),
        (Box::new(|f| f.serve(other, 404, None, "")), "did not answer 200 OK"),
        (Box::new(|f| f.serve(other, 302, None, "")), "redirects are not followed"),
        (Box::new(|f| f.serve(other, 200, None, "not json")), "not valid JSON"),
        (Box::new(|f| f.serve(other, 200, None, &" ".repeat(MAX_DOCUMENT_BYTES + 1))), "larger than"),
        (Box::new(|f| f.fail(other, FetchFailure::Timeout)), "within 5 s"),
        (
            Box::new(|f| f.fail(other, FetchFailure::Unreachable("connection refused".into()))),
            "no answer from its host",
        ),
    ];
    for (setup, want) in cases {
        setup(&t.f);
        let why = attempt(&t);
        assert!(why.starts_with(&format!("CIMD fetch failed for {other}: ")) && why.contains(want), "{want}: {why}");
    }
    let only_the_good_one = vec![format!("cimd:{}", crate::crypto::sha256_hex(DOC_URL))];
    assert_eq!(t.w.keys("cimd:"), only_the_good_one, "no failed document was cached");
    // The same failures at the token endpoint: a bad document is no client,
    // an unreachable one is worth a retry.
    let res = t.token(&[("grant_type", "refresh_token"), ("refresh_token", "a:b:c"), ("client_id", other)]);
    assert_error(&res, 503, "temporarily_unavailable");
    assert!(json_of(&res)["error_description"].as_str().unwrap().contains("CIMD fetch failed"));
    t.f.serve(other, 200, None, "{}");
    let res = t.token(&[("grant_type", "refresh_token"), ("refresh_token", "a:b:c"), ("client_id", other)]);
    assert_error(&res, 401, "invalid_client");
    assert!(json_of(&res)["error_description"].as_str().unwrap().contains("CIMD fetch failed"));
    // A URL breaking the rules is never fetched.
    let c = Client { id: "https://10.1.2.3/client.json".into(), ..t.client(CIMD_REDIRECT) };
    assert!(shown_locally(t.parse(&t.w.authorize_url(&c, Some(&pkce), &[]))).contains("private"));
    assert_eq!(t.f.calls_to("https://10.1.2.3/client.json"), 0);
}

#[test]
fn only_valid_documents_are_cached_for_their_lifetime_and_stale_ones_fetched_again() {
    let t = Cimd::new();
    let url = t.w.authorize_url(&t.client(CIMD_REDIRECT), Some(&Pkce::new()), &[]);
    t.parse(&url).unwrap();
    t.parse(&url).unwrap();
    assert_eq!(t.f.calls_to(DOC_URL), 1, "cached (max-age=600)");
    assert_eq!(t.w.keys("cimd:").len(), 1);
    t.w.advance(601);
    // Stale: fetched again, and a failure then is a failure (never served stale).
    t.f.fail(DOC_URL, FetchFailure::Timeout);
    assert!(shown_locally(t.parse(&url)).contains("CIMD fetch failed"));
    assert_eq!(t.f.calls_to(DOC_URL), 2);
    // A document that changed: the new one applies once fetched.
    let mut changed = doc_json(DOC_URL);
    changed["redirect_uris"] = json!([OTHER_REDIRECT]);
    t.f.serve(DOC_URL, 200, Some("no-store"), &changed.to_string());
    assert!(shown_locally(t.parse(&url)).contains("Invalid redirect URI"));
    // no-store: fetched on every request.
    let other = t.w.authorize_url(&t.client(OTHER_REDIRECT), Some(&Pkce::new()), &[]);
    t.parse(&other).unwrap();
    assert_eq!(t.f.calls_to(DOC_URL), 4);
    // An invalid document is not cached: fixing it works at once.
    t.w.advance(10_000);
    t.f.serve(DOC_URL, 200, Some("max-age=3600"), "{\"client_id\": \"wrong\"}");
    assert!(shown_locally(t.parse(&url)).contains("does not equal"));
    t.f.serve(DOC_URL, 200, Some("max-age=30"), &doc_json(DOC_URL).to_string());
    t.parse(&url).unwrap();
    // A short max-age is honoured although KV keeps the entry 60 s.
    t.w.advance(31);
    t.parse(&url).unwrap();
    assert_eq!(t.f.calls_to(DOC_URL), 7);
    assert_ttls_ok(&t.w);
}

#[test]
fn a_reauthorization_replaces_only_grants_from_the_same_redirect_uri() {
    let t = Cimd::new();
    let first = t.tokens("alice", CIMD_REDIRECT);
    let web = t.tokens("alice", OTHER_REDIRECT);
    let first_access = first["access_token"].as_str().unwrap();
    let web_access = web["access_token"].as_str().unwrap();
    assert!(t.w.bearer(first_access).is_ok(), "another redirect URI (another installation) keeps its grant");
    assert!(t.w.bearer(web_access).is_ok());
    let again = t.tokens("alice", CIMD_REDIRECT);
    assert!(t.w.bearer(first_access).is_err(), "the same redirect URI's grant was replaced");
    assert!(t.w.bearer(web_access).is_ok());
    assert!(t.w.bearer(again["access_token"].as_str().unwrap()).is_ok());
    // Registered clients still replace every older grant of theirs.
    let c = t.w.public_client();
    let old = t.w.tokens(&c, "alice");
    t.w.tokens(&c, "alice");
    assert!(t.w.bearer(old["access_token"].as_str().unwrap()).is_err());
}

#[test]
fn loopback_documents_need_the_development_setting() {
    let local = "https://127.0.0.1:8443/client.json";
    for allow in [false, true] {
        let t = Cimd::with_config(Config { cimd_allow_loopback: allow, ..Config::default() });
        t.f.serve(local, 200, None, &doc_json(local).to_string());
        let c = Client { id: local.into(), ..t.client(CIMD_REDIRECT) };
        let r = t.parse(&t.w.authorize_url(&c, Some(&Pkce::new()), &[]));
        if allow {
            assert!(r.is_ok(), "{r:?}");
        } else {
            assert!(shown_locally(r).contains("CIMD_ALLOW_LOOPBACK=true"));
            assert_eq!(t.f.calls_to(local), 0);
        }
    }
}

#[test]
fn a_document_may_list_unusable_redirect_uris_that_requests_cannot_use() {
    let t = Cimd::new();
    let mut d = doc_json(DOC_URL);
    d["redirect_uris"] = json!([CIMD_REDIRECT, "http://client.example.com/cb", "cursor://x/cb"]);
    t.f.serve(DOC_URL, 200, None, &d.to_string());
    let pkce = Pkce::new();
    assert!(t.parse(&t.w.authorize_url(&t.client(CIMD_REDIRECT), Some(&pkce), &[])).is_ok());
    let refused =
        shown_locally(t.parse(&t.w.authorize_url(&t.client("http://client.example.com/cb"), Some(&pkce), &[])));
    assert!(refused.contains("Invalid redirect URI"), "{refused}");
    assert!(t.parse(&t.w.authorize_url(&t.client("cursor://x/cb"), Some(&pkce), &[])).is_ok());
    // A document whose every redirect URI is unusable is refused as a whole.
    d["redirect_uris"] = json!(["http://client.example.com/cb"]);
    assert!(validate_document(DOC_URL, d.to_string().as_bytes(), true, true, &[]).is_err());
    d["redirect_uris"] = json!(["cursor://x/cb"]);
    assert!(validate_document(DOC_URL, d.to_string().as_bytes(), true, true, &[]).is_ok());
    assert!(validate_document(DOC_URL, d.to_string().as_bytes(), true, false, &[]).is_err());
}

#[test]
fn a_refused_document_at_the_authorization_endpoint_is_invalid_request() {
    // RFC 6749 §4.1.2.1 has no invalid_client at the authorization endpoint.
    let t = Cimd::new();
    let other = "https://other.example.com/client.json";
    let c = Client { id: other.into(), ..t.client(CIMD_REDIRECT) };
    for setup in [
        Box::new(|f: &FakeFetcher| f.serve(other, 404, None, "")) as Box<dyn Fn(&FakeFetcher)>,
        Box::new(|f: &FakeFetcher| f.serve(other, 200, None, "{}")),
    ] {
        setup(&t.f);
        let e = t.parse(&t.w.authorize_url(&c, Some(&Pkce::new()), &[])).unwrap_err();
        assert_eq!(e.error, "invalid_request", "{e:?}");
        assert_eq!(e.status, 400);
    }
    let bad_url = Client { id: "https://10.1.2.3/client.json".into(), ..t.client(CIMD_REDIRECT) };
    assert_eq!(t.parse(&t.w.authorize_url(&bad_url, Some(&Pkce::new()), &[])).unwrap_err().error, "invalid_request");
}

/// A Cimd world whose provider logs for the operator into `log`.
fn logged_parse(t: &Cimd, log: &std::cell::RefCell<Vec<String>>, url: &Url) -> Result<AuthRequest, AuthorizeError> {
    let sink = |line: &str| log.borrow_mut().push(line.to_owned());
    block_on(t.p().with_operator_log(&sink).parse_auth_request(url))
}

#[test]
fn a_failed_document_tells_the_person_the_kind_of_failure_and_the_operator_the_details() {
    let t = Cimd::new();
    let other = "https://other.example.com/client.json";
    let c = Client { id: other.into(), ..t.client(CIMD_REDIRECT) };
    let mut mismatch = doc_json(other);
    mismatch["client_id"] = json!("https://other.example.com/SECRET-ID");
    let mut bad_redirect = doc_json(other);
    bad_redirect["redirect_uris"] = json!(["https://SECRET-REDIRECT.example.com/cb", "javascript:SECRET"]);
    type Setup = Box<dyn Fn(&FakeFetcher)>;
    let cases: Vec<(Setup, &str, &str)> = vec![
        (
            Box::new(|f| {
                f.fail(other, FetchFailure::Unreachable("connect ECONNREFUSED 10.9.8.7:443 SECRET-HOST".into()))
            }),
            "could not be fetched: no answer from its host",
            "ECONNREFUSED 10.9.8.7:443 SECRET-HOST",
        ),
        (Box::new(|f| f.serve(other, 418, None, "SECRET-BODY")), "did not answer 200 OK", "HTTP 418"),
        (Box::new(|f| f.serve(other, 401, None, "")), "did not answer 200 OK", "HTTP 401"),
        (Box::new(|f| f.serve(other, 200, None, "SECRET-BODY not json")), "not valid JSON", "not valid JSON"),
        (
            Box::new(move |f| f.serve(other, 200, None, &mismatch.to_string())),
            "client_id does not equal its URL",
            "SECRET-ID",
        ),
        (Box::new(move |f| f.serve(other, 200, None, &bad_redirect.to_string())), "not allowed", "javascript:SECRET"),
    ];
    for (setup, shown, logged) in cases {
        setup(&t.f);
        let log = std::cell::RefCell::new(Vec::new());
        let e = logged_parse(&t, &log, &t.w.authorize_url(&c, Some(&Pkce::new()), &[])).unwrap_err();
        assert!(e.description.contains(shown), "{shown}: {}", e.description);
        for hidden in ["SECRET", "418", "401", "ECONNREFUSED", "10.9.8.7"] {
            assert!(!e.description.contains(hidden), "{hidden} shown: {}", e.description);
        }
        let log = log.into_inner();
        assert_eq!(log.len(), 1, "{log:?}");
        assert!(log[0].contains(other) && log[0].contains(logged), "{logged}: {log:?}");
        // The token endpoint says no more.
        let res = t.token(&[("grant_type", "refresh_token"), ("refresh_token", "a:b:c"), ("client_id", other)]);
        let d = json_of(&res)["error_description"].as_str().unwrap().to_owned();
        assert!(!d.contains("SECRET") && !d.contains("ECONNREFUSED") && !d.contains("418"), "{d}");
    }
}

#[test]
fn fetches_of_documents_not_in_the_cache_are_bounded_per_source_and_overall() {
    let t = Cimd::new();
    let budget = FetchBudget::new(5, 2);
    let url_of = |n: usize| format!("https://c{n}.example.com/client.json");
    for n in 0..10 {
        t.f.serve(&url_of(n), 200, Some("max-age=3600"), &doc_json(&url_of(n)).to_string());
    }
    let parse = |n: usize, source: &str| {
        let c = Client { id: url_of(n), ..t.client(CIMD_REDIRECT) };
        let url = t.w.authorize_url(&c, Some(&Pkce::new()), &[]);
        block_on(t.p().with_fetch_budget(&budget).with_source(source).parse_auth_request(&url))
    };
    assert!(parse(0, "198.51.100.1").is_ok());
    assert!(parse(1, "198.51.100.1").is_ok());
    // A third fetch for the same source: refused, nothing fetched.
    let e = parse(2, "198.51.100.1").unwrap_err();
    assert_eq!((e.status, e.error.as_str()), (429, "temporarily_unavailable"));
    assert!(e.description.contains("try again in a minute"), "{}", e.description);
    assert_eq!(t.f.calls_to(&url_of(2)), 0);
    // Cached documents cost nothing.
    assert!(parse(0, "198.51.100.1").is_ok());
    assert_eq!(t.f.calls_to(&url_of(0)), 1);
    // Other sources, up to the overall bound.
    assert!(parse(2, "198.51.100.2").is_ok());
    assert!(parse(3, "198.51.100.2").is_ok());
    assert!(parse(4, "198.51.100.3").is_ok());
    assert!(parse(5, "198.51.100.4").is_err(), "5 fetches this minute");
    assert_eq!(t.f.calls_to(&url_of(5)), 0);
    // The token endpoint: a retry later.
    let res = block_on(
        t.p().with_fetch_budget(&budget).handle(
            &Request::post(format!("{ORIGIN}/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    form(&[("grant_type", "refresh_token"), ("refresh_token", "a:b:c"), ("client_id", &url_of(7))])
                        .into_bytes(),
                )
                .unwrap(),
        ),
    );
    assert_error(&res, 503, "temporarily_unavailable");
    assert_eq!(t.f.calls_to(&url_of(7)), 0);
    // The next minute: a new budget. Failed fetches count too.
    t.w.advance(60);
    t.f.fail(&url_of(8), FetchFailure::Timeout);
    assert!(parse(8, "198.51.100.1").is_err());
    assert!(parse(8, "198.51.100.1").is_err());
    assert_eq!(parse(9, "198.51.100.1").unwrap_err().status, 429);
    assert_eq!(t.f.calls_to(&url_of(8)), 2);
    // Past MAX_SOURCES distinct sources, new ones share one count.
    let b = FetchBudget::new(u32::MAX, 1);
    for i in 0..FetchBudget::MAX_SOURCES {
        b.take(Some(&i.to_string()), NOW).unwrap();
    }
    assert!(b.take(Some("new-1"), NOW).is_ok());
    assert_eq!(b.take(Some("new-2"), NOW), Err("per source"));
    assert!(b.take(Some("0"), NOW + 60).is_ok(), "a new minute forgets them");
}
