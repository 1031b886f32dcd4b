//! The authorization server's grant hooks of this worker: PingOne's (refresh
//! and revocation, `login::upstream`) and, with downstreams that have their own
//! OAuth, the token vault told of every grant's end.

use crate::login::upstream::PingOneGrants;
use crate::oauth::records::Grant;
use crate::oauth::{
    EnterpriseAssertion, EnterpriseGrant, Exchange, ExchangeError, ExchangeResult, GrantHooks, OAuthError,
};
use async_trait::async_trait;
use worker::Env;

pub struct Hooks<'a> {
    /// `None` while the sign-in settings do not parse.
    pub pingone: Option<&'a PingOneGrants<'a>>,
    pub env: &'a Env,
}

/// Some `DOWNSTREAMS` entry has `auth: "oauth"` (so a vault may hold tokens).
pub fn vault_in_use(env: &Env) -> bool {
    crate::proxy::worker::named(env)
        .is_ok_and(|n| n.iter().any(|n| n.entry.auth == crate::proxy::downstreams::Auth::OAuth))
}

#[async_trait(?Send)]
impl GrantHooks for Hooks<'_> {
    async fn exchange(&self, e: Exchange<'_>) -> Result<ExchangeResult, ExchangeError> {
        match self.pingone {
            Some(p) => p.exchange(e).await,
            None => Ok(ExchangeResult::default()),
        }
    }

    async fn grant_ended(&self, grant: &Grant) {
        if let Some(p) = self.pingone {
            p.grant_ended(grant).await;
        }
        if vault_in_use(self.env) {
            super::connect::grant_ended(self.env, &grant.user_id, &grant.id).await;
        }
    }

    async fn enterprise_grant(&self, a: EnterpriseAssertion<'_>) -> Result<EnterpriseGrant, OAuthError> {
        match self.pingone {
            Some(p) => p.enterprise_grant(a).await,
            None => Err(OAuthError::invalid_grant("This server does not issue tokens for enterprise assertions")
                .because(crate::oauth::error::Reason::new("enterprise", "no_mapping"))),
        }
    }
}
