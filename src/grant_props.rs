//! The props a grant carries: written by sign-in (`login`), read by the MCP
//! session (`mcp`) and by the PingOne refresh hook. Two shapes exist:
//!
//! - this worker's: `subjectToken`, `subjectTokenExpiresAt`, `scopes`, `claims`, and
//!   `enterprise: true` on a grant made of an enterprise ID-JAG (no PingOne token);
//! - the public original's (`pingidentity/cloudflare-mcp`, `remote-mcp-pingone`,
//!   `mcp/src/auth/ping-handler.ts` at a15d34e: `props: { subjectToken }`):
//!   the PingOne access token alone, its expiry only in the JWT's `exp`;
//! - the earlier demo's (cloudflare/ai `remote-mcp-pingone`): `sub`,
//!   `preferred_username`, `given_name`, `family_name`, `email` and `tokenSet`
//!   (PingOne's token response: `access_token`, `scope`, a relative
//!   `expires_in`, …).
//!
//! A deployment switching over keeps them in its grants; [`Props`] reads all
//! three, so those grants work until they end.

use crate::util::crypto::b64url_decode;
use serde_json::{json, Map, Value};

/// Claims the original kept at the top level of its props.
const ORIGINAL_CLAIMS: [&str; 5] = ["sub", "preferred_username", "given_name", "family_name", "email"];

/// Typed, lenient view of a grant's props: every field is optional, and a
/// field of the wrong type is treated as absent rather than failing the request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Props {
    /// The user's PingOne access token, sent to the Todo API.
    pub subject_token: Option<String>,
    pub subject_token_expires_at: Option<u64>,
    /// Scopes PingOne granted.
    pub scopes: Option<Vec<String>>,
    /// ID token claims (sub, preferred_username, name, email, ...).
    pub claims: Option<Map<String, Value>>,
    /// Made of an enterprise ID-JAG (`login::enterprise`): signed in at the
    /// IdP without this worker, so there is no PingOne token.
    pub enterprise: bool,
}

fn str_list(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
}

fn non_empty_str(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_owned)
}

/// The `exp` of a JWT, read without verification: the token comes from the
/// grant's own encrypted props, and only its lifetime is wanted here.
fn jwt_exp(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&b64url_decode(payload)?).ok()?;
    claims.get("exp")?.as_u64()
}

impl Props {
    pub fn from_value(v: &Value) -> Self {
        if v.get("subjectToken").is_none() {
            if let Some(set) = v.get("tokenSet").filter(|s| s.is_object()) {
                return Self::from_original(v, set);
            }
        }
        let subject_token = non_empty_str(v.get("subjectToken"));
        Self {
            // The public original stored no expiry: the PingOne JWT's own `exp` then.
            subject_token_expires_at: v
                .get("subjectTokenExpiresAt")
                .and_then(|n| n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)))
                .or_else(|| subject_token.as_deref().and_then(jwt_exp)),
            subject_token,
            scopes: v.get("scopes").and_then(str_list),
            claims: v.get("claims").and_then(Value::as_object).cloned(),
            enterprise: v.get("enterprise") == Some(&Value::Bool(true)),
        }
    }

    /// The original's shape. Its `expires_in` is relative to a moment it did
    /// not store, so the expiry comes from the PingOne JWT itself.
    fn from_original(v: &Value, set: &Value) -> Self {
        let subject_token = non_empty_str(set.get("access_token"));
        let claims: Map<String, Value> = ORIGINAL_CLAIMS
            .iter()
            .filter_map(|k| v.get(*k).filter(|c| c.is_string()).map(|c| ((*k).to_owned(), c.clone())))
            .collect();
        Self {
            subject_token_expires_at: subject_token.as_deref().and_then(jwt_exp),
            subject_token,
            scopes: set.get("scope").and_then(Value::as_str).map(|s| s.split_whitespace().map(str::to_owned).collect()),
            claims: (!claims.is_empty()).then_some(claims),
            enterprise: false,
        }
    }

    /// This worker's shape of these props.
    pub fn to_value(&self) -> Value {
        let mut out = Map::new();
        if let Some(t) = &self.subject_token {
            out.insert("subjectToken".into(), json!(t));
        }
        if let Some(at) = self.subject_token_expires_at {
            out.insert("subjectTokenExpiresAt".into(), json!(at));
        }
        if let Some(s) = &self.scopes {
            out.insert("scopes".into(), json!(s));
        }
        if let Some(c) = &self.claims {
            out.insert("claims".into(), Value::Object(c.clone()));
        }
        if self.enterprise {
            out.insert("enterprise".into(), Value::Bool(true));
        }
        Value::Object(out)
    }

    /// The props without anything the tools must never see or forward (the
    /// PingOne refresh token above all, the original's ID token), in this
    /// worker's shape, for the internal envelope.
    pub fn trimmed(v: &Value) -> Value {
        Self::from_value(v).to_value()
    }
}

