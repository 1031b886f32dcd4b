//! The OAuth 2.1 authorization server MCP clients talk to: metadata (RFC 8414,
//! RFC 9728), dynamic client registration (RFC 7591), authorization requests
//! and grants, the token endpoint (authorization code + PKCE, refresh token
//! rotation), revocation (RFC 7009) and bearer validation for the protected
//! MCP routes.
//!
//! It knows nothing of PingOne or MCP: sign-in calls [`Provider::parse_auth_request`]
//! and [`Provider::complete_authorization`]; the MCP routes call
//! [`Provider::authenticate`]. Records live in a [`store::KvStore`]
//! with the key layout and encryption of `@cloudflare/workers-oauth-provider`
//! (see `records` and `seal`), so a deployment of the original keeps its
//! clients and grants.

pub mod admin;
pub mod authorize;
pub mod bearer;
pub mod cimd;
pub mod client_auth;
pub mod config;
pub mod cors;
pub mod crypto;
pub mod error;
pub mod grants;
pub mod hooks;
pub mod metadata;
pub mod records;
pub mod redirect;
pub mod refresh_gate;
pub mod register;
pub mod resource;
pub mod resource_server;
pub mod revoke;
pub mod seal;
pub mod store;
pub mod text;
pub mod token;
pub mod token_str;

mod body;
mod router;

#[cfg(feature = "workers")]
pub mod workers;

pub use authorize::{AuthRequest, AuthorizeError, ClientLookupError, CompleteAuthorization};
pub use bearer::AuthContext;
pub use cimd::{CimdError, FetchFailure, FetchedDocument, MetadataFetcher};
pub use config::Config;
pub use hooks::{Exchange, ExchangeError, ExchangeResult, GrantHooks, GrantType};
pub use records::ClientInfo;
pub use router::is_endpoint;

use crate::store::KvStore;

/// The authorization server for one request: the store, the settings, the
/// request's clock (seconds since the epoch) and the application's hooks.
pub struct Provider<'a> {
    pub store: &'a dyn KvStore,
    pub config: &'a Config,
    pub now: u64,
    pub hooks: &'a dyn GrantHooks,
    /// Outbound HTTP for client metadata documents; without it `client_id`
    /// URLs are not accepted (and not advertised).
    pub cimd: Option<&'a dyn MetadataFetcher>,
    /// Metadata-document clients resolved during this request.
    cimd_memo: std::cell::RefCell<Vec<ClientInfo>>,
}

impl<'a> Provider<'a> {
    pub fn new(store: &'a dyn KvStore, config: &'a Config, now: u64) -> Self {
        Self { store, config, now, hooks: &hooks::NoHooks, cimd: None, cimd_memo: Default::default() }
    }

    /// The same server accepting Client ID Metadata Documents, fetched with `fetcher`.
    pub fn with_metadata_fetcher(self, fetcher: &'a dyn MetadataFetcher) -> Self {
        Self { cimd: Some(fetcher), ..self }
    }

    /// The same server with the application's token-exchange and grant-end hooks.
    pub fn with_hooks(self, hooks: &'a dyn GrantHooks) -> Self {
        Self { hooks, ..self }
    }
}

#[cfg(test)]
mod tests;
