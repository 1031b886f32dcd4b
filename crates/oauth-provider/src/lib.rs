//! An OAuth 2.1 authorization server for MCP clients, for Rust Workers:
//! discovery metadata (RFC 8414, RFC 9728), dynamic client registration
//! (RFC 7591) and Client ID Metadata Documents, authorization requests and
//! grants, the token endpoint (authorization code + PKCE, refresh-token
//! rotation, RFC 8693 token exchange when [`Config::token_exchange`] is on;
//! clients authenticated with a secret, none, or `private_key_jwt`
//! assertions for metadata-document clients), revocation (RFC 7009) and bearer-token validation for the
//! protected resources.
//!
//! Records live in a [`KvStore`] (Workers KV in production, with the
//! `workers` feature's `workers::Kv`) with the key layout and encryption of
//! `@cloudflare/workers-oauth-provider` 0.1 and 1.x, so a deployment of the
//! TypeScript provider keeps its clients and grants; `STORAGE.md` beside this
//! crate describes every record.
//!
//! # Using it
//!
//! A worker builds a [`Provider`] per request and routes to it:
//!
//! - requests for which [`is_endpoint`] holds (metadata, `/token`,
//!   `/register`, `/revoke`, the admin endpoint) go to [`Provider::handle`];
//! - its own `/authorize` page (sign-in and consent are the application's)
//!   validates the request with [`Provider::parse_auth_request`] and, once the
//!   person approved, stores the grant with [`Provider::complete_authorization`],
//!   which returns the redirect back to the client;
//! - protected routes call [`Provider::authenticate_request`], which yields the
//!   grant's user, scopes and decrypted props, or the complete 401 answer.
//!
//! Application logic plugs in through [`GrantHooks`] (run on every token
//! exchange and refresh, e.g. to refresh an upstream IdP's token, and when a
//! grant ends) and [`MetadataFetcher`] (outbound HTTP for metadata documents).
//! The pure logic runs natively, so `cargo test` covers it without Workers.
//!
//! ```ignore
//! use oauth_provider::workers::{from_http, into_http, Kv};
//! use oauth_provider::{is_endpoint, Config, Provider};
//!
//! #[worker::event(fetch)]
//! async fn fetch(req: worker::Request, env: worker::Env, _: worker::Context) -> worker::Result<worker::Response> {
//!     let config = Config::default();
//!     let kv = Kv(env.kv("OAUTH_KV")?);
//!     let provider = Provider::new(&kv, &config, worker::Date::now().as_millis() / 1000);
//!     let Some(req) = into_http(req).await? else { return worker::Response::error("Too large", 413) };
//!     match req.uri().path() {
//!         p if is_endpoint(&config, p) => from_http(provider.handle(&req).await),
//!         "/authorize" => todo!("your sign-in and consent, then provider.complete_authorization"),
//!         _ => match provider.authenticate_request(&req).await {
//!             Ok(who) => worker::Response::ok(format!("hello {}", who.user_id)),
//!             Err(challenge) => from_http(challenge),
//!         },
//!     }
//! }
//! ```
//!
//! `examples/minimal-worker` in this crate is that worker in full, with an
//! approval page; the repository's tests run it in workerd with the MCP
//! TypeScript SDK's OAuth client.
//!
//! # Public API
//!
//! At the crate root, what most workers need:
//!
//! - **The authorization server**: [`Provider`] (built per request; its
//!   methods route the endpoints, parse and complete authorizations, validate
//!   bearer tokens, list, revoke and purge grants, create, list, read,
//!   update and delete clients as an admin, with [`ClientPage`]), [`is_endpoint`], and its settings [`Config`] with [`Endpoints`],
//!   [`ProtectedResource`], [`Secret`] and [`ConfigError`].
//! - **Authorization requests**: [`AuthRequest`], [`AuthorizeError`] (shown
//!   where the person is) with [`ErrorRedirect`] (the error as data for the
//!   client), [`CompleteAuthorization`], [`ClientInfo`], [`ClientLookupError`].
//! - **The resource server role**: [`ResourceServer`] (RFC 9728 metadata, the
//!   401 challenge and token validation for one resource), validating through
//!   a [`TokenValidator`]: the [`Provider`] in the same worker, or a
//!   [`RemoteValidator`] over a [`ValidationTransport`] (a service binding).
//!   [`AuthContext`] is who a valid token speaks for; [`BearerError`] why a
//!   request was refused; [`step_up_challenge`] builds the 403 a handler
//!   answers when an operation needs more scopes.
//! - **Hooks**: [`GrantHooks`] (token exchange and refresh, grant end, with
//!   [`Exchange`], [`ExchangeResult`], [`ExchangeError`], [`GrantType`]),
//!   [`ExternalTokens`] (bearer tokens of another issuer),
//!   [`RegistrationPolicy`] (the say on dynamic registrations) and
//!   [`MetadataFetcher`] (outbound HTTP for Client ID Metadata Documents, with
//!   [`FetchedDocument`], [`FetchFailure`], [`CimdError`]).
//! - **Errors**: [`OAuthError`] (a token, registration or revocation
//!   refusal) and [`Reason`] (the stable internal reason every refusal
//!   carries, for logs).
//! - **Storage**: [`KvStore`] and [`StoreError`]; [`Grant`] as stored;
//!   [`TokenCache`] (bearer checks answered from memory for a few seconds).
//!
//! And by module, for the rest:
//!
//! - [`store`]: the KV trait, its pages and listed keys, the
//!   [`store::Counting`] and [`store::ReadYourWrites`] wrappers, and
//!   `store::MemoryStore` for native tests (not built for wasm32);
//! - [`records`]: the stored client and grant records and their keys;
//! - [`grants`]: the purge's limits and progress, grant summaries;
//! - [`token_cache`]: validated access tokens kept per isolate for a few
//!   seconds ([`TokenCache`], [`Provider::with_token_cache`]);
//! - [`refresh_gate`]: serialising the refreshes of one grant (a Durable
//!   Object's job in Workers);
//! - [`bearer`], [`resource_server`], [`cimd`], [`config`], [`error`]: the
//!   items above, with their helpers and limits;
//! - [`client_assertion`]: `private_key_jwt` client authentication (RFC 7523)
//!   for metadata-document clients: its rules, limits and KV keys;
//! - [`enterprise`]: Enterprise-Managed Authorization (ID-JAG, the RFC 7523
//!   jwt-bearer grant): its rules, limits and KV keys;
//! - [`cors`]: the CORS policy for browser-based MCP clients;
//! - [`crypto`], [`text`]: hashing, random tokens and base64url; neutralising
//!   control characters in displayed text;
//! - `workers` (feature `workers`): Workers KV as a [`KvStore`], `worker` ↔
//!   `http` conversions with a body cap, the Workers metadata-document fetch.
//!
//! # Features
//!
//! - `workers`: the `workers` module (Workers KV store, `worker` ↔ `http`
//!   conversions, the metadata-document fetch). Without it the crate has no
//!   dependency on `worker` and builds for any target.