/// What a resource in another worker learns of a grant from the internal
/// validation endpoint: the user's claims and the PingOne scopes, never the
/// PingOne access token (it is for the Todo API, which this worker calls
/// itself) nor anything else the grant holds.
pub struct ClaimsOnly;

impl crate::oauth::ResourceProps for ClaimsOnly {
    fn props_for(&self, _resource: &crate::oauth::ProtectedResource, props: &Value) -> Value {
        let p = Props::from_value(props);
        Props { subject_token: None, subject_token_expires_at: None, ..p }.to_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::crypto::b64url;

    #[test]
    fn other_resources_get_the_claims_but_not_the_pingone_token() {
        use crate::oauth::ResourceProps;
        let calendar = crate::oauth::ProtectedResource::new("https://calendar.example.net/mcp");
        for props in [
            json!({"subjectToken": "pingone-at", "subjectTokenExpiresAt": 9, "scopes": ["todo_api:read"],
                   "claims": {"sub": "u1", "preferred_username": "bob"}, "upstreamRefresh": "rt"}),
            // The original TypeScript worker's shape.
            json!({"tokenSet": {"access_token": "pingone-at", "id_token": "idt", "expires_in": 60}, "sub": "u1",
                   "preferred_username": "bob"}),
        ] {
            let given = ClaimsOnly.props_for(&calendar, &props);
            let text = given.to_string();
            assert!(!text.contains("pingone-at") && !text.contains("idt") && !text.contains("\"rt\""), "{text}");
            assert_eq!(given["claims"]["preferred_username"], "bob", "{text}");
        }
    }

    #[test]
    fn props_are_read_leniently() {
        let p = Props::from_value(&json!({
            "subjectToken": "abc", "subjectTokenExpiresAt": 1700000000.0,
            "scopes": ["openid", 3, "todo_api:read"], "claims": {"sub": "u1"},
        }));
        assert_eq!(p.subject_token.as_deref(), Some("abc"));
        assert_eq!(p.subject_token_expires_at, Some(1_700_000_000));
        assert_eq!(p.scopes, Some(vec!["openid".into(), "todo_api:read".into()]));
        assert_eq!(p.claims.unwrap()["sub"], "u1");

        let empty = Props::from_value(&json!({"subjectToken": 5, "claims": "x"}));
        assert_eq!(empty, Props::default());
        assert_eq!(Props::from_value(&Value::Null), Props::default());
    }

    #[test]
    fn trimmed_props_drop_the_refresh_token() {
        let t = Props::trimmed(&json!({"subjectToken": "a", "refreshToken": "r", "claims": {}}));
        assert_eq!(t, json!({"subjectToken": "a", "claims": {}}));
    }

    #[test]
    fn props_of_the_original_worker_are_read_with_the_expiry_of_the_pingone_token() {
        let jwt = format!("{}.{}.sig", b64url(r#"{"alg":"RS256"}"#), b64url(r#"{"sub":"u1","exp":1700003600}"#));
        let original = json!({
            "sub": "u1", "preferred_username": "alice", "given_name": "Alice", "family_name": "Example",
            "email": "alice@example.com",
            "tokenSet": {"access_token": jwt, "token_type": "Bearer", "expires_in": 3600,
                         "scope": "openid profile todo_api:read", "id_token": "id.token.here"},
        });
        let p = Props::from_value(&original);
        assert_eq!(p.subject_token.as_deref(), Some(jwt.as_str()));
        assert_eq!(p.subject_token_expires_at, Some(1_700_003_600));
        assert_eq!(p.scopes, Some(vec!["openid".into(), "profile".into(), "todo_api:read".into()]));
        let claims = p.claims.clone().unwrap();
        assert_eq!(claims["preferred_username"], "alice");
        assert_eq!(claims["email"], "alice@example.com");
        // Handed to the session in this worker's shape, without the ID token.
        let trimmed = Props::trimmed(&original);
        assert_eq!(Props::from_value(&trimmed), p);
        assert!(!trimmed.to_string().contains("id.token.here"));

        // The public original's props: the PingOne token alone, its life read from the JWT.
        let public = Props::from_value(&json!({ "subjectToken": jwt }));
        assert_eq!(public.subject_token.as_deref(), Some(jwt.as_str()));
        assert_eq!(public.subject_token_expires_at, Some(1_700_003_600));
        assert_eq!((public.scopes, public.claims), (None, None));

        // An opaque PingOne token: usable, of unknown life.
        let opaque = Props::from_value(&json!({"sub": "u1", "tokenSet": {"access_token": "opaque"}}));
        assert_eq!((opaque.subject_token.as_deref(), opaque.subject_token_expires_at), (Some("opaque"), None));
    }
}
