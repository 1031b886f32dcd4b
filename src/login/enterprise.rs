//! Enterprise-managed authorization on this worker: who a verified ID-JAG
//! (checked by `oauth::enterprise`) is, and what the grant made of it holds.
//!
//! The enterprise IdP is PingOne itself (`OAUTH_EMA_ISSUER` = `PINGONE_ISSUER`),
//! so the grant's user is the PingOne `sub`, as after a browser sign-in. The
//! assertion carries no PingOne access token, so the grant has none: the
//! Todo tools answer that the browser sign-in is needed, `who_am_I` works from
//! the assertion's claims. `ALLOWED_USERS`/`ALLOWED_GROUPS` judge those claims
//! as they judge a sign-in's. In proxy mode no grant is made: the downstream
//! is promised a PingOne token on every request.

use super::access::{loggable, AccessPolicy};
use crate::grant_props::Props;
use crate::oauth::enterprise::{EnterpriseAssertion, EnterpriseGrant};
use crate::oauth::error::Reason;
use crate::oauth::OAuthError;
use serde_json::{json, Map, Value};

/// Claims of the assertion that are about the JWT, not the user: kept out of
/// the grant's identity.
const PROTOCOL_CLAIMS: [&str; 10] = ["iss", "aud", "exp", "iat", "nbf", "jti", "client_id", "resource", "scope", "typ"];

/// What refuses or admits an assertion on this worker.
pub struct EnterprisePolicy<'a> {
    /// `PINGONE_ISSUER`: the only IdP whose users this worker knows.
    pub pingone_issuer: &'a str,
    /// `ALLOWED_USERS`, `ALLOWED_GROUPS`, `GROUPS_CLAIM`.
    pub access: &'a AccessPolicy,
    /// Proxy mode: the downstream needs a PingOne token the assertion lacks.
    pub gateway: bool,
}

fn reason(check: &'static str) -> Reason {
    Reason::new("enterprise", check)
}

impl EnterprisePolicy<'_> {
    /// The grant for `a`, or why there is none (the text goes to the client).
    pub fn grant(&self, a: &EnterpriseAssertion<'_>) -> Result<EnterpriseGrant, OAuthError> {
        if a.issuer.trim_end_matches('/') != self.pingone_issuer.trim_end_matches('/') {
            // Another IdP's `sub` would land in PingOne's user namespace.
            return Err(OAuthError::new(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "The server is misconfigured: OAUTH_EMA_ISSUER must be PINGONE_ISSUER",
            )
            .because(reason("issuer_not_pingone")));
        }
        if self.gateway {
            return Err(OAuthError::invalid_grant(
                "This server forwards to an MCP server that needs the user's PingOne token, which an enterprise \
                 assertion does not carry; sign in through the browser instead",
            )
            .because(reason("gateway_needs_pingone_token")));
        }
        let claims: Map<String, Value> = a
            .claims
            .iter()
            .filter(|(k, _)| !PROTOCOL_CLAIMS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let groups = self.access.groups_of([&claims]);
        if !self.access.admits_user(a.subject, &claims, &groups) {
            super::flow::log(&format!(
                "access denied: enterprise assertion for user {} (ALLOWED_USERS, ALLOWED_GROUPS)",
                loggable(a.subject)
            ));
            return Err(OAuthError::invalid_grant(
                "This account is not allowed to use this server; ask its operator for access",
            )
            .because(reason("user_not_admitted")));
        }
        let props = Props {
            subject_token: None,
            subject_token_expires_at: None,
            scopes: Some(a.scope.to_vec()),
            claims: Some(claims),
            enterprise: true,
        };
        Ok(EnterpriseGrant {
            user_id: a.subject.to_owned(),
            props: props.to_value(),
            metadata: json!({"enterprise": true}),
            access_token_ttl: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://auth.pingone.com/env/as";

    fn claims() -> Map<String, Value> {
        json!({"iss": ISSUER, "sub": "u-1", "aud": "https://mcp.example", "client_id": "c", "jti": "j",
               "exp": 2, "iat": 1, "resource": "https://mcp.example/mcp", "scope": "todo_api:read",
               "email": "alice@example.com", "email_verified": true, "preferred_username": "alice",
               "groups": ["todo-users"]})
        .as_object()
        .cloned()
        .unwrap()
    }

    fn assertion<'a>(claims: &'a Map<String, Value>, scope: &'a [String]) -> EnterpriseAssertion<'a> {
        EnterpriseAssertion {
            issuer: ISSUER,
            subject: "u-1",
            client_id: "c",
            resource: "https://mcp.example/mcp",
            scope,
            claims,
            now: 1,
        }
    }

    fn policy(access: &AccessPolicy, gateway: bool) -> EnterprisePolicy<'_> {
        EnterprisePolicy { pingone_issuer: ISSUER, access, gateway }
    }

    fn why(e: &OAuthError) -> String {
        e.reason.to_string()
    }

    #[test]
    fn the_pingone_user_gets_a_grant_without_a_pingone_token() {
        let (c, scope) = (claims(), vec!["todo_api:read".to_owned()]);
        let g = policy(&AccessPolicy::default(), false).grant(&assertion(&c, &scope)).unwrap();
        assert_eq!(g.user_id, "u-1");
        let props = Props::from_value(&g.props);
        assert!(props.enterprise && props.subject_token.is_none());
        assert_eq!(props.scopes.unwrap(), scope);
        let who = props.claims.unwrap();
        assert_eq!(who["email"], "alice@example.com");
        assert!(who.get("jti").is_none() && who.get("aud").is_none() && who.get("client_id").is_none());
    }

    #[test]
    fn the_allow_list_judges_the_assertions_claims() {
        let (c, scope) = (claims(), vec![]);
        let a = assertion(&c, &scope);
        let only = |users: &[&str], groups: &[&str]| AccessPolicy {
            users: users.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            ..AccessPolicy::default()
        };
        assert!(policy(&only(&["alice@example.com"], &[]), false).grant(&a).is_ok());
        assert!(policy(&only(&[], &["todo-users"]), false).grant(&a).is_ok());
        let e = policy(&only(&["bob"], &["admins"]), false).grant(&a).unwrap_err();
        assert_eq!((e.error, why(&e).as_str()), ("invalid_grant", "enterprise.user_not_admitted"));
        // An unverified address proves nothing.
        let mut unverified = claims();
        unverified["email_verified"] = json!(false);
        let e = policy(&only(&["alice@example.com"], &[]), false).grant(&assertion(&unverified, &scope)).unwrap_err();
        assert_eq!(e.error, "invalid_grant");
    }

    #[test]
    fn refused_in_proxy_mode_and_for_another_issuer() {
        let (c, scope) = (claims(), vec![]);
        let open = AccessPolicy::default();
        let e = policy(&open, true).grant(&assertion(&c, &scope)).unwrap_err();
        assert_eq!(why(&e), "enterprise.gateway_needs_pingone_token");
        let other =
            EnterprisePolicy { pingone_issuer: "https://auth.pingone.com/other/as", access: &open, gateway: false };
        let e = other.grant(&assertion(&c, &scope)).unwrap_err();
        assert_eq!((e.status.as_u16(), why(&e).as_str()), (500, "enterprise.issuer_not_pingone"));
    }
}
