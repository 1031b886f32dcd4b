//! Who is calling: the verified auth context the Worker hands the session's
//! Durable Object, and a lenient view of the grant's props.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The bearer token's verified context, as the authorization server resolved
/// it. Built by the Worker from `oauth::AuthContext`; never from client headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Caller {
    pub user_id: String,
    pub grant_id: String,
    pub client_id: String,
    /// Scopes of the MCP access token.
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    /// When the MCP access token expires (unix seconds).
    pub expires_at: u64,
    /// Only the props fields the tools need (see [`Props::trimmed`]).
    pub props: Value,
}

/// Typed, lenient view of the props the sign-in module stores with a grant:
/// every field but `subjectToken` is optional, and a field of the wrong type is
/// treated as absent rather than failing the request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Props {
    /// The user's PingOne access token, sent to the Todo API.
    pub subject_token: Option<String>,
    pub subject_token_expires_at: Option<u64>,
    /// Scopes PingOne granted.
    pub scopes: Option<Vec<String>>,
    /// ID token claims (sub, preferred_username, name, email, ...).
    pub claims: Option<Map<String, Value>>,
}

impl Props {
    pub fn from_value(v: &Value) -> Self {
        let str_list = |v: &Value| -> Option<Vec<String>> {
            v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        };
        Self {
            subject_token: v.get("subjectToken").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_owned),
            subject_token_expires_at: v
                .get("subjectTokenExpiresAt")
                .and_then(|n| n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))),
            scopes: v.get("scopes").and_then(str_list),
            claims: v.get("claims").and_then(Value::as_object).cloned(),
        }
    }

    /// The props without anything the tools must never see or forward (the
    /// PingOne refresh token above all), for the internal envelope.
    pub fn trimmed(v: &Value) -> Value {
        let mut out = Map::new();
        for key in ["subjectToken", "subjectTokenExpiresAt", "scopes", "claims"] {
            if let Some(x) = v.get(key) {
                out.insert(key.into(), x.clone());
            }
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mcp_props_are_read_leniently() {
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
    fn mcp_trimmed_props_drop_the_refresh_token() {
        let t = Props::trimmed(&json!({"subjectToken": "a", "refreshToken": "r", "claims": {}}));
        assert_eq!(t, json!({"subjectToken": "a", "claims": {}}));
    }
}
