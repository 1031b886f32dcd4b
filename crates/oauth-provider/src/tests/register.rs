//! Dynamic client registration (RFC 7591).

use super::*;
use crate::crypto::sha256_hex;
use crate::records::ClientInfo;
use crate::register::MAX_REGISTRATION_BYTES;

fn doc(extra: Value) -> Value {
    let mut d = json!({"client_name": "App", "redirect_uris": [REDIRECT]});
    for (k, v) in extra.as_object().unwrap() {
        d[k] = v.clone();
    }
    d
}

fn stored(w: &World, id: &str) -> (Value, ClientInfo) {
    let raw = w.store.raw(&format!("client:{id}")).expect("client record");
    (serde_json::from_str(&raw).unwrap(), serde_json::from_str(&raw).unwrap())
}

#[test]
fn public_client_gets_no_secret_and_echoed_metadata() {
    let w = World::new();
    let res = w.register(&doc(json!({"token_endpoint_auth_method": "none", "client_uri": "https://app.example.com", "contacts": ["a@example.com"]})));
    assert_eq!(res.status(), 201);
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    let body = json_of(&res);
    let id = body["client_id"].as_str().unwrap();
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert!(body.get("client_secret").is_none());
    assert!(body.get("client_secret_expires_at").is_none());
    assert!(body.get("registration_client_uri").is_none(), "0.9.1: no registration_client_uri");
    assert_eq!(body["client_id_issued_at"], NOW);
    assert_eq!(body["redirect_uris"], json!([REDIRECT]));
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["client_name"], "App");
    assert_eq!(body["client_uri"], "https://app.example.com");
    assert_eq!(body["contacts"], json!(["a@example.com"]));

    let (raw, client) = stored(&w, id);
    assert_eq!(raw["clientId"], id, "camelCase record");
    assert_eq!(raw["redirectUris"], json!([REDIRECT]));
    assert_eq!(raw["tokenEndpointAuthMethod"], "none");
    assert_eq!(raw["authMethodExplicit"], true);
    assert_eq!(raw["registrationDate"], NOW);
    assert!(raw.get("clientSecret").is_none());
    assert!(client.is_public());
    // Registrations no token was issued to expire after a day (tests/lifecycle.rs: the first token
    // promotes them to the configured TTL, default 90 days).
    assert_eq!(*w.store.ttls_requested.borrow(), vec![24 * 3600]);
    assert_eq!(raw["registrationExpiresAt"], NOW + 24 * 3600);
    w.advance(24 * 3600 - 1);
    assert!(w.store.raw(&format!("client:{id}")).is_some());
    w.advance(1);
    assert!(w.store.raw(&format!("client:{id}")).is_none());
}

