//! `private_key_jwt` client authentication for metadata-document clients
//! (RFC 7523): the ChatGPT-shaped document (`none` and `private_key_jwt`
//! offered, keys at a `jwks_uri`), a document offering only
//! `private_key_jwt` with inline keys, every check of an assertion, replay
//! markers, the key fetch with its guards and cache, the setting and the
//! metadata.

use super::*;
use crate::cimd::fake::FakeFetcher;
use crate::cimd::{validate_document, FetchFailure};
use crate::client_assertion::{jti_key, ASSERTION_TYPE, JWKS_CACHE_SECS, JWKS_REFETCH_AFTER_SECS, MAX_JWKS_BYTES};
use crate::error::Reason;
use p256::ecdsa::signature::Signer;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use sha2::Digest;

const CHATGPT: &str = "https://chatgpt.example.com/oauth/client.json";
const JWKS_URI: &str = "https://chatgpt.example.com/oauth/jwks.json";
const ONLY_JWT: &str = "https://agent.example.com/client.json";
const REDIRECT_CB: &str = "https://chatgpt.example.com/connector/oauth/callback";
const TOKEN_URL: &str = "https://mcp.example.com/token";

/// A fixed 2048-bit test key (generating one in a debug build takes seconds).
const RSA_PEM: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC0UoG6fWph3rhj
8ob1NKMvZj+XN4fqchqKj4yhV6sXjhk9W1CyXB2jyHQ8hcWrn8MsYeoorF6pA5eC
pqufugYMd4J8uYW/22R7QaLmqOChEaou13WzRiTKChz3TP/d0Ztlut86TBUu3Gdj
UAlUd9E00LzAwZI4MXLeCc4k3drIhB7peJ/UiLZ58a8livuZ5ZkiB/qkLnvtZPfO
YPPU+94Ibn5jEMGpJvmt1UaNZmhZNFM3cvNWIdR9YqiXM2TNpQwdBrz7PBrIUUKd
rPJz1mk+r3npGjGJsC9HEELDKd2uAKxkxD6ibosmIpHvrqyy6Pze74Cx9AoKuea4
i8BHNjyhAgMBAAECggEAAoxHaGk7rXbE5tGknKFMpypD/q5NJvqLhjbIIzf+nd0M
ctXgBn3Uzo2HWfBpy4E83rsioJuV6gANXiOI2YoP/5FZPaCuo4Lqu69LiVmXH04v
+CHj2Coxsc1R3TXgSC69P23ewrS+7bbK0F1knQX6kGsyKEGb9VwP2NQX4/oNYeeu
R4AQhvFmBlGSTkxoboHJF2OOv1mbBjGpH4aSbc1PkFfzDEhGVJE4dVVfFH81HM2b
ruqSCVg2DD4HHSQyDAqTDp78+qJy7mTKEkr6Bctq4rjPhR9yIqxkMOXE9s0Ef3xS
39riI5eAWToN2Dt1YV9qZ+60LrrNqQMYOLz9dnlwYQKBgQDe8uezUBGMb2s+JWZY
hl594HuSy+xZBfVC3JcM48BJpY6qpySwWeKXWThk4PIvFXrdg/HP2zVCvL4Xf+Kr
zHgbrv2hF5aPrWEcDA4p6jbOQ1LtAZ+Z15VUrVDB37b/3sb4sRaLcIDciIz5m3d3
8a5g3x99Wv/X7unpldpTERP0EQKBgQDPDeNmlszwu9yCG2T/J/iDmb1MfZ0Em6mI
0q5CNEMXnt7vgqegs6kMmyFkVJ1Wdg6hutotuHrdZXDmU+XnsWYi3JQEpTl1Q3IL
J6u2TD7+2AOv28A7Qsg5AejqmREhJWYiF6hPmdVHfAL6g7/jg9V0+1j4tA/zi3Xl
J20fodwPkQKBgEuZlKYCPaEgWv480mKsVbhbeavCiId7dLpScMoHJLoUcLc/bDp8
kFCACZZzjMwYfYxF5KZ2D65ssAzp6aQV9ph0kz6f8AcSZL6M+/SMnj79J06E4Wja
aKHJD3xebwB+u3uzGRD5ekjN6PfvFujORDJHFrd8Nwsy0ZDKprjKLrjxAoGATe9Q
VOEWKtbLXT2qelA1PnOzyQLPA1kEKzgB13GMf2uRRl3LcrWtP810eCtRPaYaQ83t
KaByvrrcEBYsR1WCuESGgmkeg4DrgD9iZq+0VoBAgwUYCjZM3whU/1i2Fd/Z3aNB
+xRQLyQCiwDkTWLmCa5CAvrjtiwcKDD65hkql8ECgYEAgeDXSRyBrblnyPtE9iZv
/3bfQ4SnZKJmlbrzB63Nk+fkYPdanCtCEq+43NC3A36otUbA+2htddtbMQPFP8nD
Rmlt4tzNRROgLuCn5JbHmPXx9nYCxoMlUiQdr0NM+Lweo2p+6Nl8eSPuEZEjl1S3
tpCBFtndyfc2uHigyOASpz4=
-----END PRIVATE KEY-----";
/// Another 2048-bit key: a key the client does not publish.
const OTHER_RSA_PEM: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDA+ZUwWa3z+sSN
f2GOXSfd5GUxzDotPfPZ4NbMGPIMsmMZOK7JZE6IruI9Bo4ywDrI7RpYLML09Cxq
K5p6kr7Xd1RRHEsf4TAYU7aSTQxObUhE0COgGAbUocOjfUSEEWX/llE4RgVHTjYP
6dySWqSjKY0ATSvzBc6qtpKqIonv9PzCFTnOsXb1Wfo0xawiD7LACWiH8vVmnjgu
6R20iHAzK30e5c+tMbo/Ojon9xij9cFQ03U1ySDDwFS62QdH9tj24Bthh3cp8ZAm
gFuROFDgWRJeKxbKnZx0VWrg0YV/5joFg8o1btGre01hKe2EOJjPLA+RwFD7VF/k
kwLULBZ3AgMBAAECggEAYBWFbpsgjZw9dLTJpuCEYqv/pPFqwC8aNVCJsvryvlau
GBdMlDMxFUZ6mGcks2lae8Pu+5tiASR43u5SDxj1FASzA2Xik/+EeoBoJeVeLMim
FLlMG8EK2aGn70YGsPmWv1GhpDLdGvl62qaXcHnYgvND5TQHn4wzMHYShcsHwmVq
bHueiqOshILVHVzzRJ0q1mdw5ZnsKzyJpqWO+3ShJyJyo9kzVmwMjalplHuxp+tr
dhyZEX7WE98Ba+pu9lNolN7ZRPKq8rSkVLa0Niw07xKEzhwDjmnPt6cJzuSzYmqk
gslRhprZ2AIhlAlGPojStcWzLQ28xOIicYjjk1jMhQKBgQD+/9PGUkPKot0vgTaD
qrluuR8Hrcs3t2qLkYJOUcA1vd+yhVyXA5KgwYm8Q/YtW8DGn0VRo6/sYIpVsAOA
cCXuZLNVxfpVaU9LLNB+9Oh4hxnj6T6pxftJLY9X/LtwfUZyJPcyryA9/vIqIdE1
HKxncu7wdUgRE5YUhED8C7JTwwKBgQDBu3IaUdLO2/KuKr0fOFk5R09+FD0K3C87
Gfs+ayjwX8Og2GqYobfl/FefozNDsULbu3mZTndFjhqSNe7HA7sBY/OeYR/zh5hD
Ox2Qv6iz5NAcQUGwnNztglIQQWmWgXwC4Jv/VChYAS91cKmbGa4E8a6rTXark1J1
uiUmtQxLPQKBgDnPsimCORBVwCOm/b74E7ZAjgJlqm7lTGh8ArjS2+rTM0X76jPq
gXGkrx9ZoRRDev8M2OBbZeUHNhWbJBAYXOEhP28wxUJb77gxXsuJprK8nmgHV0eS
NRgwFhFyoOQt4qy6KLj67ypfBHP82rtZ1tRVQEqPrFkCwcHBAiKiXDmVAoGBAIqk
j7rgNcJOS7Vy5peSJuBD9VKgPzMncjGUnWYFIG4tyn2wg1Cp40aWuUqIa+aU0+kW
mKYrLlY7pS5fpHsOY2VSV4VPsqMAtenfQ4BUePIM3RZraQxwpfbfXcU+WscX8VzJ
yzoFyz1307PzJZ3W2d+16i+zpyqQquGPjojN5ndtAoGBAMbgVRVXozBKxkDzpbGT
a/XThab3UDXDPNT9sD5vmA2X1RGT2T9HJsaLOKP/XbIGpSM2SyCAl6svsriKwAJ/
RV+ojidoYFUCSLFzURs+Ul79Ny6Jl9dR84hYWSQ3iL87UvJ2HmL92Rd4fMPnjMby
0OjIGOmB7inv0+M//8U5fKsL
-----END PRIVATE KEY-----";
/// A 1024-bit key: too weak, refused whatever it signs.
const WEAK_RSA_PEM: &str = r"-----BEGIN PRIVATE KEY-----
MIICdQIBADANBgkqhkiG9w0BAQEFAASCAl8wggJbAgEAAoGBALl91GJ1f4OxeqHl
+j5cgtc3+ZJDFPyb6UI4sQCTEmRY6FneXcTwU5L8myUdy78iVSHRCcQkc2/NDslT
t7pWPYFTfgovmBUihj2oH/oQB5BiF97cqCWS0nd8bktdGvns810a30UVJ/a2QEJz
v9+dX/cEovSDNydBD4ubH1KsEuo7AgMBAAECgYBgiutFq54IrxECvq32UzQOTCXr
SFrd90/6lYMap3GFJPkZ/TCU1fjJogwlz1JCUt44UZJhsg8a+4Fcq+QOaeBsUmE7
bHIbMpWJATtPi7Hm82QRo3SSWR3y3x4IJtHiQLUxchX31/89uiFvhR9SdatHVhRZ
ttKiCKlsfd9IYNCxMQJBAN7nPUvMofpwe8x003Du1SFrZ8/EIzKAjbbuwQaSfisN
tPJLlCVd6E54ni/1/N3vurnvhP+fzV791xQ5sS6CXV0CQQDVCIjZyVIwWaMBmNzO
9+3fXpleDLBFv+S4U9IrtWattmNukvx39Eg+oMSIXTrGik0AxxnAaQIMX0UBiFM9
w1R3AkA/OX3UazWikJc81gJHbSb89LccYnjNUVNhCPWtRI4O7jNd6nwZ4ToMUAAm
gHJ6DQ58wOiLjSs2f2+rJ/YOyCFtAkAtK4oY458RsW/mvsrS967wVdafIoGdyHpu
uxctPWFwI+QhZfkyVhGbdes2Hs5/moOJTq4fJiTRCsJO+ODtj6UxAkA7DPRwj2+w
X7lPNTh3Togf3nLqxdoZ7dlovUJjMqlpvTTPncSZ0lUB+sac7VC4ehi7vfuDvIo8
3vLtxT0W0K18
-----END PRIVATE KEY-----";

