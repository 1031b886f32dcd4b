//! Storage compatibility with `@cloudflare/workers-oauth-provider`: records
//! written the way its published schema describes (camelCase JSON, SHA-256 hex
//! of the whole token, AES-256-GCM with a zero IV over `JSON.stringify(props)`,
//! the props key wrapped with AES-KW under HMAC-SHA256(WRAPPING_KEY_HMAC_KEY,
//! token)) are served by our provider, and what our provider writes can be
//! read back the same way. The crypto here is done directly with the RustCrypto
//! crates, not through `oauth::seal`.

use super::*;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use aes_kw::KekAes256;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// `WRAPPING_KEY_HMAC_KEY` of workers-oauth-provider's `src/oauth-provider.ts` (v0.10.3).
const ORIGINAL_HMAC_KEY: [u8; 32] = [
    0x22, 0x7e, 0x26, 0x86, 0x8d, 0xf1, 0xe1, 0x6d, 0x80, 0x70, 0xea, 0x17, 0x97, 0x5b, 0x47, 0xa6, 0x82, 0x18, 0xfa,
    0x87, 0x28, 0xae, 0xde, 0x85, 0xb5, 0x1d, 0x4a, 0xd9, 0x96, 0xca, 0xca, 0x43,
];

const USER: &str = "pingone-sub-1";
const GRANT: &str = "GrantId000000001";
const CLIENT_ID: &str = "LegacyClient0001";
const CONF_ID: &str = "LegacyConfident1";
const CONF_SECRET: &str = "s3cr3tS3cr3tS3cr3tS3cr3tS3cr3t12";
const PROPS: &str =
    r#"{"userId":"pingone-sub-1","accessToken":"pingone-at","claims":{"sub":"pingone-sub-1","name":"Alice"}}"#;

/// `generateTokenId` / `hashSecret`: lowercase hex SHA-256.
fn original_hash(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn kek(token: &str) -> KekAes256 {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&ORIGINAL_HMAC_KEY).unwrap();
    mac.update(token.as_bytes());
    let k: [u8; 32] = mac.finalize().into_bytes().into();
    KekAes256::from(k)
}

/// `wrapKeyWithToken`: AES-KW of the raw key, base64.
fn original_wrap(token: &str, key: &[u8; 32]) -> String {
    STANDARD.encode(kek(token).wrap_vec(key).unwrap())
}

fn original_unwrap(token: &str, wrapped: &str) -> [u8; 32] {
    kek(token).unwrap_vec(&STANDARD.decode(wrapped).unwrap()).unwrap().try_into().unwrap()
}

/// `encryptProps`: AES-256-GCM, 12 zero bytes of IV, base64(ciphertext || tag).
fn original_encrypt(key: &[u8; 32], json: &str) -> String {
    STANDARD.encode(Aes256Gcm::new(key.into()).encrypt(&Nonce::from([0u8; 12]), json.as_bytes()).unwrap())
}

fn original_decrypt(key: &[u8; 32], data: &str) -> Value {
    let plain =
        Aes256Gcm::new(key.into()).decrypt(&Nonce::from([0u8; 12]), STANDARD.decode(data).unwrap().as_ref()).unwrap();
    serde_json::from_slice(&plain).unwrap()
}

fn token(secret: &str) -> String {
    format!("{USER}:{GRANT}:{secret}")
}

fn put(w: &World, key: &str, value: &Value, ttl: Option<u64>) {
    block_on(crate::store::KvStore::put(&*w.store, key, &value.to_string(), ttl)).unwrap();
}

/// A deployment of the original: two DCR clients, one exchanged grant with a
/// refresh token, one access token (with `scope`, as v0.9+ writes it).
struct Legacy {
    w: World,
    access: String,
    refresh: String,
}