#[test]
fn confidential_client_secret_is_stored_only_as_its_hash() {
    let w = World::with_config(Config { client_ttl: 7200, ..Config::default() });
    let res = w.register(&doc(json!({"token_endpoint_auth_method": "client_secret_post"})));
    assert_eq!(res.status(), 201);
    let body = json_of(&res);
    let secret = body["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32);
    assert_eq!(body["client_secret_issued_at"], NOW);
    assert_eq!(body["client_secret_expires_at"], NOW + 7200);
    let id = body["client_id"].as_str().unwrap();
    let raw = w.store.raw(&format!("client:{id}")).unwrap();
    assert!(!raw.contains(secret), "the secret itself is never stored");
    let (rec, _) = stored(&w, id);
    assert_eq!(rec["clientSecret"], sha256_hex(secret));
    assert_eq!(*w.store.ttls_requested.borrow(), vec![7200]);
}

#[test]
fn auth_method_defaults_to_basic_and_is_then_not_explicit() {
    let w = World::new();
    let body = json_of(&w.register(&doc(json!({}))));
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert!(body["client_secret"].is_string());
    let (raw, client) = stored(&w, body["client_id"].as_str().unwrap());
    assert!(raw.get("authMethodExplicit").is_none());
    assert!(!client.auth_method_explicit);
}

#[test]
fn redirect_uri_rules() {
    let w = World::new();
    for ok in [
        "https://app.example.com/cb",
        "https://app.example.com/cb?x=1",
        "http://127.0.0.1:8080/cb",
        "http://localhost/cb",
        "http://[::1]:9000/cb",
        "com.example.app:/oauth",
    ] {
        let res = w.register(&doc(json!({"redirect_uris": [ok]})));
        assert_eq!(res.status(), 201, "{ok}: {}", String::from_utf8_lossy(res.body()));
    }
    let long = format!("https://app.example.com/{}", "a".repeat(2100));
    for bad in [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>1</script>",
        "vbscript:x",
        "file:///etc/passwd",
        "blob:https://app.example.com/x",
        "mailto:a@example.com",
        "https://app.example.com/cb#frag",
        "https://app.example.com/cb#",
        "/relative/cb",
        "cb",
        "",
        "https://user:pw@app.example.com/cb",
        "https://app.example.com/c b",
        "https://app.example.com/c\nb",
        "https://app.example.com/c\u{202E}b",
        "com.example.app:/oauth\u{2066}",
    ] {
        let res = w.register(&doc(json!({"redirect_uris": ["https://ok.example.com/cb", bad]})));
        assert_error(&res, 400, "invalid_redirect_uri");
    }
    // Listable but never usable (WOP 1.2.1): kept beside a usable one, refused alone.
    for unusable in ["http://app.example.com/cb", "http://localhost.evil.example/cb", "ftp://app.example.com/cb"] {
        let res = w.register(&doc(json!({"redirect_uris": ["https://ok.example.com/cb", unusable]})));
        assert_eq!(res.status(), 201, "{unusable}");
        assert_eq!(json_of(&res)["redirect_uris"], json!(["https://ok.example.com/cb", unusable]));
        assert_error(&w.register(&doc(json!({"redirect_uris": [unusable]}))), 400, "invalid_redirect_uri");
    }
    // Too long (2 KiB per URI) is refused like a wrong type.
    assert_error(&w.register(&doc(json!({"redirect_uris": [long]}))), 400, "invalid_client_metadata");
    for missing in [json!({"redirect_uris": []}), json!({"redirect_uris": null})] {
        assert_error(&w.register(&doc(missing)), 400, "invalid_redirect_uri");
    }
    let mut d = doc(json!({}));
    d.as_object_mut().unwrap().remove("redirect_uris");
    assert_error(&w.register(&d), 400, "invalid_redirect_uri");
    // Wrong types and too many entries.
    for bad in [json!({"redirect_uris": "https://a.example/cb"}), json!({"redirect_uris": [1]})] {
        assert_error(&w.register(&doc(bad)), 400, "invalid_client_metadata");
    }
    let many: Vec<String> = (0..21).map(|i| format!("https://app.example.com/cb{i}")).collect();
    assert_error(&w.register(&doc(json!({"redirect_uris": many}))), 400, "invalid_client_metadata");
    // Nothing was stored for any refused registration.
    assert_eq!(w.keys("client:").len(), 6 + 3, "six usable, three with an unusable URI beside a usable one");
}

#[test]
fn displayed_metadata_with_bidirectional_or_format_controls_is_refused() {
    let w = World::new();
    let hidden = [
        '\u{202E}',
        '\u{202D}',
        '\u{200E}',
        '\u{200F}',
        '\u{2066}',
        '\u{2067}',
        '\u{2068}',
        '\u{2069}',
        '\u{061C}',
        '\u{200B}',
        '\u{FEFF}',
        '\u{E0041}',
        '\u{2028}',
        '\u{0007}',
        '\u{0085}',
    ];
    for c in hidden {
        for (field, value) in [
            ("client_name", json!(format!("Good App{c}exe.txt"))),
            ("client_uri", json!(format!("https://app.example.com/{c}"))),
            ("policy_uri", json!(format!("https://app.example.com/p{c}"))),
            ("tos_uri", json!(format!("https://app.example.com/t{c}"))),
            ("logo_uri", json!(format!("https://app.example.com/l{c}.png"))),
            ("contacts", json!([format!("admin{c}@app.example.com")])),
        ] {
            let res = w.register(&doc(json!({ field: value })));
            assert_error(&res, 400, "invalid_client_metadata");
            let why = json_of(&res)["error_description"].as_str().unwrap().to_owned();
            assert!(why.contains(field) && why.contains("formatting"), "U+{:04X} in {field}: {why}", c as u32);
        }
    }
    assert!(w.keys("client:").is_empty(), "nothing stored");
    // Other scripts, right-to-left included, and emoji are names like any other.
    for name in ["Claude — Code", "מחשבון", "حاسبة", "日本語クライアント", "Todo 😀"] {
        let res = w.register(&doc(json!({ "client_name": name })));
        assert_eq!(res.status(), 201, "{name}");
        assert_eq!(json_of(&res)["client_name"], name);
    }
}

#[test]
fn auth_methods_grant_and_response_types_must_be_implemented_and_consistent() {
    let w = World::new();
    for bad in [
        json!({"token_endpoint_auth_method": "private_key_jwt"}),
        json!({"token_endpoint_auth_method": "client_secret_jwt"}),
        json!({"token_endpoint_auth_method": "tls_client_auth"}),
        json!({"token_endpoint_auth_method": 7}),
        json!({"grant_types": ["client_credentials"]}),
        json!({"grant_types": ["authorization_code", "implicit"]}),
        json!({"grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"]}),
        json!({"grant_types": ["refresh_token"]}),
        json!({"grant_types": []}),
        json!({"grant_types": "authorization_code"}),
        json!({"response_types": ["token"]}),
        json!({"response_types": ["code", "token"]}),
        json!({"response_types": []}),
        json!({"client_name": 5}),
        json!({"client_name": "x".repeat(300)}),
        json!({"client_name": "bad\u{0007}name"}),
        json!({"logo_uri": "javascript:alert(1)"}),
        json!({"client_uri": "not a url"}),
        json!({"policy_uri": "ftp://x.example/p"}),
        json!({"tos_uri": 3}),
        json!({"contacts": "a@example.com"}),
    ] {
        let res = w.register(&doc(bad.clone()));
        assert_error(&res, 400, "invalid_client_metadata");
    }
    assert!(w.keys("client:").is_empty());
    // Only the authorization code grant is fine too.
    let res = w.register(&doc(json!({"grant_types": ["authorization_code"], "token_endpoint_auth_method": "none"})));
    assert_eq!(res.status(), 201);
    assert_eq!(json_of(&res)["grant_types"], json!(["authorization_code"]));
}

