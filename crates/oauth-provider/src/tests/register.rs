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
    // Registrations expire after the configured TTL (default 90 days).
    assert_eq!(*w.store.ttls_requested.borrow(), vec![90 * 24 * 3600]);
    w.advance(90 * 24 * 3600 - 1);
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