/// A client's signing key and the public JWK it publishes.
pub(super) enum Key {
    Rsa(Box<rsa::RsaPrivateKey>),
    Ec(p256::ecdsa::SigningKey),
}

impl Key {
    pub(super) fn rsa() -> Self {
        Key::Rsa(Box::new(rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PEM).unwrap()))
    }
    fn rsa_other() -> Self {
        Key::Rsa(Box::new(rsa::RsaPrivateKey::from_pkcs8_pem(OTHER_RSA_PEM).unwrap()))
    }
    fn weak_rsa() -> Self {
        Key::Rsa(Box::new(rsa::RsaPrivateKey::from_pkcs8_pem(WEAK_RSA_PEM).unwrap()))
    }
    pub(super) fn ec() -> Self {
        Key::Ec(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng))
    }
    pub(super) fn alg(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "RS256",
            Key::Ec(_) => "ES256",
        }
    }
    pub(super) fn jwk(&self, kid: &str) -> Value {
        match self {
            Key::Rsa(k) => json!({
                "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": b64url(k.n().to_bytes_be()), "e": b64url(k.e().to_bytes_be()),
            }),
            Key::Ec(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": b64url(p.x().unwrap()), "y": b64url(p.y().unwrap())})
            }
        }
    }
    pub(super) fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Key::Rsa(k) => k.sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &sha2::Sha256::digest(input)).unwrap(),
            Key::Ec(k) => {
                let sig: p256::ecdsa::Signature = k.sign(input);
                sig.to_bytes().to_vec()
            }
        }
    }
}