fn legacy(token_scope: Option<Value>, audience: Option<Value>) -> Legacy {
    let w = World::new();
    let props_key: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
    let encrypted = original_encrypt(&props_key, PROPS);
    let access = token("AccessSecretAccessSecretAccess01");
    let refresh = token("RefreshSecretRefreshSecretRefre1");
    let code = token("CodeSecretCodeSecretCodeSecretC1");
    let created = NOW - 1000;

    put(
        &w,
        &format!("client:{CLIENT_ID}"),
        &json!({
            "clientId": CLIENT_ID,
            "redirectUris": [REDIRECT],
            "clientName": "Claude",
            "grantTypes": ["authorization_code", "refresh_token"],
            "responseTypes": ["code"],
            "registrationDate": created - 86400,
            "tokenEndpointAuthMethod": "none",
            "authMethodExplicit": true
        }),
        Some(90 * 86400),
    );
    // An older registration: no explicit marker, a jwksUri and i18n we do not use.
    put(
        &w,
        &format!("client:{CONF_ID}"),
        &json!({
            "clientId": CONF_ID,
            "clientSecret": original_hash(CONF_SECRET),
            "redirectUris": [WEB_REDIRECT],
            "clientName": "Web app",
            "jwksUri": "https://app.example.com/jwks",
            "i18n": {"clientName": {"de": "Web-App"}},
            "grantTypes": ["authorization_code", "refresh_token"],
            "responseTypes": ["code"],
            "registrationDate": created - 86400,
            "tokenEndpointAuthMethod": "client_secret_basic"
        }),
        None,
    );
    put(
        &w,
        &format!("grant:{USER}:{GRANT}"),
        &json!({
            "id": GRANT,
            "clientId": CLIENT_ID,
            "userId": USER,
            "scope": ["todo_api:read", "todo_api:write"],
            "metadata": {"label": "Alice"},
            "encryptedProps": encrypted,
            "createdAt": created,
            "authCodeId": original_hash(&code),
            "refreshTokenId": original_hash(&refresh),
            "refreshTokenWrappedKey": original_wrap(&refresh, &props_key),
            "expiresAt": created + 30 * 86400
        }),
        Some(30 * 86400 - 1000),
    );
    let mut rec = json!({
        "id": original_hash(&access),
        "grantId": GRANT,
        "userId": USER,
        "createdAt": created,
        "expiresAt": created + 3600,
        "wrappedEncryptionKey": original_wrap(&access, &props_key),
        "grant": {"clientId": CLIENT_ID, "scope": ["todo_api:read", "todo_api:write"], "encryptedProps": encrypted}
    });
    if let Some(s) = token_scope {
        rec["scope"] = s;
    }
    if let Some(a) = audience {
        rec["audience"] = a;
    }
    put(&w, &format!("token:{USER}:{GRANT}:{}", original_hash(&access)), &rec, Some(2600));
    Legacy { w, access, refresh }
}

fn public_legacy_client() -> Client {
    Client { id: CLIENT_ID.into(), secret: None, method: "none".into(), redirect: REDIRECT.into() }
}

#[test]
fn an_access_token_of_the_original_is_authenticated_and_its_props_decrypted() {
    let l = legacy(Some(json!(["todo_api:read"])), None);
    let ctx = l.w.bearer(&l.access).unwrap();
    assert_eq!(ctx.props, serde_json::from_str::<Value>(PROPS).unwrap());
    assert_eq!((ctx.user_id.as_str(), ctx.grant_id.as_str(), ctx.client_id.as_str()), (USER, GRANT, CLIENT_ID));
    assert_eq!(ctx.scopes, vec!["todo_api:read"]);
    assert_eq!(ctx.expires_at, NOW - 1000 + 3600);
    // Without an audience it is good on the protected routes.
    assert!(l.w.bearer_at(Some(&l.access), "https://mcp.example.com/sse").is_ok());
    assert!(l.w.bearer_at(Some(&l.access), "https://mcp.example.com/mcp-other").is_err());
    // A different secret under the same ids is not it.
    assert!(l.w.bearer(&token("AccessSecretAccessSecretAccess02")).is_err());
}