#[test]
fn malformed_oversized_and_wrong_method_bodies() {
    let w = World::new();
    for body in ["", "not json", "{\"redirect_uris\": [", "\u{feff}{}"] {
        assert_error(&w.post("/register", body, &[("content-type", "application/json")]), 400, "invalid_request");
    }
    for body in ["[]", "\"x\"", "42", "null"] {
        assert_error(
            &w.post("/register", body, &[("content-type", "application/json")]),
            400,
            "invalid_client_metadata",
        );
    }
    let mut big = doc(json!({}));
    big["padding"] = json!("x".repeat(MAX_REGISTRATION_BYTES));
    assert_error(&w.register(&big), 413, "invalid_request");
    // Just under the limit is read (and then fails or passes on its merits).
    let mut fits = doc(json!({}));
    fits["padding"] = json!("x".repeat(MAX_REGISTRATION_BYTES - 200));
    assert_eq!(w.register(&fits).status(), 201);
    let res = w.send(Request::get(format!("{ORIGIN}/register")).body(Vec::new()).unwrap());
    assert_error(&res, 405, "invalid_request");
}

#[test]
fn registered_client_is_found_by_lookup() {
    let w = World::new();
    let c = w.public_client();
    let found = block_on(w.p().lookup_client(&c.id)).unwrap().unwrap();
    assert_eq!(found.redirect_uris, vec![REDIRECT.to_string()]);
    assert!(block_on(w.p().lookup_client("nope")).unwrap().is_none());
    assert!(block_on(w.p().lookup_client("")).unwrap().is_none());
    // A corrupted record is no client, not a crash.
    block_on(crate::store::KvStore::put(&*w.store, "client:broken", "{not json", None)).unwrap();
    assert!(block_on(w.p().lookup_client("broken")).unwrap().is_none());
}