/// A compact JWS of `claims` under `header`, signed with `key`.
pub(super) fn jws(key: &Key, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64url(header.to_string()), b64url(claims.to_string()));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64url(sig))
}

/// Claims a well-behaved client sends at `now`.
fn claims(client_id: &str, now: u64) -> Value {
    json!({"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "iat": now, "exp": now + 60, "jti": random_token(16)})
}

fn chatgpt_doc() -> Value {
    json!({
        "client_id": CHATGPT,
        "client_name": "ChatGPT",
        "redirect_uris": [REDIRECT_CB],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "jwks_uri": JWKS_URI,
    })
}

fn only_jwt_doc(key: &Key) -> Value {
    json!({
        "client_id": ONLY_JWT,
        "client_name": "Agent",
        "redirect_uris": [REDIRECT_CB],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.jwk("k1")]},
    })
}

struct T {
    w: World,
    f: FakeFetcher,
    /// ChatGPT's key (RS256, `kid` k1, at the jwks_uri).
    chatgpt: Key,
    /// The only-private_key_jwt client's key (ES256, inline).
    agent: Key,
}

impl T {
    fn new() -> Self {
        Self::with_config(Config::default())
    }
    fn with_config(config: Config) -> Self {
        let t = T { w: World::with_config(config), f: FakeFetcher::default(), chatgpt: Key::rsa(), agent: Key::ec() };
        t.f.serve(CHATGPT, 200, Some("max-age=600"), &chatgpt_doc().to_string());
        t.serve_keys(&[&t.chatgpt]);
        t.f.serve(ONLY_JWT, 200, Some("max-age=600"), &only_jwt_doc(&t.agent).to_string());
        t
    }
    fn serve_keys(&self, keys: &[&Key]) {
        let set =
            json!({"keys": keys.iter().enumerate().map(|(i, k)| k.jwk(&format!("k{}", i + 1))).collect::<Vec<_>>()});
        self.f.serve(JWKS_URI, 200, None, &set.to_string());
    }
    fn p(&self) -> Provider<'_> {
        self.w.p().with_metadata_fetcher(&self.f)
    }
    fn now(&self) -> u64 {
        self.w.store.now()
    }
    fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Response<Vec<u8>> {
        let req = Request::post(format!("{ORIGIN}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs).into_bytes())
            .unwrap();
        block_on(self.p().handle(&req))
    }
    /// An assertion of `client_id` with `key` (kid k1) and the usual claims.
    fn assertion(&self, key: &Key, client_id: &str) -> String {
        jws(key, &json!({"alg": key.alg(), "kid": "k1", "typ": "JWT"}), &claims(client_id, self.now()))
    }
    /// `params` plus `assertion` as client authentication.
    fn with<'a>(params: &[(&'a str, &'a str)], assertion: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut p = params.to_vec();
        p.extend([("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)]);
        p
    }
    /// Authorizes `client_id` as alice with PKCE; the code and verifier.
    fn code(&self, client_id: &str) -> (String, Pkce) {
        let pkce = Pkce::new();
        let c = Client { id: client_id.into(), secret: None, method: String::new(), redirect: REDIRECT_CB.into() };
        let req =
            block_on(self.p().parse_auth_request(&self.w.authorize_url(&c, Some(&pkce), &[]))).expect("authorize");
        let done = CompleteAuthorization {
            user_id: "alice".into(),
            metadata: json!({}),
            scope: req.scope.clone(),
            props: json!({"user": "alice"}),
            request: req,
            revoke_existing_grants: true,
        };
        let to = block_on(self.p().complete_authorization(ORIGIN, done)).expect("complete");
        (query_of(&to).remove("code").expect("code"), pkce)
    }
    fn exchange(&self, code: &str, pkce: &Pkce, auth: &[(&str, &str)]) -> Response<Vec<u8>> {
        let mut p = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_CB),
            ("code_verifier", &pkce.verifier),
        ];
        p.extend_from_slice(auth);
        self.post("/token", &p)
    }
    /// A revocation of a token that does not exist: 200 exactly when the
    /// client authentication passes (it comes first).
    fn revoke_junk(&self, auth: &[(&str, &str)]) -> Response<Vec<u8>> {
        let mut p = vec![("token", "nobody:nothing:nil")];
        p.extend_from_slice(auth);
        self.post("/revoke", &p)
    }
}

fn ok(res: &Response<Vec<u8>>) -> Value {
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    // A revocation answers with an empty body.
    if res.body().is_empty() {
        Value::Null
    } else {
        json_of(res)
    }
}

/// 401 `invalid_client` for `check`, with a description saying what was wrong.
fn refused(res: &Response<Vec<u8>>, check: &'static str) -> String {
    assert_error(res, 401, "invalid_client");
    assert_eq!(Reason::of(res), Some(Reason::new("client_auth", check)), "{}", String::from_utf8_lossy(res.body()));
    json_of(res)["error_description"].as_str().unwrap().to_owned()
}

#[test]
fn the_chatgpt_document_signs_in_and_refreshes_and_revokes_with_assertions_or_none() {
    let t = T::new();
    // Held to public-client rules: PKCE is required.
    let c = Client { id: CHATGPT.into(), secret: None, method: String::new(), redirect: REDIRECT_CB.into() };
    let e = block_on(t.p().parse_auth_request(&t.w.authorize_url(&c, None, &[]))).unwrap_err();
    assert!(e.description.contains("PKCE"), "{}", e.description);

    let (code, pkce) = t.code(CHATGPT);
    // The code exchange names no client_id: the assertion's sub says who.
    let a = t.assertion(&t.chatgpt, CHATGPT);
    let tokens = ok(&t.exchange(&code, &pkce, &T::with(&[], &a)));
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(t.w.bearer(access).unwrap().client_id, CHATGPT);

    // Refresh with an assertion (and the client_id), then with none: both offered.
    let a = t.assertion(&t.chatgpt, CHATGPT);
    let refreshed = ok(&t.post(
        "/token",
        &T::with(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", CHATGPT),
            ],
            &a,
        ),
    ));
    let refreshed = ok(&t.post(
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refreshed["refresh_token"].as_str().unwrap()),
            ("client_id", CHATGPT),
        ],
    ));
    // Revocation with an assertion whose aud is the revocation endpoint.
    let mut c = claims(CHATGPT, t.now());
    c["aud"] = json!(format!("{ORIGIN}/revoke"));
    let a = jws(&t.chatgpt, &json!({"alg": "RS256", "kid": "k1"}), &c);
    let access = refreshed["access_token"].as_str().unwrap();
    ok(&t.post("/revoke", &T::with(&[("token", refreshed["refresh_token"].as_str().unwrap())], &a)));
    assert!(t.w.bearer(access).is_err(), "the grant was revoked");
    assert_eq!(t.f.calls_to(JWKS_URI), 1, "the key set is cached");
    assert_eq!(t.f.calls_to(CHATGPT), 1);
    assert_ttls_ok(&t.w);
}