#[test]
fn audiences_written_as_string_or_array_are_honoured() {
    let l = legacy(Some(json!(["todo_api:read"])), Some(json!(MCP)));
    assert_eq!(l.w.bearer(&l.access).unwrap().audience, vec![MCP.to_string()]);
    let l = legacy(Some(json!(["todo_api:read"])), Some(json!(["https://mcp.example.com/sse"])));
    assert!(l.w.bearer_at(Some(&l.access), "https://mcp.example.com/sse").is_ok());
    assert!(l.w.bearer(&l.access).is_err());
}

#[test]
fn older_token_records_without_scope_use_the_grants_scope() {
    // Before 0.9 the token record had no top-level `scope`; the original falls back to the grant's.
    let l = legacy(None, None);
    assert_eq!(l.w.bearer(&l.access).unwrap().scopes, vec!["todo_api:read", "todo_api:write"]);
    // An explicitly empty token scope stays empty.
    let l = legacy(Some(json!([])), None);
    assert!(l.w.bearer(&l.access).unwrap().scopes.is_empty());
}

#[test]
fn a_refresh_token_of_the_original_is_refreshed_with_rotation() {
    let l = legacy(Some(json!(["todo_api:read", "todo_api:write"])), None);
    let c = public_legacy_client();
    let res = l.w.refresh(&c, &l.refresh, &[]);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    let t = json_of(&res);
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();
    assert!(access.starts_with(&format!("{USER}:{GRANT}:")));
    assert_eq!(t["scope"], "todo_api:read todo_api:write");
    assert!(t.get("resource").is_none(), "an unbound grant stays unbound");
    assert_eq!(l.w.bearer(access).unwrap().props, serde_json::from_str::<Value>(PROPS).unwrap());
    // The grant record is still in the original's shape, and a binding was not persisted.
    let g = l.w.grant_of(&l.refresh).unwrap();
    assert_eq!(g["previousRefreshTokenId"], original_hash(&l.refresh));
    assert_eq!(g["refreshTokenId"], original_hash(refresh));
    assert_eq!(g["expiresAt"], NOW - 1000 + 30 * 86400);
    assert!(g.get("resource").is_none());
    // The original can read what we wrote: unwrap with the new refresh token, decrypt the props.
    let key = original_unwrap(refresh, g["refreshTokenWrappedKey"].as_str().unwrap());
    assert_eq!(
        original_decrypt(&key, g["encryptedProps"].as_str().unwrap()),
        serde_json::from_str::<Value>(PROPS).unwrap()
    );
    // The original's rotation rule holds: the old token once more, then not after the new one is used.
    assert_eq!(l.w.refresh(&c, refresh, &[]).status(), 200);
    assert_error(&l.w.refresh(&c, &l.refresh, &[]), 400, "invalid_grant");
    // An original access token can be revoked by its client.
    let res = l.w.form_as("/revoke", &c, &[("token", &l.access)]);
    assert_eq!(res.status(), 200);
    assert!(l.w.bearer(&l.access).is_err());
}