// ---- issue 22: registrations the way 2026 clients make them ----------------------------------

#[test]
fn application_type_is_stored_echoed_and_a_web_client_gets_codes_only_at_https() {
    let w = World::new();
    let web = w.client_with(
        "none",
        WEB_REDIRECT,
        json!({"application_type": "web", "redirect_uris": [WEB_REDIRECT, REDIRECT]}),
    );
    let (raw, client) = stored(&w, &web.id);
    assert_eq!(raw["applicationType"], "web");
    assert_eq!(client.application_type.as_deref(), Some("web"));
    let pkce = Pkce::new();
    assert!(w.parse(&w.authorize_url(&web, Some(&pkce), &[])).is_ok());
    let at_loopback = Client { redirect: REDIRECT.into(), ..web.clone() };
    let e = w.parse(&w.authorize_url(&at_loopback, Some(&pkce), &[])).unwrap_err();
    assert!(e.back.is_none() && e.description.contains("application_type web"), "{e:?}");
    // A web client with no https redirect could never sign in: refused at registration.
    let res = w.register(&doc(json!({"application_type": "web"})));
    assert_error(&res, 400, "invalid_redirect_uri");
    // native: loopback and private-use, as for clients that declare nothing.
    let res = w.register(&doc(json!({"application_type": "native", "redirect_uris": [REDIRECT, "cursor://x/cb"]})));
    assert_eq!(res.status(), 201);
    assert_eq!(json_of(&res)["application_type"], "native");
    let res = w.register(&doc(json!({})));
    assert!(json_of(&res).get("application_type").is_none(), "not declared, not invented");
    for bad in [json!("desktop"), json!(1)] {
        assert_error(&w.register(&doc(json!({"application_type": bad}))), 400, "invalid_client_metadata");
    }
}

fn register_from(w: &World, ip: &str, d: &Value) -> Response<Vec<u8>> {
    w.post("/register", &d.to_string(), &[("content-type", "application/json"), ("cf-connecting-ip", ip)])
}

#[test]
fn registrations_per_source_and_hour_are_bounded() {
    let w = World::with_config(Config { registration_limit: 2, ..Config::default() });
    let d = doc(json!({"token_endpoint_auth_method": "none"}));
    // Refused registrations do not count.
    assert_error(&register_from(&w, "203.0.113.5", &doc(json!({"redirect_uris": []}))), 400, "invalid_redirect_uri");
    for _ in 0..2 {
        assert_eq!(register_from(&w, "203.0.113.5", &d).status(), 201);
    }
    w.advance(600);
    let res = register_from(&w, "203.0.113.5", &d);
    assert_error(&res, 429, "temporarily_unavailable");
    let window_left = 3600 - (NOW + 600) % 3600;
    assert_eq!(header(&res, "retry-after"), Some(window_left.to_string().as_str()));
    assert!(json_of(&res)["error_description"].as_str().unwrap().contains("Too many client registrations"));
    // Another source is not affected; an IPv6 /64 is one source; no header, no limit.
    assert_eq!(register_from(&w, "198.51.100.7", &d).status(), 201);
    assert_eq!(register_from(&w, "2001:db8:1:2::1", &d).status(), 201);
    assert_eq!(register_from(&w, "2001:db8:1:2:ffff::9", &d).status(), 201);
    assert_error(&register_from(&w, "2001:db8:1:2:abcd::1", &d), 429, "temporarily_unavailable");
    for _ in 0..3 {
        assert_eq!(w.register(&d).status(), 201);
    }
    // The counters are in KV under their own prefix, hashed, gone with the hour.
    let counters = w.keys(crate::register::RATE_PREFIX);
    assert_eq!(counters.len(), 3);
    assert!(counters.iter().all(|k| !k.contains("203.0.113.5")));
    w.advance(window_left);
    assert_eq!(register_from(&w, "203.0.113.5", &d).status(), 201, "a new hour");
    // Off with 0; read from OAUTH_REGISTRATION_LIMIT.
    let open = World::with_config(Config { registration_limit: 0, ..Config::default() });
    for _ in 0..5 {
        assert_eq!(register_from(&open, "203.0.113.5", &d).status(), 201);
    }
    let vars = |v: &'static str| Config::from_lookup(move |k| (k == "OAUTH_REGISTRATION_LIMIT").then(|| v.to_owned()));
    assert_eq!(vars("5").unwrap().registration_limit, 5);
    assert!(vars("many").unwrap_err().0.contains("OAUTH_REGISTRATION_LIMIT"));
    assert_eq!(Config::default().registration_limit, 30);
}