#[test]
fn a_failed_assertion_is_refused_never_taken_for_none() {
    let t = T::new();
    let (code, pkce) = t.code(CHATGPT);
    let wrong = Key::rsa_other();
    for a in [t.assertion(&wrong, CHATGPT), "not.a.jwt".to_owned()] {
        let res = t.exchange(&code, &pkce, &T::with(&[("client_id", CHATGPT)], &a));
        assert_error(&res, 401, "invalid_client");
    }
    // Nothing was consumed: the code still works, here the public way.
    ok(&t.exchange(&code, &pkce, &[("client_id", CHATGPT)]));
}

#[test]
fn an_only_private_key_jwt_document_needs_an_assertion_on_every_request() {
    let t = T::new();
    let (code, pkce) = t.code(ONLY_JWT);
    let without = t.exchange(&code, &pkce, &[("client_id", ONLY_JWT)]);
    refused(&without, "method_mismatch");
    let with_secret = t.exchange(&code, &pkce, &[("client_id", ONLY_JWT), ("client_secret", "guess")]);
    refused(&with_secret, "method_mismatch");
    let a = t.assertion(&t.agent, ONLY_JWT);
    let tokens = ok(&t.exchange(&code, &pkce, &T::with(&[("client_id", ONLY_JWT)], &a)));
    let refresh = tokens["refresh_token"].as_str().unwrap();
    refused(
        &t.post("/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", ONLY_JWT)]),
        "method_mismatch",
    );
    refused(&t.post("/revoke", &[("token", refresh), ("client_id", ONLY_JWT)]), "method_mismatch");
    let a = t.assertion(&t.agent, ONLY_JWT);
    ok(&t.post("/token", &T::with(&[("grant_type", "refresh_token"), ("refresh_token", refresh)], &a)));
    // Inline keys: nothing fetched but the document.
    assert_eq!(t.f.calls.borrow().iter().filter(|u| *u != ONLY_JWT).count(), 0);
}