#[test]
fn a_pending_code_of_the_original_is_exchanged() {
    let w = legacy(None, None).w;
    let key: [u8; 32] = *b"fedcba9876543210fedcba9876543210";
    let code = format!("{USER}:PendingGrant0001:CodeSecretCodeSecretCodeSecretC2");
    let verifier = "v".repeat(50);
    let challenge = b64url(Sha256::digest(verifier.as_bytes()));
    let grant = json!({
        "id": "PendingGrant0001",
        "clientId": CLIENT_ID,
        "userId": USER,
        "scope": ["todo_api:read"],
        "metadata": {"label": "Alice"},
        "encryptedProps": original_encrypt(&key, PROPS),
        "createdAt": NOW - 30,
        "authCodeId": original_hash(&code),
        "authCodeWrappedKey": original_wrap(&code, &key),
        "codeChallenge": challenge,
        "codeChallengeMethod": "S256",
        "resource": MCP,
        "redirectUri": REDIRECT
    });
    put(&w, &format!("grant:{USER}:PendingGrant0001"), &grant, Some(600));
    let c = public_legacy_client();
    let pkce = Pkce { verifier, challenge: String::new() };
    let res = w.exchange(&c, &code, &pkce);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    let t = json_of(&res);
    assert_eq!(t["resource"], MCP);
    let ctx = w.bearer(t["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(ctx.props["accessToken"], "pingone-at");
    assert_eq!(ctx.scopes, vec!["todo_api:read"]);
    // And the replay rule applies to it.
    assert_error(&w.exchange(&c, &code, &pkce), 400, "invalid_grant");
    assert!(w.bearer(t["access_token"].as_str().unwrap()).is_err());
}

#[test]
fn a_pending_code_without_a_stored_redirect_checks_the_registered_list() {
    // Grants written before `redirectUri` was stored: the redirect must at least be registered.
    let w = legacy(None, None).w;
    let key: [u8; 32] = [7; 32];
    let code = format!("{USER}:OldPendingGrant1:CodeSecretCodeSecretCodeSecretC3");
    put(
        &w,
        &format!("grant:{USER}:OldPendingGrant1"),
        &json!({
            "id": "OldPendingGrant1",
            "clientId": CONF_ID,
            "userId": USER,
            "scope": [],
            "metadata": null,
            "encryptedProps": original_encrypt(&key, "{}"),
            "createdAt": NOW - 30,
            "authCodeId": original_hash(&code),
            "authCodeWrappedKey": original_wrap(&code, &key)
        }),
        Some(600),
    );
    let c = Client {
        id: CONF_ID.into(),
        secret: Some(CONF_SECRET.into()),
        method: "client_secret_basic".into(),
        redirect: WEB_REDIRECT.into(),
    };
    let res = w.token(
        &c,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://evil.example.com/cb")],
    );
    assert_error(&res, 400, "invalid_grant");
    let res = w.token(&c, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", WEB_REDIRECT)]);
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
}

#[test]
fn original_client_secrets_authenticate_basic_or_post_without_the_marker() {
    let w = legacy(None, None).w;
    let mut c = Client {
        id: CONF_ID.into(),
        secret: Some(CONF_SECRET.into()),
        method: "client_secret_basic".into(),
        redirect: WEB_REDIRECT.into(),
    };
    for method in ["client_secret_basic", "client_secret_post"] {
        c.method = method.into();
        let res = w.form_as("/revoke", &c, &[("token", "x:y:z")]);
        assert_eq!(res.status(), 200, "{method}");
    }
    c.secret = Some("wrong".into());
    assert_error(&w.form_as("/revoke", &c, &[("token", "x:y:z")]), 401, "invalid_client");
}

#[test]
fn what_we_write_is_what_the_original_reads() {
    let w = World::new();
    let c = w.public_client();
    let t = w.tokens(&c, "alice");
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();
    let (u, g) = {
        let mut p = access.split(':');
        (p.next().unwrap().to_owned(), p.next().unwrap().to_owned())
    };
    let rec: Value =
        serde_json::from_str(&w.store.raw(&format!("token:{u}:{g}:{}", original_hash(access))).unwrap()).unwrap();
    assert_eq!(rec["id"], original_hash(access));
    let key = original_unwrap(access, rec["wrappedEncryptionKey"].as_str().unwrap());
    assert_eq!(original_decrypt(&key, rec["grant"]["encryptedProps"].as_str().unwrap())["secret"], "upstream-token");
    let grant: Value = serde_json::from_str(&w.store.raw(&format!("grant:{u}:{g}")).unwrap()).unwrap();
    assert_eq!(grant["refreshTokenId"], original_hash(refresh));
    let key2 = original_unwrap(refresh, grant["refreshTokenWrappedKey"].as_str().unwrap());
    assert_eq!(key, key2, "one props key per grant");
    assert_eq!(original_decrypt(&key2, grant["encryptedProps"].as_str().unwrap())["user"], "alice");
    let client: Value = serde_json::from_str(&w.store.raw(&format!("client:{}", c.id)).unwrap()).unwrap();
    for field in
        ["clientId", "redirectUris", "grantTypes", "responseTypes", "registrationDate", "tokenEndpointAuthMethod"]
    {
        assert!(client.get(field).is_some(), "{field}");
    }
}