#![warn(missing_docs)]

// The public modules: what an embedding worker names by path.
pub mod bearer;
pub mod cimd;
pub mod client_assertion;
pub mod config;
pub mod cors;
pub mod crypto;
pub mod enterprise;
pub mod error;
pub mod grants;
pub mod records;
pub mod refresh_gate;
pub mod resource_server;
pub mod store;
pub mod text;
pub mod token_cache;

#[cfg(feature = "workers")]
pub mod workers;

// The server's inner workings; what they offer is re-exported below or
// reached through `Provider`'s methods.
mod admin;
mod authorize;
mod body;
mod client_auth;
mod hooks;
mod metadata;
mod redirect;
mod register;
mod replay;
mod resource;
mod revoke;
mod router;
mod seal;
mod token;
mod token_exchange;
mod token_str;

pub use admin::{ClientPage, CLIENTS_PER_PAGE};
pub use authorize::{AuthRequest, AuthorizeError, ClientLookupError, CompleteAuthorization, ErrorRedirect};
pub use bearer::{step_up_challenge, AuthContext, BearerError};
pub use cimd::{CimdError, CimdErrorKind, FetchBudget, FetchFailure, FetchedDocument, MetadataFetcher};
pub use config::{Config, ConfigError, Endpoints, Secret};
pub use enterprise::{EnterpriseAssertion, EnterpriseGrant, EnterpriseIdp, JWT_BEARER_GRANT};
pub use error::{OAuthError, Reason};
pub use hooks::{
    Exchange, ExchangeError, ExchangeResult, ExternalTokens, GrantHooks, GrantType, RegistrationPolicy, ResourceProps,
    SingleUse,
};
pub use records::{ClientInfo, Grant};
pub use resource::ProtectedResource;
pub use resource_server::{RemoteValidator, ResourceServer, TokenValidator, ValidationTransport};
pub use router::is_endpoint;
pub use store::{KvStore, StoreError};
pub use token_cache::TokenCache;
pub use token_exchange::{ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT};