#[test]
fn each_claim_and_the_signature_are_checked() {
    let t = T::new();
    let now = t.now();
    let good = || claims(CHATGPT, now);
    let header = json!({"alg": "RS256", "kid": "k1"});
    let mut cases: Vec<(String, &str)> = Vec::new();
    let mut case = |edit: &dyn Fn(&mut Value), check: &'static str| {
        let mut c = good();
        edit(&mut c);
        cases.push((jws(&t.chatgpt, &header, &c), check));
    };
    case(&|c| c["iss"] = json!("https://evil.example.com/client.json"), "assertion_issuer");
    case(&|c| c["sub"] = json!("https://evil.example.com/client.json"), "assertion_subject");
    case(&|c| c["aud"] = json!("https://other.example.com/token"), "assertion_audience");
    case(&|c| c["aud"] = json!(["https://other.example.com"]), "assertion_audience");
    case(
        &|c| {
            c.as_object_mut().unwrap().remove("aud");
        },
        "assertion_audience",
    );
    case(
        &|c| {
            c.as_object_mut().unwrap().remove("exp");
        },
        "assertion_exp_missing",
    );
    case(&|c| c["exp"] = json!(now - 61), "assertion_expired");
    case(&|c| c["exp"] = json!(now + 3600), "assertion_lifetime");
    case(&|c| c["exp"] = json!("soon"), "assertion_claims");
    case(&|c| c["nbf"] = json!(now + 600), "assertion_not_yet_valid");
    case(&|c| c["iat"] = json!(now + 600), "assertion_not_yet_valid");
    case(
        &|c| {
            c.as_object_mut().unwrap().remove("jti");
        },
        "assertion_jti_missing",
    );
    case(&|c| c["jti"] = json!(""), "assertion_jti_missing");
    // Headers and signatures.
    let c = good();
    cases.push((jws(&t.chatgpt, &json!({"alg": "RS256", "kid": "k9"}), &c), "assertion_no_key"));
    cases.push((jws(&t.chatgpt, &json!({"alg": "ES256", "kid": "k1"}), &c), "assertion_no_key"));
    cases.push((jws(&Key::rsa_other(), &header, &c), "assertion_signature"));
    cases.push((jws(&t.chatgpt, &json!({"alg": "RS256", "kid": "k1", "crit": ["x"]}), &c), "assertion_malformed"));
    for alg in ["none", "HS256", "RS512", "PS256"] {
        cases.push((jws(&t.chatgpt, &json!({"alg": alg, "kid": "k1"}), &c), "assertion_alg_unsupported"));
    }
    let signed = jws(&t.chatgpt, &header, &c);
    let (input, _) = signed.rsplit_once('.').unwrap();
    let mut forged = c.clone();
    forged["sub"] = json!(CHATGPT);
    forged["scope"] = json!("admin");
    let (h, _) = input.split_once('.').unwrap();
    cases.push((
        format!("{h}.{}.{}", b64url(forged.to_string()), signed.rsplit_once('.').unwrap().1),
        "assertion_signature",
    ));
    cases.push((format!("{input}."), "assertion_signature"));
    cases.push((format!("{h}.{h}"), "assertion_malformed"));
    cases.push((format!("{signed}.x"), "assertion_malformed"));
    cases.push(("x".repeat(9000), "assertion_malformed"));
    for (a, check) in &cases {
        let res = t.revoke_junk(&T::with(&[("client_id", CHATGPT)], a));
        let why = refused(&res, check);
        assert!(why.starts_with("Client authentication failed: "), "{why}");
        assert!(!why.contains(a.as_str()), "the assertion is never echoed");
    }
    // The good ones: aud as the issuer, the token endpoint, or in an array; times within the skew.
    for edit in [
        json!({"aud": ORIGIN}),
        json!({"aud": TOKEN_URL}),
        json!({"aud": ["https://other.example.com", ORIGIN]}),
        json!({"exp": now - 30, "iat": now - 90}),
        json!({"nbf": now + 30, "iat": now + 30, "exp": now + 330}),
    ] {
        let mut c = good();
        for (k, v) in edit.as_object().unwrap() {
            c[k] = v.clone();
        }
        ok(&t.revoke_junk(&T::with(&[("client_id", CHATGPT)], &jws(&t.chatgpt, &header, &c))));
    }
    // Without a kid any key of the right type may verify.
    ok(&t.revoke_junk(&T::with(&[], &jws(&t.chatgpt, &json!({"alg": "RS256"}), &good()))));
}