#[test]
fn unused_registrations_expire_early_and_used_ones_live_the_full_ttl() {
    let w = World::new();
    let unused = w.public_client();
    let used = w.public_client();
    w.tokens(&used, "alice");
    w.advance(24 * 3600);
    let e = w.parse(&w.authorize_url(&unused, Some(&Pkce::new()), &[])).unwrap_err();
    assert!(e.description.contains("Invalid client_id"), "{}", e.description);
    assert!(w.parse(&w.authorize_url(&used, Some(&Pkce::new()), &[])).is_ok());
    // Admin-created clients never expire; OAUTH_UNUSED_CLIENT_TTL=0 gives the full TTL at once.
    let (admin, _) = block_on(w.p().register_client_admin(&doc(json!({})))).unwrap();
    assert!(admin.registration_expires_at.is_none() && !admin.awaiting_first_token);
    let full = World::with_config(Config { unused_client_ttl: 0, ..Config::default() });
    let c = full.public_client();
    assert_eq!(full.store.expires_at(&format!("client:{}", c.id)), Some(NOW + 90 * 24 * 3600));
    let vars = |v: &'static str| Config::from_lookup(move |k| (k == "OAUTH_UNUSED_CLIENT_TTL").then(|| v.to_owned()));
    assert_eq!(vars("7200").unwrap().unused_client_ttl, 7200);
    assert!(vars("60").unwrap_err().0.contains("OAUTH_UNUSED_CLIENT_TTL"));
}

/// RFC 6749 §5.2: a token or revocation request naming a client that was
/// deleted or whose registration ran out is `401 invalid_client`, so the
/// client registers again (instead of retrying `invalid_grant`).
#[test]
fn a_deleted_or_expired_client_gets_401_invalid_client_at_token_and_revocation() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    // Its stamp says it ended, though KV has not removed the record yet.
    let key = format!("client:{}", c.id);
    let mut rec: Value = serde_json::from_str(&w.store.raw(&key).unwrap()).unwrap();
    rec["registrationExpiresAt"] = json!(w.store.now());
    block_on(crate::KvStore::put(&*w.store, &key, &rec.to_string(), None)).unwrap();
    let res = w.refresh(&c, &refresh, &[]);
    assert_error(&res, 401, "invalid_client");
    assert_error(&w.form_as("/revoke", &c, &[("token", &refresh)]), 401, "invalid_client");
    // Deleted.
    w.store.remove(&key);
    assert_error(&w.refresh(&c, &refresh, &[]), 401, "invalid_client");
    assert_error(&w.form_as("/revoke", &c, &[("token", &refresh)]), 401, "invalid_client");
    assert_error(&w.form_as("/token", &c, &[("token", &refresh)]), 401, "invalid_client");
}