/// The authorization server for one request: the store, the settings, the
/// request's clock (seconds since the epoch) and the application's hooks.
pub struct Provider<'a> {
    /// Where clients, grants and tokens are kept.
    pub store: &'a dyn KvStore,
    /// The server's settings (validated once, shared by every request).
    pub config: &'a Config,
    /// The request's clock, in seconds since the epoch.
    pub now: u64,
    /// The application's token-exchange and grant-end hooks ([`GrantHooks`]);
    /// none by default.
    pub hooks: &'a dyn GrantHooks,
    /// Outbound HTTP for client metadata documents; without it `client_id`
    /// URLs are not accepted (and not advertised).
    pub cimd: Option<&'a dyn MetadataFetcher>,
    /// The application's resolution of bearer tokens this server did not
    /// issue ([`ExternalTokens`]); none by default: such tokens get 401.
    pub external_tokens: Option<&'a dyn ExternalTokens>,
    /// The application's policy on dynamic registrations ([`RegistrationPolicy`]);
    /// none by default: every valid registration is accepted.
    pub registration_policy: Option<&'a dyn RegistrationPolicy>,
    /// Access tokens validated in the last few seconds ([`TokenCache`]);
    /// none by default: every bearer check reads the store.
    pub token_cache: Option<&'a TokenCache>,
    /// The bound on fetches of metadata documents not in the cache
    /// ([`cimd::FetchBudget`]); none by default: not bounded.
    pub fetch_budget: Option<&'a cimd::FetchBudget>,
    /// Who is asking (e.g. the caller's IP address), for the per-source bound
    /// of the fetch budget; none by default (one shared source).
    pub source: Option<&'a str>,
    /// Where details for the operator go (why a metadata document was
    /// refused: the HTTP status, the connection error, the offending value),
    /// which the answers never carry; none by default: dropped.
    pub operator_log: Option<&'a dyn Fn(&str)>,
    /// What the internal validation endpoint tells each resource of a
    /// grant's props ([`ResourceProps`]); none by default: nothing.
    pub resource_props: Option<&'a dyn ResourceProps>,
    /// Where assertions (enterprise ID-JAGs, client assertions) are marked
    /// used ([`SingleUse`]); none by default: a KV marker, best effort across
    /// locations.
    pub single_use: Option<&'a dyn SingleUse>,
    /// Metadata-document clients resolved during this request.
    cimd_memo: std::cell::RefCell<Vec<ClientInfo>>,
}

impl<'a> Provider<'a> {
    /// The server on `store` with `config` at time `now` (seconds since the
    /// epoch), with no hooks, no metadata-document fetch and no external tokens.
    pub fn new(store: &'a dyn KvStore, config: &'a Config, now: u64) -> Self {
        Self {
            store,
            config,
            now,
            hooks: &hooks::NoHooks,
            cimd: None,
            external_tokens: None,
            registration_policy: None,
            token_cache: None,
            fetch_budget: None,
            source: None,
            operator_log: None,
            resource_props: None,
            single_use: None,
            cimd_memo: Default::default(),
        }
    }

    /// The same server accepting Client ID Metadata Documents, fetched with `fetcher`.
    pub fn with_metadata_fetcher(self, fetcher: &'a dyn MetadataFetcher) -> Self {
        Self { cimd: Some(fetcher), ..self }
    }

    /// The same server letting `hook` decide what of a grant's props each
    /// resource in another worker receives from the validation endpoint
    /// (see [`ResourceProps`]).
    pub fn with_resource_props(self, hook: &'a dyn ResourceProps) -> Self {
        Self { resource_props: Some(hook), ..self }
    }

    /// The same server marking assertions used in `record`, which
    /// must be strongly consistent (see [`SingleUse`]), instead of a KV marker.
    pub fn with_single_use(self, record: &'a dyn SingleUse) -> Self {
        Self { single_use: Some(record), ..self }
    }

    /// The same server sending details for the operator (never in an
    /// answer) to `log`.
    pub fn with_operator_log(self, log: &'a dyn Fn(&str)) -> Self {
        Self { operator_log: Some(log), ..self }
    }

    pub(crate) fn log(&self, line: &str) {
        if let Some(log) = self.operator_log {
            log(line);
        }
    }

    /// The same server with the application's token-exchange and grant-end hooks.
    pub fn with_hooks(self, hooks: &'a dyn GrantHooks) -> Self {
        Self { hooks, ..self }
    }

    /// The same server letting `hook` resolve bearer tokens it did not issue
    /// (see [`ExternalTokens`]).
    pub fn with_external_tokens(self, hook: &'a dyn ExternalTokens) -> Self {
        Self { external_tokens: Some(hook), ..self }
    }

    /// The same server asking `policy` about every dynamic registration
    /// (see [`RegistrationPolicy`]).
    pub fn with_registration_policy(self, policy: &'a dyn RegistrationPolicy) -> Self {
        Self { registration_policy: Some(policy), ..self }
    }
}

#[cfg(test)]
mod tests;