#[test]
fn with_a_single_use_record_a_replayed_assertion_is_refused_even_where_kv_has_not_seen_the_marker() {
    let mut t = T::new();
    let record = SharedSingleUse::default();
    t.w.single_use = Some(Box::new(record.clone()));
    let a = t.assertion(&t.agent, ONLY_JWT);
    ok(&t.revoke_junk(&T::with(&[], &a)));
    // The marker is the record's: a location whose KV lags would see nothing there.
    assert!(t.w.keys("client_jti:").is_empty());
    let (key, until) = record.0.borrow()[0].clone();
    assert!(key.starts_with("client_jti:") && key.len() <= 80, "{key}");
    assert!(until >= t.now() + 60 + 60, "kept until the assertion's expiry plus skew");
    refused(&t.revoke_junk(&T::with(&[], &a)), "assertion_replayed");
}

#[test]
fn a_replayed_assertion_is_refused_until_it_expires() {
    let t = T::new();
    let a = t.assertion(&t.agent, ONLY_JWT);
    ok(&t.revoke_junk(&T::with(&[], &a)));
    let why = refused(&t.revoke_junk(&T::with(&[], &a)), "assertion_replayed");
    assert!(why.contains("jti"), "{why}");
    // The marker lives under its own prefix until the assertion expires (KV's 60 s floor).
    let jti = serde_json::from_slice::<Value>(&crate::crypto::b64url_decode(a.split('.').nth(1).unwrap()).unwrap())
        .unwrap()["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = jti_key(ONLY_JWT, &jti);
    assert!(key.starts_with("client_jti:"));
    assert_eq!(t.w.keys("client_jti:"), vec![key.clone()]);
    assert!(t.w.store.expires_at(&key).unwrap() >= t.now() + 60 + 60);
    // The same jti from another client is that client's business.
    let mut c = claims(CHATGPT, t.now());
    c["jti"] = json!(jti);
    ok(&t.revoke_junk(&T::with(&[], &jws(&t.chatgpt, &json!({"alg": "RS256", "kid": "k1"}), &c))));
    assert_ttls_ok(&t.w);
}

#[test]
fn client_assertion_parameters_are_checked_as_a_method() {
    let t = T::new();
    let a = t.assertion(&t.agent, ONLY_JWT);
    let res = t.post("/revoke", &[("token", "x"), ("client_assertion", &a)]);
    assert_error(&res, 400, "invalid_request");
    let res = t.post("/revoke", &[("token", "x"), ("client_assertion", &a), ("client_assertion_type", "urn:other")]);
    let why = refused(&res, "assertion_type_unsupported");
    assert!(why.contains(ASSERTION_TYPE));
    let res = t.post("/revoke", &T::with(&[("token", "x"), ("client_secret", "s")], &a));
    assert_error(&res, 400, "invalid_request");
    let req = Request::post(format!("{ORIGIN}/revoke"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic(ONLY_JWT, "s"))
        .body(form(&T::with(&[("token", "x")], &a)).into_bytes())
        .unwrap();
    assert_error(&block_on(t.p().handle(&req)), 400, "invalid_request");
    // An assertion with no sub and no client_id names no client.
    let c = json!({"iss": ONLY_JWT, "aud": TOKEN_URL, "exp": t.now() + 60, "jti": "j"});
    refused(&t.revoke_junk(&T::with(&[], &jws(&t.agent, &json!({"alg": "ES256"}), &c))), "assertion_malformed");
    // A registered (secret) client cannot switch to assertions.
    let conf = t.w.confidential("client_secret_post");
    let c = claims(&conf.id, t.now());
    refused(&t.revoke_junk(&T::with(&[], &jws(&t.agent, &json!({"alg": "ES256"}), &c))), "method_mismatch");
    // Neither can a document offering only none.
    let plain = "https://plain.example.com/client.json";
    let mut doc = chatgpt_doc();
    doc["client_id"] = json!(plain);
    doc["token_endpoint_auth_method"] = json!("none");
    doc.as_object_mut().unwrap().remove("token_endpoint_auth_methods_supported");
    t.f.serve(plain, 200, None, &doc.to_string());
    refused(&t.revoke_junk(&T::with(&[], &t.assertion(&t.chatgpt, plain))), "method_mismatch");
}

#[test]
fn weak_rsa_keys_are_refused() {
    let t = T::new();
    let weak = Key::weak_rsa();
    t.serve_keys(&[&weak]);
    refused(&t.revoke_junk(&T::with(&[], &t.assertion(&weak, CHATGPT))), "assertion_signature");
}

#[test]
fn the_key_set_is_fetched_with_the_document_guards_and_cached() {
    let t = T::new();
    let auth = |t: &T| t.revoke_junk(&T::with(&[], &t.assertion(&t.chatgpt, CHATGPT)));
    ok(&auth(&t));
    ok(&auth(&t));
    assert_eq!(t.f.calls_to(JWKS_URI), 1, "cached");
    // A key replaced under the same kid is seen once the cached set is stale.
    let rotated = Key::rsa_other();
    t.serve_keys(&[&rotated]);
    refused(&t.revoke_junk(&T::with(&[], &t.assertion(&rotated, CHATGPT))), "assertion_signature");
    t.w.advance(JWKS_CACHE_SECS + 1);
    ok(&t.revoke_junk(&T::with(&[], &t.assertion(&rotated, CHATGPT))));
    assert_eq!(t.f.calls_to(JWKS_URI), 2);
    // A new kid fetches the set again while it is fresh, at most once a minute.
    let third = Key::ec();
    t.serve_keys(&[&rotated, &third]);
    let with_k2 = |t: &T| {
        let a = jws(&third, &json!({"alg": "ES256", "kid": "k2"}), &claims(CHATGPT, t.now()));
        t.revoke_junk(&T::with(&[], &a))
    };
    refused(&with_k2(&t), "assertion_no_key");
    assert_eq!(t.f.calls_to(JWKS_URI), 2, "the set was fetched under a minute ago");
    t.w.advance(JWKS_REFETCH_AFTER_SECS);
    ok(&with_k2(&t));
    ok(&with_k2(&t));
    assert_eq!(t.f.calls_to(JWKS_URI), 3);
    // Failures: unreachable or non-200 are worth a retry (503), a bad set is no key (401); none cached.
    t.w.advance(JWKS_CACHE_SECS + 1);
    type Setup = Box<dyn Fn(&FakeFetcher)>;
    let cases: Vec<(Setup, u16, &str)> = vec![
        (Box::new(|f| f.fail(JWKS_URI, FetchFailure::Timeout)), 503, "no complete answer"),
        (Box::new(|f| f.serve(JWKS_URI, 404, None, "")), 503, "did not answer 200 OK"),
        (Box::new(|f| f.serve(JWKS_URI, 302, None, "")), 503, "redirect"),
        (Box::new(|f| f.serve(JWKS_URI, 200, None, &" ".repeat(MAX_JWKS_BYTES + 1))), 503, "larger than 65536"),
        (Box::new(|f| f.serve(JWKS_URI, 200, None, "<html>")), 401, "not valid UTF-8 JSON"),
        (Box::new(|f| f.serve(JWKS_URI, 200, None, "{\"keys\": 1}")), 401, "keys array"),
        (
            Box::new(|f| {
                f.serve(JWKS_URI, 200, None, r#"{"keys": [{"kty": "RSA", "n": "x", "e": "AQAB", "d": "y"}]}"#)
            }),
            401,
            "private key material",
        ),
    ];
    for (setup, status, want) in cases {
        setup(&t.f);
        let res = auth(&t);
        assert_eq!(res.status(), status, "{want}: {}", String::from_utf8_lossy(res.body()));
        let why = json_of(&res)["error_description"].as_str().unwrap().to_owned();
        assert!(why.contains(&format!("CIMD fetch failed for {JWKS_URI}")) && why.contains(want), "{want}: {why}");
    }
    assert_eq!(t.w.keys("cimd_jwks:").len(), 0, "stale and failed sets are not served");
    // A jwks_uri on a private address is never fetched.
    let private = "https://10.0.0.7/jwks.json";
    let doc_url = "https://internal.example.com/client.json";
    let mut doc = chatgpt_doc();
    doc["client_id"] = json!(doc_url);
    doc["jwks_uri"] = json!(private);
    t.f.serve(doc_url, 200, None, &doc.to_string());
    let why = refused(&t.revoke_junk(&T::with(&[], &t.assertion(&t.chatgpt, doc_url))), "jwks_invalid");
    assert!(why.contains("jwks_uri URL points at a private"), "{why}");
    assert_eq!(t.f.calls_to(private), 0);
}

#[test]
fn documents_negotiate_the_method_from_what_they_offer() {
    let key = Key::ec();
    let doc = |edit: Value| {
        let mut d = only_jwt_doc(&key);
        d.as_object_mut().unwrap().remove("token_endpoint_auth_method");
        for (k, v) in edit.as_object().unwrap() {
            if v.is_null() {
                d.as_object_mut().unwrap().remove(k);
            } else {
                d[k] = v.clone();
            }
        }
        d.to_string()
    };
    let method = |edit: Value, on: bool| {
        validate_document(ONLY_JWT, doc(edit).as_bytes(), on, true, &[])
            .map(|c| (c.token_endpoint_auth_method.clone(), c.accepts_auth_method("private_key_jwt"), c.is_public()))
            .map_err(|e| e.detail)
    };
    let both = json!({"token_endpoint_auth_methods_supported": ["none", "private_key_jwt"]});
    assert_eq!(
        method(json!({"token_endpoint_auth_method": "private_key_jwt"}), true),
        Ok(("private_key_jwt".into(), true, false))
    );
    assert_eq!(
        method(both.clone(), true),
        Ok(("none".into(), true, true)),
        "both offered: public rules, assertions too"
    );
    assert_eq!(method(json!({}), true), Ok(("none".into(), false, true)), "nothing said: none");
    assert_eq!(method(both.clone(), false), Ok(("none".into(), false, true)), "setting off: none only");
    let no_keys = json!({"token_endpoint_auth_methods_supported": ["none", "private_key_jwt"], "jwks": null});
    assert_eq!(method(no_keys, true), Ok(("none".into(), false, true)), "without keys: none only");
    for (edit, on, want) in [
        (json!({"token_endpoint_auth_method": "private_key_jwt"}), false, "OAUTH_PRIVATE_KEY_JWT=false"),
        (json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": null}), true, "public keys"),
        (json!({"token_endpoint_auth_methods_supported": ["client_secret_post"]}), true, "no shared secret"),
        (
            json!({"token_endpoint_auth_method": "none", "token_endpoint_auth_methods_supported": ["private_key_jwt"]}),
            true,
            "one of token_endpoint_auth_methods_supported",
        ),
        (
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": JWKS_URI}),
            true,
            "both jwks and jwks_uri",
        ),
        (
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": null, "jwks_uri": "http://x.example.com/j"}),
            true,
            "https URL",
        ),
        (json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"nokeys": []}}), true, "keys array"),
        (json!({"token_endpoint_auth_methods_supported": "none"}), true, "must be an array"),
    ] {
        let got = method(edit.clone(), on);
        assert!(got.as_ref().is_err_and(|e| e.contains(want)), "{edit}: wanted {want:?}, got {got:?}");
    }
}

#[test]
fn the_setting_turns_it_off_and_the_metadata_says_what_is_on() {
    let read = |v: Option<&str>| {
        Config::from_lookup(|n| (n == "OAUTH_PRIVATE_KEY_JWT").then(|| v.map(str::to_owned)).flatten())
    };
    assert!(read(None).unwrap().private_key_jwt, "on by default");
    assert!(read(Some("true")).unwrap().private_key_jwt);
    assert!(!read(Some("false")).unwrap().private_key_jwt);
    let e = read(Some("maybe")).unwrap_err();
    assert!(e.0.contains("OAUTH_PRIVATE_KEY_JWT") && !e.0.contains("maybe"), "{e}");

    let meta = |t: &T, fetcher: bool| {
        let req = Request::get(format!("{ORIGIN}/.well-known/oauth-authorization-server")).body(Vec::new()).unwrap();
        let p = if fetcher { t.p() } else { t.w.p() };
        json_of(&block_on(p.handle(&req)))
    };
    let on = T::new();
    let m = meta(&on, true);
    for field in ["token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"] {
        assert_eq!(
            m[field],
            json!(["client_secret_basic", "client_secret_post", "none", "private_key_jwt"]),
            "{field}"
        );
    }
    for field in
        ["token_endpoint_auth_signing_alg_values_supported", "revocation_endpoint_auth_signing_alg_values_supported"]
    {
        assert_eq!(m[field], json!(["RS256", "ES256"]), "{field}");
    }
    // Only metadata-document clients use it: not advertised without them.
    let m = meta(&on, false);
    assert!(!m["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("private_key_jwt")));
    assert!(m.get("token_endpoint_auth_signing_alg_values_supported").is_none());

    let off = T::with_config(Config { private_key_jwt: false, ..Config::default() });
    let m = meta(&off, true);
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert!(m.get("token_endpoint_auth_signing_alg_values_supported").is_none());
    // Off: the only-private_key_jwt document is refused, ChatGPT's is public and its assertions refused.
    let why = json_of(&off.revoke_junk(&T::with(&[], &off.assertion(&off.agent, ONLY_JWT))))["error_description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(why.contains("OAUTH_PRIVATE_KEY_JWT=false"), "{why}");
    refused(&off.revoke_junk(&T::with(&[], &off.assertion(&off.chatgpt, CHATGPT))), "method_mismatch");
    ok(&off.revoke_junk(&[("client_id", CHATGPT)]));
    assert_eq!(off.f.calls_to(JWKS_URI), 0);
}
